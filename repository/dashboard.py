"""Reads for the PM dashboard of one project.

Every figure is aggregated in the database, and the page costs the same fixed number of
queries, and reads the same number of rows, however many objects and records the project
holds: from the tallies (``repository/tally.py``), one statement by data type and for the
page of records shown (tiers, bytes and checksum states side by side), one by month, one
for the embargo schedule; one count of the records and of those lacking required items,
one read of the page of records, and one each for the pending requests and the audit
trail. Without the tallies (SQLite, or another time zone until the rebuild) the objects
are grouped by record and by month instead. The long lists are written by
``repository/dashboard_rows.py``.

The objects counted are the project's *stored* objects that the viewer may see, through
:func:`repository.access.visible_to` like every other list; the people who may open the
dashboard (its PM and data managers, curators, superusers) see all of them, so they all
read the same numbers. Objects still uploading, abandoned or deleted hold no bytes and are
left out.

The rendered body of the page (everything but the site's header, which names the viewer)
is kept in the shared cache by :func:`dashboard_body`, one copy per project, language, day
and variant (curators read it without the links to edit the DMP and to the access-request
queue, but with links to their review pages), filed under the catalogue
and activity generations and the project's own (``core/generations.py``): every write to
a record, plan, project or person's name, and every write to one of the project's objects,
requests, grants or audit events, makes the copy unreachable at once; writes in other
projects leave it alone.
Who may read it is checked on every request, before the cache is asked.

"By data type" uses the record's data type (データ種別, the funders' vocabulary of the
common metadata, column 11 of the CSTI report): it is what a PM reports to a funder, while
an object's file format is a technical detail of each file.
"""

import datetime
import hashlib
from dataclasses import dataclass, field

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import (
    Count,
    Q,
    QuerySet,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts.models import Project
from accounts.roles import ProjectAction, may
from core.generations import ACTIVITY, CATALOGUE, PROJECT, cached_lookup, cached_store
from core.tiers import dated_tiers, tier_rule
from core.vocabularies import DATA_TYPES, Tier
from dmp.common_metadata import (
    REQUIRED,
    incomplete_condition,
    missing_requirements,
    requirement_columns,
)
from dmp.models import DmpRecord
from repository.access import Action, records_visible_to, visible_to
from repository.dashboard_rows import (
    activity_table_rows,
    embargo_table_rows,
    growth_chart_svg,
    month_table_rows,
    record_table_rows,
    size_text,
)
from repository.governance import grants
from repository.models import (
    AccessRequest,
    AuditEvent,
    DataObject,
    RequestStatus,
    TierChangeRequest,
)
from repository.plans.selectors import EXPORT_FORMATS
from repository.preservation.fixity import CHECKSUM_FILTER_LABELS, CHECKSUM_FILTERS
from repository.tally import tally_by_month, tally_by_type, tally_embargoes, tally_in_use
from repository.usage.presenters import dashboard_usage

EMBARGO_WINDOW_DAYS = 90
EMBARGO_LIST = 20
RECENT_EVENTS = 10
SHORT_LIST = 5
RECORD_PAGE = 25  # rows of the table by DMP record
RECORD_TABLE_FIELDS = sorted(
    {"project_id", "data_number", "title_ja", "title_en", "data_type"} | requirement_columns()
)
DISPLAY_NAME_FIELDS = ("name_ja", "name_en", "first_name", "last_name", "username")


def dashboard_objects(*, user, project: Project) -> QuerySet:
    """The project's stored objects ``user`` may see: what every panel counts."""
    return (
        visible_to(user, Action.VIEW_METADATA, project=project)
        .filter(status=DataObject.Status.STORED)
        .order_by()
    )


# --- Totals by tier, record, data type and checksum state (one grouped query) ---------------


@dataclass
class Figures:
    """A count of objects and their bytes, split by tier."""

    count: int = 0
    bytes: int = 0
    tiers: dict[str, list[int]] = field(default_factory=lambda: {t.value: [0, 0] for t in Tier})

    def add(self, row: dict) -> None:
        self.count += row["count"]
        self.bytes += row["bytes"]
        for tier in Tier:
            self.tiers[tier.value][0] += row[f"count_{tier.value}"]
            self.tiers[tier.value][1] += row[f"bytes_{tier.value}"]

    @property
    def tier_rows(self) -> list[dict]:
        return [
            {
                "tier": tier.value,
                "label": tier.label,
                "count": self.tiers[tier.value][0],
                "bytes": self.tiers[tier.value][1],
            }
            for tier in Tier
        ]


def _bytes(condition: Q | None = None):
    return Coalesce(Sum("size", filter=condition), Value(0))


def reads_tallies(user, project: Project) -> bool:
    """Whether ``user``'s dashboard of ``project`` comes from the tallies: on PostgreSQL
    with the tallies in use, for those who may read the dashboard (they see all its
    objects); else the panels count the objects ``user`` may see."""
    return may(user, ProjectAction.READ_DASHBOARD, project) and tally_in_use()


def dashboard_figures(
    *,
    user,
    project: Project,
    objects: QuerySet,
    records: QuerySet,
    shown: list[int],
    tallied: bool | None = None,
) -> tuple[list, list, list]:
    """The rows the dashboard shows: by data type (:func:`figures_by_type`; their sum is
    the project's totals), by record for the records ``shown`` (a page of the table), and by
    month (:func:`objects_by_month`). From the project's tallies (a few rows whatever its
    size, :func:`repository.tally.tally_by_type`) when ``tallied``
    (:func:`reads_tallies`, asked when not given), else counted from its stored ``objects``
    (``records``: the project's records ``user`` may see, for their data types)."""
    if reads_tallies(user, project) if tallied is None else tallied:
        by_type, by_record = tally_by_type(project.pk, shown=shown)
        return by_type, by_record, tally_by_month(project.pk)
    rows = objects_by_record(objects)
    data_types = dict(records.order_by().values_list("pk", "data_type"))
    listed = set(shown)
    return (
        figures_by_type(rows, data_types),
        [row for row in rows if row["record_id"] in listed],
        objects_by_month(objects),
    )


def figures_by_type(by_record: list[dict], data_types: dict[int, str | None]) -> list[dict]:
    """The rows of :func:`objects_by_record` summed by the data type of their record, as
    :func:`repository.tally.tally_by_type` answers them (``has_record``, ``data_type``);
    the objects of records not in ``data_types`` (which the viewer may not see) in a row
    of their own (``unseen``): counted in the totals, under no data type."""
    grouped: dict[tuple, dict] = {}
    for row in by_record:
        record_id = row["record_id"]
        if record_id is None:
            key = {"has_record": False, "data_type": None}
        elif record_id in data_types:
            key = {"has_record": True, "data_type": data_types[record_id]}
        else:
            key = {"has_record": True, "data_type": None, "unseen": True}
        group = grouped.setdefault(tuple(key.items()), {**key, **dict.fromkeys(row, 0)})
        for name, value in row.items():
            if name != "record_id":
                group[name] += value
    for group in grouped.values():
        del group["record_id"]
    return list(grouped.values())


def _embargo_lifts(today: datetime.date) -> Q:
    """Embargoed objects whose available date is at most :data:`EMBARGO_WINDOW_DAYS` days
    away (or already past, waiting for the task that lifts it)."""
    until = today + datetime.timedelta(days=EMBARGO_WINDOW_DAYS)
    return Q(tier__in=dated_tiers(), available_date__lte=until)


def objects_by_record(objects: QuerySet) -> list[dict]:
    """One row per DMP record (``record_id`` ``None`` for objects without one): count and
    bytes in all, per tier, and the count in each checksum state."""
    aggregates = {"count": Count("pk"), "bytes": _bytes()}
    for tier in Tier:
        aggregates[f"count_{tier.value}"] = Count("pk", filter=Q(tier=tier))
        aggregates[f"bytes_{tier.value}"] = _bytes(Q(tier=tier))
    for state, condition in CHECKSUM_FILTERS.items():
        aggregates[f"checksum_{state}"] = Count("pk", filter=condition)
    return list(objects.values("record_id").annotate(**aggregates).order_by())


# --- Storage growth by month ------------------------------------------------------------------


def _month(value: datetime.datetime | datetime.date) -> datetime.date:
    if isinstance(value, datetime.datetime):
        value = timezone.localtime(value) if timezone.is_aware(value) else value
        value = value.date()
    return value.replace(day=1)


def _next_month(month: datetime.date) -> datetime.date:
    return (month + datetime.timedelta(days=32)).replace(day=1)


def objects_by_month(objects: QuerySet) -> list[dict]:
    """Objects and bytes added per month (``stored_month``: when the bytes were stored)."""
    return list(
        objects.annotate(stored_month=TruncMonth(Coalesce("stored_at", "created_at")))
        .values("stored_month")
        .annotate(count=Count("pk"), bytes=_bytes())
        .order_by("stored_month")
    )


def growth_by_month(added_by_month: list[dict], *, today: datetime.date) -> list[dict]:
    """The months of ``added_by_month`` (:func:`objects_by_month`) with the running total;
    months without additions are listed too, up to the current month."""
    added = {_month(row["stored_month"]): row for row in added_by_month if row["count"]}
    if not added:
        return []
    months = []
    month, last = min(added), max(max(added), _month(today))
    cumulative = 0
    while month <= last:
        row = added.get(month, {"count": 0, "bytes": 0})
        cumulative += row["bytes"]
        months.append(
            {"month": month, "count": row["count"], "bytes": row["bytes"], "cumulative": cumulative}
        )
        month = _next_month(month)
    return months


# --- Charts (inline SVG, drawn by the template from these coordinates) -------------------------

CHART_WIDTH = 720
CHART_HEIGHT = 260
CHART_MARGIN = {"left": 16, "right": 16, "top": 28, "bottom": 36}


def _svg(value: float) -> str:
    """A coordinate as SVG wants it: never localised (no decimal comma, no thousands
    separator), and a string, so the template does not format it again."""
    return f"{value:.2f}"


def growth_chart(months: list[dict]) -> dict | None:
    """Bars for the bytes added each month and a line for the running total, each on its
    own scale (the largest value of each is written at the top)."""
    if not months:
        return None
    left, top = CHART_MARGIN["left"], CHART_MARGIN["top"]
    width = CHART_WIDTH - left - CHART_MARGIN["right"]
    height = CHART_HEIGHT - top - CHART_MARGIN["bottom"]
    band = width / len(months)
    bar = min(max(band * 0.7, 1), 48)
    top_added = max(m["bytes"] for m in months) or 1
    top_total = months[-1]["cumulative"] or 1
    step = max(1, -(-len(months) // 12))  # at most 12 month labels
    bars, points, labels = [], [], []
    for n, month in enumerate(months):
        x = left + n * band
        bar_height = height * month["bytes"] / top_added
        bars.append(
            {
                "x": _svg(x + (band - bar) / 2),
                "y": _svg(top + height - bar_height),
                "width": _svg(bar),
                "height": _svg(bar_height),
                "title": _("%(month)s: %(added)s added, %(total)s in all")
                % {
                    "month": month["month"].strftime("%Y-%m"),
                    "added": size_text(month["bytes"]),
                    "total": size_text(month["cumulative"]),
                },
            }
        )
        cx = x + band / 2
        points.append(f"{cx:.2f},{top + height - height * month['cumulative'] / top_total:.2f}")
        if n % step == 0:
            labels.append({"x": _svg(cx), "text": month["month"].strftime("%Y-%m")})
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": left,
        "right": CHART_WIDTH - CHART_MARGIN["right"],
        "top": top,
        "baseline": top + height,
        "label_y": top + height + 20,
        "bars": bars,
        "line": " ".join(points),
        "points": [p.split(",") for p in points],
        "labels": labels,
        "top_added": size_text(top_added),
        "top_total": size_text(top_total),
        "first": months[0]["month"].strftime("%Y-%m"),
        "last": months[-1]["month"].strftime("%Y-%m"),
    }


def tier_mix_chart(tier_rows: list[dict], total_bytes: int) -> dict | None:
    """One bar split by the share of bytes in each tier."""
    if not total_bytes:
        return None
    width = CHART_WIDTH
    x = 0.0
    segments = []
    for row in tier_rows:
        if not row["bytes"]:
            continue
        share = row["bytes"] / total_bytes
        segments.append(
            {
                "tier": row["tier"],
                "x": _svg(x),
                "width": _svg(share * width),
                "colour": tier_rule(row["tier"]).colour,
                "title": _("%(tier)s: %(size)s (%(share)s%%)")
                % {
                    "tier": row["label"],
                    "size": size_text(row["bytes"]),
                    "share": f"{100 * share:.1f}",
                },
            }
        )
        x += share * width
    return {"width": width, "height": 40, "segments": segments}


# --- The other panels --------------------------------------------------------------------------


def dashboard_embargoes(
    *,
    user,
    project: Project,
    objects: QuerySet,
    today: datetime.date,
    tallied: bool | None = None,
) -> tuple[list[dict], dict]:
    """The embargo panel: the first :data:`EMBARGO_LIST` (date, record) pairs lifting
    within the window (:func:`embargo_schedule`) and the totals of all
    (:func:`embargoes_lifting`), from the project's tallies when ``tallied``
    (:func:`reads_tallies`, asked when not given)."""
    if reads_tallies(user, project) if tallied is None else tallied:
        until = today + datetime.timedelta(days=EMBARGO_WINDOW_DAYS)
        listed, lifting = tally_embargoes(project.pk, until=until, first=EMBARGO_LIST)
        return [_schedule_entry(row, today) for row in listed], lifting
    return embargo_schedule(objects, today=today), embargoes_lifting(objects, today=today)


def _schedule_entry(row: dict, today: datetime.date) -> dict:
    return {
        **row,
        "days": (row["available_date"] - today).days,
        "due": row["available_date"] <= today,
    }


def embargoes_lifting(objects: QuerySet, *, today: datetime.date) -> dict:
    """How many of ``objects``, and how many bytes, are embargoed and lift soon, counted
    from the objects (where the tallies are not kept; see :func:`dashboard_embargoes`)."""
    return objects.filter(_embargo_lifts(today)).aggregate(count=Count("pk"), bytes=_bytes())


def embargo_schedule(objects: QuerySet, *, today: datetime.date) -> list[dict]:
    """The first :data:`EMBARGO_LIST` (date, record) pairs of the embargoes lifting soon,
    with their objects; the totals come from :func:`embargoes_lifting`."""
    grouped = (
        objects.filter(_embargo_lifts(today))
        .values("available_date", "record_id")
        .annotate(count=Count("pk"), bytes=_bytes())
        .order_by("available_date", "record_id")
    )[:EMBARGO_LIST]
    return [_schedule_entry(row, today) for row in grouped]


def _with_total(queryset: QuerySet) -> QuerySet:
    """``total``: how many rows the whole (unsliced) queryset has, on every row."""
    return queryset.annotate(total=Window(Count("pk")))


def pending_tier_requests(project: Project) -> list[TierChangeRequest]:
    return list(
        _with_total(
            TierChangeRequest.objects.filter(project=project, status=RequestStatus.PENDING)
            .select_related("requested_by")
            .annotate(object_count=Count("data_objects"))
        ).order_by("created_at", "pk")[:SHORT_LIST]
    )


def pending_access_requests(project: Project) -> list[AccessRequest]:
    return list(_with_total(grants.pending_access_requests(project=project))[:SHORT_LIST])


def recent_events(project: Project) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(project=project)
        .exclude(action__in=AuditEvent.UPLOAD_STEPS)
        .select_related("actor", "data_object", "record")
        # Only what the panel shows: objects and records are wide rows.
        .only(
            "occurred_at",
            "action",
            "detail",
            *(f"actor__{name}" for name in DISPLAY_NAME_FIELDS),
            "data_object__original_filename",
            "record__data_number",
        )
        .order_by("-occurred_at", "-pk")[:RECENT_EVENTS]
    )


def _data_type_label(code: str | None) -> str:
    if code in DATA_TYPES:
        return DATA_TYPES[code].label()
    return code or ""


def dashboard_record_page(records: QuerySet, count: int, page_number: int) -> Page:
    """One page of :data:`RECORD_PAGE` of ``records`` (ordered, ``count`` of them); past
    the last page, the last one."""
    paginator = Paginator(records, RECORD_PAGE, allow_empty_first_page=True)
    paginator.count = count  # known already: no COUNT query
    return paginator.page(min(max(page_number, 1), paginator.num_pages))


def project_dashboard_context(
    *,
    user,
    project: Project,
    can_edit: bool | None = None,
    can_review: bool | None = None,
    records_page: int = 1,
) -> dict:
    """Everything the dashboard's body shows (``can_edit``: whether it links to editing the
    DMP and to the access-request queue, asked of ``may(user, ProjectAction.EDIT_DMP,
    project)``; ``can_review``: whether pending tier changes link to the curators' review
    pages, asked of ``may(user, ProjectAction.REVIEW_TIERS)``; both when not given). The
    table by DMP
    record shows page ``records_page``: only that page's records and their figures are
    loaded; the records are counted, and those lacking required items
    (:func:`dmp.common_metadata.incomplete_condition`), in the database, and the figures
    by data type are summed there too: no read grows with the number of records."""
    today = timezone.localdate()
    objects = dashboard_objects(user=user, project=project)
    tallied = reads_tallies(user, project)  # asked once for every panel
    project_records = records_visible_to(user).filter(project=project)
    # How many records, and how many lack required items, counted in the database.
    counted = project_records.order_by().aggregate(
        count=Count("pk"), incomplete=Count("pk", filter=incomplete_condition(DmpRecord))
    )
    page = dashboard_record_page(
        # Only the columns the table and the required-items check read.
        project_records.only(*RECORD_TABLE_FIELDS).order_by("data_number", "pk"),
        counted["count"],
        records_page,
    )
    page.object_list = list(page.object_list)
    type_figures, record_figures, month_figures = dashboard_figures(
        user=user,
        project=project,
        objects=objects,
        records=project_records,
        shown=[record.pk for record in page.object_list],
        tallied=tallied,
    )

    totals = Figures()
    without_record = Figures()
    checksum = dict.fromkeys(CHECKSUM_FILTERS, 0)
    by_type: dict[str | None, Figures] = {}
    for row in type_figures:
        totals.add(row)
        for state in checksum:
            checksum[state] += row[f"checksum_{state}"]
        if not row["has_record"]:
            without_record.add(row)
        elif not row.get("unseen"):
            by_type.setdefault(row["data_type"], Figures()).add(row)
    by_record = {row["record_id"]: row for row in record_figures}

    labels = {requirement.name: str(requirement.label) for requirement in REQUIRED}
    record_rows = []
    for record in page.object_list:
        row = by_record.get(record.pk)
        figures = Figures()
        if row:
            figures.add(row)
        missing = missing_requirements(record)
        record_rows.append(
            {
                "record": record,
                "figures": figures,
                "data_type": _data_type_label(record.data_type),
                "required": len(REQUIRED),
                "met": len(REQUIRED) - len(missing),
                "missing": [labels[requirement.name] for requirement in missing],
            }
        )

    months = growth_by_month(month_figures, today=today)
    tier_rows = totals.tier_rows
    for row in tier_rows:
        row["share"] = 100 * row["bytes"] / totals.bytes if totals.bytes else 0
    embargoes, lifting = dashboard_embargoes(
        user=user, project=project, objects=objects, today=today, tallied=tallied
    )
    records_by_id = project_records.only("data_number", "title_ja", "title_en").in_bulk(
        {entry["record_id"] for entry in embargoes} - {None}
    )
    for entry in embargoes:
        entry["record"] = records_by_id.get(entry["record_id"])
    tier_requests = pending_tier_requests(project)
    access_requests = pending_access_requests(project)
    events = recent_events(project)
    chart = growth_chart(months)
    if can_edit is None:
        can_edit = may(user, ProjectAction.EDIT_DMP, project)
    if can_review is None:
        can_review = may(user, ProjectAction.REVIEW_TIERS)
    return {
        "project": project,
        "today": today,
        "totals": totals,
        "tier_rows": tier_rows,
        "tier_mix_chart": tier_mix_chart(tier_rows, totals.bytes),
        "record_rows": record_rows,
        "record_rows_html": record_table_rows(record_rows, project=project, can_edit=can_edit),
        "record_page": page,
        "without_record": without_record,
        "type_rows": sorted(
            (
                {"code": code, "label": _data_type_label(code), "figures": figures}
                for code, figures in by_type.items()
            ),
            key=lambda row: -row["figures"].bytes,
        ),
        "checksum_rows": [
            {"state": state, "label": CHECKSUM_FILTER_LABELS[state], "count": count}
            for state, count in checksum.items()
        ],
        "records_incomplete": counted["incomplete"],
        "months": months,
        "month_rows_html": month_table_rows(months),
        "growth_chart": chart,
        "growth_chart_svg": growth_chart_svg(chart) if chart else "",
        "embargoes": embargoes,
        "embargo_rows_html": embargo_table_rows(embargoes),
        "embargoes_lifting": lifting,
        "embargoes_not_listed": lifting["count"] - sum(entry["count"] for entry in embargoes),
        "embargo_window_days": EMBARGO_WINDOW_DAYS,
        "embargo_until": today + datetime.timedelta(days=EMBARGO_WINDOW_DAYS),
        "tier_requests": tier_requests,
        "tier_requests_total": tier_requests[0].total if tier_requests else 0,
        "access_requests": access_requests,
        "access_requests_total": access_requests[0].total if access_requests else 0,
        "events": events,
        "event_rows_html": activity_table_rows(events),
        "export_formats": EXPORT_FORMATS,
        "can_edit_dmp": can_edit,
        # Pending items link to where they are decided, for whom may decide them there.
        "can_decide_access": can_edit and may(user, ProjectAction.DECIDE_ACCESS, project),
        "can_review": can_review,
        # Views and downloads (COUNTER); each fold moves the project's generation.
        "usage": dashboard_usage(project=project),
    }


# --- The cached body ---------------------------------------------------------------------------

BODY_TEMPLATE = "repository/_dashboard_body.html"


def _body_key(
    project: Project,
    can_edit: bool,
    can_review: bool,
    records_page: int,
    generations: tuple[int, ...],
) -> str:
    raw = "\n".join(
        (
            *map(str, generations),
            str(project.pk),
            str(records_page),
            get_language() or "",
            # The embargo window and "due" count from today.
            timezone.localdate().isoformat(),
            "edit" if can_edit else "read",
            "review" if can_review else "",
        )
    )
    return "kura:dashboard:" + hashlib.sha256(raw.encode()).hexdigest()


def dashboard_body(*, user, project: Project, records_page: int = 1) -> SafeString:
    """The dashboard's body, rendered, for ``user`` (who may read it: the caller checked).

    Everyone who may read the dashboard counts the same objects and records (its PM and
    data managers, curators and superusers see all of the project's), so the body depends
    only on the project, the language, the day and the links it offers (editing the DMP,
    deciding access requests, reviewing tier changes); it is served from the shared cache
    while no generation it is filed under has moved."""
    can_edit = may(user, ProjectAction.EDIT_DMP, project)
    can_review = may(user, ProjectAction.REVIEW_TIERS)
    seconds = settings.KURA_DASHBOARD_CACHE_SECONDS
    key = None
    if seconds > 0:
        key, stored = cached_lookup(
            (CATALOGUE, ACTIVITY, PROJECT.of(project.pk)),
            lambda generations: _body_key(project, can_edit, can_review, records_page, generations),
        )
        if stored is not None:
            return mark_safe(stored)  # noqa: S308 - our own rendering, stored as it was
    context = project_dashboard_context(
        user=user,
        project=project,
        can_edit=can_edit,
        can_review=can_review,
        records_page=records_page,
    )
    body = render_to_string(BODY_TEMPLATE, context)
    if key is not None:
        cached_store(key, str(body), seconds)
    return body
