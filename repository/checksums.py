"""Checksums and fixity of stored objects.

One streamed pass over the stored bytes (ranged reads in fixed-size chunks) computes SHA-256
and MD5 together, counts the bytes and feeds the technical-metadata extractor; memory stays
at a few chunks whatever the size of the file. Two consumers use that pass:

* :func:`data_object_checksum_verify` — once, right after an upload is stored:
  ``pending → verifying → verified | failed`` (a verified upload whose bytes its record
  already holds is flagged as a duplicate, :mod:`repository.duplicates`);
* :func:`data_object_fixity_check` — again and again (:func:`fixity_sweep`, Celery beat),
  comparing with what was recorded the first time.

Any disagreement quarantines the object (:mod:`repository.quarantine`): nobody can download
it, the audit trail records it, and the uploader and the project's PMs get an e-mail.
"""

import fcntl
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from . import techmeta
from .duplicates import duplicate_original_find
from .models import DataObject, FixityCheck
from .object_store import NoSuchObject, StoreError, object_store
from .quarantine import Reason, data_object_quarantine

logger = logging.getLogger(__name__)

# Chunks read ahead of the hashing, and chunks handed to the hashing threads but not yet
# hashed: with the chunk in hand and the one being hashed, about four chunks in memory.
READ_AHEAD = 1
HASH_BACKLOG = 1
# checksum_progress is written when it has grown by a percent and this many seconds passed.
PROGRESS_INTERVAL = 2.0
# Only this much of the first chunk is kept for extractors that read a header.
HEAD_BYTES = 1024**2
# A sweep starts no new check after this long, so hourly sweeps rarely overlap (and when
# they do, the hashing lock keeps them off each other's objects).
FIXITY_SWEEP_BUDGET = timedelta(minutes=50)


# --- The streamed pass -------------------------------------------------------------------


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    md5: str


def stream_digests(
    chunks: Iterable[bytes], *, on_chunk: Callable[[bytes, int], None] | None = None
) -> Digests:
    """SHA-256, MD5 and length of the concatenated ``chunks``, in one pass.

    The two digests are computed in two threads (hashlib releases the GIL on large
    buffers) while a third reads ahead, so the pass runs at the speed of the slower
    digest rather than the sum of both. ``on_chunk(chunk, bytes_so_far)`` is called in
    the caller's thread for every chunk, in order.
    """
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    iterator = iter(chunks)
    reader = ThreadPoolExecutor(1, thread_name_prefix="kura-read")
    hashers = [ThreadPoolExecutor(1, thread_name_prefix=f"kura-{n}") for n in ("sha", "md5")]
    size = 0
    try:
        ahead = deque(reader.submit(next, iterator, None) for _ in range(READ_AHEAD))
        backlog: deque = deque()
        while (chunk := ahead.popleft().result()) is not None:
            ahead.append(reader.submit(next, iterator, None))
            if not chunk:
                continue
            backlog.append([hashers[0].submit(sha256.update, chunk)])
            backlog[-1].append(hashers[1].submit(md5.update, chunk))
            size += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk, size)
            while len(backlog) > HASH_BACKLOG:
                for future in backlog.popleft():
                    future.result()
        for futures in backlog:
            for future in futures:
                future.result()
    finally:
        for pool in (reader, *hashers):
            pool.shutdown(wait=True, cancel_futures=True)
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # let a generator release its file or HTTP response now
    return Digests(size=size, sha256=sha256.hexdigest(), md5=md5.hexdigest())


@dataclass(frozen=True)
class ObjectScan:
    digests: Digests
    technical: techmeta.TechnicalMetadata = field(default_factory=techmeta.TechnicalMetadata)


def object_scan(
    *,
    storage_key: str,
    filename: str = "",
    extract_metadata: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    expected_size: int | None = None,
) -> ObjectScan:
    """Stream the stored object once: digests, size and (optionally) technical metadata.

    ``on_progress(bytes_so_far, total_bytes)`` is called after every chunk. Storage
    failures raise :class:`~repository.object_store.StoreError`. ``expected_size`` (the
    declared size) lets a small object be read in one request; the digests and size are
    always those of the bytes actually stored.
    """
    store = object_store()
    # An object of one chunk (KURA_CHECKSUM_CHUNK_SIZE) is read with one GET and hashed in
    # this thread: for it, starting the reading and hashing threads (a reading thread opens
    # an S3 client of its own) and a streamed read's two HEADs cost more than its hash.
    small = settings.KURA_CHECKSUM_CHUNK_SIZE
    if expected_size and expected_size <= small:
        try:
            # One byte more than a chunk tells a stored file larger than declared.
            data = store.read_range(storage_key, 0, small + 1)
        except NoSuchObject:
            raise
        except StoreError:
            data = None  # e.g. an empty stored file refuses a range: the streamed read
        if data is not None and len(data) <= small:
            return _small_object_scan(
                data, storage_key, filename, extract_metadata=extract_metadata, store=store
            )
    total = store.size(storage_key)
    extractor: techmeta.Extractor | None = None
    first = True

    def on_chunk(chunk: bytes, done: int) -> None:
        nonlocal extractor, first
        if extract_metadata:
            if first:
                extractor = techmeta.extractor_for(
                    head=chunk[:HEAD_BYTES],
                    filename=filename,
                    read_range=partial(store.read_range, storage_key),
                    size=total,
                )
                first = False
            if extractor is not None:
                extractor.feed(chunk)
        if on_progress is not None:
            on_progress(done, total)

    chunks = store.read_chunks(
        storage_key, settings.KURA_CHECKSUM_CHUNK_SIZE, settings.KURA_CHECKSUM_RANGE_SIZE
    )
    digests = stream_digests(chunks, on_chunk=on_chunk)
    if extractor is None:
        return ObjectScan(digests)
    return ObjectScan(digests, techmeta.metadata_finish(extractor))


def _small_object_scan(
    data: bytes, storage_key: str, filename: str, *, extract_metadata: bool, store
) -> ObjectScan:
    digests = Digests(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
    )
    if not (extract_metadata and data):
        return ObjectScan(digests)
    extractor = techmeta.extractor_for(
        head=data[:HEAD_BYTES],
        filename=filename,
        read_range=partial(store.read_range, storage_key),
        size=len(data),
    )
    if extractor is None:
        return ObjectScan(digests)
    extractor.feed(data)  # one chunk, as the streamed read would give it
    return ObjectScan(digests, techmeta.metadata_finish(extractor))


# --- One worker per object ---------------------------------------------------------------

LOCK_NAMESPACE = 0x4B555241  # "KURA"


@contextmanager
def hashing_lock(data_object_id: int) -> Iterator[bool]:
    """Whether this worker may hash the object now; held until the block ends.

    PostgreSQL: a session advisory lock. SQLite (the embedded profile, one host): a file
    lock. The database or the OS releases either when a worker dies, so a crashed run never
    leaves an object locked, and a state of "verifying" found under the lock is a leftover.
    """
    if connection.vendor == "postgresql":
        key = (LOCK_NAMESPACE << 32) | (data_object_id & 0xFFFFFFFF)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = cursor.fetchone()[0]
        try:
            yield acquired
        finally:
            if acquired:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
        return
    path = Path(settings.VAR_DIR) / "locks" / f"object-{data_object_id}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class ProgressWriter:
    """Writes ``checksum_progress`` when it has grown by a percent and a few seconds passed,
    so a million chunks cost about a hundred small updates, not a million."""

    def __init__(self, data_object_id: int):
        self._pk = data_object_id
        self._percent = 0
        self._written_at = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        percent = min(done * 100 // total, 99) if total else 0
        now = time.monotonic()
        if percent > self._percent and now - self._written_at >= PROGRESS_INTERVAL:
            DataObject.objects.filter(
                pk=self._pk, checksum_state=DataObject.ChecksumState.VERIFYING
            ).update(checksum_progress=percent)
            self._percent, self._written_at = percent, now


# --- Verification after upload -----------------------------------------------------------

# Reasons are stored in English and translated when they are e-mailed.
REASON_SIZE = gettext_noop(
    "Size mismatch: %(stored)s bytes are stored, the upload declared %(expected)s."
)
REASON_CLIENT_SHA256 = gettext_noop(
    "SHA-256 mismatch: the stored bytes do not match the SHA-256 given by the uploader."
)
REASON_FIXITY = gettext_noop(
    "Fixity check failed: the stored bytes no longer match the checksums recorded on %(date)s."
)
REASON_MISSING = gettext_noop("Fixity check failed: the stored file is missing.")


def data_object_checksum_verify(*, data_object_id: int) -> DataObject:
    """Verify a freshly stored upload from its stored bytes.

    Streams the object once (:func:`object_scan`): SHA-256, MD5, size and technical
    metadata. The state goes ``pending → verifying → verified``, or ``failed`` when the
    size differs from the declared one or the uploader's SHA-256 differs from the computed
    one; a failure quarantines the object. Either way the digests, an initial FixityCheck
    and ``last_fixity_at`` are recorded.

    Does nothing for an object that is not stored, is already verified or failed, or that
    another worker is hashing right now: a second run changes nothing. A storage error
    puts the state back to ``pending`` and propagates, so the task can retry.
    """
    with hashing_lock(data_object_id) as locked:
        data_object = DataObject.objects.get(pk=data_object_id)
        if not locked:
            return data_object
        # A quarantined object is "verifying" only while a curator's re-verification runs
        # (repository.quarantine), which must not be taken for a first verification: that
        # would record the digests of bytes nobody trusts.
        claimed = (
            DataObject.objects.filter(
                pk=data_object_id,
                status=DataObject.Status.STORED,
                quarantined_at__isnull=True,
                checksum_state__in=[
                    DataObject.ChecksumState.PENDING,
                    DataObject.ChecksumState.VERIFYING,
                ],
            )
            .scoped_as(data_object)
            .update(checksum_state=DataObject.ChecksumState.VERIFYING, checksum_progress=0)
        )
        if not claimed:
            return data_object
        try:
            scan = object_scan(
                storage_key=data_object.storage_key,
                filename=data_object.original_filename,
                on_progress=ProgressWriter(data_object_id),
                expected_size=data_object.size,
            )
        except NoSuchObject as exc:
            if not _missing_noted(data_object_id):
                _back_to_pending(data_object_id)
                raise
            logger.error(
                "object %s is missing before its first verification: %s", data_object_id, exc
            )
            fixity_record(
                data_object, None, [Reason(REASON_MISSING)], detail="Verification after upload."
            )
        except BaseException:
            _back_to_pending(data_object_id)
            raise
        else:
            _verification_record(data_object, scan)
    data_object.refresh_from_db()
    return data_object


def _back_to_pending(data_object_id: int) -> None:
    DataObject.objects.filter(
        pk=data_object_id, checksum_state=DataObject.ChecksumState.VERIFYING
    ).update(checksum_state=DataObject.ChecksumState.PENDING, checksum_progress=0)


def _missing_noted(data_object_id: int) -> bool:
    """Count one read that found no stored file; true once there have been
    ``KURA_CHECKSUM_MISSING_TRIES`` (the task's retries spread them over minutes, so a
    store that lists a new object late is not taken for a lost file)."""
    DataObject.objects.filter(pk=data_object_id).update(
        checksum_missing_tries=F("checksum_missing_tries") + 1
    )
    tries = DataObject.objects.values_list("checksum_missing_tries", flat=True).get(
        pk=data_object_id
    )
    return tries >= settings.KURA_CHECKSUM_MISSING_TRIES


def _verification_problems(data_object: DataObject, digests: Digests) -> list[Reason]:
    problems = []
    if digests.size != data_object.size:
        problems.append(Reason(REASON_SIZE, {"stored": digests.size, "expected": data_object.size}))
    client_sha256 = data_object.client_sha256.strip().lower()
    if client_sha256 and client_sha256 != digests.sha256:
        problems.append(Reason(REASON_CLIENT_SHA256))
    return problems


def _verification_record(data_object: DataObject, scan: ObjectScan) -> None:
    digests, technical = scan.digests, scan.technical
    problems = _verification_problems(data_object, digests)
    now = timezone.now()
    updates = {
        "checksum_state": (
            DataObject.ChecksumState.FAILED if problems else DataObject.ChecksumState.VERIFIED
        ),
        "checksum_progress": 100,
        "sha256": digests.sha256,
        "md5": digests.md5,
        "technical_metadata": technical.fields,
        "last_fixity_at": now,
    }
    if technical.contains_personal_data:
        updates["contains_personal_data"] = True  # never cleared here: people may know more
    with transaction.atomic():
        # The same bytes already in the record: the uploader decides (repository.duplicates).
        # Most uploads have no twin: one plain query in the project says so, before the
        # full lookup that applies the uploader's access.
        if (
            not problems
            and DataObject.objects.filter(project_id=data_object.project_id, sha256=digests.sha256)
            .exclude(pk=data_object.pk)
            .exists()
        ):
            updates["duplicate_of"] = duplicate_original_find(
                data_object=data_object, sha256=digests.sha256
            )
        updated = (
            DataObject.objects.filter(
                pk=data_object.pk, checksum_state=DataObject.ChecksumState.VERIFYING
            )
            .scoped_as(data_object)
            .update(**updates)
        )
        if not updated:
            return
        FixityCheck.objects.create(
            data_object=data_object,
            checked_at=now,
            outcome=FixityCheck.Outcome.MISMATCH if problems else FixityCheck.Outcome.MATCH,
            sha256=digests.sha256,
            md5=digests.md5,
            size=digests.size,
            detail=" ".join(map(str, problems)) or "Verified after upload.",
        )
        if problems:
            data_object_quarantine(data_object=data_object, reasons=problems, now=now)


# --- Fixity ------------------------------------------------------------------------------


def fixity_due(*, now: datetime, limit: int) -> list[int]:
    """Ids of verified, stored, unquarantined objects whose last check is older than
    ``KURA_FIXITY_INTERVAL_DAYS`` (or never ran), the longest-unchecked first."""
    threshold = now - timedelta(days=settings.KURA_FIXITY_INTERVAL_DAYS)
    due = DataObject.objects.filter(
        Q(last_fixity_at__isnull=True) | Q(last_fixity_at__lt=threshold),
        status=DataObject.Status.STORED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        quarantined_at__isnull=True,
    ).order_by(F("last_fixity_at").asc(nulls_first=True), "pk")
    return list(due.values_list("pk", flat=True)[:limit])


def data_object_fixity_check(
    *, data_object_id: int, if_last_checked_before: datetime | None = None
) -> FixityCheck | None:
    """Re-read a verified object and compare it with its recorded size, SHA-256 and MD5.

    Records a FixityCheck and sets ``last_fixity_at``. A mismatch, or a file that is gone,
    fails the checksum state and quarantines the object. A storage error is recorded as an
    ``error`` check but leaves ``last_fixity_at`` alone, so the next sweep tries again.

    Returns ``None`` without doing anything while another worker hashes the object, or when
    it has been checked since ``if_last_checked_before``.
    """
    with hashing_lock(data_object_id) as locked:
        if not locked:
            return None
        stored = DataObject.objects.filter(status=DataObject.Status.STORED)
        data_object = stored.filter(pk=data_object_id).first()
        if data_object is None:  # deleted since the sweep listed it: nothing to check
            return None
        last = data_object.last_fixity_at
        if if_last_checked_before is not None and last and last >= if_last_checked_before:
            return None
        try:
            digests, problems = fixity_compare(data_object)
        except StoreError as exc:
            # The storage's message stays in the log: it can name hosts and buckets.
            logger.warning("fixity: object %s could not be read: %s", data_object_id, exc)
            return FixityCheck.objects.create(
                data_object=data_object,
                outcome=FixityCheck.Outcome.ERROR,
                detail="The storage did not answer; the check will be repeated.",
            )
        with transaction.atomic():
            # Deletion removes the bytes under this row lock: an object deleted while its
            # bytes were being read is not "missing", and must raise no fixity alarm.
            if not stored.select_for_update().filter(pk=data_object_id).exists():
                return None
            return fixity_record(data_object, digests, problems)


def fixity_compare(
    data_object: DataObject, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[Digests | None, list[Reason]]:
    """Stream the object's stored bytes again and compare them with what Kura recorded.

    Answers the fresh digests (``None`` when the file is gone) and what disagrees: the
    size, SHA-256 or MD5 recorded after upload, or the SHA-256 the uploader gave. An empty
    list means the bytes are the ones recorded. Other storage failures raise
    :class:`~repository.object_store.StoreError`.
    """
    if not data_object.sha256:
        raise ValueError(f"data object {data_object.pk} has no recorded checksum yet")
    try:
        digests = object_scan(
            storage_key=data_object.storage_key,
            extract_metadata=False,
            on_progress=on_progress,
            expected_size=data_object.size,
        ).digests
    except NoSuchObject as exc:
        logger.error("fixity: object %s is missing: %s", data_object.pk, exc)
        return None, [Reason(REASON_MISSING)]
    matches = (
        digests.size == data_object.size
        and digests.sha256 == data_object.sha256
        and (not data_object.md5 or digests.md5 == data_object.md5)
    )
    if not matches:
        date = f"{timezone.localtime(data_object.last_fixity_at or timezone.now()):%Y-%m-%d}"
        return digests, [Reason(REASON_FIXITY, {"date": date})]
    # Recorded digests are those of the stored bytes, even when an upload failed its
    # verification because they were not the uploader's: those bytes must not pass.
    return digests, _verification_problems(data_object, digests)


def fixity_record(
    data_object: DataObject,
    digests: Digests | None,
    problems: list[Reason],
    *,
    detail: str = "",
) -> FixityCheck:
    """Record one fixity check (``detail`` goes before the problems) and set
    ``last_fixity_at``; problems fail the checksum state and quarantine the object."""
    now = timezone.now()
    with transaction.atomic():
        check = FixityCheck.objects.create(
            data_object=data_object,
            checked_at=now,
            outcome=FixityCheck.Outcome.MISMATCH if problems else FixityCheck.Outcome.MATCH,
            sha256=digests.sha256 if digests else "",
            md5=digests.md5 if digests else "",
            size=digests.size if digests else None,
            detail=" ".join([detail, *map(str, problems)]).strip(),
        )
        updates: dict = {"last_fixity_at": now}
        if problems:
            updates["checksum_state"] = DataObject.ChecksumState.FAILED
        DataObject.objects.filter(pk=data_object.pk).scoped_as(data_object).update(**updates)
        if problems:
            data_object_quarantine(data_object=data_object, reasons=problems, now=now)
    return check


def fixity_sweep(*, now: datetime | None = None, limit: int | None = None) -> dict[str, int]:
    """Check the objects that are due, oldest check first, at most ``limit`` of them
    (``KURA_FIXITY_BATCH_SIZE``), starting none after ``FIXITY_SWEEP_BUDGET``.

    Answers how many checks ended in each outcome, and how many were skipped because another
    worker had them in hand or had just checked them. Safe to run twice, even at once.
    """
    now = now or timezone.now()
    limit = settings.KURA_FIXITY_BATCH_SIZE if limit is None else limit
    threshold = now - timedelta(days=settings.KURA_FIXITY_INTERVAL_DAYS)
    deadline = time.monotonic() + FIXITY_SWEEP_BUDGET.total_seconds()
    outcomes: Counter = Counter(dict.fromkeys(FixityCheck.Outcome.values, 0))
    outcomes["skipped"] = 0
    for pk in fixity_due(now=now, limit=limit):
        if time.monotonic() > deadline:
            break
        check = data_object_fixity_check(data_object_id=pk, if_last_checked_before=threshold)
        outcomes[check.outcome if check else "skipped"] += 1
    return dict(outcomes)
