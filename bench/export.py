"""Throughput and memory of the common-metadata CSV export (and the Moonshot XLSX).

The script creates a throwaway database with Django's test-database helpers (named after
``DATABASE_URL``'s database with the ``test_`` prefix; by default ``test_kura_bench`` on
the local PostgreSQL), seeds a project of 1,000 and one of 10,000 complete records with two
creators each (``bulk_create``), and drops the database at the end.

Each export runs in a child process of its own, so the peak RSS reported (the child's
``ru_maxrss``, from ``wait4``) is that of the export alone, Python and Django included:

* ``stream``: ``dmp.exports.csv_rows`` — chunked reads, creators prefetched per chunk;
* ``naive`` (the baseline, same run): every record and its creators loaded into a list
  first, then written with ``csv.writer`` — what a straightforward view would do;
* ``xlsx``: ``dmp.exports.moonshot_xlsx`` in constant-memory mode.

A streamed export whose memory stays flat has about the same peak RSS for 1k and 10k
records. The last line is ``records_per_s=… peak_rss_mib_1k=… peak_rss_mib_10k=…`` plus
the baseline's figures and the ratio of streamed to naive throughput.

Run: ``.venv/bin/python bench/export.py``. Never part of the test suite.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1_000, 10_000)
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kura_bench"


def _django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # Development mode unless told otherwise (the default is production, which needs secrets);
    # the children inherit it.
    os.environ.setdefault("DJANGO_DEBUG", "true")
    import django

    django.setup()


# --- Children: one measurement each --------------------------------------------------------


def child(mode: str, project_id: int) -> dict:
    from dmp.models import DmpRecord

    records = DmpRecord.objects.filter(project_id=project_id)
    started = time.perf_counter()
    size = 0
    if mode == "idle":
        return {"records": records.count(), "bytes": 0, "seconds": 0}
    if mode == "stream":
        from dmp.exports import csv_rows

        for line in csv_rows(records, "ja"):
            size += len(line)
    elif mode == "naive":
        import csv
        import io

        from dmp.common_metadata import csv_headers, record_csv_row

        loaded = list(records.select_related("project").prefetch_related("creators"))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(csv_headers("ja"))
        for record in loaded:
            writer.writerow(record_csv_row(record, "ja"))
        size = len(("\ufeff" + buffer.getvalue()).encode("utf-8"))
    elif mode == "xlsx":
        from dmp.exports import moonshot_xlsx

        with moonshot_xlsx(records, "ja") as file:
            size = len(file.read())
    seconds = time.perf_counter() - started
    return {"records": records.count(), "bytes": size, "seconds": seconds}


def run_child(database_url: str, mode: str, project_id: int) -> tuple[dict, float]:
    process = subprocess.Popen(  # noqa: S603 - this very script
        [sys.executable, __file__, "--child", mode, str(project_id)],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    if status != 0:
        raise RuntimeError(f"{mode} export failed with status {status}")
    return json.loads(output.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


# --- Parent: database, seeding, report ------------------------------------------------------


def seed(size: int):
    from accounts.models import Institution, Project
    from dmp.models import DmpRecord, RecordCreator

    institution = Institution.objects.create(name_ja="蔵研究所", name_en="Kura Institute")
    project = Project.objects.create(
        institution=institution,
        name_ja=f"ベンチマーク {size}",
        name_en=f"Benchmark {size}",
        funder="JST",
        funding_stream_code="MJMS",
        program_name_ja="ムーンショット型研究開発事業 目標2",
        program_name_en="Moonshot Goal 2",
        research_field="189",
    )
    records = DmpRecord.objects.bulk_create(
        (
            DmpRecord(
                project=project,
                data_number=f"D-{number:06d}",
                title_ja=f"データ {number} の名称",
                title_en=f"Dataset {number}",
                description_ja="共焦点顕微鏡で撮影した肝臓切片の画像と計測値。" * 4,
                description_en="Confocal images of liver sections and their measurements. " * 4,
                date_issued_updated=datetime.date(2025, 4, 1),
                data_type="experimental data",
                file_size="1-10GB",
                data_policy_free="free",
                data_policy_license="CCBY",
                data_policy_cite_ja="山田 (2025) を引用すること",
                data_policy_cite_en="Cite Yamada (2025)",
                access_rights="public",
                repo_information_ja="蔵リポジトリ",
                repo_information_en="Kura repository",
                repo_url_doi_link=f"https://doi.org/10.1234/kura.{number}",
                hosting_inst_ja="国立研究開発法人 蔵研究所",
                hosting_inst_en="Kura Research Institute",
                data_man_number="40598761",
                data_man_name_ja="佐藤 健",
                data_man_name_en="Ken Sato",
                data_man_email="data@kura.example.jp",
            )
            for number in range(size)
        ),
        batch_size=2_000,
    )
    RecordCreator.objects.bulk_create(
        (
            RecordCreator(
                record=record,
                position=position,
                erad_researcher_number=number,
                name_ja=name_ja,
                name_en=name_en,
            )
            for record in records
            for position, (number, name_ja, name_en) in enumerate(
                [("70312345", "山田 花子", "Hanako Yamada"), ("", "鈴木 陽菜", "Hina Suzuki")]
            )
        ),
        batch_size=4_000,
    )
    return project


def setup(database_url: str) -> dict:
    """Create the throwaway database and seed it; run in a child so that the parent stays
    small (a child's ``ru_maxrss`` starts from its parent's size at ``fork``)."""
    _django(database_url)
    from django.db import connection
    from django.test.utils import setup_databases

    setup_databases(verbosity=0, interactive=False)
    test_url = database_url.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    return {"url": test_url, "projects": {str(size): seed(size).pk for size in SIZES}}


def teardown(test_url: str, database_url: str) -> None:
    """Drop the test database (``destroy_test_db`` drops the database it is connected to
    and then points the connection back at ``database_url``'s)."""
    _django(test_url)
    from django.db import connection

    connection.creation.destroy_test_db(database_url.rsplit("/", 1)[1], verbosity=0)


def run(*args: str, database_url: str) -> str:
    output = subprocess.run(  # noqa: S603 - this very script
        [sys.executable, __file__, *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    return output.decode().strip().splitlines()[-1] if output.strip() else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("MODE", "PROJECT_ID"))
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--teardown", action="store_true")
    args = parser.parse_args()
    database_url = os.environ.get("KURA_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)

    if args.child:
        _django(os.environ["DATABASE_URL"])
        print(json.dumps(child(args.child[0], int(args.child[1]))))
        return
    if args.setup:
        print(json.dumps(setup(database_url)))
        return
    if args.teardown:
        teardown(os.environ["DATABASE_URL"], database_url)
        return

    # The parent never imports Django: it only starts children and reports.
    seeded = json.loads(run("--setup", database_url=database_url))
    try:
        results = {}
        idle, idle_mib = run_child(seeded["url"], "idle", 0)
        print(f"idle   (Django set up, one query): peak RSS {idle_mib:6.1f} MiB")
        for size in SIZES:
            for mode in ("stream", "naive", "xlsx"):
                figures, peak_mib = run_child(seeded["url"], mode, seeded["projects"][str(size)])
                assert figures["records"] == size, figures
                rate = size / figures["seconds"]
                results[mode, size] = (rate, peak_mib)
                print(
                    f"{mode:6} {size:>6} records: {rate:8.0f} records/s, "
                    f"{figures['bytes'] / 1024**2:6.1f} MiB written, peak RSS {peak_mib:6.1f} MiB"
                )
    finally:
        run("--teardown", database_url=seeded["url"])

    stream_rate = results["stream", 10_000][0]
    naive_rate = results["naive", 10_000][0]
    print(
        f"records_per_s={stream_rate:.0f} "
        f"peak_rss_mib_1k={results['stream', 1_000][1]:.0f} "
        f"peak_rss_mib_10k={results['stream', 10_000][1]:.0f} "
        f"idle_rss_mib={idle_mib:.0f} "
        f"naive_peak_rss_mib_10k={results['naive', 10_000][1]:.0f} "
        f"ratio_stream_vs_naive={stream_rate / naive_rate:.2f} "
        f"xlsx_peak_rss_mib_10k={results['xlsx', 10_000][1]:.0f}"
    )


if __name__ == "__main__":
    main()
