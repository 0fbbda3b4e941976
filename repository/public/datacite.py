"""DataCite Metadata Schema 4.5 in its JSON form (and, through it, the XML kernel)."""

from datacite import schema45

from core.vocabularies import Tier
from dmp.models import DmpRecord

from . import facts
from .landing import PublicFile

ERAD_RESEARCHER = "e-Rad_Researcher"
ERAD_FUNDER = "e-Rad_funder"


def _names(ja: str, en: str) -> list[tuple[str, str]]:
    return [(text, lang) for text, lang in ((ja, "ja"), (en, "en")) if text]


def _person(name_ja: str, name_en: str, erad: str, affiliation: str = "") -> dict:
    person = {"name": facts.english_first(name_ja, name_en), "nameType": "Personal"}
    if erad:
        person["nameIdentifiers"] = [
            {"nameIdentifier": erad, "nameIdentifierScheme": ERAD_RESEARCHER}
        ]
    if affiliation:
        person["affiliation"] = [{"name": affiliation}]
    return person


def datacite_json(record: DmpRecord, *, landing_url: str, files: list[PublicFile]) -> dict:
    """The record as DataCite 4.5 JSON (validates with ``datacite.schema45``)."""
    doi = facts.doi_of(record)
    publisher_ja, publisher_en = facts.publisher_names(record)
    ror = facts.publisher_ror(record)
    publisher = {"name": publisher_en or publisher_ja or "Kura"}
    if ror:
        publisher |= {
            "publisherIdentifier": ror,
            "publisherIdentifierScheme": "ROR",
            "schemeUri": "https://ror.org/",
        }
    data_type = facts.data_type(record)
    data: dict = {
        "schemaVersion": "http://datacite.org/schema/kernel-4",
        "url": landing_url,
        "types": {
            "resourceTypeGeneral": "Dataset",
            "resourceType": data_type.label_en if data_type else "dataset",
        },
        "creators": [
            _person(
                c.name_ja,
                c.name_en,
                c.erad_researcher_number,
                facts.english_first(c.affiliation_ja, c.affiliation_en),
            )
            for c in facts.creators(record)
        ]
        or [{"name": publisher["name"], "nameType": "Organizational"}],
        "titles": [
            {"title": t, "lang": lang} for t, lang in _names(record.title_ja, record.title_en)
        ],
        "publisher": publisher,
        "publicationYear": str(facts.publication_date(record).year),
        "alternateIdentifiers": [
            {"alternateIdentifier": record.data_number, "alternateIdentifierType": "Local"}
        ],
    }
    if doi:
        data["doi"] = doi
    else:
        data["alternateIdentifiers"].append(
            {"alternateIdentifier": landing_url, "alternateIdentifierType": "URL"}
        )

    subjects = []
    field = facts.research_field(record)
    if field:
        for label, lang in _names(field.label_ja, field.label_en):
            subjects.append({"subject": label, "subjectScheme": "e-Rad_field", "lang": lang})
    subjects += [{"subject": word} for word in facts.keywords(record)]
    if subjects:
        data["subjects"] = subjects

    contributors = []
    if publisher_ja or publisher_en:
        hosting = {
            "name": publisher_en or publisher_ja,
            "nameType": "Organizational",
            "contributorType": "HostingInstitution",
        }
        if ror:
            hosting["nameIdentifiers"] = [
                {
                    "nameIdentifier": ror,
                    "nameIdentifierScheme": "ROR",
                    "schemeUri": "https://ror.org/",
                }
            ]
        contributors.append(hosting)
    if record.data_man_name_ja or record.data_man_name_en:
        manager = _person(
            record.data_man_name_ja,
            record.data_man_name_en,
            record.data_man_number,
            facts.english_first(record.data_man_org_ja, record.data_man_org_en),
        )
        contributors.append(manager | {"contributorType": "DataManager"})
    elif record.data_man_org_ja or record.data_man_org_en:
        contributors.append(
            {
                "name": facts.english_first(record.data_man_org_ja, record.data_man_org_en),
                "nameType": "Organizational",
                "contributorType": "DataManager",
            }
        )
    if contributors:
        data["contributors"] = contributors

    dates = [{"date": facts.publication_date(record).isoformat(), "dateType": "Issued"}]
    if record.access_rights == Tier.EMBARGOED and record.available_date:
        dates.append({"date": record.available_date.isoformat(), "dateType": "Available"})
    data["dates"] = dates

    descriptions = [
        {"description": text, "descriptionType": "Abstract", "lang": lang}
        for text, lang in _names(record.description_ja, record.description_en)
    ]
    if descriptions:
        data["descriptions"] = descriptions

    sizes = []
    if record.file_size:
        sizes.append(record.file_size)
    if files:
        sizes.append(f"{len(files)} file" if len(files) == 1 else f"{len(files)} files")
        sizes.append(f"{sum(f.size for f in files)} bytes")
    if sizes:
        data["sizes"] = sizes
    formats = sorted({f.content_type for f in files})
    if formats:
        data["formats"] = formats

    rights = []
    licence = facts.licence(record)
    if licence:
        entry = {"rights": licence.label_en, "rightsIdentifier": licence.code}
        if licence.uri:
            entry["rightsUri"] = licence.uri
        rights.append(entry)
    access = facts.access_right(record)
    rights.append(
        {
            "rights": access.label_en,
            "rightsUri": access.uri,
            "rightsIdentifierScheme": "COAR Access Rights",
            "schemeUri": "http://vocabularies.coar-repositories.org/access_rights/",
        }
    )
    data["rightsList"] = rights

    funder = facts.funder(record)
    project = record.project
    funding = {"funderName": funder.label_en or funder.label_ja}
    if funder.erad_code:
        funding |= {"funderIdentifier": funder.erad_code, "funderIdentifierType": "Other"}
    if project.japan_grant_number:
        funding["awardNumber"] = project.japan_grant_number
    if project.name:
        funding["awardTitle"] = facts.english_first(project.name_ja, project.name_en)
    data["fundingReferences"] = [funding]
    return data


def datacite_xml(data: dict) -> str:
    """The DataCite 4.5 XML kernel for :func:`datacite_json`'s output."""
    return schema45.tostring(data)
