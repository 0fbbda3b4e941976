"""The upload API: multipart uploads straight to storage, checked before they count."""

import datetime
import hashlib
import os

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import (
    AuditEvent,
    DataObject,
    RequestStatus,
    TierChangeRequest,
    UploadSession,
)
from repository.preservation.object_store import NoSuchUpload, object_store
from repository.preservation.uploads import part_size_for
from tests.factories import DmpRecordFactory, MembershipFactory, UserFactory

from .upload_client import UploadClient, digests, md5_base64, part_bytes

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
DATA = os.urandom(17 * MIB + 12345)  # three parts of 8 MiB: the last one short


@pytest.fixture
def researcher():
    return MembershipFactory(role=Role.RESEARCHER)


@pytest.fixture
def record(researcher):
    return DmpRecordFactory(project=researcher.project)


def _fields(researcher, record, **overrides) -> dict:
    return {
        "project": researcher.project_id,
        "record": record.pk,
        "filename": "liver_R1.fastq.gz",
        "size": len(DATA),
        "content_type": "application/gzip",
        "tier": Tier.SHARED,
        **overrides,
    }


def _stored_bytes(data_object: DataObject) -> bytes:
    with default_storage.open(data_object.storage_key, "rb") as fh:
        return fh.read()


@pytest.mark.parametrize(
    ("size", "part_size"),
    [
        (1, 8 * MIB),
        (512 * MIB, 8 * MIB),  # 64 parts of 8 MiB
        (512 * MIB + 1, 9 * MIB),  # then the parts grow, in whole MiB
        (1536 * MIB, 24 * MIB),
        (2048 * MIB, 32 * MIB),  # up to 32 MiB
        (80_000 * MIB, 32 * MIB),  # then the count grows
        (320_000 * MIB, 32 * MIB),  # up to 10,000 parts
        (320_001 * MIB, 33 * MIB),  # and then the part size again
        (5 * 1024**4, 525 * MIB),
    ],
)
def test_part_size_keeps_every_file_within_10000_parts(size, part_size):
    assert part_size_for(size) == part_size
    assert -(-size // part_size) <= 10_000


def test_upload_lands_in_s3_and_queues_the_checksum(
    researcher, record, django_capture_on_commit_callbacks
):
    client = UploadClient(researcher.user)

    with django_capture_on_commit_callbacks() as callbacks:
        body = client.upload(DATA, **_fields(researcher, record), sha256=digests(DATA)[0])

    data_object = DataObject.objects.get(pk=body["object_id"])
    assert (body["status"], body["checksum_state"]) == ("stored", "pending")
    assert data_object.status == DataObject.Status.STORED
    assert data_object.stored_at is not None
    assert data_object.client_sha256 == digests(DATA)[0]
    assert _stored_bytes(data_object) == DATA
    assert data_object.original_filename not in data_object.storage_key
    assert UploadSession.objects.get(data_object=data_object).part_count == 3
    # The checksum task, queued once the upload is committed (beside the page-cache bump).
    assert len([c for c in callbacks if c.__module__ != "core.generations"]) == 1


def test_completing_twice_answers_the_same_object(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, range(1, 4))
    first = client.complete(upload.id, etags)

    again = client.complete(upload.id, etags)

    assert first.status_code == again.status_code == 200
    assert again.json()["object_id"] == first.json()["object_id"]
    assert DataObject.objects.count() == 1


def test_sha256_may_be_given_at_completion(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, range(1, 4))

    response = client.complete(upload.id, etags, sha256=digests(DATA)[0].upper())

    assert response.status_code == 200, response.content
    assert DataObject.objects.get(pk=upload.object_id).client_sha256 == digests(DATA)[0]


def parts_digest(data: bytes, part_size: int) -> str:
    """The SHA-256 of each part's SHA-256, in order, computed here on its own."""
    joined = b"".join(
        hashlib.sha256(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)
    )
    return hashlib.sha256(joined).hexdigest()


def test_the_digest_of_the_parts_may_be_given_at_completion_and_keeps_the_part_size(
    researcher, record
):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, range(1, 4))
    given = parts_digest(DATA, upload.part_size)

    response = client.complete(upload.id, etags, parts_sha256=given.upper())

    assert response.status_code == 200, response.content
    data_object = DataObject.objects.get(pk=upload.object_id)
    assert (data_object.client_parts_sha256, data_object.client_part_size) == (
        given,
        upload.part_size,
    )
    assert data_object.client_sha256 == ""


@pytest.mark.parametrize(
    "extra",
    [
        {"parts_sha256": "not-hex"},
        {"parts_sha256": "0" * 63},
        {"parts_sha256": "0" * 64, "sha256": digests(DATA)[0]},
    ],
    ids=["malformed", "short", "both-digests"],
)
def test_a_malformed_digest_of_the_parts_is_refused_and_changes_nothing(researcher, record, extra):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, range(1, 4))

    response = client.complete(upload.id, etags, **extra)

    assert response.status_code == 400
    assert "parts_sha256" in response.json()["errors"]
    data_object = DataObject.objects.get(pk=upload.object_id)
    assert data_object.status == DataObject.Status.UPLOADING
    assert (data_object.client_sha256, data_object.client_parts_sha256) == ("", "")


@pytest.mark.parametrize("sha256", ["0" * 64, "not-hex"])
def test_a_completion_sha256_that_disagrees_or_is_malformed_is_refused(researcher, record, sha256):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record), sha256=digests(DATA)[0])
    etags = client.put_parts(upload, DATA, range(1, 4))

    response = client.complete(upload.id, etags, sha256=sha256)

    assert response.status_code == 400
    assert "sha256" in response.json()["errors"]
    data_object = DataObject.objects.get(pk=upload.object_id)
    assert data_object.status == DataObject.Status.UPLOADING
    assert data_object.client_sha256 == digests(DATA)[0]


def test_opening_tier_starts_shared_and_asks_a_curator(researcher, record):
    client = UploadClient(researcher.user)

    body = client.upload(
        DATA, **_fields(researcher, record, tier=Tier.PUBLIC, reason="Supports figure 3.")
    )

    data_object = DataObject.objects.get(pk=body["object_id"])
    assert data_object.tier == Tier.SHARED
    tier_request = TierChangeRequest.objects.get(data_objects=data_object)
    assert (tier_request.requested_tier, tier_request.status) == (
        Tier.PUBLIC,
        RequestStatus.PENDING,
    )
    assert tier_request.requested_by == researcher.user
    assert tier_request.reason == "Supports figure 3."  # the uploader's words, for the curator
    event = AuditEvent.objects.get(data_object=data_object, action=AuditEvent.Action.TIER_REQUESTED)
    assert event.actor == researcher.user
    assert event.after == {"tier": "public", "available_date": None, "request": tier_request.pk}


def test_embargo_request_keeps_its_date(researcher, record):
    opens = timezone.localdate() + datetime.timedelta(days=200)
    client = UploadClient(researcher.user)

    body = client.upload(
        DATA,
        **_fields(
            researcher,
            record,
            tier=Tier.EMBARGOED,
            available_date=opens.isoformat(),
            reason="After the patent is filed.",
        ),
    )

    tier_request = TierChangeRequest.objects.get(data_objects=body["object_id"])
    assert (tier_request.requested_tier, tier_request.available_date) == (Tier.EMBARGOED, opens)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": -5}, "size"),
        ({"size": 5 * 1024**4 + 1}, "size"),
        ({"filename": "../etc/passwd"}, "filename"),
        ({"filename": "a/b.txt"}, "filename"),
        ({"filename": "bad\x00name.txt"}, "filename"),
        ({"filename": "tab\tname.txt"}, "filename"),
        # Spoofing: "photo\u202egpj.exe" shows as "photoexe.jpg"; others hide or split.
        ({"filename": "photo\u202egpj.exe"}, "filename"),
        ({"filename": "report\u2066.pdf\u2069.exe"}, "filename"),
        ({"filename": "line\u2028break.txt"}, "filename"),
        ({"filename": "para\u2029graph.txt"}, "filename"),
        ({"filename": "zero\u200bwidth.txt"}, "filename"),
        ({"filename": "\ufeffbom.csv"}, "filename"),
        ({"filename": "é" * 150}, "filename"),  # 300 UTF-8 bytes
        ({"filename": "   "}, "filename"),
        ({"tier": "secret"}, "tier"),
        ({"tier": Tier.EMBARGOED, "reason": "Later."}, "available_date"),
        ({"tier": Tier.EMBARGOED, "available_date": "2020-01-01", "reason": "x"}, "available_date"),
        # A tier a curator reviews needs the uploader's reason, as on the object page.
        ({"tier": Tier.PUBLIC}, "reason"),
        ({"tier": Tier.PUBLIC, "reason": "   "}, "reason"),
        ({"tier": Tier.EMBARGOED, "available_date": "2099-01-01"}, "reason"),
        ({"sha256": "xyz"}, "sha256"),
        ({"size": "many"}, "size"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(researcher, record, overrides, field):
    response = UploadClient(researcher.user).start(**_fields(researcher, record, **overrides))

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not DataObject.objects.exists()


def test_a_spoofing_name_is_refused_with_its_character_named(researcher, record):
    response = UploadClient(researcher.user).start(
        **_fields(researcher, record, filename="invoice\u202efdp.exe")
    )

    assert response.status_code == 400
    assert "U+202E" in str(response.json()["errors"]["filename"])


def test_japanese_names_and_combining_marks_are_kept(researcher, record):
    name = "顕微鏡画像_カ\u3099ン.tif"  # a combining voiced mark (Mn) is not hidden
    response = UploadClient(researcher.user).start(**_fields(researcher, record, filename=name))

    assert response.status_code == 201
    assert DataObject.objects.get().original_filename == "顕微鏡画像_\u30acン.tif"  # NFC


def test_record_of_another_project_is_refused(researcher):
    other = DmpRecordFactory()

    response = UploadClient(researcher.user).start(**_fields(researcher, other))

    assert response.status_code == 400
    assert "record" in response.json()["errors"]
    assert not DataObject.objects.exists()


def test_quota_is_enforced(researcher, record):
    project = researcher.project
    project.quota_bytes = len(DATA) + 10
    project.save()
    client = UploadClient(researcher.user)
    client.start_ok(**_fields(researcher, record))

    response = client.start(**_fields(researcher, record, size=11))

    assert response.status_code == 400
    assert "quota" in response.json()["errors"]["size"][0]
    assert DataObject.objects.count() == 1


@override_settings(KURA_PROJECT_QUOTA_BYTES=100)
def test_site_wide_quota_applies_when_the_project_has_none(researcher, record):
    response = UploadClient(researcher.user).start(**_fields(researcher, record, size=101))

    assert response.status_code == 400
    assert not DataObject.objects.exists()


@pytest.mark.parametrize("role", [Role.COLLABORATOR, None])
def test_only_uploading_roles_may_start(researcher, record, role):
    user = MembershipFactory(project=researcher.project, role=role).user if role else UserFactory()

    response = UploadClient(user).start(**_fields(researcher, record))

    assert response.status_code == 403
    assert not DataObject.objects.exists()


def test_anonymous_cannot_start(client, researcher, record):
    response = client.post(
        "/api/v1/uploads/", _fields(researcher, record), content_type="application/json"
    )

    assert response.status_code == 401  # with a Bearer challenge: sign in or send a token
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not DataObject.objects.exists()


def test_wrong_etag_is_refused_and_nothing_is_stored(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, range(1, 4))
    etags[2] = "0" * 32

    response = client.complete(upload.id, etags)

    assert response.status_code == 400
    assert "part 2 has a different ETag" in response.json()["errors"]["parts"]
    assert DataObject.objects.get().status == DataObject.Status.UPLOADING


def test_completing_with_parts_missing_is_refused(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, [1, 3])

    claimed_two = client.complete(upload.id, etags)
    claimed_all = client.complete(upload.id, {**etags, 2: etags[1]})

    assert claimed_two.status_code == 400
    assert "Parts missing: 2" in claimed_two.json()["errors"]["parts"][0]
    assert claimed_all.status_code == 400
    assert "part 2 was never stored" in claimed_all.json()["errors"]["parts"]
    assert DataObject.objects.get().status == DataObject.Status.UPLOADING


def test_part_of_the_wrong_size_is_refused(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, [1, 2])
    url = client.part_urls(upload.id, [3]).json()["parts"][0]["url"]
    etags[3] = client.put_bytes(url, DATA[-100:])

    response = client.complete(upload.id, etags)

    assert response.status_code == 400
    assert "part 3 has 100 bytes" in response.json()["errors"]["parts"][0]
    assert DataObject.objects.get().status == DataObject.Status.UPLOADING


def test_part_numbers_out_of_range_are_refused(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))

    response = client.part_urls(upload.id, [0, 4])

    assert response.status_code == 400
    assert "part_numbers" in response.json()["errors"]


@pytest.mark.parametrize("role", [Role.PM, Role.RESEARCHER])
def test_nobody_else_may_continue_an_upload(researcher, record, role):
    owner = UploadClient(researcher.user)
    upload = owner.start_ok(**_fields(researcher, record))
    etags = owner.put_parts(upload, DATA, range(1, 4))
    other = UploadClient(MembershipFactory(project=researcher.project, role=role).user)

    answers = [
        other.part_urls(upload.id, [1]).status_code,
        other.stored_parts(upload.id).status_code,
        other.complete(upload.id, etags).status_code,
        other.abort(upload.id).status_code,
    ]

    assert answers == [404, 404, 404, 404]
    assert DataObject.objects.get().status == DataObject.Status.UPLOADING


def test_an_upload_resumes_from_a_new_session(researcher, record):
    first = UploadClient(researcher.user)
    upload = first.start_ok(**_fields(researcher, record))
    etags = first.put_parts(upload, DATA, [1, 2])

    resumed = UploadClient(researcher.user)  # a new login: a new session
    stored = resumed.stored_parts(upload.id).json()["parts"]
    assert [(p["part_number"], p["etag"]) for p in stored] == sorted(etags.items())
    etags |= resumed.put_parts(upload, DATA, [3])
    response = resumed.complete(upload.id, etags)

    assert response.status_code == 200
    assert _stored_bytes(DataObject.objects.get()) == DATA


def test_abort_discards_the_upload(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    client.put_parts(upload, DATA, [1])

    response = client.abort(upload.id)

    assert response.status_code == 204
    data_object = DataObject.objects.get()
    assert data_object.status == DataObject.Status.ABANDONED
    with pytest.raises(NoSuchUpload):
        object_store().list_parts(data_object.storage_key, UploadSession.objects.get().upload_id)
    assert client.complete(upload.id, {1: "x"}).status_code == 400


def test_bucket_lets_browsers_put_parts_and_read_etags():
    rules = default_storage.connection.meta.client.get_bucket_cors(
        Bucket=default_storage.bucket_name
    )["CORSRules"]

    assert rules[0]["ExposeHeaders"] == ["ETag"]
    assert "PUT" in rules[0]["AllowedMethods"]


def test_object_api_goes_through_the_access_rules(researcher, record):
    body = UploadClient(researcher.user).upload(DATA, **_fields(researcher, record))
    outsider = UploadClient(UserFactory())
    member = UploadClient(researcher.user)

    assert outsider.client.get(f"/api/v1/objects/{body['object_id']}/").status_code == 404
    assert outsider.client.get("/api/v1/objects/").json()["results"] == []
    detail = member.client.get(f"/api/v1/objects/{body['object_id']}/").json()
    assert (detail["filename"], detail["checksum_state"]) == ("liver_R1.fastq.gz", "pending")


@pytest.fixture
def filesystem_profile(tmp_path, settings):
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media")},
        },
    }
    with override_settings(
        STORAGES=storages, KURA_STORAGE="filesystem", KURA_UPLOAD_DIR=tmp_path / "uploads"
    ):
        object_store().setup(cors_origins=[])
        yield tmp_path


def test_embedded_profile_takes_parts_itself_and_assembles_them(
    filesystem_profile, researcher, record
):
    client = UploadClient(researcher.user)

    body = client.upload(DATA, **_fields(researcher, record))

    data_object = DataObject.objects.get(pk=body["object_id"])
    assert (filesystem_profile / "media" / data_object.storage_key).read_bytes() == DATA
    assert list((filesystem_profile / "uploads").iterdir()) == []


def test_embedded_part_urls_refuse_forged_tokens_and_oversized_parts(
    filesystem_profile, researcher, record
):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    url = client.part_urls(upload.id, [1]).json()["parts"][0]["url"]

    forged = client.client.put(url + "x", b"abc", content_type="application/octet-stream")
    oversized = client.client.put(
        url, b"x" * (upload.part_size + 1), content_type="application/octet-stream"
    )

    assert forged.status_code == 403
    assert oversized.status_code == 400
    assert client.stored_parts(upload.id).json()["parts"] == []


def test_embedded_store_keeps_a_part_only_whole(filesystem_profile, researcher, record):
    """A part cut off on the way (a reload mid-request) is refused, not listed as stored,
    and the upload completes once the part is sent again."""
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, [1, 3])
    url = client.part_urls(upload.id, [2]).json()["parts"][0]["url"]
    whole = part_bytes(DATA, upload.part_size, 2)

    short = client.client.put(url, whole[:-1000], content_type="application/octet-stream")

    assert short.status_code == 400
    assert "expected" in short.json()["detail"]
    listed = [p["part_number"] for p in client.stored_parts(upload.id).json()["parts"]]
    assert listed == [1, 3]
    etags.update(client.put_parts(upload, DATA, [2]))
    response = client.complete(upload.id, etags)
    assert response.status_code == 200, response.content
    data_object = DataObject.objects.get(pk=response.json()["object_id"])
    assert (filesystem_profile / "media" / data_object.storage_key).read_bytes() == DATA


def test_embedded_store_refuses_bytes_that_differ_from_the_signed_md5(
    filesystem_profile, researcher, record
):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    good = part_bytes(DATA, upload.part_size, 1)
    signed = client.part_urls(upload.id, [1], {1: md5_base64(good)}).json()["parts"][0]
    corrupted = bytearray(good)
    corrupted[4096] ^= 0xFF

    refused = client.client.put(
        signed["url"],
        bytes(corrupted),
        content_type="application/octet-stream",
        headers=signed["headers"],
    )
    no_header = client.client.put(signed["url"], good, content_type="application/octet-stream")
    other_header = client.client.put(
        signed["url"],
        good,
        content_type="application/octet-stream",
        headers={"Content-MD5": md5_base64(bytes(corrupted))},
    )

    assert signed["headers"] == {"Content-MD5": md5_base64(good)}
    assert (refused.status_code, refused.json()["code"]) == (400, "BadDigest")
    assert no_header.status_code == 403
    assert other_header.status_code == 403
    assert client.stored_parts(upload.id).json()["parts"] == []
    etag = client.put_bytes(signed["url"], good, signed["headers"])
    assert etag == hashlib.md5(good).hexdigest()  # noqa: S324


def test_part_urls_are_signed_with_the_senders_md5(researcher, record):
    """On S3 the MD5 is a signed header of the presigned URL (the store checks the body)."""
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    md5 = md5_base64(part_bytes(DATA, upload.part_size, 1))

    with_md5 = client.part_urls(upload.id, [1], {1: md5}).json()["parts"][0]
    without = client.part_urls(upload.id, [2]).json()["parts"][0]

    assert with_md5["headers"] == {"Content-MD5": md5}
    assert "content-md5" in with_md5["url"].lower()
    assert without["headers"] == {}
    assert "content-md5" not in without["url"].lower()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"part_numbers": [1], "parts": [{"part_number": 2}]},
        {"parts": [{"part_number": 1, "md5": "not base64!"}]},
        {"parts": [{"part_number": 1, "md5": "YWJj"}]},  # base64, but not 16 bytes
        {"parts": [{"part_number": 1}, {"part_number": 1}]},
    ],
)
def test_malformed_part_signing_requests_are_refused(researcher, record, body):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))

    response = client.post(f"/api/v1/uploads/{upload.id}/parts", body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_an_upload_already_complete_is_not_aborted(researcher, record):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, range(1, upload.part_count + 1))
    assert client.complete(upload.id, etags).status_code == 200

    response = client.abort(upload.id)

    assert response.status_code == 400
    assert "already complete" in response.json()["detail"]
    data_object = DataObject.objects.get(pk=upload.object_id)
    assert data_object.status == DataObject.Status.STORED
    assert _stored_bytes(data_object) == DATA


def test_embedded_store_keeps_the_latest_copy_of_a_part_sent_twice(
    filesystem_profile, researcher, record
):
    client = UploadClient(researcher.user)
    upload = client.start_ok(**_fields(researcher, record))
    etags = client.put_parts(upload, DATA, [2, 3])
    wrong = bytes(upload.part_size)  # a first attempt with other bytes, no MD5 signed
    url = client.part_urls(upload.id, [1]).json()["parts"][0]["url"]
    stale_etag = client.put_bytes(url, wrong)
    etags.update(client.put_parts(upload, DATA, [1]))

    listed = client.stored_parts(upload.id).json()["parts"]
    stale = client.complete(upload.id, {**etags, 1: stale_etag})
    response = client.complete(upload.id, etags)

    assert [p["part_number"] for p in listed] == [1, 2, 3]
    assert listed[0]["etag"].strip('"') == etags[1] != stale_etag
    assert stale.status_code == 400
    assert response.status_code == 200, response.content
    data_object = DataObject.objects.get(pk=response.json()["object_id"])
    assert (filesystem_profile / "media" / data_object.storage_key).read_bytes() == DATA
