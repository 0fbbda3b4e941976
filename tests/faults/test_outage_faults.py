"""Dependency outages on real services: every API path answers the one JSON 503 with
``Retry-After`` (never an HTML 500), the pages the 503 page, a full disk a clear 507.

PostgreSQL and disk-full run against Kura as its own gunicorn process
(tests/faults/kura_server.py), so authentication, sessions and Django's handler of last
resort are all in the way; the store and Redis outages use a private SeaweedFS / Redis
that the test stops, through the whole middleware stack of Django's test client.
"""

import hashlib
import io
import sqlite3
import zipfile

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import DataObject
from tests.dmp.complete_records import complete_record
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory, ProjectFactory
from tests.faults.kura_server import KuraServer, server_environment
from tests.private_services import PrivatePostgres, PrivateRedis
from tests.seaweedfs import SeaweedFS

MIB = 1024**2


def _assert_json_503(answer, what: str):
    assert answer.status == 503, f"{what}: {answer.status} {answer.body[:300]!r}"
    assert int(answer.headers["Retry-After"]) > 0, what
    assert answer.headers["Content-Type"].startswith("application/json"), what
    body = answer.json()
    assert body["status"] == 503 and body["code"] == "unavailable", what
    assert body["detail"], what


# --- PostgreSQL down -----------------------------------------------------------------------


@pytest.fixture
def kura_on_private_postgres(tmp_path):
    postgres = PrivatePostgres(tmp_path / "pg")
    postgres.start()
    server = None
    try:
        database_url = postgres.createdb("kura_outage")
        server = KuraServer(
            server_environment(database_url=database_url, var_dir=tmp_path / "var"), tmp_path
        )
        server.prepare()
        server.start()
        yield server, postgres
    finally:
        if server is not None:
            server.stop()
        postgres.cleanup()


def test_postgres_down_every_api_path_answers_json_503(kura_on_private_postgres):
    """Token-authenticated and anonymous, reads and writes, under /api/: JSON 503 with
    Retry-After. The pages answer the 503 page. Then the database returns and so does
    Kura, with no restart."""
    server, postgres = kura_on_private_postgres
    token, setup = server.setup["token"], server.setup
    assert server.request("GET", "/api/v1/objects/", token=token).status == 200

    postgres.stop("immediate")

    start = {
        "project": setup["project"],
        "record": setup["record"],
        "filename": "liver.tif",
        "size": 1234,
        "content_type": "image/tiff",
        "tier": "shared",
    }
    calls = [
        ("GET", "/api/v1/objects/", None),
        ("GET", "/api/v1/objects/1/", None),
        ("GET", "/api/v1/projects/", None),
        ("GET", "/api/v1/uploads/1/parts", None),
        ("GET", "/api/v1/audit-events/", None),
        ("GET", "/api/v1/access-requests/", None),
        ("POST", "/api/v1/uploads/", start),
        ("POST", "/api/v1/uploads/1/complete", {"parts": []}),
        ("POST", "/api/v1/uploads/1/parts", {"part_numbers": [1]}),
        ("DELETE", "/api/v1/uploads/1", None),
        ("POST", "/api/v1/access-requests/", {"record": setup["record"]}),
    ]
    anonymous_503 = 0
    for method, path, body in calls:
        _assert_json_503(server.request(method, path, body=body, token=token), f"{method} {path}")
        # Anonymous: an endpoint for signed-in users only refuses at once (401, JSON, no
        # database needed); every other answer is the 503.
        answer = server.request(method, path, body=body)
        if answer.status == 401:
            assert answer.json()["code"] == "not_authenticated"
        else:
            _assert_json_503(answer, f"anonymous {method} {path}")
            anonymous_503 += 1
    assert anonymous_503 >= 2  # the public listings did reach the database
    # A well-formed but wrong token is looked up in the database too.
    wrong = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    _assert_json_503(server.request("GET", "/api/v1/objects/", token=wrong), "wrong token")

    pages = [(path, "") for path in ("/", f"/datasets/{setup['record']}/")]
    pages += [(path, setup["session"]) for path in ("/", "/uploads/", "/api/v1/objects/")]
    for path, session in pages:
        answer = server.request("GET", path, session=session)
        if path.startswith("/api/"):
            _assert_json_503(answer, f"signed-in {path}")
            continue
        assert answer.status == 503, f"{path} ({session or 'anonymous'}): {answer.status}"
        assert int(answer.headers["Retry-After"]) > 0
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "Temporarily unavailable" in answer.body.decode()

    assert "Internal Server Error" not in server.log()

    postgres.start()
    assert server.request("GET", "/api/v1/objects/", token=token).status == 200


# --- Disk full (SQLite, the embedded profile) -----------------------------------------------


def test_sqlite_disk_full_upload_start_answers_507_and_changes_nothing(tmp_path):
    """The database file may not grow (SQLite's ``max_page_count`` set by the server's own
    connections, the very error a full disk gives: SQLITE_FULL, "database or disk is
    full"). Upload starts succeed while pages have room, then answer 507 in the API's
    error body, never 500, and a refused start leaves no row behind."""
    database = tmp_path / "var" / "kura.sqlite3"
    env = server_environment(database_url=f"sqlite:///{database}", var_dir=tmp_path / "var")
    env["KURA_STORAGE"] = "filesystem"
    server = KuraServer(env, tmp_path)
    setup = server.prepare()
    with sqlite3.connect(database) as db:
        db.execute("VACUUM")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    server.env = {
        **env,
        "DATABASE_URL": f"sqlite:///{database}?init_command="
        f"PRAGMA journal_mode=WAL%3B PRAGMA max_page_count={pages}%3B",
    }
    server.start()
    try:
        statuses = []
        for n in range(400):
            answer = server.request(
                "POST",
                "/api/v1/uploads/",
                token=setup["token"],
                body={
                    "project": setup["project"],
                    "record": setup["record"],
                    "filename": f"liver-{n}.tif",
                    "size": 1234,
                    "content_type": "image/tiff",
                    "tier": "shared",
                },
            )
            statuses.append(answer.status)
            if answer.status != 201:
                break
        assert statuses[-1] == 507, (statuses[-5:], answer.body[:400], server.log())
        assert set(statuses[:-1]) <= {201}
        body = answer.json()
        assert body["status"] == 507 and body["code"] == "insufficient_storage"
        assert "disk is full" in body["detail"]
        assert answer.headers["Content-Type"].startswith("application/json")
        with sqlite3.connect(database) as db:
            objects = db.execute("SELECT count(*) FROM repository_dataobject").fetchone()[0]
            sessions = db.execute("SELECT count(*) FROM repository_uploadsession").fetchone()[0]
        assert objects == sessions == len(statuses) - 1  # the refused start left nothing
        # Reads still work on a full disk.
        assert server.request("GET", "/api/v1/objects/", token=setup["token"]).status == 200
    finally:
        server.stop()


# --- S3 down ---------------------------------------------------------------------------------


@pytest.fixture
def private_store(tmp_path):
    """A SeaweedFS of this test's own as Kura's store, its bucket made; stopped by the test."""
    store = SeaweedFS(
        tmp_path / "s3",
        access_key=settings.AWS_ACCESS_KEY_ID,
        secret_key=settings.AWS_SECRET_ACCESS_KEY,
        region=settings.AWS_S3_REGION_NAME,
    )
    endpoint = store.start()
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"endpoint_url": endpoint, "client_config": _no_retries()},
        },
    }
    try:
        with override_settings(AWS_S3_ENDPOINT_URL=endpoint, STORAGES=storages):
            call_command("kura_storage_setup", stdout=io.StringIO())
            yield store
    finally:
        store.stop()


def _no_retries():
    from botocore.config import Config

    return Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10)


def _api_client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _post(client, path, body):
    import json

    return client.post(path, json.dumps(body), content_type="application/json")


def _assert_client_503(response, what: str):
    assert response.status_code == 503, f"{what}: {response.status_code} {response.content[:300]!r}"
    assert int(response["Retry-After"]) > 0, what
    assert response.json()["code"] == "unavailable", what


@pytest.mark.django_db
def test_store_down_upload_paths_answer_json_503(private_store):
    """Start, list parts, sign parts, complete and abort while the store is stopped."""
    membership = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=membership.project)
    client = _api_client(membership.user)
    fields = {
        "project": membership.project_id,
        "record": record.pk,
        "filename": "liver.tif",
        "size": 9 * MIB,
        "content_type": "image/tiff",
        "tier": Tier.SHARED,
    }
    started = _post(client, "/api/v1/uploads/", fields)
    assert started.status_code == 201, started.content
    upload = started.json()["id"]
    verified = DataObjectFactory(
        project=membership.project,
        record=record,
        uploaded_by=membership.user,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )

    private_store.stop()

    _assert_client_503(_post(client, "/api/v1/uploads/", fields), "start")
    _assert_client_503(client.get(f"/api/v1/uploads/{upload}/parts"), "GET parts")
    _assert_client_503(
        _post(
            client,
            f"/api/v1/uploads/{upload}/complete",
            {"parts": [{"part_number": 1, "etag": "x"}, {"part_number": 2, "etag": "y"}]},
        ),
        "complete",
    )
    _assert_client_503(client.delete(f"/api/v1/uploads/{upload}"), "abort")
    # A download is a presigned redirect: Kura itself does not touch the store, and the
    # browser meets the outage at the store. Never a 500 from Kura.
    download = client.get(reverse("object-download", args=[verified.pk]))
    assert download.status_code in (302, 503), download.status_code


# --- BagIt during a store outage -------------------------------------------------------------


def _public_record(files: int, size: int):
    project = ProjectFactory(japan_grant_number=f"JPMJFA{files}{size}")
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    for n in range(files):
        data = bytes([n]) * size
        data_object = DataObjectFactory(
            project=project,
            record=record,
            original_filename=f"file-{n}.bin",
            size=len(data),
            content_type="application/octet-stream",
            sha256=hashlib.sha256(data).hexdigest(),
            checksum_state=DataObject.ChecksumState.VERIFIED,
            tier=Tier.PUBLIC,
        )
        default_storage.save(data_object.storage_key, ContentFile(data))
    return record


@pytest.mark.django_db
def test_bagit_with_the_store_down_answers_503_before_the_first_byte(private_store):
    record = _public_record(2, 1000)
    private_store.stop()
    response = Client(raise_request_exception=False).get(
        reverse("dataset-export", args=[record.pk, "bagit"])
    )
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert "Temporarily unavailable" in response.content.decode()


@pytest.mark.django_db
def test_bagit_store_lost_mid_stream_never_ends_as_a_valid_zip(private_store):
    """The response has begun; the store goes away before the second file. The stream
    breaks off (the server then drops the connection without the last chunk) and what
    arrived is no zip any client accepts — never a neat archive missing a file."""
    record = _public_record(2, 2 * MIB)
    response = Client().get(reverse("dataset-export", args=[record.pk, "bagit"]))
    assert response.status_code == 200
    chunks = iter(response.streaming_content)
    received = [next(chunks)]
    private_store.stop()
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the store client raises
        for chunk in chunks:
            received.append(chunk)
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(b"".join(received)))


# --- Redis (cache) down ----------------------------------------------------------------------


@pytest.mark.django_db
def test_redis_cache_down_api_answers_normally_or_503_never_500(tmp_path):
    """Throttling counts, the page cache and the usage buffer live in Redis. With it
    stopped, each API path and the landing page either answers as usual or 503 with
    Retry-After; never 500 (a view's count is lost, logged)."""
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    caches = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": redis.url,
            "OPTIONS": {"socket_connect_timeout": 5, "socket_timeout": 5},
        }
    }
    membership = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=membership.project, metadata_access=MetadataAccess.OPEN)
    try:
        with override_settings(CACHES=caches, KURA_PAGE_CACHE_SECONDS=300):
            client = _api_client(membership.user)
            anonymous = Client(raise_request_exception=False)
            assert client.get("/api/v1/objects/").status_code == 200
            redis.stop()
            for who, c in (("user", client), ("anonymous", anonymous)):
                for path in (
                    "/api/v1/objects/",
                    "/api/v1/projects/",
                    "/api/v1/access-requests/",
                    "/",
                    f"/datasets/{record.pk}/",
                    f"/api/v1/records/{record.pk}/usage",
                ):
                    response = c.get(path)
                    assert response.status_code in (200, 401, 403, 503), (
                        f"{who} {path}: {response.status_code}"
                    )
                    if response.status_code == 503:
                        assert int(response["Retry-After"]) > 0
                        if path.startswith("/api/"):
                            assert response.json()["code"] == "unavailable"
    finally:
        redis.kill()
