"""Pages of the signed-in user's own account (personal API tokens, their ORCID iD);
signing in and out, and ORCID's sign-in views."""

from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from .identities import identities_of
from .orcid import (
    LINK_SESSION_KEY,
    PROVIDER,
    OrcidSignInRefused,
    orcid_enabled,
    orcid_link_start,
)
from .signin import sign_in_methods
from .tokens import api_token_create, api_token_revoke, api_tokens_of


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=100,
        help_text=gettext_lazy("What the token is for, e.g. “lab workstation uploads”."),
    )


@never_cache  # the page that shows a new token must not be kept by any cache
@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        try:
            row, new_token = api_token_create(user=request.user, name=form.cleaned_data["name"])
        except ValidationError as exc:
            form.add_error("name", exc.message_dict.get("name", exc.messages))
        else:
            form = ApiTokenForm()
            messages.success(request, _("The token “%(name)s” was created.") % {"name": row.name})
    status = 400 if request.method == "POST" and form.errors else 200
    context = {"form": form, "tokens": api_tokens_of(request.user), "new_token": new_token}
    return render(request, "accounts/api_tokens.html", context, status=status)


@login_required
@require_POST
def api_token_revoke_view(request, token_id: int):
    row = api_token_revoke(user=request.user, token_pk=token_id)
    if row is None:
        raise Http404("No such token.")
    messages.success(request, _("The token “%(name)s” was revoked.") % {"name": row.name})
    return redirect("api-tokens")


# --- ORCID sign-in and linking (accounts/orcid.py holds the rules) ----------------------


def _orcid_enabled_check() -> None:
    if not orcid_enabled():
        raise Http404("ORCID sign-in is not enabled.")


class OrcidSignInView(OIDCAuthenticationRequestView):
    """Sends the browser to ORCID to sign in (``?next=`` is kept for the way back)."""

    def get(self, request):
        _orcid_enabled_check()
        return super().get(request)


class OrcidCallbackView(OIDCAuthenticationCallbackView):
    """ORCID's answer: signs in (or links) through :class:`~accounts.orcid.OrcidBackend`;
    anything refused is a page that says why, and nobody is signed in by it — nor out:
    anyone can make a browser follow this URL."""

    def get(self, request):
        _orcid_enabled_check()
        linking = LINK_SESSION_KEY in request.session
        # Only an answer to a flow this browser started may end its pending link.
        self.own_flow = request.GET.get("state") in request.session.get("oidc_states", {})
        if request.GET.get("error"):
            # The library would sign the person out here (for its session refresh, which
            # Kura does not use): answered without it.
            if self.own_flow:
                del request.session["oidc_states"][request.GET["state"]]  # used once
                request.session.modified = True
            return self.login_failure()
        try:
            response = super().get(request)
        except OrcidSignInRefused as exc:
            return self._refused(exc.message, exc.status)
        except SuspiciousOperation:  # a state this browser never sent: forged or replayed
            return self._refused(
                _("This sign-in was not started in this browser, or was already used."), 400
            )
        if response.status_code == 302 and linking and request.user.is_authenticated:
            messages.success(request, _("Your ORCID iD is now linked to your account."))
        return response

    def login_failure(self):
        if self.request.GET.get("error") == "access_denied":
            message = _("You did not allow Kura to read your ORCID iD; nobody was signed in.")
        else:
            message = _("ORCID did not sign you in. Try again.")
        return self._refused(message, 400)

    def _refused(self, message: str, status: int):
        if self.own_flow:
            self.request.session.pop(LINK_SESSION_KEY, None)
        return render(
            self.request, "accounts/orcid_refused.html", {"message": message}, status=status
        )


@login_required
@require_http_methods(["GET", "POST"])
def orcid_account(request):
    """The person's ORCID iD; POST starts linking one (through ORCID's sign-in)."""
    _orcid_enabled_check()
    if request.method == "POST":
        orcid_link_start(session=request.session, user=request.user)
        query = urlencode({"next": reverse("account-orcid")})
        return redirect(f"{reverse('oidc_authentication_init')}?{query}")
    context = {"linked": identities_of(request.user).get(PROVIDER, [])}
    return render(request, "accounts/orcid.html", context)


class LoginView(auth_views.LoginView):
    """Django's login page, with the other sign-in methods (``accounts/signin.py``) as
    buttons; with ``KURA_LOCAL_PASSWORDS`` off it shows no password form and accepts none."""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["sign_in_methods"] = sign_in_methods(self.request, self.get_redirect_url())
        context["local_passwords"] = settings.KURA_LOCAL_PASSWORDS
        return context

    def post(self, request, *args, **kwargs):
        if not settings.KURA_LOCAL_PASSWORDS:
            form = self.get_form()
            form.errors.clear()
            context = self.get_context_data(form=form)
            context["password_refused"] = True
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    """Django's logout; a GakuNin session is ended through the IdP's single logout (a 307,
    so the browser repeats this POST there). Either way the SAML session (pending links)
    goes too: the next person at a shared browser must find nothing of this one."""

    def post(self, request, *args, **kwargs):
        request.session.pop(LINK_SESSION_KEY, None)  # whichever way the session ends
        saml_session = getattr(request, "saml_session", None)
        if settings.KURA_SAML_ENABLED and saml_session and saml_session.get("_saml2_subject_id"):
            return redirect(reverse("saml2_logout"), preserve_request=True)
        response = super().post(request, *args, **kwargs)
        if saml_session is not None:
            saml_session.flush()
        return response
