"""Small files over HTTP (batch start, one PUT each to S3, batch complete) against a live
Kura, verified by a real Celery worker: each file stands or falls on its own."""

import base64
import hashlib
import os
import time

import pytest
import requests

from accounts.models import Role
from accounts.tokens import api_token_create
from repository.models import DataObject
from tests.factories import DmpRecordFactory, MembershipFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def _item(project, record, name: str, data: bytes, sha256: str | None = None) -> dict:
    return {
        "project": project.pk,
        "record": record.pk,
        "filename": name,
        "size": len(data),
        "tier": "shared",
        "sha256": sha256 or hashlib.sha256(data).hexdigest(),
        "md5": base64.b64encode(hashlib.md5(data).digest()).decode(),  # noqa: S324
        "single_put": True,
    }


def _wait_until_checked(object_ids: list[int], timeout: float = 120) -> dict[int, DataObject]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        objects = DataObject.objects.in_bulk(object_ids)
        if all(o.checksum_state in ("verified", "failed") for o in objects.values()):
            return objects
        time.sleep(0.5)
    raise AssertionError(f"not all checked within {timeout}s: {objects}")


def test_a_batch_of_small_files_ends_verified_and_each_bad_file_fails_alone(
    live_server, celery_worker_process
):
    member = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=member.project)
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {api_token_create(user=member.user, name='t')[1]}"
    files = {f"tile_{n:02d}.bin": os.urandom(50_000 + n) for n in range(6)}
    items = [_item(member.project, record, name, data) for name, data in files.items()]
    items[4]["sha256"] = hashlib.sha256(b"what the researcher thinks it is").hexdigest()
    items.append(_item(member.project, record, "../escape.bin", b"x"))

    started = api.post(f"{live_server.url}/api/v1/uploads/batch/", json={"uploads": items})

    assert started.status_code == 200, started.text
    answers = started.json()["uploads"]
    assert [a["status"] for a in answers] == [201] * 6 + [400]  # the bad name alone
    completions = []
    for answer, data in zip(answers[:6], files.values(), strict=True):
        put = answer["upload"]["put"]
        response = requests.put(put["url"], data=data, headers=put["headers"], timeout=30)
        assert response.status_code == 200, response.text
        completions.append(
            {
                "id": answer["upload"]["id"],
                "parts": [{"part_number": 1, "etag": response.headers["ETag"]}],
            }
        )
    completed = api.post(
        f"{live_server.url}/api/v1/uploads/batch/complete", json={"uploads": completions}
    )
    assert [r["status"] for r in completed.json()["uploads"]] == [200] * 6

    objects = _wait_until_checked([a["upload"]["object_id"] for a in answers[:6]])

    for n, (answer, data) in enumerate(zip(answers[:6], files.values(), strict=True)):
        data_object = objects[answer["upload"]["object_id"]]
        if n == 4:  # the declared SHA-256 is not the bytes': caught, quarantined
            assert data_object.checksum_state == DataObject.ChecksumState.FAILED
            assert data_object.quarantined_at is not None
        else:
            assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
            assert data_object.sha256 == data_object.client_sha256  # end to end
            assert data_object.sha256 == hashlib.sha256(data).hexdigest()

    # Again, skipping what Kura holds: the five verified files are answered with their
    # objects; the quarantined one is never taken as held and starts anew.
    again = api.post(
        f"{live_server.url}/api/v1/uploads/batch/",
        json={"uploads": items[:6], "skip_identical": True},
    ).json()["uploads"]
    assert [a["status"] for a in again] == [200, 200, 200, 200, 201, 200]
    assert again[0]["object"]["id"] == answers[0]["upload"]["object_id"]
