"""Latency of the PM dashboard of a project with 100,000 objects.

The script creates a throwaway database with Django's test-database helpers (named after
``DATABASE_URL``'s database with the ``test_`` prefix; by default
``test_kura_bench_dashboard`` on the local PostgreSQL, settings ``tests.settings``) and seeds,
with PostgreSQL ``COPY`` (foreign-key triggers off: the local ``postgres`` role is a
superuser):

* the project measured: ``--objects`` data objects (100,000 by default) in 200 DMP records
  (half of them complete, half missing items) and none (one object in ten), all four tiers,
  every checksum state, some quarantined, stored over 36 months, embargoes lifting over the
  next two years; a few uploading and deleted objects that the dashboard leaves out;
  200 tier-change requests (40 pending) over 2,000 objects, 100 access requests (20 pending)
  and 5,000 audit events;
* three other projects with as many objects again between them, so the project's rows are
  a part of the table, not all of it.

then runs ``VACUUM ANALYZE`` and drops the database at the end.

Every page is served in this process by Django's test ``Client``, logged in as the
project's PM, with ``DEBUG`` off (no query log) and the dashboard cache on, as in
production with Redis (``KURA_DASHBOARD_CACHE_SECONDS=300``). After a warm-up, the median of
``--requests`` requests of each is taken:

* ``minimal``: a view returning ``HttpResponse("ok")``, added to ``config.urls`` in a
  urlconf of the script's own, so it goes through the same middleware. It never touches
  the session, so the logged-in client costs it nothing;
* ``minimal_login``: the same view behind ``login_required``. The dashboard can only be
  opened logged in, and every page that can loads the session and the user (two queries)
  before it does anything of its own; this is the fair baseline for such a page, and the
  one the target is measured against;
* ``dashboard``: the project's dashboard, served as a PM meets it between two changes: the
  access check and the site's header live, the body (every figure) from the shared cache;
* ``dashboard_uncached`` (no target): the same page with the cache off, every figure
  computed: what the first reader after a change waits for; and ``empty_uncached``, the
  dashboard of a project without any data, for scale.

Target (the issue): the dashboard within 5× the minimal view that requires login. Both
ratios are printed.

The last line is ``dashboard_ms=… minimal_ms=… minimal_login_ms=… dashboard_uncached_ms=…
queries=… queries_uncached=… plain_ratio=… dashboard_ratio=…``.

Run: ``.venv/bin/python bench/dashboard.py``. Never part of the test suite.
"""

import argparse
import datetime
import os
import time

from _harness import bench_urlconf, copy_rows, django_setup, median_ms, run_on_throwaway_database

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kura_bench_dashboard"
RECORDS = 200
OTHER_PROJECTS = 3
MONTHS = 36
TIERS = ["public", "shared", "shared", "non_shared", "non_shared", "non_shared", "embargoed"]
# Mostly verified, as a running repository would be.
CHECKSUM_STATES = ["verified"] * 16 + ["pending", "verifying", "failed"]


# --- Seeding ---------------------------------------------------------------------------------


OBJECT_COLUMNS = [
    "project_id",
    "record_id",
    "uploaded_by_id",
    "storage_key",
    "original_filename",
    "size",
    "content_type",
    "status",
    "tier",
    "available_date",
    "sha256",
    "md5",
    "checksum_state",
    "checksum_progress",
    "client_sha256",
    "quarantined_at",
    "quarantine_reason",
    "technical_metadata",
    "contains_personal_data",
    "created_at",
    "stored_at",
    "last_fixity_at",
    "duplicate_of_id",
    "checksum_unsent",
    "checksum_missing_tries",
]


def object_rows(*, project_id, record_ids, uploader_id, count, start, now, today):
    """``count`` objects of one project; ``start`` keeps storage keys unique."""
    sha, md5 = "0" * 64, "0" * 32
    for n in range(count):
        number = start + n
        tier = TIERS[n % len(TIERS)]
        status = "stored"
        if n % 997 == 0:
            status = "uploading"
        elif n % 991 == 0:
            status = "deleted"
        record_id = None if n % 10 == 9 else record_ids[n % len(record_ids)]
        # Spread over MONTHS months, older objects first; a gap every 12th month.
        months_back = MONTHS - 1 - (n * MONTHS) // count
        if months_back % 12 == 7:
            months_back += 1
        stored_at = now - datetime.timedelta(days=30.4 * months_back + n % 28)
        available = today + datetime.timedelta(days=n % 730) if tier == "embargoed" else None
        quarantined = now if n % 1009 == 0 else None
        yield [
            project_id,
            record_id,
            uploader_id,
            f"objects/bench/{number:09d}",
            f"specimen-{number:09d}.tiff",
            (number * 7919) % 5_000_000_000,
            "image/tiff",
            status,
            tier,
            available,
            sha,
            md5,
            CHECKSUM_STATES[n % len(CHECKSUM_STATES)],
            100,
            "",
            quarantined,
            "",
            "{}",
            False,
            stored_at,
            stored_at if status == "stored" else None,
            None,
            None,
            False,
            0,
        ]


def seed(objects: int) -> dict:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Institution, Membership, Project, Role, User
    from dmp.models import DmpRecord
    from repository.models import (
        AccessRequest,
        AuditEvent,
        DataObject,
        RequestStatus,
        TierChangeRequest,
    )
    from repository.tally import tally_rebuild
    from tests.dmp.complete_records import complete_fields

    started = time.perf_counter()
    assert {f.column for f in DataObject._meta.concrete_fields} == {"id", *OBJECT_COLUMNS}
    institution = Institution.objects.create(name_ja="蔵研究所", name_en="Kura Institute")
    pm = User.objects.create_user(username="bench-pm", password="bench-pm")  # noqa: S106
    uploader = User.objects.create(username="bench-uploader")
    outsider = User.objects.create(username="bench-outsider")
    projects = Project.objects.bulk_create(
        Project(
            institution=institution,
            name_ja=f"ベンチマーク課題 {n}",
            name_en=f"Benchmark project {n}",
            funder="JST",
            funding_stream_code="MJMS",
            research_field="189",
        )
        for n in range(1 + OTHER_PROJECTS)
    )
    project = projects[0]
    Membership.objects.create(user=pm, project=project, role=Role.PM)
    empty = Project.objects.create(
        institution=institution,
        name_en="Benchmark project without data",
        funder="JST",
        research_field="189",
    )
    Membership.objects.create(user=pm, project=empty, role=Role.PM)
    Membership.objects.create(user=uploader, project=project, role=Role.RESEARCHER)
    records_of = {}
    for p in projects:
        records = []
        for n in range(RECORDS):
            if n % 2:
                fields = complete_fields(n + 1)
            else:
                fields = {"data_number": f"D-{n + 1:03d}", "title_en": f"Dataset {n + 1}"}
            fields["data_type"] = ["experimental data", "simulation data", "survey data"][n % 3]
            records.append(DmpRecord(project=p, **fields))
        records_of[p.pk] = [r.pk for r in DmpRecord.objects.bulk_create(records)]

    now = timezone.now()
    today = timezone.localdate()
    start = 0
    for p in projects:
        count = objects if p is project else objects // OTHER_PROJECTS
        copy_rows(
            DataObject._meta.db_table,
            OBJECT_COLUMNS,
            object_rows(
                project_id=p.pk,
                record_ids=records_of[p.pk],
                uploader_id=uploader.pk,
                count=count,
                start=start,
                now=now,
                today=today,
            ),
        )
        start += count
    # COPY ran with triggers off: the dashboard's tallies are counted afresh from the objects.
    tally_rebuild()
    seeded_objects = time.perf_counter()

    object_ids = list(
        DataObject.objects.filter(project=project).order_by("pk").values_list("pk", flat=True)
    )
    requests = TierChangeRequest.objects.bulk_create(
        TierChangeRequest(
            project=project,
            requested_by=uploader,
            requested_tier="public",
            status=RequestStatus.PENDING if n % 5 == 0 else RequestStatus.APPROVED,
        )
        for n in range(200)
    )
    through = TierChangeRequest.data_objects.through
    through.objects.bulk_create(
        through(tierchangerequest_id=r.pk, dataobject_id=object_ids[10 * n + k])
        for n, r in enumerate(requests)
        for k in range(10)
    )
    AccessRequest.objects.bulk_create(
        AccessRequest(
            record_id=records_of[project.pk][n % RECORDS],
            requester=outsider,
            purpose=f"Re-analysis {n}",
            status=RequestStatus.PENDING if n % 5 == 0 else RequestStatus.REJECTED,
        )
        for n in range(100)
    )
    copy_rows(
        AuditEvent._meta.db_table,
        [
            "occurred_at",
            "actor_id",
            "action",
            "project_id",
            "data_object_id",
            "before",
            "after",
            "detail",
        ],
        (
            [
                now - datetime.timedelta(minutes=n),
                uploader.pk,
                "download",
                project.pk,
                object_ids[n % len(object_ids)],
                "{}",
                '{"tier": "shared"}',
                "",
            ]
            for n in range(5000)
        ),
    )
    with connection.cursor() as cursor:
        for model in (DmpRecord, DataObject, TierChangeRequest, through, AuditEvent):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    done = time.perf_counter()
    total = DataObject.objects.count()
    print(
        f"seeded {objects:,} objects in the project and {total - objects:,} in "
        f"{OTHER_PROJECTS} others in {seeded_objects - started:.1f} s, requests, events and "
        f"VACUUM ANALYZE in {done - seeded_objects:.1f} s",
        flush=True,
    )
    return {"project": project, "empty": empty, "pm": pm}


# --- Measuring -------------------------------------------------------------------------------


def count_queries(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(queries)


def measure(seeded: dict, requests: int, warmup: int) -> dict:
    from django.test import Client, override_settings

    from repository.dashboard import project_dashboard_context

    project = seeded["project"]
    client = Client()
    client.force_login(seeded["pm"])
    dashboard = f"/projects/{project.pk}/dashboard/"
    empty = f"/projects/{seeded['empty'].pk}/dashboard/"
    results = {}
    with override_settings(ROOT_URLCONF=bench_urlconf()):
        with override_settings(KURA_DASHBOARD_CACHE_SECONDS=0):
            results["queries_uncached"] = count_queries(client, dashboard)
        count_queries(client, dashboard)  # fills the cache
        results["queries"] = count_queries(client, dashboard)
        context = project_dashboard_context(user=seeded["pm"], project=project)
        print(
            f"dashboard of project {project.pk}: {context['totals'].count:,} stored objects, "
            f"{context['totals'].bytes / 1e12:.1f} TB, {len(context['months'])} months, "
            f"{context['embargoes_lifting']['count']:,} embargoed objects lifting within 90 days; "
            f"{results['queries_uncached']} queries per view uncached, {results['queries']} "
            "from the cache",
            flush=True,
        )
        with override_settings(DEBUG=False):
            urls = {
                "minimal": "/bench-minimal/",
                "minimal_login": "/bench-minimal-login/",
                "dashboard": dashboard,
            }
            for name, url in urls.items():
                results[name] = median_ms(client, url, requests, warmup)
                print(f"{name:18} median {results[name]:8.2f} ms", flush=True)
            with override_settings(KURA_DASHBOARD_CACHE_SECONDS=0):
                for name, url in (("dashboard_uncached", dashboard), ("empty_uncached", empty)):
                    results[name] = median_ms(client, url, requests, warmup)
                    print(f"{name:18} median {results[name]:8.2f} ms", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    options = parser.parse_args()
    database_url = os.environ.get("KURA_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    # The production default with a Redis cache (the test settings switch it off).
    django_setup(database_url, KURA_DASHBOARD_CACHE_SECONDS="300")

    def work() -> dict:
        return measure(seed(options.objects), options.requests, options.warmup)

    results = run_on_throwaway_database(work)
    plain = results["dashboard"] / results["minimal"]
    ratio = results["dashboard"] / results["minimal_login"]
    print(
        f"target: dashboard {ratio:.2f}x the minimal view that requires login <= 5 "
        f"{'ok' if ratio <= 5 else 'MISSED'} ({plain:.2f}x the minimal view without login)"
    )
    print(
        "uncached (no target): "
        f"dashboard {results['dashboard_uncached'] / results['minimal_login']:.2f}x, "
        f"empty dashboard {results['empty_uncached'] / results['minimal_login']:.2f}x "
        "the minimal view that requires login"
    )
    print(
        f"dashboard_ms={results['dashboard']:.2f} minimal_ms={results['minimal']:.2f} "
        f"minimal_login_ms={results['minimal_login']:.2f} "
        f"dashboard_uncached_ms={results['dashboard_uncached']:.2f} "
        f"queries={results['queries']} queries_uncached={results['queries_uncached']} "
        f"plain_ratio={plain:.2f} dashboard_ratio={ratio:.2f}"
    )


if __name__ == "__main__":
    main()
