"""What the dashboard's usage panel and the programs page show of usage.

The panel is part of the dashboard's cached body: a fold that writes a project's events
moves the project's generation (``fold.py``), so the body is read afresh after it.
"""

import datetime
from collections import defaultdict

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from dmp.models import DmpRecord
from repository.usage.selectors import ScopeCounts, month_span, usage_by_record_and_month

MONTHS_SHOWN = 12
SCOPES = ("public", "shared", "project")

CHART_WIDTH = 720
CHART_HEIGHT = 220
LEFT, RIGHT, TOP, BOTTOM = 16, 16, 28, 36


def scope_labels() -> dict[str, str]:
    return {"public": _("Public"), "shared": _("Shared"), "project": _("In the project")}


def dashboard_usage(*, project) -> dict:
    """The usage panel of ``project``'s dashboard: the last twelve months by scope (table
    and chart of downloads) and the figures of each record since counting began, from one
    query."""
    today = timezone.localdate()
    first = today.replace(day=1)
    for _n in range(MONTHS_SHOWN - 1):
        first = (first - datetime.timedelta(days=1)).replace(day=1)
    by_month: dict[datetime.date, ScopeCounts] = defaultdict(ScopeCounts)
    by_record: dict[int, ScopeCounts] = defaultdict(ScopeCounts)
    records: dict[int, DmpRecord] = {}
    for row in usage_by_record_and_month(project_ids=[project.pk], titles=True):
        by_record[row["record_id"]].add(row["scope"], row)
        if row["month"] >= first:
            by_month[row["month"]].add(row["scope"], row)
        records.setdefault(
            row["record_id"],
            DmpRecord(
                pk=row["record_id"],
                data_number=row["record__data_number"],
                title_ja=row["record__title_ja"],
                title_en=row["record__title_en"],
            ),
        )
    months = [(month, by_month.get(month, ScopeCounts())) for month in month_span(first, today)]
    record_rows = sorted(
        ((records[record_id], counts) for record_id, counts in by_record.items()),
        key=lambda row: (row[0].data_number, row[0].pk),
    )
    totals = ScopeCounts()
    for _month, counts in months:
        for scope in SCOPES:
            getattr(totals, scope).add(getattr(counts, scope).as_dict())
    return {
        "months": months,
        "record_rows": record_rows,
        "totals": totals,
        "chart_svg": usage_chart_svg(months),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "first": first,
        "last": today,
    }


def usage_chart_svg(months: list[tuple[datetime.date, ScopeCounts]]) -> SafeString:
    """One bar a month, the downloads stacked by scope (public at the bottom), with the
    month below and each part's count in its title."""
    width = CHART_WIDTH - LEFT - RIGHT
    height = CHART_HEIGHT - TOP - BOTTOM
    band = width / len(months)
    bar = min(band * 0.7, 40)
    top = max((sum(getattr(c, s).total_requests for s in SCOPES) for _m, c in months), default=0)
    scale = height / top if top else 0
    labels = scope_labels()
    rects, ticks = [], []
    for n, (month, counts) in enumerate(months):
        x = LEFT + n * band + (band - bar) / 2
        y = TOP + height
        for scope in SCOPES:
            value = getattr(counts, scope).total_requests
            if not value:
                continue
            h = value * scale
            y -= h
            title = f"{month:%Y-%m} {labels[scope]}: {value}"
            rects.append((scope, f"{x:.2f}", f"{y:.2f}", f"{bar:.2f}", f"{h:.2f}", title))
        ticks.append((f"{x + bar / 2:.2f}", TOP + height + 20, f"{month:%Y-%m}"))
    bars = format_html_join(
        "",
        '<rect class="usage-bar usage-{}" x="{}" y="{}" width="{}" height="{}">'
        "<title>{}</title></rect>",
        rects,
    )
    texts = format_html_join(
        "", '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>', ticks[::2]
    )
    axis = format_html(
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>',
        LEFT,
        TOP + height,
        CHART_WIDTH - RIGHT,
        TOP + height,
    )
    scale_text = format_html(
        '<text class="scale" x="{}" y="14">{}</text>',
        LEFT,
        _("Downloads per month (top: %(count)s)") % {"count": top},
    )
    return axis + scale_text + bars + texts
