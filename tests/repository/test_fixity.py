"""Fixity: stored objects are re-verified on a schedule; abandoned uploads are cleaned up."""

import datetime
import os

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from config.celery import app
from repository.governance.deletion import data_object_delete
from repository.models import AuditEvent, DataObject, FixityCheck, UploadSession
from repository.preservation import checksums
from repository.preservation.checksums import (
    data_object_checksum_verify,
    data_object_fixity_check,
    fixity_due,
    fixity_sweep,
)
from repository.preservation.housekeeping import checksums_stalled, uploads_abandon_idle
from repository.preservation.object_store import NoSuchUpload, object_store
from repository.tasks import (
    abandoned_uploads_sweep_task,
    checksum_requeue_task,
    checksum_send,
    fixity_sweep_task,
)
from tests.factories import DataObjectFactory, make_superuser

from .stored_objects import (
    digests,
    hashing_elsewhere,
    overwrite_behind_kuras_back,
    snapshot,
    store_object,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()
INTERVAL = datetime.timedelta(days=settings.KURA_FIXITY_INTERVAL_DAYS)


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """Run on-commit work (the e-mails) the way a worker outside a test transaction would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def verified_object(data: bytes, *, last_checked: datetime.datetime | None = None, **fields):
    """An object verified after upload, its last fixity check set to ``last_checked``."""
    data_object = store_object(data, **fields)
    data_object_checksum_verify(data_object_id=data_object.pk)
    DataObject.objects.filter(pk=data_object.pk).update(last_fixity_at=last_checked)
    data_object.refresh_from_db()
    return data_object


def test_due_objects_are_the_longest_unchecked_verified_stored_and_unquarantined():
    def make(**fields):
        values = {"checksum_state": DataObject.ChecksumState.VERIFIED, "sha256": "a" * 64}
        return DataObjectFactory(**{**values, **fields}).pk

    never = make(last_fixity_at=None)
    oldest = make(last_fixity_at=NOW - INTERVAL * 3)
    older = make(last_fixity_at=NOW - INTERVAL - datetime.timedelta(hours=1))
    make(last_fixity_at=NOW - INTERVAL + datetime.timedelta(hours=1))  # not yet due
    make(last_fixity_at=None, checksum_state=DataObject.ChecksumState.PENDING)
    make(last_fixity_at=None, checksum_state=DataObject.ChecksumState.FAILED)
    make(last_fixity_at=None, quarantined_at=NOW)
    make(last_fixity_at=None, status=DataObject.Status.DELETED)

    assert fixity_due(now=NOW, limit=10) == [never, oldest, older]
    assert fixity_due(now=NOW, limit=2) == [never, oldest]


def test_a_sweep_confirms_unchanged_bytes_and_a_second_sweep_changes_nothing():
    data = os.urandom(30_000)
    data_object = verified_object(data, last_checked=NOW - INTERVAL * 2)

    outcome = fixity_sweep(now=NOW)

    assert outcome == {"match": 1, "mismatch": 0, "error": 0, "skipped": 0}
    data_object.refresh_from_db()
    assert data_object.last_fixity_at > NOW
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    latest = data_object.fixity_checks.first()
    assert latest.outcome == FixityCheck.Outcome.MATCH
    assert (latest.sha256, latest.md5, latest.size) == (*digests(data), len(data))
    after_first = snapshot(data_object)

    assert fixity_sweep(now=NOW)["match"] == 0
    assert snapshot(data_object) == after_first


def test_bytes_changed_behind_kuras_back_are_caught_by_the_next_sweep(
    client, mailoutbox, on_commit
):
    data = os.urandom(40_000)
    data_object = verified_object(data, last_checked=NOW - INTERVAL * 2)
    client.force_login(data_object.uploaded_by)
    assert client.get(f"/objects/{data_object.pk}/download").status_code == 302
    tampered = bytearray(data)
    tampered[1234] ^= 0xFF  # one flipped bit's worth of damage, same size
    overwrite_behind_kuras_back(data_object.storage_key, bytes(tampered))

    with on_commit():
        result = fixity_sweep_task.apply()

    assert result.result["mismatch"] == 1
    data_object.refresh_from_db()
    assert data_object.quarantined_at is not None
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.sha256 == digests(data)[0]  # what it should be stays on record
    check = data_object.fixity_checks.first()
    assert check.outcome == FixityCheck.Outcome.MISMATCH
    assert check.sha256 == digests(bytes(tampered))[0]
    assert check.size == len(data)
    event = AuditEvent.objects.get(data_object=data_object, action=AuditEvent.Action.FIXITY_FAILED)
    assert "no longer match" in event.detail
    assert client.get(f"/objects/{data_object.pk}/download").status_code == 404
    (mail,) = mailoutbox
    assert data_object.uploaded_by.email in mail.to
    assert "固定性検査の失敗" in mail.body


def test_a_quarantined_object_is_not_swept_again(mailoutbox, on_commit):
    data_object = verified_object(b"a" * 1000, last_checked=NOW - INTERVAL * 2)
    overwrite_behind_kuras_back(data_object.storage_key, b"b" * 1000)
    with on_commit():
        fixity_sweep(now=NOW)
    after_first = snapshot(data_object)

    with on_commit():
        assert fixity_sweep(now=NOW + INTERVAL * 2)["mismatch"] == 0

    assert snapshot(data_object) == after_first
    assert len(mailoutbox) == 1


def test_a_file_gone_from_the_storage_is_a_fixity_failure(on_commit):
    data_object = verified_object(b"c" * 1000, last_checked=None)
    object_store().delete(data_object.storage_key)

    with on_commit():
        outcome = fixity_sweep(now=NOW)

    assert outcome["mismatch"] == 1
    data_object.refresh_from_db()
    assert data_object.quarantine_reason == "Fixity check failed: the stored file is missing."
    check = data_object.fixity_checks.first()
    assert (check.outcome, check.size, check.sha256) == (FixityCheck.Outcome.MISMATCH, None, "")


def test_a_storage_that_does_not_answer_is_recorded_and_tried_again_next_time():
    data_object = verified_object(b"d" * 1000, last_checked=NOW - INTERVAL * 2)
    before = data_object.last_fixity_at

    with override_settings(AWS_STORAGE_BUCKET_NAME="kura-no-such-bucket"):
        outcome = fixity_sweep(now=NOW)

    assert outcome["error"] == 1
    data_object.refresh_from_db()
    assert data_object.fixity_checks.first().outcome == FixityCheck.Outcome.ERROR
    assert data_object.last_fixity_at == before
    assert data_object.quarantined_at is None
    assert fixity_due(now=NOW, limit=10) == [data_object.pk]
    assert fixity_sweep(now=NOW)["match"] == 1


def test_an_object_another_worker_is_hashing_is_skipped():
    data_object = verified_object(b"e" * 1000, last_checked=None)
    before = snapshot(data_object)

    with hashing_elsewhere(data_object):
        assert fixity_sweep(now=NOW)["skipped"] == 1
        assert snapshot(data_object) == before

    assert fixity_sweep(now=NOW)["match"] == 1


def test_beat_runs_both_sweeps_every_hour():
    schedule = settings.CELERY_BEAT_SCHEDULE
    by_task = {entry["task"]: entry["schedule"] for entry in schedule.values()}

    assert by_task["kura.fixity_sweep"] == 3600
    assert by_task["kura.abandoned_uploads_sweep"] == 3600
    assert {"kura.fixity_sweep", "kura.abandoned_uploads_sweep"} <= set(app.tasks)


# --- Abandoned uploads -------------------------------------------------------------------


def upload_in_flight(*, idle_for: datetime.timedelta, completed: bool = False):
    """A multipart upload really started in S3, with one part, idle for ``idle_for``."""
    data_object = DataObjectFactory(status=DataObject.Status.UPLOADING, size=6 * 1024**2)
    store = object_store()
    upload_id = store.create(data_object.storage_key, "application/octet-stream")
    store.client.upload_part(
        Bucket=store.bucket,
        Key=data_object.storage_key,
        UploadId=upload_id,
        PartNumber=1,
        Body=b"p" * (5 * 1024**2),
    )
    UploadSession.objects.create(
        data_object=data_object,
        upload_id=upload_id,
        part_size=5 * 1024**2,
        part_count=2,
        created_by=data_object.uploaded_by,
        last_activity_at=NOW - idle_for,
        expires_at=NOW + datetime.timedelta(days=1),
        completed_at=NOW if completed else None,
    )
    return data_object, upload_id


def test_uploads_idle_for_a_day_are_aborted_and_their_objects_abandoned():
    idle, idle_upload = upload_in_flight(idle_for=datetime.timedelta(hours=25))
    active, active_upload = upload_in_flight(idle_for=datetime.timedelta(hours=1))
    store = object_store()

    assert uploads_abandon_idle(now=NOW) == 1

    idle.refresh_from_db()
    active.refresh_from_db()
    assert idle.status == DataObject.Status.ABANDONED
    assert active.status == DataObject.Status.UPLOADING
    with pytest.raises(NoSuchUpload):
        store.list_parts(idle.storage_key, idle_upload)
    assert len(store.list_parts(active.storage_key, active_upload)) == 1
    assert UploadSession.objects.filter(data_object=idle).exists()


def test_a_second_abandon_sweep_changes_nothing():
    idle, _ = upload_in_flight(idle_for=datetime.timedelta(hours=30))
    assert abandoned_uploads_sweep_task.apply().result == {"abandoned": 1}
    after_first = snapshot(idle)

    assert abandoned_uploads_sweep_task.apply().result == {"abandoned": 0}
    assert snapshot(idle) == after_first


def test_a_completed_upload_is_never_abandoned():
    data_object, _ = upload_in_flight(idle_for=datetime.timedelta(days=3), completed=True)

    assert uploads_abandon_idle(now=NOW) == 0
    data_object.refresh_from_db()
    assert data_object.status == DataObject.Status.UPLOADING


# --- Stalled checksums -------------------------------------------------------------------


def test_checksums_left_pending_are_queued_again(django_capture_on_commit_callbacks):
    now = timezone.now()
    stalled = DataObjectFactory(
        checksum_state=DataObject.ChecksumState.PENDING,
        stored_at=now - datetime.timedelta(hours=2),
    )
    DataObjectFactory(checksum_state=DataObject.ChecksumState.PENDING, stored_at=now)
    DataObjectFactory(
        checksum_state=DataObject.ChecksumState.VERIFIED,
        stored_at=now - datetime.timedelta(hours=2),
    )

    assert checksums_stalled(now=now) == [stalled.pk]
    assert "kura.checksum_requeue" in {e["task"] for e in settings.CELERY_BEAT_SCHEDULE.values()}


def test_a_checksum_left_verifying_by_a_dead_worker_is_queued_at_once():
    """A worker killed mid-hash leaves "verifying" and frees its hashing lock (its session
    dies with it): the requeue takes it back without waiting, unless a worker holds it."""
    now = timezone.now()
    lost = DataObjectFactory(checksum_state=DataObject.ChecksumState.VERIFYING, stored_at=now)
    running = DataObjectFactory(checksum_state=DataObject.ChecksumState.VERIFYING, stored_at=now)

    with hashing_elsewhere(running):
        assert checksums_stalled(now=now) == [lost.pk]
    assert sorted(checksums_stalled(now=now)) == sorted([lost.pk, running.pk])


def test_a_checksum_the_broker_missed_is_queued_at_once_and_marked_sent():
    now = timezone.now()
    unsent = DataObjectFactory(
        checksum_state=DataObject.ChecksumState.PENDING, stored_at=now, checksum_unsent=True
    )
    assert checksums_stalled(now=now) == [unsent.pk]
    assert settings.CELERY_BEAT_SCHEDULE["checksum-requeue"]["schedule"] <= 60

    checksum_requeue_task.apply()

    unsent.refresh_from_db()
    assert unsent.checksum_unsent is False
    assert checksums_stalled(now=now) == []


def test_a_broker_that_is_away_keeps_the_checksum_in_the_database():
    data_object = DataObjectFactory(checksum_state=DataObject.ChecksumState.PENDING)
    from tests.faults.test_checksum_faults import broker

    with broker("redis://127.0.0.1:9/0"):  # nothing listens there
        assert checksum_send(data_object.pk) is False

    data_object.refresh_from_db()
    assert data_object.checksum_unsent is True
    assert checksums_stalled(now=timezone.now()) == [data_object.pk]


def test_housekeeping_has_its_own_queue():
    routes = settings.CELERY_TASK_ROUTES
    housekeeping = (
        "kura.checksum_requeue",
        "kura.abandoned_uploads_sweep",
        "kura.embargo_lift",
        "kura.storage_reconcile",
        "kura.tally_check",
        "kura.tally_fold",
    )
    for name in housekeeping:
        assert routes[name]["queue"] == settings.KURA_HOUSEKEEPING_QUEUE
        assert name in app.tasks
    assert "kura.checksum" not in routes
    # Orphaned bytes are looked for daily, without an operator.
    by_task = {entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert by_task["kura.storage_reconcile"] == 24 * 60 * 60
    assert by_task["kura.tally_fold"] == 60 and by_task["kura.tally_check"] == 24 * 60 * 60
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == {
        settings.CELERY_TASK_DEFAULT_QUEUE,
        settings.KURA_HOUSEKEEPING_QUEUE,
        settings.KURA_PREVIEW_QUEUE,  # previews never delay a checksum either
    }


def _no_fixity_alarm(data_object, mailoutbox, checks_before: int) -> None:
    data_object.refresh_from_db()
    assert data_object.status == DataObject.Status.DELETED
    assert data_object.quarantined_at is None
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.fixity_checks.count() == checks_before  # no check of a deleted file
    assert not AuditEvent.objects.filter(
        data_object=data_object, action=AuditEvent.Action.FIXITY_FAILED
    ).exists()
    assert mailoutbox == []


def test_an_object_deleted_after_the_sweep_listed_it_raises_no_alarm(mailoutbox, on_commit):
    data_object = verified_object(b"d" * 1000, last_checked=None)
    checks = data_object.fixity_checks.count()
    assert fixity_due(now=NOW, limit=10) == [data_object.pk]
    data_object_delete(actor=make_superuser(), data_object_id=data_object.pk)

    with on_commit():
        assert data_object_fixity_check(data_object_id=data_object.pk) is None

    _no_fixity_alarm(data_object, mailoutbox, checks)


def test_an_object_deleted_while_its_bytes_are_read_raises_no_alarm(
    mailoutbox, on_commit, monkeypatch
):
    data_object = verified_object(b"e" * 1000, last_checked=None)
    checks = data_object.fixity_checks.count()
    read = checksums.fixity_compare

    def read_while_someone_deletes(obj, **kwargs):
        data_object_delete(actor=make_superuser(), data_object_id=obj.pk)
        return read(obj, **kwargs)  # the bytes are gone by now: "missing"

    monkeypatch.setattr(checksums, "fixity_compare", read_while_someone_deletes)
    with on_commit():
        assert data_object_fixity_check(data_object_id=data_object.pk) is None

    _no_fixity_alarm(data_object, mailoutbox, checks)
