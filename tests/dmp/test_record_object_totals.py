"""A record's objects, counted and summed for the viewer: on the record page (and its File
size item, when nobody entered one) and in the records API, through the access rules and
without a query per record."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import DataObject
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

GB = 1024**3


@pytest.fixture
def scene():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    collaborator = MembershipFactory(project=project, role=Role.COLLABORATOR).user
    researcher = MembershipFactory(project=project, role=Role.RESEARCHER).user
    record = DmpRecordFactory(project=project, metadata_access=MetadataAccess.OPEN)

    def add(tier, size, status=DataObject.Status.STORED):
        return DataObjectFactory(
            project=project,
            record=record,
            uploaded_by=researcher,
            tier=tier,
            size=size,
            status=status,
        )

    add(Tier.PUBLIC, 1 * GB)
    add(Tier.SHARED, 1 * GB)
    add(Tier.NON_SHARED, 1 * GB)  # stewards and its uploader only
    # (a shared object is listed to everyone: the record's metadata is open)
    add(Tier.SHARED, 5 * GB, status=DataObject.Status.UPLOADING)  # not stored: never counted
    return {"project": project, "pm": pm, "collaborator": collaborator, "record": record}


def page(client, record):
    return client.get(
        reverse("dmp-record-detail", args=[record.project_id, record.pk])
    ).content.decode()


def file_size_item(html: str) -> str:
    start = html.index("File size</dt>")
    return html[start : html.index("</dd>", start)]


@pytest.mark.parametrize(("who", "count", "size"), [("pm", 3, "3.0"), ("collaborator", 2, "2.0")])
def test_the_record_page_counts_what_the_viewer_may_see(client, scene, who, count, size):
    client.force_login(scene[who])

    html = page(client, scene["record"])

    assert f"{count} objects, {size}\xa0GB in all" in html
    assert f"{size}\xa0GB in {count} data objects (counted from the objects)" in file_size_item(
        html
    )


def test_a_file_size_entered_by_hand_wins(client, scene):
    record = scene["record"]
    record.file_size = "1-10GB"
    record.save()
    client.force_login(scene["pm"])

    item = file_size_item(page(client, record))

    assert "1-10GB" in item and "counted from the objects" not in item


def test_a_record_without_objects_shows_no_file_size(client, scene):
    empty = DmpRecordFactory(project=scene["project"])
    client.force_login(scene["pm"])

    html = page(client, empty)

    assert "counted from the objects" not in html and 'id="object-totals"' not in html


@pytest.mark.parametrize(
    ("who", "count", "size"),
    [("pm", 3, 3 * GB), ("collaborator", 2, 2 * GB), (None, 2, 2 * GB)],
)
def test_the_records_api_counts_what_the_caller_may_see(scene, who, count, size):
    api = APIClient()
    if who:
        api.force_authenticate(scene[who])

    detail = api.get(f"/api/v1/records/{scene['record'].pk}/").json()
    listed = api.get("/api/v1/records/").json()["results"]

    assert (detail["object_count"], detail["object_size"]) == (count, size)
    (row,) = [r for r in listed if r["id"] == scene["record"].pk]
    assert (row["object_count"], row["object_size"]) == (count, size)


def test_the_records_api_list_costs_no_query_per_record(scene, django_assert_max_num_queries):
    api = APIClient()
    api.force_authenticate(scene["pm"])
    api.get("/api/v1/records/")
    with django_assert_max_num_queries(50) as few:
        api.get("/api/v1/records/")
    for _ in range(6):
        record = DmpRecordFactory(project=scene["project"])
        DataObjectFactory(project=scene["project"], record=record, size=GB)

    with django_assert_max_num_queries(len(few.captured_queries)):
        body = api.get("/api/v1/records/").json()

    assert len(body["results"]) == 7
    assert all(r["object_count"] >= 1 for r in body["results"])


def test_records_without_objects_count_zero(scene):
    empty = DmpRecordFactory(project=scene["project"])
    api = APIClient()
    api.force_authenticate(scene["pm"])

    body = api.get(f"/api/v1/records/{empty.pk}/").json()

    assert (body["object_count"], body["object_size"]) == (0, 0)
