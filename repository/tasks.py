from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import checksums, housekeeping, quarantine, tiers
from .health import run_health_checks
from .models import DataObject
from .object_store import StoreError


@shared_task(name="kura.health_check")
def health_check_task() -> dict:
    """Database and storage as seen from a worker (the broker is how the task got here)."""
    return run_health_checks(include_broker=False)


# Hashing has its own time limits: the global five minutes would kill the hash of a big
# file. The default (a day) is ample for 1 TB: at a conservative 100 MB/s, under 3 hours.
HASHING_LIMITS = {
    "time_limit": settings.KURA_CHECKSUM_TIME_LIMIT,
    "soft_time_limit": settings.KURA_CHECKSUM_TIME_LIMIT - 60,
}


@shared_task(
    name="kura.checksum",
    bind=True,
    acks_late=True,
    autoretry_for=(StoreError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    **HASHING_LIMITS,
)
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


@shared_task(
    name="kura.quarantine_reverify",
    bind=True,
    acks_late=True,
    autoretry_for=(StoreError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
    **HASHING_LIMITS,
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
    """Queue again the checksums of stored objects left ``pending``, and the curators'
    re-verifications of quarantined objects whose task was lost (Celery beat)."""
    now = timezone.now()
    object_ids = housekeeping.checksums_stalled(now=now)
    for object_id in object_ids:
        checksum_task.delay(object_id)
    reverifications = housekeeping.quarantine_reverifications_stalled(now=now)
    for stalled in reverifications:
        quarantine_reverify_task.delay(
            stalled.object_id, stalled.curator_id, stalled.comment, stalled.ip_address
        )
    return {"queued": len(object_ids), "reverifications": len(reverifications)}


@shared_task(name="kura.embargo_lift", acks_late=True)
def embargo_lift_task() -> dict:
    """Make public the embargoed objects whose available date has come (Celery beat)."""
    return {"lifted": tiers.embargoes_lift(today=timezone.localdate())}
