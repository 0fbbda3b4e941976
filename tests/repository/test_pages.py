"""The HTML pages answer the access matrix of test_access.py, over HTTP."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.access import Action
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    make_program_officer,
)
from tests.repository.test_access import (
    CURATORS,
    MEMBERS,
    ROLES,
    STATES,
    SUPERUSER,
    allowed,
    build_object,
    build_user,
)

pytestmark = pytest.mark.django_db

CSRF_TOKEN = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


def log_in(client, user) -> None:
    if user.is_authenticated:
        client.force_login(user)


def without_csrf_tokens(body: bytes) -> bytes:
    """Each render masks the CSRF token anew; nothing else may differ."""
    return CSRF_TOKEN.sub(b'name="csrfmiddlewaretoken" value=""', body)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_object_page(client, role, state):
    obj = build_object(state)
    log_in(client, build_user(role, obj))
    url = f"/objects/{obj.pk}/"

    response = client.get(url)

    if allowed(role, state, Action.VIEW_METADATA):
        assert response.status_code == 200
        assert obj.original_filename in response.content.decode()
    else:
        assert response.status_code == 404
        obj.delete()
        missing = client.get(url)
        assert missing.status_code == 404
        assert without_csrf_tokens(response.content) == without_csrf_tokens(missing.content)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_download(client, role, state):
    obj = build_object(state)
    log_in(client, build_user(role, obj))

    response = client.get(f"/objects/{obj.pk}/download")

    assert response.status_code == (302 if allowed(role, state, Action.DOWNLOAD) else 404)


def may_open_project(role: str, state: str) -> bool:
    return role in MEMBERS | CURATORS | SUPERUSER or allowed(role, state, Action.VIEW_METADATA)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", ROLES)
def test_project_page(client, role, state):
    obj = build_object(state)
    log_in(client, build_user(role, obj))

    response = client.get(f"/projects/{obj.project_id}/")

    if may_open_project(role, state):
        assert response.status_code == 200
        listed = obj.original_filename in response.content.decode()
        assert listed is allowed(role, state, Action.VIEW_METADATA)
    else:
        assert response.status_code == 404


@pytest.mark.parametrize("state", STATES)
def test_program_officer_opens_any_project_but_sees_only_what_anonymous_sees(client, state):
    obj = build_object(state)
    client.force_login(make_program_officer())

    response = client.get(f"/projects/{obj.project_id}/")

    assert response.status_code == 200
    listed = obj.original_filename in response.content.decode()
    assert listed is allowed("anonymous", state, Action.VIEW_METADATA)


def add_objects(project, count: int) -> None:
    """Objects in every tier, each with its own record and uploader."""
    tiers = [Tier.PUBLIC, Tier.SHARED, Tier.NON_SHARED, Tier.EMBARGOED]
    for n in range(count):
        tier = tiers[n % len(tiers)]
        record = DmpRecordFactory(project=project, access_rights=tier)
        DataObjectFactory(
            project=project,
            record=record,
            uploaded_by=MembershipFactory(project=project).user,
            tier=tier,
            available_date=record.available_date,
        )


def count_queries(client, project) -> int:
    """Queries for one view of the project page, which must list all its objects."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/projects/{project.pk}/")
    assert response.status_code == 200
    content = response.content.decode()
    filenames = project.data_objects.values_list("original_filename", flat=True)
    assert all(name in content for name in filenames)
    return len(queries)


def test_project_page_queries_do_not_grow_with_objects(client):
    project = ProjectFactory()
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    add_objects(project, 3)

    with_3 = count_queries(client, project)
    add_objects(project, 27)
    with_30 = count_queries(client, project)

    assert with_30 == with_3


def test_recent_public_data_on_the_home_page_leads_to_the_datasets_landing_page(client):
    record = DmpRecordFactory(access_rights=Tier.PUBLIC, metadata_access=MetadataAccess.OPEN)
    public = DataObjectFactory(project=record.project, record=record, tier=Tier.PUBLIC)
    undescribed = DataObjectFactory(record=None, tier=Tier.PUBLIC)
    # A public file whose record's metadata is closed: its landing page would be a 404.
    closed = DmpRecordFactory(metadata_access=MetadataAccess.CLOSED)
    unlisted = DataObjectFactory(project=closed.project, record=closed, tier=Tier.PUBLIC)

    home = client.get("/").content.decode()

    landing = f'href="/datasets/{record.pk}/#files">{public.original_filename}</a>'
    assert landing in home
    assert f"/objects/{public.pk}/" not in home
    # A file no record describes yet has no landing page: its own page, not a dead end.
    for data_object in (undescribed, unlisted):
        own_page = f'href="/objects/{data_object.pk}/">{data_object.original_filename}</a>'
        assert own_page in home
        assert client.get(f"/objects/{data_object.pk}/").status_code == 200
    assert client.get(f"/datasets/{record.pk}/").status_code == 200
