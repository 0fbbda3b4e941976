"""The fixity core: what verifying, re-verifying and watching stored bytes share.

One streamed pass over the stored bytes (ranged reads in fixed-size chunks) computes SHA-256
and MD5 together, counts the bytes and feeds the technical-metadata extractor
(:func:`object_scan`); :func:`fixity_compare` holds a fresh pass against what was recorded;
:func:`hashing_lock` keeps two workers off one object; :class:`Reason` says in words what
disagrees. The integrity states a stored object is counted and filtered under
(:data:`CHECKSUM_FILTERS`) and the state of a pending re-verification
(:data:`REVERIFY_PENDING`) are here too.

It imports no other fixity module: :mod:`repository.preservation.checksums` (verification after
upload, the fixity sweep), :mod:`repository.preservation.quarantine` (withholding, a curator's
re-verification) and :mod:`repository.preservation.housekeeping` (the requeue) build on it, so none
of them needs another's internals. See docs/architecture.md, "Upload flow".
"""

import fcntl
import hashlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.machine_text import Message
from repository.models import DataObject
from repository.preservation import techmeta
from repository.preservation.object_store import NoSuchObject, StoreError, object_store

logger = logging.getLogger(__name__)

# Chunks read ahead of the hashing, and chunks handed to the hashing threads but not yet
# hashed: with the chunk in hand and the one being hashed, about four chunks in memory.
READ_AHEAD = 1
HASH_BACKLOG = 1
# checksum_progress is written when it has grown by a percent and this many seconds passed.
PROGRESS_INTERVAL = 2.0
# Only this much of the first chunk is kept for extractors that read a header.
HEAD_BYTES = 1024**2

# --- The streamed pass -------------------------------------------------------------------


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str
    md5: str
    # The SHA-256 of the parts' SHA-256 digests (:class:`PartsSha256`), when asked for.
    parts_sha256: str = ""


class PartsSha256:
    """The SHA-256 of the SHA-256 digests of consecutive ``part_size`` parts, in order.

    What a browser can compute as it uploads: Web Crypto hashes a whole part natively, many
    times faster than a streamed SHA-256 of the file in WebAssembly, but it cannot hash a
    file part by part into one digest. The digest of the part digests vouches for every
    byte as the file's own SHA-256 does, so a match with the stored bytes, cut at the same
    part size, is an end-to-end verification too (S3 calls this a composite checksum).
    """

    def __init__(self, part_size: int):
        if part_size <= 0:
            raise ValueError("part_size must be positive")
        self._part_size = part_size
        self._outer = hashlib.sha256()
        self._part = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), self._part_size - self._filled)
            self._part.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self._part_size:
                self._outer.update(self._part.digest())
                self._part, self._filled = hashlib.sha256(), 0

    def hexdigest(self) -> str:
        outer = self._outer.copy()
        if self._filled:
            outer.update(self._part.digest())
        return outer.hexdigest()


def parts_sha256(data: bytes, part_size: int) -> str:
    """:class:`PartsSha256` of ``data``."""
    digest = PartsSha256(part_size)
    digest.update(data)
    return digest.hexdigest()


def stream_digests(
    chunks: Iterable[bytes],
    *,
    on_chunk: Callable[[bytes, int], None] | None = None,
    part_size: int | None = None,
) -> Digests:
    """SHA-256, MD5 and length of the concatenated ``chunks``, in one pass; with
    ``part_size``, the SHA-256 of its parts' digests (:class:`PartsSha256`) too.

    The digests are computed in threads of their own (hashlib releases the GIL on large
    buffers) while another reads ahead, so the pass runs at the speed of the slowest
    digest rather than the sum of them. ``on_chunk(chunk, bytes_so_far)`` is called in
    the caller's thread for every chunk, in order.
    """
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    parts = PartsSha256(part_size) if part_size else None
    updates = [sha256.update, md5.update] + ([parts.update] if parts else [])
    iterator = iter(chunks)
    reader = ThreadPoolExecutor(1, thread_name_prefix="kura-read")
    hashers = [
        ThreadPoolExecutor(1, thread_name_prefix=f"kura-hash{n}") for n in range(len(updates))
    ]
    size = 0
    try:
        ahead = deque(reader.submit(next, iterator, None) for _ in range(READ_AHEAD))
        backlog: deque = deque()
        while (chunk := ahead.popleft().result()) is not None:
            ahead.append(reader.submit(next, iterator, None))
            if not chunk:
                continue
            backlog.append(
                [pool.submit(update, chunk) for pool, update in zip(hashers, updates, strict=True)]
            )
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
    return Digests(
        size=size,
        sha256=sha256.hexdigest(),
        md5=md5.hexdigest(),
        parts_sha256=parts.hexdigest() if parts else "",
    )


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
    part_size: int | None = None,
) -> ObjectScan:
    """Stream the stored object once: digests, size and (optionally) technical metadata.

    ``on_progress(bytes_so_far, total_bytes)`` is called after every chunk. Storage
    failures raise :class:`~repository.preservation.object_store.StoreError`. ``expected_size`` (the
    declared size) lets a small object be read in one request; the digests and size are
    always those of the bytes actually stored. ``part_size``: the digests include the
    SHA-256 of the parts' digests (:class:`PartsSha256`).
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
            return small_object_scan(
                data,
                storage_key,
                filename,
                extract_metadata=extract_metadata,
                store=store,
                part_size=part_size,
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
    digests = stream_digests(chunks, on_chunk=on_chunk, part_size=part_size)
    if extractor is None:
        return ObjectScan(digests)
    return ObjectScan(digests, techmeta.metadata_finish(extractor))


def small_object_scan(
    data: bytes,
    storage_key: str,
    filename: str,
    *,
    extract_metadata: bool,
    store,
    part_size: int | None = None,
) -> ObjectScan:
    """The scan of an object whose stored bytes, all of them, are ``data``."""
    digests = Digests(
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        parts_sha256=parts_sha256(data, part_size) if part_size else "",
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


# The preview worker's lock (repository/previews/): never held against a hash.
PREVIEW_LOCK_NAMESPACE = 0x4B555250  # "KURP"


@contextmanager
def hashing_lock(data_object_id: int, *, namespace: int = LOCK_NAMESPACE) -> Iterator[bool]:
    """Whether this worker may hash the object now; held until the block ends.

    PostgreSQL: a session advisory lock. SQLite (the embedded profile, one host): a file
    lock. The database or the OS releases either when a worker dies, so a crashed run never
    leaves an object locked, and a state of "verifying" found under the lock is a leftover.
    Another ``namespace`` (:data:`PREVIEW_LOCK_NAMESPACE`) is another lock on the object.
    """
    if connection.vendor == "postgresql":
        key = (namespace << 32) | (data_object_id & 0xFFFFFFFF)
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
    name = "object" if namespace == LOCK_NAMESPACE else f"object-{namespace:x}"
    path = Path(settings.VAR_DIR) / "locks" / f"{name}-{data_object_id}.lock"
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


@contextmanager
def hashing_locks(data_object_ids: list[int]) -> Iterator[list[int]]:
    """:func:`hashing_lock` for many objects in one query (PostgreSQL only): the ids of
    those this worker may hash now, all held until the block ends."""
    key_sql = "(%s::bigint << 32) | (id & 4294967295)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM unnest(%s::bigint[]) AS id WHERE pg_try_advisory_lock({key_sql})",  # noqa: S608 - constant text
            [list(data_object_ids), LOCK_NAMESPACE],
        )
        locked = [row[0] for row in cursor.fetchall()]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT pg_advisory_unlock({key_sql}) FROM unnest(%s::bigint[]) AS id",  # noqa: S608
                    [LOCK_NAMESPACE, locked],
                )


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


class Reason(Message):
    """What disagrees: a code of ``core.machine_text`` and its values, stored as the code
    and read in the reader's language (``str()``)."""

    def translated(self) -> str:
        return str(self)

    @staticmethod
    def as_json(reasons: list["Reason"]) -> list[list]:
        """``reasons`` as a notice carries them (translated when the mail is written)."""
        return [[reason.template, reason.values] for reason in reasons]


# Reasons are stored as codes (their sentences are in core.machine_text.MESSAGES) and read
# in the reader's language; a notice carries the msgid and translates it when it is written.
REASON_SIZE = "fixity.size_mismatch"
REASON_CLIENT_SHA256 = "fixity.client_sha256_mismatch"
REASON_FIXITY = "fixity.checksums_changed"
REASON_MISSING = "fixity.missing"


def verification_problems(data_object: DataObject, digests: Digests) -> list[Reason]:
    problems = []
    if digests.size != data_object.size:
        problems.append(Reason(REASON_SIZE, {"stored": digests.size, "expected": data_object.size}))
    client_sha256 = data_object.client_sha256.strip().lower()
    if client_sha256 and client_sha256 != digests.sha256:
        problems.append(Reason(REASON_CLIENT_SHA256))
    elif data_object.client_parts_sha256 and (
        data_object.client_parts_sha256 != digests.parts_sha256
    ):
        problems.append(Reason(REASON_CLIENT_SHA256))
    return problems


def client_part_size(data_object: DataObject) -> int | None:
    """The part size to cut the stored bytes at for the uploader's digest of its parts."""
    return data_object.client_part_size if data_object.client_parts_sha256 else None


def fixity_compare(
    data_object: DataObject, *, on_progress: Callable[[int, int], None] | None = None
) -> tuple[Digests | None, list[Reason]]:
    """Stream the object's stored bytes again and compare them with what Kura recorded.

    Answers the fresh digests (``None`` when the file is gone) and what disagrees: the
    size, SHA-256 or MD5 recorded after upload, or the SHA-256 the uploader gave. An empty
    list means the bytes are the ones recorded. Other storage failures raise
    :class:`~repository.preservation.object_store.StoreError`.
    """
    if not data_object.sha256:
        raise ValueError(f"data object {data_object.pk} has no recorded checksum yet")
    try:
        digests = object_scan(
            storage_key=data_object.storage_key,
            extract_metadata=False,
            on_progress=on_progress,
            expected_size=data_object.size,
            part_size=client_part_size(data_object),
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
    return digests, verification_problems(data_object, digests)


# A quarantined object "verifying" has a curator's re-verification pending (or running).
REVERIFY_PENDING = {
    "status": DataObject.Status.STORED,
    "quarantined_at__isnull": False,
    "checksum_state": DataObject.ChecksumState.VERIFYING,
}

# The integrity states a stored object is counted under on the dashboard and filtered by
# on the project page (``?checksum=``). A quarantined object is counted only as
# quarantined, whatever its checksum state, so the five counts add up to the total.
_STORED_FREE = Q(status=DataObject.Status.STORED, quarantined_at__isnull=True)
CHECKSUM_FILTERS: dict[str, Q] = {
    **{
        state.value: _STORED_FREE & Q(checksum_state=state.value)
        for state in DataObject.ChecksumState
    },
    "quarantined": Q(status=DataObject.Status.STORED, quarantined_at__isnull=False),
}
CHECKSUM_FILTER_LABELS = {
    **{state.value: state.label for state in DataObject.ChecksumState},
    "quarantined": _("Quarantined"),
}
