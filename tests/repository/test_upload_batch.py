"""Small files made cheap: one PUT per file and batch start/complete, against the suite's real
S3 server (SeaweedFS), with every check of a single upload still applied to each file."""

import hashlib
import os
import urllib.error
import urllib.request

import pytest
from django.core.files.storage import default_storage
from django.test import override_settings
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.models import DataObject, UploadSession
from repository.preservation.checksums import data_object_checksum_verify
from repository.preservation.object_store import SINGLE_PUT_UPLOAD_ID
from tests.factories import DmpRecordFactory, MembershipFactory, ProjectFactory, queued_work

from .test_uploads import filesystem_profile  # noqa: F401 - the embedded profile's fixture
from .upload_client import UploadClient, md5_base64

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024


@pytest.fixture
def researcher():
    member = MembershipFactory(role=Role.RESEARCHER)
    member.record = DmpRecordFactory(project=member.project)
    return member


def _fields(researcher, data: bytes, name: str = "plate01__A01.tif", **overrides) -> dict:
    return {
        "project": researcher.project_id,
        "record": researcher.record.pk,
        "filename": name,
        "size": len(data),
        "content_type": "image/tiff",
        "tier": Tier.SHARED,
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": md5_base64(data),
        "single_put": True,
        **overrides,
    }


def _put(client: UploadClient, put: dict, data: bytes) -> str:
    return client.put_bytes(put["url"], data, put["headers"])


def _put_status(put: dict, data: bytes) -> int:
    """The store's answer to a PUT of ``data`` to ``put`` (an S3 URL), errors included."""
    request = urllib.request.Request(  # noqa: S310 - the suite's loopback S3 server
        put["url"], data=data, method="PUT", headers=put["headers"]
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _stored_bytes(data_object: DataObject) -> bytes:
    with default_storage.open(data_object.storage_key, "rb") as fh:
        return fh.read()


# --- One PUT per small file ------------------------------------------------------------------


def test_a_small_file_is_one_put_and_lands_in_s3_verified(researcher):
    data = os.urandom(MIB)
    client = UploadClient(researcher.user)

    started = client.start(**_fields(researcher, data))

    assert started.status_code == 201, started.content
    body = started.json()
    assert body["part_count"] == 1
    assert body["put"]["headers"] == {"Content-MD5": md5_base64(data), "If-None-Match": "*"}
    session = UploadSession.objects.get(pk=body["id"])
    assert session.upload_id == SINGLE_PUT_UPLOAD_ID  # no multipart upload in the store
    etag = _put(client, body["put"], data)
    assert etag == hashlib.md5(data).hexdigest()  # noqa: S324 - S3's ETag
    completed = client.complete(body["id"], {1: etag})
    assert completed.status_code == 200, completed.content
    data_object = DataObject.objects.get(pk=body["object_id"])
    assert data_object.status == DataObject.Status.STORED
    assert _stored_bytes(data_object) == data

    verified = data_object_checksum_verify(data_object_id=data_object.pk)

    assert verified.checksum_state == DataObject.ChecksumState.VERIFIED
    assert verified.sha256 == verified.client_sha256 == hashlib.sha256(data).hexdigest()


def test_the_put_url_cannot_replace_the_bytes_once_stored(researcher):
    data = os.urandom(1000)
    client = UploadClient(researcher.user)
    body = client.start(**_fields(researcher, data, md5="")).json()
    etag = _put(client, body["put"], data)
    assert client.complete(body["id"], {1: etag}).status_code == 200

    replayed = _put_status(body["put"], os.urandom(1000))

    assert replayed == 412  # If-None-Match: * is signed into the URL
    assert _stored_bytes(DataObject.objects.get(pk=body["object_id"])) == data


def test_bytes_other_than_the_signed_md5_are_refused_by_the_store(researcher):
    data = os.urandom(5000)
    client = UploadClient(researcher.user)
    body = client.start(**_fields(researcher, data)).json()

    corrupted = bytes([data[0] ^ 1]) + data[1:]

    assert _put_status(body["put"], corrupted) == 400  # BadDigest
    response = client.complete(body["id"], {1: hashlib.md5(corrupted).hexdigest()})  # noqa: S324
    assert response.status_code == 400
    assert "never stored" in response.json()["detail"]


def test_completion_with_another_etag_is_refused(researcher):
    data = os.urandom(5000)
    client = UploadClient(researcher.user)
    body = client.start(**_fields(researcher, data)).json()
    _put(client, body["put"], data)

    response = client.complete(body["id"], {1: "0" * 32})

    assert response.status_code == 400
    assert "different ETag" in response.json()["detail"]
    assert DataObject.objects.get(pk=body["object_id"]).status == DataObject.Status.UPLOADING


def test_a_declared_sha256_that_the_bytes_do_not_have_is_caught_by_the_worker(researcher):
    data = os.urandom(4096)
    client = UploadClient(researcher.user)
    declared = hashlib.sha256(b"something else").hexdigest()
    body = client.start(**_fields(researcher, data, sha256=declared)).json()
    etag = _put(client, body["put"], data)
    assert client.complete(body["id"], {1: etag}).status_code == 200

    data_object = data_object_checksum_verify(data_object_id=body["object_id"])

    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.quarantined_at is not None
    assert data_object.client_sha256 == declared != data_object.sha256


def test_parts_listing_and_abort_work_for_a_single_put_upload(researcher):
    data = os.urandom(3000)
    client = UploadClient(researcher.user)
    body = client.start(**_fields(researcher, data)).json()
    assert client.stored_parts(body["id"]).json()["parts"] == []
    etag = _put(client, body["put"], data)
    listed = client.stored_parts(body["id"]).json()["parts"]
    assert [(p["part_number"], p["size"], p["etag"]) for p in listed] == [(1, 3000, etag)]
    renewed = client.part_urls(body["id"], [1], {1: md5_base64(data)}).json()["parts"][0]
    assert renewed["headers"] == {"Content-MD5": md5_base64(data), "If-None-Match": "*"}
    assert _put_status(renewed, data) == 412  # renewed, it still writes the key only once
    key = DataObject.objects.get(pk=body["object_id"]).storage_key

    assert client.abort(body["id"]).status_code == 204

    assert not default_storage.exists(key)
    assert DataObject.objects.get(pk=body["object_id"]).status == DataObject.Status.ABANDONED


def test_a_file_larger_than_one_part_gets_no_single_put(researcher):
    client = UploadClient(researcher.user)

    body = client.start(**_fields(researcher, b"", size=8 * MIB + 1, md5="")).json()

    assert body["put"] is None and body["part_count"] == 2
    assert UploadSession.objects.get(pk=body["id"]).upload_id != SINGLE_PUT_UPLOAD_ID


def test_without_single_put_the_start_answers_as_before(researcher):
    data = os.urandom(100)
    client = UploadClient(researcher.user)

    body = client.start(**_fields(researcher, data, single_put=False, md5="")).json()

    assert "put" not in body  # the answer of every other start is as it was
    assert UploadSession.objects.get(pk=body["id"]).upload_id != SINGLE_PUT_UPLOAD_ID
    etags = client.put_parts(client_started(body), data, [1])
    assert client.complete(body["id"], etags).status_code == 200


def client_started(body: dict):
    from .upload_client import StartedUpload

    return StartedUpload(body["id"], body["object_id"], body["part_size"], body["part_count"])


def test_the_embedded_profile_offers_its_part_url_as_the_one_put(
    filesystem_profile,  # noqa: F811
    researcher,
):
    data = os.urandom(70_000)
    client = UploadClient(researcher.user)
    body = client.start(**_fields(researcher, data)).json()

    assert body["put"]["url"].startswith("http://testserver/api/v1/uploads/part?token=")
    etag = _put(client, body["put"], data)
    assert client.complete(body["id"], {1: etag}).status_code == 200
    data_object = DataObject.objects.get(pk=body["object_id"])
    assert (filesystem_profile / "media" / data_object.storage_key).read_bytes() == data


# --- Batches: each file answered alone ------------------------------------------------------


def _batch_start(client: UploadClient, uploads: list[dict], **extra):
    return client.post("/api/v1/uploads/batch/", {"uploads": uploads, **extra})


def _batch_complete(client: UploadClient, completions: list[dict]):
    return client.post("/api/v1/uploads/batch/complete", {"uploads": completions})


def test_a_batch_starts_puts_and_completes_many_files(researcher, django_assert_max_num_queries):
    files = {f"well_{n:02d}.csv": os.urandom(2000 + n) for n in range(20)}
    client = UploadClient(researcher.user)

    started = _batch_start(client, [_fields(researcher, d, name) for name, d in files.items()])

    assert started.status_code == 200, started.content
    answers = started.json()["uploads"]
    assert [a["status"] for a in answers] == [201] * 20
    completions = []
    for answer, data in zip(answers, files.values(), strict=True):
        etag = _put(client, answer["upload"]["put"], data)
        completions.append(
            {"id": answer["upload"]["id"], "parts": [{"part_number": 1, "etag": etag}]}
        )
    completed = _batch_complete(client, completions)

    assert completed.status_code == 200, completed.content
    results = completed.json()["uploads"]
    assert [(r["id"], r["status"]) for r in results] == [(c["id"], 200) for c in completions]
    for result, (name, data) in zip(results, files.items(), strict=True):
        data_object = DataObject.objects.get(pk=result["object"]["id"])
        assert (data_object.original_filename, data_object.status) == (name, "stored")
        assert _stored_bytes(data_object) == data


def test_a_bad_file_in_a_batch_is_refused_alone(researcher):
    good = os.urandom(1000)
    elsewhere = ProjectFactory()
    client = UploadClient(researcher.user)
    uploads = [
        _fields(researcher, good, "a.csv"),
        _fields(researcher, good, "raw/b.csv"),  # a path
        _fields(researcher, good, "evil\u202egpj.exe"),  # a direction override
        _fields(researcher, good, "c.csv", project=elsewhere.pk, record=None),
        _fields(researcher, good, "d.csv", size="many"),  # malformed on its own
        _fields(researcher, good, "e.csv", size=0),
        _fields(researcher, good, "f.csv", md5="not-base64"),
        _fields(researcher, good, "g.csv"),
    ]

    response = _batch_start(client, uploads)

    assert response.status_code == 200, response.content
    answers = response.json()["uploads"]
    assert [a["status"] for a in answers] == [201, 400, 400, 403, 400, 400, 400, 201]
    assert "path" in answers[1]["error"]["errors"]["filename"][0]
    assert "U+202E" in answers[2]["error"]["detail"]
    assert answers[3]["error"]["code"] == "permission_denied"
    assert set(answers[4]["error"]["errors"]) == {"size"}
    assert set(answers[6]["error"]["errors"]) == {"md5"}
    names = set(DataObject.objects.values_list("original_filename", flat=True))
    assert names == {"a.csv", "g.csv"}


def test_the_quota_is_checked_file_by_file_in_a_batch(researcher):
    project = researcher.project
    project.quota_bytes = 2500
    project.save()
    data = os.urandom(1000)
    client = UploadClient(researcher.user)

    answers = _batch_start(
        client, [_fields(researcher, data, f"{n}.bin") for n in range(3)]
    ).json()["uploads"]

    assert [a["status"] for a in answers] == [201, 201, 400]
    assert "quota" in answers[2]["error"]["errors"]["size"][0]


@override_settings(KURA_UPLOAD_BATCH_MAX=3)
@pytest.mark.parametrize("body", [{"uploads": []}, {"uploads": [{}] * 4}, {"uploads": "x"}, {}])
def test_a_malformed_batch_is_refused_whole_and_starts_nothing(researcher, body):
    response = UploadClient(researcher.user).post("/api/v1/uploads/batch/", body)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not DataObject.objects.exists()


def test_anonymous_callers_cannot_use_the_batch_endpoints(client):
    for path in ("/api/v1/uploads/batch/", "/api/v1/uploads/batch/complete"):
        response = client.post(path, {"uploads": [{}]}, content_type="application/json")
        assert response.status_code in (401, 403)


def test_a_batch_completion_answers_each_upload_alone(researcher):
    data = os.urandom(1500)
    client = UploadClient(researcher.user)
    answers = _batch_start(
        client, [_fields(researcher, data, f"{n}.bin") for n in range(3)]
    ).json()["uploads"]
    etags = [_put(client, a["upload"]["put"], data) for a in answers[:2]]
    stranger = MembershipFactory(role=Role.RESEARCHER, project=researcher.project)
    theirs = UploadClient(stranger.user).start(**_fields(researcher, data, "theirs.bin")).json()
    ids = [a["upload"]["id"] for a in answers]

    response = _batch_complete(
        client,
        [
            {"id": ids[0], "parts": [{"part_number": 1, "etag": etags[0]}]},
            {"id": ids[1], "parts": [{"part_number": 1, "etag": "f" * 32}]},
            {"id": ids[2], "parts": [{"part_number": 1, "etag": etags[0]}]},  # never sent
            {"id": theirs["id"], "parts": [{"part_number": 1, "etag": etags[0]}]},
            {"id": ids[1], "parts": "none"},
            {"id": True, "parts": [{"part_number": 1, "etag": etags[0]}]},  # not an id
        ],
    )

    assert response.status_code == 200
    results = response.json()["uploads"]
    statuses = [(r["id"], r["status"]) for r in results]
    assert statuses == [
        (ids[0], 200),
        (ids[1], 400),
        (ids[2], 400),
        (theirs["id"], 404),
        (ids[1], 400),
        (None, 400),
    ]
    assert results[0]["object"]["status"] == "stored"
    assert "different ETag" in results[1]["error"]["detail"]
    assert "never stored" in results[2]["error"]["detail"]
    stored = DataObject.objects.filter(status=DataObject.Status.STORED)
    assert list(stored.values_list("pk", flat=True)) == [answers[0]["upload"]["object_id"]]


def test_a_batch_completion_queues_each_checksum(
    researcher, django_capture_on_commit_callbacks, monkeypatch
):
    from repository.preservation.queue import (
        CHECKSUM,
        CHECKSUM_MANY,
        CHECKSUMS_FAN_OUT,
        task_by_name,
    )

    fan_out = task_by_name(CHECKSUMS_FAN_OUT)
    messages, sent, groups = [], [], []
    monkeypatch.setattr(  # the one message of the batch, run here as a worker would
        fan_out, "delay", lambda ids: messages.append(ids) or fan_out.apply(args=[ids])
    )
    monkeypatch.setattr(
        task_by_name(CHECKSUM), "apply_async", lambda args, **kwargs: sent.append(args[0])
    )
    monkeypatch.setattr(
        task_by_name(CHECKSUM_MANY), "apply_async", lambda args, **kwargs: groups.append(args[0])
    )
    data = [os.urandom(700), os.urandom(800)]
    client = UploadClient(researcher.user)
    answers = _batch_start(
        client, [_fields(researcher, d, f"{n}.bin") for n, d in enumerate(data)]
    ).json()["uploads"]
    completions = [
        {
            "id": a["upload"]["id"],
            "parts": [{"part_number": 1, "etag": _put(client, a["upload"]["put"], d)}],
        }
        for a, d in zip(answers, data, strict=True)
    ]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert _batch_complete(client, completions).status_code == 200

    # The web sends one message for the batch after the commit, and its task queues the
    # small objects' checksums in groups (kura.checksum_many).
    ids = [a["upload"]["object_id"] for a in answers]
    assert len(queued_work(callbacks)) == 1
    assert messages == [ids]
    assert groups == [ids]
    assert sent == []


def test_a_batch_completion_with_the_broker_away_keeps_every_checksum_for_the_requeue(
    researcher, django_capture_on_commit_callbacks
):
    from repository.preservation.housekeeping import checksums_stalled
    from tests.faults.test_checksum_faults import broker

    data = [os.urandom(300), os.urandom(400), os.urandom(500)]
    client = UploadClient(researcher.user)
    answers = _batch_start(
        client, [_fields(researcher, d, f"{n}.bin") for n, d in enumerate(data)]
    ).json()["uploads"]
    completions = [
        {
            "id": a["upload"]["id"],
            "parts": [{"part_number": 1, "etag": _put(client, a["upload"]["put"], d)}],
        }
        for a, d in zip(answers, data, strict=True)
    ]

    with (
        broker("redis://127.0.0.1:9/0"),  # nothing listens there
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = _batch_complete(client, completions)

    assert [r["status"] for r in response.json()["uploads"]] == [200, 200, 200]
    ids = sorted(a["upload"]["object_id"] for a in answers)
    unsent = DataObject.objects.filter(checksum_unsent=True).values_list("pk", flat=True)
    assert sorted(unsent) == ids
    assert sorted(checksums_stalled(now=timezone.now())) == ids


# --- Skipping what Kura already holds --------------------------------------------------------


def _verified(researcher, data: bytes, name: str) -> DataObject:
    client = UploadClient(researcher.user)
    body = client.start(**_fields(researcher, data, name)).json()
    etag = _put(client, body["put"], data)
    assert client.complete(body["id"], {1: etag}).status_code == 200
    return data_object_checksum_verify(data_object_id=body["object_id"])


def test_skip_identical_answers_the_verified_object_instead_of_a_new_upload(researcher):
    held = os.urandom(900)
    held_object = _verified(researcher, held, "held.bin")
    changed = os.urandom(900)
    client = UploadClient(researcher.user)
    uploads = [
        _fields(researcher, held, "held.bin"),  # identical: skipped
        _fields(researcher, changed, "held.bin"),  # same name and size, other bytes
        _fields(researcher, held, "renamed.bin"),  # same bytes, other name
        _fields(researcher, held, "held.bin", record=None),  # another target
        _fields(researcher, held, "held.bin", sha256=""),  # nothing to compare
    ]

    answers = _batch_start(client, uploads, skip_identical=True).json()["uploads"]

    assert [a["status"] for a in answers] == [200, 201, 201, 201, 201]
    assert answers[0]["object"]["id"] == held_object.pk
    assert answers[0]["object"]["sha256"] == hashlib.sha256(held).hexdigest()
    without = _batch_start(client, uploads[:1]).json()["uploads"]
    assert without[0]["status"] == 201  # only when asked


@pytest.mark.parametrize("state", ["quarantined", "pending", "invisible"])
def test_skip_identical_never_trusts_an_object_not_verified_or_not_visible(researcher, state):
    data = os.urandom(600)
    held = _verified(researcher, data, "x.bin")
    caller = researcher.user
    if state == "quarantined":
        DataObject.objects.filter(pk=held.pk).update(quarantined_at=held.stored_at)
    elif state == "pending":
        DataObject.objects.filter(pk=held.pk).update(checksum_state="pending")
    else:
        caller = MembershipFactory(role=Role.RESEARCHER).user  # uploads elsewhere
        DataObject.objects.filter(pk=held.pk).update(tier=Tier.NON_SHARED)

    answer = _batch_start(
        UploadClient(caller), [_fields(researcher, data, "x.bin")], skip_identical=True
    ).json()["uploads"][0]

    assert answer["status"] == (403 if state == "invisible" else 201)
    assert "object" not in answer
