"""An invitation stands on its inviter (review of issue 17): removing or demoting a member
withdraws, audited, the pending invitations they may no longer make; accepting checks the
inviter again and refuses one's own invitation; and the services check the actor's role
as it is under the project's lock, not as read before it."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from accounts.invitations import invitation_accept, invitation_revoke, member_invite
from accounts.members import member_remove, member_role_change
from accounts.models import Invitation, Membership, Role
from accounts.roles import ProjectAction
from core.audit import AuditAction
from repository.access import access_project, tier_decision_refusal
from repository.models import AuditEvent
from tests.factories import (
    MembershipFactory,
    TierChangeRequestFactory,
    UserFactory,
    make_curator,
)

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite(actor, project, role, value="alt@example.net", kind="email") -> tuple[Invitation, str]:
    return member_invite(actor=actor, project=project, kind=kind, value=value, role=role)


@pytest.fixture
def pm():
    return MembershipFactory(role=Role.PM)


def assert_refused_and_unchanged(user, token, project) -> None:
    response = logged_in(user).post(f"/invitations/{token}/")
    assert response.status_code == 410
    assert "withdrawn by the project" in response.content.decode()
    assert not Membership.objects.filter(user=user, project=project).exists()


def test_a_removed_data_manager_cannot_come_back_through_their_own_invitation(pm):
    dm = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER)
    invitation, token = invite(dm.user, pm.project, Role.DATA_MANAGER)

    member_remove(actor=pm.user, project=pm.project, membership_pk=dm.pk)

    invitation.refresh_from_db()
    assert invitation.state() == "revoked"
    assert invitation.revoked_by == pm.user
    event = AuditEvent.objects.get(action=AuditAction.INVITATION_REVOKED)
    assert event.actor == pm.user and event.project_id == pm.project_id
    assert event.before["invitation"] == invitation.pk
    assert event.before["invited_by"] == dm.user.username
    assert_refused_and_unchanged(dm.user, token, pm.project)


def test_a_removed_pms_pm_invitation_dies_with_their_membership(pm):
    pm2 = MembershipFactory(project=pm.project, role=Role.PM)
    alt = UserFactory()
    _invitation, token = invite(pm2.user, pm.project, Role.PM)

    member_remove(actor=pm.user, project=pm.project, membership_pk=pm2.pk)

    assert_refused_and_unchanged(alt, token, pm.project)
    assert list(Membership.objects.filter(project=pm.project)) == [pm]


def test_a_demotion_withdraws_only_what_the_new_role_may_not_give(pm):
    pm2 = MembershipFactory(project=pm.project, role=Role.PM)
    pm_invitation, pm_token = invite(pm2.user, pm.project, Role.PM, value="a@example.net")
    dm_invitation, dm_token = invite(pm2.user, pm.project, Role.DATA_MANAGER, "b@example.net")
    other, _token = invite(pm.user, pm.project, Role.PM, value="c@example.net")

    member_role_change(
        actor=pm.user, project=pm.project, membership_pk=pm2.pk, role=Role.DATA_MANAGER
    )
    for invitation in (pm_invitation, dm_invitation, other):
        invitation.refresh_from_db()
    assert (pm_invitation.state(), dm_invitation.state(), other.state()) == (
        "revoked",
        "pending",
        "pending",
    )
    assert_refused_and_unchanged(UserFactory(), pm_token, pm.project)

    member_role_change(
        actor=pm.user, project=pm.project, membership_pk=pm2.pk, role=Role.COLLABORATOR
    )
    dm_invitation.refresh_from_db()
    assert dm_invitation.state() == "revoked"
    assert_refused_and_unchanged(UserFactory(), dm_token, pm.project)
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_REVOKED).count() == 2


def test_accepting_checks_that_the_inviter_may_still_give_the_role(pm):
    dm = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER)
    _invitation, token = invite(dm.user, pm.project, Role.DATA_MANAGER)
    # Demoted by a way that revokes nothing (the admin, a script): accepting checks anyway.
    Membership.objects.filter(pk=dm.pk).update(role=Role.RESEARCHER)
    invitee = UserFactory()

    response = logged_in(invitee).post(f"/invitations/{token}/")

    assert response.status_code == 410
    assert "may no longer invite to this role" in response.content.decode()
    assert not Membership.objects.filter(user=invitee).exists()
    assert not AuditEvent.objects.filter(action=AuditAction.INVITATION_ACCEPTED).exists()
    assert Invitation.objects.get().state() == "pending"


def test_an_invitation_of_a_deactivated_inviter_is_not_accepted(pm):
    _invitation, token = invite(pm.user, pm.project, Role.RESEARCHER)
    pm.user.is_active = False
    pm.user.save(update_fields=["is_active"])

    with pytest.raises(ValidationError) as refused:
        invitation_accept(actor=UserFactory(), token=token)

    assert refused.value.code == "inviter"
    assert Membership.objects.filter(project=pm.project).count() == 1


def test_nobody_accepts_an_invitation_they_made(pm):
    admin = UserFactory(is_superuser=True)  # may invite without being a member
    _invitation, token = invite(admin, pm.project, Role.DATA_MANAGER)

    response = logged_in(admin).post(f"/invitations/{token}/")

    assert response.status_code == 403
    assert "You made this invitation yourself" in response.content.decode()
    assert not Membership.objects.filter(user=admin).exists()
    assert Invitation.objects.get().state() == "pending"


def test_a_curator_steward_cannot_leave_decide_and_come_back(settings, pm):
    settings.KURA_FOUR_EYES_EXCLUDE_STEWARDS = True
    curator = make_curator()
    dm = Membership.objects.create(project=pm.project, user=curator, role=Role.DATA_MANAGER)
    tier_request = TierChangeRequestFactory(project=pm.project)
    assert tier_decision_refusal(curator, tier_request) is not None
    _invitation, token = invite(curator, pm.project, Role.DATA_MANAGER, "me-again@example.org")

    member_remove(actor=curator, project=pm.project, membership_pk=dm.pk)  # leaves

    with pytest.raises(ValidationError) as refused:
        invitation_accept(actor=curator, token=token)
    assert refused.value.code == "revoked"
    assert not Membership.objects.filter(project=pm.project, user=curator).exists()


def test_the_role_is_read_again_under_the_lock(pm):
    """A's request read the project with A's role (PM); B demotes A and commits; A's
    service, once it holds the lock, must see the demotion."""
    a = MembershipFactory(project=pm.project, role=Role.PM)
    victim = MembershipFactory(project=pm.project, role=Role.DATA_MANAGER)
    pending, _token = invite(pm.user, pm.project, Role.RESEARCHER)
    as_a = access_project(a.user, pm.project_id, need=ProjectAction.READ_MEMBERS)

    member_role_change(
        actor=pm.user, project=pm.project, membership_pk=a.pk, role=Role.COLLABORATOR
    )

    with pytest.raises(PermissionDenied):
        member_remove(actor=a.user, project=as_a, membership_pk=victim.pk)
    with pytest.raises(PermissionDenied):
        member_role_change(
            actor=a.user, project=as_a, membership_pk=victim.pk, role=Role.COLLABORATOR
        )
    with pytest.raises(PermissionDenied):
        invitation_revoke(actor=a.user, project=as_a, invitation_pk=pending.pk)
    with pytest.raises(PermissionDenied):
        invite(a.user, as_a, Role.RESEARCHER, value="late@example.net")
    assert Membership.objects.get(pk=victim.pk).role == Role.DATA_MANAGER
    pending.refresh_from_db()
    assert pending.state() == "pending"
    assert Invitation.objects.count() == 1
