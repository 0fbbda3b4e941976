"""RDA maDMP 1.2 export and import (dmp/madmp.py) against the shipped official schema."""

import copy
import datetime
import hashlib
import io
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command

from accounts.models import Institution, Project, Role
from core.vocabularies import DataManagerType, Tier
from dmp.madmp import SCHEMA_PATH, MadmpExportError, madmp_export, madmp_validation_errors
from dmp.madmp_import import madmp_import, madmp_import_review
from dmp.models import DataManagementPlan, DmpRecord, RecordCreator
from dmp.records_import import ImportRefused
from repository.demo import DEMO_GRANT_NUMBER
from tests.dmp.complete_records import complete_record
from tests.factories import InstitutionFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

BASE_URL = "https://kura.example.jp"
ROR = "https://ror.org/0abcdef12"
# These describe the plan in one Kura (its page, when it was made and changed).
PER_INSTANCE = ("created", "modified", "dmp_id")
PROJECT_FIELDS = {
    "name_ja": "環境曝露と代謝疾患",
    "name_en": "Environmental exposure and metabolic disease",
    "funder": "JST",
    "funding_stream_code": "MJMS",
    "program_name_ja": "ムーンショット型研究開発事業",
    "program_name_en": "Moonshot Research and Development Program",
    "research_field": "189",
}
PLAN_FIELDS = {
    "title": "データマネジメントプラン",
    "data_produced": "画像と測定値",
    "storage_and_preservation": "Kura に 10 年間保存する",
    "publication_policy": "論文公開後に公開する",
    "restriction_reasons": "個人情報",
    "management_roles": "PM とデータ管理者",
}


def _project(grant_number: str, pm, data_manager) -> Project:
    institution = Institution.objects.filter(ror_id=ROR).first() or InstitutionFactory(ror_id=ROR)
    project = ProjectFactory(
        institution=institution, japan_grant_number=grant_number, **PROJECT_FIELDS
    )
    MembershipFactory(project=project, user=pm, role=Role.PM)
    MembershipFactory(project=project, user=data_manager, role=Role.DATA_MANAGER)
    DataManagementPlan.objects.create(project=project, **PLAN_FIELDS)
    return project


@pytest.fixture
def pm():
    return UserFactory(
        username="pm",
        email="pm@kura.example.jp",
        name_ja="山田 花子",
        name_en="Hanako Yamada",
        erad_researcher_number="70312345",
    )


@pytest.fixture
def data_manager():
    return UserFactory(
        username="dm", email="dm@kura.example.jp", name_en="Ken Sato", orcid="0000-0002-1825-0097"
    )


@pytest.fixture
def full_project(pm, data_manager) -> Project:
    """Records in every tier, with a DOI, a landing page and no link, personal data, an
    organisation as data manager and a licence without a URL."""
    project = _project("JPMJMS0001", pm, data_manager)
    complete_record(project, 1)
    complete_record(
        project,
        2,
        access_rights=Tier.EMBARGOED,
        available_date=datetime.date(2031, 3, 1),
        data_policy_license="CC0",
    )
    complete_record(
        project,
        3,
        access_rights=Tier.SHARED,
        repo_url_doi_link="https://repo.example.jp/records/3",
        contains_personal_data=True,
        anonymisation_attested=True,
        metadata_access="open",
    )
    complete_record(
        project,
        4,
        creators=[],
        access_rights=Tier.NON_SHARED,
        repo_url_doi_link="",
        data_policy_license="NO_LICENSE",
        data_man_type=DataManagerType.ORGANIZATION,
        data_man_number="",
        data_man_name_ja="",
        data_man_name_en="",
        title_en="",
        remarks_ja="",
    )
    return project


RECORD_FIELDS = [
    f.name
    for f in DmpRecord._meta.concrete_fields
    if f.name
    not in ("id", "project", "created_at", "updated_at", "harvest_changed_at", "madmp_extension")
]


def _record_state(project: Project) -> list[dict]:
    """Every field of every record (but the bookkeeping), with its creators."""
    return [
        {
            **{name: getattr(record, name) for name in RECORD_FIELDS},
            "creators": list(
                record.creators.order_by("position").values(
                    "erad_researcher_number",
                    "name_ja",
                    "name_en",
                    "affiliation_ja",
                    "affiliation_en",
                )
            ),
        }
        for record in project.records.order_by("data_number")
    ]


def _without_per_instance(document: dict) -> dict:
    stripped = copy.deepcopy(document)
    for key in PER_INSTANCE:
        stripped["dmp"].pop(key)
    return stripped


def _counts() -> tuple[int, int]:
    return DmpRecord.objects.count(), RecordCreator.objects.count()


# --- Export ----------------------------------------------------------------------------


def test_shipped_schema_is_the_unchanged_official_copy():
    digest = hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()

    assert digest == "474211028a990f57d079f1b5f74bc3addc1d14c28dfd4c4a6e18ff8a81fcf77a"
    assert SCHEMA_PATH.parent.name == "schemas" and SCHEMA_PATH.parent.parent.name == "dmp"


def test_demo_project_export_validates_against_the_schema():
    call_command("kura_demo", stdout=io.StringIO())
    project = Project.objects.get(japan_grant_number=DEMO_GRANT_NUMBER)

    document = madmp_export(project=project, base_url=BASE_URL)

    assert madmp_validation_errors(document) == []
    dmp = document["dmp"]
    assert [d["dataset_id"] for d in dmp["dataset"]] == [
        {"identifier": f"D-00{n}", "type": "other"} for n in range(1, 6)
    ]
    assert [d["distribution"][0]["data_access"] for d in dmp["dataset"]] == [
        "open",
        "open",
        "shared",
        "shared",
        "closed",
    ]
    assert dmp["ethical_issues_exist"] == "yes"  # D-004 and D-005 hold personal data
    assert dmp["contact"] == {
        "name": "山田 花子",
        "mbox": "pm@example.org",
        "contact_id": {"identifier": "70312345", "type": "other"},
    }
    assert dmp["contributor"][0]["role"] == ["DataManager"]
    assert dmp["contributor"][0]["affiliation"][0]["affiliation_id"] == {
        "identifier": "https://ror.org/0abcdef12",
        "type": "ror",
    }
    assert dmp["project"][0]["funding"] == [
        {
            "funder_id": {"identifier": "1020", "type": "other"},
            "funding_status": "granted",
            "grant_id": {"identifier": DEMO_GRANT_NUMBER, "type": "other"},
        }
    ]
    assert dmp["dmp_id"]["type"] == "url"
    assert dmp["dmp_id"]["identifier"].startswith(f"{BASE_URL}/projects/{project.pk}/")


def test_dropping_the_title_fails_validation(full_project):
    """Negative control: the validator does reject a broken document."""
    document = madmp_export(project=full_project, base_url=BASE_URL)
    del document["dmp"]["title"]

    assert [path for path, _message in madmp_validation_errors(document)] == ["dmp.title"]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("created",), "25 November 2026"),
        (("contact", "mbox"), "not an e-mail address"),
        (("dataset", 0, "issued"), "2025-13-01"),
    ],
)
def test_formats_are_checked(full_project, path, value):
    """The date-time, e-mail and date formats are enforced, not only the structure."""
    document = madmp_export(project=full_project, base_url=BASE_URL)
    target = document["dmp"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    assert [p for p, _message in madmp_validation_errors(document)] == [
        "dmp." + ".".join(str(k) for k in path).replace(".0.", "[0].")
    ]


def test_export_maps_access_licence_and_identifiers(full_project):
    document = madmp_export(project=full_project, base_url=BASE_URL)

    assert madmp_validation_errors(document) == []
    doi, embargoed, shared, closed = document["dmp"]["dataset"]
    assert doi["dataset_id"] == {"identifier": "10.1234/kura.1", "type": "doi"}
    assert doi["alternate_identifier"] == [{"identifier": "D-001", "type": "other"}]
    assert doi["distribution"][0]["license"] == [
        {"license_ref": "https://creativecommons.org/licenses/by/4.0/", "start_date": "2025-04-02"}
    ]
    assert embargoed["distribution"][0]["data_access"] == "open"
    assert embargoed["distribution"][0]["license"][0]["start_date"] == "2031-03-01"
    assert shared["dataset_id"] == {
        "identifier": "https://repo.example.jp/records/3",
        "type": "url",
    }
    assert shared["distribution"][0]["host"] == {
        "title": "蔵リポジトリ",
        "url": "https://repo.example.jp/",
    }
    assert shared["personal_data"] == "yes"
    assert closed["dataset_id"] == {"identifier": "D-004", "type": "other"}
    assert closed["distribution"][0] == {"title": "データ4の名称", "data_access": "closed"}
    assert document["dmp"]["ethical_issues_exist"] == "yes"


# --- Round trip ------------------------------------------------------------------------


def test_export_import_export_is_identical(full_project, pm, data_manager):
    exported = madmp_export(project=full_project, base_url=BASE_URL)
    source_state = _record_state(full_project)
    # Grant numbers are unique: the copy takes the number over from the original.
    Project.objects.filter(pk=full_project.pk).update(japan_grant_number="JPMJMS0001-old")
    empty = _project("JPMJMS0001", pm, data_manager)

    records = madmp_import(
        actor=pm, project=empty, document=json.dumps(exported, ensure_ascii=False).encode()
    )

    assert len(records) == 4
    assert _record_state(empty) == source_state
    again = madmp_export(project=empty, base_url=BASE_URL)
    # Nothing changed since the import: the document comes back as it came, its dmp_id
    # and times included.
    assert again == exported


# --- Refused imports -------------------------------------------------------------------


def _broken_json(document: dict) -> bytes:
    return json.dumps(document).encode()[:-7]


def _schema_violations(document: dict) -> dict:
    datasets = document["dmp"]["dataset"]
    del datasets[2]["title"]
    datasets[0]["personal_data"] = "maybe"
    datasets[1]["x_kura"]["colour"] = "blue"
    return document


def _unknown_vocabulary(document: dict) -> dict:
    document["dmp"]["dataset"][1]["x_kura"]["data_policy_free"] = "gratis"
    document["dmp"]["dataset"][3]["x_kura"]["access_rights"] = "secret"
    return document


def _duplicate_data_number(document: dict) -> dict:
    document["dmp"]["dataset"][3]["dataset_id"]["identifier"] = "D-001"
    return document


def _missing_required_item(document: dict) -> dict:
    # Nothing in the document or the project gives a description or a licence, and no
    # answer is given for them.
    extension = document["dmp"]["dataset"][2]["x_kura"]
    extension["description_ja"] = extension["description_en"] = ""
    del document["dmp"]["dataset"][2]["description"]
    extension = document["dmp"]["dataset"][0]["x_kura"]
    extension["data_policy_license"] = ""
    del document["dmp"]["dataset"][0]["distribution"][0]["license"]
    return document


def _contradiction(document: dict) -> dict:
    document["dmp"]["dataset"][0]["distribution"][0]["data_access"] = "closed"
    return document


REFUSALS = {
    "broken JSON": (_broken_json, [(None, "")]),
    "schema violations": (
        _schema_violations,
        [
            (1, "dmp.dataset[0].personal_data"),
            (2, "dmp.dataset[1].x_kura.colour"),
            (3, "dmp.dataset[2].title"),
        ],
    ),
    "unknown vocabulary values": (
        _unknown_vocabulary,
        [
            (2, "dmp.dataset[1].x_kura.data_policy_free"),
            (4, "dmp.dataset[3].x_kura.access_rights"),
        ],
    ),
    "data_access contradicts access_rights": (
        _contradiction,
        [(1, "dmp.dataset[0].distribution[0].data_access")],
    ),
    # Without the person's choice (separate records or skip the repeats).
    "duplicate Data No.": (
        _duplicate_data_number,
        [(4, "dmp.dataset[3].dataset_id")],
    ),
    "missing required items": (
        _missing_required_item,
        [
            (1, "dmp.dataset[0].x_kura.data_policy_license"),
            (3, "dmp.dataset[2].x_kura.description_ja"),
        ],
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_import_is_refused_with_every_problem_and_changes_nothing(
    case, full_project, pm, data_manager
):
    break_document, expected = REFUSALS[case]
    document = break_document(madmp_export(project=full_project, base_url=BASE_URL))
    payload = document if isinstance(document, bytes) else json.dumps(document)
    empty = _project("", pm, data_manager)
    before = _counts()

    with pytest.raises(ImportRefused) as refused:
        madmp_import(actor=pm, project=empty, document=payload)

    problems = refused.value.problems
    assert [(p.row, p.field) for p in problems] == expected
    assert all(p.message for p in problems)
    assert _counts() == before


def test_duplicate_of_an_existing_record_is_refused(full_project, pm):
    document = madmp_export(project=full_project, base_url=BASE_URL)
    before = _counts()

    with pytest.raises(ImportRefused) as refused:
        madmp_import(actor=pm, project=full_project, document=json.dumps(document))

    assert [(p.row, p.field, p.value) for p in refused.value.problems] == [
        (1, "dmp.dataset[0].alternate_identifier", "D-001"),
        (2, "dmp.dataset[1].alternate_identifier", "D-002"),
        (3, "dmp.dataset[2].alternate_identifier", "D-003"),
        (4, "dmp.dataset[3].dataset_id.identifier", "D-004"),
    ]
    assert _counts() == before


def test_broken_json_names_the_line():
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user

    with pytest.raises(ImportRefused) as refused:
        madmp_import(actor=pm, project=project, document=b'{"dmp": {"title": "x",}}')

    (problem,) = refused.value.problems
    assert problem.row is None
    assert "line 1" in problem.message


def test_only_stewards_import(full_project, data_manager):
    document = json.dumps(madmp_export(project=full_project, base_url=BASE_URL))
    empty = ProjectFactory()
    researcher = MembershipFactory(project=empty, role=Role.RESEARCHER).user

    with pytest.raises(PermissionDenied):
        madmp_import(actor=researcher, project=empty, document=document)

    assert not empty.records.exists()


def test_export_needs_a_contact_with_an_email_address():
    project = ProjectFactory()
    MembershipFactory(project=project, role=Role.PM, user=UserFactory(email=""))

    with pytest.raises(MadmpExportError):
        madmp_export(project=project, base_url=BASE_URL)


FOREIGN_DOCUMENT = {
    "dmp": {
        "title": "Embargo DMP",
        "created": "2018-07-23T10:10:23.6Z",
        "modified": "2019-02-22T15:10:56.9Z",
        "contact": {
            "mbox": "tmiksa@example.org",
            "name": "Tomasz Miksa",
            "contact_id": {"identifier": "0000-0000-0000-0000", "type": "orcid"},
        },
        "language": "eng",
        "ethical_issues_exist": "no",
        "dmp_id": {"identifier": "10.0000/00.0.1234", "type": "doi"},
        "dataset": [
            {
                "title": "Cool data",
                "description": "Data which shows...",
                "dataset_id": {"identifier": "10.5281/zenodo.1200361", "type": "doi"},
                "type": "experimental data",
                "issued": "2019-06-30",
                "personal_data": "no",
                "sensitive_data": "unknown",
                "creator": [
                    {
                        "name": "Tomasz Miksa",
                        "creator_id": {"identifier": "12345678", "type": "other"},
                    }
                ],
                "distribution": [
                    {
                        "title": "Raw data",
                        "data_access": "open",
                        "host": {"title": "Zenodo", "url": "https://zenodo.org/"},
                        "license": [
                            {
                                "license_ref": "https://creativecommons.org/licenses/by/4.0/",
                                "start_date": "2099-06-30",
                            }
                        ],
                    }
                ],
                # Only what maDMP has no place for.
                "x_kura": {
                    "data_research_field": "289",
                    "data_policy_free": "free",
                    "data_policy_cite_en": "Cite Miksa (2019).",
                    "hosting_inst_en": "TU Wien",
                    "data_man_type": "organization",
                    "data_man_email": "data@example.org",
                },
            }
        ],
    }
}


def test_a_document_written_elsewhere_is_read_from_its_standard_properties(pm, data_manager):
    project = _project("", pm, data_manager)

    (record,) = madmp_import(actor=pm, project=project, document=json.dumps(FOREIGN_DOCUMENT))

    record.refresh_from_db()
    assert (record.data_number, record.repo_url_doi_link) == (
        "10.5281/zenodo.1200361",
        "https://doi.org/10.5281/zenodo.1200361",
    )
    assert (record.title_en, record.title_ja, record.description_en) == (
        "Cool data",
        "",
        "Data which shows...",
    )
    assert (record.access_rights, record.available_date) == (
        Tier.EMBARGOED,
        datetime.date(2099, 6, 30),
    )
    assert (record.data_policy_license, record.repo_information_en) == ("CCBY", "Zenodo")
    assert list(record.creators.values_list("name_en", "erad_researcher_number")) == [
        ("Tomasz Miksa", "12345678")
    ]


@pytest.mark.parametrize(
    ("dataset_type", "data_type", "licence", "code"),
    [
        ("audio", "recorded data", "http://creativecommons.org/licenses/by-nc/3.0/", "CCBYNC"),
        ("Interview transcripts", "survey data", "https://spdx.org/licenses/GPL-3.0-only", "GPL3"),
        ("software", "dataset", "http://opensource.org/licenses/mit-license.php", "MIT"),
        ("Experimental data", "experimental data", "https://example.org/our-terms", "OTHER"),
    ],
)
def test_a_value_outside_kuras_vocabularies_maps_to_the_nearest_term_and_comes_back(
    pm, data_manager, dataset_type, data_type, licence, code
):
    document = copy.deepcopy(FOREIGN_DOCUMENT)
    dataset = document["dmp"]["dataset"][0]
    dataset["type"] = dataset_type
    dataset["distribution"][0]["license"][0]["license_ref"] = licence
    project = _project("", pm, data_manager)

    review = madmp_import_review(actor=pm, project=project, document=json.dumps(document))
    (record,) = madmp_import(actor=pm, project=project, document=json.dumps(document))

    record.refresh_from_db()
    assert (record.data_type, record.data_policy_license) == (data_type, code)
    assert f"“{dataset_type}” is not one of Kura's data types" in " ".join(review.notes)
    assert f"“{licence}” is not one of Kura's licences" in " ".join(review.notes)
    (exported,) = madmp_export(project=project)["dmp"]["dataset"]
    assert exported["type"] == dataset_type
    assert exported["distribution"][0]["license"][0]["license_ref"] == licence


def test_problems_in_a_document_written_elsewhere_point_where_to_add_the_item(pm, data_manager):
    document = copy.deepcopy(FOREIGN_DOCUMENT)
    del document["dmp"]["dataset"][0]["x_kura"]["data_policy_free"]
    del document["dmp"]["dataset"][0]["description"]
    project = _project("", pm, data_manager)

    with pytest.raises(ImportRefused) as refused:
        madmp_import(actor=pm, project=project, document=json.dumps(document))

    # Free or fee-based, missing from x_kura, follows from the open licence; the
    # description, which nothing gives and nobody answered, is added to the dataset.
    assert [(p.row, p.field) for p in refused.value.problems] == [(1, "dmp.dataset[0].description")]
    assert "give it on the review page" in refused.value.problems[0].message


def test_export_queries_do_not_grow_with_records(full_project, django_assert_max_num_queries):
    for number in range(5, 25):
        complete_record(full_project, number)
    full_project = Project.objects.get(pk=full_project.pk)

    with django_assert_max_num_queries(7):
        document = madmp_export(project=full_project, base_url=BASE_URL)

    assert len(document["dmp"]["dataset"]) == 24
