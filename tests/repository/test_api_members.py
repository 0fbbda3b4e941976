"""The members API with personal tokens: every role × action, the last-PM rule, and the
invitation link given once."""

import pytest
from django.test import Client

from accounts.models import Invitation, Membership, Role
from accounts.tokens import api_token_create
from core.audit import AuditAction
from repository.models import AuditEvent
from tests.accounts.test_members import MANAGERS, PM_MANAGERS, VIEWERS, World, actor, world
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "outsider", "collaborator", "researcher", "data_manager", "pm", "curator")


def api_for(user) -> Client:
    if not user.is_authenticated:
        return Client()
    _row, token = api_token_create(user=user, name="test")
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def base(w: World) -> str:
    return f"/api/v1/projects/{w.project.pk}"


ACTIONS = {
    "invite_researcher": (
        lambda c, w: c.post(
            f"{base(w)}/members/",
            {"kind": "orcid", "value": "0000-0002-1825-0097", "role": Role.RESEARCHER},
            content_type="application/json",
        ),
        201,
        MANAGERS,
    ),
    "invite_pm": (
        lambda c, w: c.post(
            f"{base(w)}/members/",
            {"kind": "eppn", "value": "boss@example.ac.jp", "role": Role.PM},
            content_type="application/json",
        ),
        201,
        PM_MANAGERS,
    ),
    "change_researcher": (
        lambda c, w: c.patch(
            f"{base(w)}/members/{w.researcher.pk}/",
            {"role": Role.COLLABORATOR},
            content_type="application/json",
        ),
        200,
        MANAGERS,
    ),
    "make_pm": (
        lambda c, w: c.patch(
            f"{base(w)}/members/{w.researcher.pk}/",
            {"role": Role.PM},
            content_type="application/json",
        ),
        200,
        PM_MANAGERS,
    ),
    "remove_researcher": (
        lambda c, w: c.delete(f"{base(w)}/members/{w.researcher.pk}/"),
        204,
        MANAGERS,
    ),
    "remove_pm": (
        lambda c, w: c.delete(f"{base(w)}/members/{w.second_pm.pk}/"),
        204,
        PM_MANAGERS,
    ),
    "revoke_invitation": (
        lambda c, w: c.delete(f"{base(w)}/invitations/{w.invitation.pk}/"),
        204,
        MANAGERS,
    ),
    "revoke_pm_invitation": (
        lambda c, w: c.delete(f"{base(w)}/invitations/{w.pm_invitation.pk}/"),
        204,
        PM_MANAGERS,
    ),
}


def state(w: World) -> tuple:
    return (
        sorted(Membership.objects.filter(project=w.project).values_list("user_id", "role")),
        sorted(Invitation.objects.values_list("pk", "revoked_at")),
    )


@pytest.mark.parametrize("role", ROLES)
def test_who_reads_members_and_invitations(role):
    w = world()
    api = api_for(actor(role, w))

    members = api.get(f"{base(w)}/members/")
    pending = api.get(f"{base(w)}/invitations/")

    if role == "anonymous":
        assert members.status_code == pending.status_code == 401
    elif role in VIEWERS:
        assert members.status_code == pending.status_code == 200
        assert {m["username"] for m in members.json()} >= {
            w.pm.user.username,
            w.researcher.user.username,
        }
        assert {i["value"] for i in pending.json()} == {"new0@example.org", "new1@example.org"}
    else:
        assert members.status_code == pending.status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_members_api_role_by_action(role, action):
    w = world()
    user = actor(role, w)
    api = api_for(user)
    before = state(w)
    events = AuditEvent.objects.count()
    do, success, allowed = ACTIONS[action]

    response = do(api, w)

    if role in allowed:
        assert response.status_code == success, response.content
        assert state(w) != before
        assert AuditEvent.objects.count() == events + 1
        assert AuditEvent.objects.latest("pk").actor_id == user.pk
    else:
        expected = {"anonymous": 401, "outsider": 404}.get(role, 403)
        assert response.status_code == expected, response.content
        assert state(w) == before
        assert AuditEvent.objects.count() == events


def test_an_invitation_answers_its_link_once():
    w = world()
    api = api_for(w.pm.user)

    response = api.post(
        f"{base(w)}/members/",
        {"kind": "email", "value": "x@example.org", "role": Role.COLLABORATOR},
        content_type="application/json",
    )

    assert response.status_code == 201
    link = response.json()["link"]
    assert "/invitations/" in link
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert not Invitation.objects.filter(token_hash__contains=token).exists()
    listed = api.get(f"{base(w)}/invitations/").json()
    assert all("link" not in row for row in listed)
    assert AuditEvent.objects.filter(action=AuditAction.MEMBER_INVITED).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "orcid", "value": "1234", "role": "researcher"}, "value"),
        ({"kind": "email", "value": "x@example.org", "role": "king"}, "role"),
        ({"kind": "fax", "value": "1", "role": "researcher"}, "kind"),
    ],
)
def test_bad_invitations_are_400_with_the_field(body, field):
    w = world()

    response = api_for(w.pm.user).post(f"{base(w)}/members/", body, content_type="application/json")

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert Invitation.objects.count() == 2


def test_the_last_pm_is_kept_through_the_api():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM)
    api = api_for(pm.user)

    demoted = api.patch(
        f"/api/v1/projects/{project.pk}/members/{pm.pk}/",
        {"role": Role.RESEARCHER},
        content_type="application/json",
    )
    removed = api.delete(f"/api/v1/projects/{project.pk}/members/{pm.pk}/")

    assert demoted.status_code == removed.status_code == 400
    assert "at least one PM" in removed.json()["detail"]
    assert Membership.objects.get(pk=pm.pk).role == Role.PM


def test_a_missing_member_is_404():
    w = world()
    elsewhere = MembershipFactory()

    response = api_for(w.pm.user).delete(f"{base(w)}/members/{elsewhere.pk}/")

    assert response.status_code == 404
    assert Membership.objects.filter(pk=elsewhere.pk).exists()
