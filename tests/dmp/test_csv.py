import codecs
import csv
import io

import openpyxl
import pytest
from django.core.management import call_command

from accounts.models import Project, Role
from core.vocabularies import DATA_TYPES, Tier
from dmp.common_metadata import csv_headers
from dmp.exports import csv_parse, csv_rows, moonshot_xlsx
from dmp.models import DmpRecord
from dmp.records_import import ImportRefused, records_import
from repository.demo import DEMO_GRANT_NUMBER
from tests.dmp.complete_records import complete_record
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def export(records, language: str) -> bytes:
    return b"".join(csv_rows(records, language))


def read_back(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.fixture
def demo_project():
    call_command("kura_demo", stdout=io.StringIO())
    return Project.objects.get(japan_grant_number=DEMO_GRANT_NUMBER)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_demo_csv_has_the_30_headers_and_every_record_in_its_columns(demo_project, language):
    records = DmpRecord.objects.filter(project=demo_project)
    data = export(records, language)

    assert data.startswith(codecs.BOM_UTF8)
    rows = read_back(data)
    assert rows[0] == csv_headers(language)
    assert all(len(row) == 30 for row in rows)
    assert [row[5] for row in rows[1:]] == ["D-001", "D-002", "D-003", "D-004", "D-005"]
    for row, record in zip(rows[1:], records.order_by("data_number"), strict=True):
        assert row[6] == getattr(record, f"title_{language}")
        assert row[8] == getattr(record, f"description_{language}")
        assert row[3] == DEMO_GRANT_NUMBER
        assert row[1] == "MJMS"
        assert row[4] == getattr(demo_project, f"name_{language}")
        assert row[2] == getattr(demo_project, f"program_name_{language}")
    for row, record in zip(rows[1:], records.order_by("data_number"), strict=True):
        assert row[10] == DATA_TYPES[record.data_type].label(language)
        assert row[13] == record.data_policy_license
        assert row[19] == ";".join(
            getattr(c, f"name_{language}") or c.name for c in record.creators.all()
        )
        assert row[20] == (
            ";".join(c.erad_researcher_number for c in record.creators.all())
            if any(c.erad_researcher_number for c in record.creators.all())
            else ""
        )
        assert row[23] == getattr(record, f"data_man_name_{language}")
        assert row[28] == record.data_man_email
    first, embargoed = rows[1], rows[2]
    if language == "ja":
        assert first[0] == "国立研究開発法人科学技術振興機構"
        assert first[9] == "ライフサイエンス"  # the project's field: the records defer to it
        assert (first[15], embargoed[15]) == ("公開", "公開期間猶予")
    else:
        assert first[0] == "Japan Science and Technology Agency"
        assert first[9] == "Life Science"
        assert (first[15], embargoed[15]) == ("open access", "embargoed access")
    embargo = DmpRecord.objects.get(project=demo_project, data_number="D-002").available_date
    assert embargoed[16] == embargo.isoformat()
    assert first[16] == ""


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "ja",
            {
                "データの名称": "データ7の名称",
                "データの分野": "情報通信",
                "データ種別": "実験データ",
                "管理対象データの利活用・提供方針 (有償/無償)": "無償",
                "管理対象データの利活用・提供方針(ライセンス)": "CCBY",
                "アクセス権": "公開期間猶予",
                "公開予定日 (公開期間猶予の場合)": "2030-01-15",
                "データ作成者": "山田 花子;鈴木 陽菜",
                "データ作成者の研究者番号": "70312345;",
                "データ管理者": "佐藤 健",
                "データ管理者の研究者番号": "40598761",
                "データ管理機関": "国立研究開発法人 蔵研究所",
                "掲載日・掲載更新日": "2025-04-08",
                "備考": "備考なし",
            },
        ),
        (
            "en",
            {
                "Title": "Dataset 7",
                "Research field": "Informatics",
                "Data type": "experimental data",
                "Data utilization and provision policy(Free/Consideration)": "free",
                "Data utilization and provision policy(License)": "CCBY",
                "Access rights": "embargoed access",
                "Publication date (for embargoed access)": "2030-01-15",
                "Creator Name": "Hanako Yamada;Hina Suzuki",
                "Creator name identifier (e-Rad)": "70312345;",
                "Data manager": "Ken Sato",
                "Contact mail address of data manager": "data@kura.example.jp",
                "Remarks": "No remarks",
            },
        ),
    ],
)
def test_a_complete_record_fills_every_column(language, expected):
    project = ProjectFactory()
    complete_record(project, 7, access_rights=Tier.EMBARGOED)
    rows = read_back(export(DmpRecord.objects.filter(project=project), language))
    row = dict(zip(rows[0], rows[1], strict=True))
    assert {header: row[header] for header in expected} == expected


def _copy_project(project: Project) -> Project:
    """An empty project with the same project-level items (the Japan Grant Number is
    unique, so both have none)."""
    return ProjectFactory(
        institution=project.institution,
        name_ja=project.name_ja,
        name_en=project.name_en,
        funder=project.funder,
        funding_stream_code=project.funding_stream_code,
        program_name_ja=project.program_name_ja,
        program_name_en=project.program_name_en,
        japan_grant_number="",
        research_field=project.research_field,
    )


@pytest.mark.parametrize("language", ["ja", "en"])
def test_export_import_export_gives_the_same_file(language):
    source = ProjectFactory(funding_stream_code="MJMS", program_name_ja="目標2")
    complete_record(source, 1)
    complete_record(source, 2, access_rights=Tier.EMBARGOED, data_research_field="project")
    complete_record(source, 3, creators=[], data_policy_free="consideration", remarks_en="")
    complete_record(
        source,
        4,
        data_man_type="organization",
        data_man_number="",
        data_man_name_ja="",
        data_man_name_en="",
        access_rights=Tier.NON_SHARED,
        data_policy_license="OTHER",
    )
    first = export(DmpRecord.objects.filter(project=source), language)

    target = _copy_project(source)
    pm = MembershipFactory(project=target, role=Role.PM).user
    imported = records_import(actor=pm, project=target, rows=csv_parse(first))
    assert len(imported) == 4

    second = export(DmpRecord.objects.filter(project=target), language)
    assert second == first
    assert DmpRecord.objects.get(project=target, data_number="D-001").creators.count() == 2


def test_the_export_asks_a_fixed_number_of_queries(django_assert_max_num_queries):
    project = ProjectFactory()
    for number in range(1, 21):
        complete_record(project, number)
    with django_assert_max_num_queries(3):
        rows = read_back(export(DmpRecord.objects.filter(project=project), "en"))
    assert len(rows) == 21


def test_labels_of_either_language_and_codes_are_read_back_as_codes():
    rows = [
        csv_headers("ja"),
        [
            "",
            "",
            "",
            "",
            "",
            "D-1",
            "名称",
            "2025-01-01",
            "説明",
            "Informatics",
            "dataset",
            "",
            "fee-based",
            "CC BY 4.0",
            "",
            "embargoed",
            "2030-01-01",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ],
    ]
    text = "".join(",".join(row) + "\r\n" for row in rows)
    [row] = csv_parse(text.encode("utf-8"))
    assert row["data_research_field"] == "289"
    assert row["data_type"] == "dataset"
    assert row["data_policy_free"] == "consideration"
    assert row["data_policy_license"] == "CCBY"
    assert row["access_rights"] == "embargoed"
    assert row["available_date"] == "2030-01-01"
    assert row["title_ja"] == "名称"
    assert "title_en" not in row
    assert row["data_man_type"] == "organization"
    assert row["creators"] == []


def test_the_values_language_can_differ_from_the_headers():
    text = ",".join(csv_headers("en")) + "\n" + ",".join(["x"] * 30) + "\n"
    [row] = csv_parse(io.BytesIO(text.encode()), language="ja")
    assert row["title_ja"] == "x"
    assert "title_en" not in row


def test_wrong_headers_and_row_lengths_are_all_reported():
    headers = csv_headers("en")
    headers[6] = "Name of the data"  # unknown, and so Title is missing
    headers[8] = "Title"
    headers[10] = "Title"  # twice
    text = ",".join(headers) + "\n"
    with pytest.raises(ImportRefused) as refused:
        csv_parse(text.encode())
    problems = {(p.field, p.message) for p in refused.value.problems}
    assert ("Name of the data", "Unknown column.") in problems
    assert ("Title", "This column appears twice.") in problems
    assert ("Description", "This column is missing.") in problems
    assert ("Data type", "This column is missing.") in problems
    assert all(p.row is None for p in refused.value.problems)

    good = ",".join(csv_headers("en")) + "\n"
    with pytest.raises(ImportRefused) as refused:
        csv_parse((good + ",".join(["a"] * 29) + "\n\n" + ",".join(["a"] * 31) + "\n").encode())
    assert [(p.row, p.value) for p in refused.value.problems] == [(1, "29"), (3, "31")]


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "The file is empty."), ("データ".encode("shift_jis"), "The file is not UTF-8")],
)
def test_empty_or_non_utf8_files_are_refused(data, message):
    with pytest.raises(ImportRefused) as refused:
        csv_parse(data)
    assert refused.value.problems[0].message.startswith(message)


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_moonshot_table_has_one_row_per_record(demo_project, language):
    project = ProjectFactory()
    complete_record(project, 1)
    complete_record(project, 2, access_rights=Tier.SHARED, remarks_ja="=SUM(A1)")
    with moonshot_xlsx(DmpRecord.objects.filter(project=project), language) as file:
        sheet = openpyxl.load_workbook(file).active
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    if language == "ja":
        assert rows[0][:4] == ["ムーンショット目標", "データNo", "データの名称", "データの説明"]
        assert rows[1][1:3] == ["D-001", "データ1の名称"]
        assert rows[1][4] == "佐藤 健 (国立研究開発法人 蔵研究所)"
        assert rows[1][7] == "公開"
        assert rows[2][7] == "共有"
        assert rows[1][8] == "無償\nCCBY\n山田 (2025) を引用すること"
        assert rows[2][9] == "=SUM(A1)"  # text, not a formula
    else:
        assert rows[0][:4] == ["Moonshot goal", "Data No.", "Data title", "Description"]
        assert rows[1][:3] == ["Moonshot Goal 2", "D-001", "Dataset 1"]
        assert rows[1][5] == (
            "Data Office, Kura Research Institute\n1-1 Chiyoda, Tokyo\n03-1234-5678\n"
            "data@kura.example.jp"
        )
        assert rows[1][6] == "Kura repository\nhttps://doi.org/10.1234/kura.1"
    assert len(rows) == 3
    assert all(len(row) == 10 for row in rows)

    demo = DmpRecord.objects.filter(project=demo_project)
    with moonshot_xlsx(demo, language) as file:
        sheet = openpyxl.load_workbook(file).active
        assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
            "D-001",
            "D-002",
            "D-003",
            "D-004",
            "D-005",
        ]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_demo_records_survive_a_round_trip(demo_project, language):
    first = export(DmpRecord.objects.filter(project=demo_project), language)
    target = _copy_project(demo_project)  # its Japan Grant Number must differ: it is unique
    pm = MembershipFactory(project=target, role=Role.PM).user
    records_import(actor=pm, project=target, rows=csv_parse(first))
    second = export(DmpRecord.objects.filter(project=target), language)

    def without_grant_number(data: bytes) -> list[list[str]]:
        return [row[:3] + row[4:] for row in read_back(data)]

    assert without_grant_number(second) == without_grant_number(first)
    assert read_back(second)[1][3] == ""
