"""Metadata formats served over OAI-PMH, built with ``xml.etree.ElementTree``.

:func:`jpcoar_element` and :func:`oai_dc_element` take a record and plain values only (no
request), so a landing page or an export can reuse them. ``record`` should come with
``project__institution`` selected and ``creators`` prefetched.
"""

import xml.etree.ElementTree as ET  # noqa: S405 - we build XML, never parse untrusted input
from dataclasses import dataclass

from core.vocabularies import DATA_TYPES, FUNDERS, Tier
from dmp.models import DmpRecord
from repository.public.facts import doi_of, publisher_names, publisher_ror

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
JPCOAR = "https://github.com/JPCOAR/schema/blob/master/2.0/"
DATACITE = "https://schema.datacite.org/meta/kernel-4/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDF_RESOURCE = f"{{{RDF}}}resource"

DATASET_TYPE_URI = DATA_TYPES["dataset"].uri

for _prefix, _uri in {
    "xsi": XSI,
    "oai_dc": OAI_DC,
    "dc": DC,
    "dcterms": DCTERMS,
    "jpcoar": JPCOAR,
    "datacite": DATACITE,
    "rdf": RDF,
}.items():
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True)
class MetadataFormat:
    prefix: str
    schema: str
    namespace: str


FORMATS = {
    "oai_dc": MetadataFormat("oai_dc", "http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
    "jpcoar_2.0": MetadataFormat(
        "jpcoar_2.0", "https://github.com/JPCOAR/schema/blob/master/2.0/jpcoar_scm.xsd", JPCOAR
    ),
}


@dataclass(frozen=True)
class PublicFile:
    """A file anyone may download: what the harvester may be told about it."""

    url: str
    filename: str
    size: int
    content_type: str


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v})
    if text:
        element.text = text
    return element


def _bilingual(parent, tag: str, ja: str, en: str, **attrs) -> None:
    for lang, value in (("ja", ja), ("en", en)):
        if value:
            _sub(parent, tag, value, **{XML_LANG: lang}, **attrs)


def jpcoar_element(
    record: DmpRecord, *, landing_url: str, files: list[PublicFile] = ()
) -> ET.Element:
    """The JPCOAR 2.0 ``jpcoar:jpcoar`` element of ``record`` (docs/metadata.md,
    "JPCOAR 2.0").

    ``files`` must already be limited to what anyone may download; contact details of the
    data manager (address, phone, e-mail) are left out on purpose.
    """
    project = record.project
    root = ET.Element(
        f"{{{JPCOAR}}}jpcoar",
        {f"{{{XSI}}}schemaLocation": f"{JPCOAR} {FORMATS['jpcoar_2.0'].schema}"},
    )
    j = f"{{{JPCOAR}}}"
    _bilingual(root, f"{{{DC}}}title", record.title_ja, record.title_en)
    for creator in record.creators.all():
        element = _sub(root, f"{j}creator")
        if creator.erad_researcher_number:
            _sub(
                element,
                f"{j}nameIdentifier",
                creator.erad_researcher_number,
                nameIdentifierScheme="e-Rad_Researcher",
            )
        _bilingual(element, f"{j}creatorName", creator.name_ja, creator.name_en)
        if creator.affiliation_ja or creator.affiliation_en:
            affiliation = _sub(element, f"{j}affiliation")
            _bilingual(
                affiliation, f"{j}affiliationName", creator.affiliation_ja, creator.affiliation_en
            )
    host_ja, host_en = publisher_names(record)
    host_id = publisher_ror(record)
    if host_ja or host_en:
        host = _sub(root, f"{j}contributor", contributorType="HostingInstitution")
        if host_id:
            _sub(
                host,
                f"{j}nameIdentifier",
                host_id,
                nameIdentifierScheme="ROR",
                nameIdentifierURI=host_id,
            )
        _bilingual(host, f"{j}contributorName", host_ja, host_en)
    if record.data_man_name_ja or record.data_man_name_en:
        manager = _sub(root, f"{j}contributor", contributorType="DataManager")
        if record.data_man_number:
            _sub(
                manager,
                f"{j}nameIdentifier",
                record.data_man_number,
                nameIdentifierScheme="e-Rad_Researcher",
            )
        _bilingual(manager, f"{j}contributorName", record.data_man_name_ja, record.data_man_name_en)
    access = record.access_rights_term
    _sub(root, f"{{{DCTERMS}}}accessRights", access.label_en, **{RDF_RESOURCE: access.uri})
    licence = record.licence_term
    if licence is not None:
        _sub(root, f"{{{DC}}}rights", licence.label_en, **{RDF_RESOURCE: licence.uri})
    field = record.research_field_term
    if field is not None:
        for lang, label in (("ja", field.label_ja), ("en", field.label_en)):
            _sub(root, f"{j}subject", label, subjectScheme="e-Rad_field", **{XML_LANG: lang})
    for lang in ("ja", "en"):
        for keyword in record.keyword_list(lang):
            _sub(root, f"{j}subject", keyword, subjectScheme="Other", **{XML_LANG: lang})
    _bilingual(
        root,
        f"{{{DATACITE}}}description",
        record.description_ja,
        record.description_en,
        descriptionType="Abstract",
    )
    _bilingual(root, f"{{{DC}}}publisher", host_ja, host_en)
    if record.date_issued_updated:
        _sub(
            root,
            f"{{{DATACITE}}}date",
            record.date_issued_updated.isoformat(),
            dateType="Issued",
        )
    if record.access_rights == Tier.EMBARGOED and record.available_date:
        _sub(root, f"{{{DATACITE}}}date", record.available_date.isoformat(), dateType="Available")
    data_type = record.data_type_term
    # Only "dataset" has a confirmed COAR URI; other data types are COAR subtypes of it.
    _sub(
        root,
        f"{{{DC}}}type",
        data_type.label_en if data_type else "dataset",
        **{RDF_RESOURCE: (data_type and data_type.uri) or DATASET_TYPE_URI},
    )
    doi = doi_of(record)
    if doi:
        _sub(root, f"{j}identifier", doi, identifierType="DOI")
    _sub(root, f"{j}identifier", landing_url, identifierType="URI")
    if record.data_number:
        relation = _sub(root, f"{j}relation", relationType="isIdenticalTo")
        _sub(relation, f"{j}relatedIdentifier", record.data_number, identifierType="Local")
    if project.funder in FUNDERS:
        funder = FUNDERS[project.funder]
        funding = _sub(root, f"{j}fundingReference")
        _sub(
            funding,
            f"{j}funderIdentifier",
            funder.erad_code,
            funderIdentifierType="e-Rad_funder",
        )
        _bilingual(funding, f"{j}funderName", funder.label_ja, funder.label_en)
        if project.funding_stream_code:
            _sub(
                funding,
                f"{j}fundingStreamIdentifier",
                project.funding_stream_code,
                fundingStreamIdentifierType="JGN_fundingStream",
            )
        _bilingual(funding, f"{j}fundingStream", project.program_name_ja, project.program_name_en)
        if project.japan_grant_number:
            _sub(funding, f"{j}awardNumber", project.japan_grant_number, awardNumberType="JGN")
        _bilingual(funding, f"{j}awardTitle", project.name_ja, project.name_en)
    for public_file in files:
        element = _sub(root, f"{j}file")
        _sub(
            element,
            f"{j}URI",
            public_file.url,
            label=public_file.filename,
            objectType="dataset",
        )
        if public_file.content_type:
            _sub(element, f"{j}mimeType", public_file.content_type)
        _sub(element, f"{j}extent", f"{public_file.size} B")
    return root


def oai_dc_element(record: DmpRecord, *, landing_url: str) -> ET.Element:
    """The unqualified Dublin Core (``oai_dc:dc``) element of ``record``."""
    root = ET.Element(
        f"{{{OAI_DC}}}dc",
        {f"{{{XSI}}}schemaLocation": f"{OAI_DC} {FORMATS['oai_dc'].schema}"},
    )
    d = f"{{{DC}}}"
    _bilingual(root, f"{d}title", record.title_ja, record.title_en)
    for creator in record.creators.all():
        _bilingual(root, f"{d}creator", creator.name_ja, creator.name_en)
    field = record.research_field_term
    if field is not None:
        _bilingual(root, f"{d}subject", field.label_ja, field.label_en)
    for lang in ("ja", "en"):
        for keyword in record.keyword_list(lang):
            _sub(root, f"{d}subject", keyword, **{XML_LANG: lang})
    _bilingual(root, f"{d}description", record.description_ja, record.description_en)
    host_ja, host_en = publisher_names(record)
    _bilingual(root, f"{d}publisher", host_ja, host_en)
    if record.date_issued_updated:
        _sub(root, f"{d}date", record.date_issued_updated.isoformat())
    data_type = record.data_type_term
    _sub(root, f"{d}type", data_type.label_en if data_type else "dataset")
    doi = doi_of(record)
    if doi:
        _sub(root, f"{d}identifier", f"https://doi.org/{doi}")
    _sub(root, f"{d}identifier", landing_url)
    access = record.access_rights_term
    _sub(root, f"{d}rights", access.uri)
    licence = record.licence_term
    if licence is not None:
        _sub(root, f"{d}rights", licence.uri or licence.label_en)
    return root
