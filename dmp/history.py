"""Record history: every change to a DMP record keeps a :class:`DmpRecordRevision`.

Whatever changes a record — :func:`dmp.services.record_create` and
:func:`~dmp.services.record_update` (the forms and the records API), the imports
(:func:`dmp.records_import.records_import`), the admin and a withdrawal — calls
:func:`record_revision_write` (or :func:`record_revisions_create` for new records in bulk)
in its own transaction, so a change rolled back leaves no revision, and a change saved
always has one. A revision keeps the whole record after the change and the fields that
changed, before and after.
"""

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db.models import Max

from .models import CREATOR_FIELDS, RECORD_FIELDS, DmpRecord, DmpRecordRevision, RecordCreator

EMPTY = ("", None, False, [])


def item_raw(value: Any) -> Any:
    """``value`` as the history and the audit trail keep it: JSON, dates in ISO 8601."""
    if isinstance(value, datetime.date):  # and datetime
        return value.isoformat()
    return value


def _creator_items(creator: RecordCreator | Mapping[str, Any]) -> dict[str, str]:
    get = creator.get if isinstance(creator, Mapping) else lambda n: getattr(creator, n)
    return {name: get(name) for name in CREATOR_FIELDS if get(name)}


def record_items(
    record: DmpRecord,
    *,
    creators: bool = True,
    creator_rows: Sequence[RecordCreator] | None = None,
) -> dict[str, Any]:
    """The record's items (and, with ``creators``, its creators in citation order) as
    JSON. ``creator_rows`` gives the creators when they are not saved yet (an import)."""
    items = {name: item_raw(getattr(record, name)) for name in RECORD_FIELDS}
    if creators:
        if creator_rows is None:
            creator_rows = record.creators.order_by("position", "pk").values(*CREATOR_FIELDS)
        items["creators"] = [_creator_items(row) for row in creator_rows]
    return items


def items_changes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> dict:
    """``{name: [before, after]}`` of the items that differ; without ``before`` (a new
    record), the items it was given."""
    if before is None:
        return {name: [None, value] for name, value in after.items() if value not in EMPTY}
    return {
        name: [before.get(name), value]
        for name, value in after.items()
        if before.get(name) != value
    }


def record_revision_write(
    *,
    record: DmpRecord,
    actor,
    kind: str,
    before: Mapping[str, Any] | None,
    detail: str = "",
) -> DmpRecordRevision | None:
    """Keep the record's state after a change: its items, and what changed since
    ``before`` (the caller's :func:`record_items` from before the change; ``None`` for a
    new record). A change that changed nothing keeps nothing. The caller holds the
    record's row lock (or has just created it), so revision numbers follow each other."""
    after = record_items(record)
    changes = items_changes(before, after)
    if before is not None and not changes:
        return None
    latest = record.revisions.aggregate(n=Max("number"))["n"] or 0
    return DmpRecordRevision.objects.create(
        record=record,
        number=latest + 1,
        kind=kind,
        detail=detail[:64],
        items=after,
        changes=changes,
        saved_by=actor if getattr(actor, "is_authenticated", False) else None,
    )


def record_revisions_create(
    *,
    records: Iterable[tuple[DmpRecord, Sequence[RecordCreator]]],
    actor,
    kind: str,
    detail: str = "",
) -> list[DmpRecordRevision]:
    """The first revision of each new record (saved, with its creators), in one insert."""
    saved_by = actor if getattr(actor, "is_authenticated", False) else None
    revisions = []
    for record, creators in records:
        items = record_items(record, creator_rows=creators)
        revisions.append(
            DmpRecordRevision(
                record=record,
                number=1,
                kind=kind,
                detail=detail[:64],
                items=items,
                changes=items_changes(None, items),
                saved_by=saved_by,
            )
        )
    return DmpRecordRevision.objects.bulk_create(revisions)
