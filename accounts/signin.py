"""The ways to sign in that the login page offers, besides a local password.

Each entry of :data:`SIGN_IN_METHODS` answers a :class:`SignInMethod` (a button on the
login page) or ``None`` where the method is switched off. A new method (ORCID, …) adds
its function here. Signed in already, the same buttons link the method to the account.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.orcid import orcid_enabled


@dataclass(frozen=True)
class SignInMethod:
    key: str
    label: str
    url: str
    help: str = ""
    # Linking to the signed-in account starts with a POST (the page's CSRF token) to url,
    # so that no link another site makes a browser follow can attach an identity.
    post: bool = False
    next_url: str = ""


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def _method(request, next_url, *, key, help_text, sign_in, link) -> SignInMethod:
    """The sign-in button (``sign_in``: label and URL), or, for a person signed in already,
    the button that links the method to their account (``link``: label and the URL a POST
    goes to)."""
    if request.user.is_authenticated:
        label, url = link
        return SignInMethod(key, label, url, help_text, post=True, next_url=next_url)
    label, url = sign_in
    return SignInMethod(key, label, _with_next(url, next_url), help_text)


def gakunin(request, next_url: str) -> SignInMethod | None:
    if not settings.KURA_SAML_ENABLED:
        return None
    return _method(
        request,
        next_url,
        key="saml",
        help_text=_("With your university or research institute account (学認)."),
        sign_in=(_("Sign in with GakuNin"), reverse("saml2_login")),
        link=(_("Link GakuNin to this account"), reverse("saml2_login")),
    )


def orcid(request, next_url: str) -> SignInMethod | None:
    if not orcid_enabled():
        return None
    # Linking: the account page's POST remembers the account, then goes through ORCID.
    return _method(
        request,
        next_url,
        key="orcid",
        help_text=_("With your ORCID iD: it is then shown as verified on your work."),
        sign_in=(_("Sign in with ORCID"), reverse("oidc_authentication_init")),
        link=(_("Link ORCID to this account"), reverse("account-orcid")),
    )


SIGN_IN_METHODS: list[Callable] = [gakunin, orcid]


def sign_in_methods(request, next_url: str = "") -> list[SignInMethod]:
    """The methods switched on, in the order of :data:`SIGN_IN_METHODS`."""
    return [m for m in (method(request, next_url) for method in SIGN_IN_METHODS) if m]
