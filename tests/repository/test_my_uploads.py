"""No ghosts, and "My uploads": an upload that never completed is its uploader's alone.

Uploads go through the real upload API into the S3 test server (tests/repository/
upload_client.py), are left in flight, interrupted, aborted or abandoned by the idle sweep,
or completed and verified by the checksum service; then every page that lists objects is
read as each kind of user.
"""

import datetime
import hashlib
import os
import re

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import DataObject, UploadSession
from repository.preservation.checksums import data_object_checksum_verify
from repository.preservation.housekeeping import uploads_abandon_idle
from repository.preservation.my_uploads import selectors
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    make_curator,
    make_superuser,
)

from .upload_client import UploadClient

pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
LARGE = os.urandom(17 * MIB + 12345)  # three parts of 8 MiB
SMALL = os.urandom(200_000)  # one part


class Lab:
    """A project with every role and an open record whose shared files anyone may list."""

    def __init__(self):
        self.project = ProjectFactory()
        self.uploader = MembershipFactory(project=self.project, role=Role.RESEARCHER).user
        self.pm = MembershipFactory(project=self.project, role=Role.PM).user
        self.data_manager = MembershipFactory(project=self.project, role=Role.DATA_MANAGER).user
        self.collaborator = MembershipFactory(project=self.project, role=Role.COLLABORATOR).user
        self.record = DmpRecordFactory(
            project=self.project, metadata_access=MetadataAccess.OPEN, access_rights=Tier.SHARED
        )
        self.api = UploadClient(self.uploader)

    def fields(self, filename: str, data: bytes) -> dict:
        return {
            "project": self.project.pk,
            "record": self.record.pk,
            "filename": filename,
            "size": len(data),
            "content_type": "application/octet-stream",
            "tier": Tier.SHARED,
        }

    def start(self, filename: str, data: bytes = LARGE, parts=()):
        """An upload started, with ``parts`` sent: answers its session."""
        upload = self.api.start_ok(**self.fields(filename, data))
        if parts:
            self.api.put_parts(upload, data, parts)
        return UploadSession.objects.select_related("data_object").get(pk=upload.id)

    def upload(self, filename: str, data: bytes = SMALL, **extra) -> DataObject:
        """An upload completed (``extra`` goes with the completion, e.g. ``sha256``)."""
        upload = self.api.start_ok(**self.fields(filename, data))
        etags = self.api.put_parts(upload, data, range(1, upload.part_count + 1))
        response = self.api.complete(upload.id, etags, **extra)
        assert response.status_code == 200, response.content
        return DataObject.objects.get(pk=upload.object_id)


@pytest.fixture
def lab():
    return Lab()


def idle(session: UploadSession, **delta) -> None:
    UploadSession.objects.filter(pk=session.pk).update(
        last_activity_at=timezone.now() - datetime.timedelta(**delta)
    )


def client_for(user) -> Client:
    client = Client()
    if user.is_authenticated:
        client.force_login(user)
    return client


@pytest.fixture
def storage_down(settings):
    """The S3 endpoint refuses every connection from now on (nothing listens on port 9)."""

    def stop() -> None:
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": {"endpoint_url": "http://127.0.0.1:9"},
            },
        }

    return stop


def section(page: str, section_id: str) -> str:
    """The HTML of the page's ``<section id=…>``, or "" when the page has none."""
    match = re.search(rf'<section[^>]*id="{section_id}".*?</section>', page, re.S)
    return match.group(0) if match else ""


# --- A failed start leaves nothing ---------------------------------------------------------------


def test_a_start_the_storage_refuses_leaves_no_object(lab, storage_down):
    storage_down()

    response = lab.api.start(**lab.fields("run1_R1.fastq.gz", LARGE))

    assert response.status_code == 503
    assert "Retry-After" in response or response.json()["status"] == 503
    assert not DataObject.objects.exists()
    assert not UploadSession.objects.exists()


# --- No ghosts on any page -----------------------------------------------------------------------


@pytest.fixture
def ghosts(lab):
    """One stored file, one upload in flight, one aborted and one abandoned by the sweep."""
    kept = lab.upload("kept.fastq.gz")
    in_flight = lab.start("inflight.fastq.gz", parts=[1])
    aborted = lab.start("aborted.fastq.gz", parts=[1])
    assert lab.api.abort(aborted.pk).status_code == 204
    swept = lab.start("swept.fastq.gz")
    idle(swept, hours=25)
    assert uploads_abandon_idle(now=timezone.now()) == 1
    return {"kept": kept, "in_flight": in_flight, "aborted": aborted, "swept": swept}


GHOST_NAMES = ("inflight.fastq.gz", "aborted.fastq.gz", "swept.fastq.gz")
ROLES = ("uploader", "pm", "data_manager", "collaborator", "curator", "superuser", "anonymous")


def user_for(lab: Lab, role: str):
    if role == "curator":
        return make_curator()
    if role == "superuser":
        return make_superuser()
    if role == "anonymous":
        return AnonymousUser()
    return getattr(lab, role)


@pytest.mark.parametrize("role", ROLES)
def test_no_page_lists_an_upload_that_never_completed(lab, ghosts, role):
    client = client_for(user_for(lab, role))
    project, record = lab.project.pk, lab.record.pk
    pages = {
        "project": f"/projects/{project}/",
        "record": f"/projects/{project}/dmp/records/{record}/",
        "dmp": f"/projects/{project}/dmp/",
        "landing": f"/datasets/{record}/",
        "dashboard": f"/projects/{project}/dashboard/",
        "api": "/api/v1/objects/",
    }
    shown = 0
    for name, url in pages.items():
        response = client.get(url)
        if response.status_code != 200:
            continue  # a page this role may not open lists nothing to it
        shown += 1
        body = response.content.decode()
        for ghost in GHOST_NAMES if role != "uploader" or name != "api" else GHOST_NAMES[1:]:
            assert ghost not in body, (name, ghost)
        if name in ("project", "record", "landing"):
            assert "kept.fastq.gz" in body, name
    assert shown >= 2


def test_the_uploader_alone_reads_their_upload_in_flight_through_the_api(lab, ghosts):
    in_flight = ghosts["in_flight"].data_object_id

    own = client_for(lab.uploader).get("/api/v1/objects/?status=uploading").json()["results"]
    pm = client_for(lab.pm).get("/api/v1/objects/?status=uploading").json()["results"]

    assert [o["id"] for o in own] == [in_flight]
    assert pm == []
    page = client_for(lab.uploader).get(f"/objects/{in_flight}/").content.decode()
    assert "This upload is not complete, and only you can see it." in page
    assert f'href="/projects/{lab.project.pk}/upload/"' in page
    assert 'id="tier-form"' not in page and f"/objects/{in_flight}/delete" not in page
    assert client_for(lab.pm).get(f"/objects/{in_flight}/").status_code == 404
    assert client_for(make_curator()).get(f"/objects/{in_flight}/").status_code == 404


def test_the_dashboard_counts_only_stored_files(lab, ghosts):
    page = client_for(lab.pm).get(f"/projects/{lab.project.pk}/dashboard/").content.decode()
    project_page = client_for(lab.uploader).get(f"/projects/{lab.project.pk}/")

    assert project_page.context["totals"]["count"] == 1
    assert "inflight.fastq.gz" not in page


# --- "My uploads" --------------------------------------------------------------------------


def test_my_uploads_groups_every_upload_by_what_can_be_done_next(lab, ghosts):
    interrupted = lab.start("interrupted.fastq.gz", parts=[1, 2])
    idle(interrupted, hours=2)
    verifying = lab.upload("verifying.fastq.gz")
    DataObject.objects.filter(pk=verifying.pk).update(
        checksum_state=DataObject.ChecksumState.VERIFYING, checksum_progress=40
    )
    end_to_end = lab.upload("e2e.fastq.gz", sha256=hashlib.sha256(SMALL).hexdigest())
    at_rest = lab.upload("at-rest.fastq.gz", os.urandom(1000))
    for data_object in (end_to_end, at_rest):
        data_object_checksum_verify(data_object_id=data_object.pk)

    response = client_for(lab.uploader).get("/uploads/")

    assert response.status_code == 200
    page = response.content.decode()
    in_flight = section(page, "in-flight")
    assert "inflight.fastq.gz" in in_flight
    assert "1 of 3 parts stored" in in_flight and 'value="33"' in in_flight
    resumable = section(page, "interrupted")
    assert "interrupted.fastq.gz" in resumable and "2 of 3 parts stored" in resumable
    assert f'href="/projects/{lab.project.pk}/upload/"' in resumable
    assert "inflight.fastq.gz" not in resumable
    failed = section(page, "failed")
    assert re.search(r"aborted\.fastq\.gz.*?Aborted by the uploader\.", failed, re.S)
    assert re.search(r"swept\.fastq\.gz.*?No activity for 24 hours\.", failed, re.S)
    checking = section(page, "verifying")
    assert "verifying.fastq.gz" in checking and 'value="40"' in checking
    assert "kept.fastq.gz" in checking  # stored, its checksum not run in this test
    verified = section(page, "verified")
    assert re.search(r"e2e\.fastq\.gz.*?Verified end to end", verified, re.S)
    assert re.search(r"at-rest\.fastq\.gz.*?Verified at rest", verified, re.S)
    assert f'href="/objects/{end_to_end.pk}/"' in verified


def test_the_idle_sweep_says_why_it_gave_up(lab, settings):
    settings.KURA_UPLOAD_ABANDON_AFTER_HOURS = 6
    session = lab.start("slow.tif")
    idle(session, hours=7)

    assert uploads_abandon_idle(now=timezone.now()) == 1
    assert uploads_abandon_idle(now=timezone.now()) == 0

    session.refresh_from_db()
    assert session.failure_reason == "No activity for 6 hours."
    assert session.data_object.status == DataObject.Status.ABANDONED


def test_aborting_says_so(lab):
    session = lab.start("cancelled.tif", parts=[1])

    assert lab.api.abort(session.pk).status_code == 204

    session.refresh_from_db()
    assert session.failure_reason == "Aborted by the uploader."


def test_my_uploads_shows_only_my_own_and_not_what_was_deleted(lab):
    mine = lab.upload("mine.csv")
    gone = lab.upload("gone.csv")
    assert client_for(lab.uploader).post(f"/objects/{gone.pk}/delete").status_code == 302
    Lab().upload("theirs.csv")

    page = client_for(lab.uploader).get("/uploads/").content.decode()

    assert mine.original_filename in page
    assert "gone.csv" not in page and "theirs.csv" not in page


def test_a_stored_file_that_failed_its_checksum_is_listed_as_failed(lab):
    broken = lab.upload("broken.csv", sha256="0" * 64)
    assert data_object_checksum_verify(data_object_id=broken.pk).checksum_state == "failed"

    page = client_for(lab.uploader).get("/uploads/").content.decode()

    assert "broken.csv" in section(page, "failed")
    assert "Quarantined" in section(page, "failed")
    assert "broken.csv" not in section(page, "verified")


def test_storage_down_costs_the_progress_not_the_page(lab, storage_down):
    lab.start("inflight.fastq.gz", parts=[1])
    lab.start("interrupted.fastq.gz", parts=[1])
    storage_down()

    response = client_for(lab.uploader).get("/uploads/")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="progress-unavailable"' in page
    assert "Progress not known" in section(page, "in-flight")


def test_an_upload_the_storage_no_longer_knows_shows_no_progress(lab):
    session = lab.start("forgotten.fastq.gz", parts=[1])
    UploadSession.objects.filter(pk=session.pk).update(upload_id="no-such-upload")

    page = client_for(lab.uploader).get("/uploads/").content.decode()

    assert "Progress not known" in section(page, "in-flight")
    assert 'id="progress-unavailable"' not in page


def sessions_in_every_state(user, project, count: int) -> None:
    """``count`` sessions of each state, straight in the database (no storage needed)."""
    now = timezone.now()
    states = [
        (DataObject.Status.UPLOADING, "pending", None, now),
        (DataObject.Status.UPLOADING, "pending", None, now - datetime.timedelta(hours=3)),
        (DataObject.Status.ABANDONED, "pending", None, now - datetime.timedelta(days=2)),
        (DataObject.Status.STORED, "verifying", now, now),
        (DataObject.Status.STORED, "verified", now, now),
    ]
    for status, checksum_state, completed_at, activity in states:
        for _ in range(count):
            data_object = DataObjectFactory(
                project=project,
                uploaded_by=user,
                status=status,
                checksum_state=checksum_state,
                tier=Tier.SHARED,
            )
            UploadSession.objects.create(
                data_object=data_object,
                upload_id=f"upload-{data_object.pk}",
                part_size=8 * MIB,
                part_count=1,
                created_by=user,
                last_activity_at=activity,
                expires_at=now + datetime.timedelta(days=1),
                completed_at=completed_at,
            )


def test_my_uploads_costs_the_same_queries_for_many_uploads(lab):
    client = client_for(lab.uploader)
    sessions_in_every_state(lab.uploader, lab.project, 1)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/uploads/").status_code == 200

    sessions_in_every_state(lab.uploader, lab.project, 6)
    with CaptureQueriesContext(connection) as many:
        page = client.get("/uploads/").content.decode()

    assert len(many) == len(few)
    assert page.count('class="upload-row"') == 5 * 7


def test_verified_uploads_come_a_page_at_a_time(lab, monkeypatch):
    monkeypatch.setattr(selectors, "VERIFIED_PAGE_SIZE", 2)
    monkeypatch.setattr(selectors, "GROUP_LIMIT", 2)
    sessions_in_every_state(lab.uploader, lab.project, 3)
    client = client_for(lab.uploader)

    first = client.get("/uploads/").content.decode()
    second = client.get("/uploads/?page=2").content.decode()

    assert section(first, "verified").count('class="upload-row"') == 2
    assert "Page 1 of 2" in first
    assert section(second, "verified").count('class="upload-row"') == 1
    failed = section(first, "failed")
    assert failed.count('class="upload-row"') == 2 and "and 1 more" in failed


def test_my_uploads_needs_a_login_and_is_in_the_menu(lab):
    anonymous = Client().get("/uploads/")
    home = client_for(lab.collaborator).get("/").content.decode()

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/")
    assert 'href="/uploads/"' in home
    assert 'href="/uploads/"' not in Client().get("/").content.decode()
    empty = client_for(lab.collaborator).get("/uploads/").content.decode()
    assert 'id="no-uploads"' in empty
