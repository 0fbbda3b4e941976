"""GakuNin RDM's RO-Crate export, read into DMP records.

GakuNin RDM (RCOSDP/RDM-osf.io, ``addons/metadata/packages.py`` and ``jsonld.py``)
exports a project as an RO-Crate: ``ro-crate-metadata.json``, alone or in the crate's zip.
Each project-metadata draft or registration is an entity of type ``RDMProjectMetadata``
whose ``rdmSchema`` names its schema (an ``RDMMetadataSchema`` entity) and whose ``text``
is the answers as JSON, ``{question id: {"value": …}}``. Under the Cabinet Office common
metadata schema (:data:`SCHEMA_NAME`, ``e-rad-metadata-1.json``), the answer
``grdm-files`` lists the managed data, each with its ``grdm-file:…`` items: one record
each. The items and vocabularies are the ones Kura's common metadata follow
(docs/metadata.md), so codes pass through; the two access vocabularies are mapped.

The rows go to :func:`dmp.records_import.records_import`: all or none, every problem
listed. The project-level answers (funder, Japan Grant Number, project name) are not read,
as with the CSV: records go into the project they are imported into.
"""

import io
import json
import lzma
import sys
import zipfile
import zlib
from typing import Any

from django.utils.translation import gettext as _
from rocrate.rocrate import ROCrate

from core.vocabularies import ACCESS_RIGHTS, MetadataAccess

from .madmp_import import depth_exceeds, unstorable_value
from .records_import import ImportProblem, ImportRefused, records_import

SCHEMA_NAME = "公的資金による研究データのメタデータ登録"
METADATA_FILE = "ro-crate-metadata.json"
MAX_METADATA_BYTES = 20 * 1024 * 1024  # as the import form's limit
MAX_DEPTH = 64  # RO-Crate JSON-LD nests a few levels; the answers' JSON a few more

# grdm-file item → record field, where the names differ only by their dashes.
TEXT_ITEMS = (
    "data-number",
    "title-ja",
    "title-en",
    "date-issued-updated",
    "data-research-field",
    "data-type",
    "file-size",
    "data-policy-free",
    "data-policy-license",
    "data-policy-cite-ja",
    "data-policy-cite-en",
    "available-date",
    "repo-information-ja",
    "repo-information-en",
    "repo-url-doi-link",
    "hosting-inst-ja",
    "hosting-inst-en",
    "hosting-inst-id",
    "data-man-type",
    "data-man-number",
    "data-man-name-ja",
    "data-man-name-en",
    "data-man-org-ja",
    "data-man-org-en",
    "data-man-address-ja",
    "data-man-address-en",
    "data-man-tel",
    "data-man-email",
    "remarks-ja",
    "remarks-en",
)
RENAMED_ITEMS = {"data-description-ja": "description_ja", "data-description-en": "description_en"}
# GakuNin RDM answers access rights with the COAR labels Kura's terms carry in English.
ACCESS_RIGHTS_BY_LABEL = {term.label_en: term.code for term in ACCESS_RIGHTS}
METADATA_ACCESS = {
    "open access": MetadataAccess.OPEN,
    "restricted access": MetadataAccess.RESTRICTED,
    "closed access": MetadataAccess.CLOSED,
}


def _refused(message: str, field: str = "", value: Any = "", row: int | None = None):
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return ImportRefused([ImportProblem(row=row, field=field, value=text[:200], message=message)])


# What reading a member of a damaged or unusual zip raises: a corrupt deflate or LZMA
# stream, a truncated one, an encrypted member (RuntimeError), a method zipfile lacks.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    NotImplementedError,
    OSError,
    RuntimeError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
)


def _metadata_bytes(upload: bytes) -> bytes:
    """``ro-crate-metadata.json`` itself, or read from the crate's zip (that member only,
    and no more of it than the limit, whatever the zip says its size is)."""
    if not upload.startswith(b"PK"):
        return upload
    try:
        with zipfile.ZipFile(io.BytesIO(upload)) as archive:
            names = [n for n in archive.namelist() if n.rsplit("/", 1)[-1] == METADATA_FILE]
            if not names:
                raise _refused(_("The zip holds no %(file)s.") % {"file": METADATA_FILE})
            with archive.open(min(names, key=len)) as member:
                data = member.read(MAX_METADATA_BYTES + 1)
    except ZIP_ERRORS as exc:
        raise _refused(_("The zip cannot be read: %(error)s") % {"error": exc}) from exc
    if len(data) > MAX_METADATA_BYTES:
        raise _refused(_("%(file)s is larger than 20 MB.") % {"file": METADATA_FILE})
    return data


def _json(text: bytes | str, what: str) -> Any:
    """``text`` parsed, or a clean refusal naming ``what`` could not be read."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        value = json.loads(text)
    except UnicodeDecodeError as exc:
        raise _refused(_("%(what)s is not UTF-8 text.") % {"what": what}) from exc
    except json.JSONDecodeError as exc:
        raise _refused(
            _("%(what)s is not valid JSON: %(error)s (line %(line)d, column %(column)d).")
            % {"what": what, "error": exc.msg, "line": exc.lineno, "column": exc.colno}
        ) from exc
    except (RecursionError, ValueError) as exc:  # nesting, or an integer of 4,300+ digits
        raise _refused(
            _("%(what)s holds values too deep or too long to be metadata (over %(digits)s digits).")
            % {"what": what, "digits": f"{sys.get_int_max_str_digits():,}"}
        ) from exc
    if depth_exceeds(value, MAX_DEPTH):
        raise _refused(
            _("%(what)s is nested more than %(depth)d levels deep.")
            % {"what": what, "depth": MAX_DEPTH}
        )
    if found := unstorable_value(value):
        path, message = found
        raise _refused(message, field=f"{what}: {path}" if path else what)
    return value


def _project_metadata(crate: ROCrate) -> dict:
    """The answers of the newest project metadata under the common-metadata schema."""
    found = []
    for entity in crate.contextual_entities:
        if entity.type != "RDMProjectMetadata":
            continue
        schema = _entity_named(crate, entity.get("rdmSchema"))
        if schema is None or schema.get("name") != SCHEMA_NAME:
            continue
        found.append((str(entity.get("dateModified") or ""), entity))
    if not found:
        raise _refused(
            _(
                "The RO-Crate holds no GakuNin RDM project metadata under the schema "
                "“%(schema)s”: register the project's common metadata in GakuNin RDM first."
            )
            % {"schema": SCHEMA_NAME}
        )
    _modified, entity = max(found, key=lambda pair: pair[0])
    answers = _json(entity.get("text") or "", _("The project metadata"))
    if not isinstance(answers, dict):
        raise _refused(_("The project metadata is not a set of answers."))
    return answers


def _entity_named(crate, reference: Any):
    """The entity ``reference`` points to (an entity, or ``{"@id": …}``), or None for
    anything else: a string, a list, an id no entity has."""
    if hasattr(reference, "id") and hasattr(reference, "get"):
        return reference
    if isinstance(reference, dict) and isinstance(reference.get("@id"), str):
        found = crate.get(reference["@id"])
        return found if hasattr(found, "get") else None
    return None


def _answer(answers: dict, key: str) -> Any:
    answer = answers.get(key)
    return answer.get("value") if isinstance(answer, dict) else answer


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ("" if value is None else str(value))


def _creators(value: Any, problems: list[ImportProblem], row: int) -> list[dict]:
    if isinstance(value, str):
        value = (
            _json(value, _("The creators of file %(row)d") % {"row": row}) if value.strip() else []
        )
    if not isinstance(value, list):
        problems.append(
            ImportProblem(row, "creators", _text(value)[:200], _("Creators must be a list."))
        )
        return []
    creators = []
    for creator in value:
        if not isinstance(creator, dict):
            creators.append(creator)  # records_import says what is wrong with it
            continue
        creators.append(
            {
                "erad_researcher_number": _text(creator.get("number")),
                "name_ja": _text(creator.get("name_ja")),
                "name_en": _text(creator.get("name_en")),
            }
        )
    return creators


def _file_row(metadata: dict, row: int, problems: list[ImportProblem]) -> dict:
    """One record's fields from a file's ``grdm-file:…`` items (empty items left out,
    so the model's defaults apply and the required ones are reported as missing)."""
    fields: dict[str, Any] = {}
    items = {key.removeprefix("grdm-file:"): _answer(metadata, key) for key in metadata}
    for item in TEXT_ITEMS:
        if value := _text(items.get(item)):
            fields[item.replace("-", "_")] = value
    for item, name in RENAMED_ITEMS.items():
        if value := _text(items.get(item)):
            fields[name] = value
    if access := _text(items.get("access-rights")):
        fields["access_rights"] = ACCESS_RIGHTS_BY_LABEL.get(access, access)
    if access := _text(items.get("metadata-access-rights")):
        fields["metadata_access"] = METADATA_ACCESS.get(access, access)
    if items.get("creators"):
        fields["creators"] = _creators(items["creators"], problems, row)
    return fields


def grdm_rocrate_rows(upload: bytes) -> tuple[list[dict], list[str]]:
    """The records of a GakuNin RDM RO-Crate export (``ro-crate-metadata.json`` or the
    crate's zip), as rows for :func:`~dmp.records_import.records_import`, and each row's
    file path in GakuNin RDM (for the problems). Raises :class:`ImportRefused` when the
    file is not such a crate."""
    document = _json(_metadata_bytes(upload), METADATA_FILE)
    if not isinstance(document, dict) or not isinstance(document.get("@graph"), list):
        raise _refused(
            _("This is not an RO-Crate: %(file)s has no @graph.") % {"file": METADATA_FILE}
        )
    try:
        crate = ROCrate(document)
    except Exception as exc:  # noqa: BLE001 - the library's many refusals all mean one thing
        raise _refused(
            _("This is not an RO-Crate the rocrate library can read: %(error)s") % {"error": exc}
        ) from exc
    answers = _project_metadata(crate)
    files = _answer(answers, "grdm-files") or []
    if isinstance(files, str):
        files = _json(files, "grdm-files")
    if not isinstance(files, list) or not files:
        raise _refused(_("The project metadata lists no data (grdm-files is empty)."))
    rows, paths, problems = [], [], []
    for number, entry in enumerate(files, start=1):
        metadata = entry.get("metadata") if isinstance(entry, dict) else None
        if not isinstance(metadata, dict):
            problems.append(ImportProblem(number, "grdm-files", "", _("A file without metadata.")))
            continue
        rows.append(_file_row(metadata, number, problems))
        paths.append(_text(entry.get("path")))
    if problems:
        raise ImportRefused(problems)
    return rows, paths


def grdm_rocrate_import(*, actor, project, upload: bytes, ip_address: str | None = None) -> list:
    """Import the records of a GakuNin RDM RO-Crate export into ``project``: all or
    none (:func:`~dmp.records_import.records_import`, format ``grdm-rocrate``), every
    problem naming the file in GakuNin RDM it is about."""
    rows, paths = grdm_rocrate_rows(upload)
    try:
        return records_import(
            actor=actor, project=project, rows=rows, source="grdm-rocrate", ip_address=ip_address
        )
    except ImportRefused as refused:
        raise ImportRefused(
            [
                ImportProblem(
                    p.row,
                    f"{paths[p.row - 1]}: {p.field}" if p.row and paths[p.row - 1] else p.field,
                    p.value,
                    p.message,
                )
                for p in refused.problems
            ]
        ) from refused
