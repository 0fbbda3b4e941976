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


@dataclass(frozen=True)
class SignInMethod:
    key: str
    label: str
    url: str
    help: str = ""


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def gakunin(request, next_url: str) -> SignInMethod | None:
    if not settings.KURA_SAML_ENABLED:
        return None
    if request.user.is_authenticated:
        label = _("Link GakuNin to this account")
    else:
        label = _("Sign in with GakuNin")
    return SignInMethod(
        key="saml",
        label=label,
        url=_with_next(reverse("saml2_login"), next_url),
        help=_("With your university or research institute account (学認)."),
    )


SIGN_IN_METHODS: list[Callable] = [gakunin]


def sign_in_methods(request, next_url: str = "") -> list[SignInMethod]:
    """The methods switched on, in the order of :data:`SIGN_IN_METHODS`."""
    return [m for m in (method(request, next_url) for method in SIGN_IN_METHODS) if m]
