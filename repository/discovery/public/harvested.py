"""JPCOAR 2.0 and unqualified Dublin Core: the XML formats harvesters collect (over
OAI-PMH; JPCOAR also as an export), built with ``xml.etree.ElementTree``.

:func:`jpcoar_element` and :func:`oai_dc_element` take one record's facts only (no
request), so the export view and the OAI-PMH endpoint build the same element.
"""

import xml.etree.ElementTree as ET  # noqa: S405 - we build XML, never parse untrusted input

from core.vocabularies import DATA_TYPES
from repository.discovery.public.facts import CROSSREF_FUNDER, ERAD_FUNDER, Person, RecordFacts

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
JPCOAR = "https://github.com/JPCOAR/schema/blob/master/2.0/"
JPCOAR_SCHEMA = "https://github.com/JPCOAR/schema/blob/master/2.0/jpcoar_scm.xsd"
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

J = f"{{{JPCOAR}}}"
# JPCOAR 2.0's funderIdentifierType for each kind of funder id.
FUNDER_ID_TYPES = {CROSSREF_FUNDER: "Crossref Funder", ERAD_FUNDER: "e-Rad_funder"}


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v})
    if text:
        element.text = text
    return element


def _bilingual(parent, tag: str, ja: str, en: str, **attrs) -> None:
    for lang, value in (("ja", ja), ("en", en)):
        if value:
            _sub(parent, tag, value, **{XML_LANG: lang}, **attrs)


def _keywords(parent, tag: str, facts: RecordFacts, **attrs) -> None:
    for lang, words in (("ja", facts.keywords_ja), ("en", facts.keywords_en)):
        for keyword in words:
            _sub(parent, tag, keyword, **attrs, **{XML_LANG: lang})


def xml_document(element: ET.Element) -> bytes:
    """``element`` as a UTF-8 XML document with its declaration."""
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


# --- JPCOAR 2.0 --------------------------------------------------------------------------


def _researcher_id(parent, person: Person) -> None:
    if person.orcid_uri:
        _sub(
            parent,
            f"{J}nameIdentifier",
            person.orcid_uri,
            nameIdentifierScheme="ORCID",
            nameIdentifierURI=person.orcid_uri,
        )
    if person.erad:
        _sub(parent, f"{J}nameIdentifier", person.erad, nameIdentifierScheme="e-Rad_Researcher")


def _creators(root, facts: RecordFacts) -> None:
    for creator in facts.creators:
        element = _sub(root, f"{J}creator")
        _researcher_id(element, creator)
        _bilingual(element, f"{J}creatorName", creator.name_ja, creator.name_en)
        if creator.affiliation_ja or creator.affiliation_en:
            affiliation = _sub(element, f"{J}affiliation")
            _bilingual(
                affiliation, f"{J}affiliationName", creator.affiliation_ja, creator.affiliation_en
            )


def _contributors(root, facts: RecordFacts) -> None:
    """The hosting institution and the data manager, without the manager's contact details."""
    host_ja, host_en = facts.publisher_names
    if host_ja or host_en:
        host = _sub(root, f"{J}contributor", contributorType="HostingInstitution")
        if facts.publisher_ror:
            _sub(
                host,
                f"{J}nameIdentifier",
                facts.publisher_ror,
                nameIdentifierScheme="ROR",
                nameIdentifierURI=facts.publisher_ror,
            )
        _bilingual(host, f"{J}contributorName", host_ja, host_en)
    manager = facts.data_manager
    if manager.name:
        element = _sub(root, f"{J}contributor", contributorType="DataManager")
        _researcher_id(element, manager)
        _bilingual(element, f"{J}contributorName", manager.name_ja, manager.name_en)


def _rights_and_subjects(root, facts: RecordFacts) -> None:
    access = facts.access_right
    _sub(root, f"{{{DCTERMS}}}accessRights", access.label_en, **{RDF_RESOURCE: access.uri})
    if facts.licence is not None:
        _sub(root, f"{{{DC}}}rights", facts.licence.label_en, **{RDF_RESOURCE: facts.licence.uri})
    field = facts.research_field
    if field is not None:
        for lang, label in (("ja", field.label_ja), ("en", field.label_en)):
            _sub(root, f"{J}subject", label, subjectScheme="e-Rad_field", **{XML_LANG: lang})
    _keywords(root, f"{J}subject", facts, subjectScheme="Other")


def _dates_and_type(root, facts: RecordFacts) -> None:
    if facts.date_issued:
        _sub(root, f"{{{DATACITE}}}date", facts.date_issued.isoformat(), dateType="Issued")
    if facts.embargo_date:
        _sub(root, f"{{{DATACITE}}}date", facts.embargo_date.isoformat(), dateType="Available")
    data_type = facts.data_type
    # Only "dataset" has a confirmed COAR URI; other data types are COAR subtypes of it.
    _sub(
        root,
        f"{{{DC}}}type",
        data_type.label_en if data_type else "dataset",
        **{RDF_RESOURCE: (data_type and data_type.uri) or DATASET_TYPE_URI},
    )


def _identifiers(root, facts: RecordFacts) -> None:
    if facts.doi:
        _sub(root, f"{J}identifier", facts.doi, identifierType="DOI")
    _sub(root, f"{J}identifier", facts.landing_url, identifierType="URI")
    if facts.data_number:
        relation = _sub(root, f"{J}relation", relationType="isIdenticalTo")
        _sub(relation, f"{J}relatedIdentifier", facts.data_number, identifierType="Local")
    related = [(v, "hasVersion") for v in facts.versions]
    if facts.version_of is not None:
        related.append((facts.version_of, "isVersionOf"))
    for target, relation_type in related:
        relation = _sub(root, f"{J}relation", relationType=relation_type)
        _sub(
            relation,
            f"{J}relatedIdentifier",
            target.doi or target.url,
            identifierType="DOI" if target.doi else "URI",
        )


def _funding(root, facts: RecordFacts) -> None:
    funding = facts.funding
    if funding.funder is None:
        return
    element = _sub(root, f"{J}fundingReference")
    if funder_id := funding.funder_id:
        _sub(
            element,
            f"{J}funderIdentifier",
            funder_id.value,
            funderIdentifierType=FUNDER_ID_TYPES[funder_id.scheme],
        )
    _bilingual(element, f"{J}funderName", funding.funder.label_ja, funding.funder.label_en)
    if funding.stream_code:
        _sub(
            element,
            f"{J}fundingStreamIdentifier",
            funding.stream_code,
            fundingStreamIdentifierType="JGN_fundingStream",
        )
    _bilingual(element, f"{J}fundingStream", funding.program_ja, funding.program_en)
    if funding.grant_number:
        _sub(element, f"{J}awardNumber", funding.grant_number, awardNumberType="JGN")
    _bilingual(element, f"{J}awardTitle", funding.project_ja, funding.project_en)


def _files(root, facts: RecordFacts) -> None:
    for public_file in facts.files:
        element = _sub(root, f"{J}file")
        _sub(element, f"{J}URI", public_file.url, label=public_file.name, objectType="dataset")
        if public_file.content_type:
            _sub(element, f"{J}mimeType", public_file.content_type)
        _sub(element, f"{J}extent", f"{public_file.size} B")


def jpcoar_element(facts: RecordFacts) -> ET.Element:
    """The JPCOAR 2.0 ``jpcoar:jpcoar`` element of the record (docs/metadata.md,
    "JPCOAR 2.0").

    ``facts.files`` are already limited to what anyone may download; contact details of
    the data manager (address, phone, e-mail) are left out on purpose.
    """
    root = ET.Element(f"{J}jpcoar", {f"{{{XSI}}}schemaLocation": f"{JPCOAR} {JPCOAR_SCHEMA}"})
    _bilingual(root, f"{{{DC}}}title", facts.title_ja, facts.title_en)
    _creators(root, facts)
    _contributors(root, facts)
    _rights_and_subjects(root, facts)
    _bilingual(
        root,
        f"{{{DATACITE}}}description",
        facts.description_ja,
        facts.description_en,
        descriptionType="Abstract",
    )
    _bilingual(root, f"{{{DC}}}publisher", *facts.publisher_names)
    _dates_and_type(root, facts)
    _identifiers(root, facts)
    _funding(root, facts)
    _files(root, facts)
    return root


# --- Dublin Core -------------------------------------------------------------------------


def oai_dc_element(facts: RecordFacts) -> ET.Element:
    """The unqualified Dublin Core (``oai_dc:dc``) element of the record."""
    root = ET.Element(f"{{{OAI_DC}}}dc", {f"{{{XSI}}}schemaLocation": f"{OAI_DC} {OAI_DC_SCHEMA}"})
    d = f"{{{DC}}}"
    _bilingual(root, f"{d}title", facts.title_ja, facts.title_en)
    for creator in facts.creators:
        _bilingual(root, f"{d}creator", creator.name_ja, creator.name_en)
    if facts.research_field is not None:
        _bilingual(
            root, f"{d}subject", facts.research_field.label_ja, facts.research_field.label_en
        )
    _keywords(root, f"{d}subject", facts)
    _bilingual(root, f"{d}description", facts.description_ja, facts.description_en)
    _bilingual(root, f"{d}publisher", *facts.publisher_names)
    if facts.date_issued:
        _sub(root, f"{d}date", facts.date_issued.isoformat())
    _sub(root, f"{d}type", facts.data_type.label_en if facts.data_type else "dataset")
    if facts.doi:
        _sub(root, f"{d}identifier", f"https://doi.org/{facts.doi}")
    _sub(root, f"{d}identifier", facts.landing_url)
    for version in facts.versions:
        _sub(root, f"{d}relation", version.identifier)
    _sub(root, f"{d}rights", facts.access_right.uri)
    if facts.licence is not None:
        _sub(root, f"{d}rights", facts.licence.uri or facts.licence.label_en)
    return root
