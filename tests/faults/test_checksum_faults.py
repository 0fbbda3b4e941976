"""Faults injected on real services, each test with a Redis of its own that it stops or
kills (never the suite's): a broker away at completion, and a whole worker killed in the
middle of a checksum. Nothing is left stuck: every object ends verified by itself."""

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import kombu.pools
import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Role
from config.celery import app
from repository.models import AuditEvent, DataObject, FixityCheck
from repository.preservation.object_store import object_store
from repository.tasks import checksum_requeue_task, checksum_task
from tests.conftest import _database_url
from tests.factories import DmpRecordFactory, MembershipFactory
from tests.private_services import PrivateRedis
from tests.repository.stored_objects import store_object
from tests.repository.upload_client import UploadClient
from tests.seaweedfs import wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent


@contextlib.contextmanager
def broker(url: str):
    """This process sends its tasks to ``url`` meanwhile (as a web process configured so)."""
    previous, from_environment = app.conf.broker_url, os.environ.get("CELERY_BROKER_URL")
    _connect(url)
    try:
        yield
    finally:
        _connect(previous)
        if from_environment is None:
            del os.environ["CELERY_BROKER_URL"]


def _connect(url: str) -> None:
    # Celery reads CELERY_BROKER_URL from the environment before its configuration.
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    kombu.pools.reset()  # closes and forgets every pooled connection and producer
    app._pool = None  # a new pool, with connections to ``url``
    app.amqp._producer_pool = None


def start_worker(
    broker_url: str, s3_server: str, *, pool: str = "solo", **settings_env: str
) -> subprocess.Popen:
    """A real Celery worker on ``broker_url``, in a process group of its own (so a test can
    kill it whole, main process and children)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "AWS_S3_ENDPOINT_URL": s3_server,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        **settings_env,
    }
    queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.KURA_HOUSEKEEPING_QUEUE}"
    return subprocess.Popen(  # noqa: S603 - our own worker
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "config",
            "worker",
            f"--pool={pool}",
            "--concurrency=1",
            f"--queues={queues}",
            f"--hostname=kura-fault-{os.getpid()}-{time.monotonic_ns()}@localhost",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(worker: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)


def state_of(data_object: DataObject) -> str:
    return DataObject.objects.values_list("checksum_state", flat=True).get(pk=data_object.pk)


@pytest.fixture
def redis(tmp_path):
    with PrivateRedis(tmp_path / "redis") as server:
        yield server


def test_a_completion_while_the_broker_is_down_succeeds_and_is_verified_once_it_is_back(
    redis, s3_server
):
    membership = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=membership.project)
    data = os.urandom(3 * 1024 * 1024)
    uploader = UploadClient(membership.user)
    with broker(redis.url):
        upload = uploader.start_ok(
            project=membership.project_id,
            record=record.pk,
            filename="broker-down.fastq.gz",
            size=len(data),
            content_type="application/gzip",
            tier="shared",
            sha256=hashlib.sha256(data).hexdigest(),
        )
        etags = uploader.put_parts(upload, data, range(1, upload.part_count + 1))
        redis.kill()

        started = time.monotonic()
        response = uploader.complete(upload.id, etags)
        waited = time.monotonic() - started

        assert response.status_code == 200, response.content
        assert waited < 20  # the broker is given up on within seconds
        data_object = DataObject.objects.get(pk=response.json()["object_id"])
        assert data_object.status == DataObject.Status.STORED
        assert data_object.checksum_state == DataObject.ChecksumState.PENDING
        assert data_object.checksum_unsent is True

        # The broker comes back (empty: no persistence); a worker runs, and beat's next
        # requeue sends what was kept in the database.
        redis.start()
        worker = start_worker(redis.url, s3_server)
        try:
            checksum_requeue_task.delay()
            wait_for(lambda: state_of(data_object) == "verified", 120, "verification")
        finally:
            stop(worker)
    data_object.refresh_from_db()
    assert data_object.checksum_unsent is False
    assert data_object.integrity == "end_to_end"


def test_a_worker_killed_whole_mid_checksum_leaves_nothing_verifying(redis, s3_server):
    data = os.urandom(192 * 1024 * 1024)
    data_object = store_object(data, filename="killed-mid-hash.tif")
    with broker(redis.url):
        worker = start_worker(redis.url, s3_server, pool="prefork")
        try:
            checksum_task.delay(data_object.pk)
            wait_for(lambda: state_of(data_object) == "verifying", 120, "the hash to start")
        finally:
            stop(worker)  # kill -9 of the main process and its child, mid-hash
        assert state_of(data_object) == "verifying"

        # A new worker starts (its start-up requeue, or beat's, finds the abandoned hash:
        # "verifying" with nobody holding its lock) and finishes the job by itself.
        worker = start_worker(redis.url, s3_server)
        try:
            wait_for(lambda: state_of(data_object) == "verified", 180, "verification")
        finally:
            stop(worker)
    data_object.refresh_from_db()
    assert data_object.sha256 == hashlib.sha256(data).hexdigest()


def test_bytes_gone_before_the_first_verification_are_quarantined_and_reported(redis, s3_server):
    data_object = store_object(os.urandom(64 * 1024), filename="vanished.csv")
    object_store().delete(data_object.storage_key)
    with broker(redis.url):
        worker = start_worker(redis.url, s3_server, KURA_CHECKSUM_MISSING_TRIES="3")
        try:
            checksum_task.delay(data_object.pk)
            wait_for(
                lambda: DataObject.objects.filter(
                    pk=data_object.pk, quarantined_at__isnull=False
                ).exists(),
                180,
                "the quarantine",
            )
        finally:
            stop(worker)
    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.checksum_missing_tries == 3  # tried, with the task's back-off, first
    assert "missing" in data_object.quarantine_reason
    (check,) = data_object.fixity_checks.all()
    assert check.outcome == FixityCheck.Outcome.MISMATCH
    assert "missing" in check.detail
    assert AuditEvent.objects.filter(
        data_object=data_object, action=AuditEvent.Action.FIXITY_FAILED
    ).exists()
