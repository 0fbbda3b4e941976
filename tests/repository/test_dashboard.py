"""The PM dashboard: its figures against the database's own arithmetic, who may open it,
its fixed number of queries, its links, and the embargo window."""

import datetime
import re
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from dmp.common_metadata import REQUIRED, missing_items
from repository.access import Action, visible_to
from repository.dashboard import (
    EMBARGO_WINDOW_DAYS,
    RECENT_EVENTS,
    dashboard_objects,
    embargo_schedule,
)
from repository.models import AccessRequest, DataObject, RequestStatus
from repository.plans.selectors import EXPORT_FORMATS
from tests.dmp.complete_records import complete_record
from tests.factories import (
    AuditEventFactory,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    TierChangeRequestFactory,
    UserFactory,
    make_curator,
    make_program_officer,
    make_superuser,
)
from tests.repository import test_access
from tests.repository.test_pages import without_csrf_tokens

pytestmark = pytest.mark.django_db

STATES = ("pending", "verifying", "verified", "failed", "quarantined")


def url(project) -> str:
    return f"/projects/{project.pk}/dashboard/"


def months_ago(n: int) -> datetime.datetime:
    """Noon on the 10th, ``n`` months before this month (local time)."""
    today = timezone.localdate()
    year, month = divmod(today.year * 12 + today.month - 1 - n, 12)
    return datetime.datetime(year, month + 1, 10, 12, tzinfo=timezone.get_current_timezone())


@dataclass
class Seeded:
    project: object
    pm: object
    records: dict


def seed_project() -> Seeded:
    """A project with objects in every tier and checksum state, in three records and none,
    stored over several months; and noise the dashboard must not count."""
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    uploader = MembershipFactory(project=project, role=Role.RESEARCHER).user
    complete = complete_record(project, 1, data_type="experimental data")
    sparse = DmpRecordFactory(project=project, data_type="survey data", access_rights=Tier.SHARED)
    embargoed = DmpRecordFactory(
        project=project, data_type="experimental data", access_rights=Tier.EMBARGOED
    )
    DmpRecordFactory(project=project, data_type="simulation data")  # a record without objects
    today = timezone.localdate()
    tiers = [Tier.PUBLIC, Tier.SHARED, Tier.NON_SHARED, Tier.EMBARGOED]
    checksum = ["pending", "verifying", "verified", "failed", "verified", "verified"]
    for n in range(36):
        tier = tiers[n % 4]
        record = embargoed if tier == Tier.EMBARGOED else [complete, sparse, None][n % 3]
        DataObjectFactory(
            project=project,
            record=record,
            uploaded_by=uploader,
            tier=tier,
            available_date=today + datetime.timedelta(days=10 * n)
            if tier == Tier.EMBARGOED
            else None,
            size=1000 * (n + 1) + n * 7,
            checksum_state=checksum[n % len(checksum)],
            quarantined_at=timezone.now() if n % 11 == 5 else None,
            stored_at=months_ago(n % 5 if n % 5 != 3 else 4),  # a gap three months ago
        )
    # Not stored: left out.
    for status in (DataObject.Status.UPLOADING, DataObject.Status.DELETED):
        DataObjectFactory(project=project, record=complete, status=status, size=10**9)
    # Another project's objects: left out.
    DataObjectFactory(size=10**10, tier=Tier.PUBLIC)
    # Requests and events, pending and not, here and elsewhere.
    some = list(project.data_objects.all()[:3])
    TierChangeRequestFactory(project=project, requested_by=uploader, data_objects=some[:2])
    TierChangeRequestFactory(project=project, requested_by=uploader, data_objects=some[2:])
    TierChangeRequestFactory(
        project=project, requested_by=uploader, status=RequestStatus.REJECTED, data_objects=some
    )
    TierChangeRequestFactory()
    outsider = UserFactory()
    AccessRequest.objects.create(record=sparse, requester=outsider, purpose="Meta-analysis")
    AccessRequest.objects.create(
        record=complete, requester=outsider, purpose="Old", status=RequestStatus.APPROVED
    )
    AccessRequest.objects.create(record=DmpRecordFactory(), requester=outsider, purpose="Other")
    for n in range(25):
        AuditEventFactory(project=project, actor=pm, detail=f"event {n}")
    AuditEventFactory(detail="another project")
    return Seeded(project, pm, {"complete": complete, "sparse": sparse, "embargoed": embargoed})


def fetch(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


STORED = "FROM repository_dataobject o WHERE o.project_id = %s AND o.status = 'stored'"


@pytest.fixture
def seeded() -> Seeded:
    return seed_project()


@pytest.fixture
def dashboard(client, seeded):
    client.force_login(seeded.pm)
    response = client.get(url(seeded.project))
    assert response.status_code == 200
    return response


def test_totals_by_tier_equal_sql(seeded, dashboard):
    expected = {
        tier: (n, total)
        for tier, n, total in fetch(
            f"SELECT o.tier, COUNT(*), SUM(o.size) {STORED} GROUP BY o.tier", [seeded.project.pk]
        )
    }
    shown = {row["tier"]: (row["count"], row["bytes"]) for row in dashboard.context["tier_rows"]}
    assert shown == {tier.value: expected.get(tier.value, (0, 0)) for tier in Tier}
    ((count, volume),) = fetch(f"SELECT COUNT(*), SUM(o.size) {STORED}", [seeded.project.pk])
    assert (dashboard.context["totals"].count, dashboard.context["totals"].bytes) == (count, volume)
    body = dashboard.content.decode()
    assert f'<data value="{volume}">' in body
    for tier, (_, volume) in expected.items():
        row = re.search(rf'<tr data-tier="{tier}">.*?</tr>', body, re.S).group(0)
        assert f'<data value="{volume}">' in row


def test_totals_by_record_and_data_type_equal_sql(seeded, dashboard):
    by_record = {
        record_id: (n, total)
        for record_id, n, total in fetch(
            f"SELECT o.record_id, COUNT(*), SUM(o.size) {STORED} GROUP BY o.record_id",
            [seeded.project.pk],
        )
    }
    rows = dashboard.context["record_rows"]
    assert len(rows) == 4  # every record, with objects or not
    for row in rows:
        assert (row["figures"].count, row["figures"].bytes) == by_record.get(
            row["record"].pk, (0, 0)
        )
    without = dashboard.context["without_record"]
    assert (without.count, without.bytes) == by_record[None]
    assert without.count > 0

    by_type = {
        code: (n, total)
        for code, n, total in fetch(
            "SELECT r.data_type, COUNT(*), SUM(o.size) FROM repository_dataobject o "
            "JOIN dmp_dmprecord r ON r.id = o.record_id "
            "WHERE o.project_id = %s AND o.status = 'stored' GROUP BY r.data_type",
            [seeded.project.pk],
        )
    }
    shown = {
        row["code"]: (row["figures"].count, row["figures"].bytes)
        for row in dashboard.context["type_rows"]
    }
    assert shown == by_type
    assert set(by_type) == {"experimental data", "survey data"}


def test_checksum_states_equal_sql(seeded, dashboard):
    expected = dict(
        fetch(
            "SELECT CASE WHEN o.quarantined_at IS NOT NULL THEN 'quarantined' "
            f"ELSE o.checksum_state END, COUNT(*) {STORED} GROUP BY 1",
            [seeded.project.pk],
        )
    )
    shown = {row["state"]: row["count"] for row in dashboard.context["checksum_rows"]}
    assert list(shown) == list(STATES)
    assert shown == {state: expected.get(state, 0) for state in STATES}
    assert all(shown.values())  # the seed has every state


def test_growth_by_month_equals_sql(seeded, dashboard):
    rows = fetch(
        "SELECT to_char(date_trunc('month', COALESCE(o.stored_at, o.created_at) "
        f"AT TIME ZONE %s), 'YYYY-MM'), COUNT(*), SUM(o.size) {STORED} GROUP BY 1 ORDER BY 1",
        [timezone.get_current_timezone_name(), seeded.project.pk],
    )
    expected = {month: (n, total) for month, n, total in rows}
    months = dashboard.context["months"]
    shown = {m["month"].strftime("%Y-%m"): (m["count"], m["bytes"]) for m in months}
    assert {k: v for k, v in shown.items() if v != (0, 0)} == expected
    # Every month from the first to this one, the gap included, with a running total.
    assert len(months) == 5
    assert shown[months_ago(3).strftime("%Y-%m")] == (0, 0)
    assert months[-1]["month"] == timezone.localdate().replace(day=1)
    running = 0
    for month in months:
        running += month["bytes"]
        assert month["cumulative"] == running
    assert running == dashboard.context["totals"].bytes
    body = dashboard.content.decode()
    for month, (_, volume) in expected.items():
        row = re.search(rf'<tr data-month="{month}">.*?</tr>', body, re.S).group(0)
        assert f'<data value="{volume}">' in row


def test_charts_are_inline_svg_with_titles(dashboard):
    body = dashboard.content.decode()
    svgs = re.findall(r'<svg[^>]*role="img"[^>]*>.*?</svg>', body, re.S)  # not the swatches
    assert len(svgs) == 3  # storage growth, tier mix, usage (downloads by month)
    for svg in svgs:
        assert 'role="img"' in svg
        labelled_by = re.search(r'aria-labelledby="([^"]+)"', svg).group(1).split()
        for element_id in labelled_by:
            assert f'id="{element_id}"' in svg
        assert "<title" in svg and "<desc" in svg
    growth = dashboard.context["growth_chart"]
    assert len(growth["bars"]) == len(dashboard.context["months"])
    assert body.count('<rect class="bar"') == len(growth["bars"])
    mix = dashboard.context["tier_mix_chart"]
    assert sum(float(segment["width"]) for segment in mix["segments"]) == pytest.approx(
        mix["width"], abs=0.01 * len(mix["segments"])
    )
    # The charts need no JavaScript: the page has only the site's script for wide tables.
    assert re.findall(r"<script\b[^>]*>", body) == ['<script src="/static/js/tables.js" defer>']


def test_dmp_completeness_uses_the_required_rules(seeded, dashboard):
    rows = {row["record"].pk: row for row in dashboard.context["record_rows"]}
    complete = rows[seeded.records["complete"].pk]
    assert (complete["met"], complete["required"], complete["missing"]) == (
        len(REQUIRED),
        len(REQUIRED),
        [],
    )
    sparse = rows[seeded.records["sparse"].pk]
    # The factory fills the Data No., title, research field, data type and access rights;
    # a record that is not embargoed needs no available date.
    assert sparse["met"] == 6 == len(REQUIRED) - len(missing_items(seeded.records["sparse"]))
    assert sparse["required"] == len(REQUIRED)
    assert "Description" in sparse["missing"]
    assert dashboard.context["records_incomplete"] == 3
    body = dashboard.content.decode()
    row = re.search(rf'<tr data-record="{seeded.records["sparse"].pk}">.*?</tr>', body, re.S)
    assert f"6 of {len(REQUIRED)}" in row.group(0)
    edit = f"/projects/{seeded.project.pk}/dmp/records/{seeded.records['sparse'].pk}/edit/"
    assert f'href="{edit}"' in row.group(0)


def test_pending_requests_and_recent_activity_equal_sql(seeded, dashboard):
    ((tier_pending,),) = fetch(
        "SELECT COUNT(*) FROM repository_tierchangerequest WHERE project_id = %s "
        "AND status = 'pending'",
        [seeded.project.pk],
    )
    ((access_pending,),) = fetch(
        "SELECT COUNT(*) FROM repository_accessrequest a JOIN dmp_dmprecord r "
        "ON r.id = a.record_id WHERE r.project_id = %s AND a.status = 'pending'",
        [seeded.project.pk],
    )
    assert (tier_pending, access_pending) == (2, 1)
    assert dashboard.context["tier_requests_total"] == tier_pending
    assert dashboard.context["access_requests_total"] == access_pending
    assert [r.object_count for r in dashboard.context["tier_requests"]] == [2, 1]
    assert [r.purpose for r in dashboard.context["access_requests"]] == ["Meta-analysis"]
    latest = [
        pk
        for (pk,) in fetch(
            "SELECT id FROM repository_auditevent WHERE project_id = %s "
            "ORDER BY occurred_at DESC, id DESC LIMIT %s",
            [seeded.project.pk, RECENT_EVENTS],
        )
    ]
    assert [event.pk for event in dashboard.context["events"]] == latest
    body = dashboard.content.decode()
    assert "event 24" in body and "event 14" not in body and "another project" not in body


def test_export_buttons(seeded, dashboard, client):
    body = dashboard.content.decode()
    for fmt in ("csti-csv-ja", "csti-csv-en", "madmp-json", "moonshot-xlsx"):
        assert fmt in EXPORT_FORMATS
        link = f"/projects/{seeded.project.pk}/dmp/?format={fmt}"
        assert f'href="{link}"' in body
    response = client.get(f"/projects/{seeded.project.pk}/dmp/?format=csti-csv-en")
    assert response.status_code == 200
    assert "Dataset 1" in b"".join(response.streaming_content).decode()


# --- Who may open it ------------------------------------------------------------------------


def make_viewer(kind: str, project):
    match kind:
        case "pm" | "data_manager" | "researcher" | "collaborator":
            return MembershipFactory(project=project, role=kind).user
        case "curator":
            return make_curator()
        case "superuser":
            return make_superuser()
        case "program_officer":
            return make_program_officer()
        case "outsider":
            return UserFactory()
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["pm", "data_manager", "curator", "superuser"])
def test_stewards_and_curators_read_it(client, kind):
    project = ProjectFactory()
    record = DmpRecordFactory(project=project)
    DataObjectFactory(project=project, record=record, size=4321)
    client.force_login(make_viewer(kind, project))

    response = client.get(url(project))

    assert response.status_code == 200
    assert response.context["totals"].bytes == 4321
    edit_link = f"/projects/{project.pk}/dmp/records/{record.pk}/edit/"
    # Curators read: they get no link to change the DMP.
    assert (edit_link in response.content.decode()) is (kind != "curator")


@pytest.mark.parametrize("kind", ["researcher", "collaborator", "outsider", "program_officer"])
def test_others_get_the_missing_project_404(client, kind):
    project = ProjectFactory()
    DataObjectFactory(project=project, tier=Tier.PUBLIC)  # the project page itself is open
    client.force_login(make_viewer(kind, project))

    response = client.get(url(project))
    missing = client.get(f"/projects/{project.pk + 1000}/dashboard/")

    assert response.status_code == missing.status_code == 404

    def page(response, project_id) -> bytes:  # the path is echoed in the language switcher
        return without_csrf_tokens(response.content).replace(f"/{project_id}/".encode(), b"/N/")

    assert page(response, project.pk) == page(missing, project.pk + 1000)


def test_anonymous_is_sent_to_log_in(client):
    project = ProjectFactory()

    response = client.get(url(project))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize(
    "kind, linked",
    [("pm", True), ("data_manager", True), ("curator", True), ("researcher", False)],
)
def test_project_page_links_the_dashboard_for_those_who_may_see_it(client, kind, linked):
    project = ProjectFactory()
    client.force_login(make_viewer(kind, project))

    response = client.get(f"/projects/{project.pk}/")

    assert response.status_code == 200
    assert (f'href="{url(project)}"' in response.content.decode()) is linked


def test_post_is_refused(client, seeded):
    client.force_login(seeded.pm)
    assert client.post(url(seeded.project)).status_code == 405


# --- A fixed number of queries -----------------------------------------------------------


def add_objects(project, records, count: int) -> None:
    tiers = [Tier.PUBLIC, Tier.SHARED, Tier.NON_SHARED, Tier.EMBARGOED]
    today = timezone.localdate()
    for n in range(count):
        tier = tiers[n % 4]
        DataObjectFactory(
            project=project,
            record=records[n % len(records)],
            tier=tier,
            available_date=today + datetime.timedelta(days=n) if tier == Tier.EMBARGOED else None,
            checksum_state=STATES[n % 4],
            stored_at=months_ago(n % 7),
        )


def count_queries(client, project) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url(project))
    assert response.status_code == 200
    return len(queries)


def test_queries_do_not_grow_with_objects(client, django_assert_max_num_queries):
    project = ProjectFactory()
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    records = [DmpRecordFactory(project=project) for _ in range(3)]
    add_objects(project, records, 4)
    few = count_queries(client, project)

    records += [DmpRecordFactory(project=project) for _ in range(5)]
    add_objects(project, records, 80)
    for _ in range(30):
        AuditEventFactory(project=project)
    TierChangeRequestFactory(
        project=project,
        requested_by=records[0].project.memberships.first().user,
        data_objects=list(project.data_objects.all()[:20]),
    )
    many = count_queries(client, project)

    assert many == few
    with django_assert_max_num_queries(16):
        assert client.get(url(project)).status_code == 200


# --- Checksum links --------------------------------------------------------------------------


def listed_object_ids(body: str) -> set[int]:
    section = re.search(
        r'<section class="panel" aria-labelledby="data-objects">.*?</section>', body, re.S
    )
    return {int(pk) for pk in re.findall(r'href="/objects/(\d+)/"', section.group(0))}


@pytest.mark.parametrize("state", STATES)
def test_checksum_state_links_lead_to_the_objects_in_that_state(client, seeded, state):
    client.force_login(seeded.pm)
    body = client.get(url(seeded.project)).content.decode()
    item = re.search(rf'<li class="stat" data-state="{state}">.*?</li>', body, re.S).group(0)
    href = re.search(r'href="([^"]+)"', item).group(1).replace("&amp;", "&")
    shown_count = int(re.search(r">(\d+)</a>", item).group(1))

    page = client.get(href)

    assert page.status_code == 200
    condition = (
        "o.quarantined_at IS NOT NULL"
        if state == "quarantined"
        else "o.quarantined_at IS NULL AND o.checksum_state = %s"
    )
    params = [seeded.project.pk] + ([] if state == "quarantined" else [state])
    expected = {pk for (pk,) in fetch(f"SELECT o.id {STORED} AND {condition}", params)}
    assert expected
    assert listed_object_ids(page.content.decode()) == expected
    assert shown_count == len(expected)


def test_unknown_checksum_filter_is_a_400(client, seeded):
    client.force_login(seeded.pm)

    response = client.get(f"/projects/{seeded.project.pk}/?checksum=bogus")

    assert response.status_code == 400
    assert "bogus" in response.content.decode()


def test_checksum_filter_keeps_the_access_rules(client):
    project = ProjectFactory()
    hidden = DataObjectFactory(project=project, tier=Tier.NON_SHARED, checksum_state="failed")
    shown = DataObjectFactory(project=project, tier=Tier.PUBLIC, checksum_state="failed")
    client.force_login(UserFactory())

    response = client.get(f"/projects/{project.pk}/?checksum=failed")

    assert response.status_code == 200
    assert listed_object_ids(response.content.decode()) == {shown.pk}
    assert hidden.pk not in listed_object_ids(response.content.decode())


# --- Embargo window -------------------------------------------------------------------------


@pytest.mark.parametrize("days, listed", [(89, True), (90, True), (91, False)])
def test_embargo_window_boundaries(client, days, listed):
    assert EMBARGO_WINDOW_DAYS == 90
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = DmpRecordFactory(project=project, access_rights=Tier.EMBARGOED)
    lifts = timezone.localdate() + datetime.timedelta(days=days)
    DataObjectFactory(project=project, record=record, tier=Tier.EMBARGOED, available_date=lifts)
    DataObjectFactory(project=project, record=record, tier=Tier.SHARED)
    client.force_login(pm)

    response = client.get(url(project))

    dates = [entry["available_date"] for entry in response.context["embargoes"]]
    assert dates == ([lifts] if listed else [])
    assert (f'<tr data-date="{lifts:%Y-%m-%d}">' in response.content.decode()) is listed


def test_embargo_schedule_equals_sql(seeded, dashboard):
    today = timezone.localdate()
    rows = fetch(
        "SELECT o.available_date, o.record_id, COUNT(*), SUM(o.size) "
        f"{STORED} AND o.tier = 'embargoed' AND o.available_date <= %s "
        "GROUP BY 1, 2 ORDER BY 1, 2",
        [seeded.project.pk, today + datetime.timedelta(days=90)],
    )
    shown = [
        (e["available_date"], e["record_id"], e["count"], e["bytes"])
        for e in dashboard.context["embargoes"]
    ]
    assert shown == rows
    assert rows  # the seed has embargoes within the window and beyond it
    lifting = dashboard.context["embargoes_lifting"]
    assert (lifting["count"], lifting["bytes"]) == (
        sum(row[2] for row in rows),
        sum(row[3] for row in rows),
    )
    ((beyond,),) = fetch(
        f"SELECT COUNT(*) {STORED} AND o.tier = 'embargoed' AND o.available_date > %s",
        [seeded.project.pk, today + datetime.timedelta(days=90)],
    )
    assert beyond > 0


def test_embargo_schedule_lists_the_projects_embargoes_lifting_in_the_window():
    """The one list of embargoes lifting soon: the project's stored objects its viewer may
    see, grouped by day and record, soonest first."""
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    record, other_record = DmpRecordFactory(project=project), DmpRecordFactory(project=project)
    today = timezone.localdate()

    def embargo(days, **fields):
        values = {"project": project, "record": record, "tier": Tier.EMBARGOED, "size": 10}
        available_date = today + datetime.timedelta(days=days)
        return DataObjectFactory(available_date=available_date, **{**values, **fields})

    embargo(3)
    embargo(20), embargo(20), embargo(20, record=other_record)
    embargo(EMBARGO_WINDOW_DAYS + 1)  # beyond the window
    embargo(5, status=DataObject.Status.DELETED)  # no bytes any more
    embargo(2, project=ProjectFactory(), record=None)  # another project
    DataObjectFactory(project=project, record=record, tier=Tier.SHARED)

    schedule = embargo_schedule(dashboard_objects(user=pm, project=project), today=today)

    assert [(e["days"], e["record_id"], e["count"], e["bytes"]) for e in schedule] == [
        (3, record.pk, 1, 10),
        (20, record.pk, 2, 20),
        (20, other_record.pk, 1, 10),
    ]
    outsider = dashboard_objects(user=UserFactory(), project=project)  # embargoes are listed
    assert [e["count"] for e in embargo_schedule(outsider, today=today)] == [1, 2, 1]


def test_japanese(client, seeded):
    client.force_login(seeded.pm)
    client.cookies.load({"django_language": "ja"})

    response = client.get(url(seeded.project))

    assert response.status_code == 200
    assert '<html lang="ja">' in response.content.decode()


def test_embargo_schedule_is_bounded_and_says_what_it_leaves_out(client, monkeypatch):
    monkeypatch.setattr("repository.dashboard.EMBARGO_LIST", 2)
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = DmpRecordFactory(project=project, access_rights=Tier.EMBARGOED)
    today = timezone.localdate()
    for days in (-3, 5, 5, 40, 60):  # one overdue: still embargoed, lifts with the next run
        DataObjectFactory(
            project=project,
            record=record,
            tier=Tier.EMBARGOED,
            available_date=today + datetime.timedelta(days=days),
            size=100,
        )
    client.force_login(pm)

    response = client.get(url(project))

    entries = response.context["embargoes"]
    assert [(e["days"], e["count"], e["due"]) for e in entries] == [(-3, 1, True), (5, 2, False)]
    assert response.context["embargoes_lifting"] == {"count": 5, "bytes": 500}
    assert response.context["embargoes_not_listed"] == 2
    assert "2 more objects lift later in the window." in response.content.decode()


# --- The project-bound access rule ------------------------------------------------------------


@pytest.mark.parametrize("state", test_access.STATES)
@pytest.mark.parametrize("role", test_access.ROLES)
def test_visible_to_a_project_gives_the_same_answer_as_filtering_afterwards(role, state):
    obj = test_access.build_object(state)
    user = test_access.build_user(role, obj)
    neighbour = DataObjectFactory(
        project=ProjectFactory(), tier=obj.tier, available_date=obj.available_date, record=None
    )
    MembershipFactory(project=neighbour.project, user=obj.uploaded_by, role=Role.PM)
    for action in Action:
        bound = set(visible_to(user, action, project=obj.project).values_list("pk", flat=True))
        filtered = set(
            visible_to(user, action).filter(project=obj.project).values_list("pk", flat=True)
        )
        assert bound == filtered
        assert bound == ({obj.pk} if test_access.allowed(role, state, action) else set())


# --- The table by DMP record, page by page -------------------------------------------------


def test_the_record_table_shows_a_page_and_counts_every_record(client):
    from repository.dashboard import RECORD_PAGE

    project = ProjectFactory()
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    complete = [complete_record(project, number=n) for n in range(1, 4)]
    sparse = [
        DmpRecordFactory(project=project, data_number=f"S-{n:03d}") for n in range(RECORD_PAGE + 2)
    ]
    ordered = sorted(complete + sparse, key=lambda record: (record.data_number, record.pk))

    def rows(response) -> list[int]:
        body = response.content.decode()
        return [int(pk) for pk in re.findall(r'<tr data-record="(\d+)">', body)]

    first = client.get(url(project))
    assert rows(first) == [record.pk for record in ordered[:RECORD_PAGE]]
    # Incomplete records are counted over all pages, not the one shown.
    assert first.context["records_incomplete"] == len(sparse)
    assert f"Records 1–{RECORD_PAGE} of {len(ordered)}" in first.content.decode()
    assert 'href="?records=2#dash-records"' in first.content.decode()

    second = client.get(url(project), {"records": "2"})
    assert rows(second) == [record.pk for record in ordered[RECORD_PAGE:]]
    assert second.context["records_incomplete"] == len(sparse)
    # Past the last page: the last page.
    assert rows(client.get(url(project), {"records": "99"})) == rows(second)


@pytest.mark.parametrize("page", ["x", "-1", "1.5", "9" * 12, "²", "١"])
def test_a_bad_record_page_is_refused_clearly(client, page):
    project = ProjectFactory()
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    response = client.get(url(project), {"records": page})
    assert response.status_code == 400
    assert "Not a page number" in response.content.decode()


# --- Reads that do not grow with the records; rows written in Python ----------------------------


def test_incomplete_records_counted_over_every_page_equal_a_recount(client):
    from dmp.common_metadata import missing_requirements
    from dmp.models import DmpRecord
    from repository.dashboard import RECORD_PAGE

    project = ProjectFactory()
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)
    for n in range(1, 2 * RECORD_PAGE + 8):
        if n % 3:
            DmpRecordFactory(project=project, data_number=f"S-{n:03d}")
        else:  # complete, or complete but for one item
            complete_record(project, number=n, **({"data_type": ""} if n % 2 else {}))
    DmpRecordFactory(data_number="X-001")  # another project's: not counted
    recount = sum(
        bool(missing_requirements(record)) for record in DmpRecord.objects.filter(project=project)
    )
    assert 0 < recount < DmpRecord.objects.filter(project=project).count()

    rows_read = []

    def count_rows(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "dmp_dmprecord" in sql:
            rows_read.append(context["cursor"].rowcount)
        return result

    with connection.execute_wrapper(count_rows):
        last = client.get(url(project), {"records": "3"})
    assert last.context["records_incomplete"] == recount
    assert client.get(url(project)).context["records_incomplete"] == recount
    # The records are read a page at a time: no read of every record.
    assert rows_read and max(rows_read) <= RECORD_PAGE


def test_figures_from_the_tallies_equal_those_counted_from_the_objects(seeded, monkeypatch):
    from repository import dashboard

    def figures(context) -> dict:
        return {
            "totals": (context["totals"].count, context["totals"].bytes, context["totals"].tiers),
            "without": (context["without_record"].count, context["without_record"].bytes),
            "types": [
                (r["code"], r["figures"].count, r["figures"].bytes) for r in context["type_rows"]
            ],
            "records": [
                (r["record"].pk, r["figures"].count, r["figures"].bytes, r["figures"].tiers)
                for r in context["record_rows"]
            ],
            "checksum": context["checksum_rows"],
            "incomplete": context["records_incomplete"],
            "months": context["months"],
        }

    tallied = dashboard.project_dashboard_context(user=seeded.pm, project=seeded.project)
    monkeypatch.setattr(dashboard, "tally_in_use", lambda: False)
    counted = dashboard.project_dashboard_context(user=seeded.pm, project=seeded.project)
    assert figures(tallied) == figures(counted)
    assert len(tallied["type_rows"]) == 2 and tallied["without_record"].count > 0


def test_figures_by_type_leave_unseen_records_out_of_the_types_but_in_the_totals():
    from repository.dashboard import figures_by_type

    def row(record_id, count):
        return {"record_id": record_id, "count": count, "bytes": 10 * count}

    rows = figures_by_type([row(1, 1), row(2, 2), row(3, 4), row(None, 8)], {1: "a", 2: "a"})
    assert sorted(rows, key=lambda r: r["count"]) == [
        {"has_record": True, "data_type": "a", "count": 3, "bytes": 30},
        {"has_record": True, "data_type": None, "unseen": True, "count": 4, "bytes": 40},
        {"has_record": False, "data_type": None, "count": 8, "bytes": 80},
    ]


SIZES = [
    *(2**n + d for n in range(0, 61, 5) for d in (-1, 0, 1)),
    *(10**n for n in range(0, 19)),
    1023,
    1024,
    1_048_575,
    1_048_576,
    1_073_741_823,
    1_099_511_627_775,
    1_125_899_906_842_623,
    1_125_899_906_842_624,
    104_857,  # 102.399… KB: rounds to 102.4
    1_153_433,  # 1.09999… MB: rounds to 1.1
]


@pytest.mark.parametrize("language", ["en", "ja"])
def test_size_text_writes_what_the_filesizeformat_filter_writes(language, settings):
    import random

    from django.template.defaultfilters import filesizeformat
    from django.utils import translation

    from repository.dashboard_rows import number_text, size_text

    rng = random.Random(14)  # every order of magnitude alike
    sizes = [*SIZES, *(rng.randrange(2 ** rng.randrange(10, 62)) for _ in range(500))]
    with translation.override(language):
        for size in sizes:
            assert size_text(size) == filesizeformat(size), size
        settings.USE_THOUSAND_SEPARATOR = True
        assert size_text(2**40 * 1500) == filesizeformat(2**40 * 1500)
        assert number_text(1234567) == "1,234,567"
        settings.USE_THOUSAND_SEPARATOR = False
        assert number_text(1234567) == "1234567"


def test_url_maker_writes_what_reverse_writes():
    from django.urls import reverse

    from repository.dashboard_rows import url_maker

    detail = url_maker("dmp-record-detail", 42)
    for pk in (1, 42, 4242424242, 10**12):
        assert detail(pk) == reverse("dmp-record-detail", args=[42, pk])
        assert url_maker("object-detail")(pk) == reverse("object-detail", args=[pk])
    assert url_maker("dmp-record-edit", 4242424242)(7) == reverse(
        "dmp-record-edit", args=[4242424242, 7]
    )


def test_rows_written_in_python_escape_what_people_typed(client):
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    typed = '<b onclick="x()">R&D</b>'
    record = DmpRecordFactory(
        project=project, title_en=typed, data_number="<i>1</i>", access_rights=Tier.EMBARGOED
    )
    DataObjectFactory(
        project=project,
        record=record,
        tier=Tier.EMBARGOED,
        available_date=timezone.localdate() + datetime.timedelta(days=3),
        original_filename="<svg onload=x>.tiff",
    )
    AuditEventFactory(project=project, actor=pm, detail=typed, record=record)
    client.force_login(pm)

    body = client.get(url(project)).content.decode()

    assert "<b onclick" not in body and "<i>1</i>" not in body
    escaped = "&lt;b onclick=&quot;x()&quot;&gt;R&amp;D&lt;/b&gt;"
    for table in ("record-table", "embargo-table", "activity-table"):
        section = re.search(rf'<table id="{table}".*?</table>', body, re.S).group(0)
        assert escaped in section or "&lt;i&gt;1&lt;/i&gt;" in section, table
    records = re.search(r'<table id="record-table".*?</table>', body, re.S).group(0)
    assert escaped in records and "<code>&lt;i&gt;1&lt;/i&gt;</code>" in records


def test_a_curator_follows_pending_tier_changes_to_the_review_pages_with_the_same_count(
    client, seeded
):
    client.force_login(make_curator())
    body = client.get(url(seeded.project)).content.decode()
    queue = f'href="/review/?project={seeded.project.pk}"'
    assert queue in body
    pending = seeded.project.tier_requests.filter(status=RequestStatus.PENDING)
    for request in pending:
        assert f'href="/review/{request.pk}/"' in body
    assert "/access-requests/" not in body  # the PM decides those, not the curator

    listed = client.get(f"/review/?project={seeded.project.pk}").content.decode()

    shown = set(map(int, re.findall(r'data-request-id="(\d+)"', listed)))
    assert shown == {request.pk for request in pending}
    assert len(shown) == seeded.project.tier_requests.filter(status="pending").count() == 2
    # The figure the curator clicks is the number of requests the queue then lists.
    stat = f'id="stat-tier-requests"><span class="stat-value"><a {queue}>'
    figure = re.search(re.escape(stat) + r"(\d+)<", body)
    assert figure and int(figure.group(1)) == len(shown)


def test_the_pm_follows_pending_access_requests_to_the_queue_with_the_same_count(
    client, seeded, dashboard
):
    body = dashboard.content.decode()
    queue = f"/projects/{seeded.project.pk}/access-requests/"
    (pending,) = AccessRequest.objects.filter(
        record__project=seeded.project, status=RequestStatus.PENDING
    )
    assert f'href="{queue}#request-{pending.pk}"' in body
    assert 'id="access-requests-decide"' in body
    # Tier changes are a curator's to decide: no link to pages the PM cannot open.
    assert "/review/" not in body

    listed = client.get(queue).content.decode()

    assert re.findall(r'<article class="panel access-request" id="request-(\d+)"', listed) == [
        str(pending.pk)
    ]
    assert dashboard.context["access_requests_total"] == 1
    figure = re.search(
        rf'id="stat-access-requests"><span class="stat-value"><a href="{queue}">(\d+)<', body
    )
    assert figure and int(figure.group(1)) == 1


def test_nothing_pending_links_nowhere(client):
    project = ProjectFactory()
    client.force_login(MembershipFactory(project=project, role=Role.PM).user)

    body = client.get(url(project)).content.decode()

    assert 'id="access-requests-decide"' not in body
    assert "/review/" not in body
