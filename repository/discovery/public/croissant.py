"""Croissant 1.0 (MLCommons) metadata of a record: the schema.org ``Dataset`` that machine
learning tools load, with one ``cr:FileObject`` per public file.

Croissant requires each file's checksum: a file whose SHA-256 Kura has not computed yet is
left out of ``distribution`` until it has one. No ``recordSet`` is described: Kura does not
read the files' columns.
"""

from repository.discovery.public.facts import RecordFacts
from repository.discovery.public.schemaorg import description

SPEC = "http://mlcommons.org/croissant/1.0"
PROFILE = SPEC

# The ``@context`` of the Croissant 1.0 specification, as its validator expects it.
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


def _creator(person) -> dict:
    entry = {"@type": "sc:Person", "name": person.name}
    if person.uri:
        entry["url"] = person.uri
    if person.affiliation:
        entry["affiliation"] = {"@type": "sc:Organization", "name": person.affiliation}
    return entry


def dataset(facts: RecordFacts) -> dict:
    data: dict = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "@id": facts.landing_url,
        "name": facts.title,
        "description": description(facts),
        "conformsTo": SPEC,
        "citeAs": facts.cite_as,
        "url": facts.landing_url,
        "datePublished": facts.publication_date.isoformat(),
        "dateModified": facts.updated_at.isoformat(),
    }
    if facts.doi:
        data["identifier"] = f"https://doi.org/{facts.doi}"
        data["sameAs"] = data["identifier"]
    if facts.licence:
        data["license"] = facts.licence.uri or facts.licence.label_en
    if creators := [_creator(c) for c in facts.creators]:
        data["creator"] = creators
    if facts.publisher:
        data["publisher"] = {"@type": "sc:Organization", "name": facts.publisher}
        if facts.publisher_ror:
            data["publisher"]["url"] = facts.publisher_ror
    words = facts.keywords
    if facts.research_field:
        words.append(facts.research_field.label_en)
    if words:
        data["keywords"] = words
    data["distribution"] = [
        {
            "@type": "cr:FileObject",
            "@id": f"file-{f.pk}",
            "name": f.name,
            "contentUrl": f.url,
            "encodingFormat": f.media_type,
            "contentSize": f"{f.size} B",
            "sha256": f.sha256,
        }
        for f in facts.files
        if f.sha256
    ]
    return data
