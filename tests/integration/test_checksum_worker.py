"""The checksum task through Redis to a real Celery worker, on bytes really in S3."""

import hashlib
import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from repository.models import DataObject, FixityCheck
from repository.tasks import checksum_task
from tests.factories import DataObjectFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_verifies_an_upload_from_s3(celery_worker_process):
    data = os.urandom(20 * 1024**2 + 321)  # a few chunks and a short last one
    data_object = DataObjectFactory(
        status=DataObject.Status.STORED,
        checksum_state=DataObject.ChecksumState.PENDING,
        size=len(data),
        original_filename="run-0042.raw",
        client_sha256=hashlib.sha256(data).hexdigest(),
    )
    default_storage.save(data_object.storage_key, ContentFile(data))

    outcome = checksum_task.apply_async((data_object.pk,), ignore_result=False).get(timeout=120)
    again = checksum_task.apply_async((data_object.pk,), ignore_result=False).get(timeout=120)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.sha256 == hashlib.sha256(data).hexdigest()
    assert data_object.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert data_object.checksum_progress == 100
    expected = {"object_id": data_object.pk, "checksum_state": "verified"}
    assert outcome == again == {**expected, "sha256": data_object.sha256}
    assert data_object.fixity_checks.get().outcome == FixityCheck.Outcome.MATCH
