"""DMP writes: permissions, plan versions, record validation and the next Data No."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Role
from core.vocabularies import Tier
from dmp import services
from dmp.models import DataManagementPlan, DataManagementPlanVersion, DmpRecord
from tests.factories import (
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    make_superuser,
)

pytestmark = pytest.mark.django_db


def complete_fields(**overrides) -> dict:
    """Every required common item of a record, filled in."""
    fields = {
        "data_number": "D-001",
        "title_ja": "顕微鏡画像",
        "description_en": "Light-sheet images of mouse brain.",
        "date_issued_updated": datetime.date(2026, 4, 1),
        "data_research_field": "project",
        "data_type": "experimental data",
        "data_policy_free": "free",
        "data_policy_license": "CCBY",
        "data_policy_cite_en": "Cite the DOI.",
        "access_rights": Tier.SHARED,
        "repo_information_ja": "蔵リポジトリ",
        "hosting_inst_en": "Institute of Science",
        "data_man_type": "individual",
        "data_man_number": "12345678",
        "data_man_name_en": "Hanako Sato",
        "data_man_email": "sato@example.org",
    }
    fields.update(overrides)
    return fields


def member(project, role):
    return MembershipFactory(project=project, role=role).user


@pytest.fixture
def project():
    return ProjectFactory()


def build_actor(kind: str, project):
    if kind in {r.value for r in Role}:
        return member(project, kind)
    return {
        "superuser": make_superuser,
        "curator": make_curator,
        "program_officer": make_program_officer,
        "outsider": UserFactory,
    }[kind]()


EDITORS = {"pm", "data_manager", "superuser"}
KINDS = ["pm", "data_manager", "researcher", "collaborator", "superuser", "curator",
         "program_officer", "outsider"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
def test_only_pm_data_manager_and_superuser_may_save_the_plan(project, kind):
    actor = build_actor(kind, project)
    if kind in EDITORS:
        plan = services.plan_save(
            actor=actor, plan_or_project=project, answers={"data_produced": "Images"}
        )
        assert plan.version == 1
    else:
        with pytest.raises(PermissionDenied):
            services.plan_save(
                actor=actor, plan_or_project=project, answers={"data_produced": "Images"}
            )
        assert not DataManagementPlan.objects.filter(project=project).exists()


@pytest.mark.parametrize("kind", KINDS)
def test_only_pm_data_manager_and_superuser_may_create_records(project, kind):
    actor = build_actor(kind, project)
    if kind in EDITORS:
        record = services.record_create(actor=actor, project=project, fields=complete_fields())
        assert record.pk
    else:
        with pytest.raises(PermissionDenied):
            services.record_create(actor=actor, project=project, fields=complete_fields())
        assert not DmpRecord.objects.filter(project=project).exists()


def test_every_plan_save_bumps_the_version_and_keeps_a_snapshot(project):
    pm = member(project, Role.PM)
    dm = member(project, Role.DATA_MANAGER)

    plan = services.plan_save(actor=pm, plan_or_project=project, answers={"data_produced": "A"})
    plan = services.plan_save(
        actor=dm, plan_or_project=plan, answers={"data_produced": "B", "management_roles": "DM"}
    )

    plan.refresh_from_db()
    assert plan.version == 2
    assert plan.updated_by == dm
    versions = list(DataManagementPlanVersion.objects.filter(plan=plan).order_by("version"))
    assert [(v.version, v.saved_by, v.answers["data_produced"]) for v in versions] == [
        (1, pm, "A"),
        (2, dm, "B"),
    ]
    assert versions[1].answers["management_roles"] == "DM"
    assert versions[0].answers["management_roles"] == ""
    assert project.name in plan.title


def test_plan_save_refuses_unknown_answers(project):
    pm = member(project, Role.PM)
    with pytest.raises(ValidationError) as exc:
        services.plan_save(actor=pm, plan_or_project=project, answers={"budget": "1"})
    assert "budget" in exc.value.message_dict
    assert not DataManagementPlan.objects.filter(project=project).exists()


def test_record_create_keeps_creators_in_order(project):
    pm = member(project, Role.PM)
    record = services.record_create(
        actor=pm,
        project=project,
        fields=complete_fields(),
        creators=[{"name_ja": "佐藤花子"}, {"name_en": "Taro Suzuki", "affiliation_en": "RIKEN"}],
    )
    assert [c.name_ja or c.name_en for c in record.creators.all()] == ["佐藤花子", "Taro Suzuki"]
    assert [c.position for c in record.creators.all()] == [0, 1]


def test_record_update_replaces_creators_and_fields(project):
    pm = member(project, Role.PM)
    record = services.record_create(
        actor=pm, project=project, fields=complete_fields(), creators=[{"name_en": "A"}]
    )
    record = services.record_update(
        actor=pm,
        record=record,
        fields={"title_en": "Images", "remarks_ja": "備考"},
        creators=[{"name_en": "B"}, {"name_en": "C"}],
    )
    record.refresh_from_db()
    assert (record.title_en, record.remarks_ja) == ("Images", "備考")
    assert [c.name_en for c in record.creators.all()] == ["B", "C"]


@pytest.mark.parametrize(
    ("overrides", "fields_with_errors"),
    [
        ({"title_ja": "", "title_en": ""}, {"title_ja", "title_en"}),
        ({"description_en": ""}, {"description_ja", "description_en"}),
        ({"data_policy_free": ""}, {"data_policy_free"}),
        ({"access_rights": Tier.EMBARGOED}, {"available_date"}),
        ({"available_date": datetime.date(2027, 1, 1)}, {"available_date"}),
        ({"data_man_email": ""}, {"data_man_email"}),
        ({"data_man_name_en": ""}, {"data_man_name_ja", "data_man_name_en"}),
        ({"data_man_number": "123"}, {"data_man_number"}),
        ({"hosting_inst_id": "https://example.org/x"}, {"hosting_inst_id"}),
    ],
)
def test_record_errors_are_field_level(project, overrides, fields_with_errors):
    pm = member(project, Role.PM)
    with pytest.raises(ValidationError) as exc:
        services.record_create(actor=pm, project=project, fields=complete_fields(**overrides))
    assert set(exc.value.message_dict) == fields_with_errors
    assert not DmpRecord.objects.filter(project=project).exists()


def test_an_organisation_as_data_manager_needs_no_personal_name(project):
    pm = member(project, Role.PM)
    fields = complete_fields(data_man_type="organization", data_man_name_en="", data_man_number="")
    assert services.record_create(actor=pm, project=project, fields=fields).pk


def test_embargo_with_a_date_is_accepted(project):
    pm = member(project, Role.PM)
    fields = complete_fields(access_rights=Tier.EMBARGOED, available_date=datetime.date(2027, 1, 1))
    assert services.record_create(actor=pm, project=project, fields=fields).available_date


def test_duplicate_data_number_is_a_field_error(project):
    pm = member(project, Role.PM)
    DmpRecordFactory(project=project, data_number="D-001")
    with pytest.raises(ValidationError) as exc:
        services.record_create(actor=pm, project=project, fields=complete_fields())
    assert list(exc.value.message_dict) == ["data_number"]


def test_creator_without_a_name_is_refused(project):
    pm = member(project, Role.PM)
    with pytest.raises(ValidationError) as exc:
        services.record_create(
            actor=pm, project=project, fields=complete_fields(), creators=[{"affiliation_en": "X"}]
        )
    assert list(exc.value.message_dict) == ["creators"]
    assert not DmpRecord.objects.filter(project=project).exists()


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([], "1"),
        (["D-001", "D-002", "D-003", "D-004", "D-005"], "D-006"),
        (["D-009"], "D-010"),
        (["DS99"], "DS100"),
        (["1", "2", "7"], "8"),
        (["alpha", "beta"], "1"),
        (["x-1", "D-001", "D-002"], "D-003"),
    ],
)
def test_next_data_number(project, existing, expected):
    for number in existing:
        DmpRecordFactory(project=project, data_number=number)
    DmpRecordFactory(data_number="D-999")  # another project's numbers do not count
    assert services.next_data_number(project) == expected
