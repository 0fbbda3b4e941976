"""The ten official maDMP 1.2 examples: each imports, and exports again without loss."""

import copy
import hashlib
import json
from pathlib import Path

import pytest

from accounts.models import Role
from dmp import services
from dmp.madmp import madmp_export, madmp_validation_errors
from dmp.madmp_import import DUPLICATES_SEPARATE, madmp_import, madmp_import_review
from dmp.models import DataManagementPlan
from tests.factories import InstitutionFactory, MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

EXAMPLES = Path(__file__).resolve().parent / "madmp_examples"
# The files as published (tag v1.2); see the README beside them.
SHA256 = {
    "ex1-header-fundedProject": "61152cdfc9de285ce2d49c89f0d473a9a402a4a7e761002e4ee82c3ec89fa7d1",
    "ex2-dataset-planned": "75e53f1c1ca5eae6fb532fc59356942b84699ff0818af6a3fad1e107e5a427d5",
    "ex3-dataset-finished": "d170ac202f678ac7c2693d87a63aebab0589a935613860671ceaa911d2f214fa",
    "ex4-dataset-embargo": "c4a2a55c848602b8c242ccb7ca5971e38ecb17bfd40b5dc974c8682c8fe6225d",
    "ex5-dataset-planned-host": "29d92108dd32d6f19f19050422fa938f74fb7c3db39ec33b5f82cc06cf90f978",
    "ex6-dataset-closed": "0dd31d90fec341d53e3794a10a0a2597151694ee229918b3723046f56db602f0",
    "ex7-dataset-many": "ec0842b5d712caa8c74a0494cdff280f7e3e38d9243eda0b293127d5e631aca9",
    "ex8-dmp-minimal-content": "cfb459f45ba572ba23c68ed77fe2ab6c672fc531f4efc3279cfe08cc20d6194f",
    "ex9-dmp-long": "43de8f662f2ac1da9de32d90e7d7939b4cf61f9b06a688ebd7f6f0e4f075e24f",
    "ex10-fairsharing": "0bbe7b2290d72a393ad335a62874d3e5918cfeb552384123598a2d2d0ef6d326",
}
# What the person gives on the review page for the items neither the document nor the
# project gives.
ANSWERS = {
    "description": "Described on import.",
    "data_policy_free": "free",
    "data_policy_license": "CCBY",
    "data_policy_cite": "Cite the DMP.",
    "repo_information": "Kura",
    "hosting_inst": "Kura University",
    "data_man_name": "Data Manager",
    "data_man_number": "12345678",
    "data_man_contact": "dm@example.org",
}
# Fields the round trip loses, per example (docs/metadata.md, "Round trip"): none.
LOST: dict[str, list[str]] = {name: [] for name in SHA256}


@pytest.fixture
def project():
    institution = InstitutionFactory(
        name_ja="蔵大学", name_en="Kura University", ror_id="https://ror.org/0abcdef12"
    )
    project = ProjectFactory(institution=institution)
    pm = UserFactory(email="pm@kura.example.jp", name_en="Hanako Yamada")
    MembershipFactory(project=project, user=pm, role=Role.PM)
    return project


def _pm(project):
    return project.memberships.get(role=Role.PM).user


def _comparable(document: dict) -> dict:
    """The document less what the standard leaves to the writer: the time of the last
    change, and Kura's own ``x_kura`` items. (Key order does not count in a dict.)"""
    document = copy.deepcopy(document)
    dmp = document["dmp"]
    dmp.pop("modified", None)
    dmp.pop("x_kura", None)
    for dataset in dmp.get("dataset", []):
        dataset.pop("x_kura", None)
    return document


def differences(before, after, path: str = "") -> list[str]:
    """The JSON paths where ``after`` differs from ``before``."""
    if isinstance(before, dict) and isinstance(after, dict):
        return [
            found
            for key in sorted(set(before) | set(after))
            for found in (
                differences(before[key], after[key], f"{path}.{key}".lstrip("."))
                if key in before and key in after
                else [f"{path}.{key}".lstrip(".")]
            )
        ]
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            found
            for index, (b, a) in enumerate(zip(before, after, strict=True))
            for found in differences(b, a, f"{path}[{index}]")
        ]
    return [] if before == after and type(before) is type(after) else [path]


def test_the_examples_are_the_published_files():
    for name, digest in SHA256.items():
        assert hashlib.sha256((EXAMPLES / f"{name}.json").read_bytes()).hexdigest() == digest
    assert sorted(p.stem for p in EXAMPLES.glob("*.json")) == sorted(SHA256)


@pytest.mark.parametrize("name", list(SHA256))
def test_each_official_example_imports_and_exports_again_without_loss(name, project):
    source = (EXAMPLES / f"{name}.json").read_bytes()
    original = json.loads(source)
    assert madmp_validation_errors(original) == []
    pm = _pm(project)

    review = madmp_import_review(actor=pm, project=project, document=source)
    answers = {question.name: ANSWERS[question.name] for question in review.questions}
    records = madmp_import(
        actor=pm,
        project=project,
        document=source,
        answers=answers,
        duplicates=DUPLICATES_SEPARATE,
    )
    exported = madmp_export(project=project)

    assert len(records) == len(original["dmp"]["dataset"])
    assert madmp_validation_errors(exported) == []
    assert differences(_comparable(original), _comparable(exported)) == LOST[name]


def test_changes_made_in_kura_are_written_in_place_and_the_rest_is_kept(project):
    source = (EXAMPLES / "ex5-dataset-planned-host.json").read_bytes()
    pm = _pm(project)
    answers = {"repo_information": "Kura", "data_man_number": "12345678"}
    (record,) = madmp_import(actor=pm, project=project, document=source, answers=answers)
    services.record_update(
        actor=pm,
        record=record,
        fields={
            "title_en": "Cool data, second edition",
            "data_policy_license": "CC0",
            "contains_personal_data": None,
        },
    )

    exported = madmp_export(project=project)

    assert madmp_validation_errors(exported) == []
    original = json.loads(source)["dmp"]["dataset"][0]
    (dataset,) = exported["dmp"]["dataset"]
    assert differences(original, {k: v for k, v in dataset.items() if k != "x_kura"}) == [
        "distribution[0].license[0].license_ref",
        "personal_data",
        "title",
    ]
    assert dataset["title"] == "Cool data, second edition"
    assert dataset["personal_data"] == "unknown"
    licence = dataset["distribution"][0]["license"][0]
    # The new licence in place; its start date, which Kura did not change, as it came.
    assert licence == {
        "license_ref": "https://creativecommons.org/publicdomain/zero/1.0/",
        "start_date": "2021-06-30",
    }


def test_the_plan_keeps_the_project_level_parts(project):
    source = (EXAMPLES / "ex9-dmp-long.json").read_bytes()
    pm = _pm(project)
    answers = {"data_policy_free": "free", "data_policy_license": "CCBY"}
    answers |= {"repo_information": "Kura", "data_man_number": "12345678"}

    madmp_import(actor=pm, project=project, document=source, answers=answers, duplicates="skip")

    plan = DataManagementPlan.objects.get(project=project)
    kept = plan.madmp_extension["dmp"]
    original = json.loads(source)["dmp"]
    for part in ("contact", "contributor", "project", "ethical_issues_description"):
        assert kept[part] == original[part]
    assert plan.title == original["title"]
    exported = madmp_export(project=project)["dmp"]
    assert exported["project"][0]["funding"] == original["project"][0]["funding"]
    # Skipping the repeats of a shared identifier is the person's choice: one dataset.
    assert [d["title"] for d in exported["dataset"]] == ["Client application"]


def test_cost_ethical_issues_and_a_japan_grant_number_are_kept_shown_and_exported(client, project):
    """No official example has a ``cost`` or a Japanese grant: example 1 with both."""
    document = json.loads((EXAMPLES / "ex1-header-fundedProject.json").read_bytes())
    dmp = document["dmp"]
    dmp["cost"] = [
        {"title": "Storage", "description": "Ten years", "value": 1200.5, "currency_code": "JPY"},
        {"title": "Curation"},
    ]
    dmp["ethical_issues_exist"] = "yes"
    dmp["ethical_issues_report"] = "https://example.org/ethics/report.pdf"
    dmp["project"][0]["funding"].append(
        {
            "funder_id": {"identifier": "1020", "type": "other"},
            "grant_id": {"identifier": "JPMJMS2021", "type": "other"},
            "funding_status": "granted",
        }
    )
    source = json.dumps(document)
    pm = _pm(project)
    review = madmp_import_review(actor=pm, project=project, document=source)
    answers = {question.name: ANSWERS[question.name] for question in review.questions}

    madmp_import(actor=pm, project=project, document=source, answers=answers)

    shown = {part.source: part.value for part in review.project_parts}
    assert shown["dmp.cost"] == "Storage 1200.5 JPY; Curation"
    assert "JPMJMS2021 (other)" in shown["dmp.project"]
    assert shown["dmp.ethical_issues_report"] == "https://example.org/ethics/report.pdf"
    client.force_login(pm)
    page = client.get(f"/projects/{project.pk}/dmp/")
    on_the_page = {part.source: part.value for part in page.context["imported_parts"]}
    assert on_the_page["dmp.cost"] == "Storage 1200.5 JPY; Curation"
    assert "JPMJMS2021 (other)" in on_the_page["dmp.project"]
    exported = madmp_export(project=project)
    assert madmp_validation_errors(exported) == []
    assert differences(_comparable(document), _comparable(exported)) == []


def test_text_longer_than_kura_keeps_is_shortened_on_the_record_and_exported_whole(project):
    """The schema sets no length; Kura's items do. An e-mail address the schema's format
    passes (it asks only for an "@") but Kura cannot store is asked for instead."""
    document = json.loads((EXAMPLES / "ex5-dataset-planned-host.json").read_bytes())
    dmp = document["dmp"]
    dataset = dmp["dataset"][0]
    dataset["title"] = "Cool data " * 60
    dataset["distribution"][0]["host"]["title"] = "R" * 700
    dataset["creator"] = [{"name": "N" * 300, "creator_id": []}]
    dmp["contact"]["name"] = "C" * 300
    dmp["contact"]["mbox"] = "Tomasz Miksa <tmiksa@example.org>"
    source = json.dumps(document)
    pm = _pm(project)

    review = madmp_import_review(actor=pm, project=project, document=source)
    answers = {question.name: ANSWERS[question.name] for question in review.questions}
    (record,) = madmp_import(actor=pm, project=project, document=source, answers=answers)

    assert "data_man_contact" in answers
    notes = " ".join(review.notes)
    for path in (
        "dmp.dataset[0].title is longer than the 500 characters",
        "dmp.dataset[0].distribution[0].host.title is longer than the 500 characters",
        "dmp.dataset[0].creator[0].name is longer than the 200 characters",
        "dmp.contact.name is longer than the 200 characters",
        "dmp.contact.mbox “Tomasz Miksa <tmiksa@example.org>” is not an e-mail address",
    ):
        assert path in notes
    record.refresh_from_db()
    assert record.title_en == dataset["title"][:499] + "…"
    assert (len(record.repo_information_en), len(record.data_man_name_en)) == (500, 200)
    assert record.creators.get().name_en == "N" * 199 + "…"
    assert record.data_man_email == ANSWERS["data_man_contact"]
    exported = madmp_export(project=project)
    assert madmp_validation_errors(exported) == []
    assert differences(_comparable(document), _comparable(exported)) == []


@pytest.mark.parametrize(
    ("data_access", "tier", "available"),
    [
        ("open", "embargoed", "2099-01-31"),
        ("shared", "shared", None),
        ("closed", "non_shared", None),
    ],
)
def test_a_licence_starting_later_dates_only_data_that_opens_then(
    project, data_access, tier, available
):
    document = json.loads((EXAMPLES / "ex5-dataset-planned-host.json").read_bytes())
    distribution = document["dmp"]["dataset"][0]["distribution"][0]
    distribution["data_access"] = data_access
    distribution["license"][0]["start_date"] = "2099-01-31"
    source = json.dumps(document)
    pm = _pm(project)

    (record,) = madmp_import(
        actor=pm, project=project, document=source, answers={"data_man_number": "12345678"}
    )

    record.refresh_from_db()
    assert record.access_rights == tier
    assert (record.available_date and record.available_date.isoformat()) == available
    exported = madmp_export(project=project)
    assert differences(_comparable(document), _comparable(exported)) == []


@pytest.mark.parametrize(
    ("distribution_title", "title", "source"),
    [
        ("Raw data", "Raw data", "dmp.dataset[0].distribution[0].title"),
        (" ", "10.5281/zenodo.1200361", "dmp.dataset[0].dataset_id.identifier"),
    ],
)
def test_a_blank_title_is_filled_from_the_distribution_else_the_identifier(
    project, distribution_title, title, source
):
    document = json.loads((EXAMPLES / "ex5-dataset-planned-host.json").read_bytes())
    dataset = document["dmp"]["dataset"][0]
    dataset["title"] = "  "  # valid maDMP: the schema sets no minimum length
    dataset["distribution"][0]["title"] = distribution_title
    source_document = json.dumps(document)
    pm = _pm(project)

    review = madmp_import_review(actor=pm, project=project, document=source_document)
    (record,) = madmp_import(
        actor=pm,
        project=project,
        document=source_document,
        answers={"data_man_number": "12345678"},
    )

    (reviewed,) = review.datasets
    assert reviewed.title == title
    assert (title, source) in [(item.value, item.source) for item in reviewed.items]
    record.refresh_from_db()
    assert record.title_en == title
    exported = madmp_export(project=project)
    assert differences(_comparable(document), _comparable(exported)) == []
