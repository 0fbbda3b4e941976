"""The dashboard's figures kept as they change: tallies instead of counting the objects.

A PostgreSQL trigger on the objects table appends, in the transaction of every write that
changes what a stored object counts for, one :class:`~repository.models.TallyDelta` row
per side of the change: the old contribution taken off (−1, −size), the new one added.
Every path is counted (``save``, ``QuerySet.update``, ``bulk_create``, ``COPY``, a raw
statement), and a rolled-back write never was. Appending takes no lock that another write
waits on: concurrent uploads and checksum workers never block or deadlock each other over
a shared counter. (A session that turns triggers off, as the benchmarks' seeding does,
calls :func:`tally_rebuild` after.)

:func:`tally_fold` (Celery beat, every minute) moves the changes into the tallies,
:class:`~repository.models.ObjectTally` (record, tier, checksum state) and
:class:`~repository.models.MonthTally` (month stored), in one statement, one fold at a
time. A dashboard reads a project's tallies plus its changes not yet folded, in one
statement each (:func:`tally_by_type`: by data type and for a page of records;
:func:`tally_by_month`), so its figures are exact and cost the same whatever the
project's size; :class:`~repository.models.EmbargoTally`
(record, available date of embargoed objects) gives the embargo panel
(:func:`tally_embargoes`) the same way.

The month is that of ``coalesce(stored_at, created_at)`` in ``TIME_ZONE`` as it was when
the trigger was made (:func:`tally_rebuild` remakes it; until then a dashboard under
another ``TIME_ZONE`` counts the objects themselves). :func:`tally_mismatches` compares
the tallies with a recount of the objects; ``manage.py kura_tally`` runs it and
``--rebuild`` starts again from the objects. The embedded profile (SQLite) keeps no
tallies: its dashboards count the objects.
"""

import logging

from django.conf import settings
from django.db import connection, transaction

from core.vocabularies import Tier
from dmp.models import DmpRecord
from repository.models import DataObject, EmbargoTally, MonthTally, ObjectTally, TallyDelta
from repository.preservation.fixity import CHECKSUM_FILTERS

log = logging.getLogger(__name__)

OBJECTS = DataObject._meta.db_table
DELTAS = TallyDelta._meta.db_table
BY_RECORD = ObjectTally._meta.db_table
BY_MONTH = MonthTally._meta.db_table
BY_EMBARGO = EmbargoTally._meta.db_table
RECORD_GROUPING = ("project_id", "record_id", "tier", "checksum")
MONTH_GROUPING = ("project_id", "month")
EMBARGO_GROUPING = ("project_id", "record_id", "available_date")
# What an object counts as, in SQL over a row ``o`` of the objects table.
DERIVED = {
    "project_id": "{o}.project_id",
    "record_id": "{o}.record_id",
    "tier": "{o}.tier",
    "checksum": (
        "CASE WHEN {o}.quarantined_at IS NOT NULL THEN 'quarantined' ELSE {o}.checksum_state END"
    ),
    "month": (
        "date_trunc('month', coalesce({o}.stored_at, {o}.created_at)"
        " AT TIME ZONE kura_tally_zone())::date"
    ),
    "available_date": "CASE WHEN {o}.tier = 'embargoed' THEN {o}.available_date END",
}
# Each tally: its table, its grouping, and which changes it keeps (a condition on the
# columns of DERIVED; "" for all).
TALLIES = (
    (BY_RECORD, RECORD_GROUPING, ""),
    (BY_MONTH, MONTH_GROUPING, ""),
    (BY_EMBARGO, EMBARGO_GROUPING, "available_date IS NOT NULL"),
)
# The columns whose change can change what an object counts for.
WATCHED = (
    "status",
    "project_id",
    "record_id",
    "stored_at",
    "created_at",
    "tier",
    "checksum_state",
    "quarantined_at",
    "size",
    "available_date",
)
FOLD_LOCK = 7_351_001  # pg_advisory_xact_lock key: one fold at a time


def _values(o: str) -> str:
    return ", ".join(expression.format(o=o) for expression in DERIVED.values())


def _zone_function(zone: str) -> str:
    zone_literal = zone.replace("'", "''")
    return (
        "CREATE OR REPLACE FUNCTION kura_tally_zone() RETURNS text LANGUAGE sql IMMUTABLE "
        f"AS $$ SELECT '{zone_literal}'::text $$"
    )


def _add_function(columns: str) -> str:
    insert = f"INSERT INTO {DELTAS} ({columns}, object_count, byte_count)"  # noqa: S608
    head = f"CREATE OR REPLACE FUNCTION kura_tally_add(o {OBJECTS}, sign integer) RETURNS void"
    body = f"{insert} VALUES ({_values('o')}, sign, sign * o.size)"
    return f"{head} LANGUAGE sql AS $$ {body} $$"


def install_sql(zone: str) -> list[str]:
    """The statements that make the tallies' functions, trigger and unique indexes."""
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
    columns = ", ".join(DERIVED)
    return [
        _zone_function(zone),
        _add_function(columns),
        """
CREATE OR REPLACE FUNCTION kura_tally_object() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'stored' THEN
        PERFORM kura_tally_add(OLD, -1);
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'stored' THEN
        PERFORM kura_tally_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$""",
        *(
            f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_grouped ON {table} "
            f"({', '.join(grouping)}) NULLS NOT DISTINCT"
            for table, grouping, _kept in TALLIES
        ),
        f"DROP TRIGGER IF EXISTS kura_tally_insert_delete ON {OBJECTS}",
        f"CREATE TRIGGER kura_tally_insert_delete AFTER INSERT OR DELETE ON {OBJECTS} "
        "FOR EACH ROW EXECUTE FUNCTION kura_tally_object()",
        f"DROP TRIGGER IF EXISTS kura_tally_update ON {OBJECTS}",
        f"CREATE TRIGGER kura_tally_update AFTER UPDATE ON {OBJECTS} "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION kura_tally_object()",
    ]


UNINSTALL_SQL = [
    f"DROP TRIGGER IF EXISTS kura_tally_insert_delete ON {OBJECTS}",
    f"DROP TRIGGER IF EXISTS kura_tally_update ON {OBJECTS}",
    "DROP FUNCTION IF EXISTS kura_tally_object()",
    f"DROP FUNCTION IF EXISTS kura_tally_add({OBJECTS}, integer)",
    "DROP FUNCTION IF EXISTS kura_tally_zone()",
    *(f"DROP INDEX IF EXISTS {table}_grouped" for table, _grouping, _kept in TALLIES),
]


def _upsert(table: str, grouping: tuple[str, ...], source: str) -> str:
    """Add the summed counts of ``source`` (rows with ``grouping``, object_count and
    byte_count) to ``table``."""
    columns = ", ".join(grouping)
    return (
        f"INSERT INTO {table} ({columns}, object_count, byte_count) "  # noqa: S608 - our names
        f"SELECT {columns}, sum(object_count)::bigint, sum(byte_count)::bigint FROM {source} "
        f"GROUP BY {columns} "
        f"ON CONFLICT ({columns}) DO UPDATE "
        f"SET object_count = {table}.object_count + EXCLUDED.object_count, "
        f"byte_count = {table}.byte_count + EXCLUDED.byte_count"
    )


def tally_fold() -> int:
    """Move the changes appended so far into the tallies (one statement, one fold at a
    time; changes appended meanwhile wait for the next); answers how many were moved."""
    if connection.vendor != "postgresql":
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
        cursor.execute(
            f"WITH moved AS (DELETE FROM {DELTAS} RETURNING *), "  # noqa: S608 - our names
            + ", ".join(
                f"fold_{n} AS ({_upsert(table, grouping, _kept_changes(kept, 'moved'))})"
                for n, (table, grouping, kept) in enumerate(TALLIES)
            )
            + " SELECT count(*) FROM moved"
        )
        return cursor.fetchone()[0]


def _kept_changes(kept: str, source: str) -> str:
    """The rows of ``source`` a tally keeps (``kept``: a condition, "" for all)."""
    return f"(SELECT * FROM {source} WHERE {kept}) AS kept" if kept else source  # noqa: S608


def _recount(grouping: tuple[str, ...], where: str = "", kept: str = "") -> str:
    """Every stored object's contribution, summed by ``grouping`` (only the groups a tally
    keeps: ``kept``, a condition on the grouping's columns)."""
    expressions = ", ".join(DERIVED[column].format(o="o") for column in grouping)
    positions = ", ".join(str(n) for n in range(1, len(grouping) + 1))
    recount = (
        f"SELECT {expressions}, count(*), coalesce(sum(o.size), 0) "  # noqa: S608 - our names
        f"FROM {OBJECTS} o WHERE o.status = 'stored' {where} GROUP BY {positions}"
    )
    if not kept:
        return recount
    names = ", ".join((*grouping, "object_count", "byte_count"))
    return f"SELECT * FROM ({recount}) AS counted({names}) WHERE {kept}"  # noqa: S608


def _current(table: str, grouping: tuple[str, ...], where: str) -> str:
    """The tally ``table`` plus the changes not yet folded, summed by ``grouping``."""
    columns = ", ".join(grouping)
    return (
        f"SELECT {columns}, sum(object_count)::bigint, sum(byte_count)::bigint FROM ("  # noqa: S608
        f"SELECT {columns}, object_count, byte_count FROM {table} WHERE {where} UNION ALL "
        f"SELECT {columns}, object_count, byte_count FROM {DELTAS} WHERE {where}"
        f") AS current GROUP BY {columns}"
    )


def tally_rebuild() -> None:
    """Start the tallies again from the objects (and make the trigger count months in the
    current ``TIME_ZONE``); writes to objects wait meanwhile."""
    if connection.vendor != "postgresql":
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in install_sql(settings.TIME_ZONE):
            cursor.execute(statement)
        cursor.execute(f"LOCK TABLE {OBJECTS} IN SHARE MODE")
        for table in (DELTAS, *(table for table, _grouping, _kept in TALLIES)):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - our own names
        for table, grouping, kept in TALLIES:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(grouping)}, object_count, byte_count) "  # noqa: S608
                + _recount(grouping, kept=kept)
            )


def tally_in_use() -> bool:
    """Whether dashboards may read the tallies: PostgreSQL, counting months in the
    ``TIME_ZONE`` Kura runs with."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT kura_tally_zone()")
        return cursor.fetchone()[0] == settings.TIME_ZONE


def _figure_sums() -> tuple[list[str], list[str], list]:
    """The figures of a group of tally rows ``(tier, checksum, n, b)``: their names, their
    SQL sums (count and bytes in all and per tier, count per checksum state) and the
    sums' parameters."""
    columns = ["count", "bytes"]
    sums = ["sum(n)", "sum(b)"]
    params: list = []
    for tier in Tier:
        columns += [f"count_{tier.value}", f"bytes_{tier.value}"]
        sums += ["coalesce(sum(n) FILTER (WHERE tier = %s), 0)"] * 2
        sums[-1] = sums[-1].replace("sum(n)", "sum(b)")
        params += [tier.value, tier.value]
    for state in CHECKSUM_FILTERS:
        columns.append(f"checksum_{state}")
        sums.append("coalesce(sum(n) FILTER (WHERE checksum = %s), 0)")
        params.append(state)
    return columns, sums, params


def tally_by_record(project_id: int) -> list[dict]:
    """The project's figures by DMP record, as :func:`repository.dashboard.objects_by_record`
    counts them from the objects (one statement: tallies plus changes not yet folded, one
    row per record with its tiers and checksum states side by side)."""
    columns, sums, params = _figure_sums()
    current = _current(BY_RECORD, RECORD_GROUPING[1:], "project_id = %s")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT record_id, {', '.join(sums)} FROM ("  # noqa: S608 - our own SQL
            f"SELECT record_id, tier, checksum, n, b FROM ({current}) AS t(record_id, tier, "
            "checksum, n, b) WHERE n <> 0) AS c GROUP BY record_id",
            [*params, project_id, project_id],
        )
        return [
            {"record_id": row[0], **dict(zip(columns, map(int, row[1:]), strict=True))}
            for row in cursor.fetchall()
        ]


def tally_by_type(project_id: int, *, shown: list[int]) -> tuple[list[dict], list[dict]]:
    """The project's figures as the dashboard shows them, in one statement (tallies plus
    changes not yet folded), with the figures of :func:`tally_by_record`:

    * by the data type of the objects' DMP record (``has_record``, ``data_type``; one row
      with ``has_record`` false for the objects without a record): a few rows, whose sum
      is the project's totals;
    * by record for the records ``shown`` only (``record_id``): a page of the table.

    However many records the project has, it answers at most ``len(shown)`` rows and one
    per data type."""
    columns, sums, params = _figure_sums()
    current = _current(BY_RECORD, RECORD_GROUPING[1:], "project_id = %s")
    records = DmpRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT GROUPING(shown), shown, has_record, data_type, {', '.join(sums)} "  # noqa: S608
            "FROM (SELECT CASE WHEN c.record_id = ANY(%s) THEN c.record_id END AS shown, "
            "c.record_id IS NOT NULL AS has_record, r.data_type, c.tier, c.checksum, c.n, c.b "
            f"FROM ({current}) AS c(record_id, tier, checksum, n, b) "
            f"LEFT JOIN {records} r ON r.id = c.record_id WHERE c.n <> 0) AS t "
            "GROUP BY GROUPING SETS ((shown), (has_record, data_type))",
            [*params, list(shown), project_id, project_id],
        )
        rows = cursor.fetchall()
    by_type, by_record = [], []
    for by_kind, record_id, has_record, data_type, *figures in rows:
        values = dict(zip(columns, map(int, figures), strict=True))
        if by_kind:
            by_type.append({"has_record": has_record, "data_type": data_type, **values})
        elif record_id is not None:
            by_record.append({"record_id": record_id, **values})
    return by_type, by_record


def tally_by_month(project_id: int) -> list[dict]:
    """The project's objects and bytes added per month (``stored_month``, ``count``,
    ``bytes``), tallies plus changes not yet folded, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(_current(BY_MONTH, ("month",), "project_id = %s"), [project_id] * 2)
        rows = cursor.fetchall()
    return [
        {"stored_month": month, "count": count, "bytes": volume}
        for month, count, volume in sorted(rows)
        if count
    ]


def tally_embargoes(project_id: int, *, until, first: int) -> tuple[list[dict], dict]:
    """The project's embargoed objects lifting on or before ``until``: the first ``first``
    (date, record) pairs with their count and bytes, and the totals of all of them (one
    statement: tallies plus changes not yet folded)."""
    current = _current(
        BY_EMBARGO,
        ("available_date", "record_id"),
        "project_id = %s AND available_date IS NOT NULL AND available_date <= %s",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT available_date, record_id, n, b, sum(n) OVER (), sum(b) OVER () "  # noqa: S608
            f"FROM ({current}) AS t(available_date, record_id, n, b) WHERE n <> 0 "
            "ORDER BY available_date, record_id LIMIT %s",
            [project_id, until, project_id, until, first],
        )
        rows = cursor.fetchall()
    listed = [
        {"available_date": day, "record_id": record_id, "count": int(n), "bytes": int(b)}
        for day, record_id, n, b, _n, _b in rows
    ]
    count, volume = (int(rows[0][4]), int(rows[0][5])) if rows else (0, 0)
    return listed, {"count": count, "bytes": volume}


def tally_mismatches(*, project_id: int | None = None) -> list[dict]:
    """The tallies (with the changes not yet folded) that differ from a recount of the
    objects, of one project or of all; none when all is well. Read in one snapshot."""
    if connection.vendor != "postgresql":
        return []
    only = project_id is not None
    where = "project_id = %s" if only else "TRUE"
    params = [project_id] if only else []
    nothing = (0, 0)
    mismatches = []
    outermost = not connection.in_atomic_block  # else the caller's transaction decides
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        for table, grouping, kept in TALLIES:
            width = len(grouping)
            cursor.execute(
                _recount(grouping, "AND o.project_id = %s" if only else "", kept), params
            )
            counted = {tuple(row[:width]): tuple(row[width:]) for row in cursor.fetchall()}
            cursor.execute(
                _current(table, grouping, f"{where} AND {kept}" if kept else where), params * 2
            )
            kept = {tuple(row[:width]): tuple(row[width:]) for row in cursor.fetchall()}
            mismatches += [
                {
                    "table": table,
                    **dict(zip(grouping, key, strict=True)),
                    "counted": counted.get(key, nothing),
                    "tallied": kept.get(key, nothing),
                }
                for key in sorted(set(counted) | set(kept), key=repr)
                if counted.get(key, nothing) != kept.get(key, nothing)
            ]
    return mismatches


def tally_check() -> dict:
    """Rebuild the tallies if they differ from a recount (and say so in the log)."""
    mismatches = tally_mismatches()
    if mismatches:
        log.warning(
            "dashboard tallies differed from the objects in %d rows; rebuilt", len(mismatches)
        )
        tally_rebuild()
    return {"mismatches": len(mismatches), "rebuilt": bool(mismatches)}
