"""The funders' reports of DMP records: the common-metadata CSV (export and import) and the
Moonshot data-management table (XLSX).

Exports stream: records are read in chunks with their creators prefetched per chunk, so
memory stays flat however many records a project has.
"""

import codecs
import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from django.db.models import Prefetch, QuerySet
from django.utils.translation import gettext as _

from core.spreadsheet import csv_cell, csv_cell_text
from core.vocabularies import DATA_POLICY_FREE

from .common_metadata import (
    CREATOR_SEPARATOR,
    CSV_COLUMNS,
    Kind,
    column_parse,
    csv_headers,
    record_csv_row,
    text_language,
)
from .models import DmpRecord, RecordCreator
from .records_import import ImportProblem, ImportRefused

CHUNK_SIZE = 500
BOM = codecs.BOM_UTF8


def _for_export(records: QuerySet[DmpRecord]) -> Iterator[DmpRecord]:
    """``records`` in chunks, each with its project and creators."""
    chunks = (
        records.select_related("project")
        .prefetch_related(
            Prefetch("creators", queryset=RecordCreator.objects.order_by("position", "pk"))
        )
        .iterator(chunk_size=CHUNK_SIZE)
    )
    for record in chunks:
        yield record
        # Prefetching links every creator back to its record: a reference cycle, which
        # only the cyclic garbage collector frees, and late (by then many chunks have
        # piled up). Dropping the prefetched creators once the record is written lets
        # reference counting free each chunk at once.
        record.__dict__.pop("_prefetched_objects_cache", None)


class _Line:
    """A file for ``csv.writer`` that hands back each line it is given."""

    def write(self, text: str) -> str:
        return text


# --- CSV -----------------------------------------------------------------------------------


def csv_rows(records: QuerySet[DmpRecord], language: str) -> Iterator[bytes]:
    """The common-metadata CSV of ``records`` (docs/metadata.md, "CSV columns"), as
    encoded lines: UTF-8 with a BOM (so that Excel reads it as UTF-8), CRLF line ends. The
    ``ja`` file carries the Japanese values and labels, the ``en`` file the English ones.

    Cells that a spreadsheet would read as a formula get a leading ``'``
    (:func:`core.spreadsheet.csv_cell`); :func:`csv_parse` removes it again.

    Suitable for ``StreamingHttpResponse``.
    """
    writer = csv.writer(_Line())
    yield BOM + writer.writerow(csv_headers(language)).encode("utf-8")
    for record in _for_export(records):
        row = [csv_cell(cell) for cell in record_csv_row(record, language)]
        yield writer.writerow(row).encode("utf-8")


def _header_language(header: list[str]) -> str:
    matches = {
        language: sum(cell in csv_headers(language) for cell in header) for language in ("ja", "en")
    }
    return "ja" if matches["ja"] >= matches["en"] else "en"


def _read_text(file: Any) -> str:
    data = file.read() if hasattr(file, "read") else file
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(
            [ImportProblem(None, "", "", _("The file is not UTF-8 text (save it as CSV UTF-8)."))]
        ) from error


def csv_parse(file: Any, language: str | None = None) -> list[dict]:
    """The rows of a common-metadata CSV, ready for :func:`dmp.records_import.records_import`.

    ``file``: a binary or text file, ``bytes`` or ``str``. The header row may be in
    Japanese or in English, in any column order; ``language`` is the language of the
    text values (which ``_ja``/``_en`` fields they fill), by default that of the header
    row. Option labels of either language and codes are accepted. The project's columns
    (1–5) are not read: the records go into the project they are imported into. Creator
    names and e-Rad numbers (columns 20 and 21) are split at ``;``.

    A file whose shape is wrong (unknown, missing or repeated headers, rows of the wrong
    length) is refused with :class:`ImportRefused` listing every such problem. Values
    are checked by ``records_import``; a label that matches no option is passed on as it
    is, for it to report.
    """
    reader = csv.reader(io.StringIO(_read_text(file), newline=""))
    try:
        return _csv_parse(reader, language)
    except csv.Error as error:
        # A hostile or broken file (a value over the csv module's field limit, a NUL
        # byte): refused as a whole, like any other file of the wrong shape.
        if "field larger than field limit" in str(error):
            message = _(
                "A value on line %(line)d is longer than %(limit)s characters, the most a "
                "CSV value may have."
            ) % {"line": reader.line_num, "limit": f"{csv.field_size_limit():,}"}
        else:
            message = _("This is not a readable CSV file: %(error)s") % {"error": error}
        raise ImportRefused([ImportProblem(None, "", "", message)]) from error


def _csv_parse(reader, language: str | None) -> list[dict]:
    header = next(reader, None)
    if not header:
        raise ImportRefused([ImportProblem(None, "", "", _("The file is empty."))])
    header = [cell.strip() for cell in header]
    header_language = _header_language(header)
    values_language = text_language(language or header_language)
    by_header = {column.header(header_language): column for column in CSV_COLUMNS}

    problems = []
    positions: dict[int, int] = {}  # column number -> position in the file
    for position, cell in enumerate(header):
        column = by_header.get(cell)
        if column is None:
            problems.append(ImportProblem(None, cell, cell, _("Unknown column.")))
        elif column.number in positions:
            problems.append(ImportProblem(None, cell, cell, _("This column appears twice.")))
        else:
            positions[column.number] = position
    for column in CSV_COLUMNS:
        if column.number not in positions:
            header_text = column.header(header_language)
            problems.append(ImportProblem(None, header_text, "", _("This column is missing.")))
    if problems:
        raise ImportRefused(problems)

    rows = []
    for number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue  # a blank line
        if len(cells) != len(header):
            problems.append(
                ImportProblem(
                    number,
                    "",
                    str(len(cells)),
                    _("This row has %(found)d values; the header has %(expected)d.")
                    % {"found": len(cells), "expected": len(header)},
                )
            )
            continue
        rows.append(_row([csv_cell_text(cell) for cell in cells], positions, values_language))
    if problems:
        raise ImportRefused(problems)
    return rows


def _row(cells: list[str], positions: dict[int, int], language: str) -> dict:
    row: dict[str, Any] = {}
    for column in CSV_COLUMNS:
        row.update(column_parse(column, cells[positions[column.number]], language))
    names_cell, numbers_cell = (
        cells[positions[c.number]]
        for c in CSV_COLUMNS
        if c.kind in (Kind.CREATOR_NAMES, Kind.CREATOR_NUMBERS)
    )
    row["creators"] = _creators(names_cell, numbers_cell, language)
    # The CSV has no column for the type of data manager: a named or numbered one is a
    # person, otherwise the record names an organisation (contact only).
    row["data_man_type"] = (
        "individual"
        if row.get("data_man_number") or row.get(f"data_man_name_{language}")
        else "organization"
    )
    return row


def _creators(names_cell: str, numbers_cell: str, language: str) -> list[dict]:
    names = names_cell.split(CREATOR_SEPARATOR) if names_cell.strip() else []
    numbers = [n.strip() for n in numbers_cell.split(CREATOR_SEPARATOR)] if numbers_cell else []
    if len(numbers) < len(names):
        numbers += [""] * (len(names) - len(numbers))
    elif len(numbers) > len(names):
        # Numbers without names: keep them, the import reports the missing names.
        names += [""] * (len(numbers) - len(names))
    return [
        {"name_" + language: name.strip(), "erad_researcher_number": number}
        for name, number in zip(names, numbers, strict=True)
    ]


# --- Moonshot data-management table (XLSX) --------------------------------------------------

MOONSHOT_HEADERS = {
    "ja": (
        "ムーンショット目標",
        "データNo",
        "データの名称",
        "データの説明",
        "管理者",
        "連絡先",
        "データの所在場所",
        "公開・共有の方針",
        "利活用・提供の方針",
        "その他",
    ),
    "en": (
        "Moonshot goal",
        "Data No.",
        "Data title",
        "Description",
        "Data manager",
        "Contact",
        "Location of the data",
        "Publication / sharing policy",
        "Utilisation / provision policy",
        "Other",
    ),
}


def _pick(obj, base: str, language: str) -> str:
    """The value in ``language``, else the other one: the table is read by people."""
    ja, en = getattr(obj, f"{base}_ja"), getattr(obj, f"{base}_en")
    return (ja or en) if language == "ja" else (en or ja)


def _lines(*values: str) -> str:
    return "\n".join(value for value in values if value)


def moonshot_row(record: DmpRecord, language: str) -> list[str]:
    """One row of the Moonshot table (docs/metadata.md, "Moonshot table") for ``record``."""
    lang = text_language(language)
    manager = _pick(record, "data_man_name", lang)
    hosting = _pick(record, "hosting_inst", lang)
    free = record.data_policy_free
    return [
        _pick(record.project, "program_name", lang),
        record.data_number,
        _pick(record, "title", lang),
        _pick(record, "description", lang),
        f"{manager} ({hosting})" if manager and hosting else (manager or hosting),
        _lines(
            _pick(record, "data_man_org", lang),
            _pick(record, "data_man_address", lang),
            record.data_man_tel,
            record.data_man_email,
        ),
        _lines(_pick(record, "repo_information", lang), record.repo_url_doi_link),
        record.access_rights_term.label(lang)
        + (f" ({record.available_date.isoformat()})" if record.available_date else ""),
        _lines(
            DATA_POLICY_FREE[free].label(lang) if free in DATA_POLICY_FREE else free,
            record.data_policy_license,
            _pick(record, "data_policy_cite", lang),
        ),
        _pick(record, "remarks", lang),
    ]


def moonshot_xlsx(records: QuerySet[DmpRecord], language: str) -> IO[bytes]:
    """The Moonshot data-management table of ``records`` as an XLSX file, opened for
    reading at its start. The file has no name on disk left: closing it frees it
    (``FileResponse`` closes it when the response is sent).

    xlsxwriter's ``constant_memory`` mode writes each row to disk as it comes, so memory
    stays flat; it needs a file on disk, not a buffer.
    """
    import xlsxwriter  # only the XLSX export needs it

    lang = text_language(language)
    handle, path = tempfile.mkstemp(suffix=".xlsx", prefix="kura-moonshot-")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(
            path,
            {
                "constant_memory": True,
                "tmpdir": tempfile.gettempdir(),
                # Cells are text as the researchers wrote it, never formulas or links.
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
            },
        )
        sheet = workbook.add_worksheet("DMP")
        bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
        wrap = workbook.add_format({"text_wrap": True, "valign": "top"})
        widths = (30, 10, 40, 60, 24, 30, 30, 16, 30, 30)
        for index, width in enumerate(widths):
            sheet.set_column(index, index, width)
        sheet.write_row(0, 0, MOONSHOT_HEADERS[lang], bold)
        for number, record in enumerate(_for_export(records), start=1):
            sheet.write_row(number, 0, moonshot_row(record, lang), wrap)
        workbook.close()
        result = open(path, "rb")  # handed to the caller, who closes it
    finally:
        os.unlink(path)
    return result


def chunks(file: IO[bytes], size: int = 64 * 1024) -> Iterable[bytes]:
    """Read ``file`` in blocks, closing it at the end."""
    with file:
        while block := file.read(size):
            yield block
