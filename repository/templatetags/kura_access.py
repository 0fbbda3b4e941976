"""Per-person parts of otherwise shared pages, computed through :mod:`repository.access`."""

from django import template

from accounts.roles import ProjectAction, may
from repository.governance import grants

register = template.Library()


@register.simple_tag(takes_context=True)
def access_request_panel(context, record):
    """What the landing page's request-access panel shows (:class:`grants.AccessPanel`)."""
    return grants.access_panel(user=context["request"].user, record=record)


@register.simple_tag(takes_context=True)
def can_view_site_audit(context) -> bool:
    """Whether the navigation offers the site-wide audit trail."""
    return may(context["request"].user, ProjectAction.READ_AUDIT_TRAIL)
