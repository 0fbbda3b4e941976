"""ORCID on pages: the login page's "Sign in with ORCID" button, shown only when ORCID
sign-in is enabled (``{% orcid_sign_in next %}``), and ``{% orcid_enabled as x %}``."""

from django import template

from accounts.orcid import orcid_enabled as _orcid_enabled

register = template.Library()


@register.simple_tag
def orcid_enabled() -> bool:
    return _orcid_enabled()


@register.inclusion_tag("accounts/_orcid_sign_in.html")
def orcid_sign_in(next_url: str = "") -> dict:
    return {"enabled": _orcid_enabled(), "next": next_url}
