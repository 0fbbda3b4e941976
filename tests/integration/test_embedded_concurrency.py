"""The embedded profile (SQLite, the filesystem store, kombu's filesystem broker) under the
load of a browser batch: many uploads starting, sending parts and completing at once while
a checksumming worker writes to the same database file. Nothing answers 5xx; a write lock
held longer than the busy timeout answers 503 with ``Retry-After`` and changes nothing."""

import base64
import hashlib
import os
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.embedded import DEMO_PASSWORD, embedded_api_token, embedded_kura_start
from tests.seaweedfs import wait_for

pytestmark = pytest.mark.integration


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


def _api_session(kura) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {embedded_api_token(kura, 'researcher')}"
    return session


def test_a_batch_of_uploads_and_a_worker_share_sqlite_without_errors(tmp_path):
    kura = embedded_kura_start(tmp_path / "var")
    try:
        facts = kura.projects["batch"]
        session = _api_session(kura)
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

        wait_for(all_verified, 240, "every checksum")
        for name, pk in ids.items():
            body = session.get(f"{kura.url}/api/v1/objects/{pk}/", timeout=30).json()
            assert body["sha256"] == hashlib.sha256(files[name]).hexdigest()
            assert body["integrity"] == "end_to_end"
        assert kura.server_errors() == []
    finally:
        kura.stop()


def test_a_write_lock_held_too_long_answers_503_and_changes_nothing(tmp_path):
    kura = embedded_kura_start(tmp_path / "var", KURA_SQLITE_TIMEOUT="1")
    try:
        facts = kura.projects["batch"]
        session = _api_session(kura)
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
                    "password": DEMO_PASSWORD,
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
