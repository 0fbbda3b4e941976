"""Housekeeping that Celery beat runs: uploads that were started and never finished."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery

from repository.models import AuditEvent, DataObject, UploadSession
from repository.preservation.fixity import REVERIFY_PENDING, hashing_lock
from repository.preservation.object_store import StoreError, object_store

logger = logging.getLogger(__name__)


def uploads_abandon_idle(*, now: datetime) -> int:
    """Abort multipart uploads idle for more than ``KURA_UPLOAD_ABANDON_AFTER_HOURS`` and
    mark their objects ``abandoned``; answers how many were abandoned.

    The storage then frees the parts already uploaded. The UploadSession row stays as the
    record of what happened, with why (``failure_reason``: "No activity for N hours", which
    the uploader reads on "My uploads"). The object row is locked while its upload is aborted, so a
    completion arriving at the same moment either finishes first (and the object is no
    longer ``uploading``) or finds the upload gone. An upload the storage fails to abort is
    left for the next run; a second run changes nothing.

    An idle upload whose object the store already completed (a completion whose database
    commit was lost) is **adopted**, not deleted: only Kura completes a multipart upload, and
    only after checking every part's size and ETag against the store, so those bytes are
    exactly what the uploader sent and asked to keep; deleting them would lose a finished
    upload the uploader may believe failed only at the last step. The object must have the
    declared size and a multipart ETag of the session's part count; it becomes ``stored``
    with its checksum queued, so the worker verifies it (against the uploader's SHA-256
    when one was given) before anyone can rely on it. An object there that is not this
    upload is deleted with it. Abandoning also deletes the key, so an abandoned row never
    leaves bytes behind.
    """
    from repository.preservation.reconcile import completed_object_find, upload_adopt

    idle_since = now - timedelta(hours=settings.KURA_UPLOAD_ABANDON_AFTER_HOURS)
    sessions = UploadSession.objects.filter(
        completed_at__isnull=True,
        last_activity_at__lt=idle_since,
        data_object__status=DataObject.Status.UPLOADING,
    ).values_list("pk", "data_object_id", "upload_id")
    store = object_store()
    abandoned = 0
    for session_id, data_object_id, upload_id in sessions:
        with transaction.atomic():
            # The upload's row first, then the object's: the order upload_complete locks in.
            session = (
                UploadSession.objects.select_for_update()
                .filter(pk=session_id, completed_at__isnull=True, last_activity_at__lt=idle_since)
                .first()
            )
            data_object = (
                DataObject.objects.select_for_update()
                .filter(pk=data_object_id, status=DataObject.Status.UPLOADING)
                .first()
            )
            if data_object is None or session is None:
                continue
            session.data_object = data_object
            try:
                completed = completed_object_find(session=session)
            except ValueError as exc:
                logger.warning("upload session %s: deleting a stray object: %s", session_id, exc)
                completed = None
            except StoreError as exc:
                logger.warning("upload session %s not reconciled yet: %s", session_id, exc)
                continue
            if completed is not None:
                upload_adopt(session=session)
                continue
            try:
                store.abort(data_object.storage_key, upload_id)
                store.delete(data_object.storage_key)
            except StoreError as exc:
                logger.warning("upload session %s not aborted yet: %s", session_id, exc)
                continue
            data_object.status = DataObject.Status.ABANDONED
            data_object.save(update_fields=["status"])
            UploadSession.objects.filter(pk=session_id).update(
                failure_reason=UploadSession.failure_idle(settings.KURA_UPLOAD_ABANDON_AFTER_HOURS)
            )
            abandoned += 1
    return abandoned


def checksums_stalled(*, now: datetime) -> list[int]:
    """Stored objects whose first verification nobody is doing, oldest first:

    * the broker was away when the checksum was to be queued (``checksum_unsent``);
    * ``verifying`` while no worker holds its hashing lock: the worker died mid-hash (the
      lock goes with its database session or process), so its message may wait for the
      broker's visibility timeout, or be lost with a broker restarted empty;
    * ``pending`` well after it was stored (``KURA_CHECKSUM_REQUEUE_AFTER_MINUTES``): the
      message was lost, or the task gave up on a store that was down.

    Queuing any of them again is safe: the checksum service runs once per object.
    """
    stored = DataObject.objects.filter(status=DataObject.Status.STORED, quarantined_at__isnull=True)
    stored_before = now - timedelta(minutes=settings.KURA_CHECKSUM_REQUEUE_AFTER_MINUTES)
    candidates = list(
        stored.filter(
            Q(checksum_unsent=True)
            | Q(checksum_state=DataObject.ChecksumState.VERIFYING)
            | Q(checksum_state=DataObject.ChecksumState.PENDING, stored_at__lt=stored_before)
        )
        .filter(
            checksum_state__in=[
                DataObject.ChecksumState.PENDING,
                DataObject.ChecksumState.VERIFYING,
            ]
        )
        .order_by("stored_at")
        .values_list("pk", "checksum_state")[:1000]
    )
    stalled = []
    for object_id, state in candidates:
        if state == DataObject.ChecksumState.VERIFYING:
            with hashing_lock(object_id) as free:
                if not free:
                    continue  # a worker is hashing it: not lost, only long
        stalled.append(object_id)
    return stalled


@dataclass(frozen=True)
class StalledReverification:
    """A curator's re-verification whose task was lost: what to queue it with again."""

    object_id: int
    curator_id: int | None
    comment: str
    ip_address: str | None


def quarantine_reverifications_stalled(*, now: datetime) -> list[StalledReverification]:
    """Quarantined objects whose re-verification a curator asked for, still pending, that
    no worker is reading now, and either never queued (the broker was away:
    ``checksum_unsent``) or asked for over ``KURA_CHECKSUM_REQUEUE_AFTER_MINUTES`` ago (the
    task was lost, or its worker died). Queuing it again is safe: the task reads only a
    pending object, under the hashing lock."""
    asked_before = now - timedelta(minutes=settings.KURA_CHECKSUM_REQUEUE_AFTER_MINUTES)
    latest = AuditEvent.objects.filter(
        data_object=OuterRef("pk"), action=AuditEvent.Action.QUARANTINE_REVERIFY_REQUESTED
    ).order_by("-occurred_at", "-pk")
    # The request's curator, comment and address come with the object: one query.
    pending = (
        DataObject.objects.filter(**REVERIFY_PENDING)
        .annotate(
            asked_at=Subquery(latest.values("occurred_at")[:1]),
            curator_id=Subquery(latest.values("actor_id")[:1]),
            comment=Subquery(latest.values("detail")[:1]),
            asked_from=Subquery(latest.values("ip_address")[:1]),
        )
        .filter(Q(asked_at__lt=asked_before) | Q(checksum_unsent=True))
        .order_by("asked_at")
        .values_list("pk", "curator_id", "comment", "asked_from")[:100]
    )
    stalled = []
    for object_id, curator_id, comment, ip_address in pending:
        with hashing_lock(object_id) as free:
            if not free:
                continue  # a worker is reading it: not lost, only long
        stalled.append(StalledReverification(object_id, curator_id, comment, ip_address))
    return stalled
