"""djangosaml2's views as Kura serves them under ``/saml2/``.

- every view answers 404 while ``KURA_SAML_ENABLED`` is off, and 503 while the federation
  metadata cannot be loaded (never a 500);
- ``login/`` without ``?idp=`` shows the embedded IdP chooser (searchable, the last choice
  first, remembered in a cookie) — or, with ``KURA_SAML_DISCOVERY_URL``, sends the browser
  to that discovery service, which returns to ``login/?idp=…``;
- a person already signed in who asks to link GakuNin (a POST from the login page, with
  its CSRF token: a link a third party made their browser follow must not attach that
  party's ePPN, asserted by an IdP of theirs, to the account) links their ePPN to the
  account they are in; the link is tied to that one AuthnRequest, so an abandoned attempt
  on a shared browser cannot link someone else's sign-in later;
- a refused sign-in answers 403 with a page that says why (a missing ePPN says which
  attributes the IdP must release);
- ``logout/`` ends the IdP session too where the IdP offers single logout, and only the
  local one otherwise.
"""

import logging
import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils.decorators import method_decorator
from django.utils.translation import get_language, gettext
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as saml_views
from djangosaml2.cache import OutstandingQueriesCache
from djangosaml2.utils import available_idps

from accounts.models import User

from .attributes import OPTIONAL_ATTRIBUTES, REQUIRED_ATTRIBUTES
from .backend import KuraSaml2Backend, SamlRefusal
from .config import SamlUnavailable, sp_config, sp_config_without_federation

log = logging.getLogger("kura.security")

IDP_COOKIE = "kura_saml_idp"
IDP_COOKIE_MAX_AGE = 365 * 24 * 60 * 60
LINK_KEY = "kura_link_requests"  # in the SAML session: AuthnRequest ID -> account to link
# In the Django session: a signed-in person asked (by POST) to link GakuNin, until then.
LINK_INTENT_KEY = "kura_saml_link_until"
LINK_INTENT_SECONDS = 10 * 60


class SamlViewMixin:
    config_loader_path = staticmethod(sp_config)

    def dispatch(self, request, *args, **kwargs):
        if not settings.KURA_SAML_ENABLED:
            raise Http404("GakuNin sign-in is not enabled.")
        try:
            return super().dispatch(request, *args, **kwargs)
        except SamlUnavailable:
            return render(request, "accounts/saml/unavailable.html", status=503)


def idp_name(conf, entity_id: str, lang: str) -> str:
    """An IdP's name for people: its mdui DisplayName, else its organisation's display
    name, in ``lang`` first, then in the other language; else its entityID."""
    store = conf.metadata
    for pref in (lang, "en" if lang == "ja" else "ja"):
        try:
            name = next(iter(store.mdui_uiinfo_display_name(entity_id, pref)), None)
        except (KeyError, TypeError):
            name = None
        name = name or store.name(entity_id, pref)
        if name:
            return name
    return entity_id


def idp_choices(conf, query: str = "", remembered: str = "") -> list[dict]:
    """The IdPs of the federation metadata, by name in the page's language, filtered by
    ``query`` (in the Japanese or English name, or the entityID); the remembered one first."""
    lang = "ja" if (get_language() or "en").startswith("ja") else "en"
    needle = query.strip().casefold()
    choices = []
    for entity_id in available_idps(conf):
        name = idp_name(conf, entity_id, lang)
        other = idp_name(conf, entity_id, "en" if lang == "ja" else "ja")
        haystack = f"{name}\n{other}\n{entity_id}".casefold()
        if needle and needle not in haystack:
            continue
        choices.append(
            {"entity_id": entity_id, "name": name, "remembered": entity_id == remembered}
        )
    choices.sort(key=lambda c: (not c["remembered"], c["name"].casefold()))
    return choices


class LoginView(SamlViewMixin, saml_views.LoginView):
    def should_prevent_auth(self, request) -> bool:
        return False  # signed in, GakuNin switches account, or links when asked by POST

    def post(self, request, *args, **kwargs):
        """Linking starts here: a POST (with the login page's CSRF token) from a signed-in
        person, never a link someone else could make their browser follow."""
        if request.user.is_authenticated:
            request.session[LINK_INTENT_KEY] = time.time() + LINK_INTENT_SECONDS
        next_url = request.POST.get("next", "")
        query = f"?{urlencode({'next': next_url})}" if next_url else ""
        if getattr(settings, "SAML2_DISCO_URL", None):
            # A redirect chain from this form to the external discovery service would break
            # the login page's CSP (form-action 'self'): the person follows a link instead.
            context = {"continue_url": f"{request.path}{query}"}
            return render(request, "accounts/saml/continue.html", context)
        return HttpResponseRedirect(f"{request.path}{query}")

    def get(self, request, *args, **kwargs):
        selected = request.GET.get("idp", "")
        if not selected and not getattr(settings, "SAML2_DISCO_URL", None):
            return self.chooser(request)
        if selected and selected not in available_idps(self.get_sp_config(request)):
            return self.chooser(request, unknown=selected, status=400)
        before = set(OutstandingQueriesCache(request.saml_session).outstanding_queries())
        response = super().get(request, *args, **kwargs)
        if selected and response.status_code < 400:
            response.set_cookie(
                IDP_COOKIE,
                selected,
                max_age=IDP_COOKIE_MAX_AGE,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
            intent = request.session.pop(LINK_INTENT_KEY, 0)
            if request.user.is_authenticated and intent > time.time():
                self.remember_link(request, before)
        return response

    def remember_link(self, request, before: set) -> None:
        new = set(OutstandingQueriesCache(request.saml_session).outstanding_queries()) - before
        links = dict(request.saml_session.get(LINK_KEY, {}))
        for request_id in new:
            links[request_id] = [request.user.pk, request.user.get_session_auth_hash()]
        request.saml_session[LINK_KEY] = links

    def chooser(self, request, *, unknown: str = "", status: int = 200):
        query = request.GET.get("q", "")
        next_url = request.GET.get("next", "")
        conf = self.get_sp_config(request)
        choices = idp_choices(conf, query, request.COOKIES.get(IDP_COOKIE, ""))
        for choice in choices:
            params = {"idp": choice["entity_id"]}
            if next_url:
                params["next"] = next_url
            choice["url"] = f"{request.path}?{urlencode(params)}"
        context = {"choices": choices, "query": query, "next": next_url, "unknown": unknown}
        return render(request, "accounts/saml/discovery.html", context, status=status)


# The IdP's POST carries no CSRF token: it is checked by its signature and by answering an
# outstanding request of this browser. (djangosaml2 marks its own dispatch exempt; Kura's
# dispatch replaces it, so it must say so again.)
@method_decorator(csrf_exempt, name="dispatch")
class AssertionConsumerServiceView(SamlViewMixin, saml_views.AssertionConsumerServiceView):
    in_response_to = None

    def custom_validation(self, response):
        self.in_response_to = response.in_response_to

    def link_user(self, request) -> User | None:
        """The account this response's AuthnRequest was started from, if any and unchanged."""
        links = dict(request.saml_session.get(LINK_KEY, {}))
        entry = links.pop(self.in_response_to, None) if self.in_response_to else None
        request.saml_session[LINK_KEY] = links
        if not entry:
            return None
        user = User.objects.filter(pk=entry[0], is_active=True).first()
        if user is None or user.get_session_auth_hash() != entry[1]:
            return None  # the password changed (or the account went) since: no link
        return user

    def authenticate_user(
        self, request, session_info, attribute_mapping, create_unknown_user, assertion_info
    ):
        # Kura's backend directly, not through auth.authenticate: a refused assertion is no
        # password guess, and django-axes would count it as one and lock the address out.
        link_user = self.link_user(request)
        user = KuraSaml2Backend().authenticate(
            request,
            session_info=session_info,
            attribute_mapping=attribute_mapping,
            create_unknown_user=create_unknown_user,
            assertion_info=assertion_info,
            link_user=link_user,
        )
        if user is None:
            raise getattr(request, "kura_saml_refusal", None) or SamlRefusal(
                "", gettext("No account could be signed in.")
            )
        auth.login(request, user, backend="accounts.saml.backend.KuraSaml2Backend")
        saml_views._set_subject_id(request.saml_session, session_info["name_id"])
        if link_user is not None:
            messages.success(request, gettext("GakuNin is now linked to your account."))
        return user

    def handle_acs_failure(self, request, exception=None, status=403, **kwargs):
        refusal = exception if isinstance(exception, SamlRefusal) else None
        context = {
            "code": refusal.code if refusal else "",
            "message": refusal.message if refusal else "",
            "required_attributes": REQUIRED_ATTRIBUTES,
            "optional_attributes": [
                "organizationName" if a == "o" else a for a in OPTIONAL_ATTRIBUTES if a != "jao"
            ],
        }
        return render(request, "accounts/saml/refused.html", context, status=status)


def _local_logout(request, reason: Exception | None = None):
    if reason is not None:
        log.warning("SAML logout ended locally: %s", reason)
    auth.logout(request)
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


class LogoutInitView(SamlViewMixin, saml_views.LogoutInitView):
    def get(self, request, *args, **kwargs):
        if saml_views._get_subject_id(request.saml_session) is None:
            return _local_logout(request)  # signed in another way: nothing to tell an IdP
        try:
            response = super().get(request, *args, **kwargs)
        except SamlUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - signing out must work whatever the IdP state
            return _local_logout(request, exc)
        if response.status_code >= 400:  # e.g. no IdP session left to end
            return _local_logout(request)
        return response

    def post(self, request, *args, **kwargs):
        return self.get(request, *args, **kwargs)


@method_decorator(csrf_exempt, name="dispatch")
class LogoutView(SamlViewMixin, saml_views.LogoutView):
    def do_logout_service(self, request, data, binding, *args, **kwargs):
        try:
            return super().do_logout_service(request, data, binding, *args, **kwargs)
        except SamlUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed or forged message: 400, not 500
            log.warning("SAML logout message refused: %s", exc)
            return render(request, "accounts/saml/refused.html", {"code": ""}, status=400)


class MetadataView(SamlViewMixin, saml_views.MetadataView):
    config_loader_path = staticmethod(sp_config_without_federation)
