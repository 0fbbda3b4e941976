"""The export registry (``repository/discovery/public/exports.py``) is the one list of formats: a
format registered there appears on the landing page's menu, at its export URL, in the
landing page's Signposting and over OAI-PMH, and every entry's builder makes exactly the
body the export URL serves, which passes the same checks as the format tests."""

import io
import json
import xml.etree.ElementTree as ET  # noqa: S405 - building a test element only
import zipfile

import bagit
import pytest
import signposting
from datacite import schema45
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse
from lxml import etree

from core.vocabularies import Tier
from repository.discovery.oai.views import OAI
from repository.discovery.public import exports, harvested
from repository.discovery.public.landing import record_for_landing
from repository.discovery.public.views import record_facts
from tests.repository.datacite_xsd import assert_valid_datacite_xml
from tests.repository.test_crates import assert_valid_croissant, assert_valid_ro_crate
from tests.repository.test_public import BASE, _export, _jsonld, _landing, _object, _open_record

pytestmark = pytest.mark.django_db

TURTLE = "text/turtle"
SCHEMA_NAME = "https://schema.org/name"


def _turtle(facts) -> str:
    name = json.dumps(facts.title, ensure_ascii=False)
    return f"<{facts.landing_url}> a <https://schema.org/Dataset> ; <{SCHEMA_NAME}> {name} .\n"


def _test_element(facts) -> ET.Element:
    element = ET.Element("{urn:kura:test}record")
    element.text = facts.title
    return element


@pytest.fixture
def turtle():
    entry = exports.register(
        exports.ExportFormat(
            "turtle",
            "Turtle (schema.org)",
            TURTLE,
            "ttl",
            _turtle,
            charset="utf-8",
            describedby=True,
            oai=exports.OaiFormat("kura_test", "urn:kura:test.xsd", "urn:kura:test", _test_element),
        )
    )
    yield entry
    exports.unregister(entry.key)


@pytest.fixture
def dataset():
    record = _open_record()
    files = [_object(record, "liver-01.tif", tier=Tier.PUBLIC)]
    files.append(_object(record, "notes.csv", tier=Tier.PUBLIC, content_type="text/csv"))
    return record, files


def _facts(record):
    request = RequestFactory().get("/")
    return record_facts(request, record_for_landing(user=AnonymousUser(), record_id=record.pk))


# --- a new format, registered once --------------------------------------------------------


def test_a_registered_format_is_on_the_menu_at_its_url_and_in_signposting(client, dataset, turtle):
    record, _files = dataset
    url = reverse("dataset-export", args=[record.pk, "turtle"])

    landing = _landing(client, record)
    html = landing.content.decode()
    assert f'<a href="{url}">Turtle (schema.org)</a>' in html
    assert f'<link rel="describedby" href="{BASE}{url}" type="{TURTLE}">' in html
    signposts = signposting.find_signposting_http_link(
        [landing["Link"]], BASE + landing.wsgi_request.path
    )
    described = {str(s.type): str(s.target) for s in signposts.describedBy}
    assert described[TURTLE] == BASE + url

    response = _export(client, record, "turtle")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/turtle; charset=utf-8"
    assert response["Content-Disposition"] == f'inline; filename="kura-{record.pk}.ttl"'
    assert response.content.decode() == _turtle(_facts(record))

    negotiated = client.get(landing.wsgi_request.path, HTTP_ACCEPT=TURTLE)
    assert negotiated.content == response.content
    assert negotiated["Content-Location"] == BASE + url


def test_a_registered_format_is_harvested(client, dataset, turtle):
    record, _files = dataset
    formats = client.get("/oai", {"verb": "ListMetadataFormats"}).content.decode()
    assert "<metadataPrefix>kura_test</metadataPrefix>" in formats
    assert "<metadataNamespace>urn:kura:test</metadataNamespace>" in formats
    identifier = f"oai:kura:record/{record.pk}"
    params = {"verb": "GetRecord", "metadataPrefix": "kura_test", "identifier": identifier}
    document = etree.fromstring(client.get("/oai", params).content)
    metadata = document.xpath("//oai:metadata/*", namespaces={"oai": OAI})
    assert [(m.tag, m.text) for m in metadata] == [("{urn:kura:test}record", record.title_en)]


def test_after_unregistering_the_format_is_gone(client, dataset):
    record, _files = dataset
    entry = exports.register(exports.ExportFormat("turtle", "Turtle", TURTLE, "ttl", _turtle))
    assert _export(client, record, "turtle").status_code == 200
    exports.unregister(entry.key)
    assert _export(client, record, "turtle").status_code == 404
    assert "/export/turtle" not in _landing(client, record).content.decode()


def test_a_key_is_registered_once():
    with pytest.raises(ValueError, match="registered already"):
        exports.register(exports.ExportFormat("jsonld", "JSON-LD", TURTLE, "ttl", _turtle))


def test_a_format_that_needs_a_doi_is_not_offered_without_one(client, turtle):
    entry = exports.register(
        exports.ExportFormat("doi-only", "DOI only", TURTLE, "ttl", _turtle, needs_doi=True)
    )
    try:
        without = _open_record(repo_url_doi_link="https://repo.example.jp/records/1")
        assert _export(client, without, "doi-only").status_code == 404
        assert "/export/doi-only" not in _landing(client, without).content.decode()
        with_doi = _open_record(data_number="D-777")
        assert _export(client, with_doi, "doi-only").status_code == 200
    finally:
        exports.unregister(entry.key)


def test_a_format_that_needs_a_doi_is_not_harvested():
    oai = exports.OaiFormat("kura_test", "urn:kura:test.xsd", "urn:kura:test", _test_element)
    with pytest.raises(ValueError, match="only to records with a DOI"):
        exports.ExportFormat("doi-oai", "DOI", TURTLE, "ttl", _turtle, needs_doi=True, oai=oai)


def test_datacite_is_offered_only_where_its_kernel_validates(dataset):
    """Every DataCite format needs a DOI; where a record has one, its XML is valid."""
    record, _files = dataset
    without = _open_record(data_number="D-NODOI", repo_url_doi_link="")
    datacite_keys = [key for key in exports.REGISTRY if key.startswith("datacite")]
    assert datacite_keys == ["datacite-json", "datacite-xml"]
    for key in datacite_keys:
        entry = exports.REGISTRY[key]
        assert entry.needs_doi
        assert not entry.offered(_facts(without))
        assert entry not in exports.menu(_facts(without))
        assert entry not in exports.described_by(_facts(without))
        assert entry.offered(_facts(record))


# --- every entry's builder is what its export serves ---------------------------------------


def _bag(body: bytes, tmp_path) -> bagit.Bag:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(tmp_path)
        (root,) = {name.split("/")[0] for name in archive.namelist()}
    return bagit.Bag(str(tmp_path / root))


def _check(key: str, body: bytes, *, record, client, tmp_path) -> None:
    """What the format tests (test_public.py, test_oai.py) expect of each format."""
    text = body.decode() if key != "bagit" else ""
    if key == "datacite-json":
        assert schema45.validate(json.loads(text))
        assert_valid_datacite_xml(schema45.tostring(json.loads(text)))
    elif key == "datacite-xml":
        assert '<identifier identifierType="DOI">10.1234/kura.1</identifier>' in text
        assert_valid_datacite_xml(body)
    elif key == "jsonld":
        assert json.loads(text) == _jsonld(_landing(client, record))
    elif key == "ro-crate":
        assert_valid_ro_crate(json.loads(text))
    elif key == "croissant":
        assert_valid_croissant(json.loads(text))
    elif key == "jpcoar":
        assert etree.fromstring(body).tag == f"{{{harvested.JPCOAR}}}jpcoar"
        assert "liver-01.tif" in text
    elif key == "oai_dc":
        assert etree.fromstring(body).tag == f"{{{harvested.OAI_DC}}}dc"
    elif key == "bibtex":
        assert text.startswith("@misc{") and "doi = {10.1234/kura.1}" in text
    elif key == "ris":
        assert text.startswith("TY  - DATA") and text.endswith("ER  - \r\n")
    elif key == "citation":
        assert text.endswith(". https://doi.org/10.1234/kura.1")
        assert text in _landing(client, record).content.decode()
    elif key == "bagit":
        bag = _bag(body, tmp_path)
        bag.validate()
        assert sorted(bag.payload_files()) == [
            "data/liver-01.tif",
            "data/notes.csv",
            "data/ro-crate-metadata.json",
        ]
    else:
        pytest.fail(f"no check for the export format {key!r}: add one here")


def _bytes(body) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return body if isinstance(body, bytes) else b"".join(body)


@pytest.mark.parametrize("key", list(exports.REGISTRY))
def test_each_builder_makes_what_the_format_tests_expect(client, dataset, tmp_path, key):
    record, _files = dataset
    entry = exports.REGISTRY[key]
    built = _bytes(entry.build(_facts(record)))
    _check(key, built, record=record, client=client, tmp_path=tmp_path / "built")
    response = _export(client, record, key)
    if not entry.web:
        assert response.status_code == 404
        return
    assert response.status_code == 200
    assert response["Content-Type"] == entry.content_type
    served = b"".join(response.streaming_content) if entry.streamed else response.content
    if key == "bagit":  # two zips of one bag differ in their timestamps only
        _check(key, served, record=record, client=client, tmp_path=tmp_path / "served")
    else:
        assert served == built


def test_the_registry_declares_todays_formats():
    assert [e.key for e in exports.REGISTRY.values() if e.web] == [
        "datacite-json",
        "datacite-xml",
        "jsonld",
        "ro-crate",
        "croissant",
        "jpcoar",
        "bibtex",
        "ris",
        "citation",
        "bagit",
    ]
    assert [f.prefix for f in exports.harvested_formats()] == ["oai_dc", "jpcoar_2.0"]
    assert [e.key for e in exports.by_media_type("application/xml")] == ["jpcoar"]
    assert [e.key for e in exports.by_media_type("application/ld+json")] == [
        "jsonld",
        "ro-crate",
        "croissant",
    ]
    assert [e.key for e in exports.described_by()] == [
        "datacite-json",
        "datacite-xml",
        "jsonld",
        "jpcoar",
        "bibtex",
        "ris",
        "citation",
    ]
