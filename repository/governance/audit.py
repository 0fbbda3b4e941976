"""Reads of the audit trail: the filtered list for the audit pages and its CSV export, and
how an event's before and after read (:func:`audit_values_shown`).

Who may read which trail is decided in :mod:`repository.access`
(``accounts.roles.may(user, ProjectAction.READ_AUDIT_TRAIL, …)``); nothing here writes.
"""

import csv
import datetime
import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.models import Q, QuerySet
from django.utils import formats, timezone, translation
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.members import INVITER_MAY_NOT_INVITE, WITHDRAWAL_REASONS
from accounts.models import Invitation, Membership, Project
from core.spreadsheet import csv_cell
from core.vocabularies import DATA_POLICY_FREE, DATA_TYPES, LICENSES, RESEARCH_FIELDS
from dmp.models import DataManagementPlan, DmpRecord
from dmp.records_import import IMPORT_FORMATS
from repository.models import (
    AccessGrant,
    AccessRequest,
    AuditEvent,
    DataObject,
    DatasetVersion,
    TierChangeRequest,
)

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


# --- How before and after read ----------------------------------------------------------------

# The models whose fields an action's before/after name, searched in order (the first that
# has a field of that name labels it); every other action is about a data object.
_ACTION_MODELS: dict[str, tuple[type[models.Model], ...]] = {
    AuditEvent.Action.TIER_REQUESTED: (TierChangeRequest, DataObject),
    AuditEvent.Action.TIER_DECIDED: (TierChangeRequest, DataObject),
    AuditEvent.Action.GRANT_CREATED: (AccessGrant,),
    AuditEvent.Action.GRANT_REVOKED: (AccessGrant,),
    AuditEvent.Action.ACCESS_REQUEST_REJECTED: (AccessRequest,),
    AuditEvent.Action.PLAN_EDITED: (DataManagementPlan,),
    AuditEvent.Action.RECORD_CREATED: (DmpRecord,),
    AuditEvent.Action.RECORD_EDITED: (DmpRecord,),
    AuditEvent.Action.RECORDS_IMPORTED: (),
    AuditEvent.Action.VERSION_PUBLISHED: (DatasetVersion,),
    AuditEvent.Action.DOI_REGISTERED: (DatasetVersion,),
    AuditEvent.Action.DOI_FAILED: (DatasetVersion,),
    AuditEvent.Action.PROJECT_CREATED: (Project,),
    AuditEvent.Action.MEMBER_INVITED: (Invitation, Membership),
    AuditEvent.Action.INVITATION_ACCEPTED: (Invitation, Membership),
    AuditEvent.Action.INVITATION_REVOKED: (Invitation, Membership),
    AuditEvent.Action.MEMBER_ROLE_CHANGED: (Membership,),
    AuditEvent.Action.MEMBER_REMOVED: (Membership,),
}

# Keys that are no model field: ids of requests and grants, counts, derived facts.
_FACT_LABELS = {
    "request": _("request no."),
    "grant": _("grant no."),
    "grantee_id": _("grantee's user no."),
    "revoked": _("revoked"),
    "quarantined": _("quarantined"),
    "name": _("file name"),
    "creators": _("creators"),
    "format": _("format"),
    "created": _("records created"),
    "invitation": _("invitation no."),
    "address": _("address"),
    "reason": _("reason"),
    "version": _("version"),
    "files": _("files"),
    "url": _("URL"),
}
# Facts that name what the event is about read first; the others after the model's fields.
_LEADING_FACTS = ("request", "grant", "invitation", "name")
_FACT_CHOICES = {
    "format": dict(IMPORT_FORMATS),
    # Kura's reasons are codes; events written before kept the English words.
    "reason": {
        **WITHDRAWAL_REASONS,
        "the inviter may no longer invite to this role": WITHDRAWAL_REASONS[INVITER_MAY_NOT_INVITE],
    },
}
# Record items coded in a vocabulary read in the reader's language, as on the record form
# (the model's choices say "ja | en").
_RECORD_VOCABULARIES = {
    "data_research_field": RESEARCH_FIELDS,
    "data_type": DATA_TYPES,
    "data_policy_free": DATA_POLICY_FREE,
    "data_policy_license": LICENSES,
}

EMPTY = "—"


@functools.cache
def _fields_for(action: str) -> dict[str, models.Field]:
    fields: dict[str, models.Field] = {}
    for model in _ACTION_MODELS.get(action, (DataObject,)):
        for field in model._meta.concrete_fields:
            if field.name not in _FACT_LABELS:
                fields.setdefault(field.name, field)
    return fields


@functools.cache
def _order_for(action: str) -> dict[str, int]:
    others = [key for key in _FACT_LABELS if key not in _LEADING_FACTS]
    sequence = [*_LEADING_FACTS, *_fields_for(action), *others]
    return {key: position for position, key in enumerate(sequence)}


def _parsed(value: Any, field: models.Field) -> datetime.date | datetime.datetime | None:
    """The date or moment ``value`` (ISO 8601, as the trail keeps it) names, else None."""
    try:
        if isinstance(field, models.DateTimeField):
            moment = datetime.datetime.fromisoformat(str(value))
            return timezone.localtime(moment) if timezone.is_aware(moment) else moment
        if isinstance(field, models.DateField):
            return datetime.date.fromisoformat(str(value))
    except ValueError:
        return None
    return None


def _choices_for(action: str, key: str, field: models.Field | None) -> Mapping | None:
    """Code → label for the item ``key`` of ``action``'s events, or None if not coded."""
    if key in _FACT_CHOICES:
        return _FACT_CHOICES[key]
    if field is None or not field.choices:
        return None
    choices = dict(field.flatchoices)
    vocabulary = _RECORD_VOCABULARIES.get(key)
    if vocabulary is not None and DmpRecord in _ACTION_MODELS.get(action, ()):
        choices.update((term.code, term.label()) for term in vocabulary.terms)
    return choices


def _value_shown(value: Any, field: models.Field | None, choices: Mapping | None) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return gettext("Yes") if value else gettext("No")
    if isinstance(value, list):
        return "; ".join(_value_shown(item, field, choices) for item in value)
    if isinstance(value, dict):  # a creator: its non-empty items
        return ", ".join(str(item) for item in value.values() if item not in ("", None))
    if choices is not None and value in choices:
        return str(choices[value])
    if field is not None:
        when = _parsed(value, field)
        if isinstance(when, datetime.datetime):
            return formats.date_format(when, "Y-m-d H:i")
        if isinstance(when, datetime.date):
            return formats.date_format(when, "Y-m-d")
    return str(value)


def audit_values_shown(*, action: str, values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An event's ``before`` or ``after`` as people read it: (label, value) pairs, the facts
    that name what the event is about first (request, grant, file name), then the model's
    fields in their order, then other facts (counts, creators); each labelled with its name
    in the active language, coded values by their label, dates and moments as Kura shows
    them elsewhere (local time), yes/no for true/false and "—" for nothing. The stored
    values stay raw."""
    fields = _fields_for(action)
    order = _order_for(action)
    shown = []
    for key in sorted(values, key=lambda k: order.get(k, len(order))):
        field = fields.get(key)
        label = field.verbose_name if field is not None else _FACT_LABELS.get(key)
        value = _value_shown(values[key], field, _choices_for(action, key, field))
        # A key Kura has no name for (an older event's) shows as it is stored.
        shown.append((capfirst(str(label)) if label is not None else key, value))
    return shown


def audit_values_text(*, action: str, values: Mapping[str, Any]) -> str:
    """:func:`audit_values_shown` as lines of "Label: value" (a CSV cell)."""
    return "\n".join(
        f"{label}: {value}" for label, value in audit_values_shown(action=action, values=values)
    )


# --- CSV ----------------------------------------------------------------------------------------


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
        audit_values_text(action=event.action, values=event.before),
        audit_values_text(action=event.action, values=event.after),
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
    an export of the whole trail never holds it in memory. Before and after read as on the
    page, in the language active now (the lines are produced after the view returned)."""
    return _csv_lines(events, chunk_size=chunk_size, language=translation.get_language())


def _csv_lines(events: QuerySet, *, chunk_size: int, language: str | None) -> Iterator[bytes]:
    writer = csv.writer(_Echo())
    # UTF-8 with a BOM, so that spreadsheet programs read it as UTF-8.
    yield "\ufeff".encode() + writer.writerow(CSV_COLUMNS).encode("utf-8")
    for event in events.iterator(chunk_size=chunk_size):
        with translation.override(language):
            line = writer.writerow(_csv_row(event))
        yield line.encode("utf-8")
