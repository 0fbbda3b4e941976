"""A removal or a role change rules from the very next request: through pages, the API
(with a token) and downloads, cached dashboards included; and a removed member's
unfinished uploads are aborted once the removal commits."""

import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from accounts.models import Membership, Role
from accounts.tokens import api_token_create
from core import generations
from core.audit import AuditAction
from core.vocabularies import MetadataAccess, Tier
from repository.models import AuditEvent, DataObject, UploadSession
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory

from .upload_client import UploadClient

pytestmark = pytest.mark.django_db

CONTENT = b"\x89HDF\r\n" + bytes(range(256)) * 8


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def team():
    pm = MembershipFactory(role=Role.PM)
    researcher = MembershipFactory(project=pm.project, role=Role.RESEARCHER)
    record = DmpRecordFactory(project=pm.project, metadata_access=MetadataAccess.CLOSED)
    objects = {}
    for tier in (Tier.SHARED, Tier.NON_SHARED):
        data_object = DataObjectFactory(
            project=pm.project,
            record=record,
            uploaded_by=researcher.user,
            tier=tier,
            size=len(CONTENT),
        )
        default_storage.save(data_object.storage_key, ContentFile(CONTENT))
        objects[tier] = data_object
    return pm, researcher, objects


def surfaces(user, token: str, project, objects) -> dict[str, int]:
    """The status of every way ``user`` reaches the project and its objects."""
    page = logged_in(user)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    seen = {"project page": page.get(f"/projects/{project.pk}/").status_code}
    for tier, data_object in objects.items():
        pk = data_object.pk
        seen[f"{tier} page"] = page.get(f"/objects/{pk}/").status_code
        seen[f"{tier} download"] = page.get(f"/objects/{pk}/download").status_code
        seen[f"{tier} api"] = api.get(f"/api/v1/objects/{pk}/").status_code
    listed = api.get("/api/v1/objects/", {"project": project.pk}).json()["results"]
    seen["api list"] = len(listed)
    return seen


def test_a_removed_researcher_loses_shared_and_non_shared_data_at_once(team):
    pm, researcher, objects = team
    _row, token = api_token_create(user=researcher.user, name="lab")
    before = surfaces(researcher.user, token, pm.project, objects)
    assert set(before.values()) <= {200, 302, 2}, before
    assert before["api list"] == 2

    response = logged_in(pm.user).post(f"/projects/{pm.project_id}/members/{researcher.pk}/remove")

    assert response.status_code == 302
    after = surfaces(researcher.user, token, pm.project, objects)
    assert after == {**dict.fromkeys(before, 404), "api list": 0}, after
    event = AuditEvent.objects.get(action=AuditAction.MEMBER_REMOVED)
    assert event.actor == pm.user
    assert event.before == {"user": researcher.user.username, "role": Role.RESEARCHER}


def test_a_demoted_collaborator_loses_non_shared_data_and_keeps_shared(team):
    pm, researcher, objects = team
    # The uploader keeps seeing their own non-shared upload while a researcher; a
    # collaborator sees the project's shared data only.
    other = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER)
    client = logged_in(other.user)
    assert client.get(f"/objects/{objects[Tier.NON_SHARED].pk}/").status_code == 200

    logged_in(pm.user).post(
        f"/projects/{pm.project_id}/members/{other.pk}/role", {"role": Role.COLLABORATOR}
    )

    assert Membership.objects.get(pk=other.pk).role == Role.COLLABORATOR
    assert client.get(f"/objects/{objects[Tier.NON_SHARED].pk}/").status_code == 404
    assert client.get(f"/objects/{objects[Tier.SHARED].pk}/download").status_code == 302


def test_a_cached_dashboard_is_not_served_after_a_role_change(team, settings):
    settings.KURA_DASHBOARD_CACHE_SECONDS = 300
    pm, _researcher, _objects = team
    manager = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER)
    url = f"/projects/{pm.project_id}/dashboard/"
    assert logged_in(manager.user).get(url).status_code == 200
    assert logged_in(pm.user).get(url).status_code == 200  # now cached
    generation = generations.PROJECT.of(pm.project_id)
    number = generation.current()

    logged_in(pm.user).post(
        f"/projects/{pm.project_id}/members/{manager.pk}/role", {"role": Role.RESEARCHER}
    )

    assert generation.current() != number  # the cached copy is unreachable
    assert logged_in(manager.user).get(url).status_code == 404
    number = generation.current()
    logged_in(pm.user).post(f"/projects/{pm.project_id}/members/{manager.pk}/remove")
    assert generation.current() != number


def member_list(client, project) -> str:
    body = client.get(f"/projects/{project.pk}/").content.decode()
    return body[body.index('class="member-list"') :].split("</ul>")[0]


def test_the_project_page_lists_members_as_they_are(team):
    pm, researcher, _objects = team
    page = logged_in(pm.user)
    assert researcher.user.display_name in member_list(page, pm.project)

    page.post(f"/projects/{pm.project_id}/members/{researcher.pk}/remove")

    assert researcher.user.display_name not in member_list(page, pm.project)
    assert pm.user.display_name in member_list(page, pm.project)


def test_a_removed_members_unfinished_upload_is_aborted(team, django_capture_on_commit_callbacks):
    pm, researcher, _objects = team
    record = DmpRecordFactory(project=pm.project)
    data = os.urandom(9 * 1024 * 1024)
    uploader = UploadClient(researcher.user)
    upload = uploader.start_ok(
        project=pm.project_id,
        record=record.pk,
        filename="run.h5",
        size=len(data),
        content_type="application/x-hdf5",
        tier=Tier.SHARED,
    )
    etags = uploader.put_parts(upload, data, [1])

    with django_capture_on_commit_callbacks(execute=True):
        response = logged_in(pm.user).post(
            f"/projects/{pm.project_id}/members/{researcher.pk}/remove"
        )

    assert response.status_code == 302
    data_object = DataObject.objects.get(pk=upload.object_id)
    assert data_object.status == DataObject.Status.ABANDONED
    session = UploadSession.objects.get(pk=upload.id)
    assert session.failure_reason == UploadSession.FAILURE_LEFT
    aborted = AuditEvent.objects.get(action=AuditAction.UPLOAD_ABORTED)
    assert aborted.actor == pm.user
    assert uploader.complete(upload.id, etags).status_code == 404


def test_membership_events_show_on_the_audit_trail_and_the_dashboard(team):
    pm, researcher, _objects = team
    page = logged_in(pm.user)
    page.post(
        f"/projects/{pm.project_id}/members/",
        {"kind": "email", "value": "new@example.org", "role": Role.COLLABORATOR},
    )
    page.post(
        f"/projects/{pm.project_id}/members/{researcher.pk}/role", {"role": Role.DATA_MANAGER}
    )
    page.post(f"/projects/{pm.project_id}/members/{researcher.pk}/remove")

    trail = page.get(f"/projects/{pm.project_id}/audit/")
    csv = page.get(f"/projects/{pm.project_id}/audit/", {"format": "csv"})
    dashboard = page.get(f"/projects/{pm.project_id}/dashboard/")

    assert trail.status_code == csv.status_code == dashboard.status_code == 200
    body = trail.content.decode()
    for label in ("Member invited", "Member&#x27;s role changed", "Member removed"):
        assert label in body
    rows = b"".join(csv.streaming_content) if csv.streaming else csv.content
    assert b"member_removed" in rows or b"Member removed" in rows
