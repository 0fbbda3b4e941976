"""Making an object's preview, once, after its checksum; and finding previews left behind."""

import logging
import os
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import translation

from core.machine_text import MachineText, Message
from repository.models import DataObject
from repository.preservation.fixity import PREVIEW_LOCK_NAMESPACE, hashing_lock
from repository.preservation.object_store import StoreError, object_store
from repository.previews import images, sequencing
from repository.previews.keys import derived_prefix, preview_kind, thumbnail_key, tile_key

logger = logging.getLogger(__name__)

# Derived files are written this many at a time (the S3 client is shared by the threads).
WRITERS = 8
# A BAM or CRAM header is read from at most this much of the file's beginning, and an
# index of at most this size is used for per-reference counts.
ALIGNMENT_HEAD_BYTES = 64 * 1024**2
ALIGNMENT_INDEX_MAX_BYTES = 256 * 1024**2
INDEX_SUFFIXES = (".bai", ".crai", ".csi")


def preview_lock(data_object_id: int):
    """Whether this worker may make the object's preview now (held until the block ends);
    another lock than the hashing one, so a preview never holds up a fixity check."""
    return hashing_lock(data_object_id, namespace=PREVIEW_LOCK_NAMESPACE)


def data_object_preview_make(*, data_object_id: int) -> DataObject | None:
    """Make the preview of a verified object whose preview is ``pending``.

    Images get a thumbnail and IIIF tiles for up to ``KURA_PREVIEW_MAX_PLANES`` planes;
    FASTQ files a summary of one streamed pass; BAM and CRAM files their header, a BAM
    per-reference counts from an index stored beside it, a CRAM of at most
    ``KURA_PREVIEW_CRAM_COUNT_MAX_BYTES`` per-reference counts of one streamed pass over
    its reads. The derived files go to storage
    beside the object (:mod:`repository.previews.keys`); what was made is recorded in
    ``preview`` and the state becomes ``ready`` — or ``skipped`` (an image past
    ``KURA_PREVIEW_MAX_PIXELS``, pixels no decoder reads) or ``failed`` (a file that does
    not parse), with the reason.

    Does nothing for an object another worker is previewing, or whose preview is not
    pending (done already, deleted, quarantined): a second run changes nothing. A storage
    error propagates with the state still ``pending``, so the task can retry; an object
    deleted while its preview was being made has its derived files removed.
    """
    with preview_lock(data_object_id) as locked:
        if not locked:
            return None
        data_object = _pending().filter(pk=data_object_id).first()
        if data_object is None:
            return None
        store = object_store()
        kind = preview_kind(data_object.technical_metadata)
        try:
            if kind == "image":
                state, preview = DataObject.PreviewState.READY, _image_preview(data_object)
            elif kind == "sequencing":
                state, preview = DataObject.PreviewState.READY, _sequencing_preview(data_object)
            else:
                state, preview = DataObject.PreviewState.NONE, {}
        except images.PreviewRefused as exc:
            state = DataObject.PreviewState.SKIPPED
            preview = {"kind": kind, "reason": MachineText(exc.reason).stored()}
            store.delete_prefix(derived_prefix(data_object.storage_key))
        except StoreError:
            raise
        except Exception as exc:  # a damaged or unusual file must not loop in the queue
            # The message stays in the log: it may quote the file's own bytes.
            logger.warning("preview of object %s failed: %r", data_object_id, exc)
            state = DataObject.PreviewState.FAILED
            unreadable = Message("preview.unreadable", {"error": type(exc).__name__})
            preview = {"kind": kind, "reason": MachineText(unreadable).stored()}
            store.delete_prefix(derived_prefix(data_object.storage_key))
        with transaction.atomic():
            # Deletion removes the derived files under this row lock; files written after
            # it (by this run) are removed here.
            current = (
                DataObject.objects.select_for_update()
                .filter(pk=data_object_id)
                .values_list("status", "preview_state")
                .first()
            )
            if current != (DataObject.Status.STORED, DataObject.PreviewState.PENDING):
                if current is None or current[0] != DataObject.Status.STORED:
                    store.delete_prefix(derived_prefix(data_object.storage_key))
                return None
            DataObject.objects.filter(pk=data_object_id).scoped_as(data_object).update(
                preview_state=state, preview=preview
            )
    data_object.refresh_from_db()
    return data_object


def _pending():
    return DataObject.objects.filter(
        status=DataObject.Status.STORED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        quarantined_at__isnull=True,
        preview_state=DataObject.PreviewState.PENDING,
    )


def previews_stalled(*, now: datetime) -> list[int]:
    """Previews still ``pending`` ``KURA_PREVIEW_REQUEUE_AFTER_MINUTES`` after their
    object's verification that no worker is making (the message was lost, the broker was
    away, the task gave up on a store that was down), oldest first: queuing them again is
    safe, the preview is made once per object. (Owned by ``kura.checksum_requeue``.)"""
    before = now - timedelta(minutes=settings.KURA_PREVIEW_REQUEUE_AFTER_MINUTES)
    candidates = _pending().filter(last_fixity_at__lt=before).order_by("last_fixity_at")
    stalled = []
    for object_id in candidates.values_list("pk", flat=True)[:200]:
        with preview_lock(object_id) as free:
            if free:
                stalled.append(object_id)
    return stalled


# --- Images ------------------------------------------------------------------------------


def _image_preview(data_object: DataObject) -> dict:
    technical = data_object.technical_metadata
    fmt = technical["format"]
    width, height = technical.get("width"), technical.get("height")
    if isinstance(width, int) and isinstance(height, int):
        if width * height > settings.KURA_PREVIEW_MAX_PIXELS:
            raise images.PreviewRefused(images.too_large(width, height))
    refs = images.planes_of(technical, max_planes=settings.KURA_PREVIEW_MAX_PLANES)
    store = object_store()
    planes = []
    with tempfile.TemporaryDirectory(dir=settings.KURA_PREVIEW_WORK_DIR) as work:
        source = Path(work) / "source"
        _download(data_object.storage_key, source)
        for number, ref in enumerate(refs):
            plane_dir = Path(work) / f"plane-{number}"
            plane = images.plane_derive(
                source, fmt, ref, plane_dir, max_pixels=settings.KURA_PREVIEW_MAX_PIXELS
            )
            files = {}
            for relative, path in plane.files.items():
                region, size = relative.split("/")[:2]
                files[tile_key(data_object.storage_key, number, region, size)] = path
            _write_all(store, files)
            if number == 0:
                store.write(thumbnail_key(data_object.storage_key), plane.thumbnail, "image/jpeg")
            planes.append(plane.as_json())
            shutil.rmtree(plane_dir, ignore_errors=True)
    return {"kind": "image", "planes": planes}


def _download(storage_key: str, target: Path, *, limit: int | None = None) -> None:
    """The stored object (its first ``limit`` bytes) into ``target``, a chunk at a time."""
    store = object_store()
    written = 0
    with target.open("wb") as out:
        chunks = store.read_chunks(
            storage_key, settings.KURA_CHECKSUM_CHUNK_SIZE, settings.KURA_CHECKSUM_RANGE_SIZE
        )
        try:
            for chunk in chunks:
                if limit is not None and written + len(chunk) >= limit:
                    out.write(chunk[: limit - written])
                    break
                out.write(chunk)
                written += len(chunk)
        finally:
            chunks.close()


def _write_all(store, files: dict[str, Path]) -> None:
    def write(item: tuple[str, Path]) -> None:
        key, path = item
        store.write(key, path.read_bytes(), "image/jpeg")

    with ThreadPoolExecutor(WRITERS, thread_name_prefix="kura-preview") as pool:
        for _ in pool.map(write, files.items()):
            pass


# --- Sequencing --------------------------------------------------------------------------


def _sequencing_preview(data_object: DataObject) -> dict:
    technical = data_object.technical_metadata
    if technical["format"] == "FASTQ":
        store = object_store()
        chunks = store.read_chunks(
            data_object.storage_key,
            settings.KURA_CHECKSUM_CHUNK_SIZE,
            settings.KURA_CHECKSUM_RANGE_SIZE,
        )
        try:
            summary = sequencing.fastq_summarize(
                chunks, gzipped=technical.get("compression") == "gzip"
            )
        finally:
            chunks.close()
        return {"kind": "sequencing", "summary": summary}
    cram = technical["format"] == "CRAM"
    with tempfile.TemporaryDirectory(dir=settings.KURA_PREVIEW_WORK_DIR) as work:
        suffix = ".cram" if cram else ".bam"
        path = Path(work) / f"alignments{suffix}"
        _download(data_object.storage_key, path, limit=ALIGNMENT_HEAD_BYTES)
        # A CRAM index holds no counts: a CRAM's reads are counted from the file itself.
        index = None if cram else _alignment_index(data_object)
        index_path = None
        if index is not None:
            index_path = Path(work) / f"alignments{suffix}{Path(index.original_filename).suffix}"
            _download(index.storage_key, index_path)
        summary = sequencing.alignment_summarize(
            str(path), index_path=str(index_path) if index_path else None
        )
    if index is not None:
        summary["index"] = index.original_filename
    if cram:
        summary.update(_cram_counts(data_object))
    return {"kind": "sequencing", "summary": summary}


def _cram_counts(data_object: DataObject) -> dict:
    """The per-reference counts of a CRAM (:func:`sequencing.cram_count`), or why there
    are none (``counts_reason``, a stored :class:`MachineText`).

    The object is streamed from the store through a pipe, a chunk at a time, by a thread
    feeding htslib: nothing is written to disk, and memory is one store chunk
    (``KURA_CHECKSUM_CHUNK_SIZE``), the pipe's buffer and htslib's one container. A storage
    error propagates (the task retries); a file htslib cannot read to its end keeps its
    header and says why its reads were not counted.
    """
    limit = settings.KURA_PREVIEW_CRAM_COUNT_MAX_BYTES
    if limit <= 0:
        return {"counts_reason": MachineText(Message("preview.cram_count_off")).stored()}
    if data_object.size > limit:
        with translation.override("en"):
            sizes = {"limit": filesizeformat(limit), "size": filesizeformat(data_object.size)}
        reason = Message("preview.cram_count_too_large", sizes)
        return {"counts_reason": MachineText(reason).stored()}
    read_end, write_end = os.pipe()
    store_failure: list[BaseException] = []

    def feed() -> None:
        chunks = store.read_chunks(
            data_object.storage_key,
            settings.KURA_CHECKSUM_CHUNK_SIZE,
            settings.KURA_CHECKSUM_RANGE_SIZE,
        )
        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(write_end, view) :]
        except BrokenPipeError:
            pass  # the reader stopped (a file it cannot read): nothing more is wanted
        except BaseException as exc:  # noqa: BLE001 - handed to the reader's thread
            store_failure.append(exc)
        finally:
            chunks.close()
            os.close(write_end)  # the reader sees the end of the file

    store = object_store()
    feeder = threading.Thread(target=feed, name="kura-cram-count", daemon=True)
    feeder.start()
    error = None
    try:
        with open(read_end, "rb") as stream:
            counts = sequencing.cram_count(stream)
    except Exception as exc:  # a damaged file: its header stays, its reads are not counted
        error = exc
    finally:
        feeder.join()  # the read end is closed: a feeder blocked on the pipe stops
    if store_failure:  # the reader saw a short file; the store's error is what happened
        raise store_failure[0]
    if error is not None:
        logger.warning("reads of CRAM object %s not counted: %r", data_object.pk, error)
        unreadable = Message("preview.cram_count_unreadable", {"error": type(error).__name__})
        return {"counts_reason": MachineText(unreadable).stored()}
    return counts


def _alignment_index(data_object: DataObject) -> DataObject | None:
    """The verified index stored beside a BAM or CRAM file in its record (or, without a
    record, its project): ``name.bai``, ``name.crai``, ``name.csi`` or ``stem.bai``."""
    name = data_object.original_filename
    stem = name.rsplit(".", 1)[0]
    names = [name + suffix for suffix in INDEX_SUFFIXES] + [stem + ".bai", stem + ".csi"]
    siblings = DataObject.objects.filter(
        project_id=data_object.project_id,
        record_id=data_object.record_id,
        status=DataObject.Status.STORED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        quarantined_at__isnull=True,
        original_filename__in=names,
        size__lte=ALIGNMENT_INDEX_MAX_BYTES,
    )
    return siblings.order_by("pk").first()
