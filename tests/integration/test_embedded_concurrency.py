"""The embedded profile (SQLite, the filesystem store, kombu's filesystem broker) under the
load of a browser batch: many uploads starting, sending parts and completing at once while
a checksumming worker writes to the same database file. Nothing answers 5xx; a write lock
held longer than the busy timeout answers 503 with ``Retry-After`` and changes nothing."""

import base64
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.test_settings import PROFILE_VARIABLES

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration

SETUP = """
import json
import django
django.setup()
from django.core.management import call_command
from accounts.models import Membership, User
from accounts.tokens import api_token_create
from dmp.models import DmpRecord
call_command("kura_demo", verbosity=0)
user = User.objects.get(username="researcher")
project = Membership.objects.filter(user=user).order_by("pk").first().project
record = DmpRecord.objects.filter(project=project).order_by("pk").first()
_, token = api_token_create(user=user, name="concurrency test")
print(json.dumps({"project": project.pk, "record": record.pk, "token": token}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


SERVER_ERROR = re.compile(r'" 5\d\d ')


class EmbeddedKura:
    """Kura as ``bin/run`` starts it, in its own folder and on a free port."""

    def __init__(self, var_dir: Path, sqlite_timeout: int):
        self.var_dir = var_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
        self.env.update(
            DJANGO_SETTINGS_MODULE="config.settings",
            KURA_VAR_DIR=str(var_dir),
            KURA_DEMO_PASSWORD="kura-demo-test",  # noqa: S105 - test only
            KURA_SQLITE_TIMEOUT=str(sqlite_timeout),
        )
        self.log = var_dir / "web.log"
        self.processes: list[subprocess.Popen] = []

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return result.stdout

    def start(self, *, worker: bool) -> dict:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.manage("migrate", "--noinput", "-v0")
        self.manage("kura_storage_setup")
        setup = subprocess.run(
            [sys.executable, "-c", SETUP],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        facts = json.loads(setup.stdout.strip().splitlines()[-1])
        if worker:
            self._spawn(
                [str(BIN / "celery"), "-A", "config", "worker", "--concurrency=2", "-l", "WARNING"],
                self.var_dir / "worker.log",
            )
        self._spawn(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            self.log,
        )
        _wait_for(lambda: _port_open(self.port), 60, "the embedded web server")
        return facts

    def _spawn(self, command: list[str], log: Path) -> None:
        with log.open("w") as fh:
            self.processes.append(
                subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=fh, stderr=fh)
            )

    def server_errors(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if SERVER_ERROR.search(line)]

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324


def _upload(session: requests.Session, url: str, facts: dict, name: str, data: bytes) -> int:
    """The browser's flow for one file: start, sign each part with its MD5, PUT, complete
    with the SHA-256. Answers the object id; any status but the expected one fails."""
    started = session.post(
        f"{url}/api/v1/uploads/",
        json={
            "project": facts["project"],
            "record": facts["record"],
            "filename": name,
            "size": len(data),
            "content_type": "application/octet-stream",
            "tier": "shared",
        },
        timeout=120,
    )
    assert started.status_code == 201, started.text
    upload = started.json()
    size = upload["part_size"]
    bodies = {n: data[(n - 1) * size : n * size] for n in range(1, upload["part_count"] + 1)}
    signed = session.post(
        f"{url}/api/v1/uploads/{upload['id']}/parts",
        json={"parts": [{"part_number": n, "md5": _md5_base64(b)} for n, b in bodies.items()]},
        timeout=120,
    )
    assert signed.status_code == 200, signed.text
    etags = {}
    for part in signed.json()["parts"]:
        n = part["part_number"]
        put = requests.put(part["url"], data=bodies[n], headers=part["headers"], timeout=120)
        assert put.status_code == 200, put.text
        etags[n] = put.headers["ETag"]
    completed = session.post(
        f"{url}/api/v1/uploads/{upload['id']}/complete",
        json={
            "parts": [{"part_number": n, "etag": e} for n, e in sorted(etags.items())],
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        timeout=120,
    )
    assert completed.status_code == 200, completed.text
    return completed.json()["object_id"]


def test_a_batch_of_uploads_and_a_worker_share_sqlite_without_errors(tmp_path):
    kura = EmbeddedKura(tmp_path / "var", sqlite_timeout=30)
    try:
        facts = kura.start(worker=True)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {facts['token']}"
        files = {f"batch_{i:02d}.csv": os.urandom(20_000 + 997 * i) for i in range(30)}
        files["lane1_R1.fastq.gz"] = os.urandom(9 * 1024 * 1024)  # two parts

        with ThreadPoolExecutor(max_workers=8) as pool:
            ids = dict(
                zip(
                    files,
                    pool.map(lambda item: _upload(session, kura.url, facts, *item), files.items()),
                    strict=True,
                )
            )

        def all_verified() -> bool:
            states = [
                session.get(f"{kura.url}/api/v1/objects/{pk}/", timeout=30).json()
                for pk in ids.values()
            ]
            return all(s["checksum_state"] == "verified" for s in states)

        _wait_for(all_verified, 240, "every checksum")
        for name, pk in ids.items():
            body = session.get(f"{kura.url}/api/v1/objects/{pk}/", timeout=30).json()
            assert body["sha256"] == hashlib.sha256(files[name]).hexdigest()
        assert kura.server_errors() == []
    finally:
        kura.stop()


def test_a_write_lock_held_too_long_answers_503_and_changes_nothing(tmp_path):
    kura = EmbeddedKura(tmp_path / "var", sqlite_timeout=1)
    try:
        facts = kura.start(worker=False)
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {facts['token']}"
        body = {
            "project": facts["project"],
            "record": facts["record"],
            "filename": "locked.csv",
            "size": 10,
            "tier": "shared",
        }
        browser = requests.Session()
        login_page = browser.get(f"{kura.url}/accounts/login/", timeout=60)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text)[1]
        database = sqlite3.connect(tmp_path / "var" / "kura.sqlite3", isolation_level=None)
        objects_before = database.execute("SELECT count(*) FROM repository_dataobject").fetchone()
        database.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        try:
            refused = session.post(f"{kura.url}/api/v1/uploads/", json=body, timeout=60)
            login = browser.post(
                f"{kura.url}/accounts/login/",
                data={
                    "csrfmiddlewaretoken": csrf,
                    "username": "researcher",
                    "password": "kura-demo-test",
                },
                headers={"Referer": f"{kura.url}/accounts/login/"},
                allow_redirects=False,
                timeout=60,
            )
        finally:
            database.execute("ROLLBACK")
        objects_after = database.execute("SELECT count(*) FROM repository_dataobject").fetchone()

        assert refused.status_code == 503
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.json()["code"] == "unavailable"
        assert objects_after == objects_before
        assert login.status_code == 503  # signing in writes the session: the 503 page
        assert login.headers["Content-Type"].startswith("text/html")
        assert int(login.headers["Retry-After"]) > 0
        retried = session.post(f"{kura.url}/api/v1/uploads/", json=body, timeout=60)
        assert retried.status_code == 201, retried.text
        errors = kura.server_errors()
        assert errors and all('" 503 ' in line for line in errors), errors
    finally:
        kura.stop()
