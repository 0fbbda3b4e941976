"""The dashboard's cached body: a second reading comes from the shared cache (Redis) with a
handful of queries, and every write to what the dashboard shows makes the cached copy
unreachable at once — the figures on the page always equal the database's own arithmetic.
Who may read the page is checked on every request; curators' and stewards' copies, and
languages, are kept apart; an unreachable cache only costs a rendering."""

import datetime
import re
from dataclasses import dataclass

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Membership, Role
from core import generations
from core.vocabularies import Tier
from dmp.models import DmpRecord
from repository import services
from repository.governance import grants, tiers
from repository.models import (
    AccessGrant,
    AccessRequest,
    AuditEvent,
    DataObject,
    RequestStatus,
    TierChangeRequest,
)
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
    TierChangeRequestFactory,
    UserFactory,
    make_curator,
)
from tests.repository.test_pages import without_csrf_tokens

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def dashboard_cache(settings):
    settings.KURA_DASHBOARD_CACHE_SECONDS = 300


def url(project) -> str:
    return f"/projects/{project.pk}/dashboard/"


@dataclass
class World:
    project: object
    pm: object
    uploader: object
    curator: object
    record: object
    public: object
    shared: object
    embargoed_later: object
    tier_request: object
    access_request: object


@pytest.fixture
def world() -> World:
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    uploader = MembershipFactory(project=project, role=Role.RESEARCHER, user__name_en="Ada").user
    record = DmpRecordFactory(project=project, title_en="Cached dashboard record")
    today = timezone.localdate()

    def add(tier, size, **fields):
        return DataObjectFactory(
            project=project, record=record, uploaded_by=uploader, tier=tier, size=size, **fields
        )

    public = add(Tier.PUBLIC, 1000)
    shared = add(Tier.SHARED, 2000, checksum_state="verified")
    add(Tier.EMBARGOED, 3000, available_date=today + datetime.timedelta(days=30))
    embargoed_later = add(Tier.EMBARGOED, 4000, available_date=today + datetime.timedelta(days=91))
    tier_request = TierChangeRequestFactory(
        project=project, requested_by=uploader, data_objects=[shared]
    )
    access_request = AccessRequest.objects.create(
        record=record, requester=UserFactory(), purpose="Meta-analysis"
    )
    return World(
        project,
        pm,
        uploader,
        make_curator(),
        record,
        public,
        shared,
        embargoed_later,
        tier_request,
        access_request,
    )


# --- What the page shows, and what the database says ---------------------------------------


def _stat(body: str, stat_id: str) -> int:
    # A figure someone may act on is a link to where they act.
    figure = r'(?:<a href="[^"]*">)?(?:<data value=")?(\d+)'
    value = re.search(rf'id="{stat_id}"><span class="stat-value">{figure}', body)
    return int(value.group(1))


def shown(body: str) -> dict:
    tiers_shown = {
        tier: int(count)
        for tier, count in re.findall(r'<tr data-tier="(\w+)">.*?<td class="num">(\d+)</td>', body)
    }
    states = {
        state: int(count)
        for state, count in re.findall(
            r'<li class="stat" data-state="(\w+)">\s*<a class="stat-value"[^>]*>(\d+)</a>', body
        )
    }
    return {
        "count": _stat(body, "stat-objects"),
        "bytes": _stat(body, "stat-bytes"),
        "tiers": tiers_shown,
        "checksum": states,
        "tier_requests": _stat(body, "stat-tier-requests"),
        "access_requests": _stat(body, "stat-access-requests"),
        "lifting": _stat(body, "stat-lifting"),
    }


def _fetch(sql: str, params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


STORED = "FROM repository_dataobject o WHERE o.project_id = %s AND o.status = 'stored'"


def expected(project) -> dict:
    """The same figures, asked of the database directly."""
    pk = project.pk
    ((count, volume),) = _fetch(f"SELECT COUNT(*), COALESCE(SUM(o.size), 0) {STORED}", [pk])
    by_tier = dict(_fetch(f"SELECT o.tier, COUNT(*) {STORED} GROUP BY o.tier", [pk]))
    states = dict(
        _fetch(
            "SELECT CASE WHEN o.quarantined_at IS NOT NULL THEN 'quarantined' "
            f"ELSE o.checksum_state END, COUNT(*) {STORED} GROUP BY 1",
            [pk],
        )
    )
    ((tier_requests,),) = _fetch(
        "SELECT COUNT(*) FROM repository_tierchangerequest WHERE project_id = %s "
        "AND status = 'pending'",
        [pk],
    )
    ((access_requests,),) = _fetch(
        "SELECT COUNT(*) FROM repository_accessrequest a JOIN dmp_dmprecord r "
        "ON r.id = a.record_id WHERE r.project_id = %s AND a.status = 'pending'",
        [pk],
    )
    ((lifting,),) = _fetch(
        f"SELECT COUNT(*) {STORED} AND o.tier = 'embargoed' AND o.available_date <= %s",
        [pk, timezone.localdate() + datetime.timedelta(days=90)],
    )
    return {
        "count": count,
        "bytes": volume,
        "tiers": {tier.value: by_tier.get(tier.value, 0) for tier in Tier},
        "checksum": {
            state: states.get(state, 0)
            for state in ("pending", "verifying", "verified", "failed", "quarantined")
        },
        "tier_requests": tier_requests,
        "access_requests": access_requests,
        "lifting": lifting,
    }


def read(client, project) -> str:
    response = client.get(url(project))
    assert response.status_code == 200
    return response.content.decode()


def queries(client, project) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as captured:
        body = read(client, project)
    return body, len(captured)


def cached_read(client, project) -> str:
    """Read the page twice, the second time from the cache (a handful of queries)."""
    _, first = queries(client, project)
    body, second = queries(client, project)
    assert second <= 4 < first
    return body


# --- The cache ----------------------------------------------------------------------------


def test_second_reading_comes_from_the_cache_with_far_fewer_queries(client, world):
    client.force_login(world.pm)

    first, uncached = queries(client, world.project)
    second, cached = queries(client, world.project)

    # The session, the user, the project with the viewer's role, the header's roles.
    assert cached <= 4
    assert uncached >= 10
    assert without_csrf_tokens(second.encode()) == without_csrf_tokens(first.encode())
    assert shown(second) == expected(world.project)
    assert world.pm.display_name in second  # the header is the reader's, live


def test_the_cache_can_be_switched_off(client, world, settings):
    settings.KURA_DASHBOARD_CACHE_SECONDS = 0
    client.force_login(world.pm)
    queries(client, world.project)

    _, second = queries(client, world.project)

    assert second >= 10


def _set_tier(obj, tier):
    obj.tier = tier
    obj.save()


def _tier_request_create(world):
    tiers.tier_request_create(
        actor=world.uploader,
        objects=[world.public],
        tier=Tier.PUBLIC,
        available_date=None,
        reason="Open it",
    )


def _tier_request_decide(world):
    tiers.tier_request_decide(
        actor=world.curator,
        tier_request_id=world.tier_request.pk,
        approve=False,
        comment="Not yet.",
    )


def _access_request_reject(world):
    grants.access_request_reject(
        actor=world.pm,
        project=world.project,
        access_request_id=world.access_request.pk,
        comment="Out of scope.",
    )


def _rename(user, name):
    user.name_en = name
    user.save()


# Each write, and a text it puts on the page (None: the figures alone change).
WRITES = {
    "object-save": (lambda w: _set_tier(w.public, Tier.NON_SHARED), None),
    "object-update": (
        lambda w: DataObject.objects.filter(pk=w.shared.pk).update(size=F("size") + 5),
        None,
    ),
    "object-bulk-update": (
        lambda w: DataObject.objects.bulk_update(
            [DataObject(pk=w.public.pk, tier=Tier.SHARED)], ["tier"]
        ),
        None,
    ),
    "object-quarantine": (
        lambda w: DataObject.objects.filter(pk=w.shared.pk).update(
            quarantined_at=timezone.now(), quarantine_reason="fixity"
        ),
        None,
    ),
    "object-create": (
        lambda w: DataObjectFactory(project=w.project, record=w.record, size=77),
        None,
    ),
    "object-delete": (lambda w: w.public.delete(), None),
    "record-save": (
        lambda w: setattr(w.record, "title_en", "Renamed cached record") or w.record.save(),
        "Renamed cached record",
    ),
    "record-update": (
        lambda w: DmpRecord.objects.filter(pk=w.record.pk).update(data_type="simulation data"),
        'data-type="simulation data"',
    ),
    "project-rename": (
        lambda w: setattr(w.project, "name_en", "Renamed cached project") or w.project.save(),
        "Renamed cached project",
    ),
    "tier-request-create": (_tier_request_create, None),
    "tier-request-decide": (_tier_request_decide, None),
    "tier-request-objects-added": (
        lambda w: w.tier_request.data_objects.add(w.public),
        "2 objects",
    ),
    "tier-request-update": (
        lambda w: TierChangeRequest.objects.filter(pk=w.tier_request.pk).update(
            status=RequestStatus.CANCELLED
        ),
        None,
    ),
    "access-request-create": (
        lambda w: AccessRequest.objects.create(
            record=w.record, requester=UserFactory(), purpose="A second request"
        ),
        "A second request",
    ),
    "access-request-reject": (_access_request_reject, None),
    "audit-event": (
        lambda w: services.audit_event_record(
            actor=w.pm,
            action=AuditEvent.Action.DOWNLOAD,
            data_object=w.shared,
            detail="downloaded for the cache test",
        ),
        "downloaded for the cache test",
    ),
    "audit-event-bulk-create": (
        lambda w: AuditEvent.objects.bulk_create(
            [
                AuditEvent(
                    project=w.project,
                    action=AuditEvent.Action.FIXITY_FAILED,
                    detail="bulk event for the cache test",
                )
            ]
        ),
        "bulk event for the cache test",
    ),
    "person-renamed": (lambda w: _rename(w.uploader, "Ada Renamed"), "Ada Renamed"),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_shows_on_the_next_reading(client, world, write):
    change, text = write
    client.force_login(world.pm)
    before = cached_read(client, world.project)
    assert shown(before) == expected(world.project)
    if text is not None:
        assert text not in before

    change(world)

    after = read(client, world.project)
    assert shown(after) == expected(world.project)
    if text is None:
        assert shown(after) != shown(before)
    else:
        assert text in after


def test_an_embargo_coming_into_the_window_shows_the_next_day(client, world, monkeypatch):
    """Nothing is written: the date alone moves the figures."""
    client.force_login(world.pm)
    before = shown(cached_read(client, world.project))
    lifts = world.embargoed_later.available_date
    assert f'<tr data-date="{lifts:%Y-%m-%d}">' not in read(client, world.project)

    tomorrow = timezone.now() + datetime.timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: tomorrow)

    after = read(client, world.project)
    assert shown(after) == expected(world.project)
    assert shown(after)["lifting"] == before["lifting"] + 1
    assert f'<tr data-date="{lifts:%Y-%m-%d}">' in after


def test_an_embargo_falls_due_the_day_it_lifts(client, world, monkeypatch):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    DataObjectFactory(
        project=world.project, record=None, tier=Tier.EMBARGOED, available_date=tomorrow
    )
    row = rf'<tr data-date="{tomorrow:%Y-%m-%d}">.*?</tr>'
    client.force_login(world.pm)
    body = cached_read(client, world.project)
    assert '<td class="num">1</td>' in re.search(row, body, re.S).group(0)  # a day left

    later = timezone.now() + datetime.timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: later)

    body = read(client, world.project)
    assert '<td class="num">due</td>' in re.search(row, body, re.S).group(0)


# --- Who reads which copy ---------------------------------------------------------------------


def _edit_link(world) -> str:
    return f"/projects/{world.project.pk}/dmp/records/{world.record.pk}/edit/"


@pytest.mark.parametrize("first", ["pm", "curator"])
def test_curators_and_stewards_never_get_each_others_copy(world, first):
    readers = {"pm": Client(), "curator": Client()}
    readers["pm"].force_login(world.pm)
    readers["curator"].force_login(world.curator)
    order = [first, *(kind for kind in readers if kind != first)]
    bodies = {}
    for kind in order * 2:  # each reads twice: the second time from the cache
        bodies[kind] = read(readers[kind], world.project)
        assert (_edit_link(world) in bodies[kind]) is (kind == "pm")
    assert shown(bodies["pm"]) == shown(bodies["curator"]) == expected(world.project)


def test_access_is_checked_on_every_request(client, world):
    client.force_login(world.pm)
    cached_read(client, world.project)
    outsider = Client()
    outsider.force_login(UserFactory())
    researcher = Client()
    researcher.force_login(world.uploader)

    assert outsider.get(url(world.project)).status_code == 404
    assert researcher.get(url(world.project)).status_code == 404
    Membership.objects.filter(user=world.pm, project=world.project).update(role=Role.RESEARCHER)
    assert client.get(url(world.project)).status_code == 404


def test_languages_are_cached_apart(client, world):
    client.force_login(world.pm)
    english = cached_read(client, world.project)
    client.cookies["django_language"] = "ja"

    japanese = cached_read(client, world.project)

    assert '<h2 id="dash-summary">概要</h2>' in japanese
    assert '<h2 id="dash-summary">Summary</h2>' in english
    del client.cookies["django_language"]
    assert '<h2 id="dash-summary">Summary</h2>' in read(client, world.project)


def test_an_unreachable_cache_only_costs_a_rendering(client, world, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    client.force_login(world.pm)
    for _ in range(2):
        assert shown(read(client, world.project)) == expected(world.project)
    _set_tier(world.public, Tier.NON_SHARED)  # a write does not fail because the cache is down
    assert shown(read(client, world.project)) == expected(world.project)


# --- The generations ----------------------------------------------------------------------------


def _numbers(world) -> dict[str, int]:
    return {
        "catalogue": generations.CATALOGUE.current(),
        "activity": generations.ACTIVITY.current(),
        "project": generations.PROJECT.of(world.project.pk).current(),
        "files": generations.RECORD_FILES.of(world.record.pk).current(),
        "other project": generations.PROJECT.of(world.project.pk + 10_000).current(),
    }


ACTIVITY_WRITES = {
    "audit-event": lambda w: services.audit_event_record(
        actor=w.pm, action=AuditEvent.Action.DOWNLOAD, data_object=w.shared
    ),
    "tier-request-save": lambda w: TierChangeRequestFactory(
        project=w.project, requested_by=w.uploader
    ),
    "tier-request-objects-removed": lambda w: w.tier_request.data_objects.remove(w.shared),
    "tier-request-objects-cleared": lambda w: w.tier_request.data_objects.clear(),
    "access-request-update": lambda w: AccessRequest.objects.filter(pk=w.access_request.pk).update(
        purpose="Changed"
    ),
    "access-grant-create": lambda w: AccessGrant.objects.create(
        record=w.record,
        grantee=w.stranger,
        granted_by=w.pm,
        expires_at=timezone.now() + datetime.timedelta(days=30),
    ),
    "access-grant-update": lambda w: AccessGrant.objects.filter(record=w.record).update(
        revoked_at=timezone.now()
    ),
    "person-renamed": lambda w: _rename(w.uploader, "Ada Lovelace"),
}


@pytest.mark.parametrize("write", ACTIVITY_WRITES.values(), ids=ACTIVITY_WRITES.keys())
def test_activity_writes_move_only_their_own_projects_dashboard(world, write):
    """A request, grant or audit event moves its project's generation (its dashboard) and
    nothing else: not the public pages, not another project's dashboard, not the files of
    its record. A person's name is on every dashboard: it moves the activity generation."""
    AccessGrant.objects.create(
        record=world.record,
        grantee=UserFactory(),
        granted_by=world.pm,
        expires_at=timezone.now() + datetime.timedelta(days=30),
    )
    world.stranger = UserFactory()  # made before: a new person moves the activity generation
    before = _numbers(world)

    write(world)

    after = _numbers(world)
    moved = {name for name in before if after[name] != before[name]}
    assert all(after[name] >= before[name] for name in before)
    if write is ACTIVITY_WRITES["person-renamed"]:
        assert moved == {"activity"}
    else:
        assert moved == {"project"}


def test_a_login_leaves_the_dashboards_alone(world):
    before = _numbers(world)
    Client().force_login(world.pm)  # stamps last_login
    assert _numbers(world) == before


@pytest.mark.django_db(transaction=True)
def test_a_commit_bumps_the_activity_generation_again():
    before = generations.ACTIVITY.current()
    with transaction.atomic():
        generations.ACTIVITY.changed()
        during = generations.ACTIVITY.current()
        assert during > before
    assert generations.ACTIVITY.current() > during


def test_object_writes_move_their_own_record_and_project_only(world):
    other_project = ProjectFactory()
    other_record = DmpRecordFactory(project=other_project)
    before = _numbers(world)
    elsewhere = DataObjectFactory(
        project=other_project, record=other_record, uploaded_by=world.uploader
    )
    DataObject.objects.filter(pk=elsewhere.pk).update(tier=Tier.SHARED)
    assert _numbers(world) == before  # another project's upload and tier change

    mine = DataObjectFactory(project=world.project, record=world.record, uploaded_by=world.pm)
    after = _numbers(world)
    assert {name for name in before if after[name] != before[name]} == {"project", "files"}
    before = after
    DataObjectFactory(project=world.project, record=None, uploaded_by=world.pm)  # dashboard only
    after = _numbers(world)
    assert {name for name in before if after[name] != before[name]} == {"project"}
    before = after
    mine.delete()
    after = _numbers(world)
    assert {name for name in before if after[name] != before[name]} == {"project", "files"}


def test_an_update_of_a_row_the_caller_holds_needs_no_read_of_its_scope(world):
    held = DataObjectFactory(project=world.project, record=world.record, uploaded_by=world.pm)
    before = _numbers(world)
    with CaptureQueriesContext(connection) as queries:
        DataObject.objects.filter(pk=held.pk).scoped_as(held).update(
            checksum_state=DataObject.ChecksumState.VERIFIED
        )
    assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
    after = _numbers(world)
    assert {name for name in before if after[name] != before[name]} == {"project", "files"}
