"""Issue 13 item 6: a record's repository/DOI link is stored only when it cannot break out
of the Link header or a citation file, through the form, the API and both imports."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.models import Role
from dmp.exports import csv_rows
from dmp.madmp import madmp_export
from dmp.models import DmpRecord
from dmp.validators import repo_link_validate
from tests.dmp.complete_records import complete_record
from tests.dmp.test_api import payload
from tests.dmp.test_pages import record_post_data
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

BREAKOUT = 'https://doi.org/10.1234/x>;rel="preload",<https://evil.example/'

BAD_LINKS = [
    BREAKOUT,
    "https://doi.org/10.1234/x>",
    'https://repo.example.jp/records/1";rel=preload',
    "https://repo.example.jp/records/1'",
    "https://repo.example.jp/a\\b",
    "https://doi.org/not-a-doi",
    "https://doi.org/10.12/too-short-a-prefix",
    "https://doi.org/",
]
GOOD_LINKS = [
    "https://doi.org/10.1234/kura.1",
    "http://dx.doi.org/10.5281/zenodo.123456",
    "https://doi.org/10.1002/(SICI)1097-4636(199712)37:3%3C1::AID%3E3.0.CO;2-A",
    "https://repo.example.jp/records/1?version=2#files",
]


@pytest.mark.parametrize("link", BAD_LINKS)
def test_a_link_that_could_break_out_is_refused(link):
    with pytest.raises(ValidationError):
        repo_link_validate(link)


@pytest.mark.parametrize("link", GOOD_LINKS)
def test_dois_and_ordinary_links_are_accepted(link):
    repo_link_validate(link)


def test_the_record_form_refuses_the_breakout(client):
    membership = MembershipFactory(role=Role.PM)
    client.force_login(membership.user)

    response = client.post(
        f"/projects/{membership.project.pk}/dmp/records/new/",
        record_post_data(repo_url_doi_link=BREAKOUT),
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 200  # the form again, with its errors
    assert response.context["form"].errors["repo_url_doi_link"] == [
        "A link may not contain spaces, <, >, quotes or backslashes."
    ]
    assert not DmpRecord.objects.filter(project=membership.project).exists()


def test_the_api_refuses_the_breakout():
    membership = MembershipFactory(role=Role.PM)
    api = APIClient()
    api.force_authenticate(membership.user)

    response = api.post(
        "/api/v1/records/",
        payload(membership.project, repo_url_doi_link=BREAKOUT),
        format="json",
    )

    assert response.status_code == 400
    assert "repo_url_doi_link" in response.json()["errors"] or "repo_url_doi_link" in str(
        response.json()
    )
    assert not DmpRecord.objects.filter(project=membership.project).exists()


def test_the_csv_import_refuses_the_breakout(client):
    membership = MembershipFactory(role=Role.PM)
    source = ProjectFactory(institution=membership.project.institution)
    MembershipFactory(project=source, role=Role.PM, user=membership.user)
    # Stored before links were validated (create() does not validate).
    complete_record(source, 1, repo_url_doi_link=BREAKOUT)
    content = b"".join(csv_rows(source.records.all(), "ja"))
    client.force_login(membership.user)

    response = client.post(
        f"/projects/{membership.project.pk}/dmp/import/",
        {"format": "csti-csv", "file": SimpleUploadedFile("records.dat", content)},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert not DmpRecord.objects.filter(project=membership.project).exists()


def test_the_madmp_import_leaves_the_breakout_out_of_the_record(client):
    membership = MembershipFactory(role=Role.PM)
    source = ProjectFactory(institution=membership.project.institution)
    MembershipFactory(project=source, role=Role.PM, user=membership.user)
    complete_record(source, 1, repo_url_doi_link=BREAKOUT)
    content = json.dumps(madmp_export(project=source)).encode()
    client.force_login(membership.user)
    url = f"/projects/{membership.project.pk}/dmp/import/"

    review = client.post(
        url,
        {"format": "madmp-json", "file": SimpleUploadedFile("dmp.json", content)},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert review.status_code == 200
    assert any("left out of the record" in note for note in review.context["review"].notes)
    assert BREAKOUT not in review.content.decode()  # shown escaped
    assert not DmpRecord.objects.filter(project=membership.project).exists()
    token = review.context["form"]["token"].value()
    assert client.post(url, {"token": token}).status_code == 302
    (record,) = DmpRecord.objects.filter(project=membership.project)
    assert record.repo_url_doi_link == ""
