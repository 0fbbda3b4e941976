"""Downloads: access check, then a short-lived presigned URL (S3) or a streamed file."""

import urllib.parse
import urllib.request

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import override_settings

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import AuditEvent
from tests.factories import DataObjectFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

FILENAME = "肝臓 切片 #1.tif"
CONTENT = b"II*\x00" + bytes(range(256)) * 40


@pytest.fixture
def stored_object():
    def make(tier: str):
        member = MembershipFactory(role=Role.RESEARCHER)
        data_object = DataObjectFactory(
            project=member.project,
            uploaded_by=member.user,
            tier=tier,
            original_filename=FILENAME,
            content_type="image/tiff",
            size=len(CONTENT),
        )
        saved = default_storage.save(data_object.storage_key, ContentFile(CONTENT))
        assert saved == data_object.storage_key
        return data_object, member.user

    return make


def test_public_download_redirects_to_a_short_lived_url_that_serves_the_bytes(
    client, stored_object
):
    data_object, _ = stored_object(Tier.PUBLIC)

    response = client.get(f"/objects/{data_object.pk}/download")

    assert response.status_code == 302
    url = response["Location"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert int(query["X-Amz-Expires"][0]) <= 300
    with urllib.request.urlopen(url, timeout=10) as stored:  # noqa: S310 - loopback test server
        assert stored.read() == CONTENT
        disposition = stored.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=utf-8''" + urllib.parse.quote(FILENAME) in disposition
    assert not AuditEvent.objects.exists()


def test_download_of_shared_data_is_audited_with_actor_and_address(client, stored_object):
    data_object, uploader = stored_object(Tier.SHARED)
    client.force_login(uploader)

    response = client.get(f"/objects/{data_object.pk}/download", REMOTE_ADDR="192.0.2.7")

    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.data_object, event.ip_address) == (
        AuditEvent.Action.DOWNLOAD,
        uploader,
        data_object,
        "192.0.2.7",
    )


def test_refused_download_answers_404_and_leaves_no_trace(client, stored_object):
    data_object, _ = stored_object(Tier.NON_SHARED)
    client.force_login(UserFactory())

    response = client.get(f"/objects/{data_object.pk}/download")

    assert response.status_code == 404
    assert "Location" not in response
    assert not AuditEvent.objects.exists()


def test_filesystem_profile_streams_the_file(client, tmp_path, settings):
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    with override_settings(STORAGES=storages, KURA_STORAGE="filesystem"):
        member = MembershipFactory(role=Role.RESEARCHER)
        data_object = DataObjectFactory(
            project=member.project,
            uploaded_by=member.user,
            tier=Tier.PUBLIC,
            original_filename=FILENAME,
            content_type="image/tiff",
            size=len(CONTENT),
        )
        default_storage.save(data_object.storage_key, ContentFile(CONTENT))

        response = client.get(f"/objects/{data_object.pk}/download")

        assert response.status_code == 200
        assert b"".join(response.streaming_content) == CONTENT
    assert response["Content-Type"] == "image/tiff"
    assert response["Content-Disposition"].startswith("attachment;")
    assert urllib.parse.quote(FILENAME) in response["Content-Disposition"]
