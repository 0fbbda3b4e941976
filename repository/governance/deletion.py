"""Deleting a data object: its bytes leave storage, its row stays as a marker.

The row is kept with ``status=deleted`` rather than removed, so the audit trail (whose
events point at the object) keeps its link and the checksums of what was deleted;
:mod:`repository.access` hides deleted objects from every list, page and download.
"""

from django.db import transaction
from django.http import Http404

from repository.access import Action, visible_to
from repository.governance.tiers import data_object_withdraw_from_requests
from repository.models import AuditEvent, DataObject
from repository.preservation.object_store import object_store
from repository.previews.keys import derived_prefix
from repository.services import audit_event_record


def data_object_delete(*, actor, data_object_id, ip_address: str | None = None) -> DataObject:
    """Delete the object ``data_object_id`` for ``actor`` (its uploader, PM or data manager).

    Under a row lock: removes the bytes (and the derived files of its preview) from
    storage, marks the object deleted, audits ``deleted``
    with what it was (name, size, SHA-256, tier) and takes it out of the pending tier change
    requests that cover it
    (:func:`~repository.governance.tiers.data_object_withdraw_from_requests`). ``Http404`` if
    ``actor`` may not delete it or it is already gone; a ``StoreError`` from the storage rolls
    everything back, so nothing is marked deleted while its bytes are still there.
    """
    with transaction.atomic():
        try:
            data_object = (
                visible_to(actor, Action.DELETE)
                .select_for_update(of=("self",))
                .get(pk=data_object_id)
            )
        except (DataObject.DoesNotExist, ValueError, TypeError) as exc:
            raise Http404("No such data object.") from exc
        before = {
            "name": data_object.original_filename,
            "size": data_object.size,
            "sha256": data_object.sha256,
            "tier": data_object.tier,
            "status": data_object.status,
            "storage_key": data_object.storage_key,
        }
        # Deleting a missing key succeeds on S3 and on disk, so a retry after a failed
        # commit is safe. Its derived files (previews) go with it.
        store = object_store()
        store.delete(data_object.storage_key)
        store.delete_prefix(derived_prefix(data_object.storage_key))
        data_object.status = DataObject.Status.DELETED
        data_object.save(update_fields=["status"])
        # Its copies are no longer duplicates of anything kept (repository.preservation.duplicates).
        DataObject.objects.filter(duplicate_of=data_object).update(duplicate_of=None)
        data_object_withdraw_from_requests(
            actor=actor, data_object=data_object, ip_address=ip_address
        )
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.DELETED,
            data_object=data_object,
            ip_address=ip_address,
            before=before,
            after={"status": DataObject.Status.DELETED},
        )
    return data_object
