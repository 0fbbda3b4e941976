"""Folding the captured lines into ``UsageEvent`` rows (``kura.usage_fold``, every minute).

A fold claims the buffer's lines (``capture.py``), marks double clicks — COUNTER's rule:
the same session using the same item again within 30 seconds counts once, however long
the chain; the clicks of the last 30 seconds before the batch are read back so that the
rule holds across batches — drops lines whose record or file is gone meanwhile, and writes
the batch in one statement (``COPY`` on PostgreSQL) in the transaction that records the
batch's token (``UsageFold``), and moves the generation of each project it wrote to (their
dashboards show the figures). A fold that crashed leaves its claimed lines in the buffer
for the next one, which finds the token written if the crash came after the commit, and
then only releases them: safe to run twice.
"""

import datetime
import logging
import zoneinfo
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.generations import PROJECT
from dmp.models import DmpRecord
from repository.models import DataObject, UsageEvent, UsageFold
from repository.usage.capture import Kind, Line, buffer, usage_flush

log = logging.getLogger(__name__)

DOUBLE_CLICK_SECONDS = 30
# Batches one fold takes at most (each is everything appended until it was claimed), so
# that a fold under a constant stream of events still ends.
MAX_BATCHES = 20

COLUMNS = (
    "at",
    "month",
    "kind",
    "project_id",
    "record_id",
    "data_object_id",
    "scope",
    "machine",
    "session",
    "double_click",
)
PROJECT_COLUMN = COLUMNS.index("project_id")
KINDS = frozenset(Kind.values)
SCOPES = frozenset(UsageEvent.Scope.values)
# Batch tokens are kept this long: a claimed batch is retried by the next fold, a minute on.
TOKEN_DAYS = 7


def usage_fold() -> int:
    """Fold what the buffer holds into usage events; the number of events written."""
    usage_flush()
    store = buffer()
    written = 0
    for _batch in range(MAX_BATCHES):
        claimed = store.claim()
        if claimed is None:
            break
        token, texts = claimed
        written += usage_batch_fold(token=token, texts=texts)
        store.release(token)
    cutoff = timezone.now() - datetime.timedelta(days=TOKEN_DAYS)
    UsageFold.objects.filter(folded_at__lt=cutoff).delete()
    return written


def usage_batch_fold(*, token: str, texts: list[str]) -> int:
    """Write one claimed batch, unless the batch ``token`` was written before."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                fold = UsageFold.objects.create(token=token)
        except IntegrityError:
            return 0  # folded already; the buffer was only not released
        rows = usage_rows(_decoded(texts))
        _insert(rows)
        for project_id in sorted({row[PROJECT_COLUMN] for row in rows}):
            PROJECT.of(project_id).changed()  # its dashboard shows the new figures
        fold.events = len(rows)
        fold.save(update_fields=["events"])
    return len(rows)


def _decoded(texts: Iterable[str]) -> list[Line]:
    lines = []
    for text in texts:
        try:
            lines.append(Line.decode(text))
        except ValueError:
            log.warning("usage line not understood, dropped: %r", text[:200])
    lines.sort(key=lambda line: line.at)
    return lines


def _month_of(at: float, zone, months: dict[int, datetime.date]) -> datetime.date:
    hour = int(at // 3600)
    month = months.get(hour)
    if month is None:
        local = datetime.datetime.fromtimestamp(hour * 3600, tz=zone)
        month = months[hour] = local.date().replace(day=1)
    return month


def usage_rows(lines: list[Line]) -> list[tuple]:
    """The rows of ``lines`` (sorted by time), double clicks marked, lines whose record or
    file no longer exists left out."""
    if not lines:
        return []
    projects = dict(
        DmpRecord.objects.filter(pk__in={line.record_id for line in lines}).values_list(
            "pk", "project_id"
        )
    )
    object_ids = {line.data_object_id for line in lines if line.data_object_id}
    objects = set(DataObject.objects.filter(pk__in=object_ids).values_list("pk", flat=True))
    since = datetime.datetime.fromtimestamp(lines[0].at - DOUBLE_CLICK_SECONDS, tz=datetime.UTC)
    last: dict[tuple, float] = {}
    for session, kind, record_id, object_id, at in UsageEvent.objects.filter(
        at__gte=since
    ).values_list("session", "kind", "record_id", "data_object_id", "at"):
        key = (session, kind, record_id, object_id or 0)
        last[key] = max(last.get(key, 0.0), at.timestamp())
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    months: dict[int, datetime.date] = {}
    rows = []
    for line in lines:
        project_id = projects.get(line.record_id)
        if project_id is None or (line.data_object_id and line.data_object_id not in objects):
            continue
        if line.kind not in KINDS or line.scope not in SCOPES:
            continue
        key = (line.session, line.kind, line.record_id, line.data_object_id)
        previous = last.get(key)
        # abs(): a process's lines may reach the buffer a second after another's, so a fold
        # can hold a click earlier than one already folded.
        double_click = previous is not None and abs(line.at - previous) <= DOUBLE_CLICK_SECONDS
        last[key] = max(line.at, previous or 0.0)
        rows.append(
            (
                datetime.datetime.fromtimestamp(line.at, tz=datetime.UTC),
                _month_of(line.at, zone, months),
                line.kind,
                project_id,
                line.record_id,
                line.data_object_id or None,
                line.scope,
                line.machine,
                line.session,
                double_click,
            )
        )
    return rows


def _insert(rows: list[tuple]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(UsageEvent._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(c) for c in COLUMNS)
        with connection.cursor() as cursor:
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # noqa: S608 - our own names
                for row in rows:
                    copy.write_row(row)
        return
    UsageEvent.objects.bulk_create(
        [UsageEvent(**dict(zip(COLUMNS, row, strict=True))) for row in rows], batch_size=1000
    )
