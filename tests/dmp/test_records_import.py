import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import translation

from accounts.models import Role
from core.vocabularies import Tier
from dmp.common_metadata import csv_headers
from dmp.exports import csv_parse, csv_rows
from dmp.models import DmpRecord, RecordCreator
from dmp.records_import import ImportProblem, ImportRefused, records_import
from tests.dmp.complete_records import CREATORS, complete_fields, complete_record
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pm():
    return MembershipFactory(role=Role.PM).user


def counts() -> tuple[int, int]:
    return DmpRecord.objects.count(), RecordCreator.objects.count()


def test_an_import_creates_every_record_and_its_creators(pm):
    project = pm.memberships.get().project
    rows = [
        {**complete_fields(1), "creators": CREATORS},
        complete_fields(2, access_rights=Tier.EMBARGOED, available_date="2031-02-03"),
    ]
    records = records_import(actor=pm, project=project, rows=rows)

    assert [r.data_number for r in records] == ["D-001", "D-002"]
    first = DmpRecord.objects.get(project=project, data_number="D-001")
    assert first.title_ja == "データ1の名称"
    assert first.hosting_inst_id == "https://ror.org/0abcdef12"
    assert [c.name_en for c in first.creators.order_by("position")] == [
        "Hanako Yamada",
        "Hina Suzuki",
    ]
    second = DmpRecord.objects.get(project=project, data_number="D-002")
    assert second.available_date == datetime.date(2031, 2, 3)
    assert second.creators.count() == 0


def test_a_data_manager_may_import():
    member = MembershipFactory(role=Role.DATA_MANAGER)
    records_import(actor=member.user, project=member.project, rows=[complete_fields()])
    assert DmpRecord.objects.filter(project=member.project).count() == 1


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.COLLABORATOR, None])
def test_only_pm_and_data_managers_may_import(role):
    project = ProjectFactory()
    user = MembershipFactory(project=project, role=role).user if role else UserFactory()
    before = counts()
    with pytest.raises(PermissionDenied):
        records_import(actor=user, project=project, rows=[complete_fields()])
    assert counts() == before


def test_a_pm_of_another_project_may_not_import(pm):
    with pytest.raises(PermissionDenied):
        records_import(actor=pm, project=ProjectFactory(), rows=[complete_fields()])


def test_every_problem_of_every_row_is_reported_and_nothing_is_written(pm):
    project = pm.memberships.get().project
    complete_record(project, 9)  # D-009 exists
    before = counts()
    rows = [
        complete_fields(1, data_type="photographs", data_policy_license="WTFPL"),
        complete_fields(2, date_issued_updated="2025-13-01"),
        complete_fields(1),  # D-001 twice
        complete_fields(9),  # D-009 already in the project
        complete_fields(5, title_ja="", title_en="", data_man_email="", data_man_tel=""),
        complete_fields(6, access_rights=Tier.EMBARGOED, available_date=""),
        complete_fields(7, access_rights=Tier.SHARED, available_date="2030-01-01"),
        {
            **complete_fields(8, data_man_number="1234", colour="blue"),
            "creators": [{"name_en": "", "erad_researcher_number": "x", "orcid": "0000"}],
        },
        complete_fields(10),  # fine, but not imported either
    ]
    with pytest.raises(ImportRefused) as refused:
        records_import(actor=pm, project=project, rows=rows)

    problems = {(p.row, p.field) for p in refused.value.problems}
    assert problems == {
        (1, "data_type"),
        (1, "data_policy_license"),
        (2, "date_issued_updated"),
        (3, "data_number"),
        (4, "data_number"),
        (5, "title"),
        (5, "data_man_contact"),
        (6, "available_date"),
        (7, "available_date"),
        (8, "data_man_number"),
        (8, "colour"),
        (8, "creators[0].erad_researcher_number"),
        (8, "creators[0].orcid"),
        (8, "creators[0].name"),
    }
    assert [p.row for p in refused.value.problems] == sorted(p.row for p in refused.value.problems)
    by_key = {(p.row, p.field): p for p in refused.value.problems}
    assert by_key[1, "data_type"].value == "photographs"
    assert by_key[2, "date_issued_updated"].value == "2025-13-01"
    assert "row 1" in by_key[3, "data_number"].message
    assert "already exists" in by_key[4, "data_number"].message
    assert counts() == before


def test_problems_are_explained_in_the_users_language(pm):
    project = pm.memberships.get().project
    with translation.override("ja"), pytest.raises(ImportRefused) as refused:
        records_import(actor=pm, project=project, rows=[complete_fields(data_type="x")])
    assert refused.value.problems == [
        ImportProblem(1, "data_type", "x", refused.value.problems[0].message)
    ]


def test_an_empty_import_is_refused(pm):
    with pytest.raises(ImportRefused) as refused:
        records_import(actor=pm, project=pm.memberships.get().project, rows=[])
    assert refused.value.problems[0].row is None


def test_a_csv_with_several_problems_is_refused_with_all_of_them(pm):
    project = pm.memberships.get().project
    source = ProjectFactory()
    complete_record(source, 1)
    complete_record(source, 2)
    complete_record(source, 3, access_rights=Tier.EMBARGOED)
    lines = b"".join(csv_rows(DmpRecord.objects.filter(project=source), "en")).decode("utf-8-sig")
    header, first, second, third, _end = lines.split("\r\n")
    text = "\r\n".join(
        [
            header,
            first.replace("experimental data", "photographs"),  # unknown data type
            second.replace("2025-04-03", "03/04/2025").replace("Dataset 2", ""),  # date, title
            third.replace("2030-01-15", ""),  # embargoed without a date
            first,  # D-001 again
        ]
    )
    before = counts()
    with pytest.raises(ImportRefused) as refused:
        records_import(actor=pm, project=project, rows=csv_parse(text.encode("utf-8-sig")))
    assert [(p.row, p.field) for p in refused.value.problems] == [
        (1, "data_type"),
        (2, "date_issued_updated"),
        (2, "title"),
        (3, "available_date"),
        (4, "data_number"),
    ]
    assert counts() == before


def test_a_csv_with_wrong_headers_is_refused_before_any_row_is_read(pm):
    text = ",".join(["Funder", *csv_headers("en")[2:], "Colour"]) + "\n" + "x," * 29 + "x\n"
    before = counts()
    with pytest.raises(ImportRefused) as refused:
        csv_parse(text.encode())
    assert {(p.field, p.message) for p in refused.value.problems} == {
        ("Colour", "Unknown column."),
        ("Funding stream code in Japan Grant Number", "This column is missing."),
    }
    assert counts() == before
