"""Importing records from the DMP page: all or nothing, every problem shown."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from dmp.exports import csv_rows
from dmp.madmp import madmp_export
from dmp.models import DmpRecord
from tests.dmp.complete_records import complete_record
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def source_and_target():
    """A project with two complete records, and an empty project managed by the same PM."""
    pm = MembershipFactory(role=Role.PM)
    complete_record(pm.project, 1)
    complete_record(pm.project, 2)
    target = ProjectFactory(institution=pm.project.institution)
    MembershipFactory(project=target, user=pm.user, role=Role.PM)
    return pm.project, target, pm.user


def _csv(project) -> bytes:
    return b"".join(csv_rows(project.records.order_by("data_number"), "ja"))


def _post(client, project, fmt: str, content: bytes, name: str):
    upload = SimpleUploadedFile(name, content)
    return client.post(f"/projects/{project.pk}/dmp/import/", {"format": fmt, "file": upload})


@pytest.mark.parametrize("fmt", ["csti-csv", "madmp-json"])
def test_pm_imports_a_file_into_an_empty_project(client, source_and_target, fmt):
    source, target, pm = source_and_target
    if fmt == "csti-csv":
        content = _csv(source)
    else:
        content = json.dumps(madmp_export(project=source)).encode()
    client.force_login(pm)

    response = _post(client, target, fmt, content, "records.dat")

    assert response.status_code == 302
    assert sorted(target.records.values_list("data_number", flat=True)) == ["D-001", "D-002"]


def test_a_refused_file_lists_every_problem_and_changes_nothing(client, source_and_target):
    source, target, pm = source_and_target
    text = _csv(source).decode("utf-8-sig")
    broken = text.replace("D-002", "D-001").replace("CCBY", "NOT-A-LICENCE", 1)
    client.force_login(pm)

    response = _post(client, target, "csti-csv", broken.encode("utf-8-sig"), "records.csv")

    assert response.status_code == 400
    rows = response.context["problems"]
    assert len(rows) >= 2
    html = response.content.decode()
    assert "NOT-A-LICENCE" in html
    assert "D-001" in html
    assert not DmpRecord.objects.filter(project=target).exists()


def test_broken_json_is_refused_with_a_message(client, source_and_target):
    _, target, pm = source_and_target
    client.force_login(pm)

    response = _post(client, target, "madmp-json", b"{not json", "dmp.json")

    assert response.status_code == 400
    assert response.context["problems"]
    assert not DmpRecord.objects.filter(project=target).exists()


def test_a_missing_file_is_a_form_error(client, source_and_target):
    _, target, pm = source_and_target
    client.force_login(pm)

    response = client.post(f"/projects/{target.pk}/dmp/import/", {"format": "csti-csv"})

    assert response.status_code == 400
    assert "file" in response.context["form"].errors


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.COLLABORATOR])
def test_only_pm_and_data_managers_may_import(client, source_and_target, role):
    source, target, _ = source_and_target
    client.force_login(MembershipFactory(project=target, role=role).user)

    response = _post(client, target, "csti-csv", _csv(source), "records.csv")

    assert response.status_code == 403
    assert not DmpRecord.objects.filter(project=target).exists()
