"""Verification of stored uploads: digests from the stored bytes, failures quarantined."""

import contextlib
import hashlib
import os
import threading

import pytest
from celery import signals
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from repository.models import AuditEvent, DataObject, FixityCheck
from repository.preservation import fixity
from repository.preservation.checksums import data_object_checksum_verify
from repository.preservation.fixity import object_scan, stream_digests
from repository.preservation.object_store import NoSuchObject, StoreError
from repository.tasks import checksum_task
from tests.factories import MembershipFactory

from .stored_objects import digests, hashing_elsewhere, snapshot, store_object

pytestmark = pytest.mark.django_db

# Small chunks and ranges, so a one-megabyte object crosses many of both.
SMALL_CHUNKS = override_settings(
    KURA_CHECKSUM_CHUNK_SIZE=64 * 1024, KURA_CHECKSUM_RANGE_SIZE=256 * 1024
)


@pytest.fixture
def random_bytes():
    return os.urandom(1024 * 1024 + 12345)


@pytest.fixture
def verify(django_capture_on_commit_callbacks):
    """The service, with on-commit work (the e-mails) run as a worker would."""

    def run(data_object: DataObject) -> DataObject:
        with django_capture_on_commit_callbacks(execute=True):
            return data_object_checksum_verify(data_object_id=data_object.pk)

    return run


@pytest.mark.parametrize(
    "chunks",
    [
        [],
        [b""],
        [b"a"],
        [b"abc", b"", b"def"],
        [os.urandom(3000) for _ in range(7)],
        [os.urandom(1 << 20), b"x", os.urandom(70_000)],
    ],
    ids=["nothing", "empty", "one-byte", "with-empty-chunk", "small", "uneven"],
)
def test_streamed_digests_equal_hashlib_in_memory(chunks):
    data = b"".join(chunks)

    result = stream_digests(iter(chunks))

    assert (result.sha256, result.md5) == digests(data)
    assert result.size == len(data)


def test_streamed_digests_pass_on_a_read_failure_and_stop_their_threads():
    def failing_reader():
        yield os.urandom(5000)
        raise StoreError("connection reset")

    before = threading.active_count()

    with pytest.raises(StoreError, match="connection reset"):
        stream_digests(failing_reader())

    assert threading.active_count() == before


def filesystem_storage(location) -> override_settings:
    """The embedded profile's storage, rooted at ``location``."""
    backend = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    storages = {**settings.STORAGES, "default": {**backend, "OPTIONS": {"location": location}}}
    return override_settings(KURA_STORAGE="filesystem", STORAGES=storages)


@SMALL_CHUNKS
def test_the_filesystem_backend_streams_the_same_digests(tmp_path, random_bytes):
    with filesystem_storage(str(tmp_path)):
        default_storage.save("objects/ab/abcdef", ContentFile(random_bytes))

        scan = object_scan(storage_key="objects/ab/abcdef")

        with pytest.raises(NoSuchObject):
            object_scan(storage_key="objects/ab/missing")
    assert (scan.digests.sha256, scan.digests.md5) == digests(random_bytes)
    assert scan.digests.size == len(random_bytes)


def test_a_missing_storage_root_is_a_storage_error_not_a_missing_file(tmp_path):
    with filesystem_storage(str(tmp_path / "not-mounted")), pytest.raises(StoreError) as error:
        object_scan(storage_key="objects/ab/abcdef")

    assert not isinstance(error.value, NoSuchObject)


@SMALL_CHUNKS
def test_verification_records_the_digests_of_the_stored_bytes(verify, random_bytes, mailoutbox):
    data_object = store_object(random_bytes)

    verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert (data_object.sha256, data_object.md5) == digests(random_bytes)
    assert data_object.checksum_progress == 100
    assert data_object.last_fixity_at is not None
    assert data_object.quarantined_at is None
    check = data_object.fixity_checks.get()
    assert check.outcome == FixityCheck.Outcome.MATCH
    assert (check.sha256, check.md5, check.size) == (*digests(random_bytes), len(random_bytes))
    assert check.checked_at == data_object.last_fixity_at
    assert not AuditEvent.objects.exists()
    assert mailoutbox == []


@SMALL_CHUNKS
def test_a_second_verification_changes_nothing(verify, random_bytes):
    data_object = store_object(random_bytes)
    verify(data_object)
    first = snapshot(data_object)

    verify(data_object)

    assert snapshot(data_object) == first


def test_the_uploaders_matching_sha256_is_accepted_in_any_case(verify):
    data = b"spectra " * 1000
    data_object = store_object(data, client_sha256=digests(data)[0].upper())

    verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.quarantined_at is None


def test_a_different_client_sha256_fails_quarantines_audits_and_mails(verify, client, mailoutbox):
    data = b"micrograph " * 2000
    data_object = store_object(data, client_sha256="0" * 64, original_filename="肝臓.tif")
    MembershipFactory(project=data_object.project, role=Role.RESEARCHER)  # not told
    pm = data_object.project.memberships.get(role=Role.PM).user

    verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.sha256 == digests(data)[0]
    assert data_object.quarantined_at is not None
    assert "SHA-256 mismatch" in data_object.quarantine_reason
    assert data_object.fixity_checks.get().outcome == FixityCheck.Outcome.MISMATCH
    event = AuditEvent.objects.get(data_object=data_object)
    assert event.action == AuditEvent.Action.FIXITY_FAILED
    assert event.actor is None
    assert event.after == {"quarantined": True}
    (mail,) = mailoutbox
    assert sorted(mail.to) == sorted([data_object.uploaded_by.email, pm.email])
    assert "肝臓.tif" in mail.subject
    assert "固定性検査の失敗" in mail.subject
    assert "Fixity failure" in mail.subject
    assert "SHA-256 mismatch" in mail.body
    assert f"/objects/{data_object.pk}/" in mail.body
    client.force_login(data_object.uploaded_by)
    assert client.get(f"/objects/{data_object.pk}/download").status_code == 404


def _digest_of_parts(data: bytes, part_size: int) -> str:
    joined = b"".join(
        hashlib.sha256(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)
    )
    return hashlib.sha256(joined).hexdigest()


@pytest.mark.parametrize(
    ("size", "part_size"),
    [(0, 5), (1, 5), (5, 5), (12, 5), (1024 * 1024 + 12345, 64 * 1024 + 7)],
    ids=["empty", "one-byte", "one-part", "uneven", "many-chunks"],
)
def test_the_digest_of_the_parts_is_the_sha256_of_each_parts_sha256(size, part_size):
    data = os.urandom(size)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    expected = _digest_of_parts(data, part_size) if data else hashlib.sha256().hexdigest()

    assert fixity.parts_sha256(data, part_size) == expected
    assert stream_digests(chunks, part_size=part_size).parts_sha256 == expected
    assert stream_digests(chunks).parts_sha256 == ""


@pytest.mark.parametrize("streamed", [False, True], ids=["one-read", "streamed"])
def test_the_uploaders_digest_of_the_parts_verifies_end_to_end(verify, streamed):
    data = os.urandom(1024 * 1024 + 12345 if streamed else 100_000)
    part_size = 40_000
    data_object = store_object(
        data, client_parts_sha256=_digest_of_parts(data, part_size), client_part_size=part_size
    )

    with SMALL_CHUNKS if streamed else contextlib.nullcontext():
        verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.sha256 == digests(data)[0]
    assert data_object.integrity == "end_to_end"
    # A later fixity pass cuts the stored bytes at the same part size and agrees.
    assert fixity.fixity_compare(data_object)[1] == []


@SMALL_CHUNKS
@pytest.mark.parametrize(
    "wrong",
    ["other-bytes", "other-part-size"],
)
def test_a_digest_of_the_parts_that_disagrees_fails_and_quarantines(verify, mailoutbox, wrong):
    data = os.urandom(300_000)
    part_size = 40_000
    given = (
        _digest_of_parts(data[:-1] + b"!", part_size)
        if wrong == "other-bytes"
        else _digest_of_parts(data, part_size + 1)
    )
    data_object = store_object(data, client_parts_sha256=given, client_part_size=part_size)

    verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.quarantined_at is not None
    assert "SHA-256 mismatch" in data_object.quarantine_reason
    assert data_object.integrity is None
    assert len(mailoutbox) == 1


def test_a_size_that_differs_from_the_declared_one_fails(verify, mailoutbox):
    data = b"x" * 5000
    data_object = store_object(data, size=6000)

    verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.quarantine_reason == (
        "Size mismatch: 5000 bytes are stored, the upload declared 6000."
    )
    assert data_object.fixity_checks.get().size == 5000
    assert len(mailoutbox) == 1


def test_a_failed_verification_run_again_changes_nothing(verify, mailoutbox):
    data_object = store_object(b"y" * 100, client_sha256="1" * 64)
    verify(data_object)
    first = snapshot(data_object)

    verify(data_object)

    assert snapshot(data_object) == first
    assert len(mailoutbox) == 1


@pytest.mark.parametrize("status", [DataObject.Status.UPLOADING, DataObject.Status.ABANDONED])
def test_an_object_that_is_not_stored_is_left_alone(verify, status):
    data_object = store_object(b"partial", status=status)
    before = snapshot(data_object)

    verify(data_object)

    assert snapshot(data_object) == before


def test_an_object_another_worker_is_hashing_is_not_hashed_twice(verify):
    data_object = store_object(b"z" * 1000)
    before = snapshot(data_object)

    with hashing_elsewhere(data_object):
        verify(data_object)
        assert snapshot(data_object) == before

    verify(data_object)
    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED


def test_a_verification_left_behind_by_a_dead_worker_is_taken_over(verify):
    data = b"w" * 1000
    data_object = store_object(
        data, checksum_state=DataObject.ChecksumState.VERIFYING, checksum_progress=40
    )

    verify(data_object)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.sha256 == digests(data)[0]


@SMALL_CHUNKS
def test_progress_is_written_rarely_not_for_every_chunk(verify, random_bytes, monkeypatch):
    data_object = store_object(random_bytes)  # 17 chunks, 5 ranges
    monkeypatch.setattr(fixity, "PROGRESS_INTERVAL", 3600.0)

    with CaptureQueriesContext(connection) as queries:
        verify(data_object)

    assert len(queries) <= 12, [q["sql"] for q in queries]


@SMALL_CHUNKS
def test_progress_climbs_a_percent_at_a_time_when_time_allows(verify, random_bytes, monkeypatch):
    data_object = store_object(random_bytes)
    monkeypatch.setattr(fixity, "PROGRESS_INTERVAL", 0.0)

    with CaptureQueriesContext(connection) as queries:
        verify(data_object)

    progress_writes = [
        q for q in queries if "checksum_progress" in q["sql"] and q["sql"].startswith("UPDATE")
    ]
    # claim (0), at most one write per chunk below 100, then the final 100
    assert 3 <= len(progress_writes) <= 2 + 17


# --- The task ----------------------------------------------------------------------------


def test_the_task_retries_storage_errors_with_backoff_within_its_own_time_limit():
    assert checksum_task.name == "kura.checksum"
    assert checksum_task.acks_late is True
    assert checksum_task.autoretry_for == (StoreError,)
    assert checksum_task.retry_backoff is True
    assert checksum_task.max_retries == 8
    assert checksum_task.time_limit >= 6 * 60 * 60  # a 1 TB object at 50+ MB/s
    assert checksum_task.soft_time_limit < checksum_task.time_limit


def test_the_task_verifies_and_a_second_run_changes_nothing():
    data = os.urandom(50_000)
    data_object = store_object(data)

    first = checksum_task.apply(args=[data_object.pk])
    after_first = snapshot(data_object)
    second = checksum_task.apply(args=[data_object.pk])

    assert first.successful(), first.traceback
    assert first.result == {
        "object_id": data_object.pk,
        "checksum_state": "verified",
        "sha256": digests(data)[0],
    }
    assert second.result == first.result
    assert snapshot(data_object) == after_first


def test_the_task_for_a_deleted_row_does_nothing():
    assert checksum_task.apply(args=[0]).result == {"object_id": 0, "checksum_state": None}


@pytest.fixture
def retries():
    """The error behind every retry the task asks for; ``hooks`` run at the first one."""
    seen: list = []
    hooks: list = []

    def record(sender=None, reason=None, **kwargs):
        seen.append(reason.exc)
        if len(seen) == 1:
            for hook in hooks:
                hook()

    signals.task_retry.connect(record, weak=False)
    yield seen, hooks
    signals.task_retry.disconnect(record)


def test_a_transient_storage_failure_is_retried_until_the_bytes_are_readable(retries):
    seen, hooks = retries
    data = os.urandom(20_000)
    data_object = store_object(b"")
    default_storage.delete(data_object.storage_key)  # not there (yet): HEAD answers 404
    hooks.append(lambda: default_storage.save(data_object.storage_key, ContentFile(data)))
    DataObject.objects.filter(pk=data_object.pk).update(size=len(data))

    result = checksum_task.apply(args=[data_object.pk])

    assert len(seen) == 1
    assert isinstance(seen[0], NoSuchObject)
    assert result.successful(), result.traceback
    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.sha256 == digests(data)[0]


def test_bytes_missing_before_the_first_verification_are_quarantined_and_reported(
    retries, settings, mailoutbox, django_capture_on_commit_callbacks
):
    """A stored file that is gone before anyone verified it: after
    KURA_CHECKSUM_MISSING_TRIES reads it is reported like a fixity failure, not retried
    for ever."""
    settings.KURA_CHECKSUM_MISSING_TRIES = 3
    seen, _ = retries
    data_object = store_object(b"gone")
    default_storage.delete(data_object.storage_key)

    with django_capture_on_commit_callbacks(execute=True):
        result = checksum_task.apply(args=[data_object.pk])

    assert len(seen) == 2  # the third read decided
    assert result.successful()
    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.quarantined_at is not None
    assert "missing" in data_object.quarantine_reason
    check = data_object.fixity_checks.get()
    assert check.outcome == FixityCheck.Outcome.MISMATCH
    assert "missing" in check.detail
    assert AuditEvent.objects.filter(
        data_object=data_object, action=AuditEvent.Action.FIXITY_FAILED
    ).exists()
    assert len(mailoutbox) == 1
    # A requeue later changes nothing.
    checksum_task.apply(args=[data_object.pk])
    assert data_object.fixity_checks.count() == 1


def test_a_store_that_stays_down_gives_up_and_leaves_the_object_pending(retries):
    """A store that cannot be reached is no evidence of lost bytes: nothing is quarantined,
    the object stays pending for beat's requeue."""
    seen, _ = retries
    data_object = store_object(b"kept")
    unreachable = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"endpoint_url": "http://127.0.0.1:9"},
        },
    }
    with override_settings(STORAGES=unreachable, AWS_S3_MAX_POOL_CONNECTIONS=1):
        result = checksum_task.apply(args=[data_object.pk])

    assert len(seen) == checksum_task.max_retries
    assert result.failed()
    assert isinstance(result.result, StoreError)
    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.PENDING
    assert data_object.quarantined_at is None
    assert data_object.checksum_missing_tries == 0
    assert not data_object.fixity_checks.exists()


def test_the_embedded_profile_keeps_workers_apart_with_a_file_lock(monkeypatch, settings, tmp_path):
    """SQLite has no advisory locks; the embedded profile's workers share one host."""
    monkeypatch.setattr(connection, "vendor", "sqlite")
    settings.VAR_DIR = tmp_path
    lock = fixity.hashing_lock

    with lock(7) as first, lock(7) as second, lock(8) as other:
        assert (first, second, other) == (True, False, True)
    with lock(7) as after_release:
        assert after_release is True


def test_a_small_object_is_verified_with_one_storage_request(verify):
    """Thousands of small uploads: each costs one GET, not HEADs, threads and new clients."""
    data = os.urandom(1024 * 1024)
    data_object = store_object(data)
    requests = []
    client = default_storage.connection.meta.client
    client.meta.events.register("before-call.s3", lambda model, **kw: requests.append(model.name))

    with CaptureQueriesContext(connection) as queries:
        verify(data_object)

    assert requests == ["GetObject"]
    assert len(queries) <= 10, [q["sql"] for q in queries]
    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert (data_object.sha256, data_object.md5) == digests(data)


# --- Small objects verified in groups (kura.checksum_many) ---------------------------------


def _group_verify(ids, capture):
    from repository.preservation.checksums import data_objects_checksum_verify

    with capture(execute=True):
        return data_objects_checksum_verify(data_object_ids=ids)


def _recorded(data_object: DataObject) -> dict:
    state = snapshot(data_object)
    check = data_object.fixity_checks.get()
    state["fields"].pop("last_fixity_at")
    state["check"] = (check.outcome, check.sha256, check.md5, check.size, check.detail)
    return state


def test_a_group_records_what_one_by_one_verification_records(
    django_capture_on_commit_callbacks, verify
):
    blobs = [os.urandom(1000 + n) for n in range(3)]
    grouped = [store_object(b, client_sha256=digests(b)[0]) for b in blobs]
    single = [store_object(b, client_sha256=digests(b)[0]) for b in blobs]

    assert _group_verify([o.pk for o in grouped], django_capture_on_commit_callbacks) == []
    for data_object in single:
        verify(data_object)

    for one, alone in zip(grouped, single, strict=True):
        assert _recorded(one) == _recorded(alone)
        assert one.checksum_state == DataObject.ChecksumState.VERIFIED
        assert one.integrity == alone.integrity


def test_a_mismatch_in_a_group_quarantines_only_that_object(django_capture_on_commit_callbacks):
    blobs = [os.urandom(2000) for _ in range(3)]
    objects = [store_object(b, client_sha256=digests(b)[0]) for b in blobs]
    bad = store_object(os.urandom(2000), client_sha256=digests(b"something else")[0])

    ids = [objects[0].pk, bad.pk, objects[1].pk, objects[2].pk]
    assert _group_verify(ids, django_capture_on_commit_callbacks) == []

    bad.refresh_from_db()
    assert bad.checksum_state == DataObject.ChecksumState.FAILED
    assert bad.quarantined_at is not None
    assert bad.fixity_checks.get().outcome == FixityCheck.Outcome.MISMATCH
    for data_object in objects:
        data_object.refresh_from_db()
        assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
        assert data_object.quarantined_at is None
        assert data_object.fixity_checks.get().outcome == FixityCheck.Outcome.MATCH


def test_a_read_error_in_a_group_leaves_only_that_object_for_a_retry(
    django_capture_on_commit_callbacks, monkeypatch
):
    from repository.preservation.object_store import S3Store

    blobs = [os.urandom(3000) for _ in range(3)]
    objects = [store_object(b, client_sha256=digests(b)[0]) for b in blobs]
    failing = objects[1].storage_key
    read = S3Store.read_head_fast

    def flaky(self, key, length):
        if key == failing:
            raise StoreError("connection reset")
        return read(self, key, length)

    monkeypatch.setattr(S3Store, "read_head_fast", flaky)

    assert _group_verify([o.pk for o in objects], django_capture_on_commit_callbacks) == [
        objects[1].pk
    ]

    states = [snapshot(o) for o in objects]
    assert [s["fields"]["checksum_state"] for s in states] == ["verified", "pending", "verified"]
    assert [s["fixity_checks"] for s in states] == [1, 0, 1]


def test_a_group_run_twice_changes_nothing_and_skips_what_another_worker_hashes(
    django_capture_on_commit_callbacks,
):
    blobs = [os.urandom(1500) for _ in range(3)]
    objects = [store_object(b, client_sha256=digests(b)[0]) for b in blobs]
    ids = [o.pk for o in objects]

    with hashing_elsewhere(objects[2]):
        assert _group_verify(ids, django_capture_on_commit_callbacks) == []
    assert snapshot(objects[2])["fields"]["checksum_state"] == "pending"
    _group_verify(ids, django_capture_on_commit_callbacks)
    before = [snapshot(o) for o in objects]

    assert _group_verify(ids, django_capture_on_commit_callbacks) == []

    assert [snapshot(o) for o in objects] == before
    assert all(s["fields"]["checksum_state"] == "verified" for s in before)


def test_a_group_leaves_a_file_stored_larger_than_a_chunk_to_the_streamed_read(
    django_capture_on_commit_callbacks,
):
    data = os.urandom(64 * 1024 + 10)
    declared_small = store_object(data, size=1000)
    with SMALL_CHUNKS:
        alone = _group_verify([declared_small.pk], django_capture_on_commit_callbacks)
    assert alone == [declared_small.pk]
    assert snapshot(declared_small)["fields"]["checksum_state"] == "pending"


def test_the_fan_out_groups_small_objects_and_keeps_unsent_ones_for_the_requeue(monkeypatch):
    from repository.preservation import queue

    small = [store_object(os.urandom(100)) for _ in range(3)]
    large = store_object(os.urandom(64 * 1024 + 1))
    ids = [small[0].pk, large.pk, small[1].pk, small[2].pk]
    sent = []

    def accepted(name):
        return lambda args, **kwargs: sent.append((name, args[0]))

    monkeypatch.setattr(queue.task_by_name(queue.CHECKSUM), "apply_async", accepted("one"))
    monkeypatch.setattr(queue.task_by_name(queue.CHECKSUM_MANY), "apply_async", accepted("many"))
    with SMALL_CHUNKS, override_settings(KURA_CHECKSUM_GROUP_SIZE=2):
        assert queue.checksums_queue_each(ids) == 4
    assert sent == [
        ("many", [small[0].pk, small[1].pk]),
        ("many", [small[2].pk]),
        ("one", large.pk),
    ]

    def broker_away(args, **kwargs):
        raise OSError("connection refused")

    sent.clear()
    monkeypatch.setattr(queue.task_by_name(queue.CHECKSUM_MANY), "apply_async", broker_away)
    with SMALL_CHUNKS, override_settings(KURA_CHECKSUM_GROUP_SIZE=2):
        assert queue.checksums_queue_each(ids) == 0
    unsent = set(DataObject.objects.filter(checksum_unsent=True).values_list("pk", flat=True))
    assert unsent == set(ids)
