"""Access requests and the audit trail through the API: the same services and refusals as
the landing and project pages, and only what each person may read."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from repository.access import access_requests_visible_to, audit_events_visible_to
from repository.models import AccessGrant, AccessRequest, AuditEvent, RequestStatus
from tests.factories import MembershipFactory, UserFactory, make_curator

pytestmark = pytest.mark.django_db

URL = "/api/v1/access-requests/"


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def future(days: int) -> str:
    return (timezone.localdate() + datetime.timedelta(days=days)).isoformat()


def ask(user, record, purpose="Replication of figure 3.") -> dict:
    response = api(user).post(URL, {"record": record.pk, "purpose": purpose}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_outsider_asks_pm_approves_and_the_grant_works(
    shared, outsider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        created = ask(outsider, shared["record"])
    assert created["status"] == "pending" and created["grant_expires_at"] is None
    assert [shared["pm"].email] == [to for m in mail.outbox for to in m.to]

    with django_capture_on_commit_callbacks(execute=True):
        decided = api(shared["pm"]).post(
            f"{URL}{created['id']}/decision",
            {"approve": True, "expires_on": future(30)},
            format="json",
            REMOTE_ADDR="198.51.100.9",
        )
    assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "approved"
    grant = AccessGrant.objects.get(request_id=created["id"])
    assert grant.grantee == outsider
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.GRANT_CREATED, record=shared["record"], ip_address="198.51.100.9"
    ).exists()
    assert outsider.email in [to for m in mail.outbox for to in m.to]
    # The grantee now reads the object through the API too.
    assert api(outsider).get(f"/api/v1/objects/{shared['object'].pk}/").status_code == 200


def test_bad_requests_and_decisions_change_nothing(shared, outsider):
    client = api(outsider)
    assert client.post(URL, {"record": shared["record"].pk}, format="json").status_code == 400
    blank = client.post(URL, {"record": shared["record"].pk, "purpose": "  "}, format="json")
    assert blank.status_code == 400
    missing = client.post(URL, {"record": 999999999, "purpose": "x"}, format="json")
    assert missing.status_code == 400 and "record" in missing.json()["errors"]
    member = api(shared["pm"]).post(
        URL, {"record": shared["record"].pk, "purpose": "mine"}, format="json"
    )
    assert member.status_code == 400
    assert not AccessRequest.objects.exists()

    created = ask(outsider, shared["record"])
    again = client.post(URL, {"record": shared["record"].pk, "purpose": "x"}, format="json")
    assert again.status_code == 400
    pm = api(shared["pm"])
    decision = f"{URL}{created['id']}/decision"
    for payload in (
        {"approve": True, "expires_on": future(-1)},
        {"approve": True, "expires_on": "soon"},
        {"approve": True},
        {"approve": False, "comment": ""},
        {},
    ):
        assert pm.post(decision, payload, format="json").status_code == 400, payload
    # The requester cannot decide their own request; an unrelated PM does not see it.
    assert client.post(
        decision, {"approve": True, "expires_on": future(5)}, format="json"
    ).status_code in (403, 404)
    stranger = MembershipFactory(role=Role.PM).user
    assert (
        api(stranger)
        .post(decision, {"approve": True, "expires_on": future(5)}, format="json")
        .status_code
        == 404
    )
    assert AccessRequest.objects.get().status == RequestStatus.PENDING
    assert not AccessGrant.objects.exists()


@pytest.mark.parametrize("role", ["requester", "pm", "other_pm", "stranger", "curator"])
def test_lists_follow_the_access_rules(shared, outsider, role):
    created = ask(outsider, shared["record"])
    api(shared["pm"]).post(
        f"{URL}{created['id']}/decision", {"approve": True, "expires_on": future(9)}, format="json"
    )
    user = {
        "requester": outsider,
        "pm": shared["pm"],
        "other_pm": MembershipFactory(role=Role.PM).user,
        "stranger": UserFactory(),
        "curator": make_curator(),
    }[role]
    client = api(user)
    listed = {item["id"] for item in client.get(URL).json()["results"]}
    assert listed == set(access_requests_visible_to(user).values_list("pk", flat=True))
    assert (created["id"] in listed) == (role in ("requester", "pm", "curator"))
    status = client.get(f"{URL}{created['id']}/").status_code
    assert status == (200 if created["id"] in listed else 404)

    events = client.get("/api/v1/audit-events/")
    assert events.status_code == 200
    ids = {item["id"] for item in events.json()["results"]}
    assert ids == set(audit_events_visible_to(user).values_list("pk", flat=True))
    project_events = set(
        AuditEvent.objects.filter(project=shared["project"]).values_list("pk", flat=True)
    )
    assert project_events, "the project has a trail"
    assert (project_events <= ids) == (role in ("pm", "curator"))


def test_audit_events_are_read_only_and_filterable(shared):
    AuditEvent.objects.create(
        action=AuditEvent.Action.DOWNLOAD, project=shared["project"], data_object=shared["object"]
    )
    event = AuditEvent.objects.create(
        action=AuditEvent.Action.GRANT_REVOKED, project=shared["project"], record=shared["record"]
    )
    client = api(shared["pm"])
    listed = client.get("/api/v1/audit-events/", {"action": "grant_revoked"}).json()["results"]
    assert [item["id"] for item in listed] == [event.pk]
    detail = f"/api/v1/audit-events/{event.pk}/"
    assert client.get(detail).json()["action"] == "grant_revoked"
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(detail, {}, format="json").status_code == 405
    assert client.post("/api/v1/audit-events/", {}, format="json").status_code == 405
    assert client.get("/api/v1/audit-events/", {"occurred_after": "never"}).status_code == 400
    assert AuditEvent.objects.count() == 2
