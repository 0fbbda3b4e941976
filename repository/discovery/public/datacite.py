"""DataCite Metadata Schema 4.5 in its JSON form (and, through it, the XML kernel)."""

from datacite import schema45

from repository.discovery.public.facts import CROSSREF_FUNDER, ERAD_FUNDER, Person, RecordFacts

ERAD_RESEARCHER = "e-Rad_Researcher"
ROR_SCHEME = {"schemeUri": "https://ror.org/"}
# DataCite's funderIdentifierType for each kind of funder id; an e-Rad code is "Other".
FUNDER_ID_TYPES = {CROSSREF_FUNDER: "Crossref Funder ID", ERAD_FUNDER: "Other"}
SPDX_SCHEME = {"rightsIdentifierScheme": "SPDX", "schemeUri": "https://spdx.org/licenses/"}


def _names(ja: str, en: str) -> list[tuple[str, str]]:
    return [(text, lang) for text, lang in ((ja, "ja"), (en, "en")) if text]


def _person(person: Person) -> dict:
    entry = {"name": person.name, "nameType": "Personal"}
    identifiers = []
    if person.orcid_uri:
        identifiers.append(
            {
                "nameIdentifier": person.orcid_uri,
                "nameIdentifierScheme": "ORCID",
                "schemeUri": "https://orcid.org",
            }
        )
    if person.erad:
        identifiers.append({"nameIdentifier": person.erad, "nameIdentifierScheme": ERAD_RESEARCHER})
    if identifiers:
        entry["nameIdentifiers"] = identifiers
    if person.affiliation:
        entry["affiliation"] = [{"name": person.affiliation}]
    return entry


def _publisher(facts: RecordFacts) -> dict:
    publisher = {"name": facts.publisher or "Kura"}
    if facts.publisher_ror:
        publisher |= {
            "publisherIdentifier": facts.publisher_ror,
            "publisherIdentifierScheme": "ROR",
            **ROR_SCHEME,
        }
    return publisher


def _identity(facts: RecordFacts, publisher: dict) -> dict:
    """URL, type, creators, titles, publisher, year and identifiers."""
    data: dict = {
        "schemaVersion": "http://datacite.org/schema/kernel-4",
        "url": facts.landing_url,
        "types": {
            "resourceTypeGeneral": "Dataset",
            "resourceType": facts.data_type.label_en if facts.data_type else "dataset",
        },
        "creators": [_person(c) for c in facts.creators]
        or [{"name": publisher["name"], "nameType": "Organizational"}],
        "titles": [
            {"title": t, "lang": lang} for t, lang in _names(facts.title_ja, facts.title_en)
        ],
        "publisher": publisher,
        "publicationYear": str(facts.publication_date.year),
        "alternateIdentifiers": [
            {"alternateIdentifier": facts.data_number, "alternateIdentifierType": "Local"}
        ],
    }
    if facts.doi:
        data["doi"] = facts.doi
    else:
        data["alternateIdentifiers"].append(
            {"alternateIdentifier": facts.landing_url, "alternateIdentifierType": "URL"}
        )
    return data


def _subjects(facts: RecordFacts) -> list[dict]:
    subjects = []
    field = facts.research_field
    if field:
        for label, lang in _names(field.label_ja, field.label_en):
            subjects.append({"subject": label, "subjectScheme": "e-Rad_field", "lang": lang})
    return subjects + [{"subject": word} for word in facts.keywords]


def _contributors(facts: RecordFacts) -> list[dict]:
    """The hosting institution and the data manager (a person, else an organisation)."""
    contributors = []
    if facts.publisher:
        hosting = {
            "name": facts.publisher,
            "nameType": "Organizational",
            "contributorType": "HostingInstitution",
        }
        if facts.publisher_ror:
            hosting["nameIdentifiers"] = [
                {"nameIdentifier": facts.publisher_ror, "nameIdentifierScheme": "ROR", **ROR_SCHEME}
            ]
        contributors.append(hosting)
    manager = facts.data_manager
    if manager.name:
        contributors.append(_person(manager) | {"contributorType": "DataManager"})
    elif manager.affiliation:
        contributors.append(
            {
                "name": manager.affiliation,
                "nameType": "Organizational",
                "contributorType": "DataManager",
            }
        )
    return contributors


def _sizes(facts: RecordFacts) -> list[str]:
    files = facts.files
    sizes = [facts.declared_size] if facts.declared_size else []
    if files:
        sizes.append(f"{len(files)} file" if len(files) == 1 else f"{len(files)} files")
        sizes.append(f"{sum(f.size for f in files)} bytes")
    return sizes


def _rights(facts: RecordFacts) -> list[dict]:
    rights = []
    licence = facts.licence
    if licence:
        entry = {"rights": licence.label_en}
        if licence.uri:
            entry["rightsUri"] = licence.uri
        if licence.spdx:
            entry |= {"rightsIdentifier": licence.spdx, **SPDX_SCHEME}
        rights.append(entry)
    access = facts.access_right
    rights.append(
        {
            "rights": access.label_en,
            "rightsUri": access.uri,
            "rightsIdentifierScheme": "COAR Access Rights",
            "schemeUri": "http://vocabularies.coar-repositories.org/access_rights/",
        }
    )
    return rights


def _funding(facts: RecordFacts) -> dict:
    funding = facts.funding
    entry = {"funderName": funding.funder_name}
    if funder_id := funding.funder_id:
        entry |= {
            "funderIdentifier": funder_id.value,
            "funderIdentifierType": FUNDER_ID_TYPES[funder_id.scheme],
        }
    if funding.grant_number:
        entry["awardNumber"] = funding.grant_number
    if funding.project_name:
        entry["awardTitle"] = funding.project_name
    return entry


def _related(target, relation: str) -> dict:
    """A related identifier for ``target`` (a published resource): its DOI, else its page."""
    return {
        "relatedIdentifier": target.doi or target.url,
        "relatedIdentifierType": "DOI" if target.doi else "URL",
        "relationType": relation,
    }


def _versions(facts: RecordFacts) -> list[dict]:
    """A live record ``HasVersion`` each published version; a version ``IsVersionOf`` the
    dataset (its concept DOI) and ``IsNewVersionOf`` the version before it — what the DOIs'
    own metadata at the provider says too (``publishing/sync.py``)."""
    related = [_related(v, "HasVersion") for v in facts.versions]
    if facts.version_of is not None:
        related.append(_related(facts.version_of, "IsVersionOf"))
    if facts.previous_version is not None:
        related.append(_related(facts.previous_version, "IsNewVersionOf"))
    return related


def datacite_json(facts: RecordFacts) -> dict:
    """The record as DataCite 4.5 JSON (validates with ``datacite.schema45``). Only for a
    record with a DOI: the kernel requires its identifier (the registry's ``needs_doi``)."""
    data = _identity(facts, _publisher(facts))
    if subjects := _subjects(facts):
        data["subjects"] = subjects
    if contributors := _contributors(facts):
        data["contributors"] = contributors
    data["dates"] = [{"date": facts.publication_date.isoformat(), "dateType": "Issued"}]
    if facts.embargo_date:
        data["dates"].append({"date": facts.embargo_date.isoformat(), "dateType": "Available"})
    descriptions = [
        {"description": text, "descriptionType": "Abstract", "lang": lang}
        for text, lang in _names(facts.description_ja, facts.description_en)
    ]
    if descriptions:
        data["descriptions"] = descriptions
    if facts.version:
        data["version"] = facts.version
    if related := _versions(facts):
        data["relatedIdentifiers"] = related
    if sizes := _sizes(facts):
        data["sizes"] = sizes
    if formats := sorted({f.media_type for f in facts.files}):
        data["formats"] = formats
    data["rightsList"] = _rights(facts)
    data["fundingReferences"] = [_funding(facts)]
    return data


def datacite_xml(data: dict) -> str:
    """The DataCite 4.5 XML kernel for :func:`datacite_json`'s output."""
    return schema45.tostring(data)
