"""The whole DMP as RDA maDMP 1.2 JSON (docs/metadata.md, "maDMP 1.2"): the schema and
the export. The import is :mod:`dmp.madmp_import`.

:func:`madmp_export` builds ``{"dmp": {...}}`` with one ``dataset`` per :class:`DmpRecord`
and checks nothing itself; :func:`madmp_validation_errors` checks a document against the
official schema shipped in ``dmp/schemas/`` (see the README there) and Kura's ``x_kura``.

maDMP has no place for much of the Cabinet Office common metadata (the ja/en pairs, the
funder's free/fee and licence codes, the data manager's contact, creators with e-Rad
numbers, remarks, metadata access…). The schema allows extra properties on every object,
so each dataset carries them in ``x_kura`` under the model's field names, and an import
restores every field of every record from the standard properties plus ``x_kura``.

What an import kept (the dataset as it came on each record, the project-level parts on
the plan) is written back in place: :func:`_merged` puts Kura's changes since the import
into the original, so an unchanged import comes back exactly.
"""

import copy
import json
import re
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError

from accounts.models import Membership, Project, Role, User
from core.tiers import tier_rule
from core.vocabularies import FUNDERS

from .models import RECORD_FIELDS, DataManagementPlan, DmpRecord
from .records_import import (
    CREATOR_FIELDS,
)

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "maDMP-schema-1.2.json"
EXTENSION = "x_kura"
EXTENSION_VERSION = 1
LANGUAGE = "jpn"  # ISO 639-3: the common metadata is Japanese first
# maDMP's personal_data for the record's three states (None: unknown).

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


def person_name(user: User) -> str:
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
    return sorted(users, key=lambda u: (person_name(u), u.email, u.username))


def _contact(project: Project) -> dict:
    for role in (Role.PM, Role.DATA_MANAGER):
        for user in _stewards(project, role):
            if user.email:
                return {
                    "name": person_name(user),
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
            "name": person_name(user),
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


def record_dataset(
    record: DmpRecord, *, extension: bool = True, distribution_title: str | None = None
) -> dict:
    """The record as Kura writes it (with its ``x_kura`` unless ``extension`` is false),
    before what an import kept is merged back (:func:`_merged`)."""
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
    dataset["personal_data"] = PERSONAL_DATA[record.contains_personal_data]
    # Kura records no separate "sensitive" flag: an imported dataset keeps its own.
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
    dataset["distribution"] = [_distribution(record, distribution_title or title)]
    if extension:
        kura = {name: _extension_value(record, name) for name in EXTENSION_FIELDS}
        kura["creators"] = [{name: getattr(c, name) for name in CREATOR_FIELDS} for c in creators]
        dataset[EXTENSION] = kura
    return dataset


# The three states of personal data, as maDMP writes them.
PERSONAL_DATA = {True: "yes", False: "no", None: "unknown"}


def _merged(original: Any, baseline: Any, current: Any) -> Any:
    """What an imported part becomes on export: ``original`` (as the document had it)
    with the changes Kura made since the import, ``baseline`` being what Kura wrote for
    it right after the import and ``current`` what it writes now.

    Unchanged, the original comes back exactly (a DOI stays the ``dataset_id``, a licence
    its start date, a free-text ``type`` its text); in objects only the properties Kura
    changed are replaced, added or removed, everything else stays in place; a list whose
    length Kura changed is Kura's list."""
    if current == baseline:
        return copy.deepcopy(original)
    if isinstance(original, dict) and isinstance(baseline, dict) and isinstance(current, dict):
        merged = copy.deepcopy(original)
        for key in baseline:
            if key not in current:
                merged.pop(key, None)
        for key, value in current.items():
            if key in baseline and key in original:
                merged[key] = _merged(original[key], baseline[key], value)
            elif baseline.get(key, _ABSENT) != value:
                merged[key] = copy.deepcopy(value)
        return merged
    if (
        isinstance(original, list)
        and isinstance(baseline, list)
        and isinstance(current, list)
        and len(original) == len(baseline) == len(current)
    ):
        return [_merged(o, b, c) for o, b, c in zip(original, baseline, current, strict=True)]
    return copy.deepcopy(current)


_ABSENT = object()


def imported_record_dataset(record: DmpRecord) -> dict:
    """What Kura writes for an imported record, to compare with what it wrote at the
    import. The distribution's title is the document's (else the record's title at the
    import), not the record's title now: Kura has no item of its own for it."""
    imported = record.madmp_extension
    first = (imported["dataset"].get("distribution") or [{}])[0]
    title = first.get("title") or imported.get("distribution_title")
    return record_dataset(record, extension=False, distribution_title=title)


def export_records(project: Project) -> list[DmpRecord]:
    """The project's records in export order: those of imports in their document's order
    (earlier imports first), then the others by Data No."""
    records = list(
        DmpRecord.objects.filter(project=project)
        .prefetch_related("creators")
        .order_by("data_number")
    )

    def order(record: DmpRecord):
        extension = record.madmp_extension or {}
        if "position" in extension:
            return (0, extension.get("import", ""), extension["position"], record.data_number)
        return (1, "", 0, record.data_number)

    return sorted(records, key=order)


def plan_header(
    project: Project,
    plan: DataManagementPlan | None,
    records: list[DmpRecord],
    base_url: str | None = None,
) -> dict[str, Any]:
    """The ``dmp`` as Kura writes it, without datasets and ``x_kura``; without
    ``contact`` when no steward has an e-mail address."""
    created = plan.created_at if plan else project.created_at
    modified = max(
        [created] + ([plan.updated_at] if plan else []) + [r.updated_at for r in records]
    )
    header: dict[str, Any] = {
        "title": plan.title if plan else project.name_ja or project.name_en,
        "created": _timestamp(created),
        "modified": _timestamp(modified),
        "dmp_id": {"identifier": dmp_url(project, base_url), "type": "url"},
        "language": LANGUAGE,
        # Personal data raises ethical questions; its absence does not rule others out.
        "ethical_issues_exist": (
            "yes" if any(r.contains_personal_data for r in records) else "unknown"
        ),
    }
    try:
        header["contact"] = _contact(project)
    except MadmpExportError:
        pass
    if contributors := _contributors(project):
        header["contributor"] = contributors
    header["project"] = [_project(project)]
    return header


def madmp_export(*, project: Project, base_url: str | None = None) -> dict:
    """The project's DMP as an RDA maDMP 1.2 document ``{"dmp": {...}}``.

    One dataset per record: those of imports in their document's order, then the others
    in Data No. order. ``dmp_id`` is the URL of the project's DMP page on ``base_url``
    (default ``settings.KURA_BASE_URL``). What imports kept (the plan's project-level
    parts, each dataset beyond Kura's items) is written back in place, with what Kura
    changed since (:func:`_merged`). Raises :class:`MadmpExportError` if there is no
    contact: no imported one, and no project manager or data manager with an e-mail
    address.
    """
    plan = DataManagementPlan.objects.filter(project=project).first()
    records = export_records(project)
    kept = plan.madmp_extension if plan else {}
    if kept.get("dmp"):
        # Compared with the header Kura wrote at the import, so on the same base URL.
        header = _merged(kept["dmp"], kept["baseline"], plan_header(project, plan, records))
    else:
        header = plan_header(project, plan, records, base_url)
    if "contact" not in header:
        raise MadmpExportError(
            _("The project needs a project manager or data manager with an e-mail address.")
        )
    datasets = []
    for record in records:
        imported = record.madmp_extension or {}
        if "dataset" in imported:
            dataset = _merged(
                imported["dataset"], imported["baseline"], imported_record_dataset(record)
            )
        else:
            dataset = record_dataset(record, extension=False)
        dataset[EXTENSION] = record_dataset(record)[EXTENSION]
        datasets.append(dataset)
    dmp = {**header, "dataset": datasets}
    dmp[EXTENSION] = {
        "version": EXTENSION_VERSION,
        "project": {name: getattr(project, name) for name in PROJECT_FIELDS},
        "plan": {name: getattr(plan, name) if plan else "" for name in PLAN_FIELDS},
    }
    return {**kept.get("top", {}), "dmp": dmp}
