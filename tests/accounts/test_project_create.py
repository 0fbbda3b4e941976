"""Curators and staff create projects on a page, naming the first PM; bad input is a form
message and creates nothing."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client

from accounts.models import Membership, Project, Role
from core.audit import AuditAction
from repository.models import AuditEvent
from tests.factories import (
    InstitutionFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    make_superuser,
)

pytestmark = pytest.mark.django_db

URL = "/projects/new/"


def logged_in(user) -> Client:
    client = Client()
    if user.is_authenticated:
        client.force_login(user)
    return client


def fields(**overrides) -> dict:
    return {
        "institution": InstitutionFactory().pk,
        "name_ja": "土壌微生物の研究",
        "name_en": "Soil microbes",
        "funder": "JST",
        "funding_stream_code": "MS2",
        "program_name_ja": "ムーンショット目標2",
        "program_name_en": "Moonshot Goal 2",
        "japan_grant_number": "JPMJMS2023",
        "research_field": "189",
        "first_pm": "",
        **overrides,
    }


@pytest.mark.parametrize(
    ("who", "may"),
    [
        ("anonymous", False),
        ("outsider", False),
        ("pm", False),
        ("program_officer", False),
        ("staff", True),
        ("curator", True),
        ("superuser", True),
    ],
)
def test_who_creates_projects(who, may):
    user = {
        "anonymous": AnonymousUser,
        "outsider": UserFactory,
        "pm": lambda: MembershipFactory(role=Role.PM).user,
        "program_officer": make_program_officer,
        "staff": lambda: UserFactory(is_staff=True),
        "curator": make_curator,
        "superuser": make_superuser,
    }[who]()
    count = Project.objects.count()
    client = logged_in(user)

    page = client.get(URL)
    response = client.post(URL, fields())

    if may:
        assert page.status_code == 200
        assert response.status_code == 302
        project = Project.objects.get(japan_grant_number="JPMJMS2023")
        assert response["Location"] == f"/projects/{project.pk}/members/"
        assert Membership.objects.get(project=project).user == user
        event = AuditEvent.objects.get(action=AuditAction.PROJECT_CREATED)
        assert event.actor == user and event.project_id == project.pk
        assert event.after["pm"] == user.username
    else:
        assert page.status_code in (302, 404)
        assert response.status_code in (302, 404)
        assert Project.objects.count() == count


@pytest.mark.parametrize("handle", ["taro", "Taro@Example.org"])
def test_the_first_pm_is_named_by_username_or_email(handle):
    taro = UserFactory(username="taro", email="taro@example.org")

    response = logged_in(make_curator()).post(URL, fields(first_pm=handle))

    assert response.status_code == 302
    membership = Membership.objects.get(project__japan_grant_number="JPMJMS2023")
    assert (membership.user, membership.role) == (taro, Role.PM)
    # The new PM runs the members page at once.
    assert logged_in(taro).get(f"/projects/{membership.project_id}/members/").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"first_pm": "nobody"}, "No account has this username"),
        ({"name_ja": "", "name_en": ""}, "a name in Japanese or English"),
        ({"funder": "XYZ"}, "Select a valid choice"),
        ({"research_field": ""}, "This field is required"),
        ({"funding_stream_code": "MS-2"}, "Enter a valid value"),
        ({"institution": "999999"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_form_message_and_creates_nothing(overrides, message):
    response = logged_in(make_curator()).post(URL, fields(**overrides))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Project.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_grant_number_in_use_is_refused():
    ProjectFactory(japan_grant_number="JPMJMS2023")

    response = logged_in(make_curator()).post(URL, fields())

    assert response.status_code == 400
    assert "Another project has this Japan Grant Number" in response.content.decode()
    assert Project.objects.count() == 1


def test_two_accounts_with_one_email_need_the_username():
    UserFactory(email="shared@example.org")
    UserFactory(email="SHARED@example.org")

    response = logged_in(make_curator()).post(URL, fields(first_pm="shared@example.org"))

    assert response.status_code == 400
    assert "give the username" in response.content.decode()


def test_an_email_address_names_the_account_with_that_address_not_that_username():
    """A username may look like someone's e-mail address: given an address, the account
    with that address is meant, and two accounts answering to it are refused."""
    owner = UserFactory(username="owner", email="hanako@example.org")
    curator = make_curator()

    response = logged_in(curator).post(URL, fields(first_pm="hanako@example.org"))
    assert response.status_code == 302
    assert Membership.objects.get(project__japan_grant_number="JPMJMS2023").user == owner

    UserFactory(username="hanako@example.org", email="mallory@example.net")
    response = logged_in(curator).post(
        URL, fields(first_pm="hanako@example.org", japan_grant_number="JPMJMS2024")
    )
    assert response.status_code == 400
    assert "Several accounts answer to this e-mail address" in response.content.decode()
    assert not Project.objects.filter(japan_grant_number="JPMJMS2024").exists()


def test_a_username_without_at_is_not_matched_as_an_email():
    UserFactory(username="other", email="taro")  # not an address: never matched by it

    response = logged_in(make_curator()).post(URL, fields(first_pm="taro"))

    assert response.status_code == 400
    assert "No account has this username" in response.content.decode()
