"""The Cabinet Office common metadata items, described once.

Used by the CSV export and import (:mod:`dmp.exports`, :mod:`dmp.records_import`), the
coverage page and the forms. Two parts (docs/metadata.md, "Common metadata items" and
"CSV columns"):

* :data:`REQUIRED` and :func:`missing_items`: which items a record must have (the
  "Kura" column of the items table);
* :data:`CSV_COLUMNS`: the 30 columns of the funders' CSV report, in order, each knowing
  how to read its value from a record (:func:`column_value`) and how to turn a cell back
  into model fields (:func:`column_parse`).
"""

import operator
from dataclasses import dataclass
from enum import StrEnum
from functools import reduce
from typing import Any

from django.db.models import CharField, Q, TextField
from django.utils.translation import gettext_lazy as _

from core.tiers import dated_tiers
from core.vocabularies import (
    ACCESS_RIGHTS,
    DATA_POLICY_FREE,
    DATA_TYPES,
    FUNDERS,
    LICENSES,
    RESEARCH_FIELDS,
    SAME_AS_PROJECT,
    DataManagerType,
    Vocabulary,
)

LANGUAGES = ("ja", "en")


def text_language(language: str | None) -> str:
    """``ja`` or ``en``: which of a pair of ``_ja``/``_en`` fields a language reads."""
    return "ja" if (language or "").startswith("ja") else "en"


# --- Required items ------------------------------------------------------------------------
#
# Each item's rule is written once, as a small tree (:class:`Filled`, :class:`Differs`,
# :class:`AnyOf`, :class:`AllOf`), that answers both for a record in memory
# (:meth:`holds`: forms, imports, exports) and as a database condition (:meth:`condition`:
# counting incomplete records without loading them, for dashboards and program pages).


@dataclass(frozen=True)
class Filled:
    """The field holds a value (not null, not blank)."""

    field: str

    def holds(self, record) -> bool:
        value = getattr(record, self.field)
        return value is not None and value != ""

    def columns(self) -> set[str]:
        return {self.field}

    def condition(self, model) -> Q:
        met = Q(**{f"{self.field}__isnull": False})
        if isinstance(model._meta.get_field(self.field), (CharField, TextField)):
            met &= ~Q(**{self.field: ""})
        return met


@dataclass(frozen=True)
class Differs:
    """The field holds none of ``values`` (null included)."""

    field: str
    values: tuple

    def holds(self, record) -> bool:
        return getattr(record, self.field) not in self.values

    def columns(self) -> set[str]:
        return {self.field}

    def condition(self, model) -> Q:
        return ~Q(**{f"{self.field}__in": self.values})


@dataclass(frozen=True)
class AnyOf:
    parts: tuple

    def holds(self, record) -> bool:
        return any(part.holds(record) for part in self.parts)

    def columns(self) -> set[str]:
        return set().union(*(part.columns() for part in self.parts))

    def condition(self, model) -> Q:
        return reduce(operator.or_, (part.condition(model) for part in self.parts))


@dataclass(frozen=True)
class AllOf:
    parts: tuple

    def holds(self, record) -> bool:
        return all(part.holds(record) for part in self.parts)

    def columns(self) -> set[str]:
        return set().union(*(part.columns() for part in self.parts))

    def condition(self, model) -> Q:
        return reduce(operator.and_, (part.condition(model) for part in self.parts))


def _either(base: str) -> AnyOf:
    """The Japanese or the English value."""
    return AnyOf((Filled(f"{base}_ja"), Filled(f"{base}_en")))


def _individual(rule) -> AnyOf:
    """Required only when the data manager is a person."""
    return AnyOf((Differs("data_man_type", (DataManagerType.INDIVIDUAL,)), rule))


@dataclass(frozen=True)
class Requirement:
    """One required item: ``name`` is what :func:`missing_items` reports; ``fields`` are
    the model fields that can satisfy it (a form marks them); ``rule`` says when it is met."""

    name: str
    label: Any  # lazy translated string
    fields: tuple[str, ...]
    rule: Filled | Differs | AnyOf | AllOf

    def is_met(self, record) -> bool:
        return self.rule.holds(record)


def _single(name: str, label) -> Requirement:
    return Requirement(name, label, (name,), Filled(name))


def _pair(name: str, label) -> Requirement:
    """Either the Japanese or the English value."""
    return Requirement(name, label, (f"{name}_ja", f"{name}_en"), _either(name))


REQUIRED: tuple[Requirement, ...] = (
    _single("data_number", _("Data No.")),
    _pair("title", _("Data title")),
    _single("date_issued_updated", _("Date (issued / updated)")),
    _pair("description", _("Description")),
    _single("data_research_field", _("Research field of the data")),
    _single("data_type", _("Data type")),
    _single("data_policy_free", _("Free or fee-based")),
    _single("data_policy_license", _("Licence")),
    _pair("data_policy_cite", _("Citation information")),
    _single("access_rights", _("Access rights")),
    Requirement(
        "available_date",
        _("Available date (embargoed data)"),
        ("available_date",),
        AnyOf((Differs("access_rights", dated_tiers()), Filled("available_date"))),
    ),
    _pair("repo_information", _("Repository information")),
    _pair("hosting_inst", _("Hosting institution")),
    Requirement(
        "data_man_number",
        _("Data manager's e-Rad researcher number"),
        ("data_man_number",),
        _individual(Filled("data_man_number")),
    ),
    Requirement(
        "data_man_name",
        _("Data manager"),
        ("data_man_name_ja", "data_man_name_en"),
        _individual(_either("data_man_name")),
    ),
    Requirement(
        "data_man_contact",
        _("Data manager's contact (e-mail, or organisation, address and phone number)"),
        (
            "data_man_email",
            "data_man_org_ja",
            "data_man_org_en",
            "data_man_address_ja",
            "data_man_address_en",
            "data_man_tel",
        ),
        # An e-mail address, or organisation + address + phone number.
        AnyOf(
            (
                Filled("data_man_email"),
                AllOf(
                    (_either("data_man_org"), _either("data_man_address"), Filled("data_man_tel"))
                ),
            )
        ),
    ),
)

REQUIREMENTS_BY_NAME = {requirement.name: requirement for requirement in REQUIRED}


def missing_requirements(record) -> list[Requirement]:
    """The required items ``record`` lacks, in the order of the CSV report.

    Reads only the record's own fields: no query, whatever is (or is not) prefetched.
    """
    return [requirement for requirement in REQUIRED if not requirement.is_met(record)]


def incomplete_condition(model) -> Q:
    """A database condition true for the rows of ``model`` (``DmpRecord``) that lack at
    least one required item: the same rules as :func:`missing_requirements`."""
    return ~reduce(operator.and_, (requirement.rule.condition(model) for requirement in REQUIRED))


def requirement_columns() -> set[str]:
    """Every column the required-items rules read (to load no more than that)."""
    return set().union(*(requirement.rule.columns() for requirement in REQUIRED))


def missing_items(record) -> list[str]:
    """Names of the required items ``record`` lacks (see :data:`REQUIRED`): a model field
    name, the base name of a ja/en pair (``title`` for ``title_ja``/``title_en``), or
    ``data_man_contact``."""
    return [requirement.name for requirement in missing_requirements(record)]


# --- CSV columns ---------------------------------------------------------------------------


class Kind(StrEnum):
    TEXT = "text"  # one field, written as it is
    BILINGUAL = "bilingual"  # ``<field>_ja`` in the ja file, ``<field>_en`` in the en file
    TERM = "term"  # a vocabulary code, written as its label in the file's language
    CODE = "code"  # a vocabulary code, written as it is (the licence)
    DATE = "date"  # YYYY-MM-DD
    RESEARCH_FIELD = "research_field"  # a TERM that may defer to the project's field
    CREATOR_NAMES = "creator_names"
    CREATOR_NUMBERS = "creator_numbers"


CREATOR_SEPARATOR = ";"


@dataclass(frozen=True)
class Column:
    number: int
    header_ja: str
    header_en: str
    field: str  # DmpRecord field (or Project field when ``on_project``); base name if BILINGUAL
    kind: Kind
    vocabulary: Vocabulary | None = None
    on_project: bool = False

    def header(self, language: str) -> str:
        return self.header_ja if text_language(language) == "ja" else self.header_en


def _columns(*specs) -> tuple[Column, ...]:
    return tuple(Column(number, *spec) for number, spec in enumerate(specs, start=1))


CSV_COLUMNS: tuple[Column, ...] = _columns(
    ("資金配分機関情報", "Funder", "funder", Kind.TERM, FUNDERS, True),
    (
        "体系的番号におけるプログラム情報コード",
        "Funding stream code in Japan Grant Number",
        "funding_stream_code",
        Kind.TEXT,
        None,
        True,
    ),
    ("プログラム名", "Program name", "program_name", Kind.BILINGUAL, None, True),
    ("体系的番号", "Japan Grant Number", "japan_grant_number", Kind.TEXT, None, True),
    ("プロジェクト名", "Project name", "name", Kind.BILINGUAL, None, True),
    ("データNo.", "Data No.", "data_number", Kind.TEXT),
    ("データの名称", "Title", "title", Kind.BILINGUAL),
    ("掲載日・掲載更新日", "Date (Issued / Updated)", "date_issued_updated", Kind.DATE),
    ("データの説明", "Description", "description", Kind.BILINGUAL),
    (
        "データの分野",
        "Research field",
        "data_research_field",
        Kind.RESEARCH_FIELD,
        RESEARCH_FIELDS,
    ),
    ("データ種別", "Data type", "data_type", Kind.TERM, DATA_TYPES),
    ("概略データ量", "File size", "file_size", Kind.TEXT),
    (
        "管理対象データの利活用・提供方針 (有償/無償)",
        "Data utilization and provision policy(Free/Consideration)",
        "data_policy_free",
        Kind.TERM,
        DATA_POLICY_FREE,
    ),
    (
        "管理対象データの利活用・提供方針(ライセンス)",
        "Data utilization and provision policy(License)",
        "data_policy_license",
        Kind.CODE,
        LICENSES,
    ),
    (
        "管理対象データの利活用・提供方針(引用方法等)",
        "Data utilization and provision policy(citation information)",
        "data_policy_cite",
        Kind.BILINGUAL,
    ),
    ("アクセス権", "Access rights", "access_rights", Kind.TERM, ACCESS_RIGHTS),
    (
        "公開予定日 (公開期間猶予の場合)",
        "Publication date (for embargoed access)",
        "available_date",
        Kind.DATE,
    ),
    ("リポジトリ情報", "Repository information", "repo_information", Kind.BILINGUAL),
    ("リポジトリURL・DOIリンク", "Repository URL/ DOI link", "repo_url_doi_link", Kind.TEXT),
    ("データ作成者", "Creator Name", "creators", Kind.CREATOR_NAMES),
    (
        "データ作成者の研究者番号",
        "Creator name identifier (e-Rad)",
        "creators",
        Kind.CREATOR_NUMBERS,
    ),
    ("データ管理機関", "Hosting institution", "hosting_inst", Kind.BILINGUAL),
    ("データ管理機関コード", "Hosting institution Identifier", "hosting_inst_id", Kind.TEXT),
    ("データ管理者", "Data manager", "data_man_name", Kind.BILINGUAL),
    ("データ管理者の研究者番号", "Data manager identifier (e-Rad)", "data_man_number", Kind.TEXT),
    (
        "データ管理者の所属組織名",
        "Contact organization of data manager",
        "data_man_org",
        Kind.BILINGUAL,
    ),
    (
        "データ管理者の所属機関の連絡先住所",
        "Contact address of data manager",
        "data_man_address",
        Kind.BILINGUAL,
    ),
    (
        "データ管理者の所属機関の連絡先電話番号",
        "Contact phone number of data manager",
        "data_man_tel",
        Kind.TEXT,
    ),
    (
        "データ管理者の所属機関の連絡先メールアドレス",
        "Contact mail address of data manager",
        "data_man_email",
        Kind.TEXT,
    ),
    ("備考", "Remarks", "remarks", Kind.BILINGUAL),
)

assert len(CSV_COLUMNS) == 30  # noqa: S101 - docs/metadata.md, "CSV columns"


def csv_headers(language: str) -> list[str]:
    return [column.header(language) for column in CSV_COLUMNS]


def _label(vocabulary: Vocabulary, code: str, language: str) -> str:
    if code in vocabulary:
        return vocabulary[code].label(text_language(language))
    return code  # a code Kind no longer knows: keep it visible rather than drop it


def _creator_name(creator, language: str) -> str:
    """The creator's name in the file's language, else the other one: every creator has a
    name, and the names and numbers columns must stay aligned."""
    first, second = (
        (creator.name_ja, creator.name_en)
        if text_language(language) == "ja"
        else (creator.name_en, creator.name_ja)
    )
    return first or second


def column_value(column: Column, record, language: str) -> str:
    """The cell of ``column`` for ``record`` in the ``language`` file.

    Reads ``record.project`` for the project's columns and ``record.creators.all()`` for
    the creators: select and prefetch them to avoid a query per record.
    """
    source = record.project if column.on_project else record
    lang = text_language(language)
    match column.kind:
        case Kind.TEXT:
            return getattr(source, column.field) or ""
        case Kind.BILINGUAL:
            return getattr(source, f"{column.field}_{lang}") or ""
        case Kind.TERM | Kind.RESEARCH_FIELD:
            code = getattr(source, column.field) or ""
            if column.kind == Kind.RESEARCH_FIELD and code == SAME_AS_PROJECT:
                code = record.project.research_field
            return _label(column.vocabulary, code, lang) if code else ""
        case Kind.CODE:
            return getattr(source, column.field) or ""
        case Kind.DATE:
            value = getattr(source, column.field)
            return value.isoformat() if value else ""
        case Kind.CREATOR_NAMES:
            return CREATOR_SEPARATOR.join(_creator_name(c, lang) for c in record.creators.all())
        case Kind.CREATOR_NUMBERS:
            numbers = [c.erad_researcher_number for c in record.creators.all()]
            return CREATOR_SEPARATOR.join(numbers) if any(numbers) else ""
    raise ValueError(column.kind)  # pragma: no cover - every Kind is handled above


def record_csv_row(record, language: str) -> list[str]:
    return [column_value(column, record, language) for column in CSV_COLUMNS]


def term_code(vocabulary: Vocabulary, value: str) -> str:
    """The code of ``value``, given as a code or as a Japanese or English label.

    A value that is none of these comes back unchanged, so that the import reports it as
    an unknown value of its field.
    """
    if value in vocabulary:
        return value
    for term in vocabulary:
        if value in (term.label_ja, term.label_en):
            return term.code
    folded = value.casefold()
    for term in vocabulary:
        if folded in (term.code.casefold(), term.label_en.casefold()):
            return term.code
    return value


def column_parse(column: Column, value: str, language: str) -> dict[str, Any]:
    """Model fields of a record from one cell (the project's columns give none: the
    records go into the project they are imported into). Creators are parsed by the CSV
    reader, which needs both creator columns at once."""
    if column.on_project or column.kind in (Kind.CREATOR_NAMES, Kind.CREATOR_NUMBERS):
        return {}
    match column.kind:
        case Kind.BILINGUAL:
            return {f"{column.field}_{text_language(language)}": value}
        case Kind.TERM | Kind.CODE | Kind.RESEARCH_FIELD:
            value = value.strip()
            if not value and column.kind == Kind.RESEARCH_FIELD:
                return {column.field: SAME_AS_PROJECT}
            return {column.field: term_code(column.vocabulary, value) if value else ""}
        case Kind.DATE:
            return {column.field: value.strip() or None}
    return {column.field: value}
