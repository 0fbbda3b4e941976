"""The dashboard's figures kept as they change: :class:`~repository.models.ObjectTally`.

A PostgreSQL trigger on the objects table adds each stored object's count and bytes to
its tally rows (by record, tier and checksum state; by month stored) and takes them off
again when the object changes or goes, in the same transaction as the write: every path
(``save``, ``QuerySet.update``, ``bulk_create``, ``COPY``, a raw statement) is counted,
and a rolled-back write was never counted (a session that turns triggers off, as the
benchmarks' seeding does, calls :func:`tally_rebuild` after). A dashboard then reads a few
rows whatever the project's size (``bench/scale.py``). Embargo dates are not tallied: the
embargo panel counts the objects lifting within its window.

The month is that of ``coalesce(stored_at, created_at)`` in ``TIME_ZONE`` as it was when
the trigger was made (:func:`tally_rebuild` remakes it; until then, a dashboard under
another ``TIME_ZONE`` counts the objects themselves). :func:`tally_mismatches` compares
the tallies with a recount of the objects; ``manage.py kura_tally --check`` runs it and
``--rebuild`` starts again from the objects. The embedded profile (SQLite) keeps no
tally: its dashboards count the objects.
"""

import logging

from django.conf import settings
from django.db import connection, transaction

from .models import DataObject, MonthTally, ObjectTally

log = logging.getLogger(__name__)

OBJECTS = DataObject._meta.db_table
# What an object counts as, in SQL over a row ``o`` of the objects table.
_MONTH = (
    "date_trunc('month', coalesce({o}.stored_at, {o}.created_at)"
    " AT TIME ZONE kura_tally_zone())::date"
)
_CHECKSUM = (
    "CASE WHEN {o}.quarantined_at IS NOT NULL THEN 'quarantined' ELSE {o}.checksum_state END"
)
# Each tally: its table, and its grouping columns with their value for an object ``o``.
TALLIES = (
    (
        ObjectTally._meta.db_table,
        {
            "project_id": "{o}.project_id",
            "record_id": "{o}.record_id",
            "tier": "{o}.tier",
            "checksum": _CHECKSUM,
        },
    ),
    (MonthTally._meta.db_table, {"project_id": "{o}.project_id", "month": _MONTH}),
)
# The columns whose change can move an object to another tally row.
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
)


def _values(grouped: dict[str, str], o: str) -> str:
    return ", ".join(expression.format(o=o) for expression in grouped.values())


def _zone_function(zone: str) -> str:
    zone_literal = zone.replace("'", "''")
    return (
        "CREATE OR REPLACE FUNCTION kura_tally_zone() RETURNS text LANGUAGE sql IMMUTABLE "
        f"AS $$ SELECT '{zone_literal}'::text $$"
    )


def _upsert(table: str, grouped: dict[str, str]) -> str:
    columns = ", ".join(grouped)
    return (
        f"INSERT INTO {table} ({columns}, object_count, byte_count) "  # noqa: S608 - our names
        f"VALUES ({_values(grouped, 'o')}, sign, sign * o.size) "
        f"ON CONFLICT ({columns}) DO UPDATE "
        f"SET object_count = {table}.object_count + EXCLUDED.object_count, "
        f"byte_count = {table}.byte_count + EXCLUDED.byte_count;"
    )


def install_sql(zone: str) -> list[str]:
    """The statements that make the tallies' functions, trigger and unique indexes."""
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in WATCHED)
    upserts = "\n".join(_upsert(table, grouped) for table, grouped in TALLIES)
    return [
        _zone_function(zone),
        f"CREATE OR REPLACE FUNCTION kura_tally_add(o {OBJECTS}, sign integer) RETURNS void "
        f"LANGUAGE sql AS $$ {upserts} $$",
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
            f"({', '.join(grouped)}) NULLS NOT DISTINCT"
            for table, grouped in TALLIES
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
    *(f"DROP INDEX IF EXISTS {table}_grouped" for table, _grouped in TALLIES),
]


def _recount_sql(grouped: dict[str, str], where: str = "") -> str:
    """Every stored object's contribution, grouped as a tally is."""
    positions = ", ".join(str(n) for n in range(1, len(grouped) + 1))
    return (
        f"SELECT {_values(grouped, 'o')}, count(*), coalesce(sum(o.size), 0) "  # noqa: S608
        f"FROM {OBJECTS} o WHERE o.status = 'stored' {where} GROUP BY {positions}"
    )


def tally_rebuild() -> None:
    """Start the tallies again from the objects (and make the trigger count months in the
    current ``TIME_ZONE``); writes to objects wait meanwhile."""
    if connection.vendor != "postgresql":
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            for statement in install_sql(settings.TIME_ZONE):
                cursor.execute(statement)
            cursor.execute(f"LOCK TABLE {OBJECTS} IN SHARE MODE")
            for table, grouped in TALLIES:
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - our own name
                cursor.execute(
                    f"INSERT INTO {table} ({', '.join(grouped)}, object_count, byte_count) "  # noqa: S608
                    + _recount_sql(grouped)
                )


def tally_in_use() -> bool:
    """Whether dashboards may read the tallies: PostgreSQL, counting months in the
    ``TIME_ZONE`` Kura runs with."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT kura_tally_zone()")
        return cursor.fetchone()[0] == settings.TIME_ZONE


def tally_mismatches(*, project_id: int | None = None) -> list[dict]:
    """The tally rows that differ from a recount of the objects (none when all is well),
    of one project or of all; each names its table and grouping."""
    if connection.vendor != "postgresql":
        return []
    only = project_id is not None
    params = [project_id] if only else []
    nothing = (0, 0)
    mismatches = []
    for table, grouped in TALLIES:
        width = len(grouped)
        tallied = (
            f"SELECT {', '.join(grouped)}, object_count, byte_count FROM {table} "  # noqa: S608
            f"WHERE {'project_id = %s' if only else 'TRUE'}"
        )
        with connection.cursor() as cursor:
            cursor.execute(_recount_sql(grouped, "AND o.project_id = %s" if only else ""), params)
            counted = {tuple(row[:width]): tuple(row[width:]) for row in cursor.fetchall()}
            cursor.execute(tallied, params)
            kept = {tuple(row[:width]): tuple(row[width:]) for row in cursor.fetchall()}
        mismatches += [
            {
                "table": table,
                **dict(zip(grouped, key, strict=True)),
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
