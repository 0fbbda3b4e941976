"""What the page benchmarks share: Django set up on a throwaway database, PostgreSQL COPY
seeding, the minimal views they measure against, and the median of timed requests."""

import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup(database_url: str, **environment: str) -> None:
    """Django with the test settings on ``database_url``; ``environment`` first (e.g. a page
    cache the test settings switch off). ``DEBUG`` is off afterwards, as in production (set
    after setup so that the development static-files storage needs no collectstatic)."""
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    os.environ["DJANGO_DEBUG"] = "true"  # for setup only (the default is production)
    os.environ.update(environment)
    import django
    from django.conf import settings

    django.setup()
    settings.DEBUG = False


def run_on_throwaway_database(work: Callable[[], dict]) -> dict:
    """Create the test database (``test_`` + the configured name), run ``work``, drop it."""
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        print(f"database {connection.settings_dict['NAME']}", flush=True)
        return work()
    finally:
        connection.close()
        teardown_databases(old_config, verbosity=0)
        print(f"load average after: {os.getloadavg()[0]:.2f}", flush=True)


def copy_rows(table: str, columns: list[str], rows) -> None:
    """PostgreSQL ``COPY`` of ``rows`` into ``table``, foreign-key triggers off."""
    from django.db import connection

    connection.ensure_connection()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # our own names only
    with connection.connection.cursor() as cursor:
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: checked one by one at
        # commit, they take many minutes for a million rows. The rows are consistent by
        # construction, so the copy runs with triggers off (the local role is a superuser).
        cursor.execute("SET session_replication_role = replica")
        try:
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def bench_urlconf() -> str:
    """Kura's URLs plus the baselines: ``/bench-minimal/`` (``HttpResponse("ok")``) and
    ``/bench-minimal-login/`` (the same behind ``login_required``, so it loads the session
    and the user as every signed-in page does), through the same middleware."""
    from django.contrib.auth.decorators import login_required
    from django.http import HttpResponse
    from django.urls import include, path

    def minimal(request):
        return HttpResponse("ok")

    module = types.ModuleType("bench_urls")
    module.urlpatterns = [
        path("bench-minimal/", minimal, name="bench-minimal"),
        path("bench-minimal-login/", login_required(minimal), name="bench-minimal-login"),
        path("", include("config.urls")),
    ]
    sys.modules[module.__name__] = module
    return module.__name__


def median_ms(client, url: str, requests: int, warmup: int, check=None) -> float:
    """Median latency of ``requests`` GETs of ``url`` after ``warmup`` checked ones."""
    for _ in range(warmup):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        if check is not None:
            check(response)
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
    return statistics.median(timings) * 1000


def interleaved_medians_ms(client, urls: dict[str, str], requests: int, warmup: int) -> dict:
    """Median latency of each of ``urls`` (name: url), asked in turn ``requests`` times
    after ``warmup`` rounds: a busy moment on a shared machine slows each alike, so their
    ratio holds better than that of medians taken one after the other."""
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for round_number in range(warmup + requests):
        for name, url in urls.items():
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, (url, response.status_code)
            if round_number >= warmup:
                timings[name].append(elapsed)
    return {name: statistics.median(values) * 1000 for name, values in timings.items()}
