"""What only a real S3 server enforces, checked against the suite's SeaweedFS.

Kura's upload and download security rests on the store refusing what its presigned URLs do
not allow: an expired link, a part URL reused for another part or upload, a tampered
signature, the wrong HTTP method, a browser origin that is not configured, and (with the
sender's MD5 signed into the part URL) bytes that were corrupted on the way. An S3 mock
accepts all of these, so each test here would pass nowhere but on a real server.
"""

import hashlib
import os
import time
import urllib.parse
import uuid

import pytest
import requests
from django.conf import settings

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import DataObject, UploadSession
from repository.preservation.object_store import S3Store
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory

from .upload_client import UploadClient, md5_base64, part_bytes

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
PART = os.urandom(64 * 1024)
ALLOWED_ORIGIN = "https://kura.example.org"


@pytest.fixture
def multipart():
    """Start multipart uploads on the test bucket; every one is aborted afterwards."""
    store = S3Store()
    started = []

    def start(key: str = "") -> tuple[str, str]:
        key = key or f"test-real-s3/{uuid.uuid4().hex}"
        upload_id = store.create(key, "application/octet-stream")
        started.append((key, upload_id))
        return key, upload_id

    yield start
    for key, upload_id in started:
        store.abort(key, upload_id)


def _with_query(url: str, **changes: str) -> str:
    """``url`` with some query parameters replaced (the signature left as it was)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    for name, value in changes.items():
        assert name in query, (name, sorted(query))
        query[name] = value
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _tampered(url: str) -> str:
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    return _with_query(url, **{"X-Amz-Signature": flipped})


def _error_code(response: requests.Response) -> str:
    """The ``<Code>`` of an S3 error body."""
    text = response.text
    start = text.find("<Code>")
    return text[start + 6 : text.find("</Code>")] if start >= 0 else ""


def _stored_object(tier: str = Tier.PUBLIC) -> tuple[DataObject, bytes]:
    member = MembershipFactory(role=Role.RESEARCHER)
    content = os.urandom(4096)
    data_object = DataObjectFactory(
        project=member.project, uploaded_by=member.user, tier=tier, size=len(content)
    )
    S3Store().client.put_object(
        Bucket=settings.AWS_STORAGE_BUCKET_NAME, Key=data_object.storage_key, Body=content
    )
    return data_object, content


def test_an_expired_download_url_is_refused(client, settings):
    data_object, content = _stored_object()
    settings.KURA_DOWNLOAD_URL_EXPIRY = 2

    url = client.get(f"/objects/{data_object.pk}/download")["Location"]
    fresh = requests.get(url, timeout=10)
    time.sleep(3.5)
    expired = requests.get(url, timeout=10)

    assert fresh.status_code == 200
    assert fresh.content == content
    assert expired.status_code == 403
    assert expired.content != content
    assert "expired" in expired.text.lower()


def test_a_tampered_download_signature_is_refused(client):
    data_object, content = _stored_object()
    url = client.get(f"/objects/{data_object.pk}/download")["Location"]

    tampered = requests.get(_tampered(url), timeout=10)
    anonymous = requests.get(url.split("?")[0], timeout=10)

    assert (tampered.status_code, _error_code(tampered)) == (403, "SignatureDoesNotMatch")
    assert anonymous.status_code == 403
    assert content not in (tampered.content, anonymous.content)
    assert requests.get(url, timeout=10).content == content


@pytest.mark.parametrize(
    "rewrite",
    [
        pytest.param(lambda url, other_upload: _with_query(url, partNumber="2"), id="part"),
        pytest.param(
            lambda url, other_upload: _with_query(url, uploadId=other_upload), id="upload"
        ),
        pytest.param(lambda url, other_upload: _tampered(url), id="signature"),
    ],
)
def test_a_part_url_is_refused_when_its_query_is_changed(multipart, rewrite):
    store = S3Store()
    key, upload_id = multipart()
    other_key, other_upload = multipart(key)  # the same object, another upload
    url = store.part_url(key, upload_id, 1, 300)

    refused = requests.put(rewrite(url, other_upload), data=PART, timeout=30)

    assert refused.status_code == 403, refused.text
    assert store.list_parts(key, upload_id) == []
    assert store.list_parts(other_key, other_upload) == []
    # The URL itself works, for its own part only.
    assert requests.put(url, data=PART, timeout=30).status_code == 200
    assert [p.part_number for p in store.list_parts(key, upload_id)] == [1]
    assert store.list_parts(other_key, other_upload) == []


def test_a_part_url_does_not_serve_a_get(multipart):
    store = S3Store()
    key, upload_id = multipart()
    url = store.part_url(key, upload_id, 1, 300)
    assert requests.put(url, data=PART, timeout=30).status_code == 200

    answer = requests.get(url, timeout=30)

    assert answer.status_code == 403
    assert PART not in answer.content


@pytest.fixture
def cors_origins():
    """Set the bucket's CORS origins for one test; the suite's own are restored after."""
    store = S3Store()

    def configure(origins: list[str]) -> None:
        store.setup(cors_origins=origins)

    yield configure
    store.setup(cors_origins=settings.KURA_UPLOAD_CORS_ORIGINS)


def _preflight(url: str, origin: str) -> requests.Response:
    return requests.options(
        url.split("?")[0],
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-md5,content-type",
        },
        timeout=10,
    )


def test_cors_preflight_answers_only_the_configured_origins(multipart, cors_origins):
    key, upload_id = multipart()
    url = S3Store().part_url(key, upload_id, 1, 300)
    cors_origins([ALLOWED_ORIGIN])

    allowed = _preflight(url, ALLOWED_ORIGIN)
    other = _preflight(url, "https://elsewhere.example.com")

    assert allowed.status_code == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "PUT" in allowed.headers["Access-Control-Allow-Methods"]
    assert other.status_code == 403
    assert not any(name.lower().startswith("access-control-") for name in other.headers)


def test_a_corrupted_part_is_refused_and_the_good_bytes_are_then_stored(multipart):
    store = S3Store()
    key, upload_id = multipart()
    good_md5 = md5_base64(PART)
    corrupted = bytes([PART[0] ^ 0x01]) + PART[1:]
    url = store.part_url(key, upload_id, 1, 300, content_md5=good_md5)

    refused = requests.put(url, data=corrupted, headers={"Content-MD5": good_md5}, timeout=30)
    other_header = requests.put(
        url, data=corrupted, headers={"Content-MD5": md5_base64(corrupted)}, timeout=30
    )
    assert store.list_parts(key, upload_id) == []
    stored = requests.put(url, data=PART, headers={"Content-MD5": good_md5}, timeout=30)

    assert (refused.status_code, _error_code(refused)) == (400, "BadDigest")
    assert other_header.status_code == 403
    assert stored.status_code == 200
    etag = hashlib.md5(PART).hexdigest()  # noqa: S324 - S3's ETag of a part
    assert stored.headers["ETag"].strip('"') == etag
    assert [(p.part_number, p.size, p.etag) for p in store.list_parts(key, upload_id)] == [
        (1, len(PART), etag)
    ]


def test_a_part_sent_twice_with_different_bytes_is_listed_once_and_completes():
    member = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=member.project)
    data = os.urandom(9 * MIB)
    client = UploadClient(member.user)
    upload = client.start_ok(
        project=member.project_id,
        record=record.pk,
        filename="resent.bin",
        size=len(data),
        tier=Tier.SHARED,
    )
    first_copy = os.urandom(upload.part_size)  # same length, other bytes: a stale first try
    assert len(part_bytes(data, upload.part_size, 1)) == len(first_copy)
    signed = client.part_urls(upload.id, [1]).json()["parts"][0]
    stale_etag = client.put_bytes(signed["url"], first_copy)
    etags = client.put_parts(upload, data, [1, 2])
    assert etags[1] != stale_etag

    listed = client.stored_parts(upload.id)
    completed = client.complete(upload.id, etags, sha256=hashlib.sha256(data).hexdigest())

    assert listed.status_code == 200
    assert [p["part_number"] for p in listed.json()["parts"]] == [1, 2]
    # Both copies usually carry the same second as their time, so either may be shown.
    assert listed.json()["parts"][0]["etag"] in {stale_etag, etags[1]}
    assert listed.json()["parts"][1]["etag"] == etags[2]
    assert completed.status_code == 200, completed.content
    data_object = DataObject.objects.get(pk=completed.json()["object_id"])
    assert S3Store().read_range(data_object.storage_key, 0, len(data)) == data
    assert UploadSession.objects.get(data_object=data_object).completed_at is not None
