"""Invitations: made on the members page, mailed when addressed to an e-mail address,
accepted once by signing in; expired, used, revoked or someone else's invitations change
nothing and say why."""

import datetime
import re
import threading

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.identities import identity_link
from accounts.invitations import invitation_accept, member_invite
from accounts.members import member_role_change
from accounts.models import ExternalIdentity, Invitation, Membership, Role
from core.audit import AuditAction
from repository.models import AuditEvent
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LINK = re.compile(r"https?://[^\s]+/invitations/([A-Za-z0-9_-]+)/")


@pytest.fixture
def pm():
    return MembershipFactory(role=Role.PM)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite(pm, kind="email", value="new@example.org", role=Role.RESEARCHER) -> str:
    """Invite through the page; answers the token shown there."""
    response = logged_in(pm.user).post(
        f"/projects/{pm.project_id}/members/", {"kind": kind, "value": value, "role": role}
    )
    assert response.status_code == 200, response.content[:1000]
    return LINK.search(response.content.decode()).group(1)


def test_an_email_invitation_is_mailed_in_both_languages_and_audited(
    pm, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        token = invite(pm)

    invitation = Invitation.objects.get()
    assert invitation.token_hash != token and token not in invitation.token_hash
    assert invitation.expires_at - timezone.now() > datetime.timedelta(days=13)
    (message,) = mail.outbox
    assert message.to == ["new@example.org"]
    assert f"/invitations/{token}/" in message.body
    japanese, english = message.body.split("\n\n-----\n\n")
    assert "研究者" in japanese  # the role's Japanese label (the texts once catalogued)
    assert "as Researcher" in english
    event = AuditEvent.objects.get()
    assert event.action == AuditAction.MEMBER_INVITED
    assert event.after["address"] == "new@example.org"


def test_the_link_is_shown_once(pm):
    invite(pm)

    body = logged_in(pm.user).get(f"/projects/{pm.project_id}/members/").content.decode()

    assert not LINK.search(body)
    assert "new@example.org" in body  # still listed as pending


def test_anonymous_visitors_sign_in_first(pm):
    token = invite(pm)

    response = Client().get(f"/invitations/{token}/")

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next=/invitations/{token}/"


def test_an_email_invitation_is_accepted_by_whoever_holds_the_link(pm):
    token = invite(pm, value="someone.else@example.org")
    invitee = UserFactory(email="different@example.org")
    client = logged_in(invitee)

    page = client.get(f"/invitations/{token}/")
    assert page.status_code == 200
    assert pm.project.name in page.content.decode()
    assert "Researcher" in page.content.decode()

    response = client.post(f"/invitations/{token}/")

    assert response.status_code == 302
    assert response["Location"] == f"/projects/{pm.project_id}/"
    assert Membership.objects.get(user=invitee).role == Role.RESEARCHER
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == invitee and invitation.accepted_at is not None
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_ACCEPTED).count() == 1
    assert client.get(f"/projects/{pm.project_id}/").status_code == 200


def test_an_invitation_cannot_be_used_twice(pm):
    token = invite(pm)
    first, second = UserFactory(), UserFactory()
    assert logged_in(first).post(f"/invitations/{token}/").status_code == 302

    response = logged_in(second).post(f"/invitations/{token}/")

    assert response.status_code == 410
    assert "already been used" in response.content.decode()
    assert not Membership.objects.filter(user=second).exists()


def test_an_expired_invitation_changes_nothing(pm):
    token = invite(pm)
    Invitation.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    invitee = UserFactory()
    client = logged_in(invitee)

    assert client.get(f"/invitations/{token}/").status_code == 410
    response = client.post(f"/invitations/{token}/")

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert 'id="accept-form"' not in response.content.decode()
    assert not Membership.objects.filter(user=invitee).exists()
    assert Invitation.objects.get().accepted_at is None


def test_a_revoked_invitation_changes_nothing(pm):
    token = invite(pm)
    invitation = Invitation.objects.get()
    response = logged_in(pm.user).post(
        f"/projects/{pm.project_id}/invitations/{invitation.pk}/revoke"
    )
    assert response.status_code == 302
    invitee = UserFactory()

    response = logged_in(invitee).post(f"/invitations/{token}/")

    assert response.status_code == 410
    assert "withdrawn" in response.content.decode()
    assert not Membership.objects.filter(user=invitee).exists()
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_REVOKED).count() == 1


def test_a_revoked_invitation_cannot_be_revoked_again(pm):
    invite(pm)
    invitation = Invitation.objects.get()
    url = f"/projects/{pm.project_id}/invitations/{invitation.pk}/revoke"
    logged_in(pm.user).post(url)

    response = logged_in(pm.user).post(url)

    assert response.status_code == 400
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_REVOKED).count() == 1


@pytest.mark.parametrize("token", ["nope", "x" * 300])
def test_an_unknown_token_is_not_found(token):
    assert logged_in(UserFactory()).get(f"/invitations/{token}/").status_code == 404


def test_a_member_is_told_so_and_nothing_changes(pm):
    token = invite(pm)
    member = MembershipFactory(project=pm.project, role=Role.COLLABORATOR)

    response = logged_in(member.user).post(f"/invitations/{token}/")

    assert response.status_code == 409
    assert "already a member" in response.content.decode()
    assert Membership.objects.get(pk=member.pk).role == Role.COLLABORATOR
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize(
    ("kind", "value", "provider", "subject"),
    [
        ("eppn", "taro@example.ac.jp", "saml", "taro@example.ac.jp"),
        ("orcid", "https://orcid.org/0000-0002-1825-0097", "orcid", "0000-0002-1825-0097"),
    ],
)
def test_eppn_and_orcid_invitations_need_that_identity(pm, kind, value, provider, subject):
    token = invite(pm, kind=kind, value=value)
    assert not mail.outbox  # nothing to mail: the PM passes the link on
    stranger, invitee = UserFactory(), UserFactory()

    refused = logged_in(stranger).post(f"/invitations/{token}/")
    assert refused.status_code == 403
    assert subject in refused.content.decode()
    assert not Membership.objects.filter(user=stranger).exists()

    identity_link(user=invitee, provider=provider, subject=subject)
    # My page lists it with an Accept button (the identity is the proof)
    my_page = logged_in(invitee).get("/me/").content.decode()
    invitation = Invitation.objects.get()
    assert f'id="my-invitation-{invitation.pk}"' in my_page
    assert logged_in(invitee).post(f"/invitations/{token}/").status_code == 302
    assert Membership.objects.get(user=invitee).project_id == pm.project_id


def test_an_addressed_invitation_is_accepted_from_my_page(pm):
    invite(pm, kind="eppn", value="hanako@example.ac.jp", role=Role.DATA_MANAGER)
    invitation = Invitation.objects.get()
    stranger, invitee = UserFactory(), UserFactory()
    ExternalIdentity.objects.create(user=invitee, provider="saml", subject="hanako@example.ac.jp")
    url = f"/invitations/{invitation.pk}/accept"

    assert logged_in(stranger).post(url).status_code == 404
    response = logged_in(invitee).post(url)

    assert response.status_code == 302
    assert Membership.objects.get(user=invitee).role == Role.DATA_MANAGER
    assert logged_in(invitee).post(url).status_code == 302  # used: told on My page
    assert Membership.objects.filter(user=invitee).count() == 1


def test_an_email_invitation_is_not_accepted_without_its_link(pm):
    invitee = UserFactory(email="new@example.org")
    invite(pm)
    invitation = Invitation.objects.get()

    # An account's e-mail address proves nothing (an IdP or the person sets it): My page
    # does not list, nor tell project, role and inviter of, invitations to it.
    page = logged_in(invitee).get("/me/").content.decode()
    assert f'id="my-invitation-{invitation.pk}"' not in page
    assert pm.project.name not in page

    assert logged_in(invitee).post(f"/invitations/{invitation.pk}/accept").status_code == 404
    assert not Membership.objects.filter(user=invitee).exists()


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("email", "not an address", "valid e-mail"),
        ("eppn", "taro", "ePPN"),
        ("orcid", "0000-0002-1825-0098", "ORCID"),
        ("fax", "123", "Select a valid choice"),
    ],
)
def test_bad_addresses_are_form_errors(pm, kind, value, message):
    response = logged_in(pm.user).post(
        f"/projects/{pm.project_id}/members/",
        {"kind": kind, "value": value, "role": Role.RESEARCHER},
    )

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Invitation.objects.exists()


def test_a_member_or_a_pending_address_is_not_invited_again(pm):
    member = MembershipFactory(project=pm.project, role=Role.RESEARCHER)
    response = logged_in(pm.user).post(
        f"/projects/{pm.project_id}/members/",
        {"kind": "email", "value": member.user.email.upper(), "role": Role.RESEARCHER},
    )
    assert response.status_code == 400
    assert "already a member" in response.content.decode()

    invite(pm)
    response = logged_in(pm.user).post(
        f"/projects/{pm.project_id}/members/",
        {"kind": "email", "value": "NEW@example.org", "role": Role.RESEARCHER},
    )
    assert response.status_code == 400
    assert "pending" in response.content.decode()
    assert Invitation.objects.count() == 1


def test_a_failing_mail_server_leaves_the_invitation_and_its_link(
    pm, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # nothing listens there

    with django_capture_on_commit_callbacks(execute=True):
        token = invite(pm)

    assert Invitation.objects.get().token_hash
    assert logged_in(UserFactory()).post(f"/invitations/{token}/").status_code == 302


def test_the_service_accepts_the_token_once_under_a_lock(pm):
    invitation, token = member_invite(
        actor=pm.user, project=pm.project, kind="email", value="x@example.org", role="researcher"
    )
    user = UserFactory()

    membership = invitation_accept(actor=user, token=token)

    assert membership.role == Role.RESEARCHER
    with pytest.raises(Exception, match="already been used"):
        invitation_accept(actor=UserFactory(), token=token)
    with pytest.raises(Invitation.DoesNotExist):
        invitation_accept(actor=user, token="wrong")


def _race(*calls) -> list:
    """Run ``calls`` at once, each in its own thread and database connection; answers what
    each returned or raised."""
    barrier = threading.Barrier(len(calls))
    outcomes = [None] * len(calls)

    def run(n, call):
        try:
            barrier.wait()
            outcomes[n] = call()
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test looks at
            outcomes[n] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(n, c)) for n, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.django_db(transaction=True)
def test_two_people_racing_for_one_link_make_one_member():
    pm = MembershipFactory(role=Role.PM)
    _invitation, token = member_invite(
        actor=pm.user, project=pm.project, kind="email", value="x@example.org", role="researcher"
    )
    first, second = UserFactory(), UserFactory()

    outcomes = _race(
        lambda: invitation_accept(actor=first, token=token),
        lambda: invitation_accept(actor=second, token=token),
    )

    assert sum(isinstance(o, Membership) for o in outcomes) == 1
    assert Membership.objects.filter(project=pm.project).count() == 2
    assert AuditEvent.objects.filter(action=AuditAction.INVITATION_ACCEPTED).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_pms_stepping_down_at_once_leave_one():
    pm = MembershipFactory(role=Role.PM)
    other = MembershipFactory(project=pm.project, role=Role.PM)

    _race(
        lambda: member_role_change(
            actor=pm.user, project=pm.project, membership_pk=pm.pk, role=Role.RESEARCHER
        ),
        lambda: member_role_change(
            actor=other.user, project=pm.project, membership_pk=other.pk, role=Role.RESEARCHER
        ),
    )

    assert Membership.objects.filter(project=pm.project, role=Role.PM).count() == 1
