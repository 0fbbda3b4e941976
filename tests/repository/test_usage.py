"""Usage counting by the COUNTER Code of Practice for Research Data: views and downloads
captured on the request path (Redis buffer), folded into events on real PostgreSQL, read
back on landing pages, dashboards, the programs page, its export, the API and the COUNTER
dataset report (validated against the shipped schema)."""

import csv
import datetime
import io
import json
from pathlib import Path

import jsonschema
import pytest
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import UsageEvent, UsageFold
from repository.usage import capture
from repository.usage.fold import usage_batch_fold, usage_fold
from repository.usage.selectors import record_usage
from tests.factories import (
    AccessGrantFactory,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    make_program_officer,
)

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
OTHER_BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Gecko/20100101 Firefox/133.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CURL = "curl/8.5.0"
SCHEMA = Path(__file__).parents[2] / "repository" / "usage" / "schemas" / "sushi_usage_schema.json"
START = 1_790_000_000.0  # 2026-09-21, 800 s into an hour


class Clock:
    """The capture's clock, moved by the test (COUNTER's rules are about seconds)."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def empty_buffer():
    """Each test starts with nothing captured (other tests' views are in the buffer too)."""
    store = capture.buffer()
    capture.usage_flush()
    cache._cache.get_client(None, write=True).delete(store.events, store.claimed, store.token_key)
    capture._salts.clear()
    yield store


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(START)
    monkeypatch.setattr(capture, "time", clock)
    return clock


@pytest.fixture
def dataset(shared):
    """``shared`` (an open record with a shared file) plus a public file."""
    public = DataObjectFactory(
        project=shared["project"],
        record=shared["record"],
        uploaded_by=shared["pm"],
        tier=Tier.PUBLIC,
        original_filename="public.tif",
        size=len(b"public bytes"),
    )
    default_storage.save(public.storage_key, ContentFile(b"public bytes"))
    return {**shared, "public": public}


def _view(client, record, agent=BROWSER, **extra):
    response = client.get(
        reverse("dataset-landing", args=[record.pk]), HTTP_USER_AGENT=agent, **extra
    )
    assert response.status_code == 200
    return response


def _download(client, data_object, agent=BROWSER):
    response = client.get(reverse("object-download", args=[data_object.pk]), HTTP_USER_AGENT=agent)
    assert response.status_code == 302
    return response


def _public(record):
    return record_usage(record.pk)["public"]


# --- COUNTER's rules ------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "counted"), [(10, 1), (30, 1), (31, 2), (40, 2)])
def test_a_repeated_click_within_30_seconds_counts_once(client, dataset, clock, seconds, counted):
    _view(client, dataset["record"])
    clock.now += seconds
    _view(client, dataset["record"])

    assert usage_fold() == 2  # both kept, the repeat marked
    figures = _public(dataset["record"])
    assert figures.total_investigations == counted
    assert figures.unique_investigations == 1


def test_double_clicks_are_recognised_across_folds(client, dataset, clock):
    _view(client, dataset["record"])
    usage_fold()
    clock.now += 10
    _view(client, dataset["record"])
    usage_fold()
    clock.now += 25  # 35 s after the first click, 25 s after the repeat: still a chain
    _view(client, dataset["record"])
    usage_fold()

    assert _public(dataset["record"]).total_investigations == 1


def test_a_robot_is_not_counted(client, dataset, clock):
    _view(client, dataset["record"], agent=GOOGLEBOT)
    _download(client, dataset["public"], agent=GOOGLEBOT)

    assert usage_fold() == 0
    assert not UsageEvent.objects.exists()


def test_unique_counts_count_each_visitor_once_an_hour(client, dataset, clock):
    record = dataset["record"]
    _view(client, record)
    clock.now += 60
    _view(client, record)  # the same visitor, the same hour
    _view(client, record, agent=OTHER_BROWSER)  # another visitor (address and agent)
    clock.now += 3600  # the next hour: a new session of the first visitor
    _view(client, record)
    usage_fold()

    figures = _public(record)
    assert figures.total_investigations == 4
    assert figures.unique_investigations == 3


def test_machine_access_is_reported_apart_from_people(client, dataset, clock):
    _view(client, dataset["record"])
    _view(client, dataset["record"], agent=CURL)
    client.get(
        reverse("dataset-export", args=[dataset["record"].pk, "jsonld"]),
        HTTP_USER_AGENT="python-requests/2.32.3",
    )
    usage_fold()

    figures = record_usage(dataset["record"].pk)
    assert figures["public"].total_investigations == 1
    assert figures["public_machine"].total_investigations == 2


def test_downloads_are_requests_and_investigations(client, dataset, clock):
    _download(client, dataset["public"])
    usage_fold()

    figures = _public(dataset["record"])
    assert (figures.total_requests, figures.unique_requests) == (1, 1)
    assert figures.total_investigations == 1  # COUNTER: a request is an investigation too


# --- restricted data counts apart ------------------------------------------------------


def test_shared_and_in_project_downloads_are_counted_apart_from_public_ones(
    client, dataset, clock, outsider
):
    AccessGrantFactory(record=dataset["record"], grantee=outsider)
    researcher = MembershipFactory(project=dataset["project"], role=Role.RESEARCHER).user

    _download(client, dataset["public"])  # anyone
    client.force_login(outsider)
    _download(client, dataset["object"])  # through the grant
    client.force_login(researcher)
    _download(client, dataset["object"])  # a member
    _download(client, dataset["public"])  # a member, a public file: still in the project
    usage_fold()

    figures = record_usage(dataset["record"].pk, restricted=True)
    assert figures["public"].total_requests == 1
    assert figures["shared"].total_requests == 1
    assert figures["project"].total_requests == 2


def test_landing_page_shows_public_figures_also_when_served_from_the_page_cache(
    client, dataset, clock, settings
):
    settings.KURA_PAGE_CACHE_SECONDS = 300
    for _n in range(3):
        _view(client, dataset["record"])  # the second and third come from the cache
        clock.now += 60
    _download(client, dataset["public"])
    assert usage_fold() == 4
    settings.KURA_PAGE_CACHE_SECONDS = 0

    html = _view(client, dataset["record"], agent=GOOGLEBOT).content.decode()
    assert 'data-usage="views"><span class="stat-value">4<' in html
    assert 'data-usage="downloads"><span class="stat-value">1<' in html
    assert 'data-usage="unique-views"><span class="stat-value">1<' in html


def test_an_unreachable_buffer_loses_the_count_and_never_the_page(client, dataset, settings):
    settings.CACHES = {
        "default": {"BACKEND": "config.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    response = _view(client, dataset["record"])
    download = client.get(reverse("object-download", args=[dataset["public"].pk]))

    assert response.status_code == 200
    assert download.status_code == 302
    assert capture.usage_flush() == 0  # lost, logged: never an error


WRITES = ("INSERT", "UPDATE", "DELETE", "COPY")


def _writes(queries) -> list[str]:
    """The statements of ``queries`` that write, as their verb and table."""
    written = []
    for query in queries:
        words = query["sql"].split()
        if words[0].upper() in WRITES:
            table = words[2] if words[0].upper() in ("INSERT", "DELETE") else words[1]
            written.append(f"{words[0].upper()} {table}")
    return written


def test_counting_writes_nothing_to_the_database_on_the_request_path(
    client, dataset, outsider, settings, empty_buffer
):
    """A view (rendered or from the page cache) or a download is one append in the
    process: with counting on, a request asks the database to write nothing more than
    with it off (a shared download's audit event is written either way)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.KURA_PAGE_CACHE_SECONDS = 300
    AccessGrantFactory(record=dataset["record"], grantee=outsider)
    grantee = Client()
    grantee.force_login(outsider)
    record = dataset["record"]
    asks = {
        # A query the page cache does not keep: rendered every time.
        "rendered view": lambda: _view(client, record, QUERY_STRING="from=search"),
        # Rendered and stored the first time, then from the page cache.
        "view": lambda: _view(client, record),
        "public download": lambda: _download(client, dataset["public"]),
        "shared download": lambda: _download(grantee, dataset["object"]),
    }
    writes: dict[tuple[bool, str], list[str]] = {}
    for counting in (False, True):
        settings.KURA_USAGE_COUNTING = counting
        for name, ask in asks.items():
            with CaptureQueriesContext(connection) as queries:
                ask()
            writes[counting, name] = _writes(queries)
            if (counting, name) == (True, "view"):
                assert len(queries) == 0  # served from the page cache
    for name in asks:
        assert writes[True, name] == writes[False, name], name
    assert writes[True, "rendered view"] == writes[True, "public download"] == []
    assert writes[True, "shared download"] == ['INSERT "repository_auditevent"']
    capture.usage_flush()
    assert empty_buffer.pending() == len(asks)  # counted, in the buffer
    assert not UsageEvent.objects.exists()


def test_a_head_request_is_not_counted(client, dataset, clock):
    """A HEAD (a link checker) of the landing page, a download or the records API
    retrieves nothing: no investigation, no request."""
    record = dataset["record"]
    for url in (
        reverse("dataset-landing", args=[record.pk]),
        reverse("object-download", args=[dataset["public"].pk]),
        reverse("api-record-detail", args=[record.pk]),
    ):
        assert client.head(url, HTTP_USER_AGENT=BROWSER).status_code in (200, 302)
    _view(client, record)

    assert usage_fold() == 1  # the GET only


def test_nothing_is_counted_with_counting_off(client, dataset, settings):
    settings.KURA_USAGE_COUNTING = False
    _view(client, dataset["record"])
    assert usage_fold() == 0


# --- the fold --------------------------------------------------------------------------


def test_a_fold_repeated_after_a_crash_counts_nothing_twice(client, dataset, empty_buffer):
    _view(client, dataset["record"])
    _view(client, dataset["record"], agent=OTHER_BROWSER)
    capture.usage_flush()
    token, texts = empty_buffer.claim()
    assert usage_batch_fold(token=token, texts=texts) == 2  # committed; then the crash

    assert usage_fold() == 0  # finds the token written: releases the batch only
    assert usage_fold() == 0
    assert UsageEvent.objects.count() == 2
    assert UsageFold.objects.get(token=token).events == 2


def test_old_batch_tokens_are_forgotten(dataset):
    from django.utils import timezone

    UsageFold.objects.create(token="old", folded_at=timezone.now() - datetime.timedelta(days=8))
    UsageFold.objects.create(token="recent", folded_at=timezone.now() - datetime.timedelta(days=6))
    usage_fold()
    assert set(UsageFold.objects.values_list("token", flat=True)) == {"recent"}


def test_events_keep_no_address_and_no_account(client, dataset, outsider, clock):
    AccessGrantFactory(record=dataset["record"], grantee=outsider)
    client.force_login(outsider)
    _view(client, dataset["record"], REMOTE_ADDR="203.0.113.7")
    usage_fold()

    event = UsageEvent.objects.get()
    stored = " ".join(str(v) for v in UsageEvent.objects.values_list().get())
    assert "203.0.113.7" not in stored
    assert str(outsider.pk) != event.session and outsider.username not in stored
    assert len(event.session) == 16
    capture._salts.clear()
    cache.delete(f"{capture.SALT_KEY}{int(clock.now // 86400)}")  # a new day's salt
    assert capture.session_of(_request(outsider), clock.now) != event.session


def _request(user):
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    return request


# --- where the figures are shown -------------------------------------------------------


def test_dashboard_shows_usage_by_scope_month_and_record(client, dataset, clock, outsider):
    AccessGrantFactory(record=dataset["record"], grantee=outsider)
    _view(client, dataset["record"])
    _download(client, dataset["public"])
    client.force_login(outsider)
    _download(client, dataset["object"])
    usage_fold()

    client.force_login(dataset["pm"])
    html = client.get(reverse("project-dashboard", args=[dataset["project"].pk])).content.decode()
    row = html[html.index(f'<tr data-usage-record="{dataset["record"].pk}"') :]
    row = row[: row.index("</tr>")]
    assert '<td class="num" data-scope="public">1</td>' in row
    assert '<td class="num" data-scope="shared">1</td>' in row
    assert 'class="usage-bar usage-public"' in html
    assert 'class="usage-bar usage-shared"' in html


def test_programs_page_and_usage_export(client, dataset, clock, outsider):
    AccessGrantFactory(record=dataset["record"], grantee=outsider)
    _view(client, dataset["record"])
    client.force_login(outsider)
    _download(client, dataset["object"])
    usage_fold()
    client.force_login(make_program_officer())

    html = client.get(reverse("programs")).content.decode()
    row = html[html.index(f'<tr data-project="{dataset["project"].pk}"') :]
    row = row[: row.index("</tr>")]
    assert 'data-usage="public-views">1<' in row
    assert 'data-usage="shared-downloads">1<' in row

    project = dataset["project"]
    code = project.funding_stream_code or "-"
    response = client.get(
        reverse("program-export", args=[project.funder, code]) + "?format=usage-csv"
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    shared = [r for r in rows if r["Scope"] == "Shared"]
    assert [(r["Record ID"], r["total_requests"]) for r in shared] == [
        (str(dataset["record"].pk), "1")
    ]
    assert {r["Project ID"] for r in rows} == {str(project.pk)}


def test_record_usage_api(client, dataset, clock, outsider):
    AccessGrantFactory(record=dataset["record"], grantee=outsider)
    _view(client, dataset["record"])
    client.force_login(outsider)
    _download(client, dataset["object"])
    usage_fold()
    client.logout()
    url = reverse("api-record-usage", args=[dataset["record"].pk])

    anonymous = client.get(url).json()
    assert anonymous["public"]["regular"]["total_investigations"] == 1
    assert anonymous["shared"] is None and anonymous["project"] is None
    client.force_login(dataset["pm"])
    steward = client.get(url).json()
    assert steward["shared"]["total_requests"] == 1
    assert steward["months"][0]["month"] == "2026-09"


def test_report_rejects_bad_months_with_a_clear_message(client):
    bad = client.get(reverse("api-report-dsr"), {"begin_date": "2026-13"})
    assert bad.status_code == 400
    assert "YYYY-MM" in bad.json()["detail"]
    reversed_range = client.get(
        reverse("api-report-dsr"), {"begin_date": "2026-05", "end_date": "2026-01"}
    )
    assert reversed_range.status_code == 400
    assert client.get(reverse("api-report-dsr"), {"project": 10**9}).status_code == 404


def _validator():
    schema = json.loads(SCHEMA.read_text())
    report_schema = {"$ref": "#/definitions/counter_dataset_report", **schema}
    report_schema.pop("required")
    report_schema.pop("properties")
    return jsonschema.Draft4Validator(report_schema)


def test_dataset_report_is_valid_counter_research_data(client, dataset, clock):
    _view(client, dataset["record"])
    clock.now += 60
    _view(client, dataset["record"], agent=CURL)
    _download(client, dataset["public"])
    usage_fold()

    for query in ({}, {"project": dataset["project"].pk}):
        response = client.get(
            reverse("api-report-dsr"), {"begin_date": "2026-09", "end_date": "2026-09", **query}
        )
        assert response.status_code == 200
        report = response.json()
        errors = sorted(_validator().iter_errors(report), key=str)
        assert not errors, errors
        header = report["report-header"]
        assert (header["report-id"], header["release"]) == ("dsr", "rd1")
        assert header["reporting-period"] == {"begin-date": "2026-09-01", "end-date": "2026-09-30"}
        assert header["exceptions"] == []  # a month that has ended: complete
        by_method = {d["access-method"]: d for d in report["report-datasets"]}
        regular = by_method["regular"]["performance"][0]["instance"]
        assert {i["metric-type"]: i["count"] for i in regular} == {
            "total-dataset-investigations": 2,
            "unique-dataset-investigations": 1,
            "total-dataset-requests": 1,
            "unique-dataset-requests": 1,
        }
        assert by_method["machine"]["performance"][0]["instance"][0]["count"] == 1


@pytest.mark.parametrize(
    ("provider", "username", "expected"),
    [
        ("local", "", []),
        ("datacite", "JALC.KURA", [{"type": "client-id", "value": "jalc.kura"}]),
    ],
)
def test_dataset_report_names_the_datacite_repository_as_publisher_id(
    client, dataset, clock, settings, provider, username, expected
):
    """COUNTER requires Publisher_ID: the DataCite repository Kura registers DOIs with,
    when there is one; else empty, COUNTER's form for a required value that is unknown."""
    settings.KURA_DOI_PROVIDER = provider
    settings.KURA_DATACITE_USERNAME = username
    _view(client, dataset["record"])
    usage_fold()

    report = client.get(
        reverse("api-report-dsr"), {"begin_date": "2026-09", "end_date": "2026-09"}
    ).json()
    assert not list(_validator().iter_errors(report))
    (entry,) = report["report-datasets"]
    assert entry["publisher-id"] == expected
    assert entry["publisher"] == dataset["record"].project.institution.name_en


def test_dataset_report_gives_the_year_the_record_is_cited_with(client, dataset, clock):
    """yop: the first version's year once published; before that the declared issue date's
    year, as citations and DataCite give it; without one, the year the record was made."""
    import datetime

    from repository.models import DatasetVersion

    record = dataset["record"]
    _view(client, record)
    usage_fold()

    def report_entry():
        report = client.get(
            reverse("api-report-dsr"), {"begin_date": "2026-09", "end_date": "2026-09"}
        ).json()
        assert not list(_validator().iter_errors(report))
        (entry,) = report["report-datasets"]
        return entry

    record.date_issued_updated = None
    record.save(update_fields=["date_issued_updated"])
    entry = report_entry()
    assert entry["yop"] == str(record.created_at.year)
    assert "dataset-dates" not in entry

    type(record).objects.filter(pk=record.pk).update(date_issued_updated=datetime.date(2019, 4, 1))
    assert report_entry()["yop"] == "2019"

    DatasetVersion.objects.create(
        record=record,
        number=1,
        published_at=datetime.datetime(2021, 5, 6, tzinfo=datetime.UTC),
        snapshot=[],
        metadata={},
        manifest=[],
    )
    entry = report_entry()
    assert entry["yop"] == "2021"
    assert entry["dataset-dates"] == [{"type": "pub-date", "value": "2021-05-06"}]


def test_a_report_of_the_current_month_is_partial_and_says_so(client, dataset):
    """COUNTER's partial monthly report: the period ends today, with exception 3040."""
    from django.utils import timezone

    _view(client, dataset["record"])  # now, by the real clock
    usage_fold()
    today = timezone.localdate()

    report = client.get(reverse("api-report-dsr")).json()  # the current month
    assert not list(_validator().iter_errors(report))
    header = report["report-header"]
    assert header["reporting-period"] == {
        "begin-date": today.replace(day=1).isoformat(),
        "end-date": today.isoformat(),
    }
    assert [e["code"] for e in header["exceptions"]] == [3040]
    (entry,) = report["report-datasets"]
    assert entry["performance"][0]["period"]["end-date"] == today.isoformat()


def test_report_refuses_months_that_have_not_begun(client):
    from django.utils import timezone

    this_month = timezone.localdate().replace(day=1)
    next_month = (this_month + datetime.timedelta(days=32)).strftime("%Y-%m")
    response = client.get(reverse("api-report-dsr"), {"end_date": next_month})
    assert response.status_code == 400
    assert "after the current month" in response.json()["detail"]
    current = client.get(reverse("api-report-dsr"), {"end_date": this_month.strftime("%Y-%m")})
    assert current.status_code == 200


def test_the_schema_check_can_fail():
    broken = {"report-header": {"report-id": "dsr"}, "report-datasets": [{"platform": "Kura"}]}
    assert list(_validator().iter_errors(broken))


def test_openapi_documents_the_usage_endpoints(client):
    import yaml

    document = yaml.safe_load(client.get("/api/schema/").content)
    assert "get" in document["paths"]["/api/v1/records/{record_id}/usage"]
    report = document["paths"]["/api/v1/reports/dsr"]["get"]
    assert {p["name"] for p in report["parameters"]} >= {"begin_date", "end_date", "project"}


def test_a_closed_record_leaves_the_public_figures(client, dataset, clock):
    _view(client, dataset["record"])
    usage_fold()
    dataset["record"].metadata_access = MetadataAccess.CLOSED
    dataset["record"].save()
    assert _public(dataset["record"]).total_investigations == 0


def test_users_agent_classes_are_remembered():
    capture.agent_class.cache_clear()
    assert capture.agent_class(GOOGLEBOT) == "robot"
    assert capture.agent_class(CURL) == "machine"
    assert capture.agent_class("") == "machine"
    assert capture.agent_class(BROWSER) == "regular"
    assert capture.agent_class.cache_info().currsize == 4


def test_a_line_survives_the_buffer():
    line = capture.Line(START, "r", 12, 34, "shared", True, "0123456789abcdef")
    assert capture.Line.decode(line.encode()) == line


# --- nothing non-public leaks ----------------------------------------------------------


def test_no_public_figure_leaks_a_non_public_object(client, dataset, clock, outsider):
    """Views and downloads of shared, non-shared, embargoed and later-closed data happen,
    by members, grantees and (while it was public) anyone; the landing page, the record's
    API, the dataset reports and the repository-wide report count public use of what is
    public now, and name nothing else."""
    project, record = dataset["project"], dataset["record"]
    steward = dataset["pm"]
    AccessGrantFactory(record=record, grantee=outsider)
    non_shared = DataObjectFactory(
        project=project, record=record, uploaded_by=steward, tier=Tier.NON_SHARED
    )
    default_storage.save(non_shared.storage_key, ContentFile(b"non-shared bytes"))
    demoted = DataObjectFactory(
        project=project, record=record, uploaded_by=steward, tier=Tier.PUBLIC
    )
    default_storage.save(demoted.storage_key, ContentFile(b"soon shared bytes"))
    closed = DataObjectFactory(
        project=project,
        record=DmpRecordFactory(
            project=project,
            title_en="Secret cohort",
            metadata_access=MetadataAccess.OPEN,
            access_rights=Tier.PUBLIC,
        ),
        uploaded_by=steward,
        tier=Tier.PUBLIC,
    )
    default_storage.save(closed.storage_key, ContentFile(b"closed record bytes"))
    closed_record = closed.record

    # Anyone, while these were public: the record, its public files, the other record.
    _view(client, record)
    _download(client, dataset["public"])
    _download(client, demoted)
    _view(client, closed_record)
    _download(client, closed)
    # A grantee and a member, on what is not public.
    client.force_login(outsider)
    _view(client, record)
    _download(client, dataset["object"])
    client.force_login(steward)
    _download(client, non_shared)
    _download(client, dataset["object"])
    client.logout()
    usage_fold()
    # Then less open: the file shared only, the other record closed.
    demoted.tier = Tier.SHARED
    demoted.save()
    closed_record.metadata_access = MetadataAccess.CLOSED
    closed_record.save()

    html = _view(client, record, agent=GOOGLEBOT).content.decode()
    assert 'data-usage="downloads"><span class="stat-value">1<' in html
    # Two views of the open record's page (the grantee's too: its metadata is public) and
    # the one public download still public.
    assert 'data-usage="views"><span class="stat-value">3<' in html

    api = client.get(reverse("api-record-usage", args=[record.pk])).json()
    assert api["public"]["regular"]["total_requests"] == 1
    assert api["shared"] is None and api["project"] is None
    assert all(month["shared"] is None for month in api["months"])
    assert client.get(reverse("api-record-usage", args=[closed_record.pk])).status_code == 404

    for query in ({}, {"project": project.pk}):
        body = client.get(
            reverse("api-report-dsr"), {"begin_date": "2026-09", "end_date": "2026-09", **query}
        ).content.decode()
        report = json.loads(body)
        assert not list(_validator().iter_errors(report))
        assert "Secret cohort" not in body
        assert f"/datasets/{closed_record.pk}/" not in body
        for hidden in (non_shared, demoted, closed, dataset["object"]):
            assert f"/objects/{hidden.pk}/" not in body
        (entry,) = report["report-datasets"]
        counts = {i["metric-type"]: i["count"] for i in entry["performance"][0]["instance"]}
        assert counts["total-dataset-requests"] == 1
        assert counts["total-dataset-investigations"] == 3
    # The steward still sees the restricted use, apart.
    client.force_login(steward)
    restricted = client.get(reverse("api-record-usage", args=[record.pk])).json()
    assert restricted["shared"]["total_requests"] == 1
    assert restricted["project"]["total_requests"] == 2


def test_a_fold_shows_on_the_cached_dashboard(client, dataset, clock, settings):
    settings.KURA_DASHBOARD_CACHE_SECONDS = 300
    url = reverse("project-dashboard", args=[dataset["project"].pk])

    def public_downloads() -> str:
        client.force_login(dataset["pm"])
        html = client.get(url).content.decode()
        client.logout()
        marker = 'data-usage="public-downloads"><span class="stat-value">'
        return html[html.index(marker) + len(marker) :].split("<", 1)[0]

    assert public_downloads() == "0"
    assert public_downloads() == "0"  # now from the cache
    _download(client, dataset["public"])
    assert public_downloads() == "0"  # not folded yet
    usage_fold()
    assert public_downloads() == "1"


def test_the_records_api_counts_as_machine_access(client, dataset, clock):
    response = client.get(
        reverse("api-record-detail", args=[dataset["record"].pk]), HTTP_USER_AGENT=BROWSER
    )
    assert response.status_code == 200
    usage_fold()
    figures = record_usage(dataset["record"].pk)
    assert figures["public_machine"].total_investigations == 1
    assert figures["public"].total_investigations == 0


def test_the_fold_task_twice_changes_nothing_the_second_time(client, dataset):
    from repository.tasks import usage_fold_task

    _view(client, dataset["record"])
    assert usage_fold_task() == {"events": 1}
    assert usage_fold_task() == {"events": 0}
    assert UsageEvent.objects.count() == 1


@pytest.mark.parametrize("kind", ["redis", "file"])
def test_a_late_fold_releases_only_its_own_batch(kind, empty_buffer, tmp_path):
    """Two folds at once both read one claimed batch; the one that finishes last must not
    drop the batch claimed after it was released."""
    store = empty_buffer if kind == "redis" else capture.FileBuffer(tmp_path / "usage")
    store.append_many(["a"])
    first, _lines = store.claim()  # both folds hold this batch
    store.release(first)  # the first fold is done with it
    store.append_many(["b"])
    second, lines = store.claim()  # and claims the next
    store.release(first)  # the other fold, late, lets go of the first batch
    assert store.claim() == (second, lines) == (second, ["b"])
    store.release(second)
    assert store.claim() is None


def test_the_embedded_profile_buffers_in_a_file(tmp_path):
    store = capture.FileBuffer(tmp_path / "usage")
    assert store.claim() is None
    store.append_many(["a", "b"])
    store.append_many(["c"])
    token, lines = store.claim()
    store.append_many(["d"])  # after the claim: the next batch
    assert lines == ["a", "b", "c"]
    assert store.claim() == (token, lines)  # not released (a crash): the same batch again
    store.release(token)
    assert store.claim()[1] == ["d"]


@pytest.mark.parametrize(("seconds", "counted"), [(10, 1), (40, 2)])
def test_a_click_folded_after_a_later_one_still_follows_the_30_second_rule(
    dataset, seconds, counted
):
    record = dataset["record"]

    def line(at: float) -> str:
        return capture.Line(at, "i", record.pk, 0, "public", False, "0123456789abcdef").encode()

    usage_batch_fold(token="later", texts=[line(START + seconds)])
    usage_batch_fold(token="earlier", texts=[line(START)])  # another process, flushed late

    assert _public(record).total_investigations == counted


def test_deleting_a_file_deletes_its_events(client, dataset):
    _view(client, dataset["record"])
    _download(client, dataset["public"])
    usage_fold()
    assert UsageEvent.objects.count() == 2

    dataset["public"].delete()  # a row removed outright (the services only mark it deleted)
    assert list(UsageEvent.objects.values_list("kind", flat=True)) == ["i"]
