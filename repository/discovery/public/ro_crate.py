"""RO-Crate 1.1 metadata (``ro-crate-metadata.json``) of a record, as GakuNin RDM exports
it: the root Data Entity with its authors, funders and licence, and one ``File`` entity per
public file.

On its own (the ``ro-crate`` export) the crate is detached: each file's ``@id`` is its
absolute download URL, a Web-based Data Entity. Inside the BagIt zip (``bagit.py``) the
crate's root is the bag's payload directory ``data/`` (RO-Crate 1.1, "Combining with other
packaging schemes"): each file's ``@id`` is its path there, and its download URL is its
``contentUrl``.
"""

from urllib.parse import quote

from repository.discovery.public.facts import CROSSREF_FUNDER, Person, RecordFacts
from repository.discovery.public.schemaorg import description

SPEC = "https://w3id.org/ro/crate/1.1"
PROFILE = SPEC
METADATA_FILE = "ro-crate-metadata.json"
# schema.org's ``sha256`` (a MediaObject's checksum) is not in the RO-Crate 1.1 context, so
# the crate adds it as an ad-hoc term (RO-Crate 1.1, "Extending RO-Crate").
CONTEXT = [f"{SPEC}/context", {"sha256": "http://schema.org/sha256"}]
ROOT = "./"


def _ref(entity: dict) -> dict:
    return {"@id": entity["@id"]}


class _Graph:
    """The crate's entities, each once by ``@id`` (a flattened JSON-LD graph)."""

    def __init__(self):
        self.entities: dict[str, dict] = {}

    def add(self, entity: dict) -> dict:
        self.entities.setdefault(entity["@id"], entity)
        return _ref(entity)

    def organization(self, name: str, local: str, same_as: str = "") -> dict:
        entity = {"@id": same_as or f"#{local}", "@type": "Organization", "name": name}
        return self.add(entity)


def _person(graph: _Graph, person: Person, number: int) -> dict:
    entity: dict = {"@id": person.uri or f"#creator-{number}", "@type": "Person"}
    entity["name"] = person.name
    if person.name_ja and person.name_en:
        entity["alternateName"] = person.name_ja
    if person.uri:
        entity["identifier"] = person.uri
    if person.affiliation:
        entity["affiliation"] = graph.organization(
            person.affiliation, f"affiliation-{quote(person.affiliation, safe='')}"
        )
    return graph.add(entity)


def _funder(graph: _Graph, facts: RecordFacts) -> dict | None:
    funding = facts.funding
    if funding.funder is None:
        return None
    funder_id = funding.funder_id
    entity: dict = {"@type": "Organization", "name": funding.funder_name}
    if funder_id and funder_id.scheme == CROSSREF_FUNDER:
        entity |= {"@id": funder_id.value, "identifier": funder_id.value}
    else:
        entity["@id"] = "#funder"
        if funder_id:
            entity["identifier"] = f"e-Rad funder code {funder_id.value}"
    return graph.add(entity)


def _licence(graph: _Graph, facts: RecordFacts) -> dict | None:
    licence = facts.licence
    if licence is None:
        return None
    entity = {"@id": licence.uri or "#license", "@type": "CreativeWork", "name": licence.label_en}
    if licence.spdx:
        entity["identifier"] = licence.spdx
    return graph.add(entity)


def crate(facts: RecordFacts, *, paths: list[str] | None = None) -> dict:
    """The RO-Crate JSON-LD of ``facts``. With ``paths`` (each file's path in a bag, from
    ``bagit.payload_paths``) the files are the bag's payload, else their download URLs."""
    graph = _Graph()
    root: dict = {
        "@id": ROOT,
        "@type": "Dataset",
        "name": facts.title,
        "description": description(facts),
        "datePublished": facts.publication_date.isoformat(),
        "dateModified": facts.updated_at.isoformat(),
        "identifier": facts.cite_as,
        "url": facts.landing_url,
    }
    graph.add(
        {
            "@id": METADATA_FILE,
            "@type": "CreativeWork",
            "conformsTo": {"@id": SPEC},
            "about": {"@id": ROOT},
        }
    )
    graph.add(root)
    if facts.title_ja and facts.title_en:
        root["alternateName"] = facts.title_ja
    if licence := _licence(graph, facts):
        root["license"] = licence
    if authors := [_person(graph, p, n) for n, p in enumerate(facts.creators, start=1)]:
        root["author"] = authors
    if funder := _funder(graph, facts):
        root["funder"] = funder
    funding = facts.funding
    if funding.grant_number or funding.project_ja or funding.project_en:
        grant: dict = {"@id": "#grant", "@type": "Grant", "name": funding.project_name}
        if funding.grant_number:
            grant["identifier"] = funding.grant_number
        if funder:
            grant["funder"] = funder
        root["funding"] = graph.add(grant)
    if facts.publisher:
        root["publisher"] = graph.organization(facts.publisher, "publisher", facts.publisher_ror)
    words = facts.keywords
    if facts.research_field:
        words.append(facts.research_field.label_en)
    if words:
        root["keywords"] = ", ".join(words)
    parts = []
    for number, f in enumerate(facts.files):
        entity: dict = {
            "@type": "File",
            "name": f.name,
            "contentSize": str(f.size),
            "encodingFormat": f.media_type,
        }
        if paths is None:
            entity["@id"] = f.url
        else:
            entity["@id"] = quote(paths[number].removeprefix("data/"))
            entity["contentUrl"] = f.url
        if f.sha256:
            entity["sha256"] = f.sha256
        parts.append(graph.add(entity))
    if parts:
        root["hasPart"] = parts
    return {"@context": CONTEXT, "@graph": list(graph.entities.values())}
