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
should be bounded by the cap, not by the number of records. Redis is not used (the page
cache is off; the cache and broker point at database numbers of this script's own).

First, ``bench/dashboard.py``'s seeding makes a project of ``--dashboard-objects``
objects (1,000,000; three other projects hold as many again) and the uncached dashboard of
that project and of an empty one are measured, logged in as the PM (the dashboard reads
the tallies of repository/tally.py, not the objects).

Last line: ``search_common_ms=… search_growth=… dashboard_growth=… landing_growth=…``:
the slower common-term median at ``--records``, that median over the same at ``--small``
(target ≤ 2), the dashboard of the big project over the empty one (target ≤ 2), and the
landing median at ``--records`` over ``--small`` (target ≤ 1.5). The cache hit rate under
writes, which the issue also asks of this script, is not measured yet.

Run: ``.venv/bin/python bench/scale.py`` (``--records 200000`` for a quicker run). Never
part of the test suite.
"""

import argparse
import os
import time
from urllib.parse import urlencode

from _harness import django_setup, median_ms, run_on_throwaway_database

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kura_bench_scale"
QUERIES = {"rare": "土壌", "frequent": "観測", "common_ja": "データ", "common_en": "dataset"}


def measure(records: int, objects: int, requests: int, warmup: int) -> dict[str, float]:
    from bench.public import seed

    def work() -> dict:
        from django.contrib.auth.models import AnonymousUser
        from django.test import Client

        from dmp.models import DmpRecord
        from repository.search.selectors import dataset_search

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
        return results

    return run_on_throwaway_database(work)


def measure_dashboard(objects: int, requests: int, warmup: int) -> dict[str, float]:
    """The uncached dashboard of a project with ``objects`` objects (and three other
    projects with as many again) and of an empty project, seeded by bench/dashboard.py."""
    from bench.dashboard import seed

    def work() -> dict:
        from django.test import Client

        seeded = seed(objects)
        client = Client()
        client.force_login(seeded["pm"])
        results = {}
        for name in ("project", "empty"):
            url = f"/projects/{seeded[name].pk}/dashboard/"
            results[name] = median_ms(client, url, requests, warmup)
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
    small = measure(options.small, options.objects, options.requests, options.warmup)
    large = measure(options.records, options.objects, options.requests, options.warmup)
    common = ("common_ja", "common_en")
    common_ms = max(large[name] for name in common)
    growth = max(large[name] / small[name] for name in common)
    landing = large["landing"] / small["landing"]
    dashboard = dashboards["project"] / dashboards["empty"]
    print(
        f"targets: search growth {growth:.2f} <= 2 {'ok' if growth <= 2 else 'MISSED'}, "
        f"dashboard growth {dashboard:.2f} <= 2 {'ok' if dashboard <= 2 else 'MISSED'}, "
        f"landing growth {landing:.2f} <= 1.5 {'ok' if landing <= 1.5 else 'MISSED'}"
    )
    print(
        f"search_common_ms={common_ms:.1f} search_growth={growth:.2f}"
        f" dashboard_growth={dashboard:.2f} landing_growth={landing:.2f}"
    )


if __name__ == "__main__":
    main()
