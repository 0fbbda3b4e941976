"""Citation text, BibTeX, RIS and Highwire Press ``citation_*`` tags for a record."""

import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from repository.discovery.public.facts import RecordFacts, in_language


def _creator_names(facts: RecordFacts) -> list[str]:
    return [c.name for c in facts.creators]


def citation_text(facts: RecordFacts) -> str:
    """Creators (Year). Title (Version n) [Data set]. Publisher. DOI or URL — DataCite's
    recommended form in the APA style papers paste (the version only for a version)."""
    names = "; ".join(_creator_names(facts))
    year = facts.publication_date.year
    title = facts.title
    if facts.version:
        title = f"{title} (Version {facts.version})"
    title = f"{title} [Data set]"
    parts = [f"{names} ({year})" if names else str(year), title, facts.publisher]
    return ". ".join(p for p in parts if p) + f". {facts.cite_as}"


@dataclass(frozen=True)
class Citation:
    """One way to cite, as the landing and version pages show it with a copy button."""

    key: str  # part of the element ids: unique on a page with ``prefix``
    label: str
    text: str


def citations(facts: RecordFacts, *, prefix: str = "") -> list[Citation]:
    """The citation as papers print it, BibTeX and RIS, of ``facts``."""
    return [
        Citation(f"{prefix}text", _("Citation"), citation_text(facts)),
        Citation(f"{prefix}bibtex", "BibTeX", bibtex(facts).strip()),
        Citation(f"{prefix}ris", "RIS", ris(facts).replace("\r\n", "\n").strip()),
    ]


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


def bibtex(facts: RecordFacts) -> str:
    key = re.sub(r"[^A-Za-z0-9]+", "", f"kura{facts.pk}{facts.data_number}")
    fields = [
        ("author", " and ".join(_creator_names(facts))),
        ("title", facts.title),
        ("publisher", facts.publisher),
        ("year", str(facts.publication_date.year)),
        ("doi", facts.doi),
        ("url", facts.cite_as),
        ("note", facts.data_number),
    ]
    body = ",\n".join(f"  {name} = {{{_bibtex_escape(value)}}}" for name, value in fields if value)
    return f"@misc{{{key},\n{body}\n}}\n"


def ris(facts: RecordFacts) -> str:
    lines = [("TY", "DATA")]
    lines += [("AU", name) for name in _creator_names(facts)]
    lines.append(("TI", facts.title))
    if facts.title_ja and facts.title_en:
        lines.append(("T2", facts.title_ja))
    lines.append(("PY", str(facts.publication_date.year)))
    if facts.publisher:
        lines.append(("PB", facts.publisher))
    if facts.doi:
        lines.append(("DO", facts.doi))
    lines.append(("UR", facts.cite_as))
    lines += [("KW", word) for word in facts.keywords]
    abstract = facts.description_en or facts.description_ja
    if abstract:
        lines.append(("AB", abstract))
    lines.append(("ID", facts.data_number))
    lines.append(("ER", ""))
    # Every line is "TAG  - value"; the end tag's value is empty: "ER  - " keeps its space.
    return "\r\n".join(f"{tag}  - {_ris_value(value)}" for tag, value in lines) + "\r\n"


PDF = "application/pdf"


def highwire_tags(facts: RecordFacts, language: str) -> list[tuple[str, str]]:
    """(name, content) of the landing page's ``<meta name="citation_…">`` tags, the ones
    Google Scholar's inclusion guidelines read, in ``language`` (the page's) where the
    record has both: the title and authors as the page shows them."""
    title = in_language(facts.title_ja, facts.title_en, language)
    if language.startswith("ja"):
        title_language = "ja" if facts.title_ja else "en"
    else:
        title_language = "en" if facts.title_en else "ja"
    date = facts.publication_date.strftime("%Y/%m/%d")
    tags = [("citation_title", title)]
    tags += [
        ("citation_author", in_language(c.name_ja, c.name_en, language)) for c in facts.creators
    ]
    tags += [("citation_publication_date", date), ("citation_date", date)]
    if publisher := in_language(*facts.publisher_names, language):
        tags.append(("citation_publisher", publisher))
    if facts.doi:
        tags.append(("citation_doi", facts.doi))
    if facts.keywords:
        tags.append(("citation_keywords", "; ".join(facts.keywords)))
    tags.append(("citation_language", title_language))
    tags.append(("citation_abstract_html_url", facts.landing_url))
    if pdf := next((f for f in facts.files if f.media_type == PDF), None):
        tags.append(("citation_pdf_url", pdf.url))
    return tags
