"""How an audit event's before and after read on a page: ``event|audit_values:"before"``."""

from django import template

from repository.governance.audit import audit_values_shown
from repository.models import AuditEvent

register = template.Library()


@register.filter
def audit_values(event: AuditEvent, side: str) -> list[tuple[str, str]]:
    """(label, value) pairs of ``event.before`` or ``event.after`` (``side``)."""
    if side not in ("before", "after"):
        raise template.TemplateSyntaxError(f"audit_values takes before or after, not {side!r}.")
    return audit_values_shown(action=event.action, values=getattr(event, side))
