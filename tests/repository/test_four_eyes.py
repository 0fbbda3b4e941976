"""Four eyes on opening data: whoever asked never decides, nor (by default) a steward of the
data — in the services, on the review and access-request pages, and through the API."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Role
from core.vocabularies import Tier
from repository.governance import grants, tiers
from repository.models import AccessGrant, AccessRequest, RequestStatus
from tests.factories import MembershipFactory, make_curator, make_superuser
from tests.repository.test_tiers import ProjectWithRoles

pytestmark = pytest.mark.django_db

OWN = "You asked for this; another curator decides."
STEWARD = "You manage this project&#x27;s data"


@pytest.fixture
def setup():
    return ProjectWithRoles()


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ask_public(setup, requester, uploaded_by=None):
    """``requester`` asks to make a non_shared object public; returns (object, request)."""
    data_object = setup.object(tier=Tier.NON_SHARED, uploaded_by=uploaded_by or requester)
    outcome = tiers.tier_change_request(
        actor=requester, data_object_ids=[data_object.pk], tier=Tier.PUBLIC, reason="Paper."
    )
    return data_object, outcome.request


def curator_member(setup, role=Role.RESEARCHER):
    """A curator who is also a member of the project (the red team's attacker)."""
    curator = make_curator()
    MembershipFactory(project=setup.project, user=curator, role=role)
    return curator


def decide(actor, tier_request, approve=True):
    return tiers.tier_request_decide(
        actor=actor, tier_request_id=tier_request.pk, approve=approve, comment="ok"
    )


# --- Tier requests: the service --------------------------------------------------------------


@pytest.mark.parametrize("approve", [True, False])
def test_a_curator_member_cannot_decide_their_own_request(setup, approve):
    curator = curator_member(setup)
    data_object, tier_request = ask_public(setup, curator)

    with pytest.raises(PermissionDenied, match="You asked for this"):
        decide(curator, tier_request, approve)

    data_object.refresh_from_db()
    tier_request.refresh_from_db()
    assert data_object.tier == Tier.NON_SHARED
    assert tier_request.status == RequestStatus.PENDING
    decide(make_curator(), tier_request, approve)  # another curator may
    data_object.refresh_from_db()
    assert data_object.tier == (Tier.PUBLIC if approve else Tier.NON_SHARED)


def test_a_superuser_cannot_decide_their_own_request(setup):
    superuser = make_superuser()
    data_object, tier_request = ask_public(setup, superuser, uploaded_by=setup.uploader)

    with pytest.raises(PermissionDenied, match="You asked for this"):
        decide(superuser, tier_request)
    data_object.refresh_from_db()
    assert data_object.tier == Tier.NON_SHARED


@pytest.mark.parametrize("role", [Role.PM, Role.DATA_MANAGER, "uploader"])
def test_stewards_of_the_data_do_not_decide_unless_the_setting_allows(setup, settings, role):
    if role == "uploader":  # a curator-researcher whose upload a PM asks to open
        curator = curator_member(setup)
        data_object, tier_request = ask_public(setup, setup.pm, uploaded_by=curator)
    else:
        curator = curator_member(setup, role)
        data_object, tier_request = ask_public(setup, setup.uploader)

    with pytest.raises(PermissionDenied, match="You manage this project"):
        decide(curator, tier_request)
    data_object.refresh_from_db()
    assert data_object.tier == Tier.NON_SHARED

    settings.KURA_FOUR_EYES_EXCLUDE_STEWARDS = False  # a single-curator installation
    decide(curator, tier_request)
    data_object.refresh_from_db()
    assert data_object.tier == Tier.PUBLIC


def test_the_requester_never_decides_even_with_stewards_allowed(setup, settings):
    settings.KURA_FOUR_EYES_EXCLUDE_STEWARDS = False
    curator = curator_member(setup, Role.PM)
    _data_object, tier_request = ask_public(setup, curator)
    with pytest.raises(PermissionDenied, match="You asked for this"):
        decide(curator, tier_request)


def test_deciding_for_a_record_refuses_a_request_of_ones_own(setup):
    curator = curator_member(setup)
    data_object, _own = ask_public(setup, curator)
    other, _theirs = ask_public(setup, setup.uploader)

    with pytest.raises(PermissionDenied, match="You asked for this"):
        tiers.tier_requests_decide_for_record(
            actor=curator, record_id=setup.record.pk, approve=True
        )
    for o in (data_object, other):
        o.refresh_from_db()
        assert o.tier == Tier.NON_SHARED


# --- Tier requests: the review page and the API ---------------------------------------------


def test_the_review_page_tells_the_requester_and_offers_no_decision(client, setup):
    curator = curator_member(setup)
    data_object, tier_request = ask_public(setup, curator)
    ask_public(setup, curator)  # a second request: the record-wide form would show too
    url = f"/review/{tier_request.pk}/"

    client.force_login(curator)
    html = client.get(url).content.decode()
    assert OWN in html
    assert 'id="decision-form"' not in html
    assert 'value="approve"' not in html

    forced = client.post(url, {"decision": "approve", "comment": ""})
    assert forced.status_code == 403
    data_object.refresh_from_db()
    assert data_object.tier == Tier.NON_SHARED

    client.force_login(make_curator())
    html = client.get(url).content.decode()
    assert 'id="decision-form"' in html and OWN not in html


def test_the_review_page_tells_a_steward(client, setup):
    curator = curator_member(setup, Role.PM)
    _data_object, tier_request = ask_public(setup, setup.uploader)
    client.force_login(curator)

    html = client.get(f"/review/{tier_request.pk}/").content.decode()

    assert STEWARD in html
    assert 'id="decision-form"' not in html


def test_the_api_refuses_the_requester_with_403_and_a_reason(setup):
    curator = curator_member(setup)
    data_object, tier_request = ask_public(setup, curator)

    response = api(curator).post(
        f"/api/v1/tier-requests/{tier_request.pk}/decision", {"approve": True}, format="json"
    )

    assert response.status_code == 403, response.content
    assert response.json()["detail"] == OWN
    data_object.refresh_from_db()
    assert data_object.tier == Tier.NON_SHARED
    assert anonymous_download(data_object) == 404


def anonymous_download(data_object) -> int:
    from django.test import Client

    return Client().get(f"/objects/{data_object.pk}/download").status_code


# --- Access requests ------------------------------------------------------------------------


def future(days: int) -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=days)


@pytest.fixture
def own_access_request(shared):
    """A superuser outside the project asks for access to its shared data."""
    superuser = make_superuser()
    access_request = grants.access_request_create(
        requester=superuser, record=shared["record"], purpose="Curiosity."
    )
    return superuser, access_request


def test_the_requester_cannot_approve_their_own_access_request(shared, own_access_request):
    superuser, access_request = own_access_request

    with pytest.raises(PermissionDenied, match="You asked for this"):
        grants.access_request_approve(
            actor=superuser,
            project=shared["project"],
            access_request_id=access_request.pk,
            expires_on=future(30),
        )
    assert not AccessGrant.objects.exists()
    grants.access_request_approve(  # the PM may
        actor=shared["pm"],
        project=shared["project"],
        access_request_id=access_request.pk,
        expires_on=future(30),
    )
    assert AccessGrant.objects.get().grantee == superuser


def test_the_access_page_and_api_refuse_the_requester(client, shared, own_access_request):
    superuser, access_request = own_access_request
    client.force_login(superuser)
    page = f"/projects/{shared['project'].pk}/access-requests/"

    html = client.get(page).content.decode()
    assert "You asked for this; another steward of the project decides." in html
    assert "approve-form" not in html

    forced = client.post(
        f"{page}{access_request.pk}/approve",
        {f"approve-{access_request.pk}-expires_on": future(30).isoformat()},
    )
    assert forced.status_code == 403
    response = api(superuser).post(
        f"/api/v1/access-requests/{access_request.pk}/decision",
        {"approve": True, "expires_on": future(30).isoformat()},
        format="json",
    )
    assert response.status_code == 403, response.content
    assert "You asked for this" in response.json()["detail"]
    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.PENDING
    assert not AccessGrant.objects.exists()

    client.force_login(shared["pm"])
    assert "approve-form" in client.get(page).content.decode()
    assert AccessRequest.objects.get().status == RequestStatus.PENDING
