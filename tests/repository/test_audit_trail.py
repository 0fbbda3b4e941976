"""The audit trail pages: who reads which trail, filters, pages, the CSV export, and that
every event Kura must audit is written with actor, time, before/after and address."""

import csv
import datetime
import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository.governance import audit
from repository.models import AccessRequest, AuditEvent, DataObject
from repository.preservation.checksums import data_object_checksum_verify, fixity_sweep
from repository.services import audit_event_record
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    UserFactory,
    make_curator,
    make_superuser,
)
from tests.repository.stored_objects import overwrite_behind_kuras_back, store_object

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail():
    """Two projects, each with a PM and events of its own."""
    pm = MembershipFactory(role=Role.PM, user__username="hanako")
    other_pm = MembershipFactory(role=Role.PM)
    data_object = DataObjectFactory(
        project=pm.project, uploaded_by=pm.user, original_filename="秘密の切片.tiff"
    )
    other_object = DataObjectFactory(
        project=other_pm.project, uploaded_by=other_pm.user, original_filename="other.tiff"
    )
    events = {
        "download": audit_event_record(
            actor=pm.user,
            action=AuditEvent.Action.DOWNLOAD,
            data_object=data_object,
            ip_address="192.0.2.1",
            after={"tier": "shared"},
        ),
        "deleted": audit_event_record(
            actor=pm.user,
            action=AuditEvent.Action.DELETED,
            data_object=data_object,
            ip_address="192.0.2.2",
            before={"name": "秘密の切片.tiff", "size": 1024},
            detail='with "quotes", commas\nand a line break',
        ),
        "other": audit_event_record(
            actor=other_pm.user,
            action=AuditEvent.Action.DOWNLOAD,
            data_object=other_object,
            ip_address="192.0.2.3",
        ),
    }
    return {
        "pm": pm.user,
        "project": pm.project,
        "other_pm": other_pm.user,
        "other_project": other_pm.project,
        "object": data_object,
        "events": events,
    }


def shown_ids(response) -> list[int]:
    return [event.pk for event in response.context["page"].object_list]


# --- Who reads which trail ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("pm", 200),
        ("data_manager", 200),
        ("curator", 200),
        ("superuser", 200),
        ("researcher", 404),
        ("collaborator", 404),
        ("other_pm", 404),
        ("outsider", 404),
        ("anonymous", 302),
    ],
)
def test_project_trail_is_for_its_stewards_and_curators(client, trail, who, expected):
    project = trail["project"]
    users = {
        "pm": trail["pm"],
        "data_manager": MembershipFactory(project=project, role=Role.DATA_MANAGER).user,
        "curator": make_curator(),
        "superuser": make_superuser(),
        "researcher": MembershipFactory(project=project, role=Role.RESEARCHER).user,
        "collaborator": MembershipFactory(project=project, role=Role.COLLABORATOR).user,
        "other_pm": trail["other_pm"],
        "outsider": UserFactory(),
        "anonymous": None,
    }
    if users[who]:
        client.force_login(users[who])

    page = client.get(f"/projects/{project.pk}/audit/")
    export = client.get(f"/projects/{project.pk}/audit/?format=csv")

    assert (page.status_code, export.status_code) == (expected, expected)
    if expected == 200:
        assert sorted(shown_ids(page)) == sorted(
            [trail["events"]["download"].pk, trail["events"]["deleted"].pk]
        )


@pytest.mark.parametrize(
    ("who", "expected"),
    [("curator", 200), ("superuser", 200), ("pm", 404), ("staff", 404), ("anonymous", 302)],
)
def test_site_trail_is_for_curators(client, trail, who, expected):
    users = {
        "curator": make_curator(),
        "superuser": make_superuser(),
        "pm": trail["pm"],
        "staff": UserFactory(is_staff=True),
        "anonymous": None,
    }
    if users[who]:
        client.force_login(users[who])

    response = client.get("/audit/")

    assert response.status_code == expected
    if expected == 200:
        assert sorted(shown_ids(response)) == sorted(e.pk for e in trail["events"].values())


def test_navigation_links_the_site_trail_for_curators_only(client, trail):
    client.force_login(make_curator())
    curator_page = client.get("/").content.decode()
    client.force_login(UserFactory(is_staff=True))
    staff_page = client.get("/").content.decode()

    assert 'href="/audit/"' in curator_page
    assert 'href="/audit/"' not in staff_page


def test_project_page_links_the_trail_for_stewards(client, trail):
    collaborator = MembershipFactory(project=trail["project"], role=Role.COLLABORATOR).user
    link = f'href="/projects/{trail["project"].pk}/audit/"'

    client.force_login(trail["pm"])
    steward_page = client.get(f"/projects/{trail['project'].pk}/").content.decode()
    client.force_login(collaborator)
    member_page = client.get(f"/projects/{trail['project'].pk}/").content.decode()

    assert link in steward_page
    assert link not in member_page


def test_the_pages_offer_no_way_to_change_the_trail(client, trail):
    client.force_login(trail["pm"])
    url = f"/projects/{trail['project'].pk}/audit/"

    page = client.get(url).content.decode()

    assert 'method="post"' not in page.split('id="audit-filter"')[1]
    assert client.post(url).status_code == 405
    assert client.delete(url).status_code == 405
    assert AuditEvent.objects.count() == 3


# --- Filters and pages ----------------------------------------------------------------------


def test_filter_by_action(client, trail):
    client.force_login(trail["pm"])

    response = client.get(f"/projects/{trail['project'].pk}/audit/", {"action": "deleted"})

    assert shown_ids(response) == [trail["events"]["deleted"].pk]


def test_filter_by_actor_name_or_username(client, trail):
    helper = MembershipFactory(project=trail["project"], role=Role.DATA_MANAGER).user
    helper.name_en = "Taro Yamada"
    helper.save()
    theirs = audit_event_record(
        actor=helper, action=AuditEvent.Action.DOWNLOAD, data_object=trail["object"]
    )
    client.force_login(trail["pm"])
    url = f"/projects/{trail['project'].pk}/audit/"

    by_name = client.get(url, {"actor": "yamada"})
    by_username = client.get(url, {"actor": "HANAKO"})

    assert shown_ids(by_name) == [theirs.pk]
    assert sorted(shown_ids(by_username)) == sorted(
        [trail["events"]["download"].pk, trail["events"]["deleted"].pk]
    )


def test_filter_by_date_range_in_whole_local_days(client, trail):
    today = timezone.localdate()
    ten_days_ago = today - datetime.timedelta(days=10)
    old = AuditEvent.objects.create(
        action=AuditEvent.Action.DOWNLOAD,
        project=trail["project"],
        data_object=trail["object"],
        occurred_at=timezone.make_aware(
            datetime.datetime.combine(ten_days_ago, datetime.time(23, 59))
        ),
    )
    client.force_login(trail["pm"])
    url = f"/projects/{trail['project'].pk}/audit/"

    only_old = client.get(url, {"date_from": ten_days_ago, "date_to": ten_days_ago})
    only_recent = client.get(url, {"date_from": today - datetime.timedelta(days=9)})
    up_to_old = client.get(url, {"date_to": ten_days_ago})

    assert shown_ids(only_old) == [old.pk]
    assert old.pk not in shown_ids(only_recent)
    assert len(shown_ids(only_recent)) == 2
    assert shown_ids(up_to_old) == [old.pk]


@pytest.mark.parametrize(
    "query",
    [
        {"date_from": "yesterday"},
        {"action": "rewrite_history"},
        {"date_from": "2030-01-02", "date_to": "2030-01-01"},
    ],
)
def test_bad_filters_are_a_400_with_the_error_shown(client, trail, query):
    client.force_login(trail["pm"])

    response = client.get(f"/projects/{trail['project'].pk}/audit/", query)
    export = client.get(f"/projects/{trail['project'].pk}/audit/", {**query, "format": "csv"})

    assert response.status_code == 400
    assert 'class="field-errors"' in response.content.decode() or "form-errors" in (
        response.content.decode()
    )
    assert export.status_code == 400


def test_unknown_export_format_answers_404(client, trail):
    client.force_login(trail["pm"])

    assert client.get(f"/projects/{trail['project'].pk}/audit/?format=xlsx").status_code == 404


def test_the_trail_is_paginated_newest_first(client, trail, settings):
    settings.KURA_AUDIT_PAGE_SIZE = 2
    client.force_login(trail["pm"])
    url = f"/projects/{trail['project'].pk}/audit/"
    extra = audit_event_record(
        actor=trail["pm"], action=AuditEvent.Action.DOWNLOAD, data_object=trail["object"]
    )

    first = client.get(url)
    second = client.get(url, {"page": 2})
    beyond = client.get(url, {"page": 99})

    expected = [extra.pk, trail["events"]["deleted"].pk, trail["events"]["download"].pk]
    assert shown_ids(first) + shown_ids(second) == expected
    assert shown_ids(beyond) == shown_ids(second)
    assert "page=2" in first.content.decode()


def test_page_queries_do_not_grow_with_events(client, trail, django_assert_max_num_queries):
    for _ in range(30):
        audit_event_record(
            actor=trail["pm"], action=AuditEvent.Action.DOWNLOAD, data_object=trail["object"]
        )
    client.force_login(trail["pm"])

    with django_assert_max_num_queries(12):
        response = client.get(f"/projects/{trail['project'].pk}/audit/")

    assert len(shown_ids(response)) == 32


# --- CSV ------------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"))))


def test_csv_export_streams_the_filtered_trail(client, trail):
    client.force_login(trail["pm"])

    response = client.get(f"/projects/{trail['project'].pk}/audit/?format=csv&action=deleted")

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    (row,) = read_csv(response)
    event = trail["events"]["deleted"]
    assert row == {
        "occurred_at": timezone.localtime(event.occurred_at).isoformat(),
        "actor": "hanako",
        "action": "deleted",
        "project_id": str(trail["project"].pk),
        "project": trail["project"].name,
        "data_object_id": str(trail["object"].pk),
        "data_object": "秘密の切片.tiff",
        "record_id": str(trail["object"].record_id),
        "record": trail["object"].record.data_number,
        "before": "File name: 秘密の切片.tiff\nSize (bytes): 1024",  # labels, not JSON
        "after": "",
        "ip_address": "192.0.2.2",
        "detail": 'with "quotes", commas\nand a line break',
    }


def test_site_csv_covers_every_project_and_system_events(client, trail):
    AuditEvent.objects.create(
        action=AuditEvent.Action.FIXITY_FAILED, project=trail["other_project"], detail="mismatch"
    )
    client.force_login(make_curator())

    rows = read_csv(client.get("/audit/?format=csv"))

    assert {row["project_id"] for row in rows} == {
        str(trail["project"].pk),
        str(trail["other_project"].pk),
    }
    assert len(rows) == 4
    system = next(row for row in rows if row["action"] == "fixity_failed")
    assert (system["actor"], system["data_object"]) == ("", "")


def test_csv_lines_are_produced_lazily(trail, django_assert_num_queries):
    for _ in range(5):
        audit_event_record(
            actor=trail["pm"], action=AuditEvent.Action.DOWNLOAD, data_object=trail["object"]
        )
    lines = audit.audit_csv_lines(audit.audit_events(project=trail["project"]), chunk_size=2)

    with django_assert_num_queries(0):
        header = next(lines)
    # Server-side cursors are off inside the test transaction, so the rows come in one read;
    # the point is that nothing is read before the first row is asked for.
    rest = list(lines)

    assert header.decode("utf-8-sig").startswith("occurred_at,actor,action")
    assert len(rest) == 7


# --- Coverage: every event that must be audited is, with its facts ------------------------


def test_fixity_failure_is_audited_without_an_actor(on_commit_mail):
    data_object = store_object(b"original bytes", tier=Tier.SHARED)
    data_object_checksum_verify(data_object_id=data_object.pk)
    overwrite_behind_kuras_back(data_object.storage_key, b"tampered bytes")
    DataObject.objects.filter(pk=data_object.pk).update(last_fixity_at=None)

    fixity_sweep()

    event = AuditEvent.objects.get(action=AuditEvent.Action.FIXITY_FAILED)
    assert (event.actor, event.data_object, event.project_id) == (
        None,
        data_object,
        data_object.project_id,
    )
    assert event.before == {"quarantined": False}
    assert event.after == {"quarantined": True}
    assert event.detail


@pytest.fixture
def on_commit_mail(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        yield


def test_download_of_non_public_data_is_audited_and_public_is_not(client):
    member = MembershipFactory(role=Role.RESEARCHER)
    shared = DataObjectFactory(project=member.project, uploaded_by=member.user, tier=Tier.SHARED)
    public = DataObjectFactory(project=member.project, uploaded_by=member.user, tier=Tier.PUBLIC)
    for data_object in (shared, public):
        default_storage.save(data_object.storage_key, ContentFile(b"x"))
    client.force_login(member.user)

    client.get(f"/objects/{shared.pk}/download", REMOTE_ADDR="192.0.2.99")
    client.get(f"/objects/{public.pk}/download")

    event = AuditEvent.objects.get()
    assert (event.action, event.data_object, event.actor, event.ip_address) == (
        AuditEvent.Action.DOWNLOAD,
        shared,
        member.user,
        "192.0.2.99",
    )
    assert event.after == {"tier": Tier.SHARED}


def test_record_level_events_need_a_subject():
    with pytest.raises(ValueError, match="data object or a record"):
        audit_event_record(actor=None, action=AuditEvent.Action.GRANT_CREATED)


def test_record_level_event_takes_project_from_the_record():
    record = DmpRecordFactory(project=ProjectFactory())

    event = audit_event_record(
        actor=UserFactory(), action=AuditEvent.Action.GRANT_CREATED, record=record
    )

    assert (event.project, event.record, event.data_object) == (record.project, record, None)


def test_deleted_objects_keep_their_audit_link():
    data_object = DataObjectFactory(status=DataObject.Status.DELETED)
    event = audit_event_record(
        actor=None, action=AuditEvent.Action.DELETED, data_object=data_object
    )

    assert AuditEvent.objects.get(pk=event.pk).data_object == data_object


# --- Hostile text in the CSV ----------------------------------------------------------------

FORMULA = '=HYPERLINK("http://x","y")'


def test_an_outsiders_purpose_reaches_the_csv_as_text_not_a_formula(
    client, shared, outsider, django_capture_on_commit_callbacks
):
    """OWASP "CSV injection": a cell that starts like a formula is prefixed with ``'``."""
    client.force_login(outsider)
    client.post(f"/datasets/{shared['record'].pk}/request-access/", {"purpose": FORMULA})
    access_request = AccessRequest.objects.get(requester=outsider)
    client.force_login(shared["pm"])
    expires_on = timezone.localdate() + datetime.timedelta(days=30)
    prefix = f"approve-{access_request.pk}"
    with django_capture_on_commit_callbacks(execute=True):
        approved = client.post(
            f"/projects/{shared['project'].pk}/access-requests/{access_request.pk}/approve",
            {f"{prefix}-expires_on": expires_on.isoformat(), f"{prefix}-comment": ""},
        )
    assert approved.status_code == 302

    (row,) = read_csv(
        client.get(f"/projects/{shared['project'].pk}/audit/?format=csv&action=grant_created")
    )

    assert row["detail"] == "'" + FORMULA
    assert AccessRequest.objects.get(pk=access_request.pk).purpose == FORMULA  # stored as given


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_free_text_cell_that_starts_like_a_formula_is_neutralised(client, trail, start):
    trail["object"].original_filename = f"{start}1+1.tiff"
    trail["object"].save(update_fields=["original_filename"])
    trail["project"].name_en = trail["project"].name_ja = f"{start}cmd|'/c calc'!A1"
    trail["project"].save()
    audit_event_record(
        actor=trail["pm"],
        action=AuditEvent.Action.DOWNLOAD,
        data_object=trail["object"],
        detail=f"{start}SUM(A1:A9)",
    )
    client.force_login(trail["pm"])

    row = read_csv(client.get(f"/projects/{trail['project'].pk}/audit/?format=csv"))[0]

    assert row["detail"] == f"'{start}SUM(A1:A9)"
    assert row["data_object"] == f"'{start}1+1.tiff"
    assert row["project"] == f"'{start}cmd|'/c calc'!A1"
    assert row["actor"] == "hanako"  # ordinary text is left alone


# --- Dates beyond what the trail can hold ---------------------------------------------------


@pytest.mark.parametrize("path", ["/audit/", "/projects/{project}/audit/"])
@pytest.mark.parametrize("fmt", ["", "csv"])
def test_the_last_day_of_the_calendar_as_end_date_is_a_400_not_a_500(client, trail, path, fmt):
    client.force_login(make_curator())
    params = {"date_to": "9999-12-31", **({"format": fmt} if fmt else {})}

    response = client.get(path.format(project=trail["project"].pk), params)

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_date_to_errors"' in html
    assert "Enter a date before 9999-12-31." in html
    assert AuditEvent.objects.count() == len(trail["events"])


@pytest.mark.parametrize(
    ("query", "shown"),
    [
        ({"date_to": "9999-12-30"}, 3),
        ({"date_from": "0001-01-01"}, 3),
        ({"date_from": "9999-12-31"}, 0),
    ],
)
def test_other_far_dates_still_filter(client, trail, query, shown):
    client.force_login(make_curator())

    response = client.get("/audit/", query)

    assert response.status_code == 200
    assert len(shown_ids(response)) == shown
