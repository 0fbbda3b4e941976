"""Reads for the dataset search and the crawler files.

Which records a visitor may see comes from :func:`repository.access.records_visible_to`
only; this module narrows that set (query, facets, not withdrawn) and never looks at
``metadata_access`` itself.
"""

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import BooleanField, Case, CharField, Count, F, Func, Max, Q, QuerySet, When
from django.db.models.functions import ExtractYear
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.models import bilingual
from core.vocabularies import DATA_TYPES, FUNDERS, RESEARCH_FIELDS, SAME_AS_PROJECT, Tier
from repository.access import records_visible_to

PAGE_SIZE = 20
MAX_TERMS = 10

# Columns the free-text query looks in; dmp/migrations/0004 indexes each with pg_trgm, and
# dmp/migrations/0007 keeps the bigrams of their concatenation (in this order) in a stored
# generated column. PostgreSQL refuses to change the type of (or drop) a column a generated
# column reads: a migration that alters one of these must drop ``search_bigrams`` first and
# add it again after (as 0007 does).
SEARCHED_FIELDS = (
    "title_ja",
    "title_en",
    "description_ja",
    "description_en",
    "keywords_ja",
    "keywords_en",
    "data_number",
)

BIGRAM_COLUMN = "search_bigrams"

NO_STREAM = "-"  # stands in for a blank funding stream code in a program value


def normalize_query(query: str) -> str:
    """NFKC folds full-width Latin and digits (ｍｅｔｈａｎｅ, ２０２５) and the ideographic
    space into their ordinary forms, and half-width katakana into full-width."""
    return " ".join(unicodedata.normalize("NFKC", query or "").split())


def query_terms(query: str) -> list[str]:
    return normalize_query(query).split()[:MAX_TERMS]


def _term_condition(term: str) -> Q:
    condition = Q()
    for name in SEARCHED_FIELDS:
        condition |= Q(**{f"{name}__icontains": term})
    return condition


class BigramPrefilter(Func):
    """True when the searched columns hold every two-character substring of ``term``.

    A superset of :func:`_term_condition` (a column whose ``UPPER`` contains ``UPPER(term)``
    puts all of the term's bigrams into the upper-cased concatenation). The record's
    bigrams are stored in the generated column ``search_bigrams`` (dmp/migrations/0007,
    GIN-indexed), so a common term compares two small arrays per row and a rare one is
    found through the index; only the term's own bigrams are computed, once. PostgreSQL
    only; useless for a one-character term (it has no bigram).
    """

    output_field = BooleanField()

    def __init__(self, term: str):
        super().__init__(F("pk"))  # resolved to the record table's alias, whatever it is
        self.term = term

    def as_sql(self, compiler, connection, **extra_context):
        (record_id,) = self.get_source_expressions()
        table = compiler.quote_name_unless_alias(record_id.alias)
        column = connection.ops.quote_name(BIGRAM_COLUMN)
        return f"{table}.{column} @> kura_bigrams(UPPER(%s))", (self.term,)


def _term_filters(term: str) -> list:
    """The conditions a record must meet to match ``term``: the exact ``icontains`` checks,
    preceded on PostgreSQL by the bigram prefilter that lets an index find the candidates."""
    if connection.vendor == "postgresql" and len(term) >= 2:
        return [BigramPrefilter(term), _term_condition(term)]
    return [_term_condition(term)]


def _program_value(funder: str, funding_stream_code: str) -> str:
    return f"{funder}/{funding_stream_code or NO_STREAM}"


def _parse_year(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) < 10000 else None


def _parse_program(value: str) -> tuple[str, str] | None:
    funder, _sep, code = value.partition("/")
    if funder not in FUNDERS or not code:
        return None
    return funder, "" if code == NO_STREAM else code


@dataclass(frozen=True)
class FacetSpec:
    """One facet: its URL parameter, how to filter by a value, how to count values."""

    param: str
    title: object
    valid: object  # value -> bool
    condition: object  # value -> Q
    group_by: tuple[str, ...]


FACETS = (
    FacetSpec(
        "field",
        _("Research field"),
        lambda v: v in RESEARCH_FIELDS,
        lambda v: Q(effective_field=v),
        ("effective_field",),
    ),
    FacetSpec(
        "type",
        _("Data type"),
        lambda v: v in DATA_TYPES,
        lambda v: Q(data_type=v),
        ("data_type",),
    ),
    FacetSpec(
        "funder",
        _("Funder"),
        lambda v: v in FUNDERS,
        lambda v: Q(project__funder=v),
        ("project__funder",),
    ),
    FacetSpec(
        "program",
        _("Program"),
        lambda v: _parse_program(v) is not None,
        lambda v: Q(
            project__funder=_parse_program(v)[0],
            project__funding_stream_code=_parse_program(v)[1],
        ),
        ("project__funder", "project__funding_stream_code"),
    ),
    FacetSpec(
        "access",
        _("Access rights"),
        lambda v: v in Tier.values,
        lambda v: Q(access_rights=v),
        ("access_rights",),
    ),
    FacetSpec(
        "year",
        _("Year"),
        lambda v: _parse_year(v) is not None,
        lambda v: Q(date_issued_updated__year=_parse_year(v)),
        ("year",),
    ),
)
FACET_PARAMS = tuple(spec.param for spec in FACETS)


@dataclass
class FacetValue:
    value: str
    label: str
    count: int
    selected: bool


@dataclass
class Facet:
    param: str
    title: str
    values: list[FacetValue]
    selected: str | None


class CappedPaginator(Paginator):
    """Counts matches only up to ``cap``: past it, ``count`` is ``cap`` and ``capped`` is
    true ("more than …"), and the count query stops at the first ``cap + 1`` matches, so a
    term found in every record costs the same at a million records as at ten thousand (as
    OpenSearch's ``track_total_hits`` does)."""

    def __init__(self, object_list, per_page, *, cap: int):
        super().__init__(object_list, per_page)
        self.cap = cap

    @cached_property
    def _capped_count(self) -> int:
        return self.object_list.order_by().values("pk")[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._capped_count, self.cap)

    @property
    def capped(self) -> bool:
        return self._capped_count > self.cap


@dataclass
class DatasetSearch:
    query: str
    terms: list[str]
    selected: dict[str, str]
    page: Page  # the matches whose title is not the query, newest first
    facets: list[Facet] = field(default_factory=list)
    # Matches whose title is the query (either language, any case): first, on page 1.
    title_matches: list = field(default_factory=list)
    title_match_count: int = 0

    @property
    def count(self) -> int:
        if self.page.paginator.capped:  # "more than" the cap, whatever came first
            return self.page.paginator.count
        return self.page.paginator.count + self.title_match_count

    @property
    def results(self) -> list:
        """The records this page lists, in order."""
        return [*self.title_matches, *self.page]

    @property
    def start_index(self) -> int:
        """The number of this page's first record in the whole list."""
        if self.page.number == 1:
            return 1
        return self.page.start_index() + self.title_match_count

    @property
    def capped(self) -> bool:
        """More than ``count`` records match; the facet counts are those of the first
        ``count`` in the order shown (lower bounds)."""
        return self.page.paginator.capped


def _with_facet_columns(records: QuerySet) -> QuerySet:
    return records.annotate(
        effective_field=Case(
            When(data_research_field=SAME_AS_PROJECT, then=F("project__research_field")),
            default=F("data_research_field"),
            output_field=CharField(),
        ),
    )


def published_records(*, user) -> QuerySet:
    """Records ``user`` may read that have not been withdrawn."""
    return records_visible_to(user).filter(withdrawn_at__isnull=True)


def selected_facets(params: Mapping[str, str]) -> dict[str, str]:
    """The valid facet selections among request parameters (anything else is ignored)."""
    selected = {}
    for spec in FACETS:
        value = (params.get(spec.param) or "").strip()
        if value and spec.valid(value):
            selected[spec.param] = value
    return selected


def dataset_search(
    *, user, query: str = "", params: Mapping[str, str] | None = None, page_number=1
) -> DatasetSearch:
    """One page of the datasets ``user`` may read that match ``query`` (every term, in any
    searched field) and the facet selections in ``params``, with facet counts over the whole
    result set. Runs a fixed number of queries: one for the records titled as the query,
    one count, one page, one for all facets.

    Past ``KURA_SEARCH_COUNT_CAP`` matches the count says "more than" and the facets count
    the first that many found (:class:`CappedPaginator`): the cost is bounded by the cap, not by
    the number of records."""
    params = params or {}
    terms = query_terms(query)
    selected = selected_facets(params)

    records = _with_facet_columns(published_records(user=user))
    for term in terms:
        records = records.filter(*_term_filters(term))
    for spec in FACETS:
        if spec.param in selected:
            records = records.filter(spec.condition(selected[spec.param]))

    # Relevance: records whose title is the query come first (found through the indexes
    # of dmp/migrations/0008, so the rest keeps its cheap newest-first order).
    phrase = normalize_query(query)
    titled = []
    if terms:
        titled = list(
            records.filter(Q(title_ja__iexact=phrase) | Q(title_en__iexact=phrase))
            .select_related("project")
            .order_by("-updated_at", "-id")[:PAGE_SIZE]
        )
    rest = records.exclude(pk__in=[record.pk for record in titled]) if titled else records
    ordered = rest.select_related("project").order_by("-updated_at", "-id")
    cap = settings.KURA_SEARCH_COUNT_CAP
    page = CappedPaginator(ordered, PAGE_SIZE, cap=cap).get_page(page_number)
    title_matches = titled if page.number == 1 else []
    for record in (*title_matches, *page):
        record.landing_path = dataset_path(record.pk)
        record.data_type_label = _label("type", record.data_type)
    search = DatasetSearch(
        query=phrase,
        terms=terms,
        selected=selected,
        page=page,
        title_matches=title_matches,
        title_match_count=len(titled),
    )
    if search.capped:  # facets of the first ``cap`` matches found, not of every record
        combinations = _first_combinations(records.order_by(), cap)
    else:
        combinations = _combinations(records)
    search.facets = [_facet(spec, combinations, selected.get(spec.param)) for spec in FACETS]
    return search


def _combinations(records: QuerySet) -> list[dict]:
    """How many of ``records`` have each combination of facet values: one GROUP BY query
    over all the facet columns at once (the matching rows are found once, not per facet)."""
    columns = _facet_columns()
    return list(
        records.order_by()
        .annotate(year=ExtractYear("date_issued_updated"))
        .values(*columns)
        .annotate(
            n=Count("pk"),
            name_ja=Max("project__program_name_ja"),
            name_en=Max("project__program_name_en"),
        )
    )


def _first_combinations(records: QuerySet, cap: int) -> list[dict]:
    """:func:`_combinations` of the first ``cap`` of ``records`` that the database finds
    (in no particular order: by whichever index or scan finds them fastest), grouped in one
    query over exactly those rows, so that its cost does not depend on how many match."""
    columns = _facet_columns()
    aliases = {f"facet_{n}": column for n, column in enumerate(columns)}
    first = (
        records.annotate(
            year=ExtractYear("date_issued_updated"),
            program_ja=F("project__program_name_ja"),
            program_en=F("project__program_name_en"),
        )
        .annotate(**{alias: F(column) for alias, column in aliases.items()})
        .values(*aliases, "program_ja", "program_en")[:cap]
    )
    inner, params = first.query.sql_with_params()
    quote = connection.ops.quote_name
    grouped = ", ".join(quote(alias) for alias in aliases)
    # Only our own names and Django's compiled SQL; the values stay parameters.
    maxima = f"MAX({quote('program_ja')}), MAX({quote('program_en')})"
    sql = f"SELECT {grouped}, COUNT(*), {maxima} FROM ({inner}) AS t GROUP BY {grouped}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    names = [*columns, "n", "name_ja", "name_en"]
    return [dict(zip(names, row, strict=True)) for row in rows]


def _facet_columns() -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for spec in FACETS for c in spec.group_by))


def _grouped(combinations: list[dict], spec: FacetSpec) -> list[dict]:
    """``value``, ``label`` and ``n`` for one facet, summed over the combinations."""
    counts: dict[str, int] = {}
    names: dict[str, tuple[str, str]] = {}
    for row in combinations:
        if spec.param == "year":
            if row["year"] is None:
                continue
            value = str(row["year"])
        elif spec.param == "program":
            value = _program_value(row["project__funder"], row["project__funding_stream_code"])
            name_ja, name_en = names.get(value, ("", ""))
            names[value] = (max(name_ja, row["name_ja"] or ""), max(name_en, row["name_en"] or ""))
        else:
            value = str(row[spec.group_by[0]])
        counts[value] = counts.get(value, 0) + row["n"]
    rows = []
    for value, n in counts.items():
        if spec.param == "program":
            label = bilingual(*names[value]) or value
        else:
            label = _label(spec.param, value)
        rows.append({"value": value, "label": label, "n": n})
    return rows


def _label(param: str, value: str) -> str:
    vocabulary = {"field": RESEARCH_FIELDS, "type": DATA_TYPES, "funder": FUNDERS}.get(param)
    if vocabulary is not None:
        return vocabulary[value].label() if value in vocabulary else value
    if param == "access":
        return str(Tier(value).label) if value in Tier.values else value
    return value


def _facet(spec: FacetSpec, combinations: list[dict], selected: str | None) -> Facet:
    rows = _grouped(combinations, spec)
    if spec.param == "year":
        rows.sort(key=lambda r: r["value"], reverse=True)
    else:
        rows.sort(key=lambda r: (-r["n"], r["label"]))
    values = [
        FacetValue(row["value"], row["label"], row["n"], row["value"] == selected) for row in rows
    ]
    return Facet(spec.param, str(spec.title), values, selected)


def sitemap_records() -> QuerySet:
    """Landing pages an anonymous crawler may read, oldest first (a stable order)."""
    return published_records(user=AnonymousUser()).order_by("pk").only("pk", "updated_at")


def dataset_path(record_id: int) -> str:
    """The landing page of a record (its view belongs to ``repository.discovery.public``)."""
    return reverse("dataset-landing", kwargs={"record_id": record_id})
