"""The dashboard's tallies (repository/tally.py) stay equal to a recount of the objects
through every kind of write, and the dashboard reads them instead of the objects."""

import datetime
import random
import threading

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import Tier
from repository import dashboard
from repository.models import DataObject, MonthTally, ObjectTally, TallyDelta
from repository.tally import (
    tally_by_month,
    tally_by_record,
    tally_by_type,
    tally_check,
    tally_fold,
    tally_in_use,
    tally_mismatches,
    tally_rebuild,
)
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

STATES = [state.value for state in DataObject.ChecksumState]
STATUSES = [status.value for status in DataObject.Status]


def _moment(rng: random.Random) -> datetime.datetime:
    """A time in the last three years, often near a month's end (the month is counted in
    TIME_ZONE, not UTC)."""
    day = timezone.now() - datetime.timedelta(days=rng.randrange(0, 1100))
    if rng.random() < 0.3:
        day = day.replace(day=28) + datetime.timedelta(days=4)
        day = day.replace(day=1) - datetime.timedelta(hours=rng.randrange(0, 20))
    return day


def _random_object(rng, project, records, uploader) -> DataObject:
    tier = rng.choice(list(Tier.values))
    return DataObjectFactory(
        project=project,
        record=rng.choice([*records, None]),
        uploaded_by=uploader,
        size=rng.randrange(1, 10**9),
        tier=tier,
        available_date=timezone.localdate() + datetime.timedelta(days=rng.randrange(1, 400))
        if tier == Tier.EMBARGOED
        else None,
        status=rng.choice([DataObject.Status.STORED] * 4 + [DataObject.Status.UPLOADING]),
        checksum_state=rng.choice(STATES),
        stored_at=_moment(rng),
    )


def _write(rng, objects, records):
    """One random write to the objects, by one of the paths Kura uses."""
    target = rng.choice(objects)
    chosen = DataObject.objects.filter(pk__in=[o.pk for o in rng.sample(objects, 3)])
    kind = rng.randrange(10)
    if kind == 0:  # an upload completes
        DataObject.objects.filter(pk=target.pk).update(
            status=DataObject.Status.STORED, stored_at=_moment(rng)
        )
    elif kind == 1:  # tier changes, several at once
        chosen.update(tier=rng.choice([Tier.SHARED, Tier.PUBLIC, Tier.NON_SHARED]))
    elif kind == 2:  # an embargo, or an embargo's date moved
        chosen.update(
            tier=Tier.EMBARGOED,
            available_date=timezone.localdate() + datetime.timedelta(days=rng.randrange(-3, 120)),
        )
    elif kind == 3:  # deleted or abandoned
        chosen.update(status=rng.choice([DataObject.Status.DELETED, DataObject.Status.ABANDONED]))
    elif kind == 4:  # quarantined, or cleared
        fresh = DataObject.objects.get(pk=target.pk)
        fresh.quarantined_at = None if fresh.quarantined_at else timezone.now()
        fresh.save(update_fields=["quarantined_at"])
    elif kind == 5:  # a checksum state, through save() of the whole row
        fresh = DataObject.objects.get(pk=target.pk)
        fresh.checksum_state = rng.choice(STATES)
        fresh.checksum_progress = rng.randrange(100)
        fresh.save()
    elif kind == 6:  # moved to another record
        chosen.update(record=rng.choice([*records, None]))
    elif kind == 7:  # a write that is rolled back counts for nothing
        with pytest.raises(RuntimeError), transaction.atomic():
            chosen.update(status=DataObject.Status.DELETED, size=1)
            raise RuntimeError
    elif kind == 8:  # a column the dashboard does not count
        chosen.update(checksum_progress=rng.randrange(100), last_fixity_at=timezone.now())
    else:  # gone from the table
        DataObject.objects.filter(pk=target.pk).delete()
        objects.remove(target)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_tallies_equal_a_recount_after_a_random_series_of_writes(seed):
    rng = random.Random(seed)
    steward = MembershipFactory(role=Role.PM)
    project = steward.project
    # Two records of one data type, one of another, one without.
    records = [
        DmpRecordFactory(project=project, data_type=data_type)
        for data_type in ("survey data", "simulation data", "survey data", "")
    ]
    uploader = UserFactory()
    objects = [_random_object(rng, project, records, uploader) for _ in range(40)]
    other = _random_object(rng, DmpRecordFactory().project, [], uploader)

    for _ in range(120):
        _write(rng, objects, records)
        if len(objects) < 5:
            objects.append(_random_object(rng, project, records, uploader))

    assert tally_mismatches() == []
    live = dashboard.dashboard_objects(user=steward.user, project=project)
    key = lambda row: str(row["record_id"])  # noqa: E731
    expected_records = sorted(dashboard.objects_by_record(live), key=key)
    today = timezone.localdate()
    expected_months = dashboard.growth_by_month(dashboard.objects_by_month(live), today=today)
    expected_embargoes = (
        dashboard.embargo_schedule(live, today=today),
        dashboard.embargoes_lifting(live, today=today),
    )

    def embargoes():
        return dashboard.dashboard_embargoes(
            user=steward.user, project=project, objects=live.none(), today=today
        )

    # By data type (their sum: the totals) and for a page of the records only.
    data_types = {record.pk: record.data_type for record in records}
    shown = [records[0].pk, records[3].pk]
    type_key = lambda row: (row["has_record"], str(row["data_type"]))  # noqa: E731
    expected_by_type = (
        sorted(dashboard.figures_by_type(expected_records, data_types), key=type_key),
        [row for row in expected_records if row["record_id"] in shown],
    )
    assert len(expected_by_type[0]) > 2

    def by_type():
        types, page = tally_by_type(project.pk, shown=shown)
        return sorted(types, key=type_key), sorted(page, key=key)

    assert sorted(tally_by_record(project.pk), key=key) == expected_records
    assert by_type() == expected_by_type
    assert dashboard.growth_by_month(tally_by_month(project.pk), today=today) == expected_months
    assert embargoes() == expected_embargoes
    assert tally_fold() > 0  # folded: the same figures from the tallies alone
    assert not TallyDelta.objects.exists()
    assert sorted(tally_by_record(project.pk), key=key) == expected_records
    assert by_type() == expected_by_type
    assert dashboard.growth_by_month(tally_by_month(project.pk), today=today) == expected_months
    assert embargoes() == expected_embargoes
    assert expected_embargoes[1]["count"] > 0
    assert tally_mismatches() == []
    assert ObjectTally.objects.filter(project=other.project, object_count__gt=0).exists() == (
        other.status == DataObject.Status.STORED
    )


def test_a_damaged_tally_is_found_and_rebuilt():
    stored = DataObjectFactory(size=500)
    tally_fold()
    ObjectTally.objects.filter(project=stored.project).update(object_count=7)

    assert [row["counted"] for row in tally_mismatches(project_id=stored.project_id)] == [(1, 500)]
    MonthTally.objects.filter(project=stored.project).delete()
    assert len(tally_mismatches()) == 2
    assert tally_check() == {"mismatches": 2, "rebuilt": True}
    assert tally_mismatches() == []
    assert tally_check() == {"mismatches": 0, "rebuilt": False}


@pytest.mark.django_db(transaction=True)
def test_opposite_changes_at_once_neither_wait_nor_deadlock():
    """Two transactions move objects in opposite directions between the same tally rows
    (shared -> public, public -> shared) and stay open together: appending changes takes
    no lock either could wait on."""
    shared = DataObjectFactory(tier=Tier.SHARED)
    public = DataObjectFactory(project=shared.project, record=shared.record, tier=Tier.PUBLIC)
    both_written = threading.Barrier(2, timeout=10)
    errors = []

    def move(data_object, tier):
        try:
            with transaction.atomic():
                DataObject.objects.filter(pk=data_object.pk).update(tier=tier)
                both_written.wait()  # each holds its change while the other makes its own
                DataObject.objects.filter(pk=data_object.pk).update(checksum_progress=1)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=move, args=(shared, Tier.PUBLIC)),
        threading.Thread(target=move, args=(public, Tier.SHARED)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert errors == []
    assert tally_mismatches() == []


def test_the_dashboard_reads_the_tallies_not_the_objects(django_assert_max_num_queries):
    steward = MembershipFactory(role=Role.PM)
    for n in range(5):
        DataObjectFactory(project=steward.project, size=100 + n, tier=Tier.SHARED)

    with CaptureQueriesContext(connection) as captured:
        context = dashboard.project_dashboard_context(user=steward.user, project=steward.project)

    assert context["totals"].count == 5 and context["totals"].bytes == 510
    queries = [q["sql"] for q in captured.captured_queries]
    assert sum("FROM repository_objecttally" in sql for sql in queries) == 1  # by record
    assert sum("FROM repository_monthtally" in sql for sql in queries) == 1
    assert sum("FROM repository_embargotally" in sql for sql in queries) == 1
    assert not [sql for sql in queries if 'FROM "repository_dataobject"' in sql]


def test_under_another_time_zone_the_dashboard_counts_the_objects(settings):
    steward = MembershipFactory(role=Role.PM)
    DataObjectFactory(project=steward.project, size=42)
    settings.TIME_ZONE = "UTC"

    assert not tally_in_use()
    context = dashboard.project_dashboard_context(user=steward.user, project=steward.project)
    assert context["totals"].bytes == 42

    tally_rebuild()
    assert tally_in_use()
    assert tally_mismatches() == []


def test_the_dashboard_asks_once_whether_it_reads_the_tallies():
    steward = MembershipFactory(role=Role.PM)
    DataObjectFactory(project=steward.project, size=7)
    with CaptureQueriesContext(connection) as captured:
        dashboard.project_dashboard_context(user=steward.user, project=steward.project)
    asked = [q["sql"] for q in captured.captured_queries if "kura_tally_zone()" in q["sql"]]
    assert len(asked) == 1
