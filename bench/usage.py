"""Usage counting: the cost on a cached landing page, the fold's rate and the monthly report.

The script creates a throwaway database (``test_`` + ``DATABASE_URL``'s name; by default
``test_kura_bench_usage`` on the local PostgreSQL, settings ``tests.settings`` with the page
cache on, in Redis), seeds one project with ``--records`` open records of two public files
each, and measures:

* ``landing_overhead``: the cached landing page (an anonymous browser, served from the page
  cache) with counting on ÷ with counting off, asked in turn (``--rounds`` rounds after a
  warm-up, ``--repeats`` times; the median of the repeats' ratios of medians). Counting on
  means the user-agent lookup, the session HMAC and an append to the process's list (a
  thread moves the lines to Redis once a second). Target ≤ 1.2.
* ``events_per_s``: ``--views`` landing views and ``--downloads`` downloads replayed through
  the capture (``usage_note`` with requests made by Django's ``RequestFactory``) over one
  month: visitors drawn from a pool with a long tail (a few come back often), records by a
  Zipf-like popularity, one event in five a repeat of the visitor's previous click a few
  to 60 seconds later (double clicks and real repeats), and 10 % of the events from robots'
  user agents (not counted). Then ``usage_fold`` folds the buffer; events written per
  second of the fold. Baseline in the same run: a bare ``COPY`` of the same rows into a
  scratch copy of the table with its indexes (``fold_ratio`` = fold time ÷ COPY time).
  Target ≥ 20,000/s.
* ``report_ms``: the month's COUNTER dataset report (``dataset_report``) over those events,
  after ``VACUUM ANALYZE`` and one warm-up, the median of five. Target ≤ 1,000.

The last line is ``landing_overhead=… events_per_s=… report_ms=…``.

Run: ``.venv/bin/python bench/usage.py``. Never part of the test suite.
"""

import argparse
import datetime
import os
import random
import statistics
import time

from _harness import django_setup, run_on_throwaway_database

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kura_bench_usage"
BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Edg/131.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1",
]
ROBOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
]
MONTH_START = datetime.datetime(2026, 10, 1, tzinfo=datetime.UTC).timestamp()


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=500)
    parser.add_argument("--views", type=int, default=100_000)
    parser.add_argument("--downloads", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=5)
    return parser.parse_args()


def _seed(records: int):
    from accounts.models import Role
    from core.vocabularies import MetadataAccess, Tier
    from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory

    project = MembershipFactory(role=Role.PM).project
    files = {}
    for _n in range(records):
        record = DmpRecordFactory(
            project=project, metadata_access=MetadataAccess.OPEN, access_rights=Tier.PUBLIC
        )
        files[record.pk] = [
            DataObjectFactory(project=project, record=record, tier=Tier.PUBLIC).pk
            for _f in range(2)
        ]
    return project, files


def _landing_overhead(record_id: int, rounds: int, repeats: int) -> float:
    from django.conf import settings
    from django.test import Client

    client = Client(HTTP_USER_AGENT=BROWSERS[0])
    url = f"/datasets/{record_id}/"
    ratios = []
    for _repeat in range(repeats):
        timings = {False: [], True: []}
        for round_number in range(rounds + 50):
            for counting in (False, True):
                settings.KURA_USAGE_COUNTING = counting
                started = time.perf_counter()
                response = client.get(url)
                elapsed = time.perf_counter() - started
                assert response.status_code == 200
                if round_number >= 50:
                    timings[counting].append(elapsed)
        on, off = statistics.median(timings[True]), statistics.median(timings[False])
        ratios.append(on / off)
        print(f"  cached landing: {off * 1000:.3f} ms off, {on * 1000:.3f} ms on", flush=True)
    settings.KURA_USAGE_COUNTING = True
    return statistics.median(ratios)


class _Clock:
    now = MONTH_START

    def time(self) -> float:
        return self.now


def _replay(files: dict[int, list[int]], views: int, downloads: int) -> int:
    """Capture ``views`` + ``downloads`` events; the number appended (robots are not)."""
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    from repository.models import UsageEvent
    from repository.usage import capture

    rng = random.Random(19)
    factory = RequestFactory()
    clock = _Clock()
    capture.time = clock  # the replay's month, not the wall clock
    records = sorted(files)
    kinds = ["i"] * views + ["r"] * downloads
    rng.shuffle(kinds)
    span = 30 * 86400 / len(kinds)
    visitors = 20_000
    last_click: dict[int, tuple[int, int, float]] = {}
    appended = 0
    requests = {}
    for n, kind in enumerate(kinds):
        clock.now = MONTH_START + n * span
        robot = rng.random() < 0.10
        visitor = int(visitors * rng.random() ** 3) if not robot else -1  # a long tail
        if visitor in last_click and rng.random() < 0.2:
            record_id, object_id, at = last_click[visitor]
            clock.now = at + rng.uniform(2, 60)
        else:
            record_id = records[int(len(records) * rng.random() ** 2)]  # some are popular
            object_id = rng.choice(files[record_id]) if kind == "r" else 0
        if kind == "r" and not object_id:
            object_id = files[record_id][0]
        if kind == "i":
            object_id = 0
        key = (visitor, robot)
        request = requests.get(key)
        if request is None:
            agent = rng.choice(ROBOTS) if robot else BROWSERS[visitor % len(BROWSERS)]
            address = f"10.{(visitor >> 16) & 255}.{(visitor >> 8) & 255}.{visitor & 255}"
            request = factory.get("/", HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
            request.user = AnonymousUser()
            requests[key] = request
        appended += capture.usage_note(
            request,
            kind=kind,
            record_id=record_id,
            data_object_id=object_id,
            scope=UsageEvent.Scope.PUBLIC,
        )
        if not robot:
            last_click[visitor] = (record_id, object_id, clock.now)
    return appended


def _copy_baseline(rows: list[tuple]) -> float:
    from django.db import connection

    from repository.usage.fold import COLUMNS

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE usage_baseline (LIKE repository_usageevent INCLUDING ALL)"
        )
        started = time.perf_counter()
        with cursor.cursor.copy(f"COPY usage_baseline ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        cursor.execute("DROP TABLE usage_baseline")
    return elapsed


def _work(arguments) -> dict:
    from django.core.cache import cache
    from django.db import connection, transaction

    from repository.models import UsageEvent
    from repository.usage import capture
    from repository.usage.fold import _decoded, usage_fold, usage_rows
    from repository.usage.report import dataset_report

    store = capture.buffer()
    cache._cache.get_client(None, write=True).delete(store.events, store.claimed, store.token_key)
    with transaction.atomic():
        project, files = _seed(arguments.records)
    print(f"seeded {len(files)} records", flush=True)

    overhead = _landing_overhead(next(iter(files)), arguments.rounds, arguments.repeats)
    capture.usage_flush()
    cache._cache.get_client(None, write=True).delete(store.events)  # not the replay's

    started = time.perf_counter()
    appended = _replay(files, arguments.views, arguments.downloads)
    capture_s = time.perf_counter() - started
    print(
        f"captured {appended} of {arguments.views + arguments.downloads} events"
        f" in {capture_s:.1f} s ({capture_s / max(appended, 1) * 1e6:.0f} µs each)",
        flush=True,
    )
    capture.usage_flush()
    texts = [line.decode() for line in cache._cache.get_client(None).lrange(store.events, 0, -1)]
    baseline_rows = usage_rows(_decoded(texts))
    copy_s = _copy_baseline(baseline_rows)

    started = time.perf_counter()
    written = usage_fold()
    fold_s = time.perf_counter() - started
    events_per_s = written / fold_s
    print(
        f"folded {written} events in {fold_s:.2f} s; bare COPY {copy_s:.2f} s"
        f" (fold_ratio={fold_s / copy_s:.2f});"
        f" double clicks {UsageEvent.objects.filter(double_click=True).count()}",
        flush=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum does for a live deployment

    month = datetime.date(2026, 10, 1)
    dataset_report(begin=month, end=month, absolute=lambda path: path)  # warm-up (URLconf)
    timings = []
    for _n in range(5):
        started = time.perf_counter()
        report = dataset_report(begin=month, end=month, absolute=lambda path: path)
        timings.append(time.perf_counter() - started)
    counted = sum(
        instance["count"]
        for dataset in report["report-datasets"]
        for performance in dataset["performance"]
        for instance in performance["instance"]
        if instance["metric-type"] == "total-dataset-investigations"
    )
    print(f"report: {len(report['report-datasets'])} datasets, {counted} investigations")
    return {
        "landing_overhead": overhead,
        "events_per_s": events_per_s,
        "report_ms": statistics.median(timings) * 1000,
    }


def main() -> None:
    arguments = _arguments()
    django_setup(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
        KURA_PAGE_CACHE_SECONDS="300",
        KURA_CACHE_KEY_PREFIX=f"kura-bench-usage-{os.getpid()}",
    )
    result = run_on_throwaway_database(lambda: _work(arguments))
    print(
        f"landing_overhead={result['landing_overhead']:.2f}"
        f" events_per_s={result['events_per_s']:.0f}"
        f" report_ms={result['report_ms']:.0f}"
    )


if __name__ == "__main__":
    main()
