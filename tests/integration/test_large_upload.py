"""A 200 MB upload, parts in parallel, interrupted and resumed from a new session, then
checksummed by a real Celery worker through Redis."""

import os
import time

import pytest

from accounts.models import Role
from repository.models import DataObject, FixityCheck
from repository.tasks import checksum_task
from tests.factories import DmpRecordFactory, MembershipFactory
from tests.repository.upload_client import UploadClient, digests

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SIZE = 200 * 1024 * 1024 + 4321


def _wait_for_checksum(pk: int, timeout: float = 180) -> DataObject:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data_object = DataObject.objects.get(pk=pk)
        if data_object.checksum_state in (
            DataObject.ChecksumState.VERIFIED,
            DataObject.ChecksumState.FAILED,
        ):
            return data_object
        time.sleep(0.5)
    raise AssertionError(f"checksum of object {pk} did not finish in {timeout:.0f}s")


def test_large_upload_is_resumed_and_verified_by_a_worker(celery_worker_process):
    data = os.urandom(SIZE)
    sha256, md5 = digests(data)
    member = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=member.project)
    fields = {
        "project": member.project_id,
        "record": record.pk,
        "filename": "run42_R1.fastq",
        "size": SIZE,
        "content_type": "text/plain",
        "tier": "shared",
        "sha256": sha256,
    }
    first = UploadClient(member.user)
    upload = first.start_ok(**fields)
    assert upload.part_count >= 25
    half = upload.part_count // 2
    etags = first.put_parts(upload, data, range(1, half + 1), workers=6)  # then "interrupted"

    resumed = UploadClient(member.user)
    stored = {p["part_number"] for p in resumed.stored_parts(upload.id).json()["parts"]}
    assert stored == set(range(1, half + 1))
    missing = [n for n in range(1, upload.part_count + 1) if n not in stored]
    etags |= resumed.put_parts(upload, data, missing, workers=6)
    response = resumed.complete(upload.id, etags)
    assert response.status_code == 200, response.content

    data_object = _wait_for_checksum(upload.object_id)
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert (data_object.sha256, data_object.md5) == (sha256, md5)
    assert data_object.quarantined_at is None

    def state():
        row = DataObject.objects.values().get(pk=upload.object_id)
        return row, FixityCheck.objects.filter(data_object_id=upload.object_id).count()

    before = state()
    checksum_task.apply_async((upload.object_id,), ignore_result=False).get(timeout=120)
    assert state() == before
