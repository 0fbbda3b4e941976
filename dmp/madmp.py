"""The whole DMP as RDA maDMP 1.2 JSON (docs/metadata.md, "maDMP 1.2"), out and back in.

:func:`madmp_export` builds ``{"dmp": {...}}`` with one ``dataset`` per :class:`DmpRecord`;
:func:`madmp_import` reads such a document back into a project's records through
:func:`dmp.records_import.records_import`. Both check the document against the official
schema shipped in ``dmp/schemas/`` (see the README there).

maDMP has no place for much of the Cabinet Office common metadata (the ja/en pairs, the
funder's free/fee and licence codes, the data manager's contact, creators with e-Rad
numbers, remarks, metadata access…). The schema allows extra properties on every object,
so each dataset carries them in ``x_kura`` under the model's field names, and import
restores every field of every record from the standard properties plus ``x_kura``:

* read from standard properties only: ``data_number`` (``dataset_id`` of type ``other``,
  else the ``alternate_identifier`` of type ``other``), ``data_type`` (``type``),
  ``date_issued_updated`` (``issued``), ``contains_personal_data`` (``personal_data``)
  and ``repo_url_doi_link`` (``distribution[0].access_url``);
* read from ``x_kura``: every other record field and the creators. An item ``x_kura``
  leaves out is read from the standard property it refines, so that documents written
  elsewhere can be imported: ``title``/``description``/``host.title`` give the ja or en
  half by the document's ``language``, ``data_access`` and the licence ``start_date``
  give the access rights and available date, ``license_ref`` the licence, ``creator``
  the creators. Where both are present ``x_kura`` wins, and a ``data_access`` that
  contradicts its ``access_rights`` is refused.

The ``x_kura`` on ``dmp`` (project and plan answers) is informational: import adds
records to the target project and does not change the project or its plan.

``created``, ``modified`` and ``dmp_id`` describe the plan in this Kura (when it was
created and last changed, and its page URL), so they differ after export → import into
another project → export; everything else is identical.
"""

import json
import re
import sys
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError

from accounts.models import Membership, Project, Role, User
from core.tiers import dated_tiers, madmp_data_access, tier_of_data_access, tier_rule
from core.vocabularies import FUNDERS, LICENSES

from .models import RECORD_FIELDS, DataManagementPlan, DmpRecord
from .records_import import CREATOR_FIELDS, ImportProblem, ImportRefused, records_import

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "maDMP-schema-1.2.json"
EXTENSION = "x_kura"
EXTENSION_VERSION = 1
LANGUAGE = "jpn"  # ISO 639-3: the common metadata is Japanese first
# maDMP's personal_data for the record's three states (None: unknown).
PERSONAL_DATA_TERMS = {True: "yes", False: "no", None: "unknown"}

# Record fields that standard maDMP properties carry exactly; every other field goes in
# the dataset's ``x_kura``.
NATIVE_FIELDS = (
    "data_number",
    "data_type",
    "date_issued_updated",
    "contains_personal_data",
    "repo_url_doi_link",
)
EXTENSION_FIELDS = tuple(name for name in RECORD_FIELDS if name not in NATIVE_FIELDS)
PROJECT_FIELDS = (
    "name_ja",
    "name_en",
    "funder",
    "funding_stream_code",
    "program_name_ja",
    "program_name_en",
    "japan_grant_number",
    "research_field",
)
PLAN_FIELDS = (
    "data_produced",
    "storage_and_preservation",
    "publication_policy",
    "restriction_reasons",
    "management_roles",
)

# Where an import problem about a record field points in the dataset.
NATIVE_PATHS = {
    "data_number": "dataset_id.identifier",
    "data_type": "type",
    "date_issued_updated": "issued",
    "contains_personal_data": "personal_data",
    "repo_url_doi_link": "distribution[0].access_url",
}

# Where the standard property an item missing from ``x_kura`` was read from sits.
FALLBACK_PATHS = {
    "title": "title",
    "description": "description",
    "repo_information": "distribution[0].host.title",
    "access_rights": "distribution[0].data_access",
    "available_date": "distribution[0].license[0].start_date",
    "data_policy_license": "distribution[0].license[0].license_ref",
}

DOI_URL = re.compile(r"^https?://(?:dx\.)?doi\.org/(10\..+)$", re.IGNORECASE)


class MadmpExportError(Exception):
    """The project lacks something maDMP requires (a contact with an e-mail address)."""


# --- Schema ----------------------------------------------------------------------------


@cache
def madmp_schema() -> dict:
    """The official RDA maDMP 1.2 JSON schema shipped with Kura."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _extension_schema() -> dict:
    """What a dataset's ``x_kura`` may hold: the record's fields with their JSON types."""
    properties: dict[str, Any] = {}
    for name in EXTENSION_FIELDS:
        field = DmpRecord._meta.get_field(name)
        if isinstance(field, models.BooleanField):
            properties[name] = {"type": "boolean"}
        elif isinstance(field, models.DateField):
            properties[name] = {"type": ["string", "null"], "format": "date"}
        else:
            properties[name] = {"type": "string"}
    properties["creators"] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {name: {"type": "string"} for name in CREATOR_FIELDS},
            "additionalProperties": False,
        },
    }
    return {"type": "object", "properties": properties, "additionalProperties": False}


@cache
def _validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    checker = FormatChecker()
    return (
        Draft202012Validator(madmp_schema(), format_checker=checker),
        Draft202012Validator(_extension_schema(), format_checker=checker),
    )


def json_path(parts) -> str:
    """``["dmp", "dataset", 2, "title"]`` → ``dmp.dataset[2].title``."""
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _error_paths(error: SchemaError, prefix: tuple = ()) -> list[list]:
    """Where ``error`` is: the missing or unexpected property itself when there is one."""
    parts = [*prefix, *error.absolute_path]
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [
            name
            for name in error.validator_value
            if name not in instance and repr(name) in error.message
        ]
        return [[*parts, name] for name in missing[:1]] or [parts]
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        known = error.schema.get("properties", {})
        unexpected = [name for name in instance if name not in known]
        return [[*parts, name] for name in unexpected] or [parts]
    return [parts]


def madmp_validation_errors(document: Any) -> list[tuple[str, str]]:
    """Every way ``document`` breaks the maDMP 1.2 schema or Kura's ``x_kura`` extension,
    as ``(JSON path, message)`` pairs in document order. Empty when it is valid."""
    schema_validator, extension_validator = _validators()
    found: list[tuple[list, str]] = [
        (parts, error.message)
        for error in schema_validator.iter_errors(document)
        for parts in _error_paths(error)
    ]
    # The schema errors above already say when "dmp" is not an object; a hostile file
    # may make it anything.
    dmp = document.get("dmp") if isinstance(document, dict) else None
    datasets = dmp.get("dataset") if isinstance(dmp, dict) else None
    if isinstance(datasets, list):
        for index, dataset in enumerate(datasets):
            if isinstance(dataset, dict) and EXTENSION in dataset:
                prefix = ("dmp", "dataset", index, EXTENSION)
                found.extend(
                    (parts, error.message)
                    for error in extension_validator.iter_errors(dataset[EXTENSION])
                    for parts in _error_paths(error, prefix)
                )
    found.sort(key=lambda item: [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in item[0]])
    return [(json_path(parts), message) for parts, message in found]


# --- Export ----------------------------------------------------------------------------


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _person_name(user: User) -> str:
    return user.name_ja or user.name_en or user.get_full_name() or user.username


def _person_id(user: User) -> dict | None:
    if user.erad_researcher_number:
        return {"identifier": user.erad_researcher_number, "type": "other"}
    if user.orcid:
        return {"identifier": user.orcid, "type": "orcid"}
    return None


def _stewards(project: Project, role: Role) -> list[User]:
    users = [
        m.user for m in Membership.objects.filter(project=project, role=role).select_related("user")
    ]
    return sorted(users, key=lambda u: (_person_name(u), u.email, u.username))


def _contact(project: Project) -> dict:
    for role in (Role.PM, Role.DATA_MANAGER):
        for user in _stewards(project, role):
            if user.email:
                return {
                    "name": _person_name(user),
                    "mbox": user.email,
                    "contact_id": _person_id(user) or {"identifier": user.email, "type": "other"},
                }
    raise MadmpExportError(
        _("The project needs a project manager or data manager with an e-mail address.")
    )


def _affiliation(project: Project) -> list[dict]:
    # Kura knows people's institutions only through the project they work in.
    institution = project.institution
    if not institution.ror_id:
        return []
    return [
        {
            "name": institution.name_ja or institution.name_en,
            "affiliation_id": {"identifier": institution.ror_id, "type": "ror"},
        }
    ]


def _contributors(project: Project) -> list[dict]:
    contributors = []
    for user in _stewards(project, Role.DATA_MANAGER):
        contributor: dict[str, Any] = {
            "name": _person_name(user),
            "contributor_id": _person_id(user) or [],
            "role": ["DataManager"],
        }
        if user.email:
            contributor["mbox"] = user.email
        if affiliation := _affiliation(project):
            contributor["affiliation"] = affiliation
        contributors.append(contributor)
    return contributors


def _project(project: Project) -> dict:
    funding: dict[str, Any] = {
        "funder_id": {"identifier": FUNDERS[project.funder].erad_code, "type": "other"},
        "funding_status": "granted",
    }
    if project.japan_grant_number:
        funding["grant_id"] = {"identifier": project.japan_grant_number, "type": "other"}
    return {"title": project.name_ja or project.name_en, "funding": [funding]}


def dmp_url(project: Project, base_url: str | None = None) -> str:
    """The absolute URL of the project's DMP page: ``dmp_id`` of the export."""
    base = base_url or settings.KURA_BASE_URL
    try:
        path = reverse("project-dmp", kwargs={"project_id": project.pk})
    except NoReverseMatch:
        path = reverse("project-detail", kwargs={"project_id": project.pk})
    return base.rstrip("/") + path


def _dataset_id(record: DmpRecord) -> dict:
    link = record.repo_url_doi_link
    if match := DOI_URL.match(link):
        return {"identifier": match.group(1), "type": "doi"}
    if link:
        return {"identifier": link, "type": "url"}
    return {"identifier": record.data_number, "type": "other"}


def _distribution(record: DmpRecord, title: str) -> dict:
    distribution: dict[str, Any] = {
        "title": title,
        "data_access": tier_rule(record.access_rights).data_access,
    }
    if record.repo_url_doi_link:
        distribution["access_url"] = record.repo_url_doi_link
    repository = record.repo_information_ja or record.repo_information_en
    link = record.repo_url_doi_link
    if repository and link and not DOI_URL.match(link):
        scheme, _sep, rest = link.partition("://")
        distribution["host"] = {"title": repository, "url": f"{scheme}://{rest.split('/')[0]}/"}
    licence = record.licence_term
    start = record.available_date or record.date_issued_updated
    if licence and licence.uri and start:
        distribution["license"] = [{"license_ref": licence.uri, "start_date": start.isoformat()}]
    return distribution


def _extension_value(record: DmpRecord, name: str):
    value = getattr(record, name)
    return value.isoformat() if isinstance(value, date) else value


def _dataset(record: DmpRecord) -> dict:
    title = record.title_ja or record.title_en
    dataset: dict[str, Any] = {"dataset_id": _dataset_id(record)}
    if dataset["dataset_id"]["type"] != "other":
        dataset["alternate_identifier"] = [{"identifier": record.data_number, "type": "other"}]
    dataset["title"] = title
    if description := record.description_ja or record.description_en:
        dataset["description"] = description
    dataset["type"] = record.data_type
    if record.date_issued_updated:
        dataset["issued"] = record.date_issued_updated.isoformat()
    # Three states: an unknown personal-data state is never written as "no".
    dataset["personal_data"] = PERSONAL_DATA_TERMS[record.contains_personal_data]
    # Kura records no separate "sensitive" flag.
    dataset["sensitive_data"] = "unknown"
    creators = list(record.creators.all())
    if creators:
        dataset["creator"] = [
            {
                "name": c.name_ja or c.name_en,
                "creator_id": (
                    {"identifier": c.erad_researcher_number, "type": "other"}
                    if c.erad_researcher_number
                    else []
                ),
            }
            for c in creators
        ]
    dataset["distribution"] = [_distribution(record, title)]
    extension = {name: _extension_value(record, name) for name in EXTENSION_FIELDS}
    extension["creators"] = [{name: getattr(c, name) for name in CREATOR_FIELDS} for c in creators]
    dataset[EXTENSION] = extension
    return dataset


def madmp_export(*, project: Project, base_url: str | None = None) -> dict:
    """The project's DMP as an RDA maDMP 1.2 document ``{"dmp": {...}}``.

    One dataset per record, in Data No. order. ``dmp_id`` is the URL of the project's DMP
    page on ``base_url`` (default ``settings.KURA_BASE_URL``). Raises
    :class:`MadmpExportError` if no project manager or data manager has an e-mail address,
    which maDMP's ``contact`` requires.
    """
    plan = DataManagementPlan.objects.filter(project=project).first()
    records = list(
        DmpRecord.objects.filter(project=project)
        .prefetch_related("creators")
        .order_by("data_number")
    )
    created = plan.created_at if plan else project.created_at
    modified = max(
        [created] + ([plan.updated_at] if plan else []) + [r.updated_at for r in records]
    )
    dmp: dict[str, Any] = {
        "title": plan.title if plan else project.name_ja or project.name_en,
        "created": _timestamp(created),
        "modified": _timestamp(modified),
        "dmp_id": {"identifier": dmp_url(project, base_url), "type": "url"},
        "language": LANGUAGE,
        # Personal data raises ethical questions; its absence does not rule others out.
        "ethical_issues_exist": (
            "yes" if any(r.contains_personal_data for r in records) else "unknown"
        ),
        "contact": _contact(project),
    }
    if contributors := _contributors(project):
        dmp["contributor"] = contributors
    dmp["project"] = [_project(project)]
    dmp["dataset"] = [_dataset(record) for record in records]
    dmp[EXTENSION] = {
        "version": EXTENSION_VERSION,
        "project": {name: getattr(project, name) for name in PROJECT_FIELDS},
        "plan": {name: getattr(plan, name) if plan else "" for name in PLAN_FIELDS},
    }
    return {"dmp": dmp}


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
    if _depth_exceeds(parsed, MAX_DEPTH):
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
    return parsed


# The maDMP schema nests about eight levels; the limit leaves room for extensions while
# keeping the schema validator (which recurses) far from Python's recursion limit.
MAX_DEPTH = 64


def _depth_exceeds(document: Any, limit: int) -> bool:
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


def _in_language(text: str, language: str) -> dict[str, str]:
    return {"ja": text, "en": ""} if language == "jpn" else {"ja": "", "en": text}


def _licence_code(url: str) -> str:
    wanted = url.rstrip("/").replace("http://", "https://")
    for term in LICENSES:
        if term.uri and term.uri.rstrip("/") == wanted:
            return term.code
    return "OTHER"


def _data_number(dataset: dict) -> str:
    dataset_id = dataset["dataset_id"]
    if dataset_id["type"] != "other":
        for alternate in dataset.get("alternate_identifier", []):
            if alternate["type"] == "other":
                return alternate["identifier"]
    return dataset_id["identifier"]


def _repo_link(dataset: dict, distribution: dict) -> str:
    if "access_url" in distribution:
        return distribution["access_url"]
    dataset_id = dataset["dataset_id"]
    if dataset_id["type"] == "doi":
        doi = dataset_id["identifier"]
        return doi if DOI_URL.match(doi) else f"https://doi.org/{doi}"
    if dataset_id["type"] == "url":
        return dataset_id["identifier"]
    return ""


def _standard_values(dataset: dict, distribution: dict, language: str) -> dict[str, Any]:
    """Record fields read from standard properties where ``x_kura`` does not give them
    (documents written elsewhere): the text in the document's language, access from
    ``data_access`` and the licence dates, the licence from its URL, the creators."""
    row: dict[str, Any] = {}
    for base, text in (
        ("title", dataset.get("title", "")),
        ("description", dataset.get("description", "")),
        ("repo_information", distribution.get("host", {}).get("title", "")),
    ):
        for suffix, value in _in_language(text, language).items():
            row[f"{base}_{suffix}"] = value
    licences = distribution.get("license", [])
    access = distribution.get("data_access")
    if access:
        start = max((lic["start_date"] for lic in licences), default="")
        dated = bool(start) and start > datetime.now(UTC).date().isoformat()
        row["access_rights"] = tier_of_data_access(access, dated=dated)
    if licences:
        row["data_policy_license"] = _licence_code(licences[0]["license_ref"])
    row["creators"] = [
        {
            "name_ja" if language == "jpn" else "name_en": creator["name"],
            "erad_researcher_number": (
                creator["creator_id"]["identifier"]
                if isinstance(creator["creator_id"], dict)
                and re.fullmatch(r"[0-9]{8}", creator["creator_id"]["identifier"])
                else ""
            ),
        }
        for creator in dataset.get("creator", [])
    ]
    return row


def _dataset_row(
    dataset: dict, index: int, language: str
) -> tuple[dict[str, Any], list[ImportProblem]]:
    distributions = dataset.get("distribution", [])
    distribution = distributions[0] if distributions else {}
    language = dataset.get("language", language)
    extension = dataset.get(EXTENSION, {})
    row: dict[str, Any] = {
        "data_number": _data_number(dataset),
        "date_issued_updated": dataset.get("issued"),
        "contains_personal_data": {"yes": True, "no": False}.get(dataset["personal_data"]),
        "repo_url_doi_link": _repo_link(dataset, distribution),
    }
    if "type" in dataset:
        row["data_type"] = dataset["type"]
    row.update(_standard_values(dataset, distribution, language))
    row.update(extension)
    if "available_date" not in extension:
        starts = [lic["start_date"] for lic in distribution.get("license", [])]
        dated = row.get("access_rights") in dated_tiers()
        row["available_date"] = max(starts) if dated and starts else None

    problems: list[ImportProblem] = []
    access = extension.get("access_rights")
    data_access = distribution.get("data_access")
    expected = madmp_data_access().get(access)
    if expected and data_access and data_access != expected:
        problems.append(
            _problem(
                f"dmp.dataset[{index}].distribution[0].data_access",
                data_access,
                _("Contradicts %(field)s %(value)s, which means data_access %(expected)s.")
                % {
                    "field": f"{EXTENSION}.access_rights",
                    "value": access,
                    "expected": expected,
                },
                row=index + 1,
            )
        )
    return row, problems


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
    *, actor, project: Project, document: bytes | str, ip_address: str | None = None
) -> list[DmpRecord]:
    """Add the datasets of an maDMP 1.2 document to ``project`` as records.

    All or nothing: a document that is not JSON, breaks the maDMP schema or Kura's
    ``x_kura`` extension, or holds a dataset :func:`records_import` refuses (unknown
    vocabulary value, duplicate Data No., missing required item) raises
    :class:`ImportRefused` listing every problem, each with its JSON path (e.g.
    ``dmp.dataset[2].title``) and the dataset's position (from 1) as ``row``; then the
    database is unchanged. Project-level parts (``contact``, ``project``, the ``dmp``'s
    ``x_kura``) are not applied.
    """
    parsed = _parse(document)
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
    datasets = parsed["dmp"]["dataset"]
    language = parsed["dmp"]["language"]
    rows: list[dict[str, Any]] = []
    problems: list[ImportProblem] = []
    for index, dataset in enumerate(datasets):
        row, row_problems = _dataset_row(dataset, index, language)
        rows.append(row)
        problems.extend(row_problems)

    with transaction.atomic():
        try:
            records = records_import(
                actor=actor,
                project=project,
                rows=rows,
                source="madmp-json",
                ip_address=ip_address,
            )
        except ImportRefused as exc:
            records = []
            problems.extend(_record_problems(exc.problems, datasets))
        if problems:
            # Also undoes the records if only this module found problems.
            raise ImportRefused(sorted(problems, key=lambda p: (p.row or 0, p.field)))
    return records


def _record_problems(found: list[ImportProblem], datasets: list[dict]) -> list[ImportProblem]:
    """``records_import``'s problems, pointed at the JSON path of the dataset's item."""
    located = []
    for problem in found:
        if problem.row is None:
            located.append(problem)
            continue
        index = problem.row - 1  # records_import numbers rows from 1
        dataset = datasets[index] if 0 <= index < len(datasets) else {}
        located.append(
            ImportProblem(
                row=index + 1,
                field=_record_problem_path(index, problem.field, dataset),
                value=problem.value,
                message=problem.message,
            )
        )
    return located
