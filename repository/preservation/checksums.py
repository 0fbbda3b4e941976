"""Checksums and fixity of stored objects.

One streamed pass over the stored bytes (ranged reads in fixed-size chunks) computes SHA-256
and MD5 together, counts the bytes and feeds the technical-metadata extractor; memory stays
at a few chunks whatever the size of the file. Two consumers use that pass:

* :func:`data_object_checksum_verify` — once, right after an upload is stored:
  ``pending → verifying → verified | failed`` (a verified upload whose bytes its record
  already holds is flagged as a duplicate, :mod:`repository.preservation.duplicates`);
* :func:`data_object_fixity_check` — again and again (:func:`fixity_sweep`, Celery beat),
  comparing with what was recorded the first time.

Any disagreement quarantines the object (:mod:`repository.preservation.quarantine`): nobody can
download it, the audit trail records it, and the uploader and the project's PMs get an e-mail.
"""

import json
import logging
import time
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.machine_text import MachineText, Message
from repository.models import DataObject, FixityCheck
from repository.preservation.duplicates import duplicate_original_find
from repository.preservation.fixity import (
    REASON_MISSING,
    ObjectScan,
    ProgressWriter,
    Reason,
    client_part_size,
    fixity_compare,
    hashing_lock,
    hashing_locks,
    object_scan,
    small_object_scan,
    verification_problems,
)
from repository.preservation.object_store import NoSuchObject, StoreError, object_store
from repository.preservation.quarantine import data_object_quarantine, fixity_record
from repository.preservation.queue import preview_send
from repository.previews.keys import preview_kind

logger = logging.getLogger(__name__)

# A sweep starts no new check after this long, so hourly sweeps rarely overlap (and when
# they do, the hashing lock keeps them off each other's objects).
FIXITY_SWEEP_BUDGET = timedelta(minutes=50)


# --- Verification after upload -----------------------------------------------------------


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
        # (repository.preservation.quarantine), which must not be taken for a first verification:
        # that would record the digests of bytes nobody trusts.
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
                part_size=client_part_size(data_object),
            )
        except NoSuchObject as exc:
            if not _missing_noted(data_object_id):
                _back_to_pending(data_object_id)
                raise
            logger.error(
                "object %s is missing before its first verification: %s", data_object_id, exc
            )
            fixity_record(
                data_object,
                None,
                [Reason(REASON_MISSING)],
                detail=Message("fixity.verification_after_upload"),
            )
        except BaseException:
            _back_to_pending(data_object_id)
            raise
        else:
            _verification_record(data_object, scan)
    data_object.refresh_from_db()
    return data_object


def data_objects_checksum_verify(*, data_object_ids: list[int]) -> list[int]:
    """Verify a group of freshly stored small uploads (each of at most one chunk,
    ``KURA_CHECKSUM_CHUNK_SIZE``), as :func:`data_object_checksum_verify` verifies one,
    for a fraction of its CPU per object.

    Every object's stored bytes are read back (one signed GET each) and hashed, and their
    size and the uploader's SHA-256 compared, exactly as for one object; what is shared is
    the bookkeeping: the hashing locks taken in one query, the objects claimed in one
    statement, and the objects that verify cleanly written in one transaction (one
    statement, one bulk insert of their FixityChecks, one generation bump per record and
    project). An object whose bytes disagree, or that may be a duplicate, is recorded on
    its own, by the one-object code (quarantine rules and all).

    Answers the ids to verify one by one (``kura.checksum``, with its retries): those
    whose read failed (put back to ``pending``) and those the group cannot take (stored
    larger than a chunk, empty, or not small). Objects another worker is hashing, or
    already verified, failed or not stored, are left alone: a second run changes nothing.
    """
    if connection.vendor != "postgresql":
        return list(data_object_ids)  # one file lock per object: the one-object path
    small = settings.KURA_CHECKSUM_CHUNK_SIZE
    alone: list[int] = []
    with hashing_locks(data_object_ids) as locked:
        claimable = DataObject.objects.filter(
            pk__in=locked,
            status=DataObject.Status.STORED,
            quarantined_at__isnull=True,
            checksum_state__in=[
                DataObject.ChecksumState.PENDING,
                DataObject.ChecksumState.VERIFYING,
            ],
        )
        candidates = list(claimable.order_by("pk"))
        group = [obj for obj in candidates if 0 < obj.size <= small]
        alone.extend(obj.pk for obj in candidates if not 0 < obj.size <= small)
        if not group:
            return alone
        claimable.filter(pk__in=[obj.pk for obj in group]).scoped_as_all(group).update(
            checksum_state=DataObject.ChecksumState.VERIFYING, checksum_progress=0
        )
        store = object_store()
        scanned: list[tuple[DataObject, ObjectScan]] = []
        for data_object in group:
            try:
                # One byte more than a chunk tells a stored file larger than declared.
                data = store.read_head_fast(data_object.storage_key, small + 1)
                if not data or len(data) > small:
                    alone.append(data_object.pk)  # the streamed read of one object
                    continue
                scan = small_object_scan(
                    data,
                    data_object.storage_key,
                    data_object.original_filename,
                    extract_metadata=True,
                    store=store,
                    part_size=client_part_size(data_object),
                )
            except StoreError as exc:
                logger.warning("checksum of object %s: read failed: %s", data_object.pk, exc)
                alone.append(data_object.pk)
                continue
            scanned.append((data_object, scan))
        try:
            _verifications_record(scanned)
        except BaseException:
            _back_to_pending_all([obj.pk for obj in group])
            raise
        # What the group leaves to the one-object path starts again from pending.
        _back_to_pending_all(alone)
    return alone


def _verified_write(rows: list[tuple[DataObject, ObjectScan]], now: datetime) -> None:
    """Set the rows (locked, ``verifying``) verified with their digests and technical
    metadata: one statement whatever their number (Django's ``bulk_update`` builds a
    ``CASE`` per column and row, costlier than the hashing), then one generation bump per
    scope, as an ORM update would."""
    table = DataObject._meta.db_table
    encoder = DataObject._meta.get_field("technical_metadata").encoder  # as the ORM writes it
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS o SET checksum_state = %s, checksum_progress = 100,"  # noqa: S608 - the table's name
            " last_fixity_at = %s, sha256 = v.sha256, md5 = v.md5,"
            " technical_metadata = v.tm::jsonb, preview_state = v.preview"
            " FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[])"
            " AS v(id, sha256, md5, tm, preview) WHERE o.id = v.id",
            [
                DataObject.ChecksumState.VERIFIED.value,
                now,
                [obj.pk for obj, _ in rows],
                [scan.digests.sha256 for _, scan in rows],
                [scan.digests.md5 for _, scan in rows],
                [json.dumps(scan.technical.fields, cls=encoder) for _, scan in rows],
                [_preview_state(scan).value for _, scan in rows],
            ],
        )
    DataObject.objects.all().rows_written([obj for obj, _ in rows])
    for obj, scan in rows:
        _preview_queue_on_commit(obj.pk, _preview_state(scan))


def _preview_state(scan: ObjectScan) -> DataObject.PreviewState:
    """``pending`` for a verified file Kura previews, else ``none``."""
    if preview_kind(scan.technical.fields):
        return DataObject.PreviewState.PENDING
    return DataObject.PreviewState.NONE


def _preview_queue_on_commit(object_id: int, state: DataObject.PreviewState) -> None:
    """Once the verification is committed, queue the preview (its own queue: previews come
    after checksums and never before them)."""
    if state == DataObject.PreviewState.PENDING:
        transaction.on_commit(lambda: preview_send(object_id))


def _back_to_pending_all(data_object_ids: list[int]) -> None:
    if data_object_ids:
        DataObject.objects.filter(
            pk__in=data_object_ids, checksum_state=DataObject.ChecksumState.VERIFYING
        ).update(checksum_state=DataObject.ChecksumState.PENDING, checksum_progress=0)


def _verifications_record(scanned: list[tuple[DataObject, ObjectScan]]) -> None:
    """Record the scans of a group: clean ones together, the others one by one."""
    problems_of = {
        data_object.pk: verification_problems(data_object, scan.digests)
        for data_object, scan in scanned
    }
    clean = [(obj, scan) for obj, scan in scanned if not problems_of[obj.pk]]
    # The same bytes already in the project, or twice in the group: the one-object code
    # decides which is the duplicate of which, in order, as it would have one by one.
    pairs = Counter((obj.project_id, scan.digests.sha256) for obj, scan in clean)
    held = set(
        DataObject.objects.filter(
            project_id__in={obj.project_id for obj, _ in clean},
            sha256__in={scan.digests.sha256 for _, scan in clean},
        )
        .exclude(pk__in=[obj.pk for obj, _ in scanned])
        .values_list("project_id", "sha256")
    )
    together, one_by_one = [], []
    for obj, scan in scanned:
        pair = (obj.project_id, scan.digests.sha256)
        alone = problems_of[obj.pk] or pair in held or pairs[pair] > 1
        (one_by_one if alone else together).append((obj, scan))
    if together:
        now = timezone.now()
        with transaction.atomic():
            verifying = DataObject.objects.filter(
                status=DataObject.Status.STORED,
                quarantined_at__isnull=True,
                checksum_state=DataObject.ChecksumState.VERIFYING,
            )
            mine = set(
                verifying.select_for_update()
                .filter(pk__in=[obj.pk for obj, _ in together])
                .values_list("pk", flat=True)
            )
            rows = [(obj, scan) for obj, scan in together if obj.pk in mine]
            objects = [obj for obj, _ in rows]
            if objects:
                _verified_write(rows, now)
                personal = [obj.pk for obj, scan in rows if scan.technical.contains_personal_data]
                if personal:  # never cleared here: people may know more
                    DataObject.objects.filter(pk__in=personal).scoped_as_all(
                        [obj for obj in objects if obj.pk in personal]
                    ).update(contains_personal_data=True)
                FixityCheck.objects.bulk_create(
                    FixityCheck(
                        data_object=obj,
                        checked_at=now,
                        outcome=FixityCheck.Outcome.MATCH,
                        sha256=scan.digests.sha256,
                        md5=scan.digests.md5,
                        size=scan.digests.size,
                        detail=Message("fixity.verified_after_upload"),
                    )
                    for obj, scan in rows
                )
    for obj, scan in one_by_one:
        _verification_record(obj, scan)


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


def _verification_record(data_object: DataObject, scan: ObjectScan) -> None:
    digests, technical = scan.digests, scan.technical
    problems = verification_problems(data_object, digests)
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
    if not problems:
        updates["preview_state"] = _preview_state(scan)
    with transaction.atomic():
        # The same bytes already in the record: the uploader decides
        # (repository.preservation.duplicates). Most uploads have no twin: one plain query in the
        # project says so, before the full lookup that applies the uploader's access.
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
            detail=MachineText(*problems) or Message("fixity.verified_after_upload"),
        )
        if problems:
            data_object_quarantine(data_object=data_object, reasons=problems, now=now)
        else:
            _preview_queue_on_commit(data_object.pk, updates["preview_state"])


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
                detail=Message("fixity.storage_unanswered"),
            )
        with transaction.atomic():
            # Deletion removes the bytes under this row lock: an object deleted while its
            # bytes were being read is not "missing", and must raise no fixity alarm.
            if not stored.select_for_update().filter(pk=data_object_id).exists():
                return None
            return fixity_record(data_object, digests, problems)


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
