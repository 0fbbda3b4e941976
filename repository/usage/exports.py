"""The program officers' combined usage export: one CSV row per project, record, month and
scope with COUNTER's four metrics (``/programs/<funder>/<code>/export?format=usage-csv``)."""

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from accounts.models import Project
from core.spreadsheet import csv_cell
from dmp.models import DmpRecord
from repository.usage.presenters import scope_labels
from repository.usage.selectors import METRICS, usage_by_record_and_month

BOM = "\ufeff".encode()


class _Line:
    def write(self, value: str) -> str:
        return value


def usage_csv_header() -> list[str]:
    return [
        _("Project ID"),
        _("Project"),
        _("Japan Grant Number"),
        _("Record ID"),
        _("Data No."),
        _("Title"),
        _("Month"),
        _("Scope"),
        *METRICS,
    ]


def usage_csv_rows(projects: QuerySet[Project], records: QuerySet[DmpRecord]) -> Iterator[bytes]:
    """The rows of ``projects``' usage, for the records among ``records`` (those the reader
    may read), as encoded CSV lines (UTF-8 with a BOM, CRLF)."""
    by_id = {project.pk: project for project in projects}
    rows = usage_by_record_and_month(project_ids=list(by_id))
    shown = records.in_bulk({row["record_id"] for row in rows})
    labels = scope_labels()
    writer = csv.writer(_Line())
    yield BOM + writer.writerow(usage_csv_header()).encode("utf-8")
    for row in rows:
        record = shown.get(row["record_id"])
        if record is None:
            continue
        project = by_id[row["project_id"]]
        cells = [
            str(project.pk),
            project.name,
            project.japan_grant_number or "",
            str(record.pk),
            record.data_number,
            record.title,
            row["month"].strftime("%Y-%m"),
            str(labels[row["scope"]]),
            *(str(row[name]) for name in METRICS),
        ]
        yield writer.writerow([csv_cell(cell) for cell in cells]).encode("utf-8")
