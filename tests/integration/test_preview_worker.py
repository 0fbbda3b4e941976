"""Previews through Redis to real Celery workers: the checksum worker verifies an image and
queues its preview, the preview worker (its own queue) makes it, the pages serve it."""

import time

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import DataObject
from repository.tasks import checksum_task
from tests.factories import DataObjectFactory, MembershipFactory
from tests.repository.test_previews import tiff_bytes

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_verified_image_is_previewed_by_the_preview_worker(
    client, celery_worker_process, preview_worker_process
):
    data = tiff_bytes(1300, 900, tile=True)
    data_object = DataObjectFactory(
        status=DataObject.Status.STORED,
        checksum_state=DataObject.ChecksumState.PENDING,
        size=len(data),
        original_filename="section-07.tiff",
        tier=Tier.SHARED,
    )
    default_storage.save(data_object.storage_key, ContentFile(data))

    checksum_task.apply_async((data_object.pk,), ignore_result=False).get(timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        data_object.refresh_from_db()
        if data_object.preview_state not in (
            DataObject.PreviewState.NONE,
            DataObject.PreviewState.PENDING,
        ):
            break
        time.sleep(0.5)

    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.preview_state == DataObject.PreviewState.READY, data_object.preview
    client.force_login(MembershipFactory(project=data_object.project, role=Role.RESEARCHER).user)
    info = client.get(f"/objects/{data_object.pk}/iiif/0/info.json")
    assert info.status_code == 200
    assert (info.json()["width"], info.json()["height"]) == (1300, 900)
    tile = client.get(f"/objects/{data_object.pk}/iiif/0/0,0,512,512/512,/0/default.jpg")
    assert tile.status_code == 200
    assert b"".join(tile.streaming_content if tile.streaming else [tile.content])[:2] == (
        b"\xff\xd8"
    )
