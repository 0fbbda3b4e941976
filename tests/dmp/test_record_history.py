"""Record history: every path that changes a record keeps a revision (who, when, what
changed) in its own transaction, and the record page shows it to those who may read the
record there — nobody else."""

import importlib
import pkgutil

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.models import Role
from core.vocabularies import MetadataAccess
from dmp import services
from dmp.exports import csv_parse, csv_rows
from dmp.models import DmpRecord, DmpRecordRevision
from dmp.records_import import records_import
from repository.publishing.versions import dataset_withdraw
from tests.dmp.complete_records import complete_record
from tests.dmp.test_services import complete_fields
from tests.factories import (
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_superuser,
)

pytestmark = pytest.mark.django_db
Kind = DmpRecordRevision.Kind


@pytest.fixture
def project():
    return ProjectFactory()


@pytest.fixture
def pm(project):
    return MembershipFactory(project=project, role=Role.PM).user


def revisions(record) -> list[DmpRecordRevision]:
    return list(DmpRecordRevision.objects.filter(record=record).order_by("number"))


def created(project, pm, **overrides) -> DmpRecord:
    return services.record_create(
        actor=pm,
        project=project,
        fields=complete_fields(**overrides),
        creators=[{"name_en": "Hanako Sato"}],
    )


def test_creating_a_record_keeps_its_first_revision(project, pm):
    record = created(project, pm)

    (first,) = revisions(record)
    assert (first.number, first.kind, first.saved_by) == (1, Kind.CREATED, pm)
    assert first.items["title_ja"] == "顕微鏡画像"
    assert first.items["creators"] == [{"name_en": "Hanako Sato"}]
    assert first.changes["title_ja"] == [None, "顕微鏡画像"]
    assert first.changes["date_issued_updated"] == [None, "2026-04-01"]


def test_an_edit_keeps_who_what_and_the_values_before_and_after(project, pm):
    record = created(project, pm)
    data_manager = MembershipFactory(project=project, role=Role.DATA_MANAGER).user

    services.record_update(
        actor=data_manager,
        record=record,
        fields={"title_ja": "共焦点画像", "contains_personal_data": None},
        creators=[{"name_en": "Hanako Sato"}, {"name_ja": "鈴木太郎"}],
    )

    edit = revisions(record)[-1]
    assert (edit.number, edit.kind, edit.saved_by) == (2, Kind.EDITED, data_manager)
    assert edit.changes == {
        "title_ja": ["顕微鏡画像", "共焦点画像"],
        "contains_personal_data": [False, None],
        "creators": [
            [{"name_en": "Hanako Sato"}],
            [{"name_en": "Hanako Sato"}, {"name_ja": "鈴木太郎"}],
        ],
    }
    assert edit.items["title_ja"] == "共焦点画像"
    assert revisions(record)[0].items["title_ja"] == "顕微鏡画像"  # the old state stays


def test_a_save_that_changes_nothing_keeps_no_revision(project, pm):
    record = created(project, pm)

    services.record_update(actor=pm, record=record, fields={"title_ja": "顕微鏡画像"})

    assert len(revisions(record)) == 1


def test_a_refused_edit_keeps_no_revision(project, pm):
    record = created(project, pm)

    with pytest.raises(ValidationError):
        services.record_update(actor=pm, record=record, fields={"title_ja": "", "title_en": ""})

    assert len(revisions(record)) == 1


def test_an_edit_of_a_record_without_history_still_shows_what_it_was(project, pm):
    record = DmpRecordFactory(project=project, **complete_fields(title_ja="旧題"))

    services.record_update(actor=pm, record=record, fields={"title_ja": "新題"})

    (edit,) = revisions(record)
    assert edit.number == 1 and edit.changes == {"title_ja": ["旧題", "新題"]}


@pytest.mark.parametrize("source", ["csti-csv", "madmp-json"])
def test_an_import_keeps_a_revision_per_record_with_the_format(project, pm, source):
    originals = [complete_record(project, number=n) for n in (1, 2)]
    rows = csv_parse(b"".join(csv_rows(DmpRecord.objects.filter(project=project), "ja")))
    DmpRecord.objects.filter(pk__in=[r.pk for r in originals]).delete()

    imported = records_import(actor=pm, project=project, rows=rows, source=source)

    for record in imported:
        (first,) = revisions(record)
        assert (first.kind, first.detail, first.saved_by) == (Kind.IMPORTED, source, pm)
        assert first.items["data_number"] == record.data_number
        assert first.items["creators"] and first.changes["creators"][0] is None


def test_the_records_api_keeps_revisions(project, pm):
    record = created(project, pm)
    api = APIClient()
    api.force_authenticate(pm)

    response = api.patch(
        f"/api/v1/records/{record.pk}/", {"remarks_en": "Re-scanned."}, format="json"
    )

    assert response.status_code == 200
    edit = revisions(record)[-1]
    assert (edit.kind, edit.saved_by, edit.changes) == (
        Kind.EDITED,
        pm,
        {"remarks_en": ["", "Re-scanned."]},
    )


def test_the_admin_keeps_revisions(client, project, pm):
    record = created(project, pm)
    admin = make_superuser()
    client.force_login(admin)
    url = reverse("admin:dmp_dmprecord_change", args=[record.pk])
    form = {
        "project": project.pk,
        "data_number": record.data_number,
        "title_ja": record.title_ja,
        "title_en": "Light-sheet images",
        "description_ja": "",
        "description_en": record.description_en,
        "access_rights": record.access_rights,
        "available_date": "",
        "metadata_access": record.metadata_access,
        "contains_personal_data": "true",
    }

    response = client.post(url, form)

    assert response.status_code == 302, response.content.decode()[:2000]
    edit = revisions(record)[-1]
    assert (edit.number, edit.kind, edit.saved_by) == (2, Kind.ADMIN, admin)
    assert edit.changes == {
        "title_en": ["", "Light-sheet images"],
        "contains_personal_data": [False, True],
    }


def test_a_withdrawal_keeps_a_revision(project, pm):
    record = created(project, pm, access_rights="public")
    DmpRecord.objects.filter(pk=record.pk).update(metadata_access=MetadataAccess.OPEN)

    dataset_withdraw(actor=pm, record_id=record.pk, reason="Consent withdrawn.")

    edit = revisions(record)[-1]
    assert edit.kind == Kind.WITHDRAWN
    assert edit.changes["withdrawal_reason"] == ["", "Consent withdrawn."]
    assert edit.changes["withdrawn_at"][0] is None


def _migration_with(name: str):
    """The dmp migration that defines ``name`` (found by content: numbers change)."""
    package = importlib.import_module("dmp.migrations")
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"dmp.migrations.{info.name}")
        if hasattr(module, name):
            return module
    raise LookupError(name)


def test_records_from_before_the_history_get_a_baseline(project, pm):
    record = complete_record(project, number=3)
    migration = _migration_with("baseline_revisions")

    migration.baseline_revisions(apps, None)

    (baseline,) = revisions(record)
    assert (baseline.number, baseline.kind, baseline.changes) == (1, Kind.BASELINE, {})
    assert baseline.items["title_en"] == record.title_en
    assert [c.get("name_en") for c in baseline.items["creators"]] == [
        c.name_en for c in record.creators.order_by("position")
    ]
    services.record_update(actor=pm, record=record, fields={"title_en": "Renamed"})
    assert revisions(record)[-1].number == 2


# --- The record page ---------------------------------------------------------------------


def record_page(client, record):
    return client.get(reverse("dmp-record-detail", args=[record.project_id, record.pk]))


def test_the_record_page_shows_each_revision_with_an_inline_diff(client, project, pm):
    record = created(project, pm)
    services.record_update(actor=pm, record=record, fields={"title_ja": "共焦点画像"})
    client.force_login(MembershipFactory(project=project, role=Role.COLLABORATOR).user)

    html = record_page(client, record).content.decode()

    assert 'id="record-history-table"' in html
    history = html[html.index('id="record-history-table"') :]
    assert 'data-revision="2"' in history and 'data-revision="1"' in history
    assert history.index('data-revision="2"') < history.index('data-revision="1"')
    assert '<tr data-item="title_ja">' in history
    assert "<del>顕微鏡画像</del>" in history and "<ins>共焦点画像</ins>" in history
    assert pm.display_name in history


def test_old_values_are_not_shown_to_people_who_may_not_open_the_record_page(client, project, pm):
    record = created(project, pm, title_ja="旧題の秘密")
    services.record_update(
        actor=pm, record=record, fields={"title_ja": "新題", "metadata_access": "open"}
    )

    for user in (None, UserFactory()):
        client.logout()
        if user:
            client.force_login(user)
        assert record_page(client, record).status_code in (302, 404)
        landing = client.get(reverse("dataset-landing", args=[record.pk])).content.decode()
        assert "新題" in landing and "旧題の秘密" not in landing


def test_the_record_page_costs_the_same_however_long_the_history(
    client, project, pm, django_assert_max_num_queries
):
    record = created(project, pm)
    client.force_login(pm)
    record_page(client, record)
    with django_assert_max_num_queries(40) as short:
        record_page(client, record)
    for n in range(15):
        services.record_update(actor=pm, record=record, fields={"remarks_en": f"note {n}"})

    with django_assert_max_num_queries(len(short.captured_queries)):
        response = record_page(client, record)

    assert response.content.decode().count('class="revision-changes"') == 16
