"""Kura's rows and the store's bytes, made to agree again after a crash.

Two places can disagree. A completion whose database commit was lost (PostgreSQL killed
after the store assembled the object) leaves an ``uploading`` row whose multipart upload is
gone while the finished object sits under its key: :func:`completed_object_find` recognises
it, and :func:`upload_adopt` makes it the ``stored`` object it was meant to be. Bytes that no
row points at (an upload started while its row's transaction rolled back, an object left by
an old abort) are found by :func:`storage_reconcile`, which lists the store.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.machine_text import Message
from repository.models import DataObject, UploadSession
from repository.preservation.object_store import NoSuchObject, ObjectHead, StoreError, object_store
from repository.preservation.queue import checksum_send
from repository.previews.keys import owner_key

logger = logging.getLogger(__name__)

# Every object key Kura makes starts so (models.new_storage_key); nothing else is touched.
KEY_PREFIX = "objects/"
# Orphans younger than this are left alone: an upload start creates the multipart upload
# before its row commits, and a completion writes the object before its row says stored.
RECONCILE_GRACE = timedelta(hours=6)
# Statuses whose row owns the bytes under its key.
LIVE_STATUSES = (DataObject.Status.UPLOADING, DataObject.Status.STORED)


def multipart_etag(part_etags: list[str]) -> str:
    """The ETag S3 (AWS, and SeaweedFS 4.48 likewise) gives an object completed from parts
    with these ETags, in order: the MD5 of their binary MD5s, then ``-`` and their count."""
    digest = hashlib.md5(usedforsecurity=False)
    for etag in part_etags:
        digest.update(bytes.fromhex(etag.strip('"')))
    return f"{digest.hexdigest()}-{len(part_etags)}"


def _etag_of_bytes(store, key: str, part_size: int) -> str:
    """The multipart ETag of a stored object, from its bytes read in ``part_size`` parts
    (for a store that keeps no ETag: the embedded profile's files)."""
    etags = []
    digest = hashlib.md5(usedforsecurity=False)
    filled = 0
    for chunk in store.read_chunks(key, 1024 * 1024, 64 * 1024 * 1024):
        view = memoryview(chunk)
        while view:
            take = min(len(view), part_size - filled)
            digest.update(view[:take])
            filled += take
            view = view[take:]
            if filled == part_size:
                etags.append(digest.hexdigest())
                digest = hashlib.md5(usedforsecurity=False)
                filled = 0
    if filled:
        etags.append(digest.hexdigest())
    return multipart_etag(etags)


def completed_object_find(
    *, session: UploadSession, part_etags: list[str] | None = None
) -> ObjectHead | None:
    """The object the store completed for ``session`` although Kura never recorded it, or
    None if there is none (a missing key: the multipart upload expired or was aborted).

    It must have the declared size and, when ``part_etags`` (the uploader's claim, in part
    order) is given, the multipart ETag of exactly those parts; without a claim (the idle
    sweep) its ETag must at least say it was made of the session's number of parts. Raises
    :class:`ValueError` for an object that is there but is not that upload, and
    :class:`StoreError` when the store cannot be asked.
    """
    store = object_store()
    key = session.data_object.storage_key
    try:
        head = store.head(key)
    except NoSuchObject:
        return None
    if head.size != session.data_object.size:
        raise ValueError(
            _("The storage holds %(stored)s bytes, not %(size)s.")
            % {"stored": head.size, "size": session.data_object.size}
        )
    etag = head.etag
    if part_etags is not None:
        if not etag:
            etag = _etag_of_bytes(store, key, session.part_size)
        if etag != multipart_etag(part_etags):
            raise ValueError(_("The file the storage holds is not made of these parts."))
    elif etag and not etag.endswith(f"-{session.part_count}"):
        raise ValueError(_("The file the storage holds is not made of this upload's parts."))
    return head


def upload_adopt(*, session: UploadSession) -> DataObject:
    """Record as ``stored`` the object the store completed for ``session`` (its commit was
    lost), queue its checksum and ask for its reviewed tier, as a completion does. The
    caller holds the row locks and has checked the object (:func:`completed_object_find`).
    """
    from repository.governance.tiers import tier_request_create

    data_object = session.data_object
    now = timezone.now()
    data_object.status = DataObject.Status.STORED
    data_object.stored_at = now
    data_object.checksum_state = DataObject.ChecksumState.PENDING
    data_object.save(update_fields=["status", "stored_at", "checksum_state"])
    session.completed_at = now
    session.last_activity_at = now
    session.save(update_fields=["completed_at", "last_activity_at"])
    if session.requested_tier:
        tier_request_create(
            actor=session.created_by,
            objects=[data_object],
            tier=session.requested_tier,
            available_date=session.requested_available_date,
            reason=session.requested_reason or Message("tier.requested_at_upload"),
        )
    transaction.on_commit(lambda: checksum_send(data_object.pk), robust=True)
    logger.warning(
        "upload session %s: adopted object %s, completed in the store but never recorded",
        session.pk,
        data_object.pk,
    )
    return data_object


@dataclass
class ReconcileReport:
    """What a reconciliation found and did (or, in a dry run, would do)."""

    dry_run: bool
    objects_listed: int = 0
    uploads_listed: int = 0
    orphan_objects: list[str] = field(default_factory=list)
    orphan_uploads: list[tuple[str, str]] = field(default_factory=list)  # (key, upload id)
    young_orphans: int = 0  # within the grace period: left for a later run
    stored_missing: list[int] = field(default_factory=list)  # object ids; for fixity
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "dry_run": self.dry_run,
            "objects_listed": self.objects_listed,
            "uploads_listed": self.uploads_listed,
            "orphan_objects": len(self.orphan_objects),
            "orphan_uploads": len(self.orphan_uploads),
            "young_orphans": self.young_orphans,
            "stored_missing": len(self.stored_missing),
            "failures": len(self.failures),
        }


def _live_keys(keys: list[str]) -> set[str]:
    """The keys of ``keys`` a live row owns: its object's, or a derived file of it
    (a preview, ``previews/keys.py``)."""
    owners = {key: owner_key(key) for key in keys}
    live = set(
        DataObject.objects.filter(
            storage_key__in=set(owners.values()), status__in=LIVE_STATUSES
        ).values_list("storage_key", flat=True)
    )
    return {key for key, owner in owners.items() if owner in live}


def _live_upload_ids(upload_ids: list[str]) -> set[str]:
    return set(
        UploadSession.objects.filter(
            upload_id__in=upload_ids,
            completed_at__isnull=True,
            data_object__status=DataObject.Status.UPLOADING,
        ).values_list("upload_id", flat=True)
    )


def _batches(items, size: int = 500):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def storage_reconcile(
    *, now: datetime, dry_run: bool, grace: timedelta = RECONCILE_GRACE
) -> ReconcileReport:
    """List the store and remove what no row owns: objects under ``objects/`` whose key (or,
    for a preview's derived file, its object's key) no ``uploading`` or ``stored`` row has
    (no row at all, or an ``abandoned`` or ``deleted`` one, whose bytes must not outlive
    it), and multipart uploads no ``uploading`` row is waiting on. Only those older than
    ``grace``, so a start or completion in flight is never touched. ``stored`` rows whose
    key is missing are only reported: quarantining them belongs to the checksum and fixity
    paths, which read the bytes and tell the curators.

    Each orphan is checked against the database again just before it goes, so a row
    committed during the listing keeps its bytes. A dry run changes nothing.
    """
    store = object_store()
    report = ReconcileReport(dry_run=dry_run)
    cutoff = (now - grace).timestamp()
    listed_keys: set[str] = set()

    for batch in _batches(store.list_objects(KEY_PREFIX)):
        report.objects_listed += len(batch)
        listed_keys.update(item.key for item in batch)
        live = _live_keys([item.key for item in batch])
        for item in batch:
            if item.key in live:
                continue
            if item.modified > cutoff:
                report.young_orphans += 1
                continue
            if _live_keys([item.key]):
                continue  # committed meanwhile
            report.orphan_objects.append(item.key)
            if not dry_run:
                try:
                    store.delete(item.key)
                except StoreError as exc:
                    report.failures.append(f"object {item.key}: {exc}")

    for batch in _batches(store.list_uploads(KEY_PREFIX)):
        report.uploads_listed += len(batch)
        live = _live_upload_ids([item.upload_id for item in batch])
        for item in batch:
            if item.upload_id in live:
                continue
            if item.initiated > cutoff:
                report.young_orphans += 1
                continue
            if _live_upload_ids([item.upload_id]):
                continue
            report.orphan_uploads.append((item.key, item.upload_id))
            if not dry_run:
                try:
                    store.abort(item.key, item.upload_id)
                except StoreError as exc:
                    report.failures.append(f"upload {item.upload_id}: {exc}")

    stored = DataObject.objects.filter(status=DataObject.Status.STORED, stored_at__lt=now - grace)
    for object_id, key in stored.values_list("pk", "storage_key").iterator(chunk_size=2000):
        if key not in listed_keys:
            report.stored_missing.append(object_id)
    if report.stored_missing:
        logger.warning(
            "storage reconciliation: %s stored objects have no bytes (left to fixity): %s",
            len(report.stored_missing),
            report.stored_missing[:50],
        )
    return report
