"""Importing an RDA maDMP 1.2 document (docs/metadata.md, "Import"): a review of what
would be written (:func:`madmp_import_review`), then the import (:func:`madmp_import`).

Any document the official schema accepts comes in. Each dataset's items are read from its
standard properties and Kura's ``x_kura`` (which wins); a required item the dataset lacks
is filled from the rest of the document, then from the project and its institution, then
from the person's answers on the review page. Values outside Kura's vocabularies map to
the nearest term and stay in the document kept on the record, which :func:`dmp.madmp.
madmp_export` writes back.
"""

import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import models, transaction
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Project, User
from accounts.roles import project_role
from core.tiers import dated_tiers, madmp_data_access, tier_of_data_access
from core.vocabularies import DATA_TYPES, LICENSES

from .common_metadata import REQUIREMENTS_BY_NAME, missing_requirements, term_code
from .madmp import (
    DOI_URL,
    EXTENSION,
    EXTENSION_FIELDS,
    FALLBACK_PATHS,
    NATIVE_PATHS,
    export_records,
    imported_record_dataset,
    json_path,
    madmp_validation_errors,
    person_name,
    plan_header,
)
from .models import RECORD_FIELDS, DataManagementPlan, DmpRecord, RecordCreator
from .records_import import (
    IMPORT_ROLES,
    ImportProblem,
    ImportRefused,
    records_check,
    records_import,
)
from .services import plan_save

# --- Import ----------------------------------------------------------------------------


def _problem(field: str, value: Any, message: str, row: int | None = None) -> ImportProblem:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return ImportProblem(row=row, field=field, value=text[:200], message=message)


def _parse(document: bytes | str) -> Any:
    if isinstance(document, bytes):
        try:
            document = document.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportRefused(
                [_problem("", "", _("The file is not UTF-8 text: %(error)s") % {"error": exc})]
            ) from exc
    try:
        parsed = json.loads(document)
    except RecursionError as exc:
        raise ImportRefused(
            [_problem("", "", _("The JSON is nested too deeply to be a maDMP document."))]
        ) from exc
    except json.JSONDecodeError as exc:
        raise ImportRefused(
            [
                _problem(
                    "",
                    exc.doc[max(0, exc.pos - 20) : exc.pos + 20],
                    _("This is not valid JSON: %(error)s (line %(line)d, column %(column)d).")
                    % {"error": exc.msg, "line": exc.lineno, "column": exc.colno},
                )
            ]
        ) from exc
    except ValueError as exc:
        # Python refuses to convert an integer of more than 4,300 digits (a guard
        # against quadratic-time parsing); no maDMP value is such a number.
        raise ImportRefused(
            [
                _problem(
                    "",
                    "",
                    _(
                        "The JSON holds a number of more than %(digits)s digits, too long "
                        "to be a maDMP value."
                    )
                    % {"digits": f"{sys.get_int_max_str_digits():,}"},
                )
            ]
        ) from exc
    if depth_exceeds(parsed, MAX_DEPTH):
        raise ImportRefused(
            [
                _problem(
                    "",
                    "",
                    _(
                        "The JSON is nested more than %(depth)d levels deep, too deep to be "
                        "a maDMP document."
                    )
                    % {"depth": MAX_DEPTH},
                )
            ]
        )
    if found := unstorable_value(parsed):
        path, message = found
        raise ImportRefused([_problem(path, "", message, row=_row_of(path))])
    return parsed


# The maDMP schema nests about eight levels; the limit leaves room for extensions while
# keeping the schema validator (which recurses) far from Python's recursion limit.
MAX_DEPTH = 64


def depth_exceeds(document: Any, limit: int) -> bool:
    """Whether ``document`` nests lists or objects more than ``limit`` deep (walked
    without recursion, so any depth json.loads returned is safe to measure)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return False


def unstorable_value(document: Any) -> tuple[str, str] | None:
    """A value or key of a parsed JSON ``document`` that Kura cannot keep, as ``(JSON
    path, why)`` (a key in the path written with escapes); None when there is none.

    ``json.loads`` accepts three things PostgreSQL's text and jsonb refuse and a page
    cannot show: a NUL character, a lone surrogate (an unpaired ``\\ud800`` escape, which
    is no character) and a number that is not finite (``NaN``, ``Infinity``, or ``1e400``,
    which overflows). Walked without recursion, like :func:`depth_exceeds`."""
    stack: list[tuple[Any, tuple]] = [(document, ())]
    while stack:
        value, parts = stack.pop()
        if isinstance(value, dict):
            for key, child in reversed(value.items()):
                if why := _unstorable_text(key):
                    printable = key.replace("\x00", "\\u0000")
                    printable = printable.encode("utf-8", "backslashreplace").decode()
                    return json_path([*parts, printable]), why
                stack.append((child, (*parts, key)))
        elif isinstance(value, list):
            stack.extend(
                (child, (*parts, index)) for index, child in reversed(list(enumerate(value)))
            )
        elif isinstance(value, str):
            if why := _unstorable_text(value):
                return json_path(parts), why
        elif isinstance(value, float) and not math.isfinite(value):
            return json_path(parts), _(
                "The number is too large or not a number (NaN, Infinity): Kura cannot store it."
            )
    return None


def _unstorable_text(text: str) -> str | None:
    if "\x00" in text:
        return _("The text holds a NUL character (U+0000), which Kura cannot store.")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _(
            "The text holds an unpaired surrogate escape (\\ud800 to \\udfff), which is no "
            "character."
        )
    return None


def _row_of(path: str) -> int | None:
    match = re.match(r"^dmp\.dataset\[(\d+)\]", path)
    return int(match.group(1)) + 1 if match else None


def _value_at(document: Any, path: str) -> Any:
    value = document
    for key, index in re.findall(r"\.?([^.\[\]]+)|\[(\d+)\]", path):
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            return ""
    return value


def _half(language: str) -> str:
    """Which half of a ja/en pair text in ``language`` (ISO 639-3) fills."""
    return "ja" if language == "jpn" else "en"


# --- Nearest terms -----------------------------------------------------------------------
#
# A value outside Kura's vocabularies is kept verbatim in the record's maDMP extension
# (and written back on export); the record holds the nearest Kura term.

# Words in a free-text dataset ``type`` and the data type they point to, most specific first.
DATA_TYPE_WORDS = (
    ("clinical", "clinical trial data"),
    ("genom", "genomic data"),
    ("sequenc", "genomic data"),
    ("geospatial", "geospatial data"),
    ("map", "geospatial data"),
    ("simulat", "simulation data"),
    ("survey", "survey data"),
    ("interview", "survey data"),
    ("questionnaire", "survey data"),
    ("notebook", "laboratory notebook"),
    ("experiment", "experimental data"),
    ("observ", "observational data"),
    ("measure", "measurement and test data"),
    ("audio", "recorded data"),
    ("video", "recorded data"),
    ("record", "recorded data"),
    ("aggregat", "aggregated data"),
    ("statistic", "aggregated data"),
    ("compil", "compiled data"),
    ("encod", "encoded data"),
)


def nearest_data_type(value: str) -> str:
    """The Kura data type (code) nearest to a free-text maDMP ``type``: the code or a
    label itself, else the first word of :data:`DATA_TYPE_WORDS` it contains, else
    ``dataset`` (software, documents, images…: COAR's generic term)."""
    code = term_code(DATA_TYPES, value.strip())
    if code in DATA_TYPES:
        return code
    folded = value.casefold()
    for word, code in DATA_TYPE_WORDS:
        if word in folded:
            return code
    return "dataset"


CC_LICENCE = re.compile(r"creativecommons\.org/licenses/([a-z-]+)/", re.IGNORECASE)
CC_CODES = {
    "by": "CCBY",
    "by-sa": "CCBYSA",
    "by-nd": "CCBYND",
    "by-nc": "CCBYNC",
    "by-nc-sa": "CCBYNCSA",
    "by-nc-nd": "CCBYNCND",
}
# Words in a licence URL that name a licence without its SPDX identifier.
LICENCE_WORDS = (
    ("publicdomain/zero", "CC0"),
    ("publicdomain/mark", "PD"),
    ("mit-license", "MIT"),
    ("/mit", "MIT"),
    ("apache", "Apache2"),
    ("bsd-3", "BSD3"),
    ("bsd-2", "BSD2"),
    ("lgpl-3", "LGPL3"),
    ("lgpl-2.1", "LGPL2_1"),
    ("gpl-3", "GPL3"),
    ("gpl-2", "GPL2"),
    ("mpl-2", "Mozilla2"),
    ("epl-1", "Eclipse1"),
    ("artistic-2", "Artistic2"),
    ("afl-3", "AFL"),
)


def nearest_licence(url: str) -> tuple[str, bool]:
    """The Kura licence (code) of ``license_ref`` and whether it is exactly that licence:
    the licence URL itself; else the nearest (a Creative Commons licence of another
    version, an SPDX identifier or a known name in the URL); else ``OTHER``."""
    wanted = url.strip().rstrip("/").replace("http://", "https://")
    for term in LICENSES:
        if term.uri and term.uri.rstrip("/") == wanted:
            return term.code, True
    if match := CC_LICENCE.search(url):
        if code := CC_CODES.get(match.group(1).lower()):
            return code, False
    folded = url.casefold()
    for term in LICENSES:
        if term.spdx and re.search(rf"(^|[/=]){re.escape(term.spdx.casefold())}(\.|/|$)", folded):
            return term.code, False
    for word, code in LICENCE_WORDS:
        if word in folded:
            return code, False
    return "OTHER", False


# --- The review of an import ---------------------------------------------------------------

DUPLICATES_SEPARATE = "separate"
DUPLICATES_SKIP = "skip"
DUPLICATE_CHOICES = (
    (DUPLICATES_SEPARATE, gettext_lazy("Import them as separate records (Data No. -2, -3…)")),
    (DUPLICATES_SKIP, gettext_lazy("Import only the first of them and skip the others")),
)

# What the review step asks the person for when neither the document nor the project
# and its institution give it: a required item's name → the field the answer fills
# (``{half}``: the document's language).
ASKED_FIELDS = {
    "description": "description_{half}",
    "data_policy_free": "data_policy_free",
    "data_policy_license": "data_policy_license",
    "data_policy_cite": "data_policy_cite_{half}",
    "repo_information": "repo_information_{half}",
    "hosting_inst": "hosting_inst_{half}",
    "data_man_name": "data_man_name_{half}",
    "data_man_number": "data_man_number",
    "data_man_contact": "data_man_email",
}
# Values read from standard properties that Kura may leave out when it cannot store them
# (kept in the document all the same, and exported again).
DROPPABLE_FIELDS = ("repo_url_doi_link", "hosting_inst_id", "data_man_number")
# The project-level parts of a document kept with the plan (and written back on export).
PROJECT_PARTS = (
    "contact",
    "contributor",
    "project",
    "ethical_issues_exist",
    "ethical_issues_description",
    "ethical_issues_report",
    "cost",
)


@dataclass(frozen=True)
class ReviewItem:
    """One value of the import: what it is, its value and where it came from."""

    label: str
    value: str
    source: str


@dataclass
class DatasetReview:
    position: int  # from 1
    title: str
    data_number: str
    items: list[ReviewItem]
    skipped: bool = False


@dataclass(frozen=True)
class Question:
    """A required item nothing gave: the person supplies it for ``datasets`` (from 1)."""

    name: str
    label: str
    datasets: tuple[int, ...]
    choices: tuple = ()


@dataclass(frozen=True)
class Duplicate:
    identifier: str
    datasets: tuple[int, ...]  # positions from 1


@dataclass
class MadmpImportReview:
    """What an import would write, before anything is written (:func:`madmp_import_review`)."""

    title: str
    datasets: list[DatasetReview]
    project_parts: list[ReviewItem]
    questions: list[Question]
    duplicates: list[Duplicate]
    notes: list[str]
    problems: list[ImportProblem]  # everything that stops the import, refusals included
    # What the review page cannot put right (a contradiction, a value Kura cannot take, a
    # Data No. already in the project): the document is refused at once.
    refusals: list[ImportProblem] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list, repr=False)
    header: dict = field(default_factory=dict, repr=False)
    top: dict = field(default_factory=dict, repr=False)  # beside "dmp", e.g. "$schema"


def _label(name: str) -> str:
    if name == "creators":
        return str(_("Creators"))
    return capfirst(str(DmpRecord._meta.get_field(name).verbose_name))


def _shown(value: Any) -> str:
    if value is None:
        return _("unknown")
    if value is True:
        return _("yes")
    if value is False:
        return _("no")
    if isinstance(value, list):
        return "; ".join(
            c.get("name_ja") or c.get("name_en") or "" for c in value if isinstance(c, dict)
        )
    return str(value)


class _DatasetRow:
    """One dataset's record fields, each with where it came from."""

    def __init__(self, index: int, dataset: dict, header: dict):
        self.index = index
        self.prefix = f"dmp.dataset[{index}]"
        self.dataset = dataset
        self.header = header
        self.language = dataset.get("language", header["language"])
        self.half = _half(self.language)
        distributions = dataset.get("distribution", [])
        self.distribution = distributions[0] if distributions else {}
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self.notes: list[str] = []

    def put(self, name: str, value: Any, source: str) -> None:
        self.values[name] = value
        self.sources[name] = source

    def drop(self, name: str) -> None:
        self.values.pop(name, None)
        self.sources.pop(name, None)

    def missing(self) -> list[str]:
        fields = {k: v for k, v in self.values.items() if k in RECORD_FIELDS}
        return [r.name for r in missing_requirements(DmpRecord(**fields))]


def _data_number(dataset: dict, index: int) -> tuple[str, str]:
    """The Data No. and where it came from: the ``dataset_id`` of type ``other``, else
    the first ``alternate_identifier`` of type ``other``, else the ``dataset_id``."""
    dataset_id = dataset["dataset_id"]
    found = (dataset_id["identifier"], "dataset_id.identifier")
    if dataset_id["type"] != "other":
        for number, alternate in enumerate(dataset.get("alternate_identifier", [])):
            if alternate["type"] == "other":
                found = (alternate["identifier"], f"alternate_identifier[{number}].identifier")
                break
    limit = DmpRecord._meta.get_field("data_number").max_length
    if not found[0].strip() or len(found[0]) > limit:
        return f"D-{index + 1:03d}", ""
    return found


def _repo_link(dataset: dict, distribution: dict) -> tuple[str, str]:
    if "access_url" in distribution:
        return distribution["access_url"], "distribution[0].access_url"
    dataset_id = dataset["dataset_id"]
    if dataset_id["type"] == "doi":
        doi = dataset_id["identifier"]
        return (doi if DOI_URL.match(doi) else f"https://doi.org/{doi}"), "dataset_id"
    if dataset_id["type"] == "url":
        return dataset_id["identifier"], "dataset_id"
    return "", ""


def _read_standard(row: _DatasetRow) -> None:
    """Record fields from the standard properties (documents written elsewhere)."""
    dataset, distribution, prefix = row.dataset, row.distribution, row.prefix
    number, path = _data_number(dataset, row.index)
    row.put(
        "data_number",
        number,
        f"{prefix}.{path}" if path else _("made by Kura: the dataset's identifier is too long"),
    )
    if "issued" in dataset:
        row.put("date_issued_updated", dataset["issued"], f"{prefix}.issued")
    personal = {"yes": True, "no": False}.get(dataset["personal_data"])  # unknown: None
    row.put("contains_personal_data", personal, f"{prefix}.personal_data")
    if personal is None:
        row.notes.append(
            _(
                "%(path)s is “unknown”: the record keeps it unknown, which blocks opening its "
                "files beyond the project (as “yes” does) until someone sets it in the DMP."
            )
            % {"path": f"{prefix}.personal_data"}
        )
    link, path = _repo_link(dataset, distribution)
    if link:
        row.put("repo_url_doi_link", link, f"{prefix}.{path}")
    if "type" in dataset:
        code = nearest_data_type(dataset["type"])
        row.put("data_type", code, f"{prefix}.type")
        if code != dataset["type"]:
            row.notes.append(
                _(
                    "%(path)s “%(value)s” is not one of Kura's data types: the record says "
                    "“%(code)s”, and the original is kept and exported again."
                )
                % {"path": f"{prefix}.type", "value": dataset["type"], "code": code}
            )
    for base, path in (
        ("title", "title"),
        ("description", "description"),
        ("repo_information", "distribution[0].host.title"),
    ):
        text = _value_at(dataset, path)
        if isinstance(text, str) and text.strip():  # the schema allows "" and "  "
            row.put(f"{base}_{row.half}", text, f"{prefix}.{path}")
    licences = distribution.get("license", [])
    if access := distribution.get("data_access"):
        start = max((lic["start_date"] for lic in licences), default="")
        dated = bool(start) and start > datetime.now(UTC).date().isoformat()
        tier = tier_of_data_access(access, dated=dated)
        row.put("access_rights", tier, f"{prefix}.distribution[0].data_access")
        # A licence that starts later on data that stays shared or closed says when its
        # terms apply, not when the data opens: the record takes no date from it.
        if dated and tier in dated_tiers():
            row.put("available_date", start, f"{prefix}.distribution[0].license[].start_date")
    if licences:
        ref = licences[0]["license_ref"]
        code, exact = nearest_licence(ref)
        row.put("data_policy_license", code, f"{prefix}.distribution[0].license[0].license_ref")
        if not exact:
            row.notes.append(
                _(
                    "%(path)s “%(value)s” is not one of Kura's licences: the record says "
                    "“%(code)s”, and the original is kept and exported again."
                )
                % {
                    "path": f"{prefix}.distribution[0].license[0].license_ref",
                    "value": ref,
                    "code": code,
                }
            )
    creators = [
        {
            f"name_{row.half}": creator["name"],
            "erad_researcher_number": (
                creator["creator_id"]["identifier"]
                if isinstance(creator["creator_id"], dict)
                and re.fullmatch(r"[0-9]{8}", creator["creator_id"]["identifier"])
                else ""
            ),
        }
        for creator in dataset.get("creator", [])
    ]
    if creators:
        row.put("creators", creators, f"{prefix}.creator")


def _read_extension(row: _DatasetRow) -> None:
    """Kura's own items (``x_kura``): they win over the standard properties."""
    extension = row.dataset.get(EXTENSION, {})
    for name, value in extension.items():
        row.put(name, value, f"{row.prefix}.{EXTENSION}.{name}")
    if "access_rights" in extension and "available_date" not in extension:
        starts = [lic["start_date"] for lic in row.distribution.get("license", [])]
        if extension["access_rights"] in dated_tiers() and starts:
            row.put("available_date", max(starts), f"{row.prefix}.distribution[0].license[]")
        else:
            row.drop("available_date")


def _person(header: dict) -> tuple[dict, str]:
    """Who manages the data by the document: a contributor in the role DataManager, else
    the DMP's contact."""
    for number, contributor in enumerate(header.get("contributor", [])):
        roles = [re.sub(r"[^a-z]", "", role.casefold()) for role in contributor["role"]]
        if "datamanager" in roles:
            return contributor, f"dmp.contributor[{number}]"
    return header["contact"], "dmp.contact"


def _person_number(person: dict) -> str:
    for key in ("contributor_id", "contact_id"):
        value = person.get(key)
        for identifier in value if isinstance(value, list) else [value]:
            if isinstance(identifier, dict) and re.fullmatch(
                r"[0-9]{8}", identifier.get("identifier", "")
            ):
                return identifier["identifier"]
    return ""


def _citation(row: _DatasetRow) -> str:
    dataset = row.dataset
    names = "; ".join(c["name"] for c in dataset.get("creator", []))
    year = dataset.get("issued", "")[:4]
    link, _path = _repo_link(dataset, {})
    parts = [f"{names} ({year})" if names and year else names or year, dataset["title"], link]
    return ". ".join(part for part in parts if part)


def _fill(row: _DatasetRow, project: Project) -> None:
    """Required items the dataset lacks: from the document's other fields first, then
    from the project and its institution."""
    missing = row.missing()
    if "date_issued_updated" in missing:
        row.put("date_issued_updated", row.header["modified"][:10], "dmp.modified")
    if "title" in missing:
        # A blank title is valid maDMP; each distribution has a title of its own.
        titled = [
            (number, distribution["title"])
            for number, distribution in enumerate(row.dataset.get("distribution", []))
            if distribution["title"].strip()
        ]
        if titled:
            number, title = titled[0]
            row.put(f"title_{row.half}", title, f"{row.prefix}.distribution[{number}].title")
        else:  # nor has the dataset one: its identifier, as the Data No. has it
            row.put(f"title_{row.half}", row.values["data_number"], row.sources["data_number"])
    person, path = _person(row.header)
    if "data_man_name" in missing:
        row.put(f"data_man_name_{row.half}", person["name"], f"{path}.name")
    if "data_man_contact" in missing and person.get("mbox"):
        # The schema's "email" format asks only for an "@"; what Kura cannot store as an
        # address is left for the person to give.
        try:
            validate_email(person["mbox"])
        except ValidationError:
            row.notes.append(
                _(
                    "%(path)s “%(value)s” is not an e-mail address Kura can store: give the "
                    "data manager's contact below. The original is kept and exported again."
                )
                % {"path": f"{path}.mbox", "value": person["mbox"]}
            )
        else:
            row.put("data_man_email", person["mbox"], f"{path}.mbox")
    if "data_man_number" in missing:
        if number := _person_number(person):
            row.put(
                "data_man_number",
                number,
                f"{path}.{'contributor_id' if 'role' in person else 'contact_id'}",
            )
        elif member := _member_by_email(project, person.get("mbox", "")):
            row.put(
                "data_man_number",
                member.erad_researcher_number,
                _("project member %(name)s") % {"name": person_name(member)},
            )
    if "hosting_inst" in missing:
        institution = project.institution
        source = _("the project's institution")
        for half in ("ja", "en"):
            if name := getattr(institution, f"name_{half}"):
                row.put(f"hosting_inst_{half}", name, source)
        if institution.ror_id and not row.values.get("hosting_inst_id"):
            row.put("hosting_inst_id", institution.ror_id, source)
    if "data_policy_cite" in missing:
        row.put(
            f"data_policy_cite_{row.half}",
            _citation(row),
            _("made from %(paths)s")
            % {"paths": f"{row.prefix}.creator, issued, title, dataset_id"},
        )
    licence = row.values.get("data_policy_license")
    if "data_policy_free" in missing and licence in LICENSES and licence not in FEE_UNKNOWN:
        # An open licence lets anyone use the data free of charge.
        row.put("data_policy_free", "free", row.sources["data_policy_license"])


def _shorten(row: _DatasetRow) -> None:
    """Text read from the document's standard properties (not ``x_kura``, not the
    person's answers) that is longer than Kura's item takes: the record holds its start,
    and the document, kept whole, gives the original back on export."""
    for name, value in list(row.values.items()):
        source = row.sources[name]
        if f".{EXTENSION}." in source or not source.startswith("dmp."):
            continue
        if name == "creators":
            limit = RecordCreator._meta.get_field(f"name_{row.half}").max_length
            for number, creator in enumerate(value):
                text = creator.get(f"name_{row.half}", "")
                if len(text) > limit:
                    creator[f"name_{row.half}"] = _shortened(
                        row, f"{row.prefix}.creator[{number}].name", text, limit, _label(name)
                    )
            continue
        model_field = DmpRecord._meta.get_field(name)
        if (
            isinstance(value, str)
            and isinstance(model_field, models.CharField)
            and not isinstance(model_field, models.EmailField | models.URLField)
            and name != "data_number"  # too long an identifier gets a Data No. of Kura's
            and len(value) > model_field.max_length
        ):
            row.put(
                name, _shortened(row, source, value, model_field.max_length, _label(name)), source
            )


def _shortened(row: _DatasetRow, path: str, text: str, limit: int, item: str) -> str:
    row.notes.append(
        _(
            "%(path)s is longer than the %(limit)s characters Kura keeps for “%(item)s”: "
            "the record holds its start, and the original is kept and exported again."
        )
        % {"path": path, "item": item, "limit": f"{limit:,}"}
    )
    return text[: limit - 1] + "…"


# Licences that say nothing about whether using the data is free of charge.
FEE_UNKNOWN = ("", "NO_LICENSE", "OTHER")


def _member_by_email(project: Project, email: str) -> User | None:
    if not email:
        return None
    return (
        User.objects.filter(
            memberships__project=project, email__iexact=email, erad_researcher_number__gt=""
        )
        .order_by("pk")
        .first()
    )


def _answer(row: _DatasetRow, answers: dict[str, str]) -> list[str]:
    """Fill what is still missing from the person's answers; the names still missing."""
    still = []
    for name in row.missing():
        if name in ASKED_FIELDS and answers.get(name, "").strip():
            row.put(
                ASKED_FIELDS[name].format(half=row.half), answers[name].strip(), _("your answer")
            )
        else:
            still.append(name)
    return still


def madmp_import_review(
    *,
    actor,
    project: Project,
    document: bytes | str,
    answers: dict[str, str] | None = None,
    duplicates: str | None = None,
) -> MadmpImportReview:
    """What importing ``document`` into ``project`` would write, writing nothing.

    Refuses (:class:`ImportRefused`) a document that is not JSON, breaks the maDMP 1.2
    schema or Kura's ``x_kura``, or holds a value Kura cannot take (each problem with its
    JSON path). Otherwise every dataset becomes a record: its items are read from the
    standard properties and ``x_kura``; a required item the dataset lacks is filled from
    the document's other fields (``dmp.modified``, a contributor in the role DataManager,
    else ``dmp.contact``), then from the project and its institution, then from
    ``answers`` (required item name → value, for every dataset that lacks it). What is
    still missing is a :class:`Question`. Datasets sharing a Data No. are a
    :class:`Duplicate`: ``duplicates`` says what to do (:data:`DUPLICATE_CHOICES`).
    """
    if project_role(actor, project) not in IMPORT_ROLES:
        raise PermissionDenied(_("Only the project manager and data managers import records."))
    parsed = _parse(document)
    _refuse_invalid(parsed)
    answers = answers or {}
    header = {k: v for k, v in parsed["dmp"].items() if k not in ("dataset", EXTENSION)}
    rows: list[_DatasetRow] = []
    problems: list[ImportProblem] = []
    refusals: list[ImportProblem] = []
    still_missing: dict[str, list[int]] = {}
    for index, dataset in enumerate(parsed["dmp"]["dataset"]):
        row = _DatasetRow(index, dataset, header)
        _read_standard(row)
        _read_extension(row)
        refusals.extend(_contradictions(row))
        _fill(row, project)
        _shorten(row)
        for name in _answer(row, answers):
            still_missing.setdefault(name, []).append(index + 1)
        rows.append(row)

    groups: dict[str, list[_DatasetRow]] = {}
    for row in rows:
        groups.setdefault(row.values["data_number"], []).append(row)
    duplicate_groups = [
        Duplicate(number, tuple(r.index + 1 for r in group))
        for number, group in groups.items()
        if len(group) > 1
    ]
    skipped: set[int] = set()
    if duplicate_groups and duplicates == DUPLICATES_SKIP:
        skipped = {r.index for g in groups.values() for r in g[1:]}
    elif duplicate_groups:
        # Without a choice yet, the review shows (and checks) them as separate records.
        taken = set(groups)
        for group in groups.values():
            for row in group[1:]:
                suffix = 2
                while f"{row.values['data_number']}-{suffix}" in taken:
                    suffix += 1
                number = f"{row.values['data_number']}-{suffix}"
                taken.add(number)
                row.put(
                    "data_number",
                    number,
                    _("%(source)s, made unique") % {"source": row.sources["data_number"]},
                )
    if duplicate_groups and duplicates not in (DUPLICATES_SEPARATE, DUPLICATES_SKIP):
        problems.extend(
            _problem(
                f"dmp.dataset[{group.datasets[1] - 1}].dataset_id",
                group.identifier,
                _(
                    "Datasets %(datasets)s share the identifier %(identifier)s: choose "
                    "whether to import them as separate records or to skip the repeats."
                )
                % {
                    "datasets": ", ".join(str(d) for d in group.datasets),
                    "identifier": group.identifier,
                },
                row=group.datasets[1],
            )
            for group in duplicate_groups
        )
    imported = [row for row in rows if row.index not in skipped]
    questions = [
        Question(
            name,
            str(REQUIREMENTS_BY_NAME[name].label),
            tuple(d for d in datasets if d - 1 not in skipped),
            tuple(DmpRecord._meta.get_field(ASKED_FIELDS[name].format(half="ja")).choices or ())
            if "{half}" not in ASKED_FIELDS[name]
            else (),
        )
        for name, datasets in still_missing.items()
        if name in ASKED_FIELDS and any(d - 1 not in skipped for d in datasets)
    ]
    asked = {q.name for q in questions}
    refusals.extend(_record_check(project, imported, asked))
    problems.extend(refusals)
    problems.extend(
        _problem(
            _record_problem_path(index - 1, question.name, rows[index - 1].dataset),
            "",
            _("%(item)s is required: give it on the review page.") % {"item": question.label},
            row=index,
        )
        for question in questions
        for index in question.datasets
    )
    problems.sort(key=lambda p: (p.row or 0, p.field))
    return MadmpImportReview(
        title=header["title"],
        datasets=[
            DatasetReview(
                position=row.index + 1,
                title=row.dataset["title"].strip()
                or row.values.get(f"title_{row.half}", row.values["data_number"]),
                data_number=row.values["data_number"],
                items=[
                    ReviewItem(_label(name), _shown(value), row.sources[name])
                    for name, value in row.values.items()
                ],
                skipped=row.index in skipped,
            )
            for row in rows
        ],
        project_parts=[
            ReviewItem(part, _shown_part(part, header[part]), f"dmp.{part}")
            for part in PROJECT_PARTS
            if header.get(part) not in (None, "", [])
        ],
        questions=questions,
        duplicates=duplicate_groups,
        notes=[note for row in rows for note in row.notes],
        problems=problems,
        refusals=sorted(refusals, key=lambda p: (p.row or 0, p.field)),
        rows=[_import_row(row) for row in imported],
        header=header,
        top={k: v for k, v in parsed.items() if k != "dmp"},
    )


def _identifier(value: Any) -> str:
    if isinstance(value, dict) and value.get("identifier"):
        return f"{value['identifier']} ({value.get('type', '')})"
    return ""


def _shown_part(part: str, value: Any) -> str:
    """A project-level part of a maDMP, as a line a person reads."""
    match part:
        case "contact":
            text = f"{value['name']} <{value['mbox']}> {_identifier(value['contact_id'])}"
        case "contributor":
            text = "; ".join(f"{c['name']} ({', '.join(c['role'])})" for c in value)
        case "project":
            text = "; ".join(
                " — ".join(
                    [p["title"]]
                    + [
                        ", ".join(
                            filter(
                                None,
                                [
                                    f.get("funder_name", ""),
                                    _identifier(f.get("funder_id")),
                                    _identifier(f.get("grant_id")),
                                    f.get("funding_status", ""),
                                ],
                            )
                        )
                        for f in p.get("funding", [])
                    ]
                )
                for p in value
            )
        case "cost":
            text = "; ".join(
                " ".join(str(c.get(k, "")) for k in ("title", "value", "currency_code")).strip()
                for c in value
            )
        case _:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 300 else text[:299] + "…"


def plan_imported_parts(plan: DataManagementPlan | None) -> list[ReviewItem]:
    """The project-level parts of the maDMP last imported into ``plan`` (contact,
    contributors, project and funding, ethical issues, cost), for the DMP page."""
    kept = (plan.madmp_extension or {}).get("dmp", {}) if plan else {}
    return [
        ReviewItem(part, _shown_part(part, kept[part]), f"dmp.{part}")
        for part in PROJECT_PARTS
        if kept.get(part) not in (None, "", [])
    ]


def _import_row(row: _DatasetRow) -> dict[str, Any]:
    original = {k: v for k, v in row.dataset.items() if k != EXTENSION}
    return {**row.values, "madmp_extension": {"dataset": original, "position": row.index}}


def _record_check(project: Project, rows: list[_DatasetRow], asked: set[str]) -> list:
    """What :func:`records_check` refuses, pointed at the JSON paths; a value read from a
    standard property that Kura cannot store in an optional item is left out (kept in the
    document) instead, and a required item the person is asked for is no problem here."""
    for _attempt in range(2):
        found = records_check(project=project, rows=[_import_row(row) for row in rows])
        dropped = False
        for problem in found:
            row = rows[problem.row - 1] if problem.row else None
            if (
                row is not None
                and problem.field in DROPPABLE_FIELDS
                and f".{EXTENSION}." not in row.sources.get(problem.field, f".{EXTENSION}.")
            ):
                row.notes.append(
                    _(
                        "%(path)s “%(value)s” cannot be Kura's %(item)s (%(error)s): it is "
                        "left out of the record and kept in the document."
                    )
                    % {
                        "path": row.sources[problem.field],
                        "value": problem.value,
                        "item": _label(problem.field),
                        "error": problem.message,
                    }
                )
                row.drop(problem.field)
                dropped = True
        if not dropped:
            break
    located = []
    for problem in found:
        if problem.field in asked:
            continue
        if problem.row is None:
            located.append(problem)
            continue
        row = rows[problem.row - 1]
        located.append(
            ImportProblem(
                row=row.index + 1,
                field=_record_problem_path(row.index, problem.field, row.dataset),
                value=problem.value,
                message=problem.message,
            )
        )
    return located


def _contradictions(row: _DatasetRow) -> list[ImportProblem]:
    access = row.dataset.get(EXTENSION, {}).get("access_rights")
    data_access = row.distribution.get("data_access")
    expected = madmp_data_access().get(access)
    if expected and data_access and data_access != expected:
        return [
            _problem(
                f"{row.prefix}.distribution[0].data_access",
                data_access,
                _("Contradicts %(field)s %(value)s, which means data_access %(expected)s.")
                % {"field": f"{EXTENSION}.access_rights", "value": access, "expected": expected},
                row=row.index + 1,
            )
        ]
    return []


def _refuse_invalid(parsed: Any) -> None:
    errors = madmp_validation_errors(parsed)
    if errors:
        raise ImportRefused(
            [
                _problem(
                    path,
                    _value_at(parsed, path),
                    (
                        _("Does not match Kura's x_kura extension: %(error)s")
                        if f".{EXTENSION}" in path
                        else _("Does not match the maDMP 1.2 schema: %(error)s")
                    )
                    % {"error": message},
                    row=_row_of(path),
                )
                for path, message in errors
            ]
        )


def _record_problem_path(index: int, field: str, dataset: dict) -> str:
    """The JSON path of the item a ``records_import`` problem names (a model field, a
    required item such as ``title``, or ``creators[0].name_ja``): where the value was
    read from, else where in ``x_kura`` to give it."""
    extension = dataset.get(EXTENSION, {})
    if field == "data_man_contact":
        field = "data_man_email"
    top = re.split(r"[.\[]", field, maxsplit=1)[0]
    # A required ja/en pair is named by its base (``title``): point at the Japanese half.
    item = f"{top}_ja" if f"{top}_ja" in EXTENSION_FIELDS else top
    base = re.sub(r"_(ja|en)$", "", top)
    if top == "data_number" and dataset.get("dataset_id", {}).get("type") != "other":
        suffix = "alternate_identifier"
    elif top in NATIVE_PATHS:
        suffix = NATIVE_PATHS[top]
    elif item in extension:
        suffix = f"{EXTENSION}.{field if item == top else item}"
    elif top == "creators" and dataset.get("creator"):
        suffix = re.sub(r"^creators(\[\d+\])?.*$", r"creator\1", field)
    elif base in FALLBACK_PATHS:
        suffix = FALLBACK_PATHS[base]
    else:
        suffix = f"{EXTENSION}.{field if item == top else item}"
    return f"dmp.dataset[{index}].{suffix}"


def madmp_import(
    *,
    actor,
    project: Project,
    document: bytes | str,
    answers: dict[str, str] | None = None,
    duplicates: str | None = None,
    ip_address: str | None = None,
) -> list[DmpRecord]:
    """Add the datasets of an maDMP 1.2 document to ``project`` as records, and keep its
    project-level parts with the plan.

    Reads the document again, as :func:`madmp_import_review` does with the same
    ``answers`` and ``duplicates``, so what is written is what was reviewed, checked now.
    All or nothing: any problem (see there; a question left unanswered, duplicates
    without a choice, a Data No. already in the project) raises :class:`ImportRefused`
    with every problem, each with its JSON path and the dataset's position (from 1) as
    ``row``, and the database is unchanged.

    Everything of a dataset Kura does not model (the dataset as it came, less ``x_kura``)
    is kept on its record (``madmp_extension``), and the document's project-level parts
    (contact, contributors, project and funding, ethical issues, cost…) on the plan,
    created when the project has none; :func:`madmp_export` writes them back in place.
    """
    review = madmp_import_review(
        actor=actor, project=project, document=document, answers=answers, duplicates=duplicates
    )
    if review.problems:
        raise ImportRefused(review.problems)
    with transaction.atomic():
        records = records_import(
            actor=actor,
            project=project,
            rows=review.rows,
            source="madmp-json",
            ip_address=ip_address,
        )
        stamp = datetime.now(UTC).isoformat()
        imported = DmpRecord.objects.filter(pk__in=[r.pk for r in records]).prefetch_related(
            "creators"
        )
        for record in imported:
            extension = {
                **record.madmp_extension,
                "import": stamp,
                "distribution_title": record.title_ja or record.title_en,
            }
            record.madmp_extension = extension
            extension["baseline"] = imported_record_dataset(record)
            DmpRecord.objects.filter(pk=record.pk).update(madmp_extension=extension)
        plan = DataManagementPlan.objects.filter(project=project).first()
        if plan is None:
            limit = DataManagementPlan._meta.get_field("title").max_length
            plan = plan_save(
                actor=actor,
                plan_or_project=project,
                answers={"title": review.header["title"][:limit]},
                ip_address=ip_address,
            )
        baseline = plan_header(project, plan, export_records(project))
        DataManagementPlan.objects.filter(pk=plan.pk).update(
            madmp_extension={"dmp": review.header, "baseline": baseline, "top": review.top}
        )
    return records
