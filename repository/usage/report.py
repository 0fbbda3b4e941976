"""The monthly COUNTER Research Data report ("dataset report", DSR, release ``rd1``) as the
Research Data SUSHI API and DataCite's usage-report hub take it: a ``report-header`` and
one ``report-datasets`` entry per dataset and access method, with each month's
``performance``. It reports public usage only (``selectors.public_events``), for the whole
repository or one project; the JSON schema it conforms to is shipped in ``schemas/``
(DataCite's ``sushi_usage_schema.json``, MIT; see its README) and checked in the tests.

A report that reaches into the current month is partial, as the Code of Practice allows:
its reporting period (and that month's ``period``) ends today, and its header carries
COUNTER's exception 3040, "Partial Data Returned".
"""

import datetime
from collections import defaultdict

from django.conf import settings
from django.db.models import Min
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import override

from dmp.models import DmpRecord
from repository.models import DatasetConcept, DatasetVersion, DoiState
from repository.usage.selectors import grouped, public_events

PLATFORM = "Kura"
RELEASE = "rd1"
# COUNTER's metric names, in the order a report lists them.
METRIC_TYPES = {
    "total_investigations": "total-dataset-investigations",
    "unique_investigations": "unique-dataset-investigations",
    "total_requests": "total-dataset-requests",
    "unique_requests": "unique-dataset-requests",
}


def month_end(month: datetime.date) -> datetime.date:
    return (month + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)


def publisher_ids() -> list[dict]:
    """``publisher-id``, which COUNTER requires: the DataCite repository (its ``client-id``,
    lower case as DataCite's APIs write it) that registers Kura's DOIs, when Kura registers
    them with DataCite. That is the one identifier Kura knows that the schema's types
    (``isni``, ``orcid``, ``grid``, ``urn``, ``client-id``) can carry: ROR, the hosting
    institution's identifier, is not among them. Otherwise empty, as COUNTER asks of a
    required field whose value is unknown."""
    if settings.KURA_DOI_PROVIDER == "datacite" and settings.KURA_DATACITE_USERNAME:
        return [{"type": "client-id", "value": settings.KURA_DATACITE_USERNAME.lower()}]
    return []


def dataset_report(
    *,
    begin: datetime.date,
    end: datetime.date,
    absolute,
    project=None,
) -> dict:
    """The DSR of the months from ``begin``'s to ``end``'s (first days of months, not after
    the current month), for ``project`` or the whole repository; ``absolute(path)`` makes
    a URL absolute."""
    today = timezone.localdate()
    partial = end >= today.replace(day=1)  # today's usage is still being counted
    last_day = today if partial else month_end(end)
    events = public_events().filter(month__gte=begin, month__lte=end)
    if project is not None:
        events = events.filter(project_id=project.pk)
    by_dataset: dict[tuple[int, bool], dict] = defaultdict(dict)
    for row in grouped(events, "month", "machine"):
        by_dataset[(row["record_id"], row["machine"])][row["month"]] = row
    record_ids = {record_id for record_id, _machine in by_dataset}
    records = DmpRecord.objects.select_related("project__institution").in_bulk(record_ids)
    dois = dict(
        DatasetConcept.objects.filter(
            record_id__in=record_ids, doi_state=DoiState.FINDABLE
        ).values_list("record_id", "doi")
    )
    published = dict(
        DatasetVersion.objects.filter(record_id__in=record_ids)
        .order_by()
        .values_list("record_id")
        .annotate(first=Min("published_at"))
        .values_list("record_id", "first")
    )
    datasets = []
    publisher_id = publisher_ids()
    with override("en"):
        for (record_id, machine), months in sorted(by_dataset.items()):
            record = records.get(record_id)
            if record is None:
                continue
            datasets.append(
                _dataset(
                    record,
                    machine=machine,
                    months=months,
                    doi=dois.get(record_id),
                    published=published.get(record_id),
                    absolute=absolute,
                    last_day=last_day,
                    publisher_id=publisher_id,
                )
            )
    filters = [
        {"name": "begin-date", "value": begin.strftime("%Y-%m")},
        {"name": "end-date", "value": end.strftime("%Y-%m")},
    ]
    if project is not None:
        filters.append({"name": "project", "value": str(project.pk)})
    exceptions = []
    if partial:
        exceptions.append(
            {
                "code": 3040,
                "severity": "warning",
                "message": "Partial Data Returned",
                "data": f"Usage is reported up to {today.isoformat()}; the month has not ended.",
            }
        )
    return {
        "report-header": {
            "report-name": "dataset report",
            "report-id": "dsr",
            "release": RELEASE,
            "created": timezone.now().replace(microsecond=0).isoformat(),
            "created-by": PLATFORM,
            "report-filters": filters,
            "report-attributes": [],
            "reporting-period": {
                "begin-date": begin.isoformat(),
                "end-date": last_day.isoformat(),
            },
            "exceptions": exceptions,
        },
        "report-datasets": datasets,
    }


def _dataset(
    record, *, machine: bool, months: dict, doi, published, absolute, last_day, publisher_id
) -> dict:
    institution = record.project.institution
    identifiers = [{"type": "uri", "value": absolute(reverse("dataset-landing", args=[record.pk]))}]
    if doi:
        identifiers.insert(0, {"type": "doi", "value": doi})
    access_method = "machine" if machine else "regular"
    performance = []
    for month in sorted(months):
        row = months[month]
        instances = [
            {"metric-type": metric, "count": row[name], "access-method": access_method}
            for name, metric in METRIC_TYPES.items()
            if row[name] > 0  # COUNTER leaves zero counts out
        ]
        if instances:
            performance.append(
                {
                    "period": {
                        "begin-date": month.isoformat(),
                        "end-date": min(month_end(month), last_day).isoformat(),
                    },
                    "instance": instances,
                }
            )
    entry = {
        "dataset-title": record.title_en or record.title_ja,
        "dataset-id": identifiers,
        "platform": PLATFORM,
        "publisher": record.hosting_inst_en
        or record.hosting_inst_ja
        or ((institution.name_en or institution.name_ja) if institution else "")
        or PLATFORM,
        "publisher-id": publisher_id,
        "data-type": "dataset",
        # The year the record's citations and DataCite metadata give when it has no version.
        "yop": str(
            published.year
            if published
            else (record.date_issued_updated or record.created_at.date()).year
        ),
        "access-method": access_method,
        "performance": performance,
    }
    if published:
        entry["dataset-dates"] = [{"type": "pub-date", "value": published.date().isoformat()}]
    return entry
