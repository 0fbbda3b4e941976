"""RO-Crate 1.1 and Croissant 1.0 exports, checked by the maintained tools that read them:
the ``rocrate`` library parses every crate (and the RO-Crate 1.1 rules it leaves to the
writer are checked here), ``mlcroissant`` validates every Croissant document. Both offline:
neither downloads a file."""

import json

import mlcroissant
import pytest
from django.urls import reverse
from rocrate.rocrate import ROCrate

from core.vocabularies import Tier
from repository.discovery.public import croissant, exports, ro_crate
from tests.repository.test_public import (
    BASE,
    _download_url,
    _export,
    _landing,
    _object,
    _open_record,
    _unzip,
)

pytestmark = pytest.mark.django_db

RO_CRATE_TYPE = 'application/ld+json; profile="https://w3id.org/ro/crate/1.1"'
CROISSANT_TYPE = 'application/ld+json; profile="http://mlcommons.org/croissant/1.0"'


def _refs_only(value) -> bool:
    """A flattened graph: a property's object is a literal or a bare ``{"@id": …}``."""
    if isinstance(value, list):
        return all(_refs_only(v) for v in value)
    return not isinstance(value, dict) or set(value) == {"@id"}


def assert_valid_ro_crate(data: dict) -> ROCrate:
    """``data`` is an RO-Crate 1.1 metadata document: flattened, with the descriptor and a
    root Data Entity carrying what RO-Crate 1.1 asks of it, every reference described, and
    every ``hasPart`` a ``File``; and the ``rocrate`` library reads it."""
    assert data["@context"][0] == "https://w3id.org/ro/crate/1.1/context"
    graph = {entity["@id"]: entity for entity in data["@graph"]}
    assert len(graph) == len(data["@graph"])
    for entity in data["@graph"]:
        assert entity.get("@type"), entity
        assert all(_refs_only(v) for k, v in entity.items() if k != "@type"), entity
        for value in entity.values():
            for ref in value if isinstance(value, list) else [value]:
                if isinstance(ref, dict) and not ref["@id"].startswith("https://w3id.org/"):
                    assert ref["@id"] in graph, ref
    descriptor = graph["ro-crate-metadata.json"]
    assert descriptor["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.1"}
    root = graph[descriptor["about"]["@id"]]
    assert "Dataset" in root["@type"]
    for required in ("name", "description", "datePublished", "license"):
        assert root[required], required
    for part in root.get("hasPart", []):
        assert graph[part["@id"]]["@type"] == "File"
    crate = ROCrate(source=json.loads(json.dumps(data)))
    assert crate.root_dataset["name"] == root["name"]
    assert {e.id for e in crate.data_entities} == {p["@id"] for p in root.get("hasPart", [])}
    return crate


def assert_valid_croissant(data: dict) -> mlcroissant.Dataset:
    """mlcroissant reads ``data`` as a Croissant 1.0 dataset without an error, and warns of
    nothing but the recommended ``version`` (it raises on errors; a non-standard
    ``@context`` would be a warning). The facts carry no version number to give it."""
    dataset = mlcroissant.Dataset(jsonld=json.loads(json.dumps(data)))
    issues = dataset.metadata.ctx.issues
    assert not issues.errors, issues.report()
    assert {message for message, _node in issues._warnings} <= {
        'Property "https://schema.org/version" is recommended, but does not exist.'
    }, issues.report()
    assert data["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    return dataset


@pytest.fixture
def dataset():
    record = _open_record()
    tif = _object(record, "liver-01.tif", tier=Tier.PUBLIC)
    csv = _object(record, "counts 02.csv", tier=Tier.PUBLIC, content_type="text/csv")
    _object(record, "shared.tif", tier=Tier.SHARED)
    return record, [tif, csv]


def _json(response) -> dict:
    assert response.status_code == 200
    return json.loads(response.content)


# --- RO-Crate -----------------------------------------------------------------------------


def test_ro_crate_of_a_dataset_with_files(client, dataset):
    record, (tif, csv) = dataset
    response = _export(client, record, "ro-crate")
    assert response["Content-Type"] == RO_CRATE_TYPE
    data = _json(response)
    crate = assert_valid_ro_crate(data)
    graph = {entity["@id"]: entity for entity in data["@graph"]}
    root = graph["./"]
    assert root["identifier"] == "https://doi.org/10.1234/kura.1"
    assert root["url"] == f"{BASE}{reverse('dataset-landing', args=[record.pk])}"
    assert root["license"] == {"@id": "https://creativecommons.org/licenses/by/4.0/"}
    assert graph[root["license"]["@id"]]["identifier"] == "CC-BY-4.0"
    authors = [graph[a["@id"]] for a in root["author"]]
    assert [a["@type"] for a in authors] == ["Person", "Person"]
    assert authors[0]["name"] == "Hanako Yamada"
    assert "liver" in root["keywords"]
    assert graph[root["funder"]["@id"]]["@type"] == "Organization"
    # Web-based data entities: each public file by its download URL, the shared one not.
    urls = {f"{BASE}{_download_url(o)}": o for o in (tif, csv)}
    assert {p["@id"] for p in root["hasPart"]} == set(urls)
    for url, data_object in urls.items():
        entity = graph[url]
        assert entity["name"] == data_object.original_filename
        assert entity["contentSize"] == str(data_object.size)
        assert entity["encodingFormat"] == data_object.content_type
        assert entity["sha256"] == data_object.sha256
    assert "shared.tif" not in response.content.decode()
    assert {e.id for e in crate.data_entities} == set(urls)


def test_ro_crate_funder_is_its_crossref_funder_id(client, dataset):
    record, _files = dataset
    data = _json(_export(client, record, "ro-crate"))
    graph = {entity["@id"]: entity for entity in data["@graph"]}
    funder = graph[graph["./"]["funder"]["@id"]]
    assert funder["@id"].startswith("https://doi.org/10.13039/")
    assert graph["#grant"]["identifier"] == record.project.japan_grant_number


def test_ro_crate_of_a_dataset_without_public_files(client):
    record = _open_record(repo_url_doi_link="")
    _object(record, "shared.tif", tier=Tier.SHARED)
    data = _json(_export(client, record, "ro-crate"))
    assert_valid_ro_crate(data)
    root = {entity["@id"]: entity for entity in data["@graph"]}["./"]
    assert "hasPart" not in root
    assert root["identifier"] == root["url"]


def test_the_bag_holds_the_crate_at_its_payload_root(client, dataset, tmp_path):
    import bagit

    record, (tif, csv) = dataset
    root = _unzip(_export(client, record, "bagit"), tmp_path)
    bag = bagit.Bag(str(root))
    bag.validate()
    assert sorted(bag.payload_files()) == [
        "data/counts 02.csv",
        "data/liver-01.tif",
        "data/ro-crate-metadata.json",
    ]
    data = json.loads((root / "data" / "ro-crate-metadata.json").read_text())
    assert_valid_ro_crate(data)
    graph = {entity["@id"]: entity for entity in data["@graph"]}
    # Files by their payload paths (RFC 3986-encoded), with their download URLs.
    assert graph["counts%2002.csv"]["contentUrl"] == f"{BASE}{_download_url(csv)}"
    assert graph["liver-01.tif"]["sha256"] == tif.sha256
    # The rocrate library opens the payload directory as an attached crate.
    crate = ROCrate(str(root / "data"))
    assert {e.id for e in crate.data_entities} == {"counts%2002.csv", "liver-01.tif"}


def test_a_file_named_like_the_crate_does_not_replace_it(client, tmp_path):
    import bagit

    record = _open_record()
    clash = _object(record, "ro-crate-metadata.json", tier=Tier.PUBLIC)
    root = _unzip(_export(client, record, "bagit"), tmp_path)
    bagit.Bag(str(root)).validate()
    assert (root / "data" / f"{clash.pk}-ro-crate-metadata.json").exists()
    assert_valid_ro_crate(json.loads((root / "data" / "ro-crate-metadata.json").read_text()))


# --- Croissant ----------------------------------------------------------------------------


def test_croissant_of_a_dataset_with_files(client, dataset):
    record, (tif, csv) = dataset
    response = _export(client, record, "croissant")
    assert response["Content-Type"] == CROISSANT_TYPE
    data = _json(response)
    loaded = assert_valid_croissant(data)
    assert data["citeAs"] == "https://doi.org/10.1234/kura.1"
    assert data["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert data["creator"][0]["name"] == "Hanako Yamada"
    files = {f["contentUrl"]: f for f in data["distribution"]}
    assert set(files) == {f"{BASE}{_download_url(o)}" for o in (tif, csv)}
    assert files[f"{BASE}{_download_url(csv)}"] == {
        "@type": "cr:FileObject",
        "@id": f"file-{csv.pk}",
        "name": "counts 02.csv",
        "contentUrl": f"{BASE}{_download_url(csv)}",
        "encodingFormat": "text/csv",
        "contentSize": f"{csv.size} B",
        "sha256": csv.sha256,
    }
    assert {f.content_url for f in loaded.metadata.distribution} == set(files)


def test_croissant_of_a_dataset_without_public_files(client):
    record = _open_record(repo_url_doi_link="")
    _object(record, "shared.tif", tier=Tier.SHARED)
    data = _json(_export(client, record, "croissant"))
    assert_valid_croissant(data)
    assert data["distribution"] == []
    assert data["citeAs"] == data["url"]


def test_croissant_leaves_out_a_file_without_a_checksum(client):
    record = _open_record()
    _object(record, "pending.tif", tier=Tier.PUBLIC, sha256="")
    data = _json(_export(client, record, "croissant"))
    assert_valid_croissant(data)
    assert data["distribution"] == []


# --- the registry and negotiation ---------------------------------------------------------


def test_both_are_on_the_menu_but_json_ld_still_negotiates_schema_org(client, dataset):
    record, _files = dataset
    html = _landing(client, record).content.decode()
    for key in ("ro-crate", "croissant"):
        assert reverse("dataset-export", args=[record.pk, key]) in html
        assert exports.REGISTRY[key] not in exports.described_by()
    negotiated = client.get(
        reverse("dataset-landing", args=[record.pk]), HTTP_ACCEPT="application/ld+json"
    )
    assert negotiated["Content-Type"] == "application/ld+json"
    assert json.loads(negotiated.content)["@context"] == "https://schema.org/"
    assert ro_crate.PROFILE in exports.REGISTRY["ro-crate"].content_type
    assert croissant.PROFILE in exports.REGISTRY["croissant"].content_type
