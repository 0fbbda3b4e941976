"""The export registry: every machine-readable format of a record, declared once.

Each :class:`ExportFormat` says what the format is called (its key in
``/datasets/<id>/export/<key>``, its label), what it is (media type, charset, profile, file
extension), how it is built (``build``: one :class:`~repository.discovery.public.facts.RecordFacts`
in, the body out) and where it is offered: in the landing page's menu, as a metadata record
of the dataset (``describedby``: a Signposting ``describedby`` link of the landing page, and
an answer of the landing URL to content negotiation), at its export URL, and over OAI-PMH
(``oai``: metadataPrefix, schema, namespace and the element to embed). The landing page,
the export view and the OAI-PMH endpoint read only this registry, so adding a format is one
builder and one :func:`register` call (docs/architecture.md, "Exports").

Entries are looked up by key or by media type (:func:`by_media_type`), which is how
:func:`negotiated` picks an entry from an ``Accept`` header without a registry of its own.
"""

import json
import xml.etree.ElementTree as ET  # noqa: S405 - serialising our own trees only
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.http.request import MediaType
from django.utils.translation import gettext_lazy as _

from repository.discovery.public import (
    bagit,
    citation,
    croissant,
    datacite,
    harvested,
    ro_crate,
    schemaorg,
)
from repository.discovery.public.facts import RecordFacts

Body = str | bytes | Iterable[bytes]


@dataclass(frozen=True)
class OaiFormat:
    """How a format is disseminated over OAI-PMH."""

    prefix: str  # metadataPrefix
    schema: str
    namespace: str
    element: Callable[[RecordFacts], ET.Element]
    lists_files: bool = False  # harvesting fetches the records' public files for it


@dataclass(frozen=True)
class ExportFormat:
    key: str
    label: str
    media_type: str
    extension: str
    build: Callable[[RecordFacts], Body]
    charset: str = ""
    # The media type's ``profile`` parameter (RFC 6906), for formats that share a media type
    # (RO-Crate and Croissant are both JSON-LD). Sent in Content-Type only: negotiation and
    # Signposting compare media types without parameters (``by_media_type``).
    profile: str = ""
    menu: bool = True  # listed under the landing page's "Machine-readable metadata"
    # A metadata record of the dataset: a Signposting ``describedby`` link of the landing
    # page, and one of the landing URL's answers to content negotiation.
    describedby: bool = False
    web: bool = True  # served at /datasets/<id>/export/<key>
    attachment: bool = False  # Content-Disposition: attachment (else inline)
    streamed: bool = False  # ``build`` returns an iterable of bytes, sent as it comes
    # Offered only for a record with a DOI: in the menu, as a Signposting link and at its
    # export URL (404 without one). OAI-PMH harvests every record in every format it lists,
    # so a format that needs a DOI is not harvested.
    needs_doi: bool = False
    oai: OaiFormat | None = None

    def __post_init__(self):
        if self.needs_doi and self.oai is not None:
            raise ValueError(
                f"{self.key!r}: OAI-PMH cannot offer a format only to records with a DOI."
            )

    @property
    def content_type(self) -> str:
        parameters = [f"charset={self.charset}"] if self.charset else []
        if self.profile:
            parameters.append(f'profile="{self.profile}"')
        return "; ".join([self.media_type, *parameters])

    def offered(self, facts: RecordFacts) -> bool:
        """Whether this record is exported in this format at all."""
        return bool(facts.doi) or not self.needs_doi

    def filename(self, facts: RecordFacts) -> str:
        return f"kura-{facts.pk}.{self.extension}"


def _json(build: Callable[[RecordFacts], dict]) -> Callable[[RecordFacts], str]:
    return lambda facts: json.dumps(build(facts), ensure_ascii=False, indent=2)


def _xml(element: Callable[[RecordFacts], ET.Element]) -> Callable[[RecordFacts], bytes]:
    return lambda facts: harvested.xml_document(element(facts))


def _bag(facts: RecordFacts) -> Iterable[bytes]:
    stream, _fetched = bagit.bag_stream(facts, root=f"kura-{facts.pk}")
    return stream


# Harvesters list OAI-PMH formats in this order, and the landing menu its entries.
REGISTRY: dict[str, ExportFormat] = {
    entry.key: entry
    for entry in (
        ExportFormat(
            "oai_dc",
            _("Dublin Core"),
            "application/xml",
            "xml",
            _xml(harvested.oai_dc_element),
            menu=False,
            web=False,
            oai=OaiFormat(
                "oai_dc", harvested.OAI_DC_SCHEMA, harvested.OAI_DC, harvested.oai_dc_element
            ),
        ),
        ExportFormat(
            "datacite-json",
            _("DataCite JSON"),
            "application/vnd.datacite.datacite+json",
            "json",
            _json(datacite.datacite_json),
            describedby=True,
            needs_doi=True,  # the kernel's identifier is mandatory (docs/metadata.md)
        ),
        ExportFormat(
            "datacite-xml",
            _("DataCite XML"),
            "application/vnd.datacite.datacite+xml",
            "xml",
            lambda facts: datacite.datacite_xml(datacite.datacite_json(facts)),
            needs_doi=True,
            describedby=True,
        ),
        ExportFormat(
            "jsonld",
            _("JSON-LD (schema.org)"),
            "application/ld+json",
            "jsonld",
            _json(schemaorg.dataset),
            describedby=True,
        ),
        # Both JSON-LD like the entry above, told apart by their profile. They are no
        # ``describedby`` records: negotiation ignores the profile, so the landing URL's
        # application/ld+json stays schema.org's.
        ExportFormat(
            "ro-crate",
            _("RO-Crate 1.1"),
            "application/ld+json",
            "json",
            _json(ro_crate.crate),
            profile=ro_crate.PROFILE,
        ),
        ExportFormat(
            "croissant",
            _("Croissant 1.0"),
            "application/ld+json",
            "json",
            _json(croissant.dataset),
            profile=croissant.PROFILE,
        ),
        ExportFormat(
            "jpcoar",
            _("JPCOAR 2.0"),
            "application/xml",
            "xml",
            _xml(harvested.jpcoar_element),
            describedby=True,
            oai=OaiFormat(
                "jpcoar_2.0",
                harvested.JPCOAR_SCHEMA,
                harvested.JPCOAR,
                harvested.jpcoar_element,
                lists_files=True,
            ),
        ),
        ExportFormat(
            "bibtex",
            _("BibTeX"),
            "application/x-bibtex",
            "bib",
            citation.bibtex,
            charset="utf-8",
            describedby=True,
            attachment=True,
        ),
        ExportFormat(
            "ris",
            _("RIS"),
            "application/x-research-info-systems",
            "ris",
            citation.ris,
            charset="utf-8",
            describedby=True,
            attachment=True,
        ),
        # The landing page shows it under "How to cite"; DataCite's content negotiation
        # calls it text/x-bibliography.
        ExportFormat(
            "citation",
            _("Formatted citation"),
            "text/x-bibliography",
            "txt",
            citation.citation_text,
            charset="utf-8",
            menu=False,
            describedby=True,
        ),
        # Offered next to the files rather than in the menu (landing.html).
        ExportFormat(
            "bagit",
            _("BagIt zip"),
            "application/zip",
            "zip",
            _bag,
            menu=False,
            attachment=True,
            streamed=True,
        ),
    )
}


def register(entry: ExportFormat) -> ExportFormat:
    """Add ``entry`` at the end of the registry (its key must be new)."""
    if entry.key in REGISTRY:
        raise ValueError(f"An export format {entry.key!r} is registered already.")
    REGISTRY[entry.key] = entry
    return entry


def unregister(key: str) -> None:
    del REGISTRY[key]


def served(key: str) -> ExportFormat | None:
    """The format served at ``/datasets/<id>/export/<key>``, or ``None``."""
    entry = REGISTRY.get(key)
    return entry if entry is not None and entry.web else None


def menu(facts: RecordFacts) -> list[ExportFormat]:
    """The landing page's menu for this record."""
    return [e for e in REGISTRY.values() if e.menu and e.web and e.offered(facts)]


def described_by(facts: RecordFacts | None = None) -> list[ExportFormat]:
    """The metadata records of this record (of any record, without ``facts``): the formats
    the landing page's Signposting names as ``describedby`` and negotiates."""
    return [
        e
        for e in REGISTRY.values()
        if e.describedby and e.web and (facts is None or e.offered(facts))
    ]


def by_media_type(media_type: str) -> list[ExportFormat]:
    """Served formats of ``media_type`` (without parameters), in registry order."""
    return [e for e in REGISTRY.values() if e.web and e.media_type == media_type]


HTML = "text/html"


def _preference(ranges: list[MediaType], media_type: str) -> tuple[float, int]:
    """(q-value, specificity) of the most specific ``Accept`` range that ``media_type``
    matches (parameters other than q are not compared), or (0, -1) when none does."""
    main, _slash, sub = media_type.partition("/")
    matching = [
        (r.quality, (r.main_type != "*") + (r.sub_type != "*"))
        for r in ranges
        if r.main_type in (main, "*") and r.sub_type in (sub, "*")
    ]
    return max(matching, key=lambda m: m[1], default=(0, -1))


def negotiated(request, facts: RecordFacts | None = None) -> ExportFormat | None:
    """The metadata record the landing URL answers ``request``'s ``Accept`` header with, or
    ``None`` for the HTML page.

    The media type with the highest q-value (then the more specific matching range) among
    the page's and the metadata records' wins; the page wins ties, so ``*/*``, a browser's
    ``text/html,…`` and a type nothing here has get the page. Without ``facts`` every
    record's formats count: a request answered with the page then is answered with it for
    any record (``needs_doi`` only takes formats away).
    """
    header = request.headers.get("Accept", "*/*")
    ranges = [MediaType(token) for token in header.split(",") if token.strip()]
    offered = described_by(facts)
    candidates = [HTML, *dict.fromkeys(e.media_type for e in offered)]
    best = max(candidates, key=lambda media_type: _preference(ranges, media_type))
    if best == HTML or _preference(ranges, best)[0] <= 0:
        return None
    return next(e for e in by_media_type(best) if e in offered)


def harvested_formats() -> list[OaiFormat]:
    """The OAI-PMH metadata formats, in the order ListMetadataFormats names them."""
    return [e.oai for e in REGISTRY.values() if e.oai is not None]


def harvested_format(prefix: str) -> OaiFormat | None:
    return next((f for f in harvested_formats() if f.prefix == prefix), None)
