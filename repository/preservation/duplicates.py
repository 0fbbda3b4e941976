"""Second copies of the same bytes: flagged when verified, kept or deleted by a steward.

When the checksum worker verifies an upload (:mod:`repository.preservation.checksums`), an earlier
stored, verified and unquarantined object with the same SHA-256 in the same DMP record
(or, for an object without a record, anywhere in its project) makes the new one a
duplicate: ``DataObject.duplicate_of`` points at the earlier one. The object page tells
the uploader and the stewards, who either keep both (:func:`data_object_duplicate_keep`,
audited) or delete the copy through the ordinary deletion
(:func:`repository.governance.deletion.data_object_delete`, which also clears the flag of copies of
a deleted object, so a remaining copy is never pointed at something gone).
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils.translation import gettext as _

from repository.access import Action, visible_to
from repository.models import AuditEvent, DataObject
from repository.services import audit_event_record


def duplicate_original_find(*, data_object: DataObject, sha256: str) -> DataObject | None:
    """The earliest other stored, verified, unquarantined object holding ``sha256`` in
    ``data_object``'s record (its project when it has no record) that the uploader may
    see, or ``None``: a duplicate flag never tells anyone of a file hidden from them."""
    if not sha256:
        return None
    if data_object.record_id is not None:
        same_place = Q(record_id=data_object.record_id)
    else:
        same_place = Q(project_id=data_object.project_id)
    return (
        visible_to(data_object.uploaded_by, Action.VIEW_METADATA)
        .filter(
            same_place,
            sha256=sha256,
            status=DataObject.Status.STORED,
            checksum_state=DataObject.ChecksumState.VERIFIED,
            quarantined_at__isnull=True,
        )
        .exclude(pk=data_object.pk)
        .order_by("stored_at", "pk")
        .first()
    )


def data_object_duplicate_keep(
    *, actor, data_object_id: int, ip_address: str | None = None
) -> DataObject:
    """Keep a flagged copy as a file of its own: clears ``duplicate_of`` and audits it.

    For those who may edit the object (its uploader, PM and data managers); ``Http404``
    for anyone else or for an object that is gone, ``ValidationError`` when the object is
    not (or no longer) flagged, so a second request changes nothing.
    """
    with transaction.atomic():
        try:
            data_object = (
                visible_to(actor, Action.EDIT)
                .select_for_update(of=("self",))
                .get(pk=data_object_id)
            )
        except (DataObject.DoesNotExist, ValueError, TypeError) as exc:
            raise Http404("No such data object.") from exc
        original_id = data_object.duplicate_of_id
        if original_id is None:
            raise ValidationError(_("This file is not marked as a duplicate."))
        data_object.duplicate_of = None
        data_object.save(update_fields=["duplicate_of"])
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.DUPLICATE_KEPT,
            data_object=data_object,
            ip_address=ip_address,
            before={"duplicate_of": original_id, "sha256": data_object.sha256},
            after={"duplicate_of": None},
        )
    return data_object
