"""schema.org ``Dataset`` JSON-LD for Google Dataset Search and other harvesters."""

import json

from django.utils.safestring import mark_safe

from dmp.models import DmpRecord

from . import facts
from .landing import PublicFile

DESCRIPTION_MIN = 50
DESCRIPTION_MAX = 5000
ERAD_PROPERTY = "e-Rad researcher number"


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def description(record: DmpRecord) -> str:
    """50–5000 characters composed only from what the record says (never invented)."""
    text = _join(record.description_en, record.description_ja)
    if len(text) < DESCRIPTION_MIN:
        project = record.project
        funder = facts.funder(record)
        extra = [
            f"{record.title_en} / {record.title_ja}".strip(" /"),
            f"Project: {project.name_en or project.name_ja}",
            f"Funder: {funder.label_en}" if funder else "",
            f"Japan Grant Number: {project.japan_grant_number}"
            if project.japan_grant_number
            else "",
            f"Keywords: {', '.join(facts.keywords(record))}" if facts.keywords(record) else "",
        ]
        text = _join(text, ". ".join(e for e in extra if e))
    if len(text) > DESCRIPTION_MAX:
        text = text[: DESCRIPTION_MAX - 1].rstrip() + "…"
    return text


def _person(c) -> dict:
    person = {"@type": "Person", "name": facts.english_first(c.name_ja, c.name_en)}
    if c.name_ja and c.name_en:
        person["alternateName"] = c.name_ja
    if c.erad_researcher_number:
        person["identifier"] = {
            "@type": "PropertyValue",
            "propertyID": ERAD_PROPERTY,
            "value": c.erad_researcher_number,
        }
    affiliation = facts.english_first(c.affiliation_ja, c.affiliation_en)
    if affiliation:
        person["affiliation"] = {"@type": "Organization", "name": affiliation}
    return person


def dataset(
    record: DmpRecord, *, landing_url: str, catalog_url: str, files: list[PublicFile]
) -> dict:
    doi = facts.doi_of(record)
    project = record.project
    funder = facts.funder(record)
    publisher_ja, publisher_en = facts.publisher_names(record)
    data: dict = {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": landing_url,
        "name": facts.english_first(record.title_ja, record.title_en),
        "description": description(record),
        "url": landing_url,
        "identifier": [facts.cite_as(record, landing_url)],
        "isAccessibleForFree": record.data_policy_free == "free",
        "includedInDataCatalog": {"@type": "DataCatalog", "name": "Kura", "url": catalog_url},
        "datePublished": facts.publication_date(record).isoformat(),
        "dateModified": record.updated_at.isoformat(),
    }
    data["identifier"].append(
        {"@type": "PropertyValue", "propertyID": "Data No.", "value": record.data_number}
    )
    if record.title_ja and record.title_en:
        data["alternateName"] = record.title_ja
    if doi:
        data["sameAs"] = f"https://doi.org/{doi}"
    creators = [_person(c) for c in facts.creators(record)]
    if creators:
        data["creator"] = creators
    funder_org = {"@type": "Organization", "name": funder.label_en or funder.label_ja}
    if funder.erad_code:
        funder_org["identifier"] = {
            "@type": "PropertyValue",
            "propertyID": "e-Rad funder code",
            "value": funder.erad_code,
        }
    data["funder"] = funder_org
    if project.japan_grant_number or project.name:
        grant = {
            "@type": "Grant",
            "name": facts.english_first(project.name_ja, project.name_en),
            "funder": funder_org,
        }
        if project.japan_grant_number:
            grant["identifier"] = project.japan_grant_number
        data["funding"] = grant
    if publisher_en or publisher_ja:
        publisher = {"@type": "Organization", "name": publisher_en or publisher_ja}
        ror = facts.publisher_ror(record)
        if ror:
            publisher["sameAs"] = ror
        data["publisher"] = publisher
    licence = facts.licence(record)
    if licence:
        data["license"] = licence.uri or licence.label_en
    words = facts.keywords(record)
    field = facts.research_field(record)
    if field:
        words.append(field.label_en)
    if words:
        data["keywords"] = words
    if files:
        data["distribution"] = [
            {
                "@type": "DataDownload",
                "name": f.name,
                "contentUrl": f.url,
                "encodingFormat": f.content_type,
                "contentSize": f"{f.size} B",
            }
            for f in files
        ]
    return data


def script_tag(data: dict) -> str:
    """``<script type="application/ld+json">`` safe to place in an HTML head."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return mark_safe(f'<script type="application/ld+json">{text}</script>')  # noqa: S308
