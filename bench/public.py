"""Latency of the public pages at scale: landing page, dataset search, OAI-PMH ListRecords.

The script creates a throwaway database with Django's test-database helpers (named after
``DATABASE_URL``'s database with the ``test_`` prefix; by default ``test_kura_bench_public``
on the local PostgreSQL, settings ``tests.settings``), seeds one institution, 100 JST
projects, 100,000 records whose metadata is open (bilingual titles built from 50 Japanese
terms, so that a one-term search matches about 2 % of them; one creator each) and 1,000,000
data objects (10 per record, tiers mixed, all stored) with PostgreSQL ``COPY`` (foreign-key
triggers off: the local ``postgres`` role is a superuser), runs
``VACUUM ANALYZE``, and drops the database at the end.

Every page is served in this process by Django's test ``Client``. The baseline, measured in
the same run: a minimal view (``HttpResponse("ok")``) added to ``config.urls`` in a urlconf
of the script's own, so it goes through the same middleware. After a warm-up, the median of
``--requests`` requests is taken for:

* ``landing``: ``/datasets/<id>/`` of a record with 10 files;
* ``search``: ``/datasets/?q=土壌`` (about 2 % of the records match);
* ``oai_early``: ``/oai?verb=ListRecords&metadataPrefix=oai_dc`` (the first page);
* ``oai_deep``: the page after the record at 90 % of the list, with a resumption token made
  by ``repository.discovery.oai.tokens.encode`` (walking ~900 pages to get there would take too
  long).

Anonymous visitors without a session get landing and search pages from the shared page
cache (``repository/discovery/public/cache.py``), so the measured ``landing`` and ``search`` are
served from it after the warm-up, as they are for crawlers and harvesters; the same pages
rendered every time (page cache off) are printed too, as ``*_uncached``, without a target.
``DEBUG`` is off, as in production.

Targets (the issue): landing ≤ 3× the minimal view, search ≤ 5×, the deep OAI page ≤ 1.5×
the early one. The last line is ``landing_ratio=… search_ratio=… oai_deep_ratio=…``.

Run: ``.venv/bin/python bench/public.py``. Never part of the test suite.
"""

import argparse
import datetime
import os
import time
from urllib.parse import urlencode

from _harness import bench_urlconf, copy_rows, django_setup, median_ms, run_on_throwaway_database

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/kura_bench_public"
PROJECTS = 100
OBJECTS_PER_RECORD = 10
SEARCH_TERM = "土壌"
# (Japanese, English): none is a substring of another, nor of the fixed texts below.
TERMS = [
    ("土壌", "soil"),
    ("メタン", "methane"),
    ("肝臓", "liver"),
    ("画像", "imaging"),
    ("農地", "farmland"),
    ("海洋", "ocean"),
    ("森林", "forest"),
    ("河川", "river"),
    ("大気", "atmosphere"),
    ("氷河", "glacier"),
    ("火山", "volcano"),
    ("地震", "earthquake"),
    ("津波", "tsunami"),
    ("台風", "typhoon"),
    ("降水", "rainfall"),
    ("積雪", "snow cover"),
    ("湖沼", "lake"),
    ("干潟", "tidal flat"),
    ("珊瑚", "coral"),
    ("藻類", "algae"),
    ("昆虫", "insect"),
    ("鳥類", "bird"),
    ("魚類", "fish"),
    ("哺乳類", "mammal"),
    ("細菌", "bacteria"),
    ("ウイルス", "virus"),
    ("酵母", "yeast"),
    ("稲作", "rice"),
    ("小麦", "wheat"),
    ("大豆", "soybean"),
    ("心臓", "heart"),
    ("脳波", "EEG"),
    ("腎臓", "kidney"),
    ("血液", "blood"),
    ("遺伝子", "gene"),
    ("蛋白質", "protein"),
    ("触媒", "catalyst"),
    ("電池", "battery"),
    ("半導体", "semiconductor"),
    ("超伝導", "superconductor"),
    ("磁石", "magnet"),
    ("レーザー", "laser"),
    ("衛星", "satellite"),
    ("ロボット", "robot"),
    ("言語", "language"),
    ("教育", "education"),
    ("人口", "population"),
    ("交通", "traffic"),
    ("建築", "building"),
    ("水素", "hydrogen"),
]
KINDS = [
    ("観測", "observations"),
    ("計測", "measurements"),
    ("解析", "analysis"),
    ("調査", "survey"),
    ("実験", "experiments"),
]
TIERS = [
    "public",
    "public",
    "public",
    "shared",
    "shared",
    "non_shared",
    "public",
    "shared",
    "non_shared",
    "public",
]


# --- Seeding ---------------------------------------------------------------------------------


def seed(records: int, objects_per_record: int = OBJECTS_PER_RECORD) -> None:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Institution, Project, User
    from dmp.models import DmpRecord, RecordCreator
    from repository.models import DataObject
    from repository.tally import tally_rebuild
    from tests.dmp.complete_records import complete_fields

    started = time.perf_counter()
    institution = Institution.objects.create(name_ja="蔵研究所", name_en="Kura Institute")
    uploader = User.objects.create(username="bench-uploader")
    codes = ["MJMS", "MJCR", "MJPR", "MJFR", "MJER", ""]
    projects = Project.objects.bulk_create(
        Project(
            institution=institution,
            name_ja=f"ベンチマーク課題 {n}",
            name_en=f"Benchmark project {n}",
            funder="JST",
            funding_stream_code=codes[n % len(codes)],
            program_name_ja=f"プログラム {codes[n % len(codes)] or 'なし'}",
            program_name_en=f"Program {codes[n % len(codes)] or 'none'}",
            research_field="189",
        )
        for n in range(PROJECTS)
    )
    project_ids = [p.pk for p in projects]

    # Records: the fields of a complete record, prepared once; per row only what varies.
    base = complete_fields(1)
    varying = [
        "project_id",
        "data_number",
        "title_ja",
        "title_en",
        "description_ja",
        "description_en",
        "keywords_ja",
        "keywords_en",
        "date_issued_updated",
        "metadata_access",
        "created_at",
        "updated_at",
    ]
    fixed = {}
    for field in DmpRecord._meta.concrete_fields:
        if field.primary_key or field.attname in varying:
            continue
        value = base[field.name] if field.name in base else field.get_default()
        fixed[field.column] = field.get_db_prep_save(value, connection)
    columns = varying + list(fixed)
    fixed_values = list(fixed.values())
    epoch = timezone.now() - datetime.timedelta(days=400)

    def record_rows():
        for n in range(records):
            term_ja, term_en = TERMS[n % len(TERMS)]
            kind_ja, kind_en = KINDS[(n // len(TERMS)) % len(KINDS)]
            moment = epoch + datetime.timedelta(seconds=300 * n)
            yield [
                project_ids[n % PROJECTS],
                f"D-{n:06d}",
                f"{term_ja}の{kind_ja}データ 第{n}号",
                f"{term_en.capitalize()} {kind_en}, dataset {n}",
                f"{term_ja}に関する{kind_ja}の結果と計測値の一式。",
                f"Results and measured values of {kind_en} of {term_en}.",
                f"{term_ja}, {kind_ja}",
                f"{term_en}, {kind_en}",
                datetime.date(2020 + n % 6, 1 + n % 12, 1 + n % 28),
                "open",
                moment,
                moment,
                *fixed_values,
            ]

    copy_rows(DmpRecord._meta.db_table, columns, record_rows())
    record_ids = list(DmpRecord.objects.order_by("pk").values_list("pk", "project_id"))
    seeded_records = time.perf_counter()

    copy_rows(
        RecordCreator._meta.db_table,
        [
            "record_id",
            "position",
            "erad_researcher_number",
            "name_ja",
            "name_en",
            "affiliation_ja",
            "affiliation_en",
            "orcid",
        ],
        (
            [pk, 0, "70312345", "山田 花子", "Hanako Yamada", "蔵研究所", "Kura Institute", ""]
            for pk, _project in record_ids
        ),
    )

    now = timezone.now()
    object_columns = [
        "project_id",
        "record_id",
        "uploaded_by_id",
        "storage_key",
        "original_filename",
        "size",
        "content_type",
        "status",
        "tier",
        "sha256",
        "md5",
        "checksum_state",
        "checksum_progress",
        "client_sha256",
        "quarantine_reason",
        "technical_metadata",
        "contains_personal_data",
        "created_at",
        "stored_at",
        "checksum_unsent",
        "checksum_missing_tries",
    ]
    nullable = {"id", "available_date", "quarantined_at", "last_fixity_at", "duplicate_of_id"}
    assert set(object_columns) | nullable == {f.column for f in DataObject._meta.concrete_fields}
    sha = "0" * 64
    md5 = "0" * 32

    def object_rows():
        number = 0
        for pk, project_id in record_ids:
            for k in range(objects_per_record):
                yield [
                    project_id,
                    pk,
                    uploader.pk,
                    f"objects/{number:08d}",
                    f"file-{k:02d}.csv",
                    (number * 7919) % 10_000_000_000,
                    "text/csv",
                    "stored",
                    TIERS[k],
                    sha,
                    md5,
                    "verified",
                    100,
                    "",
                    "",
                    "{}",
                    False,
                    now,
                    now,
                    False,
                    0,
                ]
                number += 1

    copy_rows(DataObject._meta.db_table, object_columns, object_rows())
    # COPY ran with triggers off: the dashboard's tallies are counted afresh from the objects.
    tally_rebuild()
    seeded_objects = time.perf_counter()
    with connection.cursor() as cursor:
        for model in (Project, DmpRecord, RecordCreator, DataObject):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
    done = time.perf_counter()
    print(
        f"seeded {len(record_ids):,} records in {seeded_records - started:.1f} s, "
        f"creators and {DataObject.objects.count():,} objects in "
        f"{seeded_objects - seeded_records:.1f} s, VACUUM ANALYZE {done - seeded_objects:.1f} s "
        f"(total {done - started:.1f} s)",
        flush=True,
    )


# --- Measuring -------------------------------------------------------------------------------


def oai_token_after(position: float) -> tuple[str, int, int]:
    from repository.discovery.oai import tokens
    from repository.discovery.oai.views import harvestable

    ordered = harvestable().order_by("updated_at", "id").values_list("updated_at", "id")
    total = ordered.count()
    index = int(total * position)
    updated_at, pk = ordered[index]
    state = tokens.ListState(
        verb="ListRecords",
        metadata_prefix="oai_dc",
        set_spec=None,
        from_=None,
        until=None,
        last_updated=updated_at.isoformat(),
        last_id=pk,
    )
    return tokens.encode(state), index, total


def measure(requests: int, warmup: int) -> dict[str, float]:
    from django.test import Client, override_settings

    from dmp.models import DmpRecord
    from repository.models import DataObject

    record = DmpRecord.objects.order_by("pk")[len(TERMS) * 7]  # a record in the middle of a term
    assert DataObject.objects.filter(record=record).count() == OBJECTS_PER_RECORD
    token, index, total = oai_token_after(0.9)
    oai = "/oai?" + urlencode({"verb": "ListRecords", "metadataPrefix": "oai_dc"})
    urls = {
        "minimal": "/bench-minimal/",
        "landing": f"/datasets/{record.pk}/",
        "search": "/datasets/?" + urlencode({"q": SEARCH_TERM}),
        "oai_early": oai,
        "oai_deep": "/oai?" + urlencode({"verb": "ListRecords", "resumptionToken": token}),
    }
    matches = DmpRecord.objects.filter(title_ja__contains=SEARCH_TERM).count()
    print(
        f"landing page of record {record.pk} ({OBJECTS_PER_RECORD} files); search {SEARCH_TERM!r} "
        f"matches {matches:,} titles ({100 * matches / total:.1f} %); deep OAI page after "
        f"record {index:,} of {total:,}",
        flush=True,
    )

    def oai_page(response) -> None:
        body = response.content.decode()
        assert "<error" not in body, body[:500]
        assert body.count("<record>") == 100, body.count("<record>")

    checks = {"oai_early": oai_page, "oai_deep": oai_page}
    client = Client()
    results = {}
    with override_settings(ROOT_URLCONF=bench_urlconf()):
        for name, url in urls.items():
            results[name] = median_ms(client, url, requests, warmup, checks.get(name))
            print(f"{name:10} median {results[name]:8.2f} ms  {url[:80]}", flush=True)
        # The same pages rendered every time: what a visitor with a session, or the first
        # visitor after a change, waits for.
        with override_settings(KURA_PAGE_CACHE_SECONDS=0):
            for name in ("landing", "search"):
                cold = f"{name}_uncached"
                results[cold] = median_ms(client, urls[name], requests, warmup)
                print(f"{cold:10} median {results[cold]:8.2f} ms  {urls[name][:80]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    options = parser.parse_args()
    database_url = os.environ.get("KURA_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    # The production default with a Redis cache (the test settings switch it off).
    django_setup(database_url, KURA_PAGE_CACHE_SECONDS="300")

    def work() -> dict:
        seed(options.records)
        return measure(options.requests, options.warmup)

    results = run_on_throwaway_database(work)
    landing = results["landing"] / results["minimal"]
    search = results["search"] / results["minimal"]
    deep = results["oai_deep"] / results["oai_early"]
    print(
        f"targets: landing {landing:.2f}x <= 3 {'ok' if landing <= 3 else 'MISSED'}, "
        f"search {search:.2f}x <= 5 {'ok' if search <= 5 else 'MISSED'}, "
        f"deep OAI {deep:.2f}x <= 1.5 {'ok' if deep <= 1.5 else 'MISSED'}"
    )
    print(
        "uncached (no target): "
        f"landing {results['landing_uncached'] / results['minimal']:.2f}x, "
        f"search {results['search_uncached'] / results['minimal']:.2f}x"
    )
    print(f"landing_ratio={landing:.2f} search_ratio={search:.2f} oai_deep_ratio={deep:.2f}")


if __name__ == "__main__":
    main()
