"""The browser upload page: who may open it and what it is made of."""

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from accounts.models import Role
from tests.factories import DmpRecordFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

UPLOADERS = [Role.PM, Role.DATA_MANAGER, Role.RESEARCHER]


@pytest.fixture
def project():
    return ProjectFactory()


def member(project, role):
    return MembershipFactory(project=project, role=role).user


@pytest.mark.parametrize("role", UPLOADERS)
def test_uploaders_get_the_page_with_the_project_records(client, project, role):
    records = [DmpRecordFactory(project=project) for _ in range(2)]
    DmpRecordFactory()  # another project's record is not offered
    client.force_login(member(project, role))

    response = client.get(f"/projects/{project.pk}/upload/")

    assert response.status_code == 200
    html = response.content.decode()
    select = re.search(r'<select id="upload-record" name="record".*?</select>', html, re.S).group()
    offered = set(re.findall(r'<option value="(\d+)"', select))
    assert offered == {str(r.pk) for r in records}
    for record in records:
        assert record.data_number in select
    assert 'id="uppy-dashboard"' in html
    assert 'id="upload-results"' in html
    assert 'name="csrfmiddlewaretoken"' in html


@pytest.mark.parametrize("role", [Role.COLLABORATOR, None])
def test_collaborators_and_outsiders_get_404(client, project, role):
    user = member(project, role) if role else UserFactory()
    client.force_login(user)

    assert client.get(f"/projects/{project.pk}/upload/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, project):
    url = f"/projects/{project.pk}/upload/"

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_missing_project_is_404(client, project):
    client.force_login(member(project, Role.PM))

    assert client.get("/projects/999999/upload/").status_code == 404


def test_page_uses_only_vendored_scripts_and_no_cdn(client, project):
    client.force_login(member(project, Role.RESEARCHER))

    html = client.get(f"/projects/{project.pk}/upload/").content.decode()

    sources = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', html)
    assert "/static/vendor/uppy-5.2.4/uppy.min.js" in sources
    assert "/static/vendor/uppy-5.2.4/uppy.min.css" in sources
    assert "/static/js/uploader.js" in sources
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", html)
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), source


def test_tiers_default_to_non_shared_and_strings_are_translated(client, project):
    client.force_login(member(project, Role.RESEARCHER))

    html = client.get(f"/projects/{project.pk}/upload/", HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    tier_select = re.search(r'<select id="upload-tier".*?</select>', html, re.S).group()
    assert re.search(r'<option value="non_shared" selected>', tier_select)
    assert set(re.findall(r'<option value="(\w+)"', tier_select)) == {
        "public",
        "embargoed",
        "shared",
        "non_shared",
    }
    assert 'id="upload-available-date"' in html
    assert "locales/ja_JP.min.js" in html
    strings = json.loads(
        re.search(
            r'<script id="upload-i18n" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert strings["verified"] == "検証済み"
    config = json.loads(
        re.search(
            r'<script id="upload-config" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert config["project"] == project.pk
    assert config["uploads_url"] == "/api/v1/uploads/"


@pytest.mark.parametrize(
    ("role", "shown"),
    [
        (Role.PM, True),
        (Role.DATA_MANAGER, True),
        (Role.RESEARCHER, True),
        (Role.COLLABORATOR, False),
    ],
)
def test_project_page_links_to_the_upload_page_for_uploaders(client, project, role, shown):
    client.force_login(member(project, role))

    html = client.get(f"/projects/{project.pk}/").content.decode()

    assert (f'href="/projects/{project.pk}/upload/"' in html) is shown
