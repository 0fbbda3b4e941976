"""ORCID on pages: ``{% orcid_enabled as x %}`` (the header's ORCID link shows only when
ORCID sign-in is on; the login page's button is in ``accounts/signin.py``)."""

from django import template

from accounts.orcid import orcid_enabled as _orcid_enabled

register = template.Library()


@register.simple_tag
def orcid_enabled() -> bool:
    return _orcid_enabled()
