"""Issue 13 item 6: no stored value leaves its place in the landing page's Link header,
in BibTeX or in RIS, even one stored before links were validated."""

import re

import pytest
import signposting
from django.urls import reverse

from core.vocabularies import MetadataAccess
from repository.discovery.public.views import link_header
from tests.dmp.complete_records import complete_record
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db

BASE = "http://testserver"
BREAKOUT = 'https://doi.org/10.1234/x>;rel="preload",<https://evil.example/'


def _open_record(**overrides):
    # objects.create does not validate: this is a record stored before links were checked.
    fields = {"metadata_access": MetadataAccess.OPEN, **overrides}
    return complete_record(ProjectFactory(japan_grant_number=""), **fields)


def _targets(header: str) -> list[str]:
    return re.findall(r"<([^>]*)>", header)


@pytest.mark.parametrize("url", ["dataset-landing", "dataset-export"])
def test_a_stored_breakout_link_adds_no_entry_to_the_link_header(client, url):
    record = _open_record(repo_url_doi_link=BREAKOUT)
    args = [record.pk] if url == "dataset-landing" else [record.pk, "bibtex"]

    response = client.get(reverse(url, args=args))

    assert response.status_code == 200
    header = response["Link"]
    assert "evil.example" not in header
    assert 'rel="preload"' not in header
    landing_url = BASE + reverse("dataset-landing", args=[record.pk])
    signposts = signposting.find_signposting_http_link([header], landing_url)
    assert str(signposts.citeAs.target) == landing_url  # not a DOI: the landing page


def test_a_link_target_cannot_leave_its_angle_brackets():
    header = link_header(
        [(BREAKOUT, "cite-as", ""), ("https://repo.example.jp/a b\r\nX-Evil: 1", "item", "")]
    )

    assert _targets(header) == [
        "https://doi.org/10.1234/x%3E;rel=%22preload%22,%3Chttps://evil.example/",
        "https://repo.example.jp/a%20b%0D%0AX-Evil:%201",
    ]
    assert header.count("<") == header.count(">") == 2
    assert "\r" not in header and "\n" not in header


def test_a_title_cannot_add_bibtex_fields(client):
    title = "Data}, url = {https://evil.example/}, note = {\\}"
    record = _open_record(title_en=title, title_ja="タイトル\n}, x = {")

    bib = client.get(reverse("dataset-export", args=[record.pk, "bibtex"])).content.decode()

    fields = re.findall(r"^  (\w+) = ", bib, flags=re.MULTILINE)
    assert fields == ["author", "title", "publisher", "year", "doi", "url", "note"]
    assert bib.count("{") == bib.count("}")
    (url_line,) = (line for line in bib.splitlines() if line.startswith("  url = "))
    assert "evil.example" not in url_line
    assert r"\textbraceright{}" in bib


def test_a_value_cannot_add_ris_tags(client):
    record = _open_record(
        title_en="Data\r\nUR  - https://evil.example/",
        title_ja="データ\nER  - ",
        data_number="D-001\nDO  - 10.9999/evil",
    )

    ris = client.get(reverse("dataset-export", args=[record.pk, "ris"])).content.decode()

    tags = [line[:2] for line in ris.split("\r\n") if line]
    assert tags.count("UR") == 1 and tags.count("ER") == 1 and tags.count("DO") == 1
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]  -( .*)?", line) for line in ris.split("\r\n") if line)
    assert "TI  - Data UR - https://evil.example/" in ris
