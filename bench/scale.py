"""Public pages uncached as the catalogue grows: search for any term, and the landing page.

For each size (``--small`` records, 10,000, then ``--records``, 1,000,000) the script seeds
a throwaway database of its own (``test_kura_bench_scale``) with ``bench/public.py``'s
seeding (bilingual records built from 50 terms; ``--objects`` files per record) and
measures, with the page cache **off** (every request renders the page and queries the
database, as for a visitor with a session or the first visitor after a change), the median
of ``--requests`` requests of:

* ``search`` for 土壌 (2 % of the records), 観測 (20 %), データ and "dataset" (every
  record: the common terms), and with no query;
* ``landing``: the landing page of a record in the middle of the table.

The search counts matches up to ``KURA_SEARCH_COUNT_CAP`` and its facets count the first
that many, and the bigrams of every record are stored in an indexed column: its cost
should be bounded by the cap, not by the number of records. The cache and broker point at
Redis database numbers of this script's own (12 and 13), which it empties.

First, ``bench/dashboard.py``'s seeding makes a project of ``--dashboard-objects``
objects (1,000,000; three other projects hold as many again) and the uncached dashboard of
that project and of an empty one are measured, logged in as the PM (the dashboard reads
the tallies of repository/tally.py, not the objects).

Then, at ``--small`` records and with the page cache **on**, anonymous visitors ask for
50 landing pages and the search pages for ``--hit-rate-seconds`` while another project
receives one upload (started, stored, verified) and one audited download each second:
pages are filed under what they show (core/generations.py), so those writes should
leave them cached.

Last line: ``search_common_ms=… search_growth=… dashboard_growth=… landing_growth=…
cache_hit_rate=…``: the slower common-term median at ``--records``, that median over the
same at ``--small`` (target ≤ 2), the dashboard of the big project over the empty one
(target ≤ 2), the landing median at ``--records`` over ``--small`` (target ≤ 1.5), and the
share of those anonymous requests served from the cache (target ≥ 0.9).

Run: ``.venv/bin/python bench/scale.py`` (``--records 200000`` for a quicker run;
``--only-dashboard --dashboard-objects 50000`` for the dashboards alone, whose cost does not
grow with the objects; the last line is then ``dashboard_growth=…``). Never part of the test
suite.
"""

import argparse
import os
import time
from urllib.parse import urlencode

from _harness import (
    django_setup,
    interleaved_medians_ms,
    median_ms,
    run_on_throwaway_database,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kura_bench_scale"
QUERIES = {"rare": "土壌", "frequent": "観測", "common_ja": "データ", "common_en": "dataset"}


def measure(
    records: int, objects: int, requests: int, warmup: int, hit_rate_seconds: float = 0
) -> dict[str, float]:
    from bench.public import seed

    def work() -> dict:
        from django.contrib.auth.models import AnonymousUser
        from django.test import Client

        from dmp.models import DmpRecord
        from repository.discovery.search.selectors import dataset_search

        started = time.perf_counter()
        seed(records, objects_per_record=objects)
        print(f"seeded {records:,} records in {time.perf_counter() - started:.0f} s", flush=True)
        client = Client()
        middle = DmpRecord.objects.order_by("pk").values_list("pk", flat=True)[records // 2]
        queries = {**QUERIES, "no_query": ""}
        urls = {name: "/datasets/?" + urlencode({"q": q}) for name, q in queries.items()}
        urls["landing"] = f"/datasets/{middle}/"
        results = {}
        for name, url in urls.items():
            results[name] = median_ms(client, url, requests, warmup)
            count = ""
            if name != "landing":
                search = dataset_search(user=AnonymousUser(), query=queries[name])
                count = f"{'more than ' if search.capped else ''}{search.count:,} matches"
            print(f"  {records:>9,} {name:10} {results[name]:9.1f} ms  {count}", flush=True)
        if hit_rate_seconds:
            rate, lookups, writes = cache_hit_rate(hit_rate_seconds, pages=50)
            print(
                f"  cache hit rate {rate:.3f} over {lookups:,} requests,"
                f" {writes} uploads and downloads elsewhere",
                flush=True,
            )
            results["cache_hit_rate"] = rate
        return results

    return run_on_throwaway_database(work)


def cache_hit_rate(seconds: float, pages: int) -> tuple[float, int, int]:
    """With the page cache on: anonymous visitors ask for ``pages`` landing pages of other
    projects and the search pages (the four terms and no query, first and second result
    page) for ``seconds``, while another project receives one upload (started, stored,
    verified) and one audited download of shared data each second. Answers the share of
    requests served from the cache, the requests and the writes."""
    import random
    import threading

    from django.core.cache import caches
    from django.db import connection
    from django.test import Client
    from django.test.utils import override_settings
    from django.utils import timezone

    from accounts.models import Membership, Role
    from core.vocabularies import Tier
    from dmp.models import DmpRecord
    from repository.discovery.public import cache as public_cache
    from repository.models import AuditEvent, DataObject
    from repository.services import audit_event_record
    from tests.factories import DmpRecordFactory, MembershipFactory

    writer = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=writer.project)
    assert not Membership.objects.exclude(project=writer.project).filter(user=writer.user)
    rng = random.Random(14)
    ids = list(DmpRecord.objects.exclude(project=writer.project).values_list("pk", flat=True))
    urls = [f"/datasets/{pk}/" for pk in rng.sample(ids, pages)]
    urls += [
        "/datasets/?" + urlencode({"q": q, **({"page": n} if n > 1 else {})})
        for q in (*QUERIES.values(), "")
        for n in (1, 2)
    ]
    caches["default"].clear()  # nothing from an earlier run on this Redis database

    counts = {"hits": 0, "lookups": 0, "writes": 0}
    lookup = public_cache.cached_lookup

    def counted(generations, key_for):
        key, page = lookup(generations, key_for)
        counts["lookups"] += 1
        counts["hits"] += page is not None
        return key, page

    stop = threading.Event()

    def write_each_second() -> None:
        try:
            while not stop.wait(1.0):
                # One upload: started (in flight), stored, checksummed, verified.
                uploaded = DataObject.objects.create(
                    project=writer.project,
                    record=record,
                    uploaded_by=writer.user,
                    original_filename=f"run-{counts['writes']}.fastq.gz",
                    size=1024,
                    tier=Tier.SHARED,
                    status=DataObject.Status.UPLOADING,
                )
                DataObject.objects.filter(pk=uploaded.pk).update(
                    status=DataObject.Status.STORED, stored_at=timezone.now()
                )
                DataObject.objects.filter(pk=uploaded.pk).update(
                    checksum_state=DataObject.ChecksumState.VERIFYING
                )
                DataObject.objects.filter(pk=uploaded.pk).update(
                    checksum_state=DataObject.ChecksumState.VERIFIED, sha256="0" * 64
                )
                # One audited download of shared data.
                audit_event_record(
                    actor=writer.user, action=AuditEvent.Action.DOWNLOAD, data_object=uploaded
                )
                counts["writes"] += 1
        finally:
            connection.close()

    client = Client()
    with override_settings(KURA_PAGE_CACHE_SECONDS=300):
        # The public pages look pages up through repository/discovery/public/cache.py.
        public_cache.cached_lookup = counted
        thread = threading.Thread(target=write_each_second)
        thread.start()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                response = client.get(rng.choice(urls))
                assert response.status_code == 200, response.status_code
        finally:
            stop.set()
            thread.join()
            public_cache.cached_lookup = lookup
    return counts["hits"] / counts["lookups"], counts["lookups"], counts["writes"]


def measure_dashboard(objects: int, requests: int, warmup: int) -> dict[str, float]:
    """The uncached dashboard of a project with ``objects`` objects (and three other
    projects with as many again) and of an empty project, seeded by bench/dashboard.py."""
    from bench.dashboard import seed

    def work() -> dict:
        from django.test import Client

        seeded = seed(objects)
        client = Client()
        client.force_login(seeded["pm"])
        urls = {name: f"/projects/{seeded[name].pk}/dashboard/" for name in ("project", "empty")}
        # Asked in turn, three times as many requests as the pages: the two figures are
        # close, and their ratio is the target.
        results = interleaved_medians_ms(client, urls, 3 * requests, warmup)
        for name, url in urls.items():
            print(f"  dashboard {name:8} {results[name]:9.1f} ms  {url}", flush=True)
        return results

    return run_on_throwaway_database(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--objects", type=int, default=1, help="files per record")
    parser.add_argument(
        "--dashboard-objects",
        type=int,
        default=1_000_000,
        help="objects of the dashboard's project",
    )
    parser.add_argument(
        "--hit-rate-seconds",
        type=float,
        default=30,
        help="how long the cache hit rate is measured under writes (at --small records)",
    )
    parser.add_argument(
        "--only-dashboard",
        action="store_true",
        help="measure only the dashboards (their cost does not grow with the objects: e.g."
        " --dashboard-objects 50000 with the same 200 records reproduces the ratio)",
    )
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    options = parser.parse_args()
    database_url = os.environ.get("KURA_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    django_setup(
        database_url,
        KURA_PAGE_CACHE_SECONDS="0",
        KURA_DASHBOARD_CACHE_SECONDS="0",
        KURA_CACHE_URL="redis://127.0.0.1:6379/12",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/13",
    )
    dashboards = measure_dashboard(options.dashboard_objects, options.requests, options.warmup)
    dashboard = dashboards["project"] / dashboards["empty"]
    if options.only_dashboard:
        print(
            f"target: dashboard growth {dashboard:.2f} <= 2 {'ok' if dashboard <= 2 else 'MISSED'}"
        )
        print(f"dashboard_growth={dashboard:.2f}")
        return
    small = measure(
        options.small, options.objects, options.requests, options.warmup, options.hit_rate_seconds
    )
    large = measure(options.records, options.objects, options.requests, options.warmup)
    common = ("common_ja", "common_en")
    common_ms = max(large[name] for name in common)
    growth = max(large[name] / small[name] for name in common)
    landing = large["landing"] / small["landing"]
    hit_rate = small["cache_hit_rate"]
    print(
        f"targets: search growth {growth:.2f} <= 2 {'ok' if growth <= 2 else 'MISSED'}, "
        f"dashboard growth {dashboard:.2f} <= 2 {'ok' if dashboard <= 2 else 'MISSED'}, "
        f"landing growth {landing:.2f} <= 1.5 {'ok' if landing <= 1.5 else 'MISSED'}, "
        f"cache hit rate {hit_rate:.3f} >= 0.9 {'ok' if hit_rate >= 0.9 else 'MISSED'}"
    )
    print(
        f"search_common_ms={common_ms:.1f} search_growth={growth:.2f}"
        f" dashboard_growth={dashboard:.2f} landing_growth={landing:.2f}"
        f" cache_hit_rate={hit_rate:.3f}"
    )


if __name__ == "__main__":
    main()
