"""Kura's rows and the store's bytes agree again after a crash
(repository/preservation/reconcile.py).

"A completion whose commit was lost" is made here exactly as it happens: the store's own
multipart completion runs (the real SeaweedFS, or the embedded filesystem store), and
Kura's transaction never records it. tests/faults/test_upload_faults.py does it by
killing a real PostgreSQL.
"""

import datetime
import io
import os
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import DataObject, UploadSession
from repository.preservation import uploads
from repository.preservation.housekeeping import uploads_abandon_idle
from repository.preservation.object_store import (
    NoSuchObject,
    NoSuchUpload,
    StoredPart,
    object_store,
)
from repository.preservation.reconcile import multipart_etag, storage_reconcile
from tests.factories import DmpRecordFactory, MembershipFactory, queued_work

from .upload_client import UploadClient

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
DATA = os.urandom(9 * MIB + 4321)  # two parts of 8 MiB, the last one short


@pytest.fixture
def researcher():
    return MembershipFactory(role=Role.RESEARCHER)


@pytest.fixture
def record(researcher):
    return DmpRecordFactory(project=researcher.project)


@pytest.fixture
def filesystem_profile(tmp_path, settings):
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    with override_settings(
        STORAGES=storages, KURA_STORAGE="filesystem", KURA_UPLOAD_DIR=tmp_path / "uploads"
    ):
        object_store().setup(cors_origins=[])
        yield tmp_path


def _fields(researcher, record, size: int | None = None) -> dict:
    size = len(DATA) if size is None else size
    return {
        "project": researcher.project_id,
        "record": record.pk,
        "filename": "run.fastq.gz",
        "size": size,
        "content_type": "application/gzip",
        "tier": Tier.SHARED,
    }


def _sent(client, researcher, record, data=DATA):
    """An upload whose every part is in the store, not completed: (upload, ETags)."""
    upload = client.start_ok(**_fields(researcher, record, size=len(data)))
    etags = client.put_parts(upload, data, range(1, upload.part_count + 1))
    return upload, etags


def _store_completes(upload, etags) -> None:
    """The store completes the upload; Kura's commit is lost (nothing recorded)."""
    session = UploadSession.objects.select_related("data_object").get(pk=upload.id)
    object_store().complete(
        session.data_object.storage_key,
        session.upload_id,
        [StoredPart(n, 0, etags[n]) for n in sorted(etags)],
    )


def _key(upload) -> str:
    return DataObject.objects.get(pk=upload.object_id).storage_key


def _bytes_there(key: str) -> bool:
    try:
        object_store().head(key)
    except NoSuchObject:
        return False
    return True


def test_multipart_etag_is_the_one_the_store_gives(researcher, record):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    _store_completes(upload, etags)

    assert object_store().head(_key(upload)).etag == multipart_etag([etags[1], etags[2]])


def test_a_completion_whose_commit_was_lost_succeeds_when_retried(
    researcher, record, django_capture_on_commit_callbacks
):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    _store_completes(upload, etags)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.complete(upload.id, etags)

    assert response.status_code == 200, response.content
    data_object = DataObject.objects.get(pk=upload.object_id)
    assert data_object.status == DataObject.Status.STORED
    assert data_object.checksum_state == DataObject.ChecksumState.PENDING
    assert UploadSession.objects.get(pk=upload.id).completed_at is not None
    assert len(queued_work(callbacks)) == 1  # the checksum, queued as for any completion
    assert client.complete(upload.id, etags).status_code == 200  # and again: same object


def test_a_retry_claiming_other_parts_is_not_adopted(researcher, record):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    _store_completes(upload, etags)

    response = client.complete(upload.id, {1: etags[2], 2: etags[1]})

    assert response.status_code == 400
    assert "not made of these parts" in response.content.decode()
    assert DataObject.objects.get(pk=upload.object_id).status == DataObject.Status.UPLOADING


def test_a_completion_of_an_upload_the_store_forgot_is_told_so(researcher, record):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    session = UploadSession.objects.select_related("data_object").get(pk=upload.id)
    object_store().abort(session.data_object.storage_key, session.upload_id)  # expired

    response = client.complete(upload.id, etags)

    assert response.status_code == 400
    assert "no longer knows this upload" in response.content.decode()


def test_the_embedded_store_adopts_a_completion_whose_commit_was_lost(
    filesystem_profile, researcher, record
):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    _store_completes(upload, etags)

    assert client.complete(upload.id, {1: etags[2], 2: etags[1]}).status_code == 400
    response = client.complete(upload.id, etags)

    assert response.status_code == 200, response.content
    assert DataObject.objects.get(pk=upload.object_id).status == DataObject.Status.STORED


def test_an_abort_after_a_lost_commit_leaves_no_bytes(researcher, record):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    _store_completes(upload, etags)

    assert client.abort(upload.id).status_code == 204

    assert DataObject.objects.get(pk=upload.object_id).status == DataObject.Status.ABANDONED
    assert not _bytes_there(_key(upload))
    response = client.complete(upload.id, etags)
    assert response.status_code == 400
    assert "aborted" in response.content.decode()


def _idle(upload) -> datetime.datetime:
    """A time at which ``upload`` has been idle long enough to be swept."""
    return UploadSession.objects.get(pk=upload.id).last_activity_at + datetime.timedelta(days=2)


def test_the_idle_sweep_adopts_a_completion_whose_commit_was_lost(
    researcher, record, django_capture_on_commit_callbacks
):
    client = UploadClient(researcher.user)
    upload, etags = _sent(client, researcher, record)
    _store_completes(upload, etags)

    with django_capture_on_commit_callbacks() as callbacks:
        assert uploads_abandon_idle(now=_idle(upload)) == 0

    data_object = DataObject.objects.get(pk=upload.object_id)
    assert data_object.status == DataObject.Status.STORED
    assert data_object.checksum_state == DataObject.ChecksumState.PENDING
    assert len(queued_work(callbacks)) == 1
    assert _bytes_there(data_object.storage_key)
    assert client.complete(upload.id, etags).status_code == 200


def test_the_idle_sweep_leaves_no_bytes_of_what_it_abandons(researcher, record):
    client = UploadClient(researcher.user)
    never_completed, _ = _sent(client, researcher, record)
    stray, _ = _sent(client, researcher, record)
    stray_key = _key(stray)
    default = object_store()
    default.client.put_object(Bucket=default.bucket, Key=stray_key, Body=b"not this upload")

    assert uploads_abandon_idle(now=_idle(stray)) == 2

    for upload in (never_completed, stray):
        assert DataObject.objects.get(pk=upload.object_id).status == DataObject.Status.ABANDONED
        assert not _bytes_there(_key(upload))
        session = UploadSession.objects.select_related("data_object").get(pk=upload.id)
        with pytest.raises(NoSuchUpload):
            object_store().list_parts(session.data_object.storage_key, session.upload_id)


def _orphans(researcher, record):
    """What no row owns, next to what rows own: answers the keys and upload ids."""
    client = UploadClient(researcher.user)
    store = object_store()
    stored = client.upload(DATA[:1000], **_fields(researcher, record, size=1000))
    stored_key = DataObject.objects.get(pk=stored["object_id"]).storage_key
    in_flight = client.start_ok(**_fields(researcher, record, size=1000))
    abandoned, etags = _sent(client, researcher, record, DATA[:1000])
    _store_completes(abandoned, etags)  # bytes an abort before this change left behind
    DataObject.objects.filter(pk=abandoned.object_id).update(status=DataObject.Status.ABANDONED)
    orphan_key = "objects/00/orphan-no-row"
    if settings_is_s3():
        store.client.put_object(Bucket=store.bucket, Key=orphan_key, Body=b"x")
    else:
        path = store._path(orphan_key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    orphan_upload = store.create("objects/00/orphan-upload", "")
    missing = client.upload(DATA[:10], **_fields(researcher, record, size=10))
    missing_key = DataObject.objects.get(pk=missing["object_id"]).storage_key
    store.delete(missing_key)
    return {
        "stored": stored_key,
        "in_flight": UploadSession.objects.get(pk=in_flight.id).upload_id,
        "abandoned": _key(abandoned),
        "orphan": orphan_key,
        "orphan_upload": orphan_upload,
        "missing": missing["object_id"],
    }


def settings_is_s3() -> bool:
    from django.conf import settings

    return settings.KURA_STORAGE == "s3"


def _upload_ids() -> set[str]:
    return {u.upload_id for u in object_store().list_uploads("objects/")}


@pytest.mark.parametrize("profile", ["s3", "filesystem"])
def test_the_reconciliation_removes_only_what_no_row_owns(profile, request, researcher, record):
    if profile == "filesystem":
        request.getfixturevalue("filesystem_profile")
    made = _orphans(researcher, record)
    later = timezone.now() + datetime.timedelta(days=1)

    young = storage_reconcile(now=timezone.now(), dry_run=False)
    assert young.orphan_objects == [] and young.orphan_uploads == []
    assert young.young_orphans >= 3

    dry = storage_reconcile(now=later, dry_run=True)
    assert set(dry.orphan_objects) >= {made["orphan"], made["abandoned"]}
    assert made["orphan_upload"] in {u for _, u in dry.orphan_uploads}
    assert _bytes_there(made["orphan"]) and made["orphan_upload"] in _upload_ids()

    done = storage_reconcile(now=later, dry_run=False)
    assert set(done.orphan_objects) == set(dry.orphan_objects)
    assert made["missing"] in done.stored_missing
    assert not _bytes_there(made["orphan"]) and not _bytes_there(made["abandoned"])
    assert made["orphan_upload"] not in _upload_ids()
    assert _bytes_there(made["stored"])
    assert made["in_flight"] in _upload_ids()
    assert made["stored"] not in done.orphan_objects


def test_the_operator_command_is_a_dry_run_unless_told(researcher, record):
    made = _orphans(researcher, record)
    out = io.StringIO()

    call_command("kura_storage_reconcile", "--grace-hours=1", stdout=out)

    assert _bytes_there(made["orphan"])  # grace: made just now
    later = timezone.now() + datetime.timedelta(days=1)
    report = storage_reconcile(now=later, dry_run=True)
    assert made["orphan"] in report.orphan_objects
    assert out.getvalue().splitlines()[-1].startswith("DRY RUN")


def _race(session: UploadSession, etags: dict) -> dict[str, str]:
    """Complete and abort ``session`` at once, each in a thread with its own database
    connection; answer each one's outcome ("ok" or the error it was told)."""
    gate = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def run(name, call):
        gate.wait()
        try:
            call()
            outcomes[name] = "ok"
        except ValidationError as exc:
            outcomes[name] = " ".join(exc.messages)
        finally:
            connection.close()

    calls = {
        "complete": lambda: uploads.upload_complete(session=session, parts=etags),
        "abort": lambda: uploads.upload_abort(session=session),
    }
    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_abort_racing_complete_has_exactly_one_winner(researcher, record, monkeypatch):
    """Two threads, two database connections, the real store: complete and abort of one
    upload at the same moment, ten times. One wins; the other is told what happened."""
    # The checksums are not this test's business: queued, they would reach the session's
    # Celery worker (tests/conftest.py), whose writes could still be running when this
    # test's database is flushed (TRUNCATE then waits on the worker and deadlocks).
    monkeypatch.setattr("repository.preservation.queue._send", lambda *args, **kwargs: True)
    client = UploadClient(researcher.user)
    for _ in range(10):
        upload, etags = _sent(client, researcher, record, DATA[:1000])
        outcomes = _race(UploadSession.objects.get(pk=upload.id), etags)

        data_object = DataObject.objects.get(pk=upload.object_id)
        if outcomes["complete"] == "ok":
            assert "already complete" in outcomes["abort"]
            assert data_object.status == DataObject.Status.STORED
            assert _bytes_there(data_object.storage_key)
        else:
            assert outcomes["abort"] == "ok"
            assert "aborted" in outcomes["complete"]
            assert data_object.status == DataObject.Status.ABANDONED
            assert not _bytes_there(data_object.storage_key)
