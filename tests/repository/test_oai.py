"""OAI-PMH 2.0 at /oai: XSD-valid responses, errors, key-based paging, and what leaks."""

import datetime
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from lxml import etree

from accounts.models import Institution
from core.vocabularies import MetadataAccess, Tier
from dmp.models import DmpRecord, RecordCreator
from repository.access import records_visible_to
from repository.governance.tiers import data_object_tier_apply, embargoes_lift
from repository.models import DataObject
from tests.dmp.complete_records import complete_record
from tests.factories import DataObjectFactory, DmpRecordFactory, ProjectFactory

SCHEMAS = Path(__file__).resolve().parents[2] / "repository" / "discovery" / "oai" / "schemas"
NS = {
    "oai": "http://www.openarchives.org/OAI/2.0/",
    "oai_id": "http://www.openarchives.org/OAI/2.0/oai-identifier",
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "jpcoar": "https://github.com/JPCOAR/schema/blob/master/2.0/",
    "datacite": "https://schema.datacite.org/meta/kernel-4/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
}
DRIVER = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:import namespace="{NS["oai"]}" schemaLocation="{(SCHEMAS / "OAI-PMH.xsd").as_uri()}"/>
  <xs:import namespace="{NS["oai_dc"]}" schemaLocation="{(SCHEMAS / "oai_dc.xsd").as_uri()}"/>
  <xs:import namespace="{NS["oai_id"]}"
    schemaLocation="{(SCHEMAS / "oai-identifier.xsd").as_uri()}"/>
</xs:schema>"""


class LocalSchemas(etree.Resolver):
    def resolve(self, url, public_id, context):
        name = url.rsplit("/", 1)[-1]
        if (SCHEMAS / name).exists():
            return self.resolve_filename(str(SCHEMAS / name), context)
        return None


def _schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(LocalSchemas())
    return etree.XMLSchema(etree.fromstring(DRIVER.encode(), parser))


SCHEMA = _schema()


def validate(document: etree._Element) -> None:
    """Validate against OAI-PMH.xsd (+ oai_dc.xsd, oai-identifier.xsd); JPCOAR content is
    swapped out first,
    since its schema is not shipped and the envelope demands strict validation."""
    copy = etree.fromstring(etree.tostring(document))
    for metadata in copy.iterfind(".//oai:metadata", NS):
        for child in list(metadata):
            if child.tag == f"{{{NS['jpcoar']}}}jpcoar":
                metadata.replace(child, etree.Element(f"{{{NS['oai_dc']}}}dc"))
    SCHEMA.assertValid(copy)


def oai(client, method="get", **params) -> etree._Element:
    response = getattr(client, method)("/oai", params)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml; charset=utf-8"
    document = etree.fromstring(response.content)
    validate(document)
    return document


def error_code(document) -> str | None:
    errors = document.findall("oai:error", NS)
    return errors[0].get("code") if errors else None


def identifiers(document) -> list[str]:
    return [e.text for e in document.iterfind(".//oai:header/oai:identifier", NS)]


def token_of(document) -> str | None:
    element = document.find(".//oai:resumptionToken", NS)
    return None if element is None else (element.text or "")


@pytest.fixture(autouse=True)
def admin_email(settings):
    # The default (DEFAULT_FROM_EMAIL, kura@localhost in development) is no address the
    # schema accepts: a deployment sets one.
    settings.KURA_OAI_ADMIN_EMAIL = "oai@kura.example.org"


def oai_id(record) -> str:
    return f"oai:{settings.KURA_OAI_REPOSITORY_ID}:record/{record.pk}"


def open_record(project=None, **kwargs) -> DmpRecord:
    return DmpRecordFactory(
        project=project or ProjectFactory(),
        metadata_access=MetadataAccess.OPEN,
        access_rights=kwargs.pop("access_rights", Tier.PUBLIC),
        **kwargs,
    )


@pytest.fixture
def records(db):
    """Three open records (one withdrawn), one restricted and one closed."""
    project = ProjectFactory(funding_stream_code="MS2", program_name_en="Moonshot Goal 2")
    opened = [open_record(project) for _ in range(2)]
    withdrawn = open_record(project, withdrawn_at=timezone.now(), withdrawal_reason="Duplicate")
    restricted = DmpRecordFactory(project=project, metadata_access=MetadataAccess.RESTRICTED)
    closed = DmpRecordFactory(metadata_access=MetadataAccess.CLOSED, title_en="Secret closed")
    return {
        "project": project,
        "open": opened,
        "withdrawn": withdrawn,
        "hidden": [restricted, closed],
    }


# --- Verbs -----------------------------------------------------------------------------------


def test_identify(client, records):
    document = oai(client, verb="Identify")
    identify = document.find("oai:Identify", NS)
    assert identify.findtext("oai:protocolVersion", namespaces=NS) == "2.0"
    assert identify.findtext("oai:deletedRecord", namespaces=NS) == "persistent"
    assert identify.findtext("oai:granularity", namespaces=NS) == "YYYY-MM-DDThh:mm:ssZ"
    assert identify.findtext("oai:baseURL", namespaces=NS) == "http://testserver/oai"
    assert document.find("oai:request", NS).get("verb") == "Identify"


def test_post_is_accepted(client, records):
    document = oai(client, method="post", verb="ListIdentifiers", metadataPrefix="oai_dc")
    assert set(identifiers(document)) == {
        oai_id(r) for r in [*records["open"], records["withdrawn"]]
    }


def test_list_metadata_formats(client, records):
    document = oai(client, verb="ListMetadataFormats", identifier=oai_id(records["open"][0]))
    prefixes = document.xpath("//oai:metadataPrefix/text()", namespaces=NS)
    assert prefixes == ["oai_dc", "jpcoar_2.0"]
    namespaces = document.xpath("//oai:metadataNamespace/text()", namespaces=NS)
    assert NS["jpcoar"] in namespaces


def test_list_sets_only_projects_with_open_records(client, records):
    ProjectFactory()  # no records at all
    document = oai(client, verb="ListSets")
    specs = document.xpath("//oai:setSpec/text()", namespaces=NS)
    project = records["project"]
    assert specs == [
        "program",
        "program:JST",
        "program:JST:MS2",
        "project",
        f"project:{project.pk}",
    ]
    names = document.xpath("//oai:setName/text()", namespaces=NS)
    assert "Moonshot Goal 2" in names
    assert project.name_en in names


def test_set_filters_records(client, records):
    other = open_record(ProjectFactory(funder="AMED"))
    document = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc", set="program:AMED")
    assert identifiers(document) == [oai_id(other)]
    project = records["project"]
    document = oai(
        client, verb="ListIdentifiers", metadataPrefix="oai_dc", set=f"project:{project.pk}"
    )
    assert oai_id(other) not in identifiers(document)
    assert len(identifiers(document)) == 3


def test_withdrawn_record_is_a_deleted_header(client, records):
    withdrawn = records["withdrawn"]
    for prefix in ("oai_dc", "jpcoar_2.0"):
        document = oai(
            client, verb="GetRecord", identifier=oai_id(withdrawn), metadataPrefix=prefix
        )
        record = document.find(".//oai:record", NS)
        assert record.find("oai:header", NS).get("status") == "deleted"
        assert record.find("oai:metadata", NS) is None
        assert withdrawn.title_en.encode() not in etree.tostring(document)


def test_jpcoar_mapping(client, db):
    project = ProjectFactory(
        funding_stream_code="MS2",
        japan_grant_number="JPMJMS2021",
        program_name_ja="ムーンショット目標2",
    )
    record = complete_record(project, metadata_access=MetadataAccess.OPEN, keywords_en="a, b")
    DataObjectFactory(project=project, record=record, tier=Tier.PUBLIC, original_filename="p.tif")
    document = oai(client, verb="GetRecord", identifier=oai_id(record), metadataPrefix="jpcoar_2.0")
    jp = document.find(".//jpcoar:jpcoar", NS)

    def xp(path):
        return jp.xpath(path, namespaces=NS)

    assert xp("dc:title[@xml:lang='ja']/text()") == [record.title_ja]
    assert xp("dc:title[@xml:lang='en']/text()") == [record.title_en]
    assert xp(
        "jpcoar:creator/jpcoar:nameIdentifier[@nameIdentifierScheme='e-Rad_Researcher']/text()"
    ) == ["70312345"]
    assert xp("jpcoar:creator/jpcoar:creatorName[@xml:lang='en']/text()") == [
        "Hanako Yamada",
        "Hina Suzuki",
    ]
    host = xp("jpcoar:contributor[@contributorType='HostingInstitution']")[0]
    assert host.xpath("jpcoar:nameIdentifier/@nameIdentifierScheme", namespaces=NS) == ["ROR"]
    manager = xp("jpcoar:contributor[@contributorType='DataManager']")[0]
    assert manager.xpath("jpcoar:nameIdentifier/text()", namespaces=NS) == ["40598761"]
    assert xp("jpcoar:subject[@subjectScheme='e-Rad_field'][@xml:lang='en']/text()") == [
        "Informatics"
    ]
    assert xp("datacite:description[@descriptionType='Abstract']")
    assert xp("datacite:date[@dateType='Issued']/text()") == [
        record.date_issued_updated.isoformat()
    ]
    assert xp("dc:type/@rdf:resource")
    assert xp("dcterms:accessRights/@rdf:resource") == ["http://purl.org/coar/access_right/c_abf2"]
    assert xp("jpcoar:identifier[@identifierType='URI']/text()") == [
        f"http://testserver/datasets/{record.pk}/"
    ]
    assert xp("jpcoar:identifier[@identifierType='DOI']/text()") == ["10.1234/kura.1"]
    assert xp("jpcoar:relation/jpcoar:relatedIdentifier[@identifierType='Local']/text()") == [
        record.data_number
    ]
    funding = xp("jpcoar:fundingReference")[0]
    assert funding.xpath(
        "jpcoar:funderIdentifier[@funderIdentifierType='Crossref Funder']/text()", namespaces=NS
    ) == ["https://doi.org/10.13039/501100002241"]
    assert funding.xpath(
        "jpcoar:fundingStreamIdentifier[@fundingStreamIdentifierType='JGN_fundingStream']/text()",
        namespaces=NS,
    ) == ["MS2"]
    assert funding.xpath("jpcoar:awardNumber[@awardNumberType='JGN']/text()", namespaces=NS) == [
        "JPMJMS2021"
    ]
    assert funding.xpath("jpcoar:awardTitle/text()", namespaces=NS)
    assert xp("jpcoar:file/jpcoar:URI/@label") == ["p.tif"]
    assert xp("jpcoar:file/jpcoar:extent/text()") == ["1024 B"]
    # The data manager's contact details are not for harvesters.
    assert b"data@kura.example.jp" not in etree.tostring(document)


def test_oai_dc_is_schema_valid_with_content(client, db):
    record = complete_record(ProjectFactory(), metadata_access=MetadataAccess.OPEN)
    document = oai(client, verb="GetRecord", identifier=oai_id(record), metadataPrefix="oai_dc")
    dc = document.find(".//oai_dc:dc", NS)
    assert dc.xpath("dc:title[@xml:lang='ja']/text()", namespaces=NS) == [record.title_ja]
    assert f"http://testserver/datasets/{record.pk}/" in dc.xpath(
        "dc:identifier/text()", namespaces=NS
    )


# --- Dates -----------------------------------------------------------------------------------


def _stamp(record, moment):
    DmpRecord.objects.filter(pk=record.pk).update(harvest_changed_at=moment)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"from": "2025-01-02"}, {"b", "c"}),
        ({"until": "2025-01-02"}, {"a", "b"}),
        ({"from": "2025-01-02T10:00:00Z", "until": "2025-01-02T10:00:00Z"}, {"b"}),
        ({"from": "2025-01-02T10:00:01Z"}, {"c"}),
        ({"from": "2025-01-01", "until": "2025-01-03"}, {"a", "b", "c"}),
    ],
)
def test_from_until(client, db, params, expected):
    utc = datetime.UTC
    stamped = {
        "a": datetime.datetime(2025, 1, 1, 23, 59, 59, tzinfo=utc),
        "b": datetime.datetime(2025, 1, 2, 10, 0, 0, 500000, tzinfo=utc),
        "c": datetime.datetime(2025, 1, 3, 0, 0, 0, tzinfo=utc),
    }
    by_id = {}
    for name, moment in stamped.items():
        record = open_record()
        _stamp(record, moment)
        by_id[oai_id(record)] = name
    document = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc", **params)
    assert {by_id[i] for i in identifiers(document)} == expected
    b_stamp = [
        h.findtext("oai:datestamp", namespaces=NS)
        for h in document.iterfind(".//oai:header", NS)
        if by_id[h.findtext("oai:identifier", namespaces=NS)] == "b"
    ]
    assert b_stamp == (["2025-01-02T10:00:00Z"] if "b" in expected else [])


# --- Errors ----------------------------------------------------------------------------------

LIST = {"verb": "ListRecords", "metadataPrefix": "oai_dc"}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "badVerb"),
        ({"verb": "Harvest"}, "badVerb"),
        ({"verb": ["Identify", "Identify"]}, "badVerb"),
        ({"verb": "Identify", "foo": "1"}, "badArgument"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "ListIdentifiers", "metadataPrefix": ["oai_dc", "oai_dc"]}, "badArgument"),
        ({"verb": "GetRecord", "metadataPrefix": "oai_dc"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": "oai:kura:record/1"}, "badArgument"),
        ({"verb": "ListMetadataFormats", "metadataPrefix": "oai_dc"}, "badArgument"),
        ({**LIST, "from": "yesterday"}, "badArgument"),
        ({**LIST, "from": "2025-02-30"}, "badArgument"),
        ({**LIST, "from": "2025-01-01T00:00:00"}, "badArgument"),
        ({**LIST, "from": "2025-01-01", "until": "2025-01-02T00:00:00Z"}, "badArgument"),
        ({**LIST, "from": "2025-01-02", "until": "2025-01-01"}, "badArgument"),
        ({**LIST, "resumptionToken": "x"}, "badArgument"),
        ({"verb": "Identify", "resumptionToken": "x"}, "badArgument"),
        ({"verb": "ListRecords", "resumptionToken": "garbage"}, "badResumptionToken"),
        ({"verb": "ListSets", "resumptionToken": "garbage"}, "badResumptionToken"),
        ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
        (
            {"verb": "GetRecord", "identifier": "oai:kura:record/0", "metadataPrefix": "oai_dc"},
            "idDoesNotExist",
        ),
        (
            {"verb": "GetRecord", "identifier": "oai:else:record/1", "metadataPrefix": "oai_dc"},
            "idDoesNotExist",
        ),
        ({"verb": "ListMetadataFormats", "identifier": "nope"}, "idDoesNotExist"),
        ({**LIST, "from": "2999-01-01"}, "noRecordsMatch"),
        ({**LIST, "set": "project:999999"}, "noRecordsMatch"),
        ({**LIST, "set": "nonsense"}, "noRecordsMatch"),
    ],
)
def test_errors(client, records, params, code):
    document = oai(client, **params)
    assert error_code(document) == code
    request = document.find("oai:request", NS)
    if code in {"badVerb", "badArgument"}:
        assert dict(request.attrib) == {}
    else:
        assert request.get("verb") == params["verb"]
    assert not document.xpath("//oai:header", namespaces=NS)


@pytest.mark.parametrize("verb", ["GetRecord", "ListMetadataFormats"])
def test_hidden_record_does_not_exist(client, records, verb):
    for record in records["hidden"]:
        params = {"verb": verb, "identifier": oai_id(record)}
        if verb == "GetRecord":
            params["metadataPrefix"] = "jpcoar_2.0"
        assert error_code(oai(client, **params)) == "idDoesNotExist"


def test_no_set_hierarchy_when_nothing_is_harvestable(client, db):
    DmpRecordFactory(metadata_access=MetadataAccess.CLOSED)
    assert error_code(oai(client, verb="ListSets")) == "noSetHierarchy"
    document = oai(client, **LIST, set="project:1")
    assert error_code(document) == "noSetHierarchy"


# --- Paging ----------------------------------------------------------------------------------


def harvest(client, verb, prefix, **params) -> tuple[list[str], list[etree._Element]]:
    pages = [oai(client, verb=verb, metadataPrefix=prefix, **params)]
    while token_of(pages[-1]):
        pages.append(oai(client, verb=verb, resumptionToken=token_of(pages[-1])))
    return [i for page in pages for i in identifiers(page)], pages


@override_settings(KURA_OAI_PAGE_SIZE=3)
@pytest.mark.parametrize("verb", ["ListIdentifiers", "ListRecords"])
@pytest.mark.parametrize("prefix", ["oai_dc", "jpcoar_2.0"])
def test_paging_covers_every_open_record_once(client, db, verb, prefix):
    projects = [ProjectFactory(), ProjectFactory()]
    for n in range(10):
        open_record(projects[n % 2])
        DmpRecordFactory(project=projects[n % 2], metadata_access=MetadataAccess.CLOSED)
    # Several records share one datestamp: the key (datestamp, id) still orders them.
    same = timezone.now().replace(microsecond=0)
    first = DmpRecord.objects.filter(harvest_changed_at__isnull=False).order_by("pk")[:6]
    DmpRecord.objects.filter(pk__in=first).update(harvest_changed_at=same)
    seen, pages = harvest(client, verb, prefix)
    expected = [oai_id(r) for r in records_visible_to(AnonymousUser()).order_by("pk")]
    assert len(seen) == len(set(seen)) == 10
    assert set(seen) == set(expected)
    assert len(pages) == 4
    assert token_of(pages[-1]) == ""  # the last page of a multi-page list ends with an empty token
    assert all(token_of(p) for p in pages[:-1])


@override_settings(KURA_OAI_PAGE_SIZE=5)
def test_records_changed_during_a_harvest_do_not_shift_pages(client, db):
    made = [open_record() for _ in range(10)]
    first = oai(client, **LIST)
    DmpRecord.objects.filter(pk=made[0].pk).update(title_en="Changed")  # no updated_at change
    made[1].save()  # moves to the end of the list
    DmpRecordFactory(metadata_access=MetadataAccess.OPEN)
    rest = oai(client, verb="ListRecords", resumptionToken=token_of(first))
    seen = identifiers(first) + identifiers(rest)
    assert {oai_id(r) for r in made} <= set(seen)


def test_tampered_or_foreign_token(client, db):
    for _ in range(3):
        open_record()
    with override_settings(KURA_OAI_PAGE_SIZE=1):
        token = token_of(oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc"))
        assert token
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        document = oai(client, verb="ListIdentifiers", resumptionToken=tampered)
        assert error_code(document) == "badResumptionToken"
        document = oai(client, verb="ListRecords", resumptionToken=token)
        assert error_code(document) == "badResumptionToken"


@pytest.mark.parametrize("records_per_page", [2, 6])
def test_query_count_is_constant_per_page(
    client, db, django_assert_max_num_queries, records_per_page
):
    for number in range(1, 13):
        record = complete_record(
            ProjectFactory(), number=number, metadata_access=MetadataAccess.OPEN
        )
        for tier in (Tier.PUBLIC, Tier.SHARED):
            DataObjectFactory(project=record.project, record=record, tier=tier)
    with override_settings(KURA_OAI_PAGE_SIZE=records_per_page):
        # records + creators + downloadable files + published versions, whatever the page
        # size (and the statement timeout set and put back: core/db.py); the list's size is
        # counted once, on its first page (completeListSize)
        with django_assert_max_num_queries(7):
            document = oai(client, verb="ListRecords", metadataPrefix="jpcoar_2.0")
        assert len(identifiers(document)) == records_per_page
        with django_assert_max_num_queries(6):
            document = oai(client, verb="ListRecords", resumptionToken=token_of(document))
        assert len(document.xpath("//jpcoar:file", namespaces=NS)) == records_per_page
        with django_assert_max_num_queries(4):
            oai(client, verb="ListIdentifiers", metadataPrefix="jpcoar_2.0")


# --- Nothing non-public leaks ----------------------------------------------------------------


def test_no_non_public_object_or_closed_record_appears(client, db):
    project = ProjectFactory()
    record = open_record(project, access_rights=Tier.SHARED)
    today = timezone.localdate()
    public = DataObjectFactory(
        project=project, record=record, tier=Tier.PUBLIC, original_filename="public-file.tif"
    )
    past_embargo = DataObjectFactory(
        project=project,
        record=record,
        tier=Tier.EMBARGOED,
        available_date=today - datetime.timedelta(days=1),
        original_filename="embargo-lifted.tif",
    )
    hidden = [
        DataObjectFactory(
            project=project,
            record=record,
            tier=Tier.EMBARGOED,
            available_date=today + datetime.timedelta(days=30),
            original_filename="embargoed-future.tif",
        ),
        DataObjectFactory(
            project=project, record=record, tier=Tier.SHARED, original_filename="shared-file.tif"
        ),
        DataObjectFactory(
            project=project,
            record=record,
            tier=Tier.NON_SHARED,
            original_filename="non-shared-file.tif",
        ),
        DataObjectFactory(
            project=project,
            record=record,
            tier=Tier.PUBLIC,
            quarantined_at=timezone.now(),
            original_filename="quarantined.tif",
        ),
        DataObjectFactory(
            project=project,
            record=record,
            tier=Tier.PUBLIC,
            status=DataObject.Status.UPLOADING,
            original_filename="uploading.tif",
        ),
        DataObjectFactory(
            project=project,
            record=record,
            tier=Tier.PUBLIC,
            status=DataObject.Status.DELETED,
            original_filename="deleted.tif",
        ),
    ]
    closed_records = [
        DmpRecordFactory(project=project, metadata_access=access, title_en=f"Hidden {access}")
        for access in (MetadataAccess.CLOSED, MetadataAccess.RESTRICTED)
    ]
    for closed in closed_records:
        hidden.append(
            DataObjectFactory(
                project=project,
                record=closed,
                tier=Tier.PUBLIC,
                original_filename=f"in-{closed.metadata_access}-record.tif",
            )
        )
    bodies = []
    for prefix in ("oai_dc", "jpcoar_2.0"):
        for verb in ("ListRecords", "ListIdentifiers"):
            bodies.append(client.get("/oai", {"verb": verb, "metadataPrefix": prefix}).content)
        bodies.append(
            client.get(
                "/oai",
                {"verb": "GetRecord", "identifier": oai_id(record), "metadataPrefix": prefix},
            ).content
        )
    for verb in ("Identify", "ListSets", "ListMetadataFormats"):
        bodies.append(client.get("/oai", {"verb": verb}).content)
    everything = b"\n".join(bodies).decode()
    assert "public-file.tif" in everything
    assert f"/objects/{public.pk}/download" in everything
    assert "embargo-lifted.tif" in everything
    assert f"/objects/{past_embargo.pk}/download" in everything
    for obj in hidden:
        assert obj.original_filename not in everything
        assert f"/objects/{obj.pk}/download" not in everything
    for closed in closed_records:
        assert closed.title_en not in everything
        assert oai_id(closed) not in everything


# --- A real harvester against a live server --------------------------------------------------


def sickle_for(live_server):
    """A Sickle harvester whose every response is validated against the schemas too."""
    from sickle import Sickle

    class ValidatingSickle(Sickle):
        def harvest(self, **kwargs):
            response = super().harvest(**kwargs)
            validate(etree.fromstring(response.http_response.content))
            return response

    return ValidatingSickle(f"{live_server.url}/oai", max_retries=0)


@pytest.mark.django_db(transaction=True)
@override_settings(KURA_OAI_PAGE_SIZE=3)
def test_sickle_harvests_everything_open(live_server):
    projects = [ProjectFactory(funding_stream_code="MS2"), ProjectFactory()]
    for n in range(8):
        record = complete_record(projects[n % 2], number=n + 1, metadata_access=MetadataAccess.OPEN)
        DataObjectFactory(
            project=record.project,
            record=record,
            tier=Tier.NON_SHARED,
            original_filename=f"secret-{n}.tif",
        )
        DmpRecordFactory(
            project=projects[n % 2],
            metadata_access=MetadataAccess.CLOSED,
            title_en=f"Closed dataset {n}",
        )
    withdrawn = open_record(projects[0], withdrawn_at=timezone.now())
    expected = {oai_id(r) for r in records_visible_to(AnonymousUser())}
    assert len(expected) == 9

    sickle = sickle_for(live_server)
    assert sickle.Identify().deletedRecord == "persistent"
    for prefix in ("oai_dc", "jpcoar_2.0"):
        harvested = list(sickle.ListRecords(metadataPrefix=prefix, ignore_deleted=False))
        ids = [r.header.identifier for r in harvested]
        assert len(ids) == len(set(ids)) == records_visible_to(AnonymousUser()).count()
        assert set(ids) == expected
        deleted = {r.header.identifier for r in harvested if r.header.deleted}
        assert deleted == {oai_id(withdrawn)}
        raw = "".join(r.raw for r in harvested)
        assert "Closed dataset" not in raw
        assert "secret-" not in raw
    headers = list(sickle.ListIdentifiers(metadataPrefix="oai_dc", set="program:JST:MS2"))
    assert {h.identifier for h in headers} == {
        oai_id(r) for r in records_visible_to(AnonymousUser()).filter(project=projects[0])
    }
    record = sickle.GetRecord(identifier=oai_id(withdrawn), metadataPrefix="jpcoar_2.0")
    assert record.header.deleted


# --- Datestamps: the last change to anything the formats show --------------------------------

LONG_AGO = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
SINCE = {"from": "2021-01-01"}


def _age(*records) -> None:
    """As if ``records`` last changed long ago (a quiet write: it moves nothing itself)."""
    DmpRecord.objects.filter(pk__in=[r.pk for r in records]).update(harvest_changed_at=LONG_AGO)


def changed_since(client, verb="ListIdentifiers", **params) -> dict[str, etree._Element]:
    """The headers of an incremental harvest from 2021, by identifier."""
    document = oai(client, verb=verb, metadataPrefix="jpcoar_2.0", **SINCE, **params)
    if error_code(document) == "noRecordsMatch":
        return {}
    assert error_code(document) is None
    return {
        h.findtext("oai:identifier", namespaces=NS): h
        for h in document.iterfind(".//oai:header", NS)
    }


@pytest.fixture
def dataset(db):
    """An open record with a public, a shared and a lifted-embargo file and a creator, and a
    second open record of the same project; both last changed long ago."""
    project = ProjectFactory()
    record = open_record(project)
    other = open_record(project)
    files = {
        tier: DataObjectFactory(project=project, record=record, tier=tier)
        for tier in (Tier.PUBLIC, Tier.SHARED)
    }
    files["lifted"] = DataObjectFactory(
        project=project,
        record=record,
        tier=Tier.EMBARGOED,
        available_date=timezone.localdate() - datetime.timedelta(days=1),
    )
    RecordCreator.objects.create(record=record, name_en="Hanako Yamada")
    _age(record, other)
    return {"record": record, "other": other, "files": files, "project": project}


def _close_file(d):
    public = d["files"][Tier.PUBLIC]
    public.tier = Tier.SHARED
    public.save()


def _open_file_by_decision(d):
    data_object_tier_apply(
        actor=None, data_object=d["files"][Tier.SHARED], tier=Tier.PUBLIC, available_date=None
    )


def _lift_embargo(d):
    assert embargoes_lift() == 1


def _add_file(d):
    DataObjectFactory(project=d["project"], record=d["record"], tier=Tier.PUBLIC)


def _delete_file(d):
    DataObject.objects.filter(pk=d["files"][Tier.PUBLIC].pk).update(
        status=DataObject.Status.DELETED
    )


def _rename_file(d):
    public = d["files"][Tier.PUBLIC]
    public.original_filename = "renamed.tif"
    public.save(update_fields=["original_filename"])


def _checksum_file(d):
    DataObject.objects.filter(pk=d["files"][Tier.PUBLIC].pk).update(sha256="ab" * 32)


def _move_file_away(d):
    public = DataObject.objects.get(pk=d["files"][Tier.PUBLIC].pk)
    public.record = d["other"]
    public.save()


def _add_creator(d):
    RecordCreator.objects.create(record=d["record"], name_en="Hina Suzuki")


def _rename_creators(d):
    RecordCreator.objects.filter(record=d["record"]).update(name_en="Taro Tanaka")


def _edit_record(d):
    record = DmpRecord.objects.get(pk=d["record"].pk)
    record.title_en = "A new title"
    record.save()


def _edit_record_in_bulk(d):
    DmpRecord.objects.filter(pk=d["record"].pk).update(keywords_en="soil, methane")


def _rename_project(d):
    project = d["project"]
    project.name_en = "A renamed project"
    project.save()


def _rename_institution(d):
    Institution.objects.filter(pk=d["project"].institution_id).update(name_en="A new name")


@pytest.mark.parametrize(
    ("change", "moved"),
    [
        (_close_file, {"record"}),
        (_open_file_by_decision, {"record"}),
        (_lift_embargo, {"record"}),
        (_add_file, {"record"}),
        (_delete_file, {"record"}),
        (_rename_file, {"record"}),
        (_checksum_file, {"record"}),
        (_move_file_away, {"record", "other"}),
        (_add_creator, {"record"}),
        (_rename_creators, {"record"}),
        (_edit_record, {"record"}),
        (_edit_record_in_bulk, {"record"}),
        (_rename_project, {"record", "other"}),
        (_rename_institution, {"record", "other"}),
    ],
)
def test_a_change_the_formats_show_moves_the_datestamp(client, dataset, change, moved):
    assert changed_since(client) == {}
    before = timezone.now().replace(microsecond=0)
    change(dataset)
    headers = changed_since(client)
    assert set(headers) == {oai_id(dataset[name]) for name in moved}
    for header in headers.values():
        assert header.get("status") is None
        stamp = header.findtext("oai:datestamp", namespaces=NS)
        assert stamp >= before.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_change_nothing_shows_moves_no_datestamp(client, dataset):
    DataObject.objects.filter(pk=dataset["files"][Tier.PUBLIC].pk).update(checksum_progress=512)
    DmpRecordFactory(project=dataset["project"], metadata_access=MetadataAccess.CLOSED)
    assert changed_since(client) == {}


def _stamp_of(record) -> datetime.datetime:
    return DmpRecord.objects.get(pk=record.pk).harvest_changed_at


def test_a_datestamp_is_not_older_than_the_commit_that_showed_the_change(transactional_db, dataset):
    """A harvest between a write and its commit cannot see the change; its responseDate is
    the next harvest's ``from``. The stamp is taken again at commit, so that next harvest
    (``from`` = the earlier responseDate) still collects the record (OAI-PMH §2.7.1)."""
    record, other = dataset["record"], dataset["other"]
    with transaction.atomic():
        _close_file(dataset)
        _add_creator(dataset)
        in_transaction = _stamp_of(record)
        restamps = [
            func
            for _sids, func, _robust in transaction.get_connection().run_on_commit
            if type(func).__name__ == "_Restamp"
        ]
        response_date = timezone.now()  # a harvest that could not see the change yet
    assert in_transaction < response_date <= _stamp_of(record)
    assert _stamp_of(other) == LONG_AGO  # only what the transaction stamped moves again
    assert len(restamps) == 1  # one per transaction, however many writes


def test_a_write_rolled_back_leaves_the_datestamp_alone(transactional_db, dataset):
    with pytest.raises(RuntimeError), transaction.atomic():
        _close_file(dataset)
        assert _stamp_of(dataset["record"]) > LONG_AGO
        raise RuntimeError("the write fails")
    assert _stamp_of(dataset["record"]) == LONG_AGO


def test_the_closing_of_a_file_reaches_the_harvested_record(client, dataset):
    public = dataset["files"][Tier.PUBLIC]
    _close_file(dataset)
    document = oai(client, verb="ListRecords", metadataPrefix="jpcoar_2.0", **SINCE)
    names = document.xpath("//jpcoar:file/jpcoar:URI/@label", namespaces=NS)
    assert identifiers(document) == [oai_id(dataset["record"])]
    assert public.original_filename not in names
    assert dataset["files"]["lifted"].original_filename in names


def test_a_record_never_opened_is_no_item_whatever_changes(client, db):
    closed = DmpRecordFactory(metadata_access=MetadataAccess.CLOSED, title_en="Never opened")
    DataObjectFactory(project=closed.project, record=closed, tier=Tier.PUBLIC)
    closed.title_en = "Still never opened"
    closed.save()
    assert DmpRecord.objects.get(pk=closed.pk).harvest_changed_at is None
    params = {"identifier": oai_id(closed), "metadataPrefix": "oai_dc"}
    assert error_code(oai(client, verb="GetRecord", **params)) == "idDoesNotExist"
    assert error_code(oai(client, **LIST)) == "noRecordsMatch"


# --- Deleted records: closed or withdrawn ----------------------------------------------------


@pytest.mark.parametrize("how", ["closed", "restricted", "withdrawn"])
def test_a_record_harvesters_lose_is_a_deleted_record(client, dataset, how):
    record = DmpRecord.objects.get(pk=dataset["record"].pk)
    before = timezone.now().replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if how == "withdrawn":
        record.withdrawn_at = timezone.now()
        record.withdrawal_reason = "Duplicate"
    else:
        record.metadata_access = how
    record.save()
    # An incremental harvest hears of it, as a deleted record dated when it happened.
    headers = changed_since(client)
    assert set(headers) == {oai_id(record)}
    assert headers[oai_id(record)].get("status") == "deleted"
    assert headers[oai_id(record)].findtext("oai:datestamp", namespaces=NS) >= before
    for prefix in ("oai_dc", "jpcoar_2.0"):
        for document in (
            oai(client, verb="ListRecords", metadataPrefix=prefix, **SINCE),
            oai(client, verb="GetRecord", metadataPrefix=prefix, identifier=oai_id(record)),
        ):
            [item] = document.findall(".//oai:record", NS)
            assert item.find("oai:header", NS).get("status") == "deleted"
            assert item.find("oai:metadata", NS) is None
            body = etree.tostring(document).decode()
            assert record.title_en not in body
            assert dataset["files"][Tier.PUBLIC].original_filename not in body
    document = oai(client, verb="ListMetadataFormats", identifier=oai_id(record))
    assert error_code(document) is None
    # The other record of the project is still there, unchanged.
    assert set(identifiers(oai(client, **LIST))) == {oai_id(record), oai_id(dataset["other"])}


def test_a_reopened_record_is_live_again(client, dataset):
    record = DmpRecord.objects.get(pk=dataset["record"].pk)
    record.metadata_access = MetadataAccess.CLOSED
    record.save()
    _age(record)
    record.metadata_access = MetadataAccess.OPEN
    record.save()
    headers = changed_since(client, verb="ListRecords")
    assert headers[oai_id(record)].get("status") is None


# --- Sets: a hierarchy ------------------------------------------------------------------------


def test_a_set_holds_the_records_of_the_sets_below_it(client, db):
    moonshot = open_record(ProjectFactory(funding_stream_code="MS2"))
    amed = open_record(ProjectFactory(funder="AMED"))
    DmpRecordFactory(project=moonshot.project, metadata_access=MetadataAccess.CLOSED)
    both = {oai_id(moonshot), oai_id(amed)}
    expected = {
        "program": both,
        "project": both,
        "program:JST": {oai_id(moonshot)},
        "program:JST:MS2": {oai_id(moonshot)},
        "program:AMED": {oai_id(amed)},
        f"project:{amed.project_id}": {oai_id(amed)},
    }
    for spec, members in expected.items():
        document = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc", set=spec)
        assert set(identifiers(document)) == members, spec
    # A header names the most specific sets only: program:JST is implied by program:JST:MS2.
    document = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc")
    specs = {
        h.findtext("oai:identifier", namespaces=NS): h.xpath("oai:setSpec/text()", namespaces=NS)
        for h in document.iterfind(".//oai:header", NS)
    }
    assert specs == {
        oai_id(moonshot): [f"project:{moonshot.project_id}", "program:JST:MS2"],
        oai_id(amed): [f"project:{amed.project_id}", "program:AMED"],
    }
    listed = oai(client, verb="ListSets")
    names = dict(
        zip(
            listed.xpath("//oai:setSpec/text()", namespaces=NS),
            listed.xpath("//oai:setName/text()", namespaces=NS),
            strict=True,
        )
    )
    assert names["program"] == "Programs"
    assert names["project"] == "Projects"
    assert {"program:JST", "program:JST:MS2", "program:AMED"} <= set(names)


# --- Identifiers, Identify, resumption tokens ---------------------------------------------


def test_identifiers_follow_the_oai_identifier_scheme(client, db):
    record = open_record()
    assert settings.KURA_OAI_REPOSITORY_ID == "kura.localhost"  # KURA_BASE_URL is localhost
    identify = oai(client, verb="Identify").find("oai:Identify", NS)
    assert identify.findtext("oai:adminEmail", namespaces=NS) == "oai@kura.example.org"
    description = identify.find("oai:description/oai_id:oai-identifier", NS)
    assert description.findtext("oai_id:repositoryIdentifier", namespaces=NS) == "kura.localhost"
    assert description.findtext("oai_id:sampleIdentifier", namespaces=NS) == (
        "oai:kura.localhost:record/1"
    )
    document = oai(client, **LIST)
    assert identifiers(document) == [f"oai:kura.localhost:record/{record.pk}"]
    with override_settings(KURA_OAI_REPOSITORY_ID="data.example.ac.jp"):
        document = oai(client, **LIST)
        assert identifiers(document) == [f"oai:data.example.ac.jp:record/{record.pk}"]
        # The identifiers Kura issued before are still understood; the answer gives the new one.
        for legacy in (f"oai:kura:record/{record.pk}", f"oai:kura.localhost:record/{record.pk}"):
            params = {"identifier": legacy, "metadataPrefix": "oai_dc"}
            document = oai(client, verb="GetRecord", **params)
            if legacy.startswith("oai:kura:"):
                assert identifiers(document) == [f"oai:data.example.ac.jp:record/{record.pk}"]
            else:  # another repository's identifier
                assert error_code(document) == "idDoesNotExist"


@override_settings(KURA_OAI_PAGE_SIZE=2)
def test_resumption_tokens_tell_the_list_size_and_cursor(client, db):
    for _ in range(5):
        open_record()
    DmpRecordFactory(metadata_access=MetadataAccess.CLOSED)
    _seen, pages = harvest(client, "ListRecords", "oai_dc")
    tokens = [page.find(".//oai:resumptionToken", NS) for page in pages]
    assert [(t.get("completeListSize"), t.get("cursor")) for t in tokens] == [
        ("5", "0"),
        ("5", "2"),
        ("5", "4"),
    ]
    assert tokens[-1].text is None
    # A list that fits on one page has no token at all.
    with override_settings(KURA_OAI_PAGE_SIZE=10):
        assert token_of(oai(client, **LIST)) is None


# --- An incremental harvest with a real harvester ---------------------------------------------


def _next_second() -> str:
    """A ``from`` after everything so far: the next whole second, once it has come."""
    moment = (timezone.now() + datetime.timedelta(seconds=1)).replace(microsecond=0)
    while timezone.now() < moment:
        time.sleep(0.05)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.django_db(transaction=True)
def test_sickle_incremental_harvests_see_files_and_records_open_and_close(live_server):
    from sickle.oaiexceptions import NoRecordsMatch

    project = ProjectFactory()
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    bystander = open_record(project)
    shared = DataObjectFactory(
        project=project, record=record, tier=Tier.SHARED, original_filename="opened.tif"
    )
    public = DataObjectFactory(
        project=project, record=record, tier=Tier.PUBLIC, original_filename="closed.tif"
    )
    sickle = sickle_for(live_server)

    def harvest_from(since):
        try:
            return list(
                sickle.ListRecords(
                    metadataPrefix="jpcoar_2.0", ignore_deleted=False, **{"from": since}
                )
            )
        except NoRecordsMatch:
            return []

    def files(harvested) -> set[str]:
        return set(
            etree.fromstring(harvested.raw.encode()).xpath(
                "//jpcoar:file/jpcoar:URI/@label", namespaces=NS
            )
        )

    full = {r.header.identifier: r for r in sickle.ListRecords(metadataPrefix="jpcoar_2.0")}
    assert set(full) == {oai_id(record), oai_id(bystander)}
    assert files(full[oai_id(record)]) == {"closed.tif"}

    since = _next_second()
    assert harvest_from(since) == []
    data_object_tier_apply(actor=None, data_object=shared, tier=Tier.PUBLIC, available_date=None)
    [opened] = harvest_from(since)
    assert opened.header.identifier == oai_id(record)
    assert files(opened) == {"opened.tif", "closed.tif"}

    since = _next_second()
    data_object_tier_apply(actor=None, data_object=public, tier=Tier.SHARED, available_date=None)
    [closed] = harvest_from(since)
    assert files(closed) == {"opened.tif"}

    since = _next_second()
    DmpRecord.objects.filter(pk=record.pk).update(metadata_access=MetadataAccess.CLOSED)
    [gone] = harvest_from(since)
    assert gone.header.identifier == oai_id(record)
    assert gone.header.deleted
    assert "opened.tif" not in gone.raw
    headers = list(
        sickle.ListIdentifiers(metadataPrefix="oai_dc", ignore_deleted=False, **{"from": since})
    )
    assert [(h.identifier, h.deleted) for h in headers] == [(oai_id(record), True)]
    assert sickle.GetRecord(identifier=oai_id(record), metadataPrefix="oai_dc").header.deleted
