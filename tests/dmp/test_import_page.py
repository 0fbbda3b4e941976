"""Importing records from the DMP page: all or nothing, every problem shown."""

import json
from pathlib import Path

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
    if fmt == "madmp-json":
        # A review of what would be written first; nothing is written before the confirmation.
        assert response.status_code == 200
        assert not target.records.exists()
        token = response.context["form"]["token"].value()
        response = client.post(f"/projects/{target.pk}/dmp/import/", {"token": token})

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


EXAMPLE_9 = Path(__file__).resolve().parent / "madmp_examples" / "ex9-dmp-long.json"


@pytest.fixture
def target(source_and_target):
    return source_and_target[1], source_and_target[2]


def _review(client, project):
    response = _post(client, project, "madmp-json", EXAMPLE_9.read_bytes(), "dmp.json")
    assert response.status_code == 200
    return response, response.context["form"]["token"].value()


ANSWERS = {
    "answer_data_policy_free": "free",
    "answer_data_policy_license": "CCBY",
    "answer_repo_information": "Kura",
    "answer_data_man_number": "12345678",
}


def test_the_review_says_where_every_value_comes_from_and_writes_nothing(client, target):
    project, pm = target
    client.force_login(pm)

    response, _token = _review(client, project)

    html = response.content.decode()
    review = response.context["review"]
    assert [d.datasets for d in review.duplicates] == [(1, 2, 3)]
    assert "dmp.contributor[1].name" in html  # the data manager, from a contributor's role
    assert "Robert Lewandowski" in html
    assert "the project&#x27;s institution" in html or "the project's institution" in html
    assert "“Source code” is not one of Kura&#x27;s data types" in html
    assert {q.name for q in review.questions} == {
        "data_man_number",
        "data_policy_free",
        "data_policy_license",
        "repo_information",
    }
    assert not DmpRecord.objects.filter(project=project).exists()


def test_the_review_says_an_unknown_personal_data_state_keeps_the_files_closed(client, target):
    project, pm = target
    client.force_login(pm)
    example = EXAMPLE_9.with_name("ex1-header-fundedProject.json")  # personal_data "unknown"

    response = _post(client, project, "madmp-json", example.read_bytes(), "dmp.json")
    known = _post(client, project, "madmp-json", EXAMPLE_9.read_bytes(), "dmp.json")

    assert response.status_code == 200
    notes = response.content.decode().split('id="import-notes"')[1].split("</section>")[0]
    assert "dmp.dataset[0].personal_data is “unknown”" in notes
    assert "blocks opening its files beyond the project" in notes
    assert "personal_data is" not in known.content.decode()  # "no" and "yes" need no note


def test_confirming_without_the_answers_is_refused_and_writes_nothing(client, target):
    project, pm = target
    client.force_login(pm)
    _response, token = _review(client, project)

    response = client.post(f"/projects/{project.pk}/dmp/import/", {"token": token})

    assert response.status_code == 400
    assert "answer_data_policy_license" in response.context["form"].errors
    assert not DmpRecord.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("choice", "numbers"),
    [
        ("separate", ["0000/00.00000", "0000/00.00000-2", "0000/00.00000-3"]),
        ("skip", ["0000/00.00000"]),
    ],
)
def test_confirming_imports_with_the_answers_and_the_duplicates_choice(
    client, target, choice, numbers
):
    project, pm = target
    client.force_login(pm)
    _response, token = _review(client, project)

    response = client.post(
        f"/projects/{project.pk}/dmp/import/", {"token": token, "duplicates": choice, **ANSWERS}
    )

    assert response.status_code == 302
    records = DmpRecord.objects.filter(project=project).order_by("data_number")
    assert [r.data_number for r in records] == numbers
    first = records[0]
    assert (first.data_policy_license, first.data_man_number) == ("MIT", "12345678")
    assert first.data_man_email == "robert@bayern.de"
    # The pending import is gone: the same confirmation cannot import twice.
    again = client.post(
        f"/projects/{project.pk}/dmp/import/", {"token": token, "duplicates": choice, **ANSWERS}
    )
    assert again.status_code == 400
    assert DmpRecord.objects.filter(project=project).count() == len(numbers)


def test_the_confirmation_checks_everything_again(client, target):
    project, pm = target
    client.force_login(pm)
    _response, token = _review(client, project)
    # Meanwhile someone declares a record with the Data No. of the first dataset.
    complete_record(project, 7, data_number="0000/00.00000")

    response = client.post(
        f"/projects/{project.pk}/dmp/import/", {"token": token, "duplicates": "skip", **ANSWERS}
    )

    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    assert DmpRecord.objects.filter(project=project).count() == 1


def test_an_unknown_or_stale_token_is_refused(client, target):
    project, pm = target
    client.force_login(pm)
    _review(client, project)

    response = client.post(
        f"/projects/{project.pk}/dmp/import/", {"token": "forged", "duplicates": "skip", **ANSWERS}
    )

    assert response.status_code == 400
    assert "no longer pending" in response.content.decode()
    assert not DmpRecord.objects.filter(project=project).exists()


def test_the_dmp_page_shows_the_imported_project_level_parts(client, target):
    project, pm = target
    client.force_login(pm)
    _response, token = _review(client, project)
    client.post(
        f"/projects/{project.pk}/dmp/import/", {"token": token, "duplicates": "skip", **ANSWERS}
    )

    response = client.get(f"/projects/{project.pk}/dmp/")

    parts = {part.source: part.value for part in response.context["imported_parts"]}
    assert parts["dmp.contact"].startswith("John Smith <john.smith@tuwien.ac.at>")
    assert "Robert Lewandowski (ContactPerson, DataManager)" in parts["dmp.contributor"]
    assert "EO-2-2017 (other)" in parts["dmp.project"]  # the grant id
    assert "Ethical issues are handled by" in response.content.decode()


# A NUL (\u0000, valid JSON) is refused by PostgreSQL's text and jsonb: the review says so.
def test_a_madmp_value_with_a_nul_is_refused_not_a_server_error(client, source_and_target):
    source, target, pm = source_and_target
    document = madmp_export(project=source)
    document["dmp"]["dataset"][0]["title"] = "Soil\u0000data"
    content = json.dumps(document).encode()
    client.raise_request_exception = False
    client.force_login(pm)

    response = _post(client, target, "madmp-json", content, "dmp.json")
    if response.status_code == 200:  # the review; confirm it
        token = response.context["form"]["token"].value()
        response = client.post(f"/projects/{target.pk}/dmp/import/", {"token": token})

    assert response.status_code == 400, response.status_code
    assert not DmpRecord.objects.filter(project=target).exists()
