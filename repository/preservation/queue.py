"""Handing work to the Celery workers, by task name.

The services that queue work (an upload's completion, a curator's re-verification, the
storage reconciler) sit below the task module (``repository/tasks.py``), which imports
them to run the work; they queue by the task's name (:data:`CHECKSUM`,
:data:`CHECKSUMS_FAN_OUT`, :data:`CHECKSUM_MANY`, :data:`QUARANTINE_REVERIFY`,
:data:`NOTIFY`, :data:`DOI_SYNC`, :data:`PREVIEW`) and never import it. The task
module is loaded with the app (``RepositoryConfig.ready``), so every process knows the
tasks by name.

If the broker is away, a checksum or re-verification is noted on the object
(``checksum_unsent``) for beat's requeue (every minute) to send once the broker is back,
which clears the note; a notice is sent from the web process instead
(``governance/notify.py``); a DOI sync is found again by the hourly DOI requeue from the
versions' states (``publishing/sync.py``); a preview stays ``pending`` for the requeue to
find (``previews/services.py``, ``previews_stalled``).
"""

import logging

from celery import current_app
from django.conf import settings

from repository.models import DataObject

logger = logging.getLogger(__name__)

CHECKSUM = "kura.checksum"
CHECKSUMS_FAN_OUT = "kura.checksums_fan_out"
CHECKSUM_MANY = "kura.checksum_many"
QUARANTINE_REVERIFY = "kura.quarantine_reverify"
NOTIFY = "kura.notify"
DOI_SYNC = "kura.doi_sync"
PREVIEW = "kura.preview"


def task_by_name(name: str):
    """The registered task ``name`` (one of the names above)."""
    return current_app.tasks[name]


def _send(task_name: str, object_id: int, *args, noted_unsent: bool = True) -> bool:
    """Queue ``task_name`` for an object; if the broker is away, note it on the object
    instead. Never raises: called after a commit, whose success must stand.
    ``noted_unsent=False``: the object cannot carry the note yet (just stored)."""
    try:
        task_by_name(task_name).delay(object_id, *args)
    except Exception:  # noqa: BLE001 - any broker failure: keep the work in the database
        logger.warning(
            "%s of object %s not queued; kept for the requeue", task_name, object_id, exc_info=True
        )
        DataObject.objects.filter(pk=object_id).update(checksum_unsent=True)
        return False
    if noted_unsent:
        DataObject.objects.filter(pk=object_id, checksum_unsent=True).update(checksum_unsent=False)
    return True


def checksum_send(object_id: int, *, noted_unsent: bool = True) -> bool:
    """Queue the first verification of a stored object, or keep it for the requeue."""
    return _send(CHECKSUM, object_id, noted_unsent=noted_unsent)


def checksums_send(object_ids: list[int]) -> bool:
    """Queue the first verification of each of ``object_ids`` (objects just stored, as by a
    batch completion) as one message, :data:`CHECKSUMS_FAN_OUT`, whose task queues each
    object's :data:`CHECKSUM` on a worker (:func:`checksums_queue_each`): the web makes one
    message per batch, not one per file. One object goes as :func:`checksum_send` does. If
    the broker is away, every object is noted unsent, in one statement, for the requeue;
    never raises."""
    if len(object_ids) == 1:
        return _send(CHECKSUM, object_ids[0], noted_unsent=False)
    if not object_ids:
        return True
    try:
        task_by_name(CHECKSUMS_FAN_OUT).delay(list(object_ids))
    except Exception:  # noqa: BLE001 - any broker failure: keep the work in the database
        logger.warning(
            "%s of %s objects not queued; kept for the requeue",
            CHECKSUM,
            len(object_ids),
            exc_info=True,
        )
        DataObject.objects.filter(pk__in=object_ids).update(checksum_unsent=True)
        return False
    return True


def checksums_queue_each(object_ids: list[int], *, grouped: bool = True) -> int:
    """Queue the verification of each of ``object_ids`` through one producer (its
    connection taken from the pool once): with ``grouped``, the objects of at most one
    chunk (``KURA_CHECKSUM_CHUNK_SIZE``) as :data:`CHECKSUM_MANY` messages of up to
    ``KURA_CHECKSUM_GROUP_SIZE`` objects, the others (and all without ``grouped``) as one
    :data:`CHECKSUM` each. The objects not queued when the broker fails are noted unsent
    for the requeue. Answers how many objects were queued; never raises."""
    messages: list[tuple[str, list[int]]] = []
    if grouped and len(object_ids) > 1:
        small = settings.KURA_CHECKSUM_CHUNK_SIZE
        sizes = dict(DataObject.objects.filter(pk__in=object_ids).values_list("pk", "size"))
        grouped_ids = [pk for pk in object_ids if 0 < sizes.get(pk, 0) <= small]
        step = max(settings.KURA_CHECKSUM_GROUP_SIZE, 1)
        messages += [
            (CHECKSUM_MANY, grouped_ids[n : n + step]) for n in range(0, len(grouped_ids), step)
        ]
        in_groups = set(grouped_ids)
        object_ids = [pk for pk in object_ids if pk not in in_groups]
    messages += [(CHECKSUM, [pk]) for pk in object_ids]
    sent: list[int] = []
    try:
        with current_app.producer_or_acquire() as producer:
            for name, ids in messages:
                arguments = (ids,) if name == CHECKSUM_MANY else (ids[0],)
                task_by_name(name).apply_async(arguments, producer=producer)
                sent += ids
    except Exception:  # noqa: BLE001 - any broker failure: keep the work in the database
        done = set(sent)
        unsent = [pk for _, ids in messages for pk in ids if pk not in done]
        logger.warning(
            "%s of %s objects not queued; kept for the requeue",
            CHECKSUM,
            len(unsent),
            exc_info=True,
        )
        DataObject.objects.filter(pk__in=unsent).update(checksum_unsent=True)
    return len(sent)


def quarantine_reverify_send(
    object_id: int, curator_id: int | None, comment: str, ip_address: str | None = None
) -> bool:
    """Queue a curator's re-verification, or keep it for the requeue."""
    return _send(QUARANTINE_REVERIFY, object_id, curator_id, comment, ip_address)


def doi_sync_send(record_id: int) -> bool:
    """Queue the DOI calls of a record's versions (after a publication or withdrawal).
    Never raises: with the broker away the DOIs stay ``pending`` on the page and the
    hourly ``kura.doi_requeue`` sends them."""
    try:
        task_by_name(DOI_SYNC).delay(record_id)
    except Exception:  # noqa: BLE001 - any broker failure: the state stays in the database
        logger.warning("DOI calls of record %s not queued", record_id, exc_info=True)
        return False
    return True


def preview_send(object_id: int) -> bool:
    """Queue the preview of an object just verified (on the preview queue, so that it never
    delays a checksum). Never raises: with the broker away the preview stays ``pending``
    and beat's requeue sends it later."""
    try:
        task_by_name(PREVIEW).delay(object_id)
    except Exception:  # noqa: BLE001 - any broker failure: the state stays in the database
        logger.warning("preview of object %s not queued; kept for the requeue", object_id)
        return False
    return True
