"""djangosaml2's views as Kura serves them under ``/saml2/``.

- every view answers 404 while ``KURA_SAML_ENABLED`` is off, and 503 while the federation
  metadata cannot be loaded (never a 500);
- ``login/`` without ``?idp=`` shows the embedded IdP chooser (searchable, the last choice
  first, remembered in a cookie) — or, with ``KURA_SAML_DISCOVERY_URL``, sends the browser
  to that discovery service, which returns to ``login/?idp=…``;
- a person already signed in who asks to link GakuNin (a POST from the login page, with
  its CSRF token) gets a one-time nonce for the GET that starts the AuthnRequest; any GET
  without it drops the intent, so a link a third party makes the browser follow cannot
  attach that party's ePPN. The ACS signs nobody in for a link: it keeps the verified
  person in the SAML session and sends the browser to ``login/?finish=link`` (same-site,
  with the Django session), which links it only to the account that asked;
- ``next`` stays in the SAML session; the RelayState sent out is an opaque token;
- a refused sign-in answers 403 with a page that says why (a missing ePPN says which
  attributes the IdP must release);
- ``logout/`` (POST only) ends the IdP session too where the IdP offers single logout (a
  page links there), and only the local one otherwise; every logout clears pending links.
"""

import logging
import secrets
import time
from dataclasses import asdict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import auth, messages
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language, gettext
from django.views.decorators.csrf import csrf_exempt
from djangosaml2 import views as saml_views
from djangosaml2.cache import OutstandingQueriesCache
from djangosaml2.utils import available_idps
from saml2.ident import code

from .attributes import OPTIONAL_ATTRIBUTES, REQUIRED_ATTRIBUTES
from .backend import KuraSaml2Backend, SamlPerson, SamlRefusal, saml_person_verified, saml_sign_in
from .config import SamlUnavailable, sp_config, sp_config_without_federation

log = logging.getLogger("kura.security")

IDP_COOKIE = "kura_saml_idp"
IDP_COOKIE_MAX_AGE = 365 * 24 * 60 * 60
# In the Django session: a signed-in person asked (by POST) to link GakuNin; the one-time
# nonce that POST handed to the GET which starts the AuthnRequest, and until when.
LINK_INTENT_KEY = "kura_saml_link_intent"
LINK_INTENT_SECONDS = 10 * 60
# In the SAML session: AuthnRequest ID -> [account pk to link, until].
LINK_KEY = "kura_link_requests"
LINK_REQUEST_SECONDS = 10 * 60
# In the SAML session: the verified person of an answered link request, until the browser
# comes back (same-site, with its Django session) to finish the link.
LINK_DONE_KEY = "kura_link_verified"
LINK_DONE_SECONDS = 2 * 60
# In the SAML session: opaque RelayState -> where to go after signing in.
RELAY_KEY = "kura_relay_states"
RELAY_KEEP = 10
SAML_STATE_KEYS = (LINK_KEY, LINK_DONE_KEY, RELAY_KEY)


def saml_state_clear(request) -> None:
    """Forget every pending link and RelayState of this browser (on signing out)."""
    saml_session = getattr(request, "saml_session", None)
    if saml_session is None:
        return
    for key in SAML_STATE_KEYS:
        saml_session.pop(key, None)


def relay_token(request, next_url: str) -> str:
    """An opaque RelayState standing for ``next_url``, which stays in the SAML session (an
    invitation link's token must not travel to the IdP or the discovery service)."""
    relays = dict(request.saml_session.get(RELAY_KEY, {}))
    if next_url in relays:
        return next_url  # a token already (back from the discovery service)
    # The dot makes djangosaml2's check of ``next`` take it as a URL, not a URL pattern name.
    token = f"relay.{secrets.token_urlsafe(16)}"
    relays[token] = next_url
    request.saml_session[RELAY_KEY] = dict(list(relays.items())[-RELAY_KEEP:])
    return token


def relay_url(request, token: str) -> str:
    """Where the RelayState ``token`` leads; the fallback for anything else."""
    relays = dict(request.saml_session.get(RELAY_KEY, {}))
    next_url = relays.pop(token, "") if token else ""
    request.saml_session[RELAY_KEY] = relays
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return resolve_url(settings.LOGIN_REDIRECT_URL)


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
        person, never a link someone else could make their browser follow. It hands a
        one-time nonce to the GET that starts the AuthnRequest."""
        params = {}
        if request.POST.get("next"):
            params["next"] = request.POST["next"]
        if request.user.is_authenticated:
            params["link"] = self.link_intent_new(request)
        query = f"?{urlencode(params)}" if params else ""
        if getattr(settings, "SAML2_DISCO_URL", None):
            # A redirect chain from this form to the external discovery service would break
            # the login page's CSP (form-action 'self'): the person follows a link instead.
            context = {"continue_url": f"{request.path}{query}"}
            return render(request, "accounts/saml/continue.html", context)
        return HttpResponseRedirect(f"{request.path}{query}")

    @staticmethod
    def link_intent_new(request) -> str:
        nonce = secrets.token_urlsafe(16)
        request.session[LINK_INTENT_KEY] = [nonce, time.time() + LINK_INTENT_SECONDS]
        return nonce

    @staticmethod
    def link_intent_take(request) -> bool:
        """Whether this GET carries the nonce of a live link intent; any GET drops it."""
        nonce, until = request.session.pop(LINK_INTENT_KEY, None) or ["", 0]
        given = request.GET.get("link", "")
        return bool(
            request.user.is_authenticated
            and nonce
            and given
            and until > time.time()
            and secrets.compare_digest(nonce.encode(), given.encode())
        )

    def get(self, request, *args, **kwargs):
        if request.GET.get("finish") == "link":
            return self.link_finish(request)
        linking = self.link_intent_take(request)
        selected = request.GET.get("idp", "")
        next_url = request.GET.get("next", "")
        if not selected:
            link = self.link_intent_new(request) if linking else ""
            if getattr(settings, "SAML2_DISCO_URL", None):
                return self.discovery(request, next_url, link)
            return self.chooser(request, link=link)
        if selected not in available_idps(self.get_sp_config(request)):
            link = self.link_intent_new(request) if linking else ""
            return self.chooser(request, unknown=selected, status=400, link=link)
        # djangosaml2 sends ``next`` to the IdP as the RelayState: an opaque token instead.
        query = request.GET.copy()
        query["next"] = relay_token(request, next_url)
        request.GET = query
        before = set(OutstandingQueriesCache(request.saml_session).outstanding_queries())
        response = super().get(request, *args, **kwargs)
        if response.status_code < 400:
            response.set_cookie(
                IDP_COOKIE,
                selected,
                max_age=IDP_COOKIE_MAX_AGE,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
            if linking:
                self.remember_link(request, before)
        return response

    def remember_link(self, request, before: set) -> None:
        new = set(OutstandingQueriesCache(request.saml_session).outstanding_queries()) - before
        links = {
            request_id: entry
            for request_id, entry in dict(request.saml_session.get(LINK_KEY, {})).items()
            if entry[1] > time.time()
        }
        for request_id in new:
            links[request_id] = [request.user.pk, time.time() + LINK_REQUEST_SECONDS]
        request.saml_session[LINK_KEY] = links

    def link_finish(self, request):
        """Back from the ACS (a same-site GET, with the Django session): link the verified
        ePPN to the account that asked for it, only if that account is still signed in."""
        entry = request.saml_session.pop(LINK_DONE_KEY, None)
        if (
            not entry
            or entry["until"] < time.time()
            or not request.user.is_authenticated
            or request.user.pk != entry["pk"]
        ):
            message = gettext(
                "GakuNin could not be linked: sign in to the account you started from and "
                "try again."
            )
            return refused(request, SamlRefusal("link_lost", message))
        try:
            saml_sign_in(person=SamlPerson(**entry["person"]), link_user=request.user)
        except SamlRefusal as refusal:
            return refused(request, refusal)
        request.saml_session["_saml2_subject_id"] = entry["subject_id"]
        messages.success(request, gettext("GakuNin is now linked to your account."))
        return HttpResponseRedirect(relay_url(request, entry["relay"]))

    def discovery(self, request, next_url: str, link: str):
        """To the external discovery service, which returns to ``login/?idp=…`` with the
        opaque RelayState (and a link's nonce) in the return URL."""
        conf = self.get_sp_config(request)
        params = {"next": relay_token(request, next_url)}
        if link:
            params["link"] = link
        back = request.build_absolute_uri(f"{reverse('saml2_login')}?{urlencode(params)}")
        query = urlencode({"entityID": conf.entityid, "return": back, "returnIDParam": "idp"})
        return HttpResponseRedirect(f"{settings.SAML2_DISCO_URL}?{query}")

    def chooser(self, request, *, unknown: str = "", status: int = 200, link: str = ""):
        query = request.GET.get("q", "")
        next_url = request.GET.get("next", "")
        conf = self.get_sp_config(request)
        choices = idp_choices(conf, query, request.COOKIES.get(IDP_COOKIE, ""))
        for choice in choices:
            params = {"idp": choice["entity_id"]}
            if next_url:
                params["next"] = next_url
            if link:
                params["link"] = link
            choice["url"] = f"{request.path}?{urlencode(params)}"
        context = {"choices": choices, "query": query, "next": next_url, "unknown": unknown}
        context["link"] = link
        return render(request, "accounts/saml/discovery.html", context, status=status)


def refused(request, refusal: SamlRefusal | None, status: int = 403):
    """The page that says why a sign-in (or a link) was refused."""
    context = {
        "code": refusal.code if refusal else "",
        "message": refusal.message if refusal else "",
        "required_attributes": REQUIRED_ATTRIBUTES,
        "optional_attributes": [
            "organizationName" if a == "o" else a for a in OPTIONAL_ATTRIBUTES if a != "jao"
        ],
    }
    return render(request, "accounts/saml/refused.html", context, status=status)


# The IdP's POST carries no CSRF token: it is checked by its signature and by answering an
# outstanding request of this browser. (djangosaml2 marks its own dispatch exempt; Kura's
# dispatch replaces it, so it must say so again.)
@method_decorator(csrf_exempt, name="dispatch")
class AssertionConsumerServiceView(SamlViewMixin, saml_views.AssertionConsumerServiceView):
    in_response_to = None
    link_pending = None

    def custom_validation(self, response):
        self.in_response_to = response.in_response_to

    def link_user_pk(self, request) -> int | None:
        """The account this response's AuthnRequest was started from to link, if any."""
        links = dict(request.saml_session.get(LINK_KEY, {}))
        entry = links.pop(self.in_response_to, None) if self.in_response_to else None
        request.saml_session[LINK_KEY] = links
        if not entry or entry[1] < time.time():
            return None
        return entry[0]

    def authenticate_user(
        self, request, session_info, attribute_mapping, create_unknown_user, assertion_info
    ):
        issuer = session_info.get("issuer") or ""
        idp_scopes = list(
            self.get_sp_config(request).metadata.shibmd_scopes(issuer, "idpsso_descriptor")
        )
        link_pk = self.link_user_pk(request)
        if link_pk is not None:
            # Nobody is signed in here: the verified person waits for the browser to come
            # back same-site, where the account that asked must still be the one signed in.
            person = saml_person_verified(
                issuer=issuer,
                ava=session_info["ava"],
                assertion_info=assertion_info,
                idp_scopes=idp_scopes,
            )
            self.link_pending = {
                "pk": link_pk,
                "person": asdict(person),
                "subject_id": code(session_info["name_id"]),
                "until": time.time() + LINK_DONE_SECONDS,
            }
            return None
        # Kura's backend directly, not through auth.authenticate: a refused assertion is no
        # password guess, and django-axes would count it as one and lock the address out.
        user = KuraSaml2Backend().authenticate(
            request,
            session_info=session_info,
            attribute_mapping=attribute_mapping,
            create_unknown_user=create_unknown_user,
            assertion_info=assertion_info,
            idp_scopes=idp_scopes,
        )
        if user is None:
            raise getattr(request, "kura_saml_refusal", None) or SamlRefusal(
                "", gettext("No account could be signed in.")
            )
        auth.login(request, user, backend="accounts.saml.backend.KuraSaml2Backend")
        saml_views._set_subject_id(request.saml_session, session_info["name_id"])
        return user

    def customize_relay_state(self, relay_state: str) -> str:
        return relay_url(self.request, relay_state)

    def custom_redirect(self, user, relay_state: str, session_info) -> str | None:
        if self.link_pending is None:
            return None
        self.request.saml_session[LINK_DONE_KEY] = {
            **self.link_pending,
            "relay": relay_token(self.request, relay_state),
        }
        return f"{reverse('saml2_login')}?finish=link"

    def handle_acs_failure(self, request, exception=None, status=403, **kwargs):
        return refused(request, exception if isinstance(exception, SamlRefusal) else None, status)


def _local_logout(request, reason: Exception | None = None):
    if reason is not None:
        log.warning("SAML logout ended locally: %s", reason)
    auth.logout(request)
    request.saml_session.flush()
    return HttpResponseRedirect(resolve_url(settings.LOGOUT_REDIRECT_URL))


class LogoutInitView(SamlViewMixin, saml_views.LogoutInitView):
    """Signing out of a GakuNin session: a POST (a link another site makes the browser
    follow signs nobody out); IdP-initiated single logout arrives at ``ls/`` instead."""

    def get(self, request, *args, **kwargs):
        return HttpResponseNotAllowed(["POST"])

    def post(self, request, *args, **kwargs):
        saml_state_clear(request)
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
        if response.status_code in (301, 302) and not url_has_allowed_host_and_scheme(
            response["Location"], allowed_hosts={request.get_host()}
        ):
            # This POST comes from a form: a redirect chain from it to the IdP would break
            # the page's CSP (form-action 'self'). Kura's session is over already; the
            # person follows a link to end the IdP's too.
            context = {"continue_url": response["Location"]}
            return render(request, "accounts/saml/logout_continue.html", context)
        return response


@method_decorator(csrf_exempt, name="dispatch")
class LogoutView(SamlViewMixin, saml_views.LogoutView):
    def do_logout_service(self, request, data, binding, *args, **kwargs):
        saml_state_clear(request)
        try:
            return super().do_logout_service(request, data, binding, *args, **kwargs)
        except SamlUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed or forged message: 400, not 500
            log.warning("SAML logout message refused: %s", exc)
            return render(request, "accounts/saml/refused.html", {"code": ""}, status=400)


class MetadataView(SamlViewMixin, saml_views.MetadataView):
    config_loader_path = staticmethod(sp_config_without_federation)
