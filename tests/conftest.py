"""Shared fixtures: an S3 server over HTTP (moto), a real Celery worker, factories."""

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session", autouse=True)
def s3_server():
    """moto's S3 server on a free loopback port, with the test bucket created.

    moto checks neither checksums nor signatures: Kura's own code verifies every checksum.
    """
    port = _free_port()
    moto_server = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto_server), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: _port_open(port), 30, "moto S3 server")
        endpoint = f"http://127.0.0.1:{port}"
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
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, s3_server):
    """A real Celery worker in its own process, consuming this run's queue from Redis and
    using the test database and the S3 test server."""
    from django.db import connection

    from config.celery import app

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(connection.settings_dict),
        "AWS_S3_ENDPOINT_URL": s3_server,
    }
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    hostname = f"kura-test-{os.getpid()}@localhost"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "config",
            "worker",
            "--pool=solo",
            f"--queues={queue}",
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
        _wait_for(
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


def _database_url(settings_dict: dict) -> str:
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
