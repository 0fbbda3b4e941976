"""What harvesters, citation managers and Signposting clients read of a published record
(docs/architecture.md, "Published versions and DOIs" and "Exports"): the live record's
exports name its versions and its concept DOI, ``cite-as`` is the concept DOI (a version's
own DOI on its page), publication and DOI registration move the OAI-PMH datestamp, and a
published record's metadata cannot be closed under its DOIs. Against the local fake of
DataCite's REST API (tests/repository/fake_datacite.py)."""

import json

import pytest
from django.urls import reverse
from lxml import etree
from rest_framework.test import APIClient

from accounts.models import Role
from core.audit import AuditAction
from core.vocabularies import MetadataAccess
from dmp.models import DmpRecord
from repository.discovery.public import exports
from repository.models import AuditEvent, DatasetConcept, DatasetVersion, DoiState
from repository.publishing import sync
from repository.publishing.versions import dataset_version_publish
from repository.tasks import doi_sync_task
from tests.dmp.complete_records import complete_record
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.repository.datacite_xsd import assert_valid_datacite_xml
from tests.repository.fake_datacite import PREFIX, fake_datacite_fixture  # noqa: F401
from tests.repository.test_audit_trail_events import record_form_data
from tests.repository.test_oai import NS, _next_second, oai, oai_id, sickle_for
from tests.repository.test_versions import _file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def doi_calls_in_this_process(monkeypatch):
    """``kura.doi_sync`` runs here when queued (once: the retries are the worker's)."""
    monkeypatch.setattr(doi_sync_task, "delay", lambda record_id: sync.doi_sync(record_id))


@pytest.fixture(autouse=True)
def admin_email(settings):
    settings.KURA_OAI_ADMIN_EMAIL = "oai@kura.example.org"


@pytest.fixture
def dataset():
    """An open record with one public file, and its PM; the record declares no DOI of its
    own, so whatever DOI its exports carry is Kura's."""
    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = complete_record(project, metadata_access=MetadataAccess.OPEN, repo_url_doi_link="")
    _file(record, "counts.csv", b"sample,count\na,1\n")
    return record, pm


def _publish(record, pm, django_capture_on_commit_callbacks) -> DatasetVersion:
    with django_capture_on_commit_callbacks(execute=True):
        return dataset_version_publish(actor=pm, record_id=record.pk)


def _publish_twice(record, pm, capture) -> tuple[DatasetVersion, DatasetVersion, DatasetConcept]:
    v1 = _publish(record, pm, capture)
    DmpRecord.objects.filter(pk=record.pk).update(title_en="Dataset 1, corrected")
    v2 = _publish(record, pm, capture)
    return v1, v2, DatasetConcept.objects.get(record=record)


def _get(client, name, *args):
    response = client.get(reverse(name, args=args))
    assert response.status_code == 200, response.content[:500]
    return response


def _cite_as(link_header: str) -> list[str]:
    """The targets of the ``cite-as`` links of a ``Link`` header."""
    return [
        part.split(">", 1)[0].strip().lstrip("<")
        for part in link_header.split(", <")
        if 'rel="cite-as"' in part
    ]


# --- 1. The live record's exports name its versions --------------------------------------


def test_live_exports_name_every_version_and_the_concept_doi(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    v1, v2, concept = _publish_twice(record, pm, django_capture_on_commit_callbacks)
    assert {v1.doi_state, v2.doi_state} == {DoiState.PENDING}  # as created; synced since
    assert fake_datacite.state(concept.doi) == "findable"

    # DataCite JSON and XML: the concept DOI is the identifier, as the versions' own
    # metadata says (IsVersionOf the concept); HasVersion each version's DOI.
    data = json.loads(_get(client, "dataset-export", record.pk, "datacite-json").content)
    assert data["doi"] == concept.doi
    assert data["relatedIdentifiers"] == [
        {"relatedIdentifier": v.doi, "relatedIdentifierType": "DOI", "relationType": "HasVersion"}
        for v in (v1, v2)
    ]
    xml = _get(client, "dataset-export", record.pk, "datacite-xml").content
    assert_valid_datacite_xml(xml)
    document = etree.fromstring(xml)
    kernel = {"d": document.nsmap[None]}
    assert document.findtext("d:identifier", namespaces=kernel) == concept.doi
    related = document.findall("d:relatedIdentifiers/d:relatedIdentifier", namespaces=kernel)
    assert [(r.text, r.get("relationType"), r.get("relatedIdentifierType")) for r in related] == [
        (v1.doi, "HasVersion", "DOI"),
        (v2.doi, "HasVersion", "DOI"),
    ]
    # The concept DOI's own metadata at DataCite names the same versions.
    assert f"{v1.doi}</relatedIdentifier>" in fake_datacite.xml_of(concept.doi)
    for version in (v1, v2):
        assert f"{concept.doi}</relatedIdentifier>" in fake_datacite.xml_of(version.doi)

    # JPCOAR 2.0, as exported and as harvested.
    for document in (
        etree.fromstring(_get(client, "dataset-export", record.pk, "jpcoar").content),
        oai(client, verb="GetRecord", identifier=oai_id(record), metadataPrefix="jpcoar_2.0"),
    ):
        relations = document.xpath(
            "//jpcoar:relation[@relationType='hasVersion']/jpcoar:relatedIdentifier",
            namespaces=NS,
        )
        assert [(r.text, r.get("identifierType")) for r in relations] == [
            (v1.doi, "DOI"),
            (v2.doi, "DOI"),
        ]
        assert document.xpath("//jpcoar:identifier[@identifierType='DOI']/text()", namespaces=NS)[
            0
        ] == (concept.doi)

    # Dublin Core (validated against oai_dc.xsd by ``oai``).
    document = oai(client, verb="GetRecord", identifier=oai_id(record), metadataPrefix="oai_dc")
    relations = document.xpath("//oai_dc:dc/dc:relation/text()", namespaces=NS)
    assert relations == [f"https://doi.org/{v1.doi}", f"https://doi.org/{v2.doi}"]

    # schema.org: each version a workExample with its number; a version page says its own.
    jsonld = json.loads(_get(client, "dataset-export", record.pk, "jsonld").content)
    assert jsonld["workExample"] == [
        {
            "@type": "CreativeWork",
            "@id": f"https://doi.org/{v.doi}",
            "url": f"http://testserver/datasets/{record.pk}/versions/{v.number}/",
            "version": str(v.number),
        }
        for v in (v1, v2)
    ]
    assert "version" not in jsonld
    version_ld = json.loads(_get(client, "dataset-version-export", record.pk, 1, "jsonld").content)
    assert version_ld["version"] == "1"
    assert "workExample" not in version_ld
    assert version_ld["exampleOfWork"] == {"@id": f"https://doi.org/{concept.doi}"}


def test_a_versions_exports_say_what_its_doi_says(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    """A version's page exports relate it to the dataset and its predecessor as the DOI's
    metadata at DataCite does; the concept DOI carries no version number of its own."""
    record, pm = dataset
    v1, v2, concept = _publish_twice(record, pm, django_capture_on_commit_callbacks)
    data = json.loads(_get(client, "dataset-version-export", record.pk, 2, "datacite-json").content)
    assert (data["doi"], data["version"]) == (v2.doi, "2")
    assert data["relatedIdentifiers"] == [
        {
            "relatedIdentifier": concept.doi,
            "relatedIdentifierType": "DOI",
            "relationType": "IsVersionOf",
        },
        {
            "relatedIdentifier": v1.doi,
            "relatedIdentifierType": "DOI",
            "relationType": "IsNewVersionOf",
        },
    ]
    registered = etree.fromstring(fake_datacite.xml_of(v2.doi).encode())
    kernel = {"d": registered.nsmap[None]}
    at_datacite = [
        (r.text, r.get("relationType"))
        for r in registered.findall("d:relatedIdentifiers/d:relatedIdentifier", kernel)
    ]
    assert at_datacite == [(concept.doi, "IsVersionOf"), (v1.doi, "IsNewVersionOf")]
    assert registered.findtext("d:version", namespaces=kernel) == "2"
    concept_xml = etree.fromstring(fake_datacite.xml_of(concept.doi).encode())
    assert concept_xml.find("d:version", kernel) is None
    xml = _get(client, "dataset-version-export", record.pk, 1, "datacite-xml").content
    assert_valid_datacite_xml(xml)
    first = json.loads(
        _get(client, "dataset-version-export", record.pk, 1, "datacite-json").content
    )
    assert [r["relationType"] for r in first["relatedIdentifiers"]] == ["IsVersionOf"]
    document = etree.fromstring(
        _get(client, "dataset-version-export", record.pk, 2, "jpcoar").content
    )
    relations = document.xpath(
        "//jpcoar:relation[@relationType='isVersionOf']/jpcoar:relatedIdentifier", namespaces=NS
    )
    assert [(r.text, r.get("identifierType")) for r in relations] == [(concept.doi, "DOI")]


def test_a_doi_not_yet_findable_is_named_by_the_version_page(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    """A DOI waiting for DataCite does not resolve yet: the live exports name the version's
    page until it is findable, and DataCite's formats wait for the concept DOI."""
    record, pm = dataset
    fake_datacite.fail_next = 1000
    version = _publish(record, pm, django_capture_on_commit_callbacks)
    version.refresh_from_db()
    assert version.doi_state == DoiState.PENDING
    page = f"http://testserver/datasets/{record.pk}/versions/1/"
    document = etree.fromstring(_get(client, "dataset-export", record.pk, "jpcoar").content)
    relations = document.xpath(
        "//jpcoar:relation[@relationType='hasVersion']/jpcoar:relatedIdentifier", namespaces=NS
    )
    assert [(r.text, r.get("identifierType")) for r in relations] == [(page, "URI")]
    response = client.get(reverse("dataset-export", args=[record.pk, "datacite-xml"]))
    assert response.status_code == 404  # no DOI of its own yet
    assert _cite_as(_get(client, "dataset-landing", record.pk)["Link"]) == [
        f"http://testserver/datasets/{record.pk}/"
    ]

    fake_datacite.fail_next = 0
    assert sync.doi_sync(record.pk)
    document = etree.fromstring(_get(client, "dataset-export", record.pk, "jpcoar").content)
    relations = document.xpath(
        "//jpcoar:relation[@relationType='hasVersion']/jpcoar:relatedIdentifier", namespaces=NS
    )
    assert [(r.text, r.get("identifierType")) for r in relations] == [(version.doi, "DOI")]
    assert_valid_datacite_xml(_get(client, "dataset-export", record.pk, "datacite-xml").content)


def test_without_doi_credentials_the_exports_name_the_version_pages(
    client, dataset, django_capture_on_commit_callbacks
):
    record, pm = dataset
    _publish(record, pm, django_capture_on_commit_callbacks)
    page = f"http://testserver/datasets/{record.pk}/versions/1/"
    document = oai(client, verb="GetRecord", identifier=oai_id(record), metadataPrefix="oai_dc")
    assert document.xpath("//dc:relation/text()", namespaces=NS) == [page]
    jsonld = json.loads(_get(client, "dataset-export", record.pk, "jsonld").content)
    assert [w["@id"] for w in jsonld["workExample"]] == [page]
    # The version is a version of the live record's page, the only identifier there is.
    version_ld = json.loads(_get(client, "dataset-version-export", record.pk, 1, "jsonld").content)
    assert version_ld["exampleOfWork"] == {"@id": f"http://testserver/datasets/{record.pk}/"}
    # No DOI at all: DataCite's formats stay unoffered (the kernel needs an identifier).
    response = client.get(reverse("dataset-export", args=[record.pk, "datacite-json"]))
    assert response.status_code == 404
    landing = _get(client, "dataset-landing", record.pk)["Link"]
    assert exports.REGISTRY["datacite-json"].media_type not in landing
    # A DOI the record declares itself is still its DOI; the versions go by their pages.
    DmpRecord.objects.filter(pk=record.pk).update(repo_url_doi_link="https://doi.org/10.1234/x")
    xml = _get(client, "dataset-export", record.pk, "datacite-xml").content
    assert_valid_datacite_xml(xml)
    document = etree.fromstring(xml)
    kernel = {"d": document.nsmap[None]}
    assert document.findtext("d:identifier", namespaces=kernel) == "10.1234/x"
    [related] = document.findall("d:relatedIdentifiers/d:relatedIdentifier", namespaces=kernel)
    assert (related.text, related.get("relatedIdentifierType")) == (page, "URL")


# --- The OAI-PMH datestamp follows publication and DOI registration ----------------------


def _changed_since(client, since: str) -> list[str]:
    document = oai(client, verb="ListIdentifiers", metadataPrefix="oai_dc", **{"from": since})
    return document.xpath("//oai:header/oai:identifier/text()", namespaces=NS)


def test_publication_and_registration_move_the_datestamp(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    DmpRecord.objects.filter(pk=record.pk).update(title_en="Stamped")  # an item already
    since = _next_second()
    assert _changed_since(client, since) == []
    fake_datacite.fail_next = 1000  # published, its DOIs waiting
    _publish(record, pm, django_capture_on_commit_callbacks)
    assert _changed_since(client, since) == [oai_id(record)]

    since = _next_second()
    assert _changed_since(client, since) == []
    assert not sync.doi_sync(record.pk)  # the same failure again: nothing a format shows
    assert _changed_since(client, since) == []
    fake_datacite.fail_next = 0
    assert sync.doi_sync(record.pk)  # findable now: the exports name the DOIs
    assert _changed_since(client, since) == [oai_id(record)]

    since = _next_second()
    assert sync.doi_sync(record.pk)  # nothing left to do
    assert _changed_since(client, since) == []


@pytest.mark.django_db(transaction=True)
def test_sickle_incremental_harvest_sees_a_publication(live_server, fake_datacite, settings):
    settings.KURA_OAI_ADMIN_EMAIL = "oai@kura.example.org"
    from sickle.oaiexceptions import NoRecordsMatch

    project = ProjectFactory()
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = complete_record(project, metadata_access=MetadataAccess.OPEN, repo_url_doi_link="")
    _file(record, "counts.csv", b"a,1\n")
    sickle = sickle_for(live_server)

    def harvest_from(since):
        try:
            return list(sickle.ListRecords(metadataPrefix="jpcoar_2.0", **{"from": since}))
        except NoRecordsMatch:
            return []

    [before] = list(sickle.ListRecords(metadataPrefix="jpcoar_2.0"))
    assert "hasVersion" not in before.raw
    since = _next_second()
    assert harvest_from(since) == []
    version = dataset_version_publish(actor=pm, record_id=record.pk)  # DOI calls on commit
    concept = DatasetConcept.objects.get(record=record)
    assert fake_datacite.state(version.doi) == "findable"
    [after] = harvest_from(since)
    assert after.header.identifier == oai_id(record)
    document = etree.fromstring(after.raw.encode())
    relations = document.xpath(
        "//jpcoar:relation[@relationType='hasVersion']/jpcoar:relatedIdentifier/text()",
        namespaces=NS,
    )
    assert relations == [version.doi]
    assert concept.doi in document.xpath("//jpcoar:identifier/text()", namespaces=NS)


# --- 2. cite-as -------------------------------------------------------------------------


def test_cite_as_is_the_concept_doi_and_a_versions_own(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    v1, v2, concept = _publish_twice(record, pm, django_capture_on_commit_callbacks)
    concept_url = f"https://doi.org/{concept.doi}"

    landing = _get(client, "dataset-landing", record.pk)
    assert _cite_as(landing["Link"]) == [concept_url]
    assert f'<link rel="cite-as" href="{concept_url}">' in landing.content.decode()
    text = _get(client, "dataset-linkset", record.pk).content.decode()
    landing_url = f"http://testserver/datasets/{record.pk}/"
    assert f'<{concept_url}>; rel="cite-as"; anchor="{landing_url}"' in text
    linkset = json.loads(_get(client, "dataset-linkset-json", record.pk).content)["linkset"]
    [context] = [c for c in linkset if c["anchor"] == landing_url]
    assert context["cite-as"] == [{"href": concept_url}]
    for key in ("jsonld", "datacite-xml", "jpcoar"):
        assert _cite_as(_get(client, "dataset-export", record.pk, key)["Link"]) == [concept_url]

    for version in (v1, v2):
        own = f"https://doi.org/{version.doi}"
        page = _get(client, "dataset-version", record.pk, version.number)
        assert _cite_as(page["Link"]) == [own]
        assert f'<link rel="cite-as" href="{own}">' in page.content.decode()
        export = _get(client, "dataset-version-export", record.pk, version.number, "jsonld")
        assert _cite_as(export["Link"]) == [own]


def test_with_local_identifiers_cite_as_stays_the_page(
    client, dataset, django_capture_on_commit_callbacks
):
    """A local identifier resolves nowhere else: cite the landing page (the version's page)."""
    record, pm = dataset
    _publish(record, pm, django_capture_on_commit_callbacks)
    landing_url = f"http://testserver/datasets/{record.pk}/"
    assert _cite_as(_get(client, "dataset-landing", record.pk)["Link"]) == [landing_url]
    linkset = json.loads(_get(client, "dataset-linkset-json", record.pk).content)["linkset"]
    assert linkset[0]["cite-as"] == [{"href": landing_url}]
    assert _cite_as(_get(client, "dataset-export", record.pk, "jsonld")["Link"]) == [landing_url]
    version_url = f"{landing_url}versions/1/"
    assert _cite_as(_get(client, "dataset-version", record.pk, 1)["Link"]) == [version_url]


# --- 3. A published record's metadata stays open ------------------------------------------


@pytest.mark.parametrize("closed_to", [MetadataAccess.RESTRICTED, MetadataAccess.CLOSED])
def test_closing_a_published_records_metadata_is_refused_on_the_page(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks, closed_to
):
    record, pm = dataset
    version = _publish(record, pm, django_capture_on_commit_callbacks)
    concept = DatasetConcept.objects.get(record=record)
    record = DmpRecord.objects.get(pk=record.pk)
    stamp = record.harvest_changed_at
    client.force_login(pm)
    url = reverse("dmp-record-edit", args=[record.project_id, record.pk])

    response = client.post(url, record_form_data(record, metadata_access=closed_to))

    assert response.status_code == 200  # the form again, with the reason
    assert "withdraw the dataset" in response.content.decode()
    after = DmpRecord.objects.get(pk=record.pk)
    assert (after.metadata_access, after.harvest_changed_at) == (MetadataAccess.OPEN, stamp)
    assert not AuditEvent.objects.filter(record=record, action=AuditAction.RECORD_EDITED)
    for doi in (version.doi, concept.doi):
        assert fake_datacite.state(doi) == "findable"
    assert client.get(reverse("dataset-landing", args=[record.pk])).status_code == 200
    # Any other edit still goes through.
    response = client.post(url, record_form_data(record, title_en="Dataset 1, renamed"))
    assert response.status_code == 302
    assert DmpRecord.objects.get(pk=record.pk).title_en == "Dataset 1, renamed"


def test_closing_a_published_records_metadata_is_refused_by_the_api(
    dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    version = _publish(record, pm, django_capture_on_commit_callbacks)
    api = APIClient()
    api.force_authenticate(pm)
    response = api.patch(
        f"/api/v1/records/{record.pk}/", {"metadata_access": "closed"}, format="json"
    )
    assert response.status_code == 400
    assert "metadata_access" in json.dumps(response.json())
    assert DmpRecord.objects.get(pk=record.pk).metadata_access == MetadataAccess.OPEN
    assert fake_datacite.state(version.doi) == "findable"


def test_a_withdrawn_record_keeps_its_tombstone_reachable(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    """Withdrawal is how a published record is taken down: its DOIs resolve to the
    tombstone, which closing the metadata afterwards would turn into a 404."""
    record, pm = dataset
    version = _publish(record, pm, django_capture_on_commit_callbacks)
    client.force_login(pm)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dataset-withdraw", args=[record.pk]), {"reason": "x"})
    assert response.status_code == 302
    assert fake_datacite.state(version.doi) == "registered"
    record = DmpRecord.objects.get(pk=record.pk)
    url = reverse("dmp-record-edit", args=[record.project_id, record.pk])
    response = client.post(url, record_form_data(record, metadata_access="closed"))
    assert "withdraw the dataset" in response.content.decode()
    client.logout()
    assert client.get(reverse("dataset-landing", args=[record.pk])).status_code == 410


def test_the_admin_asks_the_same_check(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    version = _publish(record, pm, django_capture_on_commit_callbacks)
    record = DmpRecord.objects.get(pk=record.pk)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:dmp_dmprecord_change", args=[record.pk])
    fields = (
        "project",
        "data_number",
        "title_ja",
        "title_en",
        "description_ja",
        "description_en",
        "access_rights",
        "metadata_access",
    )
    data = {name: getattr(record, name if name != "project" else "project_id") for name in fields}

    response = client.post(url, data | {"metadata_access": "closed"})

    assert response.status_code == 200
    assert "withdraw the dataset" in response.content.decode()
    assert DmpRecord.objects.get(pk=record.pk).metadata_access == MetadataAccess.OPEN
    assert fake_datacite.state(version.doi) == "findable"
    response = client.post(url, data | {"title_en": "Dataset 1, renamed"})
    assert response.status_code == 302
    assert DmpRecord.objects.get(pk=record.pk).title_en == "Dataset 1, renamed"


def test_an_unpublished_records_metadata_may_still_be_closed(client, dataset):
    record, pm = dataset
    client.force_login(pm)
    url = reverse("dmp-record-edit", args=[record.project_id, record.pk])
    response = client.post(url, record_form_data(record, metadata_access="closed"))
    assert response.status_code == 302
    assert DmpRecord.objects.get(pk=record.pk).metadata_access == MetadataAccess.CLOSED
