"""Housekeeping that Celery beat runs: uploads that were started and never finished."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery

from .models import AuditEvent, DataObject, UploadSession
from .object_store import StoreError, object_store

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
    """
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
            data_object = (
                DataObject.objects.select_for_update()
                .filter(pk=data_object_id, status=DataObject.Status.UPLOADING)
                .first()
            )
            still_idle = UploadSession.objects.filter(
                pk=session_id, completed_at__isnull=True, last_activity_at__lt=idle_since
            ).exists()
            if data_object is None or not still_idle:
                continue
            try:
                store.abort(data_object.storage_key, upload_id)
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
    """Stored objects still ``pending`` well after they were stored: their checksum task
    was lost or gave up. Queuing them again is safe (the checksum service runs once)."""
    stored_before = now - timedelta(minutes=settings.KURA_CHECKSUM_REQUEUE_AFTER_MINUTES)
    return list(
        DataObject.objects.filter(
            status=DataObject.Status.STORED,
            checksum_state=DataObject.ChecksumState.PENDING,
            stored_at__lt=stored_before,
        )
        .order_by("stored_at")
        .values_list("pk", flat=True)[:1000]
    )


@dataclass(frozen=True)
class StalledReverification:
    """A curator's re-verification whose task was lost: what to queue it with again."""

    object_id: int
    curator_id: int | None
    comment: str
    ip_address: str | None


def quarantine_reverifications_stalled(*, now: datetime) -> list[StalledReverification]:
    """Quarantined objects whose re-verification a curator asked for well over
    ``KURA_CHECKSUM_REQUEUE_AFTER_MINUTES`` ago, that are still pending and that no worker
    is reading now: the task was lost (a broker restarted, say). Queuing it again is safe:
    the task reads only a pending object, under the hashing lock."""
    from .checksums import hashing_lock
    from .quarantine import REVERIFY_PENDING

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
        .filter(asked_at__lt=asked_before)
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
