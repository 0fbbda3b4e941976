"""Reads of the audit trail: the filtered list for the audit pages and its CSV export.

Who may read which trail is decided in :mod:`repository.access`
(:func:`~repository.access.can_view_audit_trail`); nothing here writes.
"""

import csv
import datetime
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import Project

from .models import AuditEvent

CSV_COLUMNS = (
    "occurred_at",
    "actor",
    "action",
    "project_id",
    "project",
    "data_object_id",
    "data_object",
    "record_id",
    "record",
    "before",
    "after",
    "ip_address",
    "detail",
)


@dataclass(frozen=True)
class AuditFilter:
    """What the audit pages filter on; every field is optional."""

    action: str = ""
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    actor: str = ""


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(
        datetime.datetime.combine(day, datetime.time.min), timezone.get_current_timezone()
    )


def audit_events(*, project: Project | None = None, filters: AuditFilter | None = None) -> QuerySet:
    """Events of ``project`` (or of every project), newest first, narrowed by ``filters``.

    Dates are whole days in Kura's time zone, both ends included. ``actor`` matches a user
    name exactly or a part of the person's name.
    """
    filters = filters or AuditFilter()
    events = AuditEvent.objects.select_related("actor", "project", "data_object", "record")
    if project is not None:
        events = events.filter(project=project)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.date_from:
        events = events.filter(occurred_at__gte=_start_of(filters.date_from))
    if filters.date_to:
        events = events.filter(
            occurred_at__lt=_start_of(filters.date_to + datetime.timedelta(days=1))
        )
    if filters.actor:
        term = filters.actor.strip()
        events = events.filter(
            Q(actor__username__iexact=term)
            | Q(actor__name_ja__icontains=term)
            | Q(actor__name_en__icontains=term)
        )
    return events.order_by("-occurred_at", "-pk")


# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, "CSV
# injection"); the trail holds text written by outsiders (an access request's purpose).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a leading ``'`` where it would start a
    formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _csv_row(event: AuditEvent) -> list[str]:
    cells = [
        timezone.localtime(event.occurred_at).isoformat(),
        event.actor.username if event.actor else "",
        event.action,
        str(event.project_id or ""),
        event.project.name if event.project else "",
        str(event.data_object_id or ""),
        event.data_object.original_filename if event.data_object else "",
        str(event.record_id or ""),
        event.record.data_number if event.record else "",
        json.dumps(event.before, ensure_ascii=False, sort_keys=True),
        json.dumps(event.after, ensure_ascii=False, sort_keys=True),
        event.ip_address or "",
        event.detail,
    ]
    return [csv_cell(cell) for cell in cells]


class _Echo:
    """A file-like object whose ``write`` hands the line back (for ``csv.writer``)."""

    def write(self, value: str) -> str:
        return value


def audit_csv_lines(events: QuerySet, *, chunk_size: int = 2000) -> Iterator[bytes]:
    """The events as CSV lines (a header first), read from the database in chunks so that
    an export of the whole trail never holds it in memory."""
    writer = csv.writer(_Echo())
    # UTF-8 with a BOM, so that spreadsheet programs read it as UTF-8.
    yield "\ufeff".encode() + writer.writerow(CSV_COLUMNS).encode("utf-8")
    for event in events.iterator(chunk_size=chunk_size):
        yield writer.writerow(_csv_row(event)).encode("utf-8")
