import datetime
import random

import pytest
from django.db import connection
from django.db.models import Prefetch
from django.test.utils import CaptureQueriesContext

from core.vocabularies import DataManagerType, Tier
from dmp.common_metadata import (
    CSV_COLUMNS,
    REQUIRED,
    csv_headers,
    incomplete_condition,
    missing_items,
)
from dmp.models import DmpRecord, RecordCreator
from tests.dmp.complete_records import complete_fields, complete_record
from tests.factories import ProjectFactory

HEADERS_JA = [
    "資金配分機関情報",
    "体系的番号におけるプログラム情報コード",
    "プログラム名",
    "体系的番号",
    "プロジェクト名",
    "データNo.",
    "データの名称",
    "掲載日・掲載更新日",
    "データの説明",
    "データの分野",
    "データ種別",
    "概略データ量",
    "管理対象データの利活用・提供方針 (有償/無償)",
    "管理対象データの利活用・提供方針(ライセンス)",
    "管理対象データの利活用・提供方針(引用方法等)",
    "アクセス権",
    "公開予定日 (公開期間猶予の場合)",
    "リポジトリ情報",
    "リポジトリURL・DOIリンク",
    "データ作成者",
    "データ作成者の研究者番号",
    "データ管理機関",
    "データ管理機関コード",
    "データ管理者",
    "データ管理者の研究者番号",
    "データ管理者の所属組織名",
    "データ管理者の所属機関の連絡先住所",
    "データ管理者の所属機関の連絡先電話番号",
    "データ管理者の所属機関の連絡先メールアドレス",
    "備考",
]
HEADERS_EN = [
    "Funder",
    "Funding stream code in Japan Grant Number",
    "Program name",
    "Japan Grant Number",
    "Project name",
    "Data No.",
    "Title",
    "Date (Issued / Updated)",
    "Description",
    "Research field",
    "Data type",
    "File size",
    "Data utilization and provision policy(Free/Consideration)",
    "Data utilization and provision policy(License)",
    "Data utilization and provision policy(citation information)",
    "Access rights",
    "Publication date (for embargoed access)",
    "Repository information",
    "Repository URL/ DOI link",
    "Creator Name",
    "Creator name identifier (e-Rad)",
    "Hosting institution",
    "Hosting institution Identifier",
    "Data manager",
    "Data manager identifier (e-Rad)",
    "Contact organization of data manager",
    "Contact address of data manager",
    "Contact phone number of data manager",
    "Contact mail address of data manager",
    "Remarks",
]


def test_the_csv_has_the_30_columns_of_the_funders_report_in_order():
    assert len(CSV_COLUMNS) == 30
    assert csv_headers("ja") == HEADERS_JA
    assert csv_headers("en") == HEADERS_EN
    assert csv_headers("ja-jp") == HEADERS_JA


def test_a_complete_record_misses_nothing():
    assert missing_items(DmpRecord(**complete_fields())) == []


@pytest.mark.parametrize(
    ("blanked", "item"),
    [
        ({"data_number": ""}, "data_number"),
        ({"title_ja": "", "title_en": ""}, "title"),
        ({"date_issued_updated": None}, "date_issued_updated"),
        ({"description_ja": "", "description_en": ""}, "description"),
        ({"data_type": ""}, "data_type"),
        ({"data_policy_free": ""}, "data_policy_free"),
        ({"data_policy_license": ""}, "data_policy_license"),
        ({"data_policy_cite_ja": "", "data_policy_cite_en": ""}, "data_policy_cite"),
        ({"access_rights": ""}, "access_rights"),
        ({"repo_information_ja": "", "repo_information_en": ""}, "repo_information"),
        ({"hosting_inst_ja": "", "hosting_inst_en": ""}, "hosting_inst"),
        ({"data_man_number": ""}, "data_man_number"),
        ({"data_man_name_ja": "", "data_man_name_en": ""}, "data_man_name"),
        ({"data_man_email": "", "data_man_tel": ""}, "data_man_contact"),
        (
            {"data_man_email": "", "data_man_address_ja": "", "data_man_address_en": ""},
            "data_man_contact",
        ),
    ],
)
def test_each_required_item_is_reported_when_missing(blanked, item):
    assert missing_items(DmpRecord(**complete_fields(**blanked))) == [item]


@pytest.mark.parametrize(
    "blanked",
    [
        {"title_en": ""},
        {"title_ja": ""},
        {"description_ja": "", "data_policy_cite_en": "", "hosting_inst_ja": ""},
        {"data_man_email": ""},  # organisation, address and phone number remain
        {"data_man_org_ja": "", "data_man_org_en": "", "data_man_tel": ""},  # e-mail remains
        {"remarks_ja": "", "remarks_en": "", "file_size": "", "repo_url_doi_link": ""},
    ],
)
def test_one_language_or_one_way_of_contact_is_enough(blanked):
    assert missing_items(DmpRecord(**complete_fields(**blanked))) == []


def test_an_embargo_needs_an_available_date_and_nothing_else_does():
    embargoed = DmpRecord(**complete_fields(access_rights=Tier.EMBARGOED))
    assert missing_items(embargoed) == []
    embargoed.available_date = None
    assert missing_items(embargoed) == ["available_date"]
    for tier in (Tier.PUBLIC, Tier.SHARED, Tier.NON_SHARED):
        assert missing_items(DmpRecord(**complete_fields(access_rights=tier))) == []


def test_an_organisation_as_data_manager_needs_no_name_or_researcher_number():
    record = DmpRecord(
        **complete_fields(
            data_man_type=DataManagerType.ORGANIZATION,
            data_man_number="",
            data_man_name_ja="",
            data_man_name_en="",
        )
    )
    assert missing_items(record) == []
    record.data_man_email = ""
    record.data_man_tel = ""
    assert missing_items(record) == ["data_man_contact"]


def test_the_demo_like_bare_record_lists_every_missing_item_in_report_order():
    record = DmpRecord(data_number="D-1", title_en="Only a title")
    assert missing_items(record) == [
        "date_issued_updated",
        "description",
        "data_policy_free",
        "data_policy_license",
        "data_policy_cite",
        "repo_information",
        "hosting_inst",
        "data_man_number",
        "data_man_name",
        "data_man_contact",
    ]
    assert {r.name for r in REQUIRED} >= set(missing_items(record))


@pytest.mark.django_db
def test_missing_items_asks_the_database_nothing(django_assert_num_queries):
    project = ProjectFactory()
    for number in range(1, 6):
        complete_record(project, number, data_policy_free="" if number % 2 else "free")
    records = list(
        DmpRecord.objects.filter(project=project)
        .select_related("project")
        .prefetch_related(Prefetch("creators", queryset=RecordCreator.objects.all()))
    )
    with django_assert_num_queries(0):
        missing = [missing_items(record) for record in records]
    assert missing == [["data_policy_free"], [], ["data_policy_free"], [], ["data_policy_free"]]


def test_dates_are_compared_as_values_not_truthiness():
    record = DmpRecord(**complete_fields(date_issued_updated=datetime.date(1, 1, 1)))
    assert missing_items(record) == []


# --- The database condition answers as the rules do ------------------------------------------


def _varied_records(project, count: int) -> list[DmpRecord]:
    """Records with a random mix of required fields left blank, people and organisations
    as data managers (within the table's constraints: a title, a data number unique in the
    project, and an available date only and always for embargoed data)."""
    rng = random.Random(20261206)
    fields = sorted(
        {name for requirement in REQUIRED for name in requirement.fields}
        - {"available_date", "title_ja", "title_en", "data_number"}
    )
    records = []
    for number in range(1, count + 1):
        values = complete_fields(number)
        for name in rng.sample(fields, rng.randint(0, 4)):
            values[name] = None if isinstance(values[name], datetime.date) else ""
        values["title_" + rng.choice(["ja", "en"])] = rng.choice(["", "題名"])
        if number == 7:
            values["data_number"] = ""
        values["data_man_type"] = rng.choice(list(DataManagerType))
        values["access_rights"] = rng.choice([Tier.PUBLIC, Tier.EMBARGOED, Tier.SHARED, ""])
        if values["access_rights"] == Tier.EMBARGOED:
            values["available_date"] = datetime.date(2027, 1, 1)
        records.append(DmpRecord(project=project, **values))
    return DmpRecord.objects.bulk_create(records)


@pytest.mark.django_db
def test_the_database_condition_agrees_with_the_rules_record_by_record():
    records = _varied_records(ProjectFactory(), 120)
    incomplete = set(
        DmpRecord.objects.filter(incomplete_condition(DmpRecord)).values_list("pk", flat=True)
    )
    expected = {record.pk for record in records if missing_items(record)}
    assert incomplete == expected
    # Both kinds occur, and each item's own condition agrees too.
    assert 0 < len(expected) < len(records)
    for requirement in REQUIRED:
        met = set(
            DmpRecord.objects.filter(requirement.rule.condition(DmpRecord)).values_list(
                "pk", flat=True
            )
        )
        assert met == {record.pk for record in records if requirement.is_met(record)}, (
            requirement.name
        )


@pytest.mark.django_db
def test_the_rules_read_only_the_columns_they_name():
    """A record loaded with only ``requirement_columns()`` is checked without a query."""
    from dmp.common_metadata import requirement_columns

    records = _varied_records(ProjectFactory(), 20)
    loaded = DmpRecord.objects.only(*requirement_columns()).filter(pk__in=[r.pk for r in records])
    with CaptureQueriesContext(connection) as queries:
        checked = {record.pk: missing_items(record) for record in loaded}
    assert len(queries) == 1  # the records themselves, no deferred field fetched
    assert checked == {record.pk: missing_items(record) for record in records}
