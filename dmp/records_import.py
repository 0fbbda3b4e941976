"""The one import of DMP records: every importer (CSV, maDMP JSON) ends here.

An import is all or nothing. Every row is checked completely and every problem is
collected, so that the person importing sees the whole list at once; if there is any,
nothing is written.
"""

import datetime
import re
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Project, Role
from accounts.roles import project_role
from core.audit import AuditAction, audit_record
from core.tiers import dated_tiers

from .common_metadata import missing_requirements
from .history import record_revisions_create
from .models import CREATOR_FIELDS, DmpRecord, DmpRecordRevision, RecordCreator
from .models import RECORD_FIELDS as RECORD_NAMES

IMPORT_ROLES = (Role.PM, Role.DATA_MANAGER)

# A row may carry what its source holds beyond Kura's items (an imported maDMP dataset),
# kept on the record as it is.
EXTENSION_KEY = "madmp_extension"

# The file formats records are imported from: (code, label). The code is what the import
# form sends and what the audit trail keeps.
IMPORT_FORMATS = [
    ("csti-csv", gettext_lazy("Common-metadata CSV (Japanese or English)")),
    ("madmp-json", gettext_lazy("maDMP 1.2 JSON")),
    ("grdm-rocrate", gettext_lazy("GakuNin RDM RO-Crate (ro-crate-metadata.json or its zip)")),
]

# Fields an import may set: everything a person fills in, not the bookkeeping.
RECORD_FIELDS = {name: DmpRecord._meta.get_field(name) for name in RECORD_NAMES}
DATE_FIELDS = {
    name for name, field in RECORD_FIELDS.items() if field.get_internal_type() == "DateField"
}
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ImportProblem:
    row: int | None  # 1-based data row (CSV) or dataset index + 1 (maDMP); None: whole file
    field: str  # model field name, column header or JSON path
    value: str
    message: str  # why, in the user's language


class ImportRefused(Exception):
    """The import changed nothing; ``problems`` says everything that is wrong."""

    def __init__(self, problems: list[ImportProblem]):
        self.problems = list(problems)
        super().__init__(
            "; ".join(f"row {p.row}, {p.field}: {p.message}" for p in self.problems[:5])
        )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


class _Row:
    """Collects the problems of one row, at most one per field."""

    def __init__(self, number: int, problems: list[ImportProblem]):
        self.number = number
        self.problems = problems
        self.fields_with_problems: set[str] = set()

    def problem(self, field: str, value: Any, message: str) -> None:
        if field in self.fields_with_problems:
            return
        self.fields_with_problems.add(field)
        self.problems.append(ImportProblem(self.number, field, _text(value), message))


def _parse_date(row: _Row, field: str, value: Any) -> datetime.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        row.problem(field, value, _("Enter a date (YYYY-MM-DD), not a date and time."))
        return None
    if isinstance(value, datetime.date):
        return value
    text = str(value).strip()
    try:
        if not ISO_DATE.match(text):
            raise ValueError(text)
        return datetime.date.fromisoformat(text)
    except ValueError:
        row.problem(field, value, _("“%(value)s” is not a date (YYYY-MM-DD).") % {"value": value})
        return None


def _record_from_row(row: _Row, project: Project, data: dict) -> DmpRecord:
    """An unsaved record with the row's values, its problems noted on ``row``."""
    values: dict[str, Any] = {}
    for field_name, value in data.items():
        if field_name == "creators":
            continue
        if field_name == EXTENSION_KEY:
            values[EXTENSION_KEY] = value if isinstance(value, dict) else {}
            continue
        field = RECORD_FIELDS.get(field_name)
        if field is None:
            row.problem(field_name, value, _("Kura has no such item."))
            continue
        if field_name in DATE_FIELDS:
            value = _parse_date(row, field_name, value)
        elif field.choices and value not in ("", None):
            codes = {str(code) for code, _label in field.flatchoices}
            if str(value) not in codes:
                row.problem(
                    field_name,
                    value,
                    _("“%(value)s” is not one of the values of %(item)s.")
                    % {"value": value, "item": field.verbose_name},
                )
                continue
        elif value is None and not field.null:
            value = ""  # "not given" for a text item
        values[field_name] = value

    # A file that does not say whether the data hold personal data (the common-metadata
    # CSV has no such column) leaves it unknown, which blocks opening them, never "no".
    values.setdefault("contains_personal_data", None)
    record = DmpRecord(project=project, **values)

    for requirement in missing_requirements(record):
        if not any(f in row.fields_with_problems for f in requirement.fields):
            row.problem(
                requirement.name, "", _("%(item)s is required.") % {"item": requirement.label}
            )

    # Convert and validate every field (lengths, e-mail, URL, ROR, e-Rad number, choices).
    # The project is excluded (it is known to exist) and so are uniqueness and the check
    # constraints: those are checked below for the whole file with one query.
    try:
        record.full_clean(
            exclude=["project", *row.fields_with_problems],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as error:
        for field_name, messages in error.message_dict.items():
            row.problem(field_name, data.get(field_name, ""), " ".join(messages))

    if (
        record.access_rights not in dated_tiers()
        and record.available_date is not None
        and "access_rights" not in row.fields_with_problems
    ):
        row.problem(
            "available_date",
            record.available_date,
            _("An available date is given only for embargoed data."),
        )
    return record


def _creators_from_row(row: _Row, data: dict) -> list[RecordCreator]:
    creators = data.get("creators") or []
    if not isinstance(creators, list):
        row.problem("creators", creators, _("Creators must be a list."))
        return []
    result = []
    for index, creator_data in enumerate(creators):
        path = f"creators[{index}]"
        if not isinstance(creator_data, dict):
            row.problem(path, creator_data, _("A creator must have a name."))
            continue
        values = {}
        for key, value in creator_data.items():
            if key not in CREATOR_FIELDS:
                row.problem(f"{path}.{key}", value, _("Kura has no such item."))
            else:
                values[key] = "" if value is None else value
        creator = RecordCreator(position=index, **values)
        try:
            creator.full_clean(exclude=["record"], validate_constraints=False)
        except ValidationError as error:
            for key, messages in error.message_dict.items():
                row.problem(f"{path}.{key}", values.get(key, ""), " ".join(messages))
        if not (creator.name_ja or creator.name_en):
            row.problem(f"{path}.name", "", _("A creator must have a name."))
        result.append(creator)
    return result


def records_check(*, project: Project, rows: list[dict]) -> list[ImportProblem]:
    """Every problem :func:`records_import` would refuse ``rows`` for, writing nothing
    (the maDMP import's review step reads them before it asks the person)."""
    return _records_parse(project, rows)[1]


def _records_parse(
    project: Project, rows: list[dict]
) -> tuple[list[tuple[DmpRecord, list[RecordCreator]]], list[ImportProblem]]:
    problems: list[ImportProblem] = []
    if not rows:
        return [], [ImportProblem(None, "", "", _("The file contains no records."))]

    parsed: list[tuple[DmpRecord, list[RecordCreator]]] = []
    first_row_of: dict[str, int] = {}
    checkers: list[_Row] = []
    for number, data in enumerate(rows, start=1):
        row = _Row(number, problems)
        checkers.append(row)
        if not isinstance(data, dict):
            row.problem("", data, _("A record must be a set of items."))
            continue
        record = _record_from_row(row, project, data)
        creators = _creators_from_row(row, data)
        parsed.append((record, creators))
        if record.data_number:
            if record.data_number in first_row_of:
                row.problem(
                    "data_number",
                    record.data_number,
                    _("Data No. %(number)s is also in row %(row)d.")
                    % {"number": record.data_number, "row": first_row_of[record.data_number]},
                )
            else:
                first_row_of[record.data_number] = number

    existing = set(
        DmpRecord.objects.filter(project=project, data_number__in=list(first_row_of)).values_list(
            "data_number", flat=True
        )
    )
    for data_number in sorted(existing, key=first_row_of.__getitem__):
        checkers[first_row_of[data_number] - 1].problem(
            "data_number",
            data_number,
            _("Data No. %(number)s already exists in this project.") % {"number": data_number},
        )
    problems.sort(key=lambda p: p.row or 0)  # stable: within a row, in checking order
    return parsed, problems


def records_import(
    *,
    actor,
    project: Project,
    rows: list[dict],
    source: str = "csti-csv",
    ip_address: str | None = None,
) -> list[DmpRecord]:
    """Create the DMP records ``rows`` describe in ``project``, all of them or none.

    ``rows`` are dicts of DmpRecord model field names (text, dates as ``date`` or
    ``YYYY-MM-DD``, vocabulary codes) plus an optional ``"creators"`` list of dicts with
    ``erad_researcher_number``, ``name_ja``, ``name_en``, ``affiliation_ja`` and
    ``affiliation_en``.

    Every row is checked completely: unknown items and vocabulary values, the model's
    field validation, missing required items (:func:`dmp.common_metadata.missing_items`),
    dates and the embargo rule (an available date exactly when embargoed), and Data Nos.
    repeated within the rows or already in the project. If anything is wrong, raises
    :class:`ImportRefused` with every problem and changes nothing; otherwise creates the
    records and their creators in one transaction and returns the records.

    Only the project's PM and data managers may import (else ``PermissionDenied``).

    Each record keeps its first revision (:mod:`dmp.history`, the format as its detail),
    and an import audits one ``records_imported`` event: the format it came in (``source``, a
    code of :data:`IMPORT_FORMATS`), how many records it created and their Data Nos.
    """

    if project_role(actor, project) not in IMPORT_ROLES:
        raise PermissionDenied(_("Only the project manager and data managers import records."))

    parsed, problems = _records_parse(project, rows)
    if problems:
        raise ImportRefused(problems)

    try:
        with transaction.atomic():
            records = DmpRecord.objects.bulk_create([record for record, _c in parsed])
            creators = []
            for record, record_creators in parsed:
                for creator in record_creators:
                    creator.record = record
                    creators.append(creator)
            RecordCreator.objects.bulk_create(creators)
            record_revisions_create(
                records=[(record, record_creators) for record, record_creators in parsed],
                actor=actor,
                kind=DmpRecordRevision.Kind.IMPORTED,
                detail=source,
            )
            audit_record(
                actor=actor,
                action=AuditAction.RECORDS_IMPORTED,
                project=project,
                ip_address=ip_address,
                after={"format": source, "created": len(records)},
                detail=", ".join(record.data_number for record in records),
            )
    except IntegrityError as error:
        # Someone created one of these Data Nos. between the check and the insert.
        raise ImportRefused(
            [ImportProblem(None, "data_number", "", _("The records changed meanwhile; try again."))]
        ) from error
    return records
