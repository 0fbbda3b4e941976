"""The DMP pages over HTTP: who may see and edit them, what they list, and the exports."""

import csv
import datetime
import io
import re

import pytest
from django.urls import reverse

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from dmp import services
from dmp.models import DmpRecord
from repository.models import DataObject
from tests.dmp.test_services import complete_fields
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    make_superuser,
)

pytestmark = pytest.mark.django_db

MEMBER_ROLES = [r.value for r in Role]
STAFF = ["curator", "program_officer", "superuser"]


def build_user(kind: str, project):
    if kind in MEMBER_ROLES:
        return MembershipFactory(project=project, role=kind).user
    return {
        "curator": make_curator,
        "program_officer": make_program_officer,
        "superuser": make_superuser,
        "outsider": UserFactory,
    }[kind]()


def complete_record(project, **overrides) -> DmpRecord:
    return DmpRecordFactory(project=project, **complete_fields(**overrides))


@pytest.fixture
def project():
    return ProjectFactory(funding_stream_code="JPMJM", japan_grant_number="JPMJMS2021")


@pytest.mark.parametrize("kind", [*MEMBER_ROLES, *STAFF, "outsider", "anonymous"])
def test_who_may_open_the_dmp_page(client, project, kind):
    # A public object makes the project page itself open to everyone.
    DataObjectFactory(project=project, tier=Tier.PUBLIC)
    if kind != "anonymous":
        client.force_login(build_user(kind, project))

    response = client.get(f"/projects/{project.pk}/dmp/")

    assert response.status_code == (404 if kind in {"outsider", "anonymous"} else 200)
    project_page = client.get(f"/projects/{project.pk}/").content.decode()
    dmp_link = f'href="/projects/{project.pk}/dmp/"'
    assert (dmp_link in project_page) == (kind not in {"outsider", "anonymous"})


@pytest.mark.parametrize("kind", [*MEMBER_ROLES, *STAFF])
def test_only_pm_and_data_manager_may_edit(client, project, kind):
    client.force_login(build_user(kind, project))
    may_edit = kind in {"pm", "data_manager", "superuser"}
    record = complete_record(project)

    dmp_page = client.get(f"/projects/{project.pk}/dmp/").content.decode()
    edit_link = f"/projects/{project.pk}/dmp/edit/"
    assert (edit_link in dmp_page) == may_edit
    for url in [
        edit_link,
        f"/projects/{project.pk}/dmp/records/new/",
        f"/projects/{project.pk}/dmp/records/{record.pk}/edit/",
    ]:
        assert client.get(url).status_code == (200 if may_edit else 403)
    response = client.post(edit_link, {"title": "Plan", "data_produced": "Images"})
    assert response.status_code == (302 if may_edit else 403)


def test_dmp_page_of_a_missing_project_is_404(client):
    client.force_login(make_superuser())
    assert client.get("/projects/999999/dmp/").status_code == 404


def test_plan_edit_saves_a_new_version_and_the_history_names_changed_answers(client, project):
    pm = MembershipFactory(project=project, role=Role.PM).user
    dm = MembershipFactory(project=project, role=Role.DATA_MANAGER, user__name_en="Dana DM").user
    client.force_login(pm)
    url = reverse("project-dmp-edit", args=[project.pk])
    client.post(url, {"title": "Plan", "data_produced": "Images", "management_roles": "PM"})
    client.force_login(dm)
    response = client.post(
        url,
        {"title": "Plan", "data_produced": "Images and spectra", "management_roles": "PM"},
        follow=True,
    )

    page = response.content.decode()
    assert "Images and spectra" in page
    history = page.split('id="history-table"')[1]
    rows = re.findall(r"<tr>(.*?)</tr>", history, flags=re.S)
    newest = re.sub(r"\s+", " ", rows[1])
    assert ">2<" in newest and "Dana DM" in newest
    assert "data the project produces" in newest.lower()
    assert "who manages" not in newest.lower()  # unchanged answers are not listed


def test_records_list_and_coverage(client, project):
    pm = MembershipFactory(project=project, role=Role.PM).user
    client.force_login(pm)
    complete = complete_record(project, data_number="D-001", access_rights=Tier.SHARED)
    DataObjectFactory.create_batch(2, project=project, record=complete, tier=Tier.SHARED)
    empty = complete_record(project, data_number="D-002")
    incomplete = DmpRecordFactory(project=project, data_number="D-003", title_en="Draft")
    DataObjectFactory(project=project, record=incomplete, tier=Tier.NON_SHARED)
    disagreeing = complete_record(project, data_number="D-004", access_rights=Tier.NON_SHARED)
    DataObjectFactory(project=project, record=disagreeing, tier=Tier.NON_SHARED)
    DataObjectFactory(project=project, record=disagreeing, tier=Tier.SHARED)
    loose = DataObjectFactory(project=project, record=None, original_filename="loose.tif")
    DataObjectFactory(record=None, original_filename="elsewhere.tif")  # another project

    response = client.get(f"/projects/{project.pk}/dmp/")

    context = response.context
    assert [r.data_number for r in context["records"]] == ["D-001", "D-002", "D-003", "D-004"]
    assert [r.object_count for r in context["records"]] == [2, 0, 1, 2]
    coverage = context["coverage"]
    assert coverage.objects_without_record == [loose]
    assert coverage.records_without_objects == [empty]
    assert [r for r, _ in coverage.records_missing_items] == [incomplete]
    assert [(r, tiers) for r, tiers in coverage.records_disagreeing] == [
        (
            disagreeing,
            [("non_shared", "metadata only access", 1), ("shared", "restricted access", 1)],
        )
    ]
    page = response.content.decode()
    assert "loose.tif" in page and "elsewhere.tif" not in page


def test_coverage_sees_objects_only_through_the_access_rules(client, project):
    researcher = MembershipFactory(project=project, role=Role.RESEARCHER).user
    record = complete_record(project, access_rights=Tier.NON_SHARED)
    # Someone else's non-shared object: hidden from a researcher, so not counted for them.
    DataObjectFactory(project=project, record=record, tier=Tier.NON_SHARED)
    DataObjectFactory(project=project, record=None, tier=Tier.NON_SHARED)
    client.force_login(researcher)

    context = client.get(f"/projects/{project.pk}/dmp/").context

    assert [r.object_count for r in context["records"]] == [0]
    assert context["coverage"].objects_without_record == []


def test_dmp_page_query_count_is_bounded(client, project, django_assert_max_num_queries):
    pm = MembershipFactory(project=project, role=Role.PM).user
    services.plan_save(actor=pm, plan_or_project=project, answers={"data_produced": "A"})
    services.plan_save(actor=pm, plan_or_project=project, answers={"data_produced": "B"})
    for n in range(12):
        record = complete_record(project, data_number=f"D-{n:03d}")
        record.creators.create(name_en=f"Creator {n}")
        DataObjectFactory(project=project, record=record, tier=Tier.SHARED)
    DataObjectFactory.create_batch(5, project=project, record=None)
    client.force_login(pm)

    with django_assert_max_num_queries(12):
        response = client.get(f"/projects/{project.pk}/dmp/")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("fmt", "header"), [("csti-csv-ja", "資金配分機関情報"), ("csti-csv-en", "Funder")]
)
def test_csv_export(client, project, fmt, header):
    client.force_login(MembershipFactory(project=project, role=Role.COLLABORATOR).user)
    complete_record(project, data_number="D-001")
    complete_record(project, data_number="D-002")
    DmpRecordFactory(data_number="OTHER-1")  # another project

    response = client.get(f"/projects/{project.pk}/dmp/?format={fmt}")

    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == header
    assert [row[5] for row in rows[1:]] == ["D-001", "D-002"]


def test_moonshot_xlsx_export(client, project):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    complete_record(project)
    response = client.get(f"/projects/{project.pk}/dmp/?format=moonshot-xlsx")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content)[:2] == b"PK"  # a zip container


def test_unknown_export_format_is_404(client, project):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    assert client.get(f"/projects/{project.pk}/dmp/?format=pdf").status_code == 404


def test_record_form_prefills_the_next_data_number(client, project):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    DmpRecordFactory(project=project, data_number="D-004")
    page = client.get(f"/projects/{project.pk}/dmp/records/new/").content.decode()
    assert 'name="data_number" value="D-005"' in page


def record_post_data(**overrides) -> dict:
    data = {
        key: (value.isoformat() if isinstance(value, datetime.date) else value)
        for key, value in complete_fields().items()
    }
    data.update(
        {
            "metadata_access": MetadataAccess.CLOSED,
            "creators-TOTAL_FORMS": "2",
            "creators-INITIAL_FORMS": "0",
            "creators-0-name_ja": "佐藤花子",
            "creators-0-erad_researcher_number": "11112222",
            "creators-1-name_en": "",
        }
    )
    data.update(overrides)
    return data


def test_record_form_creates_a_record_with_creators(client, project):
    client.force_login(MembershipFactory(project=project, role=Role.DATA_MANAGER).user)
    response = client.post(f"/projects/{project.pk}/dmp/records/new/", record_post_data())
    record = DmpRecord.objects.get(project=project)
    assert response.status_code == 302
    assert response["Location"] == f"/projects/{project.pk}/dmp/records/{record.pk}/"
    assert record.data_type == "experimental data"
    assert [(c.name_ja, c.erad_researcher_number) for c in record.creators.all()] == [
        ("佐藤花子", "11112222")
    ]


def test_record_form_edit_removes_a_creator(client, project):
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = services.record_create(
        actor=pm, project=project, fields=complete_fields(), creators=[{"name_en": "A"}]
    )
    client.force_login(pm)
    data = record_post_data(
        **{
            "creators-TOTAL_FORMS": "1",
            "creators-INITIAL_FORMS": "1",
            "creators-0-name_ja": "",
            "creators-0-name_en": "A",
            "creators-0-DELETE": "on",
            "title_en": "Renamed",
        }
    )
    response = client.post(f"/projects/{project.pk}/dmp/records/{record.pk}/edit/", data)
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.title_en == "Renamed"
    assert record.creators.count() == 0


@pytest.mark.parametrize(
    ("language", "required_message", "pair_message"),
    [
        ("en", "This field is required.", "Enter this in Japanese or English (or both)."),
        ("ja", "この項目は必須です。", None),
    ],
)
def test_record_form_shows_field_level_errors_in_the_users_language(
    client, project, language, required_message, pair_message
):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    data = record_post_data(
        title_ja="", title_en="", data_policy_free="", access_rights=Tier.EMBARGOED
    )
    response = client.post(
        f"/projects/{project.pk}/dmp/records/new/", data, HTTP_ACCEPT_LANGUAGE=language
    )

    assert response.status_code == 200
    assert not DmpRecord.objects.exists()
    form = response.context["form"]
    assert set(form.errors) == {"title_ja", "title_en", "data_policy_free", "available_date"}
    assert form.errors["data_policy_free"] == [required_message]
    if pair_message:
        assert form.errors["title_ja"] == [pair_message]
    page = response.content.decode()
    assert 'id="id_data_policy_free_errors"' in page
    assert 'id="pair-title"' in page


@pytest.mark.parametrize(
    ("language", "label", "option"),
    [("ja", "データ種別", "実験データ"), ("en", "Data type", "experimental data")],
)
def test_record_form_labels_and_vocabularies_follow_the_language(
    client, project, language, label, option
):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    page = client.get(
        f"/projects/{project.pk}/dmp/records/new/", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert re.search(rf'<label for="id_data_type">{label}<span class="required"', page)
    assert f'<option value="experimental data">{option}</option>' in page
    assert " | " not in re.search(r'<select name="data_type".*?</select>', page, re.S).group(0)


def test_record_page_lists_its_objects_through_the_access_rules(client, project):
    researcher = MembershipFactory(project=project, role=Role.RESEARCHER).user
    record = complete_record(project)
    mine = DataObjectFactory(project=project, record=record, uploaded_by=researcher)
    hidden = DataObjectFactory(project=project, record=record)  # someone else's, non-shared
    client.force_login(researcher)

    response = client.get(f"/projects/{project.pk}/dmp/records/{record.pk}/")

    assert list(response.context["objects"]) == [mine]
    assert hidden.original_filename not in response.content.decode()


def test_stewards_reach_the_published_versions_of_an_open_record(client, project):
    record = complete_record(project)
    page = f"/projects/{project.pk}/dmp/records/{record.pk}/"
    versions = f'href="{reverse("dataset-landing", args=[record.pk])}#versions"'
    client.force_login(MembershipFactory(project=project, role=Role.RESEARCHER).user)
    assert versions not in client.get(page).content.decode()  # researchers do not publish

    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    DmpRecord.objects.filter(pk=record.pk).update(metadata_access=MetadataAccess.OPEN)
    assert versions in client.get(page).content.decode()
    DmpRecord.objects.filter(pk=record.pk).update(metadata_access=MetadataAccess.CLOSED)
    assert versions not in client.get(page).content.decode()  # no public page to publish on


def test_record_of_another_project_is_404(client, project):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    other = DmpRecordFactory()
    assert client.get(f"/projects/{project.pk}/dmp/records/{other.pk}/").status_code == 404
    assert client.get(f"/projects/{project.pk}/dmp/records/{other.pk}/edit/").status_code == 404


@pytest.mark.parametrize("kind", [*STAFF, "pm", "outsider", "anonymous"])
def test_who_may_open_the_program_view(client, project, kind):
    if kind != "anonymous":
        client.force_login(build_user(kind, project))
    response = client.get("/programs/")
    assert response.status_code == (200 if kind in STAFF else 404)
    export = client.get("/programs/JST/JPMJM/export?format=csti-csv-en")
    assert export.status_code == (200 if kind in STAFF else 404)


def test_program_view_groups_projects_and_counts_completeness(client, project):
    sibling = ProjectFactory(funding_stream_code="JPMJM", japan_grant_number="JPMJMS2022")
    other_program = ProjectFactory(funder="AMED", funding_stream_code="")
    complete_record(project, data_number="D-001")
    DmpRecordFactory(project=project, data_number="D-002")  # missing items
    DataObjectFactory(project=project, record=None, tier=Tier.PUBLIC)
    complete_record(sibling, data_number="S-001")
    client.force_login(make_program_officer())

    groups = client.get("/programs/").context["groups"]

    by_key = {(g["funder"], g["funding_stream_code"]): g for g in groups}
    assert set(by_key) == {("JST", "JPMJM"), ("AMED", "-")}
    jst = by_key[("JST", "JPMJM")]["projects"]
    assert [
        (p, p.record_count, p.records_missing_items, p.objects_without_record) for p in jst
    ] == [
        (project, 2, 1, 1),
        (sibling, 1, 0, 0),
    ]
    assert by_key[("AMED", "-")]["projects"] == [other_program]


def test_program_export_combines_the_programs_projects(client, project):
    sibling = ProjectFactory(funding_stream_code="JPMJM", japan_grant_number="JPMJMS2022")
    complete_record(project, data_number="D-001")
    complete_record(sibling, data_number="S-001")
    complete_record(ProjectFactory(funder="AMED"), data_number="A-001")
    client.force_login(make_curator())

    response = client.get("/programs/JST/JPMJM/export?format=csti-csv-ja")

    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert [row[5] for row in list(csv.reader(io.StringIO(text)))[1:]] == ["D-001", "S-001"]
    assert client.get("/programs/JST/JPMJM/export?format=xml").status_code == 404


def test_objects_are_never_counted_twice_when_records_disagree(client, project):
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = complete_record(project, access_rights=Tier.PUBLIC)
    DataObjectFactory.create_batch(3, project=project, record=record, tier=Tier.SHARED)
    client.force_login(pm)
    context = client.get(f"/projects/{project.pk}/dmp/").context
    assert context["records"][0].object_count == 3
    assert context["coverage"].records_disagreeing[0][1] == [("shared", "restricted access", 3)]
    assert DataObject.objects.count() == 3


def test_madmp_export(client, project):
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    complete_record(project, data_number="D-001")
    response = client.get(f"/projects/{project.pk}/dmp/?format=madmp-json")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    document = response.json()
    assert [d["title"] for d in document["dmp"]["dataset"]] == ["顕微鏡画像"] or len(
        document["dmp"]["dataset"]
    ) == 1


def test_madmp_export_without_a_contact_explains_why(client, project):
    MembershipFactory(project=project, role=Role.PM, user__email="")
    client.force_login(make_curator())
    response = client.get(f"/projects/{project.pk}/dmp/?format=madmp-json", follow=True)
    assert response.redirect_chain[-1][0] == f"/projects/{project.pk}/dmp/"
    assert len(list(response.context["messages"])) == 1


def test_program_view_query_count_is_bounded(client, django_assert_max_num_queries):
    for n in range(6):
        project = ProjectFactory(funding_stream_code=f"P{n % 2}")
        complete_record(project, data_number="D-001").creators.create(name_en="A")
        DmpRecordFactory(project=project, data_number="D-002")
        DataObjectFactory(project=project, record=None, tier=Tier.PUBLIC)
    client.force_login(make_program_officer())

    with django_assert_max_num_queries(10):
        response = client.get("/programs/")
    assert sum(len(g["projects"]) for g in response.context["groups"]) == 6


@pytest.mark.parametrize("kind", [*STAFF, "pm", "outsider"])
def test_header_links_to_programs_for_those_who_may_open_them(client, project, kind):
    client.force_login(build_user(kind, project))
    page = client.get("/").content.decode()
    assert ('href="/programs/"' in page) == (kind in STAFF)
