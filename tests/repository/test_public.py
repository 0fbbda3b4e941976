"""Public landing pages and their machine-readable faces (DataCite, schema.org, JPCOAR,
BagIt, FAIR Signposting): valid for their consumers, and never leaking a non-public file."""

import datetime
import hashlib
import io
import itertools
import json
import urllib.request
import zipfile
from pathlib import Path

import bagit
import extruct
import pytest
import signposting
from datacite import schema45
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import DataObject
from tests.dmp.complete_records import complete_record
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    ProjectFactory,
)
from tests.repository.datacite_xsd import assert_valid_datacite_xml

pytestmark = pytest.mark.django_db

BASE = "http://testserver"


_grants = itertools.count(2021)


def _project():
    grant = f"JPMJMS{next(_grants)}"
    return ProjectFactory(japan_grant_number=grant, name_ja="蔵計画", name_en="Kura plan")


def _open_record(project=None, **overrides):
    project = project or _project()
    fields = {"metadata_access": MetadataAccess.OPEN, "keywords_en": "liver, microscopy"}
    fields.update(overrides)
    return complete_record(project, **fields)


def _object(record, name: str, *, data: bytes | None = None, **fields) -> DataObject:
    data = data if data is not None else name.encode() * 10
    values = {
        "project": record.project,
        "record": record,
        "original_filename": name,
        "size": len(data),
        "content_type": "image/tiff",
        "sha256": hashlib.sha256(data).hexdigest(),
        "checksum_state": DataObject.ChecksumState.VERIFIED,
        **fields,
    }
    data_object = DataObjectFactory(**values)
    default_storage.save(data_object.storage_key, ContentFile(data))
    return data_object


def _landing(client, record):
    return client.get(reverse("dataset-landing", args=[record.pk]))


def _export(client, record, fmt):
    return client.get(reverse("dataset-export", args=[record.pk, fmt]))


def _download_url(data_object) -> str:
    return reverse("object-download", args=[data_object.pk])


def _jsonld(response) -> dict:
    data = extruct.extract(response.content.decode(), base_url=BASE, syntaxes=["json-ld"])
    datasets = [d for d in data["json-ld"] if d.get("@type") == "Dataset"]
    assert len(datasets) == 1
    return datasets[0]


def _unzip(response, tmp_path):
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        archive.extractall(tmp_path)
        (root,) = {name.split("/")[0] for name in archive.namelist()}
    return tmp_path / root


@pytest.fixture
def dataset():
    record = _open_record()
    public = _object(record, "liver-01.tif", tier=Tier.PUBLIC)
    second = _object(record, "liver 02 (raw).tif", tier=Tier.PUBLIC, content_type="text/csv")
    return record, [public, second]


# --- the landing page ---------------------------------------------------------------------


def test_landing_page_shows_metadata_files_and_citation(client, dataset):
    record, (public, second) = dataset
    response = _landing(client, record)
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        record.title_en,
        record.title_ja,
        record.description_ja.splitlines()[0],
        "Hanako Yamada",
        record.project.japan_grant_number,
        "https://creativecommons.org/licenses/by/4.0/",
        public.original_filename,
        public.sha256,
        _download_url(public),
        reverse("dataset-export", args=[record.pk, "bibtex"]),
        reverse("dataset-export", args=[record.pk, "ris"]),
        reverse("project-detail", args=[record.project_id]),
    ):
        assert text in html, text


def test_landing_page_labels_follow_the_language(client, dataset):
    record, _ = dataset
    client.cookies["django_language"] = "ja"
    html = _landing(client, record).content.decode()
    assert "情報通信" in html  # e-Rad research field 289, in Japanese


def test_closed_record_is_404_everywhere(client):
    record = complete_record(_project(), metadata_access=MetadataAccess.CLOSED)
    _object(record, "secret.tif", tier=Tier.PUBLIC)
    assert _landing(client, record).status_code == 404
    for fmt in ("datacite-json", "datacite-xml", "jsonld", "jpcoar", "bibtex", "ris", "bagit"):
        assert _export(client, record, fmt).status_code == 404


def test_members_see_their_closed_record(client):
    record = complete_record(_project(), metadata_access=MetadataAccess.CLOSED)
    member = MembershipFactory(project=record.project, role=Role.RESEARCHER)
    client.force_login(member.user)
    assert _landing(client, record).status_code == 200


def test_unknown_export_format_is_404(client, dataset):
    record, _ = dataset
    assert _export(client, record, "marc21").status_code == 404


def test_withdrawn_record_is_a_tombstone(client, dataset):
    record, (public, _) = dataset
    record.withdrawn_at = timezone.now()
    record.withdrawal_reason = "Consent was withdrawn by participants."
    record.save()
    response = _landing(client, record)
    assert response.status_code == 410
    html = response.content.decode()
    assert "Consent was withdrawn by participants." in html
    assert public.original_filename not in html
    assert _download_url(public) not in html
    assert _export(client, record, "bagit").status_code == 410


def test_shared_files_offer_an_access_request_by_mail(client):
    record = _open_record()
    _object(record, "shared.tif", tier=Tier.SHARED)
    html = _landing(client, record).content.decode()
    assert "mailto:data@kura.example.jp?subject=" in html


def test_embargoed_files_say_when_they_open(client):
    record = _open_record()
    opens = timezone.localdate() + datetime.timedelta(days=40)
    _object(record, "later.tif", tier=Tier.EMBARGOED, available_date=opens)
    html = _landing(client, record).content.decode()
    assert opens.isoformat() in html


def _count_landing_queries(client, files: int) -> int:
    record = _open_record()
    for n in range(files):
        _object(record, f"file-{n:02d}.tif", tier=Tier.PUBLIC if n % 2 else Tier.SHARED)
    with CaptureQueriesContext(connection) as queries:
        assert _landing(client, record).status_code == 200
    return len(queries)


def test_landing_page_queries_do_not_grow_with_files(client, django_assert_num_queries):
    few = _count_landing_queries(client, 2)
    record = _open_record(_project(), data_number="D-999")
    for n in range(20):
        _object(record, f"many-{n:02d}.tif", tier=Tier.PUBLIC if n % 2 else Tier.SHARED)
    with django_assert_num_queries(few):
        _landing(client, record)


# --- schema.org JSON-LD -------------------------------------------------------------------


def test_jsonld_meets_google_dataset_requirements(client, dataset):
    record, (public, second) = dataset
    data = _jsonld(_landing(client, record))
    assert data["name"] == record.title_en
    assert 50 <= len(data["description"]) <= 5000
    for key in (
        "identifier",
        "url",
        "creator",
        "funder",
        "license",
        "keywords",
        "isAccessibleForFree",
        "includedInDataCatalog",
        "datePublished",
        "dateModified",
        "distribution",
    ):
        assert key in data, key
    assert data["sameAs"] == "https://doi.org/10.1234/kura.1"
    creator = data["creator"][0]
    assert creator["@type"] == "Person"
    assert creator["identifier"]["@type"] == "PropertyValue"
    assert creator["identifier"]["value"] == "70312345"
    assert data["funder"]["@type"] == "Organization"
    urls = {d["contentUrl"] for d in data["distribution"]}
    assert urls == {BASE + _download_url(public), BASE + _download_url(second)}
    for item in data["distribution"]:
        assert item["@type"] == "DataDownload"
        assert item["encodingFormat"] and item["contentSize"]
    assert _export(client, record, "jsonld").json() == data


def test_short_description_is_composed_not_invented(client):
    record = _open_record(description_en="Tiny.", description_ja="短い。")
    data = _jsonld(_landing(client, record))
    assert len(data["description"]) >= 50
    assert "Tiny." in data["description"]
    assert "Kura plan" in data["description"]


# --- FAIR Signposting ---------------------------------------------------------------------


def test_signposting_link_headers(client, dataset):
    record, (public, second) = dataset
    response = _landing(client, record)
    landing_url = BASE + reverse("dataset-landing", args=[record.pk])
    signposts = signposting.find_signposting_http_link([response["Link"]], landing_url)
    assert str(signposts.citeAs.target) == "https://doi.org/10.1234/kura.1"
    described = {str(s.type): str(s.target) for s in signposts.describedBy}
    assert described["application/vnd.datacite.datacite+json"].endswith("/export/datacite-json")
    assert described["application/ld+json"].endswith("/export/jsonld")
    assert {str(s.target) for s in signposts.items} == {
        BASE + _download_url(public),
        BASE + _download_url(second),
    }
    assert str(signposts.license.target) == "https://creativecommons.org/licenses/by/4.0/"
    assert {str(s.target) for s in signposts.types} == {
        "https://schema.org/Dataset",
        "https://schema.org/AboutPage",
    }


def test_cite_as_is_the_landing_page_without_a_doi(client):
    record = _open_record(repo_url_doi_link="https://repo.example.jp/records/1")
    response = _landing(client, record)
    landing_url = BASE + reverse("dataset-landing", args=[record.pk])
    signposts = signposting.find_signposting_http_link([response["Link"]], landing_url)
    assert str(signposts.citeAs.target) == landing_url


# --- DataCite, JPCOAR, citations ---------------------------------------------------------


def test_datacite_json_validates_against_kernel_45(client, dataset):
    record, _ = dataset
    response = _export(client, record, "datacite-json")
    assert response["Content-Type"] == "application/vnd.datacite.datacite+json"
    data = response.json()
    schema45.validator.validate(data)
    assert schema45.validate(data)
    assert data["doi"] == "10.1234/kura.1"
    assert {"title": record.title_ja, "lang": "ja"} in data["titles"]
    assert data["types"]["resourceTypeGeneral"] == "Dataset"
    assert data["publisher"]["name"] == "Kura Research Institute"
    types = {c["contributorType"] for c in data["contributors"]}
    assert types == {"HostingInstitution", "DataManager"}
    (funding,) = data["fundingReferences"]
    assert funding["funderIdentifierType"] == "Crossref Funder ID"
    assert funding["funderIdentifier"] == "https://doi.org/10.13039/501100002241"
    assert funding["awardNumber"] == record.project.japan_grant_number
    assert funding["awardTitle"] == "Kura plan"
    rights = {r.get("rightsUri") for r in data["rightsList"]}
    assert "http://purl.org/coar/access_right/c_abf2" in rights
    assert {
        "rights": "CC BY 4.0",
        "rightsUri": "https://creativecommons.org/licenses/by/4.0/",
        "rightsIdentifier": "CC-BY-4.0",
        "rightsIdentifierScheme": "SPDX",
        "schemeUri": "https://spdx.org/licenses/",
    } in data["rightsList"]
    assert_valid_datacite_xml(schema45.tostring(data))
    assert {"alternateIdentifier": record.data_number, "alternateIdentifierType": "Local"} in data[
        "alternateIdentifiers"
    ]


def test_embargoed_datacite_without_a_licence_validates(client):
    record = _open_record(access_rights=Tier.EMBARGOED, data_policy_license="")
    data = _export(client, record, "datacite-json").json()
    assert schema45.validate(data)
    assert {"date": "2030-01-15", "dateType": "Available"} in data["dates"]
    assert_valid_datacite_xml(schema45.tostring(data))
    assert_valid_datacite_xml(_export(client, record, "datacite-xml").content)


@pytest.mark.parametrize("link", ["", "https://repo.example.jp/records/1"])
def test_datacite_is_not_offered_without_a_doi(client, link):
    """DataCite's kernel requires the DOI (its identifier): without one neither DataCite
    format is offered — not in the menu, not in Signposting, 404 with the reason."""
    record = _open_record(repo_url_doi_link=link)
    landing = _landing(client, record)
    html = landing.content.decode()
    for fmt, label in (("datacite-json", "DataCite JSON"), ("datacite-xml", "DataCite XML")):
        response = _export(client, record, fmt)
        assert response.status_code == 404
        assert f"{label} is offered only for datasets with a DOI." in response.content.decode()
        assert f"/export/{fmt}" not in html
        assert f"/export/{fmt}" not in landing["Link"]
    assert "/export/jsonld" in landing["Link"] and "/export/jpcoar" in html


def test_datacite_xml_and_jpcoar_are_xml(client, dataset):
    record, (public, _) = dataset
    xml = _export(client, record, "datacite-xml").content.decode()
    assert "http://datacite.org/schema/kernel-4" in xml
    assert '<identifier identifierType="DOI">10.1234/kura.1</identifier>' in xml
    assert_valid_datacite_xml(xml)
    jpcoar = _export(client, record, "jpcoar").content.decode()
    assert "jpcoar" in jpcoar and record.title_ja in jpcoar
    assert public.original_filename in jpcoar


def test_bibtex_and_ris(client, dataset):
    record, _ = dataset
    bib = _export(client, record, "bibtex").content.decode()
    assert bib.startswith("@misc{") and "Hanako Yamada and Hina Suzuki" in bib
    assert "doi = {10.1234/kura.1}" in bib
    ris = _export(client, record, "ris").content.decode()
    assert ris.startswith("TY  - DATA") and "DO  - 10.1234/kura.1" in ris
    # RIS: every line is "TAG  - value"; the end tag keeps the space after the hyphen.
    assert ris.endswith("\r\nER  - \r\n")
    assert all(line[2:6] == "  - " for line in ris.split("\r\n")[:-1])


# --- BagIt --------------------------------------------------------------------------------


def test_bagit_zip_validates(client, dataset, tmp_path):
    record, (public, second) = dataset
    response = _export(client, record, "bagit")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    bag = bagit.Bag(str(_unzip(response, tmp_path)))
    bag.validate()
    crate = "data/ro-crate-metadata.json"
    assert sorted(bag.payload_files()) == sorted(
        ["data/liver-01.tif", "data/liver 02 (raw).tif", crate]
    )
    crate_size = (Path(bag.path) / crate).stat().st_size
    assert bag.info["Payload-Oxum"] == f"{public.size + second.size + crate_size}.3"


def test_bagit_of_a_record_without_public_files_is_a_bag(client, tmp_path):
    """The payload is the record's RO-Crate alone."""
    record = _open_record()
    _object(record, "shared.tif", tier=Tier.SHARED)
    root = _unzip(_export(client, record, "bagit"), tmp_path)
    crate = root / "data" / "ro-crate-metadata.json"
    assert [p.name for p in (root / "data").iterdir()] == [crate.name]
    bag = bagit.Bag(str(root))
    bag.validate()
    assert list(bag.payload_files()) == ["data/ro-crate-metadata.json"]
    assert bag.info["Payload-Oxum"] == f"{crate.stat().st_size}.1"


def test_bagit_above_the_inline_limit_fetches(client, dataset, tmp_path, settings):
    settings.KURA_BAGIT_INLINE_MAX_BYTES = 10
    record, (public, second) = dataset
    root = _unzip(_export(client, record, "bagit"), tmp_path)
    assert [p.name for p in (root / "data").iterdir()] == ["ro-crate-metadata.json"]
    lines = (root / "fetch.txt").read_text().splitlines()
    assert sorted(lines) == sorted(
        [
            f"{BASE}{_download_url(public)} {public.size} data/liver-01.tif",
            f"{BASE}{_download_url(second)} {second.size} data/liver 02 (raw).tif",
        ]
    )
    bag = bagit.Bag(str(root))
    assert sorted(bag.files_to_be_fetched()) == sorted(
        ["data/liver-01.tif", "data/liver 02 (raw).tif"]
    )
    assert bag.entries["data/liver-01.tif"]["sha256"] == public.sha256
    # Fetch the holes the way a bag client would, then the bag must validate in full.
    for line in lines:
        url, _size, path = line.split(" ", 2)
        redirect = client.get(url.removeprefix(BASE))
        assert redirect.status_code == 302
        target = root / path
        target.parent.mkdir(exist_ok=True)
        with urllib.request.urlopen(redirect["Location"], timeout=10) as stored:  # noqa: S310
            target.write_bytes(stored.read())
    bagit.Bag(str(root)).validate()


# --- nothing non-public leaks -------------------------------------------------------------


def test_no_non_public_object_leaks(client, tmp_path):
    record = _open_record()
    today = timezone.localdate()
    public = _object(record, "open-public.tif", tier=Tier.PUBLIC)
    lifted = _object(
        record,
        "open-lifted.tif",
        tier=Tier.EMBARGOED,
        available_date=today - datetime.timedelta(days=1),
    )
    listed_only = [
        _object(
            record,
            "hidden-embargo.tif",
            tier=Tier.EMBARGOED,
            available_date=today + datetime.timedelta(days=30),
        ),
        _object(record, "hidden-shared.tif", tier=Tier.SHARED),
        _object(record, "hidden-quarantined.tif", tier=Tier.PUBLIC, quarantined_at=timezone.now()),
    ]
    never_listed = [
        _object(record, "hidden-nonshared.tif", tier=Tier.NON_SHARED),
        _object(
            record, "hidden-uploading.tif", tier=Tier.PUBLIC, status=DataObject.Status.UPLOADING
        ),
    ]
    closed = complete_record(record.project, number=2, metadata_access=MetadataAccess.CLOSED)
    closed_object = _object(closed, "hidden-closed-shared.tif", tier=Tier.SHARED)
    never_listed.append(closed_object)

    landing = _landing(client, record)
    html = landing.content.decode()
    for obj in listed_only:
        assert _download_url(obj) not in html
        assert _download_url(obj) not in landing["Link"]
    for obj in never_listed:
        assert obj.original_filename not in html
        assert _download_url(obj) not in html
    assert closed.title_en not in html

    machine = {
        "jsonld": json.dumps(_jsonld(landing), ensure_ascii=False),
        "link": landing["Link"],
    }
    for fmt in ("datacite-json", "datacite-xml", "jsonld", "jpcoar", "bibtex", "ris"):
        machine[fmt] = _export(client, record, fmt).content.decode()
    assert_valid_datacite_xml(machine["datacite-xml"])
    root = _unzip(_export(client, record, "bagit"), tmp_path)
    machine["bagit"] = "\n".join(
        str(p.relative_to(root)) + "\n" + (p.read_text() if p.suffix == ".txt" else "")
        for p in root.rglob("*")
    )
    for fmt, text in machine.items():
        for obj in listed_only + never_listed:
            assert obj.original_filename not in text, (fmt, obj.original_filename)
            assert _download_url(obj) not in text, (fmt, obj.original_filename)
        assert closed.title_en not in text
        assert closed.data_number not in text
    for fmt in ("jsonld", "link", "jpcoar", "bagit"):
        assert _download_url(public) in machine[fmt] or public.original_filename in machine[fmt]
        assert lifted.original_filename in machine[fmt] or _download_url(lifted) in machine[fmt]
    assert _landing(client, closed).status_code == 404


def test_record_without_creators_or_files_still_exports(client, tmp_path):
    record = DmpRecordFactory(
        metadata_access=MetadataAccess.OPEN,
        description_en="",
        repo_url_doi_link="https://doi.org/10.1234/kura.min",
    )
    assert _landing(client, record).status_code == 200
    data = _export(client, record, "datacite-json").json()
    assert schema45.validate(data)
    assert_valid_datacite_xml(schema45.tostring(data))
    assert_valid_datacite_xml(_export(client, record, "datacite-xml").content)
    data = _jsonld(_landing(client, record))
    assert "distribution" not in data
    bagit.Bag(str(_unzip(_export(client, record, "bagit"), tmp_path))).validate()


# --- funders and licences by their registries' identifiers ---------------------------------


def test_a_funder_with_a_crossref_funder_id_is_linked_by_it(client, dataset):
    record, _ = dataset  # JST
    funder_doi = "https://doi.org/10.13039/501100002241"
    xml = _export(client, record, "datacite-xml").content.decode()
    assert (
        f'<funderIdentifier funderIdentifierType="Crossref Funder ID">{funder_doi}'
        "</funderIdentifier>" in xml
    )
    jpcoar = _export(client, record, "jpcoar").content.decode()
    assert (
        f'<jpcoar:funderIdentifier funderIdentifierType="Crossref Funder">{funder_doi}'
        "</jpcoar:funderIdentifier>" in jpcoar
    )
    funder = _export(client, record, "jsonld").json()["funder"]
    assert funder["identifier"] == funder["sameAs"] == funder_doi


def test_a_funder_without_a_crossref_funder_id_keeps_its_e_rad_code(client):
    project = _project()
    project.funder = "NEDO"
    project.save()
    record = _open_record(project)
    data = _export(client, record, "datacite-json").json()
    (funding,) = data["fundingReferences"]
    assert (funding["funderIdentifier"], funding["funderIdentifierType"]) == ("1305", "Other")
    assert_valid_datacite_xml(_export(client, record, "datacite-xml").content)
    jpcoar = _export(client, record, "jpcoar").content.decode()
    assert (
        '<jpcoar:funderIdentifier funderIdentifierType="e-Rad_funder">1305'
        "</jpcoar:funderIdentifier>" in jpcoar
    )
    funder = _export(client, record, "jsonld").json()["funder"]
    assert funder["identifier"]["value"] == "1305" and "sameAs" not in funder


def test_a_licence_without_an_spdx_id_has_no_rights_identifier(client):
    record = _open_record(data_policy_license="GPL3")
    data = _export(client, record, "datacite-json").json()
    (licence,) = (r for r in data["rightsList"] if r["rights"] == "GNU General Public License 3.0")
    assert licence == {
        "rights": "GNU General Public License 3.0",
        "rightsUri": "https://www.gnu.org/licenses/gpl-3.0.html",
    }
    assert_valid_datacite_xml(_export(client, record, "datacite-xml").content)


def test_bagit_streams_in_chunks_smaller_than_a_file(client):
    record = _open_record()
    big = _object(record, "big.bin", tier=Tier.PUBLIC, data=bytes(range(256)) * 12_288)  # 3 MiB
    response = _export(client, record, "bagit")
    sizes = [len(chunk) for chunk in response.streaming_content]
    assert sum(sizes) > big.size
    assert max(sizes) < big.size
