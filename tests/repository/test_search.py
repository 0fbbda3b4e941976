"""Dataset search (/datasets/), sitemap.xml and robots.txt."""

import datetime
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Q
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.vocabularies import SAME_AS_PROJECT, MetadataAccess, Tier
from dmp.models import DmpRecord
from repository.discovery.search import selectors
from tests.factories import DmpRecordFactory, MembershipFactory, ProjectFactory
from tests.test_settings import PROFILE_VARIABLES, ROOT

pytestmark = pytest.mark.django_db

OPEN = MetadataAccess.OPEN


def open_record(**fields) -> DmpRecord:
    return DmpRecordFactory(metadata_access=OPEN, **fields)


def result_ids(client, **params) -> list[int]:
    response = client.get("/datasets/", params)
    assert response.status_code == 200
    return [record.pk for record in response.context["search"].results]


def search_ids(query: str = "", **params) -> set[int]:
    search = selectors.dataset_search(user=AnonymousUser(), query=query, params=params)
    return {record.pk for record in search.results}


# --- Matching ------------------------------------------------------------------------------


def test_japanese_substring_matches_inside_a_title(client):
    assert connection.vendor == "postgresql"
    soil = open_record(title_ja="農地土壌メタン発生量の観測データ")
    open_record(title_ja="海洋プランクトン画像")

    assert result_ids(client, q="土壌") == [soil.pk]
    assert result_ids(client, q="土壌メタン") == [soil.pk]


def test_the_trigram_indexes_exist_on_postgresql():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'dmp_dmprecord' "
            "AND indexdef LIKE '%%gin_trgm_ops%%'"
        )
        names = {row[0] for row in cursor.fetchall()}
    assert {f"dmprecord_{c}_trgm" for c in selectors.SEARCHED_FIELDS} <= names


def test_the_search_condition_can_use_the_trigram_indexes():
    """Django writes icontains as UPPER(col::text) LIKE …; the indexes are on that expression."""
    open_record(title_ja="農地土壌メタン")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = (
        DmpRecord.objects.filter(selectors._term_condition("土壌メタン"))
        .order_by()
        .only("pk")
        .explain()
    )

    for column in selectors.SEARCHED_FIELDS:
        assert f"dmprecord_{column}_trgm" in plan


@pytest.mark.parametrize(
    ("field", "value", "query"),
    [
        ("title_en", "Methane flux from paddy fields", "methane"),
        ("description_en", "Weekly chamber measurements of METHANE.", "Methane"),
        ("keywords_en", "methane, rice", "METHANE"),
        ("description_ja", "水田におけるメタンの週次測定", "メタン"),
        ("keywords_ja", "メタン,水田", "メタン"),
    ],
)
def test_english_and_japanese_words_match_titles_descriptions_and_keywords(field, value, query):
    hit = open_record(**{field: value})
    open_record(title_en="Ocean plankton images")

    assert search_ids(query) == {hit.pk}


def test_every_term_must_match():
    both = open_record(title_en="Methane flux", keywords_en="paddy")
    open_record(title_en="Methane in lakes")
    open_record(title_en="Paddy irrigation")

    assert search_ids("methane paddy") == {both.pk}
    # The ideographic space separates terms too.
    assert search_ids("methane\u3000paddy") == {both.pk}


def test_full_width_query_is_normalized():
    hit = open_record(title_en="Methane flux 2025")
    open_record(title_en="Ocean plankton")

    assert search_ids("ｍｅｔｈａｎｅ") == {hit.pk}
    assert search_ids("２０２５") == {hit.pk}


def test_like_wildcards_in_a_query_are_literal():
    open_record(title_en="Plain title")

    assert search_ids("%") == set()
    assert search_ids("_") == set()


# --- Who sees what -------------------------------------------------------------------------


@pytest.fixture
def mixed_visibility():
    return {
        access: DmpRecordFactory(
            metadata_access=access,
            title_en=f"Soil survey {access}",
            access_rights=Tier.PUBLIC,
            data_type="survey data",
            date_issued_updated=datetime.date(2024, 5, 1),
        )
        for access in MetadataAccess.values
    }


def test_records_with_closed_or_restricted_metadata_never_show(client, mixed_visibility):
    response = client.get("/datasets/", {"q": "soil"})

    ids = [record.pk for record in response.context["search"].page]
    assert ids == [mixed_visibility[OPEN].pk]
    assert response.context["search"].count == 1
    for facet in response.context["search"].facets:
        assert sum(value.count for value in facet.values) == 1, facet.param
    body = response.content.decode()
    assert "Soil survey open" in body
    assert "Soil survey closed" not in body
    assert "Soil survey restricted" not in body


def test_members_find_their_own_closed_records(client, mixed_visibility):
    closed = mixed_visibility[MetadataAccess.CLOSED]
    member = MembershipFactory(project=closed.project).user
    client.force_login(member)

    assert closed.pk in result_ids(client, q="soil")


def test_withdrawn_records_are_left_out(client):
    kept = open_record(title_en="Soil A")
    open_record(title_en="Soil B", withdrawn_at=timezone.now())

    assert result_ids(client, q="soil") == [kept.pk]


# --- Facets --------------------------------------------------------------------------------


@pytest.fixture
def seeded_mix():
    life = ProjectFactory(funder="JST", research_field="189", funding_stream_code="JPMJM")
    env = ProjectFactory(
        funder="NEDO", research_field="389", funding_stream_code="", program_name_en="Green"
    )
    rows = [
        (life, SAME_AS_PROJECT, "dataset", Tier.PUBLIC, datetime.date(2024, 1, 5)),
        (life, "289", "dataset", Tier.SHARED, datetime.date(2024, 6, 1)),
        (life, SAME_AS_PROJECT, "survey data", Tier.PUBLIC, datetime.date(2025, 3, 3)),
        (env, SAME_AS_PROJECT, "simulation data", Tier.NON_SHARED, None),
        (env, "189", "dataset", Tier.EMBARGOED, datetime.date(2025, 8, 8)),
        (env, SAME_AS_PROJECT, "dataset", Tier.PUBLIC, datetime.date(2023, 2, 2)),
    ]
    for project, field, data_type, access, date in rows:
        open_record(
            project=project,
            title_en="Soil sample",
            data_research_field=field,
            data_type=data_type,
            access_rights=access,
            date_issued_updated=date,
        )
    # Noise that must not be counted: closed metadata and withdrawn records.
    DmpRecordFactory(project=life, title_en="Soil sample", metadata_access=MetadataAccess.CLOSED)
    open_record(project=env, title_en="Soil sample", withdrawn_at=timezone.now())
    return life, env


def expected_counts(records) -> dict[str, dict[str, int]]:
    """Each facet counted straight from the ORM, without the selector's code."""
    records = list(records.select_related("project"))
    return {
        "field": Counter(
            r.project.research_field
            if r.data_research_field == SAME_AS_PROJECT
            else r.data_research_field
            for r in records
        ),
        "type": dict(
            DmpRecord.objects.filter(pk__in=[r.pk for r in records])
            .values_list("data_type")
            .annotate(n=Count("pk"))
            .order_by()
        ),
        "funder": Counter(r.project.funder for r in records),
        "program": Counter(
            f"{r.project.funder}/{r.project.funding_stream_code or '-'}" for r in records
        ),
        "access": Counter(r.access_rights for r in records),
        "year": Counter(str(r.date_issued_updated.year) for r in records if r.date_issued_updated),
    }


def facet_counts(search) -> dict[str, dict[str, int]]:
    return {f.param: {v.value: v.count for v in f.values} for f in search.facets}


def visible_soil():
    return DmpRecord.objects.filter(
        metadata_access=OPEN, withdrawn_at__isnull=True, title_en__icontains="soil"
    )


def test_facet_counts_match_the_database(seeded_mix):
    search = selectors.dataset_search(user=AnonymousUser(), query="soil")

    assert search.count == 6
    assert facet_counts(search) == {k: dict(v) for k, v in expected_counts(visible_soil()).items()}
    assert facet_counts(search)["field"] == {"189": 3, "289": 1, "389": 2}


@pytest.mark.parametrize(
    ("params", "narrowing"),
    [
        (
            {"field": "189"},
            Q(data_research_field="189")
            | Q(data_research_field=SAME_AS_PROJECT, project__research_field="189"),
        ),
        ({"type": "dataset"}, Q(data_type="dataset")),
        ({"funder": "NEDO"}, Q(project__funder="NEDO")),
        ({"program": "JST/JPMJM"}, Q(project__funder="JST", project__funding_stream_code="JPMJM")),
        ({"program": "NEDO/-"}, Q(project__funder="NEDO", project__funding_stream_code="")),
        ({"access": "public"}, Q(access_rights="public")),
        ({"year": "2024"}, Q(date_issued_updated__year=2024)),
        ({"type": "dataset", "access": "public"}, Q(data_type="dataset", access_rights="public")),
    ],
)
def test_selecting_facets_filters_and_recounts(seeded_mix, params, narrowing):
    expected = visible_soil().filter(narrowing)

    search = selectors.dataset_search(user=AnonymousUser(), query="soil", params=params)

    assert {r.pk for r in search.page} == set(expected.values_list("pk", flat=True))
    assert search.count == expected.count() > 0
    assert facet_counts(search) == {k: dict(v) for k, v in expected_counts(expected).items()}
    for param, value in params.items():
        facet = next(f for f in search.facets if f.param == param)
        assert [v.value for v in facet.values if v.selected] == [value]


def test_invalid_facet_values_are_ignored(seeded_mix):
    search = selectors.dataset_search(
        user=AnonymousUser(), query="soil", params={"year": "abc", "type": "nonsense"}
    )
    assert search.count == 6
    assert search.selected == {}


def test_labels_follow_the_language(client, seeded_mix):
    english = client.get("/datasets/", {"q": "soil"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    japanese = client.get("/datasets/", {"q": "soil"}, HTTP_ACCEPT_LANGUAGE="ja").content.decode()

    assert "Life Science" in english
    assert "ライフサイエンス" in japanese
    assert "Japan Science and Technology Agency" in english
    assert "国立研究開発法人科学技術振興機構" in japanese


def test_facet_links_keep_the_query_and_other_facets(client, seeded_mix):
    response = client.get("/datasets/", {"q": "soil", "access": "public"})

    facet = next(f for f in response.context["search"].facets if f.param == "type")
    url = next(v.url for v in facet.values if v.value == "dataset")
    assert "q=soil" in url
    assert "access=public" in url
    assert "type=dataset" in url
    followed = client.get(f"/datasets/{url}")
    assert (
        followed.context["search"].count
        == visible_soil().filter(access_rights="public", data_type="dataset").count()
    )


# --- Pages ---------------------------------------------------------------------------------


def test_pages_are_disjoint_and_cover_every_result(client):
    project = ProjectFactory()
    records = [open_record(project=project, title_en=f"Soil {n}") for n in range(45)]
    # Same updated_at for many rows: the id breaks the tie, so pages stay stable.
    DmpRecord.objects.filter(pk__in=[r.pk for r in records[:30]]).update(updated_at=timezone.now())

    pages = [result_ids(client, q="soil", page=n) for n in (1, 2, 3)]

    assert [len(p) for p in pages] == [20, 20, 5]
    seen = [pk for page in pages for pk in page]
    assert len(seen) == len(set(seen))
    assert set(seen) == {r.pk for r in records}
    assert result_ids(client, q="soil", page=1) == pages[0]


def test_page_links_keep_the_query_and_facets(client):
    for n in range(25):
        open_record(title_en=f"Soil {n}", data_type="survey data")

    body = client.get("/datasets/", {"q": "soil", "type": "survey data"}).content.decode()

    next_link = re.search(r'rel="next" href="([^"]+)"', body).group(1)
    assert "q=soil" in next_link
    assert "type=survey+data" in next_link
    assert next_link.endswith("page=2")


def test_results_show_what_a_visitor_needs(client):
    project = ProjectFactory(name_en="Paddy carbon project")
    record = open_record(
        project=project,
        title_en="Methane flux",
        description_en="Weekly chamber measurements.",
        access_rights=Tier.PUBLIC,
        data_type="observational data",
        date_issued_updated=datetime.date(2025, 4, 1),
    )

    body = client.get("/datasets/", {"q": "methane"}, HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f'href="/datasets/{record.pk}/"' in body
    assert "Weekly chamber measurements." in body
    assert "Paddy carbon project" in body
    assert "tier-public" in body
    assert "observational data" in body
    assert "2025" in body
    assert "1 dataset" in body


@pytest.mark.parametrize("matching", [3, 30])
def test_search_runs_a_constant_number_of_queries(client, django_assert_num_queries, matching):
    for n in range(matching):
        open_record(
            project=ProjectFactory(),
            title_en=f"Soil {n}",
            date_issued_updated=datetime.date(2020 + n % 5, 1, 1),
        )
    # The statement timeout set and put back, the records titled as the query (none here),
    # one count, one page, one GROUP BY for all the facets.
    with django_assert_num_queries(6) as captured:
        response = client.get("/datasets/", {"q": "soil"})
    assert response.context["search"].count == matching
    assert captured.captured_queries[0]["sql"].startswith("SET statement_timeout = ")
    assert captured.captured_queries[-1]["sql"] == "SET statement_timeout = DEFAULT"


# --- Crawlers ------------------------------------------------------------------------------


def test_sitemap_lists_exactly_the_open_records(client, mixed_visibility):
    withdrawn = open_record(withdrawn_at=timezone.now())
    opened = mixed_visibility[OPEN]

    response = client.get("/sitemap.xml")

    assert response.status_code == 200
    body = response.content.decode()
    locations = re.findall(r"<loc>([^<]+)</loc>", body)
    assert locations == [f"http://testserver/datasets/{opened.pk}/"]
    assert f"/datasets/{withdrawn.pk}/" not in body
    assert f"<lastmod>{timezone.localtime(opened.updated_at):%Y-%m-%d}<" in body


def test_robots_txt(client):
    response = client.get("/robots.txt")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert lines[:2] == ["User-agent: *", "Allow: /"]
    for path in ("/admin/", "/api/", "/accounts/", "/review/", "/projects/*/upload/"):
        assert f"Disallow: {path}" in lines
    assert "Sitemap: http://testserver/sitemap.xml" in lines


# --- Embedded profile ----------------------------------------------------------------------


def test_the_migrations_run_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true",  # development mode, as bin/run sets it (the default is production)
        KURA_VAR_DIR=str(tmp_path),
    )

    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr
    assert "dmp.0004_search_trigram_indexes... OK" in result.stdout
    assert "dmp.0005_search_bigram_index... OK" in result.stdout


# --- Bigram prefilter (PostgreSQL) ---------------------------------------------------------


BIGRAM_CORPUS = [
    {"title_ja": "農地土壌メタン発生量の観測データ", "title_en": "Methane flux from paddy soil"},
    {"title_ja": "土", "description_en": "Soil cores, weekly"},
    {"title_ja": "壌土の粒径", "keywords_ja": "土壌,粒径", "keywords_en": "soil, grain size"},
    {"description_ja": "水田におけるメタンの週次測定", "keywords_en": "METHANE,rice"},
    {"title_ja": "海洋プランクトン画像", "title_en": "Ocean plankton images"},
    {"title_ja": "土壌", "title_en": "x"},
    {"title_ja": "森林", "title_en": "Forest 100% cover_2025", "data_number": "JPMJ-2025-07"},
    {"title_ja": "海", "title_en": "洋"},  # "海洋" spans two columns: no match
    {"title_ja": "ａｂ土", "description_ja": "メタ", "description_en": "ane"},
]

BIGRAM_QUERIES = [
    "土",
    "土壌",
    "壌土",
    "土壌メタン",
    "メタン",
    "メ",
    "海洋",
    "海",
    "soil",
    "SOIL",
    "So",
    "s",
    "methane",
    "Methane 土壌",
    "土 soil",
    "土壌 methane paddy",
    "100%",
    "r_2",
    "%",
    "_",
    "jpmj-2025",
    "ｍｅｔｈａｎｅ",
    "ab",
    "ab土",
    "タa",
    "no-such-thing",
    "存在しない",
]


def plain_icontains_ids(query: str) -> set[int]:
    records = DmpRecord.objects.all()
    for term in selectors.query_terms(query):
        records = records.filter(selectors._term_condition(term))
    return set(records.values_list("pk", flat=True))


def prefiltered_ids(query: str) -> set[int]:
    records = DmpRecord.objects.all()
    for term in selectors.query_terms(query):
        records = records.filter(*selectors._term_filters(term))
    return set(records.values_list("pk", flat=True))


def test_the_bigram_prefilter_is_used_on_postgresql_for_two_characters_or_more():
    assert [type(c) for c in selectors._term_filters("土壌")] == [selectors.BigramPrefilter, Q]
    assert [type(c) for c in selectors._term_filters("土")] == [Q]


@pytest.mark.parametrize("query", BIGRAM_QUERIES)
def test_the_bigram_prefilter_never_changes_the_results(query):
    for fields in BIGRAM_CORPUS:
        open_record(**fields)

    expected = plain_icontains_ids(query)

    assert prefiltered_ids(query) == expected
    assert selectors.dataset_search(user=AnonymousUser(), query=query).count == len(expected)


def test_the_bigram_prefilter_alone_is_a_superset():
    for fields in BIGRAM_CORPUS:
        open_record(**fields)

    for query in BIGRAM_QUERIES:
        for term in selectors.query_terms(query):
            if len(term) < 2:
                continue
            exact = set(
                DmpRecord.objects.filter(selectors._term_condition(term)).values_list(
                    "pk", flat=True
                )
            )
            candidates = set(
                DmpRecord.objects.filter(selectors.BigramPrefilter(term)).values_list(
                    "pk", flat=True
                )
            )
            assert exact <= candidates, term


def test_the_bigrams_are_a_stored_column_with_a_gin_index():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT is_generated, generation_expression FROM information_schema.columns "
            "WHERE table_name = 'dmp_dmprecord' AND column_name = %s",
            [selectors.BIGRAM_COLUMN],
        )
        (generated, expression) = cursor.fetchone()
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'dmp_dmprecord' "
            "AND indexname = 'dmprecord_search_bigrams'"
        )
        (indexdef,) = cursor.fetchone()
    assert generated == "ALWAYS"
    assert "kura_bigrams" in expression
    for column in selectors.SEARCHED_FIELDS:
        assert column in expression
    assert "gin (search_bigrams)" in indexdef


def test_a_two_character_term_can_use_the_bigram_index():
    open_record(title_ja="農地土壌メタン")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    plan = (
        DmpRecord.objects.filter(*selectors._term_filters("土壌")).order_by().only("pk").explain()
    )

    assert "Bitmap Index Scan on dmprecord_search_bigrams" in plan


def test_a_common_term_evaluates_no_function_per_row():
    """A term in every record makes PostgreSQL read the table; each row then costs a
    comparison with its stored bigrams, never a bigram computation of its columns."""
    project = ProjectFactory()
    for n in range(300):
        open_record(project=project, title_ja=f"観測データ {n}", title_en=f"Dataset {n}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dmp_dmprecord")
    records = selectors.published_records(user=AnonymousUser())

    plan = records.filter(*selectors._term_filters("データ")).order_by().explain(verbose=True)

    assert "search_bigrams @> '{" in plan  # the term's bigrams, computed once
    assert "kura_bigrams" not in plan


def test_the_count_page_and_facet_queries_all_carry_the_prefilter():
    open_record(title_ja="農地土壌メタン")

    with CaptureQueriesContext(connection) as captured:
        search = selectors.dataset_search(user=AnonymousUser(), query="土壌 メタン")

    assert search.count == 1
    assert len(captured.captured_queries) == 4  # titled as the query, count, page, facets
    for query in captured.captured_queries:
        assert query["sql"].count('"search_bigrams" @> kura_bigrams(UPPER(') == 2, query["sql"]


# --- Bounded cost ---------------------------------------------------------------------------


def test_past_the_cap_the_count_says_more_than_and_the_facets_count_the_first(client, settings):
    settings.KURA_SEARCH_COUNT_CAP = 5
    project = ProjectFactory()
    newest = [
        open_record(project=project, title_en=f"Capped soil {n}", data_type="dataset")
        for n in range(7)
    ]
    DmpRecord.objects.filter(pk__in=[r.pk for r in newest[:2]]).update(data_type="survey data")

    response = client.get("/datasets/", {"q": "capped soil"})

    search = response.context["search"]
    assert search.capped and search.count == 5
    body = response.content.decode()
    assert "More than 5 datasets" in body
    data_types = next(f for f in search.facets if f.param == "type")
    assert sum(v.count for v in data_types.values) == 5  # the first five found
    assert {v.value for v in data_types.values} <= {"dataset", "survey data"}
    assert search.page.paginator.num_pages == 1

    def labelled(search, param):
        facet = next(f for f in search.facets if f.param == param)
        return [(v.value, v.label) for v in facet.values]

    settings.KURA_SEARCH_COUNT_CAP = 100
    whole = client.get("/datasets/", {"q": "capped soil"}).context["search"]
    assert not whole.capped and whole.count == 7
    for param in ("program", "funder", "year", "access", "field"):
        assert labelled(search, param) == labelled(whole, param), param


def test_up_to_the_cap_the_count_is_exact(client, settings):
    settings.KURA_SEARCH_COUNT_CAP = 5
    project = ProjectFactory()
    for n in range(5):
        open_record(project=project, title_en=f"Exact soil {n}")

    search = client.get("/datasets/", {"q": "exact soil"}).context["search"]

    assert search.count == 5 and not search.capped


@pytest.mark.django_db(transaction=True)
def test_a_public_query_past_its_timeout_answers_503_and_frees_the_connection(
    client, settings, monkeypatch
):
    settings.KURA_PUBLIC_QUERY_TIMEOUT_MS = 50

    def slow_search(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")

    monkeypatch.setattr(selectors, "dataset_search", slow_search)

    response = client.get("/datasets/", {"q": "anything"})

    assert response.status_code == 503
    assert response["Retry-After"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "50ms"  # put back for whatever runs next


def test_uncached_searches_are_limited_per_address(settings):
    settings.KURA_SEARCH_THROTTLE = "2/minute"
    cache.delete_many(["throttle_search_192.0.2.77", "throttle_search_192.0.2.78"])
    visitor = Client(REMOTE_ADDR="192.0.2.77")
    neighbour = Client(REMOTE_ADDR="192.0.2.78")

    answers = [visitor.get("/datasets/", {"q": f"fresh {n}"}) for n in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 1 <= int(answers[2]["Retry-After"]) <= 60
    assert "Too many searches" in answers[2].content.decode()
    assert neighbour.get("/datasets/", {"q": "fresh 9"}).status_code == 200


def test_searches_served_from_the_page_cache_are_not_counted(settings):
    settings.KURA_PAGE_CACHE_SECONDS = 300
    settings.KURA_SEARCH_THROTTLE = "1/minute"
    cache.delete("throttle_search_192.0.2.79")
    visitor = Client(REMOTE_ADDR="192.0.2.79")

    answers = [visitor.get("/datasets/", {"q": "cached again"}) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert visitor.get("/datasets/", {"q": "another"}).status_code == 429


def test_signed_in_searchers_are_counted_each_and_ipv6_by_its_network(settings):
    from accounts.throttling import SearchRateThrottle

    settings.KURA_SEARCH_THROTTLE = "1/minute"
    one, other = MembershipFactory().user, MembershipFactory().user
    cache.delete_many(
        [f"throttle_search_user-{one.pk}", f"throttle_search_user-{other.pk}"]
        + ["throttle_search_2001:db8:1:2::/64"]
    )
    first, second = Client(REMOTE_ADDR="192.0.2.90"), Client(REMOTE_ADDR="192.0.2.90")
    first.force_login(one)
    second.force_login(other)

    assert first.get("/datasets/", {"q": "a"}).status_code == 200
    assert second.get("/datasets/", {"q": "b"}).status_code == 200  # same address, own count
    assert first.get("/datasets/", {"q": "c"}).status_code == 429

    neighbours = [Client(REMOTE_ADDR=f"2001:db8:1:2::{n}") for n in (1, 2)]
    assert neighbours[0].get("/datasets/", {"q": "d"}).status_code == 200
    assert neighbours[1].get("/datasets/", {"q": "e"}).status_code == 429
    assert (
        SearchRateThrottle()
        .get_cache_key(neighbours[1].get("/").wsgi_request, None)
        .endswith("2001:db8:1:2::/64")
    )


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path",
    [
        "/oai?verb=ListRecords&metadataPrefix=oai_dc",
        "/oai?verb=ListIdentifiers&metadataPrefix=jpcoar_2.0",
        "/datasets/{pk}/export/datacite-json",
        "/datasets/{pk}/",
        "/sitemap.xml",
    ],
)
def test_every_public_read_of_the_records_has_the_statement_timeout(client, settings, path):
    """Harvesters, exports and crawlers too: a slow query of theirs is cancelled (503 with
    Retry-After), and the connection's limit is put back afterwards."""
    settings.KURA_PUBLIC_QUERY_TIMEOUT_MS = 50
    record = open_record(title_en="Timed dataset")

    def slow(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith("SELECT") and "dmp_dmprecord" in sql:
            execute("SELECT pg_sleep(2)", None, False, context)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(slow):
        response = client.get(path.format(pk=record.pk))

    assert response.status_code == 503
    assert response["Retry-After"]
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "50ms"


def test_a_record_titled_as_the_query_comes_first_then_the_newest(client):
    project = ProjectFactory()
    titled = open_record(project=project, title_en="Soil Moisture", title_ja="")
    newer = [open_record(project=project, title_en=f"Soil moisture map {n}") for n in range(3)]
    DmpRecord.objects.filter(pk=titled.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=400)
    )

    search = client.get("/datasets/", {"q": "soil moisture"}).context["search"]

    assert [r.pk for r in search.results] == [titled.pk, *[r.pk for r in reversed(newer)]]
    assert search.count == 4
    # Listed once, and the title match is found through its index, not by a scan.
    assert len({r.pk for r in search.results}) == 4
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM dmp_dmprecord WHERE UPPER(title_en::text) = UPPER(%s)",
            ["soil moisture"],
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = on")
    assert "dmprecord_title_en_upper_idx" in plan


def test_title_matches_are_counted_once_across_pages(client, settings, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    project = ProjectFactory()
    titled = open_record(project=project, title_en="Leaf area")
    others = [open_record(project=project, title_en=f"Leaf area index {n}") for n in range(3)]

    first = client.get("/datasets/", {"q": "leaf area"}).context["search"]
    second = client.get("/datasets/", {"q": "leaf area", "page": 2}).context["search"]

    listed = [r.pk for r in first.results] + [r.pk for r in second.results]
    assert listed[0] == titled.pk
    assert sorted(listed) == sorted([titled.pk, *[r.pk for r in others]])
    assert first.count == second.count == 4
    assert second.start_index == len(first.results) + 1
