import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.utils import timezone

from repository.governance import notify, tiers
from repository.health import run_health_checks
from repository.models import DataObject
from repository.preservation import checksums, housekeeping, quarantine, queue
from repository.preservation.object_store import StoreError
from repository.preservation.queue import (
    checksum_send,
    doi_sync_send,
    preview_send,
    quarantine_reverify_send,
)
from repository.previews import services as previews
from repository.publishing import sync

logger = logging.getLogger(__name__)


@shared_task(name="kura.health_check", ignore_result=False)  # its answer is read
def health_check_task() -> dict:
    """Database and storage as seen from a worker (the broker is how the task got here)."""
    return run_health_checks(include_broker=False)


# Hashing has its own time limits: the global five minutes would kill the hash of a big
# file. The default (a day) is ample for 1 TB: at a conservative 100 MB/s, under 3 hours.
HASHING_LIMITS = {
    "time_limit": settings.KURA_CHECKSUM_TIME_LIMIT,
    "soft_time_limit": settings.KURA_CHECKSUM_TIME_LIMIT - 60,
}


def _retried_on(*errors: type[Exception], max_retries: int) -> dict:
    """Options of a task that is tried again after ``errors``, backing off up to ten
    minutes, and acknowledged only when it ends."""
    return {
        "bind": True,
        "acks_late": True,
        "autoretry_for": errors,
        "retry_backoff": True,
        "retry_backoff_max": 600,
        "max_retries": max_retries,
    }


@shared_task(name=queue.CHECKSUM, **_retried_on(StoreError, max_retries=8), **HASHING_LIMITS)
def checksum_task(self, object_id: int) -> dict:
    """Verify a freshly stored upload (queued on commit by the upload-complete service)."""
    try:
        data_object = checksums.data_object_checksum_verify(data_object_id=object_id)
    except DataObject.DoesNotExist:
        return {"object_id": object_id, "checksum_state": None}
    return {
        "object_id": object_id,
        "checksum_state": data_object.checksum_state,
        "sha256": data_object.sha256,
    }


@shared_task(name=queue.CHECKSUM_MANY, acks_late=True, **HASHING_LIMITS)
def checksum_many_task(object_ids: list[int]) -> dict:
    """Verify a group of small uploads of a batch completion (queued by the fan-out);
    those the group leaves (a read that failed, a stored file larger than a chunk) are
    queued one by one as ``kura.checksum``, whose retries back off."""
    alone = checksums.data_objects_checksum_verify(data_object_ids=object_ids)
    queue.checksums_queue_each(alone, grouped=False)
    return {"objects": len(object_ids), "alone": alone}


@shared_task(name=queue.CHECKSUMS_FAN_OUT, acks_late=True)
def checksums_fan_out_task(object_ids: list[int]) -> int:
    """Queue the checksum of each object of a batch completion: the web sends this one
    message per batch and the per-object messages are made here. Lost or run twice, no
    harm: the checksum runs once per object, and an object left pending is requeued."""
    return queue.checksums_queue_each(object_ids)


@shared_task(
    name=queue.PREVIEW,
    **_retried_on(StoreError, max_retries=8),
    time_limit=settings.KURA_PREVIEW_TIME_LIMIT,
    soft_time_limit=settings.KURA_PREVIEW_TIME_LIMIT - 60,
)
def preview_task(self, object_id: int) -> dict:
    """Make the preview of a verified object (queued on commit by its verification, on the
    preview queue, which a checksum never waits behind)."""
    data_object = previews.data_object_preview_make(data_object_id=object_id)
    return {
        "object_id": object_id,
        "preview_state": data_object.preview_state if data_object else None,
    }


@shared_task(
    name=queue.QUARANTINE_REVERIFY, **_retried_on(StoreError, max_retries=8), **HASHING_LIMITS
)
def quarantine_reverify_task(
    self, object_id: int, curator_id: int | None, comment: str, ip_address: str | None = None
) -> dict:
    """Read a quarantined object again and clear it if intact (queued by a curator)."""
    outcome = quarantine.data_object_quarantine_reverify(
        data_object_id=object_id,
        curator_id=curator_id,
        comment=comment,
        ip_address=ip_address,
        last_attempt=self.request.retries >= self.max_retries,
    )
    return {"object_id": object_id, "outcome": outcome.value}


@shared_task(name=queue.NOTIFY, **_retried_on(OSError, max_retries=5))
def notify_task(self, name: str, values: dict) -> None:
    """Compose and send a notice a service asked for (queued on commit); a mail server
    that fails (``OSError``) is tried again, then logged."""
    notify.notice_send(name, values, last_attempt=self.request.retries >= self.max_retries)


@shared_task(name="kura.fixity_sweep", acks_late=True, **HASHING_LIMITS)
def fixity_sweep_task() -> dict:
    """Re-verify the objects whose last fixity check is oldest (Celery beat, hourly)."""
    return checksums.fixity_sweep(now=timezone.now())


@shared_task(name="kura.abandoned_uploads_sweep", acks_late=True)
def abandoned_uploads_sweep_task() -> dict:
    """Abort multipart uploads nobody has touched for a day (Celery beat, hourly)."""
    return {"abandoned": housekeeping.uploads_abandon_idle(now=timezone.now())}


@shared_task(name="kura.checksum_requeue", acks_late=True)
def checksum_requeue_task() -> dict:
    """Queue the checksums the broker missed, and again those a lost worker or message
    left ``pending`` or ``verifying``, the curators' re-verifications of quarantined
    objects whose task was lost, and previews left ``pending`` (Celery beat, every minute;
    and when a worker starts)."""
    now = timezone.now()
    object_ids = housekeeping.checksums_stalled(now=now)
    for object_id in object_ids:
        checksum_send(object_id)
    reverifications = housekeeping.quarantine_reverifications_stalled(now=now)
    for stalled in reverifications:
        quarantine_reverify_send(
            stalled.object_id, stalled.curator_id, stalled.comment, stalled.ip_address
        )
    previews_waiting = previews.previews_stalled(now=now)
    for object_id in previews_waiting:
        preview_send(object_id)
    return {
        "queued": len(object_ids),
        "reverifications": len(reverifications),
        "previews": len(previews_waiting),
    }


@shared_task(name="kura.embargo_lift", acks_late=True)
def embargo_lift_task() -> dict:
    """Make public the embargoed objects whose available date has come (Celery beat)."""
    return {"lifted": tiers.embargoes_lift(today=timezone.localdate())}


@worker_ready.connect
def _requeue_when_a_worker_starts(sender=None, **kwargs) -> None:
    """A worker (re)started after a crash: what it was hashing is queued again at once,
    without waiting for beat."""
    try:
        checksum_requeue_task.delay()
    except Exception:  # noqa: BLE001 - beat's schedule does it anyway
        logger.warning("could not queue the checksum requeue at worker start", exc_info=True)


@shared_task(name="kura.storage_reconcile", acks_late=True)
def storage_reconcile_task() -> dict:
    """Delete the objects and abort the multipart uploads no row owns, older than the
    grace period (Celery beat, daily); report stored objects whose bytes are missing."""
    from repository.preservation.reconcile import storage_reconcile

    return storage_reconcile(now=timezone.now(), dry_run=False).as_dict()


@shared_task(name="kura.tally_check", acks_late=True)
def tally_check_task() -> dict:
    """Compare the dashboard's tallies with a recount of the objects and rebuild them if
    they differ (Celery beat, daily): a safety net, since the trigger keeps them exact."""
    from repository.tally import tally_check

    return tally_check()


@shared_task(name="kura.tally_fold", acks_late=True)
def tally_fold_task() -> dict:
    """Move the changes the objects' trigger appended into the dashboard's tallies (Celery
    beat, every minute; dashboards read unfolded changes too, so this only keeps them few)."""
    from repository.tally import tally_fold

    return {"folded": tally_fold()}


@shared_task(name="kura.usage_fold", acks_late=True)
def usage_fold_task() -> dict:
    """Fold the views and downloads captured on the request path into usage events
    (Celery beat, every minute; repository/usage/fold.py)."""
    from repository.usage.fold import usage_fold

    return {"events": usage_fold()}


class DoiCallFailed(Exception):
    """A DOI provider refused or was away; the outcome is on the version's page."""


@shared_task(name=queue.DOI_SYNC, **_retried_on(DoiCallFailed, max_retries=8))
def doi_sync_task(self, record_id: int) -> dict:
    """Bring the DOIs of a record's versions where they should be (queued on commit by
    publication and withdrawal); a failed call is tried again, backing off."""
    if not sync.doi_sync(record_id):
        raise DoiCallFailed(f"DOI calls of record {record_id} failed")
    return {"record_id": record_id}


@shared_task(name="kura.doi_requeue", acks_late=True)
def doi_requeue_task() -> dict:
    """Queue the DOI calls still waiting (retries run out, broker away at publication)."""
    records = sync.records_waiting()
    for record_id in records:
        doi_sync_send(record_id)
    return {"records": len(records)}
