"""The REST API as a whole: one error shape, filters, ordering, cursor pages, documented
operations with examples, browsable docs without a CDN, and the access matrix answered
exactly as repository/access.py answers it."""

import datetime
import re

import pytest
import yaml
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from core.vocabularies import Tier
from repository.access import (
    Action,
    access_requests_visible_to,
    audit_events_visible_to,
    projects_visible_to,
    records_visible_to,
    tier_requests_visible_to,
    visible_to,
)
from repository.models import AccessRequest, AuditEvent, TierChangeRequest
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
)
from tests.repository.test_access import ROLES, STATES, build_object, build_user

pytestmark = pytest.mark.django_db

OPERATIONS = ("get", "post", "put", "patch", "delete")


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None and user.is_authenticated:
        client.force_authenticate(user)
    return client


def _ids(client, url, **params) -> list[int]:
    """Every id of a cursor-paginated list, following ``next`` links."""
    ids, response = [], client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        ids += [item["id"] for item in body["results"]]
        if not body["next"]:
            return ids
        response = client.get(body["next"])


def _schema(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


# --- errors ---------------------------------------------------------------------------------


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["code"], str) and body["code"]
    if code:
        assert body["code"] == code
    return body


def test_every_error_has_the_same_shape():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    outsider = MembershipFactory(role=Role.PM).user
    _assert_error(_client(pm).get("/api/v1/objects/999999999/"), 404, "not_found")
    anonymous = _assert_error(_client().post("/api/v1/uploads/", {}, format="json"), 401)
    assert anonymous["code"] == "not_authenticated"
    _assert_error(_client(pm).delete("/api/v1/objects/"), 405, "method_not_allowed")
    body = _assert_error(
        _client(pm).post("/api/v1/uploads/", {"project": project.pk}, format="json"), 400
    )
    assert set(body["errors"]) == {"filename", "size"}
    assert "filename" in body["detail"]
    # A project one may not upload to: the service's refusal, in the same shape.
    _assert_error(
        _client(outsider).post(
            "/api/v1/uploads/",
            {"project": project.pk, "filename": "a.txt", "size": 10},
            format="json",
        ),
        403,
        "permission_denied",
    )
    _assert_error(_client(pm).get("/api/v1/objects/", {"tier": "secret"}), 400)
    _assert_error(_client(pm).get("/api/v1/objects/", {"created_after": "yesterday"}), 400)
    _assert_error(_client(pm).get("/api/v1/objects/", {"cursor": "not-a-cursor"}), 404)


# --- filters, ordering, pages --------------------------------------------------------------


def test_object_filters_and_ordering():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = DmpRecordFactory(project=project)
    old = DataObjectFactory(
        project=project, record=record, tier=Tier.PUBLIC, size=30, original_filename="b.csv"
    )
    type(old).objects.filter(pk=old.pk).update(
        created_at=timezone.now() - datetime.timedelta(days=10)
    )
    shared = DataObjectFactory(
        project=project, tier=Tier.SHARED, size=10, original_filename="a.csv"
    )
    other = DataObjectFactory(tier=Tier.PUBLIC)  # another project, public
    client = _client(pm)

    assert set(_ids(client, "/api/v1/objects/", project=project.pk)) == {old.pk, shared.pk}
    assert _ids(client, "/api/v1/objects/", project=project.pk, tier="shared") == [shared.pk]
    assert _ids(client, "/api/v1/objects/", record=record.pk) == [old.pk]
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert _ids(client, "/api/v1/objects/", project=project.pk, created_after=since) == [shared.pk]
    assert _ids(client, "/api/v1/objects/", filename="b.CSV") == [old.pk]
    assert _ids(client, "/api/v1/objects/", project=project.pk, ordering="size") == [
        shared.pk,
        old.pk,
    ]
    assert _ids(client, "/api/v1/objects/", project=project.pk, ordering="-size") == [
        old.pk,
        shared.pk,
    ]
    assert other.pk in _ids(client, "/api/v1/objects/")


def test_cursor_pages_cover_every_row_once():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    objects = DataObjectFactory.create_batch(7, project=project, tier=Tier.NON_SHARED)
    client = _client(pm)
    first = client.get("/api/v1/objects/", {"project": project.pk, "page_size": 3}).json()
    assert len(first["results"]) == 3
    assert "cursor=" in first["next"] and first["previous"] is None
    ids = _ids(client, "/api/v1/objects/", project=project.pk, page_size=3)
    assert ids == sorted((o.pk for o in objects), reverse=True)


def test_projects_and_records_filters():
    jst = ProjectFactory(funder="JST", funding_stream_code="MJMS")
    amed = ProjectFactory(funder="AMED", funding_stream_code="")
    user = MembershipFactory(project=jst, role=Role.PM).user
    MembershipFactory(project=amed, role=Role.PM, user=user)
    record = DmpRecordFactory(project=jst, access_rights=Tier.SHARED)
    DmpRecordFactory(project=amed, access_rights=Tier.PUBLIC)
    client = _client(user)
    assert _ids(client, "/api/v1/projects/", funder="JST") == [jst.pk]
    assert _ids(client, "/api/v1/projects/", funding_stream_code="MJMS") == [jst.pk]
    assert client.get(f"/api/v1/projects/{amed.pk}/").json()["funder"] == "AMED"
    assert _ids(client, "/api/v1/records/", project=jst.pk) == [record.pk]
    assert _ids(client, "/api/v1/records/", access_rights="shared") == [record.pk]


# --- the OpenAPI document and its UI -------------------------------------------------------


def test_every_operation_is_documented_with_an_example_and_the_error_body():
    document = _schema(_client())
    assert "Error" in document["components"]["schemas"]
    operations = 0
    for path, item in document["paths"].items():
        for method in OPERATIONS:
            if method not in item:
                continue
            operations += 1
            operation = item[method]
            responses = operation["responses"]
            assert "4XX" in responses, (method, path)
            examples = [
                content
                for response in responses.values()
                for content in (response.get("content") or {}).values()
                if content.get("examples")
            ]
            examples += [
                content
                for content in (operation.get("requestBody", {}).get("content") or {}).values()
                if content.get("examples")
            ]
            examples += [p for p in operation.get("parameters", []) if p.get("examples")]
            assert examples, f"{method.upper()} {path} has no example"
    assert operations >= 14


def test_docs_are_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    external = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
    assert external, "the page loads its assets"
    assert all(not url.startswith(("http://", "https://", "//")) for url in external), external
    scripts = []
    for url in external:
        if url.endswith(".js") or "script=" in url:
            script = client.get(url)
            assert script.status_code == 200, url
            scripts.append(b"".join(script) if script.streaming else script.content)
    assert any(b"/api/schema/" in script for script in scripts), "Swagger UI loads the schema"


# --- the access matrix through the API -----------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_api_answers_as_the_access_rules(role, state):
    obj = build_object(state)
    user = build_user(role, obj)
    client = _client(user)
    who = user if user is not None else AnonymousUser()

    expected = set(visible_to(who, Action.VIEW_METADATA).values_list("pk", flat=True))
    assert set(_ids(client, "/api/v1/objects/")) == expected
    detail = client.get(f"/api/v1/objects/{obj.pk}/")
    assert detail.status_code == (200 if obj.pk in expected else 404)

    records = set(records_visible_to(who).values_list("pk", flat=True))
    assert set(_ids(client, "/api/v1/records/")) == records
    status = client.get(f"/api/v1/records/{obj.record_id}/").status_code
    assert status == (200 if obj.record_id in records else 404)

    projects = set(projects_visible_to(who).values_list("pk", flat=True))
    assert set(_ids(client, "/api/v1/projects/")) == projects
    status = client.get(f"/api/v1/projects/{obj.project_id}/").status_code
    assert status == (200 if obj.project_id in projects else 404)

    # Requests and the audit trail: signed-in people only, each as its rule says. One of
    # each exists for the object's project (tier requests come with some roles already).
    event = AuditEvent.objects.create(action=AuditEvent.Action.DOWNLOAD, project=obj.project)
    asked = AccessRequest.objects.create(record=obj.record, requester=UserFactory(), purpose="x")
    tier_request = TierChangeRequest.objects.filter(project=obj.project).first()
    if tier_request is None:
        tier_request = TierChangeRequest.objects.create(
            project=obj.project, requested_by=obj.uploaded_by, requested_tier=Tier.PUBLIC
        )
    for url, visible, row in (
        ("/api/v1/tier-requests/", tier_requests_visible_to, tier_request),
        ("/api/v1/access-requests/", access_requests_visible_to, asked),
        ("/api/v1/audit-events/", audit_events_visible_to, event),
    ):
        if not who.is_authenticated:
            assert client.get(url).status_code == 401
            assert client.get(f"{url}{row.pk}/").status_code == 401
            continue
        expected = set(visible(who).values_list("pk", flat=True))
        assert set(_ids(client, url)) == expected, url
        status = client.get(f"{url}{row.pk}/").status_code
        assert status == (200 if row.pk in expected else 404), url


def test_an_unreachable_storage_answers_503_and_creates_nothing(settings):
    from botocore.config import Config

    from repository.models import DataObject

    project = ProjectFactory()
    researcher = MembershipFactory(project=project, role=Role.RESEARCHER).user
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "endpoint_url": "http://127.0.0.1:9",  # nothing listens on the discard port
                "client_config": Config(connect_timeout=0.5, retries={"max_attempts": 1}),
            },
        },
    }
    response = _client(researcher).post(
        "/api/v1/uploads/", {"project": project.pk, "filename": "a.csv", "size": 10}
    )
    body = _assert_error(response, 503, "unavailable")
    assert "nothing was changed" in body["detail"]
    assert not DataObject.objects.filter(project=project).exists()


def test_ties_in_the_chosen_order_neither_repeat_nor_vanish_across_pages():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    objects = [
        DataObjectFactory(
            project=project, tier=Tier.NON_SHARED, size=1234, original_filename="same.csv"
        )
        for _ in range(120)
    ]
    client = _client(pm)
    for ordering in ("size", "-size", "original_filename", "-created_at"):
        ids = _ids(client, "/api/v1/objects/", project=project.pk, ordering=ordering, page_size=7)
        assert len(ids) == len(set(ids)) == len(objects), ordering
