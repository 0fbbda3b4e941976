"""Citation text, BibTeX and RIS for a record."""

import re

from dmp.models import DmpRecord

from . import facts


def _creator_names(record: DmpRecord) -> list[str]:
    return [facts.english_first(c.name_ja, c.name_en) for c in facts.creators(record)]


def citation_text(record: DmpRecord, *, landing_url: str) -> str:
    """Creators (Year). Title. Publisher. DOI or URL — DataCite's recommended form."""
    ja, en = facts.publisher_names(record)
    names = "; ".join(_creator_names(record))
    year = facts.publication_date(record).year
    title = facts.english_first(record.title_ja, record.title_en)
    parts = [f"{names} ({year})" if names else str(year), title, en or ja]
    link = facts.cite_as(record, landing_url)
    return ". ".join(p for p in parts if p) + f". {link}"


# BibTeX counts braces without regard to backslashes, so "\}" would still close a field
# and let a title add fields of its own: braces and backslashes become brace-balanced
# commands, the other special characters are escaped, and line breaks are spaces.
_BIBTEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "{": r"\textbraceleft{}",
    "}": r"\textbraceright{}",
    **{char: "\\" + char for char in "%&$#_"},
}


def _bibtex_escape(text: str) -> str:
    text = " ".join(text.split())
    return re.sub(r"[\\{}%&$#_]", lambda match: _BIBTEX_SPECIAL[match.group()], text)


def _ris_value(text: str) -> str:
    """``text`` on one line: a line break would start a tag of its own."""
    return " ".join(text.split())


def bibtex(record: DmpRecord, *, landing_url: str) -> str:
    doi = facts.doi_of(record)
    ja, en = facts.publisher_names(record)
    key = re.sub(r"[^A-Za-z0-9]+", "", f"kura{record.pk}{record.data_number}")
    fields = [
        ("author", " and ".join(_creator_names(record))),
        ("title", facts.english_first(record.title_ja, record.title_en)),
        ("publisher", en or ja),
        ("year", str(facts.publication_date(record).year)),
        ("doi", doi),
        ("url", facts.cite_as(record, landing_url)),
        ("note", record.data_number),
    ]
    body = ",\n".join(f"  {name} = {{{_bibtex_escape(value)}}}" for name, value in fields if value)
    return f"@misc{{{key},\n{body}\n}}\n"


def ris(record: DmpRecord, *, landing_url: str) -> str:
    doi = facts.doi_of(record)
    ja, en = facts.publisher_names(record)
    lines = [("TY", "DATA")]
    lines += [("AU", name) for name in _creator_names(record)]
    lines.append(("TI", facts.english_first(record.title_ja, record.title_en)))
    if record.title_ja and record.title_en:
        lines.append(("T2", record.title_ja))
    lines.append(("PY", str(facts.publication_date(record).year)))
    if en or ja:
        lines.append(("PB", en or ja))
    if doi:
        lines.append(("DO", doi))
    lines.append(("UR", facts.cite_as(record, landing_url)))
    lines += [("KW", word) for word in facts.keywords(record)]
    abstract = record.description_en or record.description_ja
    if abstract:
        lines.append(("AB", abstract))
    lines.append(("ID", record.data_number))
    lines.append(("ER", ""))
    return "\r\n".join(f"{tag}  - {_ris_value(value)}".rstrip() for tag, value in lines) + "\r\n"
