"""Tier change requests through the API: the same rules, answers and audit trail as the
object page and /review/, and only the requests each person may read."""

import pytest
from rest_framework.test import APIClient

from core.vocabularies import Tier
from repository.access import tier_requests_visible_to
from repository.models import AuditEvent, DataObject, RequestStatus, TierChangeRequest
from tests.factories import UserFactory, make_curator
from tests.repository.test_tiers import ProjectWithRoles

pytestmark = pytest.mark.django_db

URL = "/api/v1/tier-requests/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def setup():
    return ProjectWithRoles()


def test_opening_creates_a_request_and_a_curator_approves_it(setup):
    obj = setup.object()
    response = api(setup.uploader).post(
        URL, {"data_objects": [obj.pk], "tier": "public", "reason": "Paper out."}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["applied"] == []
    request_id = body["request"]["id"]
    assert body["request"]["status"] == "pending" and body["request"]["data_objects"] == [obj.pk]
    obj.refresh_from_db()
    assert obj.tier == Tier.SHARED

    # The requester may read it; a curator decides it.
    assert api(setup.uploader).get(f"{URL}{request_id}/").status_code == 200
    decided = api(make_curator()).post(
        f"{URL}{request_id}/decision", {"approve": True, "comment": "ok"}, format="json"
    )
    assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "approved"
    obj.refresh_from_db()
    assert obj.tier == Tier.PUBLIC
    assert AuditEvent.objects.filter(
        data_object=obj, action=AuditEvent.Action.TIER_CHANGED, after__tier="public"
    ).exists()


def test_sharing_within_the_project_applies_at_once(setup):
    obj = setup.object(tier=Tier.NON_SHARED)
    response = api(setup.pm).post(URL, {"data_objects": [obj.pk], "tier": "shared"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"applied": [obj.pk], "request": None}
    obj.refresh_from_db()
    assert obj.tier == Tier.SHARED


def test_refusals_say_why_and_change_nothing(setup):
    flagged = setup.object(contains_personal_data=True)
    unverified = setup.object(checksum_state=DataObject.ChecksumState.PENDING)
    client = api(setup.pm)
    for obj in (flagged, unverified):
        response = client.post(
            URL, {"data_objects": [obj.pk], "tier": "public", "reason": "x"}, format="json"
        )
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] and body["detail"]
        assert obj.original_filename in body["detail"]
    for payload in (
        {"data_objects": [], "tier": "public"},
        {"data_objects": [flagged.pk], "tier": "secret"},
        {"data_objects": ["x"], "tier": "public"},
        {"data_objects": [flagged.pk], "tier": "embargoed", "available_date": "2001-01-01"},
    ):
        assert client.post(URL, payload, format="json").status_code == 400, payload
    assert not TierChangeRequest.objects.exists()
    assert set(DataObject.objects.values_list("tier", flat=True)) == {Tier.SHARED}


def test_someone_without_rights_cannot_ask_or_decide(setup):
    obj = setup.object()
    outsider = UserFactory()
    response = api(outsider).post(
        URL, {"data_objects": [obj.pk], "tier": "public", "reason": "x"}, format="json"
    )
    assert response.status_code in (403, 404)
    pending = (
        api(setup.pm)
        .post(URL, {"data_objects": [obj.pk], "tier": "public", "reason": "x"}, format="json")
        .json()["request"]["id"]
    )
    # The PM reads it but may not decide; an outsider does not even see it.
    assert (
        api(setup.pm).post(f"{URL}{pending}/decision", {"approve": True}, format="json").status_code
        == 403
    )
    assert (
        api(outsider).post(f"{URL}{pending}/decision", {"approve": True}, format="json").status_code
        == 404
    )
    assert api(outsider).get(f"{URL}{pending}/").status_code == 404
    assert TierChangeRequest.objects.get(pk=pending).status == RequestStatus.PENDING
    assert APIClient().get(URL).status_code == 401


def test_a_decided_request_answers_400(setup):
    obj = setup.object()
    pending = (
        api(setup.pm)
        .post(URL, {"data_objects": [obj.pk], "tier": "public", "reason": "x"}, format="json")
        .json()["request"]["id"]
    )
    curator = api(make_curator())
    assert (
        curator.post(
            f"{URL}{pending}/decision", {"approve": False, "comment": "No."}, format="json"
        ).status_code
        == 200
    )
    again = curator.post(f"{URL}{pending}/decision", {"approve": True}, format="json")
    assert again.status_code == 400
    assert TierChangeRequest.objects.get(pk=pending).status == RequestStatus.REJECTED


@pytest.mark.parametrize(
    "role", ["pm", "data_manager", "uploader", "researcher", "collaborator", "outsider", "curator"]
)
def test_each_person_lists_what_the_access_rules_allow(setup, role):
    mine = setup.object()
    other = ProjectWithRoles()
    theirs = other.object()
    for project, obj in ((setup, mine), (other, theirs)):
        api(project.uploader).post(
            URL, {"data_objects": [obj.pk], "tier": "public", "reason": "x"}, format="json"
        )
    user = setup.user(role)
    listed = {item["id"] for item in api(user).get(URL).json()["results"]}
    assert listed == set(tier_requests_visible_to(user).values_list("pk", flat=True))
    expected = {
        "pm": 1,
        "data_manager": 1,
        "uploader": 1,
        "curator": 2,
        "researcher": 0,
        "collaborator": 0,
        "outsider": 0,
    }[role]
    assert len(listed) == expected
    if expected:
        filtered = api(user).get(URL, {"project": setup.project.pk, "status": "pending"}).json()
        assert len(filtered["results"]) == 1
