"""Published versions through the API (docs/architecture.md, "Published versions and DOIs"):
the version pages' visibility, the same refusals as the publish and withdraw forms in the
API's error body, and the DOI outcome at a local fake of DataCite's REST API."""

import datetime
import hashlib
import itertools
from urllib.parse import urljoin

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from core.audit import AuditAction
from core.vocabularies import MetadataAccess, Tier
from repository.models import AuditEvent, DataObject, DatasetVersion
from repository.publishing import sync
from repository.publishing.versions import dataset_version_publish
from repository.tasks import doi_sync_task
from tests.dmp.complete_records import complete_record
from tests.factories import (
    DataObjectFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    make_superuser,
)
from tests.repository.fake_datacite import PREFIX, fake_datacite_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

_grants = itertools.count(7100)
ROLES = (
    "anonymous",
    "outsider",
    "collaborator",
    "researcher",
    "data_manager",
    "pm",
    "curator",
    "program_officer",
    "superuser",
)
STEWARDS = {"data_manager", "pm", "superuser"}
MEMBERS = {"data_manager", "pm", "collaborator", "researcher"}
READERS_OF_CLOSED = MEMBERS | {"curator", "program_officer", "superuser"}


@pytest.fixture(autouse=True)
def doi_calls_in_this_process(monkeypatch):
    """``kura.doi_sync`` runs here when queued (once: the retries are the worker's)."""
    monkeypatch.setattr(doi_sync_task, "delay", lambda record_id: sync.doi_sync(record_id))


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def _file(record, name: str, data: bytes, tier=Tier.PUBLIC, **fields) -> DataObject:
    data_object = DataObjectFactory(
        project=record.project,
        record=record,
        original_filename=name,
        size=len(data),
        content_type="text/csv",
        sha256=hashlib.sha256(data).hexdigest(),
        checksum_state=DataObject.ChecksumState.VERIFIED,
        tier=tier,
        **fields,
    )
    default_storage.save(data_object.storage_key, ContentFile(data))
    return data_object


@pytest.fixture
def people():
    project = ProjectFactory(japan_grant_number=f"JPMJMS{next(_grants)}")
    users = {"anonymous": None, "outsider": UserFactory()}
    for name, role in (
        ("collaborator", Role.COLLABORATOR),
        ("researcher", Role.RESEARCHER),
        ("data_manager", Role.DATA_MANAGER),
        ("pm", Role.PM),
    ):
        users[name] = MembershipFactory(project=project, role=role).user
    users["curator"] = make_curator()
    users["program_officer"] = make_program_officer()
    users["superuser"] = make_superuser()
    return project, users


@pytest.fixture
def published(people):
    """A record with version 1 published (no DOIs: the local provider), and a second file
    opened since, so that a steward may publish version 2."""
    project, users = people
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    _file(record, "counts.csv", b"sample,count\na,1\n")
    dataset_version_publish(actor=users["pm"], record_id=record.pk)
    _file(record, "more.csv", b"sample,count\nb,2\n")
    return record, users


def _versions(record) -> str:
    return reverse("api-version-list", args=[record.pk])


def _version(record, number: int) -> str:
    return reverse("api-version-detail", args=[record.pk, number])


def _withdraw(record) -> str:
    return reverse("api-record-withdraw", args=[record.pk])


def _state(record) -> tuple:
    record.refresh_from_db()
    return (
        list(DatasetVersion.objects.filter(record=record).values_list("number", flat=True)),
        record.withdrawn_at,
        AuditEvent.objects.filter(record=record).count(),
    )


def _error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status and body["detail"] and body["code"]
    if code:
        assert body["code"] == code
    return body


@pytest.mark.parametrize("metadata", ["open", "closed"])
@pytest.mark.parametrize("role", ROLES)
def test_every_role_and_endpoint(published, role, metadata):
    """Reading follows the record rule (a record one may not see is not found, as on the
    version pages); publishing and withdrawing are the stewards', refused to anyone else
    who sees the record with 403, to anonymous callers with 401, and change nothing."""
    record, users = published
    if metadata == "closed":
        record.metadata_access = MetadataAccess.CLOSED
        record.save()
    client = api(users[role])
    sees = metadata == "open" or role in READERS_OF_CLOSED
    before = _state(record)

    listed = client.get(_versions(record))
    detail = client.get(_version(record, 1))
    if sees:
        assert listed.status_code == 200, listed.content
        assert [v["number"] for v in listed.json()["results"]] == [1]
        assert detail.status_code == 200
        assert [f["name"] for f in detail.json()["files"]] == ["counts.csv"]
    else:
        _error(listed, 404, "not_found")
        _error(detail, 404, "not_found")
    # A missing record answers exactly as a hidden one.
    missing = client.get(reverse("api-version-list", args=[record.pk + 10_000]))
    _error(missing, 404, "not_found")

    publish = client.post(_versions(record))
    withdraw = client.post(_withdraw(record), {"reason": "Consent withdrawn."})
    if role == "anonymous":
        _error(publish, 401, "not_authenticated")
        _error(withdraw, 401, "not_authenticated")
    elif not sees:
        _error(publish, 404, "not_found")
        _error(withdraw, 404, "not_found")
    elif role not in STEWARDS:
        _error(publish, 403, "permission_denied")
        _error(withdraw, 403, "permission_denied")
    if role not in STEWARDS or not sees:
        assert _state(record) == before
        return

    if metadata == "closed":  # the form's refusal, in the API's error body
        body = _error(publish, 400, "invalid")
        assert "metadata is open" in body["detail"]
        assert _state(record)[0] == [1]
    else:
        assert publish.status_code == 201, publish.content
        created = publish.json()
        assert created["number"] == 2 and created["latest"] is True
        assert [f["name"] for f in created["files"]] == ["counts.csv", "more.csv"]
        assert AuditEvent.objects.filter(
            record=record, action=AuditAction.VERSION_PUBLISHED, actor=users[role]
        ).exists()
    assert withdraw.status_code == 200, withdraw.content
    assert withdraw.json()["withdrawal_reason"] == "Consent withdrawn."
    record.refresh_from_db()
    assert record.withdrawn_at is not None
    assert AuditEvent.objects.filter(
        record=record, action=AuditAction.RECORD_WITHDRAWN, actor=users[role]
    ).exists()


def test_a_version_and_its_files(published, client):
    record, users = published
    counts = record.data_objects.get(original_filename="counts.csv")
    body = api().get(_version(record, 1)).json()
    base = settings.KURA_BASE_URL
    assert body["record"] == record.pk and body["number"] == 1 and body["latest"] is True
    assert (body["doi"], body["doi_state"], body["doi_url"]) == ("", "local", None)
    assert body["concept_doi"] == "" and body["doi_retrying"] is False
    assert body["url"] == urljoin(base, reverse("dataset-version", args=[record.pk, 1]))
    assert body["landing_url"] == urljoin(base, reverse("dataset-landing", args=[record.pk]))
    assert (body["withdrawn"], body["withdrawn_at"], body["withdrawal_reason"]) == (False, None, "")
    assert body["files"] == [
        {
            "object_id": counts.pk,
            "name": "counts.csv",
            "size": counts.size,
            "sha256": counts.sha256,
            "content_type": "text/csv",
            "tier": "public",
            "available_date": None,
            "downloadable": True,
            "opens_on": None,
            "download_url": urljoin(base, reverse("object-download", args=[counts.pk])),
        }
    ]
    formats = {e["format"]: e for e in body["exports"]}
    assert "datacite-json" not in formats  # no DOI: the DataCite formats are not offered
    assert formats["ro-crate"]["url"] == urljoin(
        base, reverse("dataset-version-export", args=[record.pk, 1, "ro-crate"])
    )
    assert formats["ro-crate"]["media_type"].startswith("application/ld+json; profile=")
    for entry in formats.values():  # every export listed is served
        path = entry["url"].removeprefix(base.rstrip("/"))
        response = client.get(path)
        assert response.status_code == 200, entry
        if response.streaming:
            b"".join(response.streaming_content)

    # History is not rewritten: a file closed since stays listed, no longer downloadable.
    counts.tier = Tier.SHARED
    counts.save()
    (entry,) = api().get(_version(record, 1)).json()["files"]
    assert (entry["sha256"], entry["tier"]) == (counts.sha256, "public")
    assert (entry["downloadable"], entry["download_url"]) == (False, None)


def test_an_embargoed_file_says_when_it_opens(people):
    project, users = people
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    opens = timezone.localdate() + datetime.timedelta(days=90)
    _file(record, "later.csv", b"x,1\n", tier=Tier.EMBARGOED, available_date=opens)
    response = api(users["data_manager"]).post(_versions(record))
    assert response.status_code == 201, response.content
    (entry,) = api().get(_version(record, 1)).json()["files"]
    assert entry["tier"] == "embargoed" and entry["available_date"] == opens.isoformat()
    assert entry["downloadable"] is False and entry["opens_on"] == opens.isoformat()


def test_refusals_are_the_forms_and_change_nothing(people):
    project, users = people
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    pm = api(users["pm"])
    before = _state(record)

    # Nothing publishable: every reason, in the one error body.
    _file(record, "shared.csv", b"a,1\n", tier=Tier.SHARED)
    body = _error(pm.post(_versions(record)), 400, "invalid")
    assert "a curator must approve" in body["detail"]
    assert body["errors"]["non_field_errors"]
    assert _state(record) == before

    listed = pm.get(_versions(record))
    assert listed.status_code == 200 and listed.json()["results"] == []
    _error(pm.get(_version(record, 1)), 404, "not_found")

    _file(record, "public.csv", b"b,2\n")
    assert pm.post(_versions(record)).status_code == 201
    before = _state(record)
    body = _error(pm.post(_versions(record)), 400, "invalid")
    assert "Nothing has changed since version 1" in body["detail"]

    # Withdrawal needs a reason; a body that is not JSON is refused before anything runs.
    for payload in ({}, {"reason": ""}, {"reason": "   "}, {"reason": None}, {"reason": "a\x00b"}):
        body = _error(pm.post(_withdraw(record), payload, format="json"), 400, None)
        assert "reason" in body["errors"], payload
    form = pm.post(_withdraw(record), "reason=x", content_type="application/x-www-form-urlencoded")
    _error(form, 415)
    _error(pm.post(_withdraw(record), "{not json", content_type="application/json"), 400)
    assert _state(record) == before

    # Ids that are not integers, or match nothing, answer the API's 404 body.
    for path in (
        "/api/v1/records/abc/versions/",
        f"/api/v1/records/{record.pk}/versions/one/",
        f"/api/v1/records/{record.pk}/versions/-1/",
        f"/api/v1/records/{record.pk}/versions/0/",
        f"/api/v1/records/{record.pk}/versions/{10**30}/",
        f"/api/v1/records/{10**30}/versions/",
        f"/api/v1/records/{10**30}/versions/1/",
    ):
        _error(pm.get(path), 404, "not_found")
    for path in ("/api/v1/records/abc/withdraw", f"/api/v1/records/{10**30}/withdraw"):
        _error(pm.post(path, {"reason": "x"}), 404, "not_found")
    _error(pm.post(f"/api/v1/records/{10**30}/versions/"), 404, "not_found")
    _error(pm.delete(_version(record, 1)), 405, "method_not_allowed")
    _error(pm.get(_withdraw(record)), 405, "method_not_allowed")

    # Withdrawn once; the second time is refused, and so is publishing.
    assert pm.post(_withdraw(record), {"reason": "Retracted."}).status_code == 200
    after = _state(record)
    assert "withdrawn" in _error(pm.post(_withdraw(record), {"reason": "x"}), 400)["detail"]
    assert "withdrawn" in _error(pm.post(_versions(record)), 400)["detail"]
    assert _state(record) == after
    assert record.withdrawal_reason == "Retracted."


def test_doi_outcome_at_the_fake_datacite(
    people, fake_datacite, django_capture_on_commit_callbacks
):
    """v1 and v2 through the API, each with its DOI findable and the concept DOI at the
    latest; withdrawal makes every DOI registered at the tombstone, and the API says so."""
    project, users = people
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    first = _file(record, "counts.csv", b"sample,count\na,1\n")
    pm = api(users["pm"])

    with django_capture_on_commit_callbacks(execute=True):
        created = pm.post(_versions(record), REMOTE_ADDR="198.51.100.7")
    assert created.status_code == 201, created.content
    assert created.json()["doi"] == f"{PREFIX}/kura.{record.pk}.v1"
    assert created.json()["doi_state"] == "pending"  # the call is made after the commit
    assert AuditEvent.objects.filter(
        record=record, action=AuditAction.VERSION_PUBLISHED, ip_address="198.51.100.7"
    ).exists()
    v1 = api().get(_version(record, 1)).json()
    assert (v1["doi_state"], v1["doi_retrying"]) == ("findable", False)
    assert v1["doi_url"] == f"https://doi.org/{PREFIX}/kura.{record.pk}.v1"
    assert v1["concept_doi"] == f"{PREFIX}/kura.{record.pk}"
    assert fake_datacite.state(v1["doi"]) == "findable"
    assert fake_datacite.url_of(v1["doi"]) == v1["url"]
    assert {"datacite-json", "datacite-xml"} <= {e["format"] for e in v1["exports"]}

    first.status = DataObject.Status.DELETED
    first.save()
    second = _file(record, "counts.csv", b"sample,count\na,1\nb,2\n")
    with django_capture_on_commit_callbacks(execute=True):
        assert pm.post(_versions(record)).status_code == 201
    listed = api().get(_versions(record)).json()["results"]
    assert [(v["number"], v["latest"], v["doi_state"]) for v in listed] == [
        (2, True, "findable"),
        (1, False, "findable"),
    ]
    assert fake_datacite.url_of(listed[0]["concept_doi"]) == listed[0]["url"]
    old = api().get(_version(record, 1)).json()["files"]
    assert [(f["sha256"], f["downloadable"]) for f in old] == [(first.sha256, False)]
    assert [f["sha256"] for f in api().get(_version(record, 2)).json()["files"]] == [second.sha256]

    with django_capture_on_commit_callbacks(execute=True):
        withdrawn = pm.post(_withdraw(record), {"reason": "Consent withdrawn."})
    assert withdrawn.status_code == 200
    tombstone = urljoin(settings.KURA_BASE_URL, reverse("dataset-landing", args=[record.pk]))
    assert withdrawn.json()["landing_url"] == tombstone
    listed = api().get(_versions(record)).json()["results"]
    for version in listed:
        assert version["withdrawn"] is True
        assert version["withdrawal_reason"] == "Consent withdrawn."
        assert version["doi_state"] == "registered"
        assert fake_datacite.state(version["doi"]) == "registered"
        assert fake_datacite.url_of(version["doi"]) == tombstone
    assert fake_datacite.state(listed[0]["concept_doi"]) == "registered"
    tomb = api().get(_version(record, 2)).json()
    assert (tomb["files"], tomb["exports"]) == (None, [])


def test_a_doi_outage_is_reported_not_failed(
    people, fake_datacite, django_capture_on_commit_callbacks
):
    project, users = people
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    _file(record, "counts.csv", b"a,1\n")
    fake_datacite.fail_next = 1000
    with django_capture_on_commit_callbacks(execute=True):
        assert api(users["pm"]).post(_versions(record)).status_code == 201
    body = api().get(_version(record, 1)).json()
    assert (body["doi_state"], body["doi_retrying"], body["doi_url"]) == ("pending", True, None)
    assert body["doi_attempted_at"] is not None
    assert "503" not in str(body)  # the provider's answer stays in the audit trail


def test_listing_costs_the_same_for_many_versions(people, django_assert_max_num_queries):
    project, users = people
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    for n in range(6):
        _file(record, f"part-{n}.csv", f"{n}\n".encode())
        dataset_version_publish(actor=users["pm"], record_id=record.pk)
    with django_assert_max_num_queries(5):
        response = api().get(_versions(record))
    assert [v["number"] for v in response.json()["results"]] == [6, 5, 4, 3, 2, 1]
