"""Reading the usage counts: COUNTER's four metrics, by record, month, scope and access.

Investigations count every use of a dataset (views and downloads, as the Code of Practice
counts them), requests the downloads; *unique* counts count each session-hour once per
dataset. Double clicks are left out of the totals. A dataset's unique counts do not add
across datasets as sessions would, so every read groups by record first and sums after.

**Public figures** (landing pages, the repository's and a project's COUNTER reports, the
public part of every other figure) come from :func:`public_events` only: events of the
public scope of records anyone may read now — views, and downloads of files anyone may
download now — both decided by ``repository/access.py`` for an anonymous visitor. A file
made less open or a record closed leaves them, so nothing public shows the trace of a
non-public object. Shared and in-project figures are for the people who may read the
project's dashboard and for program officers.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, Q, QuerySet

from repository.access import Action, record_rule, rule, through
from repository.models import UsageEvent

Kind = UsageEvent.Kind
Scope = UsageEvent.Scope

METRICS = {
    "total_investigations": Count("pk", filter=Q(double_click=False)),
    "unique_investigations": Count("session", distinct=True),
    "total_requests": Count("pk", filter=Q(kind=Kind.REQUEST, double_click=False)),
    "unique_requests": Count("session", distinct=True, filter=Q(kind=Kind.REQUEST)),
}


@dataclass
class Counts:
    """COUNTER's four metrics for one group."""

    total_investigations: int = 0
    unique_investigations: int = 0
    total_requests: int = 0
    unique_requests: int = 0

    def add(self, row: dict) -> None:
        for name in METRICS:
            setattr(self, name, getattr(self, name) + row[name])

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in METRICS}


def _public() -> Q:
    """Public-scope events of records an anonymous visitor may read and, for downloads,
    of files an anonymous visitor may download: ``repository/access.py``'s rules, joined
    through each event's record and file (never a scan of every object)."""
    anonymous = AnonymousUser()
    record_readable = through(record_rule(anonymous), "record__")
    downloadable = through(rule(anonymous, Action.DOWNLOAD), "data_object__")
    return (
        Q(scope=Scope.PUBLIC)
        & record_readable
        & (Q(kind=Kind.INVESTIGATION) | (Q(kind=Kind.REQUEST) & downloadable))
    )


def public_events() -> QuerySet:
    """Events the public figures count (see the module's docstring)."""
    return UsageEvent.objects.filter(_public())


def restricted_events() -> QuerySet:
    """Events of the shared and in-project scopes."""
    return UsageEvent.objects.exclude(scope=Scope.PUBLIC)


def counted_events(*, restricted: bool) -> QuerySet:
    """The public events and, with ``restricted``, the shared and in-project ones too (one
    query reads them all; a row's ``scope`` says which it is)."""
    if not restricted:
        return public_events()
    return UsageEvent.objects.filter(_public() | ~Q(scope=Scope.PUBLIC))


def grouped(events: QuerySet, *fields: str) -> list[dict]:
    """COUNTER's metrics of ``events`` by record and ``fields``, one dict a group."""
    keys = ("record_id", *(f for f in fields if f != "record_id"))
    return list(events.order_by().values(*keys).annotate(**METRICS))


def record_usage(record_id: int, *, restricted: bool = False) -> dict:
    """One record's figures: public regular and machine access, and with ``restricted``
    the shared and in-project ones (regular and machine together)."""
    figures = {"public": Counts(), "public_machine": Counts()}
    if restricted:
        figures.update(shared=Counts(), project=Counts())
    events = counted_events(restricted=restricted).filter(record_id=record_id)
    for row in grouped(events, "scope", "machine"):
        if row["scope"] == Scope.PUBLIC:
            figures["public_machine" if row["machine"] else "public"].add(row)
        else:
            figures[row["scope"]].add(row)
    return figures


@dataclass
class ScopeCounts:
    """Figures of one record, project or month by scope (human and machine together)."""

    public: Counts = field(default_factory=Counts)
    shared: Counts = field(default_factory=Counts)
    project: Counts = field(default_factory=Counts)

    def add(self, scope: str, row: dict) -> None:
        getattr(self, scope).add(row)


def usage_by_scope(
    *,
    by: str,
    project_ids: list[int] | None = None,
    record_id: int | None = None,
    since: datetime.date | None = None,
    restricted: bool = True,
) -> dict:
    """``{key: ScopeCounts}`` for the projects ``project_ids`` (or the record
    ``record_id``), keyed by ``by`` (``record_id``, ``project_id`` or ``month``), from
    ``since`` on; without ``restricted`` the public figures only."""
    result: dict = defaultdict(ScopeCounts)
    events = counted_events(restricted=restricted)
    if project_ids is not None:
        events = events.filter(project_id__in=project_ids)
    if record_id is not None:
        events = events.filter(record_id=record_id)
    if since is not None:
        events = events.filter(month__gte=since)
    for row in grouped(events, "scope", by):
        result[row[by]].add(row["scope"], row)
    return result


def usage_by_record_and_month(*, project_ids: list[int], titles: bool = False) -> list[dict]:
    """Rows (project, record, month, scope and the four metrics) of the projects, public and
    restricted, in one query; with ``titles`` each row has its record's Data No. and
    titles too."""
    names = ("record__data_number", "record__title_ja", "record__title_en") if titles else ()
    events = counted_events(restricted=True).filter(project_id__in=project_ids)
    rows = grouped(events, "project_id", "month", "scope", *names)
    rows.sort(key=lambda r: (r["project_id"], r["record_id"], r["month"], r["scope"]))
    return rows


def month_span(first: datetime.date, last: datetime.date) -> list[datetime.date]:
    """The first days of the months from ``first``'s to ``last``'s."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + datetime.timedelta(days=32)).replace(day=1)
    return months
