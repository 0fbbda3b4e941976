"""Issue 16 items 6-8: FAIR Signposting levels 1 and 2, content negotiation at the landing
URL, and Google Scholar's Highwire ``citation_*`` tags — each read back the way its
consumer reads it (the ``signposting`` package, an ``Accept`` header, the HTML head)."""

import json

import pytest
import signposting
from bs4 import BeautifulSoup
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from signposting.htmllinks import HTML, _parse_html
from signposting.linkset import Linkset, LinksetJSON, _parse_linkset, _parse_linkset_json

from core.vocabularies import Tier
from repository.discovery.public import citation, exports
from tests.dmp.complete_records import complete_record
from tests.repository.test_export_registry import TURTLE, _facts, _turtle
from tests.repository.test_public import (
    BASE,
    _download_url,
    _export,
    _landing,
    _object,
    _open_record,
    _project,
)

pytestmark = pytest.mark.django_db

NRID = "https://nrid.nii.ac.jp/nrid/1000070312345"  # creator 70312345 (tests/dmp)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
METADATA = {
    "datacite-json": "application/vnd.datacite.datacite+json",
    "datacite-xml": "application/vnd.datacite.datacite+xml",
    "jsonld": "application/ld+json",
    "jpcoar": "application/xml",
    "bibtex": "application/x-bibtex",
    "ris": "application/x-research-info-systems",
    "citation": "text/x-bibliography",
}


@pytest.fixture
def dataset():
    record = _open_record()
    public = _object(record, "liver-01.tif", tier=Tier.PUBLIC)
    second = _object(record, "notes.pdf", tier=Tier.PUBLIC, content_type="application/pdf")
    hidden = _object(record, "raw.tif", tier=Tier.SHARED)
    return record, [public, second], hidden


def _url(name, *args) -> str:
    return BASE + reverse(name, args=args)


def _level1(record, landing_url, public_files):
    return {
        "cite-as": {"https://doi.org/10.1234/kura.1"},
        "author": {NRID},  # the second creator has no e-Rad number: no URI, no link
        "describedby": {
            (_url("dataset-export", record.pk, key), media) for key, media in METADATA.items()
        },
        "item": {(BASE + _download_url(f), f.content_type) for f in public_files},
        "license": {"https://creativecommons.org/licenses/by/4.0/"},
        "type": {"https://schema.org/Dataset", "https://schema.org/AboutPage"},
    }


def _as_sets(signposts) -> dict:
    return {
        "cite-as": {str(signposts.citeAs.target)},
        "author": {str(s.target) for s in signposts.authors},
        "describedby": {(str(s.target), str(s.type)) for s in signposts.describedBy},
        "item": {(str(s.target), str(s.type)) for s in signposts.items},
        "license": {str(signposts.license.target)},
        "type": {str(s.target) for s in signposts.types},
    }


# --- level 1 --------------------------------------------------------------------------------


def test_landing_header_and_html_carry_every_level_1_link(client, dataset):
    record, public_files, hidden = dataset
    response = _landing(client, record)
    landing_url = _url("dataset-landing", record.pk)
    expected = _level1(record, landing_url, public_files)

    header = signposting.find_signposting_http_link([response["Link"]], landing_url)
    html = _parse_html(HTML(response.content.decode(), "text/html", landing_url, landing_url))

    for found in (header, html):
        assert _as_sets(found) == expected
        assert {(str(s.target), str(s.type)) for s in found.linksets} == {
            (_url("dataset-linkset", record.pk), "application/linkset"),
            (_url("dataset-linkset-json", record.pk), "application/linkset+json"),
        }
    assert _download_url(hidden) not in response["Link"]
    assert _download_url(hidden) not in response.content.decode().split("</head>")[0]


@pytest.mark.parametrize("key", list(METADATA))
def test_each_metadata_record_says_whom_it_describes(client, dataset, key):
    record, _files, _hidden = dataset
    response = _export(client, record, key)
    export_url = _url("dataset-export", record.pk, key)
    signposts = signposting.find_signposting_http_link([response["Link"]], export_url)
    assert [(str(s.target), str(s.type)) for s in signposts.describes] == [
        (_url("dataset-landing", record.pk), "text/html")
    ]


def test_a_bag_of_files_describes_nothing(client, dataset):
    record, _files, _hidden = dataset
    assert 'rel="describes"' not in _export(client, record, "bagit")["Link"]


def test_a_download_names_its_collection_on_the_redirect(client, dataset):
    record, (public, _second), _hidden = dataset
    response = client.get(_download_url(public))
    assert response.status_code == 302  # to the presigned URL: the header rides the redirect
    signposts = signposting.find_signposting_http_link(
        [response["Link"]], BASE + _download_url(public)
    )
    assert str(signposts.collection.target) == _url("dataset-landing", record.pk)
    assert str(signposts.collection.type) == "text/html"


def test_an_author_link_is_a_uri_or_nothing(client):
    creators = [{"erad_researcher_number": "", "name_en": "No Number"}]
    record = complete_record(_project(), creators=creators, metadata_access="open")
    assert 'rel="author"' not in _landing(client, record)["Link"]


# --- level 2 --------------------------------------------------------------------------------


def _linksets(client, record):
    text_url = _url("dataset-linkset", record.pk)
    json_url = _url("dataset-linkset-json", record.pk)
    text = client.get(text_url)
    as_json = client.get(json_url)
    assert text["Content-Type"] == "application/linkset"
    assert as_json["Content-Type"] == "application/linkset+json"
    json.loads(as_json.content)  # valid JSON
    return (
        _parse_linkset(Linkset(text.content.decode(), "application/linkset", text_url, text_url)),
        _parse_linkset_json(
            LinksetJSON(as_json.content.decode(), "application/linkset+json", json_url, json_url)
        ),
    )


def test_the_linkset_holds_level_1_of_the_page_its_records_and_its_files(client, dataset):
    record, public_files, hidden = dataset
    landing_url = _url("dataset-landing", record.pk)
    for linkset in _linksets(client, record):
        assert _as_sets(linkset.for_context(landing_url)) == _level1(
            record, landing_url, public_files
        )
        for key in METADATA:
            about = linkset.for_context(_url("dataset-export", record.pk, key))
            assert [str(s.target) for s in about.describes] == [landing_url]
        for public in public_files:
            about = linkset.for_context(BASE + _download_url(public))
            assert str(about.collection.target) == landing_url
        contexts = {str(s.context) for s in linkset}
        assert BASE + _download_url(hidden) not in contexts


def test_the_linkset_text_has_one_anchored_link_per_line(client, dataset):
    record, _files, _hidden = dataset
    body = client.get(reverse("dataset-linkset", args=[record.pk])).content.decode()
    lines = body.strip().split(",\n")
    assert all(line.startswith("<") and '; anchor="' in line for line in lines)


def test_a_withdrawn_or_closed_record_has_no_linkset(client, dataset):
    record, _files, _hidden = dataset
    record.metadata_access = "closed"
    record.save()
    assert client.get(reverse("dataset-linkset", args=[record.pk])).status_code == 404
    assert client.get(reverse("dataset-linkset-json", args=[record.pk])).status_code == 404


# --- content negotiation --------------------------------------------------------------------


def _negotiate(client, record, accept):
    return client.get(reverse("dataset-landing", args=[record.pk]), HTTP_ACCEPT=accept)


@pytest.mark.parametrize("key", list(METADATA))
def test_the_landing_url_answers_each_metadata_type(client, dataset, key):
    record, _files, _hidden = dataset
    response = _negotiate(client, record, METADATA[key])
    export = _export(client, record, key)
    assert response.status_code == 200
    assert response["Content-Type"] == export["Content-Type"]
    assert response.content == export.content
    assert response["Content-Location"] == _url("dataset-export", record.pk, key)
    assert "Accept" in response["Vary"]
    assert 'rel="describes"' in response["Link"]


@pytest.mark.parametrize(
    "accept",
    [
        BROWSER,
        "*/*",
        "",
        "application/json",
        "image/png",
        "text/html;q=0.5, image/*",
        "application/ld+json, text/html",  # a tie: the page
        "application/ld+json;q=0, nonsense",
    ],
)
def test_browsers_everything_and_unknown_types_get_the_page(client, dataset, accept):
    record, _files, _hidden = dataset
    response = _negotiate(client, record, accept)
    assert response.status_code == 200  # never 406
    assert response["Content-Type"].startswith("text/html")
    assert "Content-Location" not in response
    assert "Accept" in response["Vary"]


@pytest.mark.parametrize(
    ("accept", "key"),
    [
        ("application/ld+json, text/html;q=0.9", "jsonld"),
        ("text/html;q=0.2, application/x-bibtex;q=0.8, application/ld+json;q=0.5", "bibtex"),
        ("text/x-bibliography, */*;q=0.1", "citation"),
        ("application/*, text/html;q=0.5", "datacite-json"),  # a tie: the registry's order
        ('application/ld+json; profile="https://schema.org"', "jsonld"),  # parameters ignored
        ("text/x-bibliography; style=apa", "citation"),
        ("text/html;q=0, */*", "datacite-json"),  # the page refused, the rest equal
    ],
)
def test_q_values_decide(client, dataset, accept, key):
    record, _files, _hidden = dataset
    response = _negotiate(client, record, accept)
    assert response["Content-Location"] == _url("dataset-export", record.pk, key)


def test_the_formatted_citation_is_the_pages_citation(client, dataset):
    record, _files, _hidden = dataset
    body = _negotiate(client, record, "text/x-bibliography").content.decode()
    assert body == citation.citation_text(_facts(record))
    assert body in _landing(client, record).content.decode()


def test_a_format_needing_a_doi_is_negotiated_only_when_offered(client):
    entry = exports.register(
        exports.ExportFormat(
            "doi-only", "DOI only", TURTLE, "ttl", _turtle, needs_doi=True, describedby=True
        )
    )
    try:
        without = _open_record(repo_url_doi_link="https://repo.example.jp/records/1")
        response = _negotiate(client, without, TURTLE)
        assert response["Content-Type"].startswith("text/html")
        with_doi = _open_record(data_number="D-778")
        response = _negotiate(client, with_doi, TURTLE)
        assert response["Content-Type"] == TURTLE
    finally:
        exports.unregister(entry.key)


def test_a_withdrawn_record_is_a_tombstone_whatever_is_asked(client, dataset):
    record, _files, _hidden = dataset
    record.withdrawn_at = timezone.now()
    record.withdrawal_reason = "Consent was withdrawn by participants."
    record.save()
    response = _negotiate(client, record, "application/ld+json")
    assert response.status_code == 410
    assert response["Content-Type"].startswith("text/html")


# --- Highwire Press tags for Google Scholar -------------------------------------------------


def _meta(response) -> list[tuple[str, str]]:
    head = BeautifulSoup(response.content, "html.parser").head
    return [
        (m["name"], m["content"])
        for m in head.find_all("meta")
        if m.get("name", "").startswith("citation_")
    ]


def test_highwire_tags_follow_scholars_guidelines(client, dataset):
    record, (_public, pdf), _hidden = dataset
    tags = _meta(_landing(client, record))
    date = record.date_issued_updated.strftime("%Y/%m/%d")
    assert tags == [
        ("citation_title", "Dataset 1"),
        ("citation_author", "Hanako Yamada"),
        ("citation_author", "Hina Suzuki"),
        ("citation_publication_date", date),
        ("citation_date", date),
        ("citation_publisher", "Kura Research Institute"),
        ("citation_doi", "10.1234/kura.1"),
        ("citation_keywords", "liver; microscopy"),
        ("citation_language", "en"),
        ("citation_abstract_html_url", _url("dataset-landing", record.pk)),
        ("citation_pdf_url", BASE + _download_url(pdf)),
    ]


def test_highwire_tags_follow_the_page_language(dataset):
    record, _files, _hidden = dataset
    client = Client()
    client.cookies["django_language"] = "ja"
    tags = dict(_meta(_landing(client, record)))
    assert tags["citation_title"] == "データ1の名称"
    assert tags["citation_publisher"] == "国立研究開発法人 蔵研究所"
    assert tags["citation_language"] == "ja"
    authors = [v for k, v in _meta(_landing(client, record)) if k == "citation_author"]
    assert authors == ["山田 花子", "鈴木 陽菜"]


def test_no_doi_and_no_pdf_no_tags_for_them(client):
    record = _open_record(repo_url_doi_link="https://repo.example.jp/records/1")
    _object(record, "a.tif", tier=Tier.PUBLIC)
    _object(record, "closed.pdf", tier=Tier.SHARED, content_type="application/pdf")
    names = [name for name, _ in _meta(_landing(client, record))]
    assert "citation_doi" not in names
    assert "citation_pdf_url" not in names
