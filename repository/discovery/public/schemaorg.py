"""schema.org ``Dataset`` JSON-LD for Google Dataset Search and other harvesters."""

import json

from django.utils.safestring import mark_safe

from repository.discovery.public.facts import CROSSREF_FUNDER, Person, RecordFacts

DESCRIPTION_MIN = 50
DESCRIPTION_MAX = 5000
ERAD_PROPERTY = "e-Rad researcher number"


def _join(*parts: str) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def description(facts: RecordFacts) -> str:
    """50–5000 characters composed only from what the record says (never invented)."""
    text = _join(facts.description_en, facts.description_ja)
    if len(text) < DESCRIPTION_MIN:
        funding = facts.funding
        extra = [
            f"{facts.title_en} / {facts.title_ja}".strip(" /"),
            f"Project: {funding.project_en or funding.project_ja}",
            f"Funder: {funding.funder.label_en}" if funding.funder else "",
            f"Japan Grant Number: {funding.grant_number}" if funding.grant_number else "",
            f"Keywords: {', '.join(facts.keywords)}" if facts.keywords else "",
        ]
        text = _join(text, ". ".join(e for e in extra if e))
    if len(text) > DESCRIPTION_MAX:
        text = text[: DESCRIPTION_MAX - 1].rstrip() + "…"
    return text


def _person(person: Person) -> dict:
    entry = {"@type": "Person", "name": person.name}
    if person.name_ja and person.name_en:
        entry["alternateName"] = person.name_ja
    if person.orcid_uri:
        entry["sameAs"] = person.orcid_uri
    if person.erad:
        entry["identifier"] = {
            "@type": "PropertyValue",
            "propertyID": ERAD_PROPERTY,
            "value": person.erad,
        }
    if person.affiliation:
        entry["affiliation"] = {"@type": "Organization", "name": person.affiliation}
    return entry


def _funder_and_grant(facts: RecordFacts) -> tuple[dict, dict | None]:
    funding = facts.funding
    funder = {"@type": "Organization", "name": funding.funder_name}
    funder_id = funding.funder_id
    if funder_id and funder_id.scheme == CROSSREF_FUNDER:
        funder |= {"identifier": funder_id.value, "sameAs": funder_id.value}
    elif funder_id:
        funder["identifier"] = {
            "@type": "PropertyValue",
            "propertyID": "e-Rad funder code",
            "value": funder_id.value,
        }
    if not (funding.grant_number or funding.project_ja or funding.project_en):
        return funder, None
    grant = {"@type": "Grant", "name": funding.project_name, "funder": funder}
    if funding.grant_number:
        grant["identifier"] = funding.grant_number
    return funder, grant


def _distribution(facts: RecordFacts) -> list[dict]:
    return [
        {
            "@type": "DataDownload",
            "name": f.name,
            "contentUrl": f.url,
            "encodingFormat": f.media_type,
            "contentSize": f"{f.size} B",
        }
        for f in facts.files
    ]


def _versions(facts: RecordFacts) -> list[dict]:
    """The published versions of a live record: schema.org's ``workExample`` (a
    realisation of this work), each with its ``version``. Typed ``CreativeWork``, not
    ``Dataset``, so search engines do not take them for datasets of their own. A version
    names the work back (``exampleOfWork``, the inverse property)."""
    return [
        {
            "@type": "CreativeWork",
            "@id": v.identifier,
            "url": v.url,
            "version": str(v.number),
        }
        for v in facts.versions
    ]


def dataset(facts: RecordFacts) -> dict:
    data: dict = {
        "@context": "https://schema.org/",
        "@type": "Dataset",
        "@id": facts.landing_url,
        "name": facts.title,
        "description": description(facts),
        "url": facts.landing_url,
        "identifier": [
            facts.cite_as,
            {"@type": "PropertyValue", "propertyID": "Data No.", "value": facts.data_number},
        ],
        "isAccessibleForFree": facts.free_of_charge,
        "includedInDataCatalog": {
            "@type": "DataCatalog",
            "name": "Kura",
            "url": facts.catalog_url,
        },
        "datePublished": facts.publication_date.isoformat(),
        "dateModified": facts.updated_at.isoformat(),
    }
    if facts.title_ja and facts.title_en:
        data["alternateName"] = facts.title_ja
    if facts.doi:
        data["sameAs"] = f"https://doi.org/{facts.doi}"
    if creators := [_person(c) for c in facts.creators]:
        data["creator"] = creators
    data["funder"], grant = _funder_and_grant(facts)
    if grant:
        data["funding"] = grant
    if facts.publisher:
        data["publisher"] = {"@type": "Organization", "name": facts.publisher}
        if facts.publisher_ror:
            data["publisher"]["sameAs"] = facts.publisher_ror
    if facts.licence:
        data["license"] = facts.licence.uri or facts.licence.label_en
    words = facts.keywords
    if facts.research_field:
        words.append(facts.research_field.label_en)
    if words:
        data["keywords"] = words
    if facts.files:
        data["distribution"] = _distribution(facts)
    if facts.version:
        data["version"] = facts.version
    if facts.versions:
        data["workExample"] = _versions(facts)
    if facts.version_of is not None:
        data["exampleOfWork"] = {"@id": facts.version_of.identifier}
    return data


def script_tag(data: dict) -> str:
    """``<script type="application/ld+json">`` safe to place in an HTML head."""
    text = json.dumps(data, ensure_ascii=False, indent=1)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return mark_safe(f'<script type="application/ld+json">{text}</script>')  # noqa: S308
