"""GakuNin RDM's metadata exports come in: its common-metadata CSV (the 30 columns, written
the way its report template writes them) and its RO-Crate export's project metadata.

The documents here are built in the shapes GakuNin RDM's public source writes
(RCOSDP/RDM-osf.io: ``addons/metadata/report_format/report_*.csv.j2``, ``packages.py``,
``jsonld.py`` and the schema ``e-rad-metadata-1.json``), not copied from it."""

import csv
import io
import json
import struct
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from dmp.common_metadata import CSV_COLUMNS
from dmp.grdm import SCHEMA_NAME
from dmp.models import DmpRecord, DmpRecordRevision
from tests.dmp.test_common_metadata import HEADERS_EN, HEADERS_JA
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pm():
    return MembershipFactory(role=Role.PM)


def post(client, membership, fmt, content: bytes, name: str):
    client.force_login(membership.user)
    return client.post(
        f"/projects/{membership.project_id}/dmp/import/",
        {"format": fmt, "file": SimpleUploadedFile(name, content)},
    )


# --- The common-metadata CSV ----------------------------------------------------------------

# The header rows of GakuNin RDM's report templates (report_ja.csv.j2, report_en.csv.j2):
# the funders' 30 headers, word for word, as the common-metadata tests write them out.
GRDM_HEADERS = {"ja": tuple(HEADERS_JA), "en": tuple(HEADERS_EN)}

# One data row as GakuNin RDM's report template fills it: labels (its tooltips) where the
# item is a vocabulary, the licence as its code, creators joined by ";".
GRDM_ROW = {
    "ja": [
        "国立研究開発法人科学技術振興機構",
        "JPMJ",
        "ムーンショット型研究開発事業",
        "JPMJMS2021",
        "土壌プロジェクト",
        "G-001",
        "水田メタン観測データ",
        "2025-04-01",
        "水田3地点の観測。",
        "ライフサイエンス",
        "データセット",
        "1-10GB",
        "無償",
        "CCBY",
        "山田 (2025) を引用",
        "公開",
        "",
        "蔵リポジトリ",
        "https://doi.org/10.1234/kura.9",
        "山田 花子;鈴木 太郎",
        "70312345;",
        "国立研究開発法人 蔵研究所",
        "https://ror.org/0abcdef12",
        "佐藤 健",
        "40598761",
        "データ管理室",
        "東京都千代田区1-1",
        "03-1234-5678",
        "data@kura.example.jp",
        "",
    ],
    "en": [
        "Japan Science and Technology Agency",
        "JPMJ",
        "Moonshot",
        "JPMJMS2021",
        "Soil",
        "G-001",
        "Paddy methane observations",
        "2025-04-01",
        "Three paddy fields.",
        "Life Science",
        "dataset",
        "1-10GB",
        "free",
        "CCBY",
        "Cite Yamada (2025)",
        "open access",
        "",
        "Kura repository",
        "https://doi.org/10.1234/kura.9",
        "Hanako Yamada;Taro Suzuki",
        "70312345;",
        "Kura Research Institute",
        "https://ror.org/0abcdef12",
        "Ken Sato",
        "40598761",
        "Data Office",
        "1-1 Chiyoda",
        "03-1234-5678",
        "data@kura.example.jp",
        "",
    ],
}


def grdm_csv(language: str) -> bytes:
    """The file as GakuNin RDM writes it: every cell quoted, no BOM, LF line ends."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(GRDM_HEADERS[language])
    writer.writerow(GRDM_ROW[language])
    return out.getvalue().encode("utf-8")


@pytest.mark.parametrize("language", ["ja", "en"])
def test_gakunin_rdms_csv_imports(client, pm, language):
    response = post(client, pm, "csti-csv", grdm_csv(language), "report.csv")

    assert response.status_code == 302, response.content.decode()[-3000:]
    record = DmpRecord.objects.get(project=pm.project)
    assert record.data_number == "G-001"
    assert (record.data_research_field, record.data_type, record.data_policy_free) == (
        "189",
        "dataset",
        "free",
    )
    assert record.access_rights == Tier.PUBLIC
    names = [c.name_ja or c.name_en for c in record.creators.order_by("position")]
    assert names == (
        ["山田 花子", "鈴木 太郎"] if language == "ja" else ["Hanako Yamada", "Taro Suzuki"]
    )
    assert record.creators.order_by("position").first().erad_researcher_number == "70312345"
    assert record.contains_personal_data is None  # the CSV does not say: unknown


@pytest.mark.parametrize("language", ["ja", "en"])
def test_kura_writes_gakunin_rdms_thirty_headers_in_its_order(language):
    headers = [c.header_ja if language == "ja" else c.header_en for c in CSV_COLUMNS]
    assert tuple(headers) == GRDM_HEADERS[language]


# --- The RO-Crate export --------------------------------------------------------------------


def grdm_file(number: int, **overrides) -> dict:
    """One entry of ``grdm-files``: a file's path and its ``grdm-file:`` answers."""
    items = {
        "data-number": f"R-{number:03d}",
        "title-ja": f"観測データ{number}",
        "title-en": f"Observations {number}",
        "date-issued-updated": "2025-04-01",
        "data-description-ja": "水田の観測。",
        "data-description-en": "Paddy observations.",
        "data-research-field": "project",
        "data-type": "experimental data",
        "file-size": "<1GB",
        "data-policy-free": "free",
        "data-policy-license": "CC0",
        "data-policy-cite-ja": "DOI を引用",
        "data-policy-cite-en": "Cite the DOI",
        "access-rights": "restricted access",
        "available-date": "",
        "repo-information-ja": "GakuNin RDM",
        "repo-information-en": "GakuNin RDM",
        "repo-url-doi-link": "",
        "creators": json.dumps(
            [{"number": "70312345", "name_ja": "山田 花子", "name_en": "Hanako Yamada"}]
        ),
        "hosting-inst-ja": "蔵研究所",
        "hosting-inst-en": "Kura Research Institute",
        "hosting-inst-id": "",
        "data-man-type": "individual",
        "data-man-number": "40598761",
        "data-man-name-ja": "佐藤 健",
        "data-man-name-en": "Ken Sato",
        "data-man-org-ja": "",
        "data-man-org-en": "",
        "data-man-address-ja": "",
        "data-man-address-en": "",
        "data-man-tel": "",
        "data-man-email": "data@kura.example.jp",
        "remarks-ja": "",
        "remarks-en": "",
        "metadata-access-rights": "open access",
        **overrides,
    }
    return {
        "path": f"/osfstorage/data{number}.csv",
        "urlpath": f"/abcde/files/osfstorage/data{number}.csv",
        "metadata": {f"grdm-file:{key}": {"value": value} for key, value in items.items()},
    }


def crate(files, *, schema=SCHEMA_NAME, modified="2025-05-01T00:00:00", extra=()) -> dict:
    answers = {
        "funder": {"value": "JST"},
        "japan-grant-number": {"value": "JPMJMS2021"},
        "project-name-ja": {"value": "土壌プロジェクト"},
        "grdm-files": {"value": json.dumps(files, indent=2) if files else ""},
    }
    return {
        "@context": [
            "https://w3id.org/ro/crate/1.1/context",
            "https://w3id.org/ro/terms/workflow-run",
            "https://purl.org/gakunin-rdm/project/0.1",
        ],
        "@graph": [
            {
                "@id": "ro-crate-metadata.json",
                "@type": "CreativeWork",
                "about": {"@id": "./"},
                "conformsTo": {"@id": "https://w3id.org/ro/crate/1.1"},
            },
            {"@id": "./", "@type": "Dataset", "hasPart": [{"@id": "#root"}]},
            {"@id": "#root", "@type": "RDMProject", "name": "土壌プロジェクト"},
            {
                "@id": f"#metadata-schema-{schema}-3",
                "@type": "RDMMetadataSchema",
                "name": schema,
                "version": 3,
            },
            {
                "@id": "#project-metadata#0",
                "@type": "RDMProjectMetadata",
                "encodingFormat": "application/json",
                "rdmSchema": {"@id": f"#metadata-schema-{schema}-3"},
                "text": json.dumps(answers),
                "dateCreated": "2025-04-01T00:00:00",
                "dateModified": modified,
                "about": {"@id": "#root"},
            },
            *extra,
        ],
    }


def as_json(document) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def as_zip(document) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("ro-crate-metadata.json", as_json(document))
        archive.writestr("osfstorage/data1.csv", b"a,b\n1,2\n")
    return out.getvalue()


@pytest.mark.parametrize(("pack", "name"), [(as_json, "ro-crate-metadata.json"), (as_zip, "p.zip")])
def test_the_rocrate_exports_project_metadata_becomes_records(client, pm, pack, name):
    response = post(client, pm, "grdm-rocrate", pack(crate([grdm_file(1), grdm_file(2)])), name)

    assert response.status_code == 302, response.content.decode()[-3000:]
    records = list(DmpRecord.objects.filter(project=pm.project).order_by("data_number"))
    assert [r.data_number for r in records] == ["R-001", "R-002"]
    record = records[0]
    assert (record.title_ja, record.title_en) == ("観測データ1", "Observations 1")
    assert record.description_en == "Paddy observations."
    assert (record.access_rights, record.metadata_access) == (Tier.SHARED, MetadataAccess.OPEN)
    assert (record.data_research_field, record.data_policy_license) == ("project", "CC0")
    assert record.contains_personal_data is None  # GakuNin RDM does not say: unknown
    creator = record.creators.get()
    assert (creator.erad_researcher_number, creator.name_ja) == ("70312345", "山田 花子")
    revision = DmpRecordRevision.objects.get(record=record)
    assert (revision.kind, revision.detail) == ("imported", "grdm-rocrate")


def test_the_newest_common_metadata_draft_is_read(client, pm):
    older = {
        "@id": "#project-metadata#1",
        "@type": "RDMProjectMetadata",
        "rdmSchema": {"@id": f"#metadata-schema-{SCHEMA_NAME}-3"},
        "text": json.dumps({"grdm-files": {"value": json.dumps([grdm_file(9)])}}),
        "dateModified": "2024-01-01T00:00:00",
    }
    document = crate([grdm_file(1)], extra=[older])

    assert post(client, pm, "grdm-rocrate", as_json(document), "c.json").status_code == 302
    assert list(DmpRecord.objects.values_list("data_number", flat=True)) == ["R-001"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe\x00", "is not UTF-8 text"),
        (as_json({"@context": {}}), "has no @graph"),
        (as_json(crate([grdm_file(1)], schema="Other schema")), "holds no GakuNin RDM project"),
        (as_json(crate([])), "lists no data"),
        (b"[" * 100_000 + b"]" * 100_000, "too deep"),
        (b'{"@graph": [' + b"9" * 5000 + b"]}", "too long"),
        (b"PK\x03\x04broken", "The zip cannot be read"),
    ],
)
def test_what_is_not_such_a_crate_is_refused_cleanly(client, pm, content, message):
    response = post(client, pm, "grdm-rocrate", content, "c.json")

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not DmpRecord.objects.exists()


def test_a_zip_without_the_metadata_file_is_refused(client, pm):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("data.csv", b"1")

    response = post(client, pm, "grdm-rocrate", out.getvalue(), "c.zip")

    assert response.status_code == 400
    assert "The zip holds no ro-crate-metadata.json" in response.content.decode()


def test_each_problem_names_the_file_in_gakunin_rdm(client, pm):
    files = [grdm_file(1), grdm_file(2, **{"title-ja": "", "title-en": "", "access-rights": "x"})]

    response = post(client, pm, "grdm-rocrate", as_json(crate(files)), "c.json")

    html = response.content.decode()
    assert response.status_code == 400
    assert "/osfstorage/data2.csv: title" in html
    assert "/osfstorage/data2.csv: access_rights" in html
    assert "/osfstorage/data1.csv" not in html
    assert not DmpRecord.objects.exists()


def _zip(document, compression=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        archive.writestr("ro-crate-metadata.json", as_json(document))
    return out.getvalue()


def encrypted_zip() -> bytes:
    """A zip whose member is flagged encrypted (traditional PKWARE encryption)."""
    data = bytearray(_zip(crate([grdm_file(1)])))
    central = data.find(b"PK\x01\x02")
    flags = struct.unpack_from("<H", data, central + 8)[0]
    struct.pack_into("<H", data, central + 8, flags | 0x1)
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<H", data, local + 6, flags | 0x1)
    return bytes(data)


def corrupt_deflate_zip() -> bytes:
    """A zip whose deflated member's first byte is a reserved block type (zlib.error)."""
    data = bytearray(_zip(crate([grdm_file(1)])))
    local = data.find(b"PK\x03\x04")
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_len + extra_len
    data[start] = 0xFF
    return bytes(data)


def corrupt_lzma_zip() -> bytes:
    data = bytearray(_zip(crate([grdm_file(1)]), zipfile.ZIP_LZMA))
    local = data.find(b"PK\x03\x04")
    name_len, extra_len = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_len + extra_len
    for i in range(start + 9, start + 60):
        data[i] = 0xFF
    return bytes(data)


def with_project_metadata(**changes) -> bytes:
    document = crate([grdm_file(1)])
    entity = next(e for e in document["@graph"] if e["@type"] == "RDMProjectMetadata")
    entity.update(changes)
    return as_json(document)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("encrypted.zip", encrypted_zip),
        ("corrupt-deflate.zip", corrupt_deflate_zip),
        ("corrupt-lzma.zip", corrupt_lzma_zip),
        ("schema-as-string.json", lambda: with_project_metadata(rdmSchema="e-rad-metadata-1")),
        ("schema-dangling.json", lambda: with_project_metadata(rdmSchema={"@id": "#nowhere"})),
        ("schema-list.json", lambda: with_project_metadata(rdmSchema=[{"@id": "#a"}])),
    ],
)
def test_a_hostile_crate_is_refused_not_a_server_error(client, pm, name, content):
    client.raise_request_exception = False
    response = post(client, pm, "grdm-rocrate", content(), name)

    assert response.status_code == 400, response.status_code
    assert not DmpRecord.objects.exists()


def test_a_grdm_value_with_a_lone_surrogate_is_refused_with_where_it_is(client):
    pm = MembershipFactory(role=Role.PM)
    client.raise_request_exception = False
    content = as_json(crate([grdm_file(1, **{"title-en": "Obs\ud800ervations"})]))

    response = post(client, pm, "grdm-rocrate", content, "ro-crate-metadata.json")

    assert response.status_code == 400, response.status_code
    page = response.content.decode()
    assert "grdm-files: [0].metadata.grdm-file:title-en.value" in page
    assert "unpaired surrogate" in page
    assert not DmpRecord.objects.exists()


def test_a_grdm_value_with_a_nul_is_refused_not_a_server_error(client):
    pm = MembershipFactory(role=Role.PM)
    client.raise_request_exception = False
    content = as_json(crate([grdm_file(1, **{"title-en": "Obs\u0000ervations"})]))

    response = post(client, pm, "grdm-rocrate", content, "ro-crate-metadata.json")

    assert response.status_code == 400, response.status_code
    assert not DmpRecord.objects.exists()
