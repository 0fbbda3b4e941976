"""My page: a person's projects and roles, invitations to them, their access requests and
grants; someone with none of those is told what to do next and how a PM can invite them."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import ExternalIdentity, Invitation, Role
from repository.models import AccessRequest, RequestStatus
from tests.factories import (
    PASSWORD,
    AccessGrantFactory,
    DmpRecordFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def my_page(user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get("/me/")
    assert response.status_code == 200
    return response.content.decode()


def test_anonymous_visitors_sign_in_first():
    response = Client().get("/me/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/me/"


def test_a_newcomer_is_told_what_to_do_and_how_to_be_invited():
    user = UserFactory(email="newcomer@example.ac.jp", orcid="0000-0002-1825-0097")
    ExternalIdentity.objects.create(user=user, provider="saml", subject="nc@example.ac.jp")
    ExternalIdentity.objects.create(user=user, provider="orcid", subject="0000-0002-1694-233X")

    page = my_page(user)

    assert 'id="next-steps"' in page
    assert "invite you from the project" in page
    assert "newcomer@example.ac.jp" in page
    assert "nc@example.ac.jp" in page
    assert "0000-0002-1694-233X" in page
    assert "0000-0002-1825-0097" not in page  # typed, not verified: no identifier to invite by
    assert 'href="/me/" aria-current="page"' in page  # the header's link


def test_a_member_sees_their_projects_with_their_roles():
    pm = MembershipFactory(role=Role.PM)
    MembershipFactory(user=pm.user, role=Role.COLLABORATOR)

    page = my_page(pm.user)

    assert 'id="next-steps"' not in page
    assert f'href="/projects/{pm.project_id}/"' in page
    assert "Project manager" in page and "Collaborator" in page


def test_an_outsider_follows_their_access_requests_and_grants():
    outsider = UserFactory()
    asked, declined = DmpRecordFactory(title_en="Asked"), DmpRecordFactory(title_en="Declined")
    AccessRequest.objects.create(record=asked, requester=outsider, purpose="meta-analysis")
    AccessRequest.objects.create(
        record=declined,
        requester=outsider,
        purpose="teaching",
        status=RequestStatus.REJECTED,
        decision_comment="Personal data.",
    )
    live = AccessGrantFactory(grantee=outsider)
    AccessGrantFactory(grantee=outsider, revoked_at=timezone.now())
    AccessGrantFactory(grantee=outsider, expires_at=timezone.now() - datetime.timedelta(days=1))
    AccessGrantFactory()  # someone else's

    page = my_page(outsider)

    assert 'id="next-steps"' not in page
    requests = page[page.index('id="my-access-requests"') : page.index('id="my-grants"')]
    assert "Asked" in requests and "Pending" in requests
    assert "Declined" in requests and "Rejected" in requests and "Personal data." in requests
    grants = page[page.index('id="my-grants"') :]
    assert grants.count('id="my-grant-') == 3
    assert f'href="/datasets/{live.record_id}/"' in grants
    assert "Active" in grants and "Revoked" in grants and "Expired" in grants


def test_invitations_to_linked_identities_are_listed_and_to_the_email_not(
    django_assert_max_num_queries,
):
    user = UserFactory(email="Invitee@Example.org")
    ExternalIdentity.objects.create(user=user, provider="saml", subject="invitee@example.ac.jp")
    pm = MembershipFactory(role=Role.PM)
    other = MembershipFactory(
        role=Role.PM, project__name_en="Hush project", project__name_ja="内緒のプロジェクト"
    )
    addressed = {}
    for project, kind, value in [
        (pm.project, Invitation.Kind.EPPN, "invitee@example.ac.jp"),
        (other.project, Invitation.Kind.EMAIL, "invitee@example.org"),
    ]:
        addressed[kind] = Invitation.objects.create(
            project=project,
            role=Role.RESEARCHER,
            kind=kind,
            value=value,
            token_hash=kind.ljust(64, "0"),
            invited_by=pm.user,
            expires_at=timezone.now() + datetime.timedelta(days=3),
        )
    for _n in range(3):
        MembershipFactory(user=user, role=Role.RESEARCHER)
        AccessGrantFactory(grantee=user)

    client = Client()
    client.force_login(user)
    with django_assert_max_num_queries(14):
        page = client.get("/me/").content.decode()

    assert pm.project.name in page
    assert f'id="my-invitation-{addressed[Invitation.Kind.EPPN].pk}"' in page
    assert f'action="/invitations/{addressed[Invitation.Kind.EPPN].pk}/accept"' in page
    # The account's e-mail address is not proved: that invitation is reached by its link.
    assert f'id="my-invitation-{addressed[Invitation.Kind.EMAIL].pk}"' not in page
    assert other.project.name not in page


def _invitation_to(project, invited_by, eppn: str) -> Invitation:
    return Invitation.objects.create(
        project=project,
        role=Role.RESEARCHER,
        kind=Invitation.Kind.EPPN,
        value=eppn,
        token_hash="1" * 64,
        invited_by=invited_by,
        expires_at=timezone.now() + datetime.timedelta(days=3),
    )


def test_a_sign_in_lands_a_newcomer_on_my_page_and_a_member_at_home():
    newcomer = UserFactory()
    member = MembershipFactory(role=Role.RESEARCHER).user
    invited = MembershipFactory(role=Role.RESEARCHER).user
    ExternalIdentity.objects.create(user=invited, provider="saml", subject="iv@example.ac.jp")
    pm = MembershipFactory(role=Role.PM)
    _invitation_to(pm.project, pm.user, "iv@example.ac.jp")

    landings = {}
    for name, user in [("newcomer", newcomer), ("member", member), ("invited", invited)]:
        client = Client()
        client.force_login(user)
        landings[name] = client.get(reverse("signed-in"))["Location"]

    assert landings == {"newcomer": "/me/", "member": "/", "invited": "/me/"}


def test_a_password_sign_in_without_next_goes_through_the_landing():
    user = UserFactory()

    response = Client().post(
        reverse("login"), {"username": user.username, "password": PASSWORD}, follow=True
    )

    assert [url for url, _status in response.redirect_chain] == ["/me/signed-in/", "/me/"]
    assert 'id="next-steps"' in response.content.decode()


def test_the_landing_needs_a_sign_in():
    response = Client().get("/me/signed-in/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/me/signed-in/"
