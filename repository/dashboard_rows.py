"""The dashboard's long lists written in Python: the monthly figures and their chart, the
page of the table by DMP record, the embargo schedule and the recent activity.

Each value is formatted once, as the template would write it (the same filters, the same
translations and msgids), and each row is built by ``format_html``, which escapes what
people typed: the template engine's per-variable work (resolving, localising, escaping
each variable through several layers) was most of the cost of a full project's page.
:func:`size_text`, :func:`number_text` and :func:`url_maker` write what
``filesizeformat``, ``localize`` and ``reverse`` write, with their lookups done once per
page rather than once per value.
"""

import functools
from collections.abc import Callable

from django.conf import settings
from django.template.defaultfilters import filesizeformat, truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import get_format, localize
from django.utils.html import avoid_wrapping, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from accounts.models import Project
from repository.models import AuditEvent


@functools.lru_cache(maxsize=16)
def _size_units(language: str | None) -> tuple[str, tuple[str, ...]]:
    """The decimal separator and the translated units (KB to PB) of ``language``."""
    units = ("%s KB", "%s MB", "%s GB", "%s TB", "%s PB")  # Django's msgids, as the filter's
    return get_format("DECIMAL_SEPARATOR", language), tuple(_(unit) for unit in units)


def size_text(value: int) -> str:
    """What the ``filesizeformat`` filter writes for ``value`` bytes ("4.1 MB"), with the
    units and the decimal separator looked up once per language instead of on every
    call; the filter itself where it would do more (under 1 KB: plural forms; thousand
    separators on; beyond 1,024 PB)."""
    if value < 1024 or value >= 1 << 60 or settings.USE_THOUSAND_SEPARATOR:
        return filesizeformat(value)
    separator, units = _size_units(get_language())
    exponent = (value.bit_length() - 1) // 10  # 1 for KB ... 5 for PB
    number = f"{round(value / (1 << (10 * exponent)), 1):.1f}".replace(".", separator)
    return avoid_wrapping(units[exponent - 1] % number)


def number_text(value: int) -> str:
    """An integer as the template writes it (``localize``): without thousand separators,
    as Kura runs, it is its digits."""
    return localize(value) if settings.USE_THOUSAND_SEPARATOR else str(value)


def url_maker(name: str, *args) -> Callable[[int], str]:
    """``reverse(name, args=[*args, pk])`` for many pks at the cost of one ``reverse``
    (which takes longer than everything else in a row): the URL is reversed once with a
    marker for ``pk``, its last argument and last number."""
    marker = "4242424242"
    head, found, tail = reverse(name, args=[*args, int(marker)]).rpartition(marker)
    if not found:  # a pattern that does not write its last argument as it is
        return lambda pk: reverse(name, args=[*args, pk])
    return lambda pk: f"{head}{pk}{tail}"


def _size(value: int) -> SafeString:
    return format_html('<data value="{}">{}</data>', value, size_text(value))


def growth_chart_svg(chart: dict) -> SafeString:
    """The bars, line, points and month labels of :func:`growth_chart`."""
    bars = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        ((b["x"], b["y"], b["width"], b["height"], b["title"]) for b in chart["bars"]),
    )
    points = format_html_join(
        "", '<circle class="cumulative-point" cx="{}" cy="{}" r="3"/>', chart["points"]
    )
    labels = format_html_join(
        "",
        '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
        ((label["x"], chart["label_y"], label["text"]) for label in chart["labels"]),
    )
    line = format_html('<polyline class="cumulative" points="{}"/>', chart["line"])
    return bars + line + points + labels


def month_table_rows(months: list[dict]) -> SafeString:
    return format_html_join(
        "",
        '<tr data-month="{0}"><th scope="row"><time datetime="{0}">{0}</time></th>'
        '<td class="num">{1}</td><td class="num">{2}</td><td class="num">{3}</td></tr>',
        (
            (
                month["month"].strftime("%Y-%m"),
                number_text(month["count"]),
                _size(month["bytes"]),
                _size(month["cumulative"]),
            )
            for month in months
        ),
    )


def record_table_rows(rows: list[dict], *, project: Project, can_edit: bool) -> SafeString:
    """The page of the table by DMP record (``rows``: the context's ``record_rows``)."""
    complete_label = _("Complete")
    detail_url = url_maker("dmp-record-detail", project.pk)
    edit_url = url_maker("dmp-record-edit", project.pk)
    html = []
    for row in rows:
        record = row["record"]
        if row["missing"]:
            missing = format_html("{}", ", ".join(row["missing"]))
            if can_edit:
                missing += format_html(
                    ' <a class="button button-small" href="{}">{}</a>',
                    edit_url(record.pk),
                    complete_label,
                )
        else:
            missing = mark_safe('<span class="muted">—</span>')  # noqa: S308 - a constant
        html.append(
            format_html(
                '<tr data-record="{}"><td><a href="{}"><code>{}</code></a></td><td>{}</td>'
                '<td>{}</td><td class="num">{}</td><td class="num">{}</td>'
                '<td class="num completeness{}">{}</td><td>{}</td></tr>',
                record.pk,
                detail_url(record.pk),
                record.data_number,
                record.title,
                row["data_type"],
                number_text(row["figures"].count),
                _size(row["figures"].bytes),
                " incomplete" if row["missing"] else "",
                _("%(met)s of %(required)s") % {"met": row["met"], "required": row["required"]},
                missing,
            )
        )
    return mark_safe("".join(html))  # noqa: S308 - each row built by format_html


def embargo_table_rows(entries: list[dict]) -> SafeString:
    due = pgettext("embargo", "due")
    html = []
    for entry in entries:
        day = entry["available_date"].strftime("%Y-%m-%d")
        record = entry["record"]
        if record is not None:
            shown = format_html("<code>{}</code> {}", record.data_number, record.title)
        else:
            shown = format_html('<span class="muted">{}</span>', _("No DMP record"))
        html.append(
            format_html(
                '<tr data-date="{0}"><td><time datetime="{0}">{0}</time></td>'
                '<td class="num">{1}</td><td>{2}</td><td class="num">{3}</td>'
                '<td class="num">{4}</td></tr>',
                day,
                due if entry["due"] else number_text(entry["days"]),
                shown,
                number_text(entry["count"]),
                _size(entry["bytes"]),
            )
        )
    return mark_safe("".join(html))  # noqa: S308 - each row built by format_html


def activity_table_rows(events: list[AuditEvent]) -> SafeString:
    kura = format_html('<span class="muted">{}</span>', _("Kura"))
    # What get_action_display() answers, without hashing every (lazy, translated) label of
    # the choices on each call as it does.
    actions = dict(AuditEvent._meta.get_field("action").flatchoices)
    object_url = url_maker("object-detail")
    html = []
    for event in events:
        # As the date filter writes it ("c" and "Y-m-d H:i"), in the current time zone.
        occurred = timezone.localtime(event.occurred_at)
        if event.data_object_id:
            subject = format_html(
                '<a href="{}">{}</a>',
                object_url(event.data_object_id),
                event.data_object.original_filename,
            )
        elif event.record_id:
            subject = format_html("<code>{}</code>", event.record.data_number)
        else:
            subject = mark_safe('<span class="muted">—</span>')  # noqa: S308 - a constant
        html.append(
            format_html(
                '<tr><td><time datetime="{}">{}</time></td><td>{}</td><td>{}</td><td>{}</td>'
                "<td>{}</td></tr>",
                occurred.isoformat(),
                occurred.strftime("%Y-%m-%d %H:%M"),
                actions.get(event.action, event.action),
                event.actor.display_name if event.actor_id else kura,
                subject,
                truncatechars(event.detail, 80) if event.detail else "",
            )
        )
    return mark_safe("".join(html))  # noqa: S308 - each row built by format_html
