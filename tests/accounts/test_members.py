"""The members page: every role × action, the last-PM rule, and the audit of each change.

Each case builds one project with a PM, a second PM, a researcher and a pending
invitation, then lets a user in ``role`` try one action through the page, and checks both
the answer and whether the database changed.
"""

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from accounts.invitations import orcid_normalise
from accounts.members import member_remove, member_role_change
from accounts.models import Invitation, Membership, Role
from core.audit import AuditAction
from repository.models import AuditEvent
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_curator,
    make_superuser,
)

pytestmark = pytest.mark.django_db

ROLES = (
    "anonymous",
    "outsider",
    "collaborator",
    "researcher",
    "data_manager",
    "pm",
    "curator",
    "superuser",
)
VIEWERS = {"collaborator", "researcher", "data_manager", "pm", "curator", "superuser"}
MANAGERS = {"data_manager", "pm", "superuser"}
PM_MANAGERS = {"pm", "superuser"}


@dataclass
class World:
    project: object
    pm: Membership
    second_pm: Membership
    researcher: Membership
    invitation: Invitation
    pm_invitation: Invitation


def world() -> World:
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM)
    second_pm = MembershipFactory(project=project, role=Role.PM)
    researcher = MembershipFactory(project=project, role=Role.RESEARCHER)
    invitations = []
    for n, role in enumerate((Role.RESEARCHER, Role.PM)):
        invitations.append(
            Invitation.objects.create(
                project=project,
                role=role,
                kind=Invitation.Kind.EMAIL,
                value=f"new{n}@example.org",
                token_hash=f"{n:064d}",
                invited_by=pm.user,
                expires_at="2999-01-01T00:00:00Z",
            )
        )
    return World(project, pm, second_pm, researcher, *invitations)


def actor(role: str, w: World):
    match role:
        case "anonymous":
            return AnonymousUser()
        case "outsider":
            return UserFactory()
        case "collaborator" | "researcher" | "data_manager" | "pm":
            return MembershipFactory(project=w.project, role=role).user
        case "curator":
            return make_curator()
        case "superuser":
            return make_superuser()
    raise ValueError(role)


def client_for(user) -> Client:
    client = Client()
    if user.is_authenticated:
        client.force_login(user)
    return client


def snapshot(w: World) -> tuple:
    return (
        sorted(Membership.objects.filter(project=w.project).values_list("user_id", "role")),
        sorted(Invitation.objects.filter(project=w.project).values_list("pk", "revoked_at")),
    )


# action → (how to do it, who may)
ACTIONS = {
    "invite_researcher": (
        lambda c, w: c.post(
            f"/projects/{w.project.pk}/members/",
            {"kind": "email", "value": "someone@example.org", "role": Role.RESEARCHER},
        ),
        MANAGERS,
    ),
    "invite_pm": (
        lambda c, w: c.post(
            f"/projects/{w.project.pk}/members/",
            {"kind": "email", "value": "boss@example.org", "role": Role.PM},
        ),
        PM_MANAGERS,
    ),
    "change_researcher": (
        lambda c, w: c.post(
            f"/projects/{w.project.pk}/members/{w.researcher.pk}/role",
            {"role": Role.DATA_MANAGER},
        ),
        MANAGERS,
    ),
    "make_pm": (
        lambda c, w: c.post(
            f"/projects/{w.project.pk}/members/{w.researcher.pk}/role", {"role": Role.PM}
        ),
        PM_MANAGERS,
    ),
    "demote_pm": (
        lambda c, w: c.post(
            f"/projects/{w.project.pk}/members/{w.second_pm.pk}/role",
            {"role": Role.RESEARCHER},
        ),
        PM_MANAGERS,
    ),
    "remove_researcher": (
        lambda c, w: c.post(f"/projects/{w.project.pk}/members/{w.researcher.pk}/remove"),
        MANAGERS,
    ),
    "remove_pm": (
        lambda c, w: c.post(f"/projects/{w.project.pk}/members/{w.second_pm.pk}/remove"),
        PM_MANAGERS,
    ),
    "revoke_invitation": (
        lambda c, w: c.post(f"/projects/{w.project.pk}/invitations/{w.invitation.pk}/revoke"),
        MANAGERS,
    ),
    "revoke_pm_invitation": (
        lambda c, w: c.post(f"/projects/{w.project.pk}/invitations/{w.pm_invitation.pk}/revoke"),
        PM_MANAGERS,
    ),
}


@pytest.mark.parametrize("role", ROLES)
def test_who_sees_the_members_page(role):
    w = world()
    user = actor(role, w)

    response = client_for(user).get(f"/projects/{w.project.pk}/members/")

    if role == "anonymous":
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")
    elif role in VIEWERS:
        assert response.status_code == 200
        body = response.content.decode()
        for membership in (w.pm, w.second_pm, w.researcher):
            assert membership.user.username in body
        assert w.invitation.value in body
        assert ('id="invite-form"' in body) is (role in MANAGERS)
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("role", ROLES)
def test_members_page_role_by_action(role, action):
    w = world()
    user = actor(role, w)
    before = snapshot(w)
    events = AuditEvent.objects.count()
    do, allowed = ACTIONS[action]

    response = do(client_for(user), w)

    if role in allowed:
        assert response.status_code in (200, 302), response.content[:500]
        assert snapshot(w) != before
        assert AuditEvent.objects.count() == events + 1
        event = AuditEvent.objects.latest("pk")
        assert event.project_id == w.project.pk
        assert event.actor_id == user.pk
    else:
        assert response.status_code in (302, 400, 403, 404)
        if role == "anonymous":
            assert response.status_code == 302
        assert snapshot(w) == before
        assert AuditEvent.objects.count() == events


def test_a_data_manager_is_not_offered_the_pm_role():
    w = world()
    dm = MembershipFactory(project=w.project, role=Role.DATA_MANAGER).user

    body = client_for(dm).get(f"/projects/{w.project.pk}/members/").content.decode()

    assert '<option value="pm"' not in body
    assert "Only a PM may change a PM." in body


@pytest.mark.parametrize("how", ["demote", "remove"])
def test_the_last_pm_stays(how):
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM)
    MembershipFactory(project=project, role=Role.DATA_MANAGER)
    url = f"/projects/{project.pk}/members/{pm.pk}/" + ("role" if how == "demote" else "remove")

    response = client_for(pm.user).post(url, {"role": Role.RESEARCHER})

    assert response.status_code == 400
    assert "at least one PM" in response.content.decode()
    assert Membership.objects.get(pk=pm.pk).role == Role.PM
    assert not AuditEvent.objects.exists()


def test_with_a_second_pm_a_pm_may_step_down():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM)
    other = MembershipFactory(project=project, role=Role.PM)

    member_role_change(actor=pm.user, project=project, membership_pk=pm.pk, role=Role.RESEARCHER)

    assert Membership.objects.get(pk=pm.pk).role == Role.RESEARCHER
    event = AuditEvent.objects.get()
    assert event.action == AuditAction.MEMBER_ROLE_CHANGED
    assert event.before == {"user": pm.user.username, "role": Role.PM}
    assert event.after == {"user": pm.user.username, "role": Role.RESEARCHER}
    # other is now the only PM: it cannot go
    with pytest.raises(Exception, match="at least one PM"):
        member_remove(actor=other.user, project=project, membership_pk=other.pk)
    assert Membership.objects.filter(project=project, role=Role.PM).count() == 1


def test_a_member_of_another_project_is_not_found():
    w = world()
    elsewhere = MembershipFactory(role=Role.RESEARCHER)

    response = client_for(w.pm.user).post(f"/projects/{w.project.pk}/members/{elsewhere.pk}/remove")

    assert response.status_code == 404
    assert Membership.objects.filter(pk=elsewhere.pk).exists()


def test_a_bad_role_is_refused_on_the_page():
    w = world()

    response = client_for(w.pm.user).post(
        f"/projects/{w.project.pk}/members/{w.researcher.pk}/role", {"role": "king"}
    )

    assert response.status_code == 400
    assert Membership.objects.get(pk=w.researcher.pk).role == Role.RESEARCHER


def test_after_a_refusal_the_invite_form_still_invites():
    """A refusal is shown at the refused action's URL: the invite form on that page must
    post to the members page, not to the role change it would otherwise repeat."""
    w = world()
    dm = MembershipFactory(project=w.project, role=Role.DATA_MANAGER)
    role_url = f"/projects/{w.project.pk}/members/{w.researcher.pk}/role"
    client = client_for(dm.user)
    refused = client.post(role_url, {"role": Role.PM})  # a data manager cannot make a PM
    assert refused.status_code == 403

    assert f'action="/projects/{w.project.pk}/members/" class="form panel" id="invite-form"' in (
        refused.content.decode()
    )
    response = client.post(
        f"/projects/{w.project.pk}/members/",
        {"kind": "eppn", "value": "newcomer@example.ac.jp", "role": Role.COLLABORATOR},
    )
    assert response.status_code == 200
    assert Membership.objects.get(pk=w.researcher.pk).role == Role.RESEARCHER
    assert Invitation.objects.filter(value="newcomer@example.ac.jp").exists()


def test_removing_yourself_leaves_the_project():
    w = world()

    response = client_for(w.second_pm.user).post(
        f"/projects/{w.project.pk}/members/{w.second_pm.pk}/remove"
    )

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert not Membership.objects.filter(pk=w.second_pm.pk).exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1694-233X", "0000-0002-1694-233X"),
        ("0000-0002-1694-233x", "0000-0002-1694-233X"),
        ("0000-0002-1825-0098", None),  # wrong check digit
        ("0000-0002-1825", None),
        ("", None),
    ],
)
def test_orcid_ids_are_checked(value, expected):
    assert orcid_normalise(value) == expected
