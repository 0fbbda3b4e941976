"""Published versions and their DOIs (docs/architecture.md, "Published versions and DOIs"),
against a local fake of DataCite's REST API (tests/repository/fake_datacite.py)."""

import base64
import hashlib
import itertools
import re
from urllib.parse import urljoin

import pytest
from datacite import DataCiteRESTClient
from datacite.errors import DataCiteError
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import translation

from accounts.models import Role
from core.audit import AuditAction
from core.vocabularies import MetadataAccess, Tier
from repository.discovery.public.datacite import datacite_xml
from repository.models import AuditEvent, DataObject, DatasetConcept, DatasetVersion, DoiState
from repository.publishing import sync
from repository.tasks import doi_sync_task
from tests.dmp.complete_records import complete_record
from tests.factories import DataObjectFactory, MembershipFactory, ProjectFactory, UserFactory
from tests.repository.fake_datacite import PASSWORD, PREFIX, USERNAME, fake_datacite_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

_grants = itertools.count(4100)


@pytest.fixture(autouse=True)
def doi_calls_in_this_process(monkeypatch):
    """``kura.doi_sync`` runs here when queued (once: the retries are the worker's)."""
    monkeypatch.setattr(doi_sync_task, "delay", lambda record_id: sync.doi_sync(record_id))


@pytest.fixture
def dataset():
    project = ProjectFactory(japan_grant_number=f"JPMJMS{next(_grants)}")
    pm = MembershipFactory(project=project, role=Role.PM).user
    record = complete_record(project, metadata_access=MetadataAccess.OPEN)
    return record, pm


def _file(record, name: str, data: bytes, tier=Tier.PUBLIC) -> DataObject:
    data_object = DataObjectFactory(
        project=record.project,
        record=record,
        original_filename=name,
        size=len(data),
        content_type="text/csv",
        sha256=hashlib.sha256(data).hexdigest(),
        checksum_state=DataObject.ChecksumState.VERIFIED,
        tier=tier,
    )
    default_storage.save(data_object.storage_key, ContentFile(data))
    return data_object


def _publish(client, record, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(reverse("dataset-publish", args=[record.pk]))


def _version_url(record, number: int) -> str:
    return urljoin(settings.KURA_BASE_URL, reverse("dataset-version", args=[record.pk, number]))


def test_publish_new_version_and_withdraw(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    first = _file(record, "counts.csv", b"sample,count\na,1\n")
    client.force_login(pm)

    response = _publish(client, record, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response["Location"] == reverse("dataset-version", args=[record.pk, 1])
    v1 = DatasetVersion.objects.get(record=record, number=1)
    concept = DatasetConcept.objects.get(record=record)
    assert v1.doi == f"{PREFIX}/kura.{record.pk}.v1"
    assert concept.doi == f"{PREFIX}/kura.{record.pk}"
    assert fake_datacite.state(v1.doi) == "findable"
    assert fake_datacite.url_of(v1.doi) == _version_url(record, 1)
    assert fake_datacite.state(concept.doi) == "findable"
    assert fake_datacite.url_of(concept.doi) == _version_url(record, 1)
    assert "IsVersionOf" in fake_datacite.xml_of(v1.doi)
    v1.refresh_from_db()
    assert (v1.doi_state, v1.doi_error) == (DoiState.FINDABLE, "")
    assert [(c[0], c[2]) for c in fake_datacite.calls if c[1] == v1.doi] == [
        ("POST", None),  # the draft
        ("PUT", "publish"),
    ]

    # A file changes: the old bytes are deleted, new ones stored under the same name.
    first.status = DataObject.Status.DELETED
    first.save()
    second = _file(record, "counts.csv", b"sample,count\na,1\nb,2\n")
    response = _publish(client, record, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    v2 = DatasetVersion.objects.get(record=record, number=2)
    assert v2.doi == f"{PREFIX}/kura.{record.pk}.v2"
    assert fake_datacite.state(v2.doi) == "findable"
    assert fake_datacite.url_of(concept.doi) == _version_url(record, 2)
    assert f"{v2.doi}</relatedIdentifier>" in fake_datacite.xml_of(concept.doi)
    assert "IsNewVersionOf" in fake_datacite.xml_of(v2.doi)
    assert fake_datacite.state(v1.doi) == "findable"

    # v1 still lists v1's file and SHA-256; v2 lists its own.
    page = client.get(reverse("dataset-version", args=[record.pk, 1]))
    html = page.content.decode()
    assert page.status_code == 200
    assert first.sha256 in html and second.sha256 not in html
    assert "No longer available" in html
    assert "This is not the latest version" in html
    assert v1.doi in html
    page = client.get(reverse("dataset-version", args=[record.pk, 2]))
    assert second.sha256 in page.content.decode() and first.sha256 not in page.content.decode()
    xml = client.get(reverse("dataset-version-export", args=[record.pk, 1, "datacite-xml"]))
    assert xml.status_code == 200 and v1.doi in xml.content.decode()

    # The landing page lists both versions and names the concept DOI.
    landing = client.get(reverse("dataset-landing", args=[record.pk])).content.decode()
    assert concept.doi in landing
    assert reverse("dataset-version", args=[record.pk, 2]) in landing
    assert reverse("dataset-version", args=[record.pk, 1]) in landing

    # Withdrawal: every DOI registered (not findable), resolving to the tombstone.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("dataset-withdraw", args=[record.pk]), {"reason": "Consent withdrawn."}
        )
    assert response.status_code == 302
    tombstone = urljoin(settings.KURA_BASE_URL, reverse("dataset-landing", args=[record.pk]))
    for doi in (v1.doi, v2.doi, concept.doi):
        assert fake_datacite.state(doi) == "registered"
        assert fake_datacite.url_of(doi) == tombstone
    assert client.get(reverse("dataset-version", args=[record.pk, 1])).status_code == 410
    assert client.get(reverse("dataset-landing", args=[record.pk])).status_code == 410

    actions = list(AuditEvent.objects.filter(record=record).values_list("action", flat=True))
    assert actions.count(AuditAction.VERSION_PUBLISHED) == 2
    assert actions.count(AuditAction.RECORD_WITHDRAWN) == 1
    assert actions.count(AuditAction.DOI_REGISTERED) >= 3
    assert AuditAction.DOI_FAILED not in actions


def test_outage_keeps_the_version_and_retries(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    fake_datacite.fail_next = 1000
    response = _publish(client, record, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    version = DatasetVersion.objects.get(record=record)
    assert version.doi_state == DoiState.PENDING
    assert "503" in version.doi_error or "Unavailable" in version.doi_error
    page = client.get(reverse("dataset-version", args=[record.pk, 1])).content.decode()
    assert "will try again" in page
    assert AuditEvent.objects.filter(record=record, action=AuditAction.DOI_FAILED).exists()
    assert sync.records_waiting() == [record.pk]  # for the hourly requeue
    # The task reports the failure, so Celery tries again.
    with pytest.raises(Exception, match="DOI calls"):
        doi_sync_task.run(record.pk)

    fake_datacite.fail_next = 0
    assert sync.doi_sync(record.pk)
    version.refresh_from_db()
    assert (version.doi_state, version.doi_error) == (DoiState.FINDABLE, "")
    assert fake_datacite.state(version.doi) == "findable"
    assert sync.records_waiting() == []


def test_a_lost_answer_does_not_mint_twice(dataset, fake_datacite, client):
    """A draft made by a call whose answer was lost is found, not made again."""
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    client.post(reverse("dataset-publish", args=[record.pk]))  # on commit never runs here
    version = DatasetVersion.objects.get(record=record)
    provider = sync.doi.provider()
    provider.draft(version.doi, version.metadata)  # the lost call
    assert sync.doi_sync(record.pk)
    assert fake_datacite.state(version.doi) == "findable"


def test_withdrawn_before_findable_registers_the_drafts(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    """DataCite hides only findable DOIs: a draft is registered, at the tombstone."""
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    client.post(reverse("dataset-publish", args=[record.pk]))  # the DOI calls never ran
    version = DatasetVersion.objects.get(record=record)
    sync.doi.provider().draft(version.doi, version.metadata)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dataset-withdraw", args=[record.pk]), {"reason": "x"})
    assert response.status_code == 302
    concept = DatasetConcept.objects.get(record=record)
    tombstone = urljoin(settings.KURA_BASE_URL, reverse("dataset-landing", args=[record.pk]))
    for doi in (version.doi, concept.doi):
        assert fake_datacite.state(doi) == "registered"
        assert fake_datacite.url_of(doi) == tombstone
    assert ("PUT", version.doi, "register") in fake_datacite.calls
    assert not any(call[1] == version.doi and call[2] == "publish" for call in fake_datacite.calls)


def test_without_doi_credentials_versions_are_local(
    client, dataset, django_capture_on_commit_callbacks
):
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    assert _publish(client, record, django_capture_on_commit_callbacks).status_code == 302
    version = DatasetVersion.objects.get(record=record)
    assert (version.doi, version.doi_state) == ("", DoiState.LOCAL)
    page = client.get(reverse("dataset-version", args=[record.pk, 1])).content.decode()
    assert "this repository registers no DOIs" in page
    # Cited by its own URL, never by the DOI the DMP declares for the record.
    assert reverse("dataset-version", args=[record.pk, 1]) in page
    assert record.repo_url_doi_link not in page
    assert sync.doi_sync(record.pk)


def test_version_exports_every_format(client, dataset, django_capture_on_commit_callbacks):
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    _publish(client, record, django_capture_on_commit_callbacks)
    from repository.discovery.public import exports

    for key, entry in exports.REGISTRY.items():
        response = client.get(reverse("dataset-version-export", args=[record.pk, 1, key]))
        offered = entry.web and not entry.needs_doi  # a local identifier is not a DOI
        assert response.status_code == (200 if offered else 404), key
        if entry.streamed:
            b"".join(response.streaming_content)
    missing = client.get(reverse("dataset-version-export", args=[record.pk, 1, "nope"]))
    assert missing.status_code == 404
    assert client.get(reverse("dataset-version", args=[record.pk, 9])).status_code == 404
    huge = f"/datasets/{record.pk}/versions/{10**30}/"
    assert client.get(huge).status_code == 404
    assert client.get(f"/datasets/{10**30}/versions/1/").status_code == 404


def test_who_may_publish_and_what(client, dataset, django_capture_on_commit_callbacks):
    record, pm = dataset
    researcher = MembershipFactory(project=record.project, role=Role.RESEARCHER).user
    url = reverse("dataset-publish", args=[record.pk])

    assert client.post(url).status_code == 302  # to sign in
    assert not DatasetVersion.objects.exists()
    client.force_login(UserFactory())
    assert client.post(url).status_code == 403
    client.force_login(researcher)
    assert client.post(url).status_code == 403
    assert client.get(url).status_code == 405

    client.force_login(pm)
    shared = _file(record, "shared.csv", b"a,1\n", tier=Tier.SHARED)
    response = client.post(url)
    assert response.status_code == 400
    assert "a curator must approve" in response.content.decode()
    shared.tier = Tier.PUBLIC
    shared.save()
    assert _publish(client, record, django_capture_on_commit_callbacks).status_code == 302
    response = client.post(url)
    assert response.status_code == 400
    assert "Nothing has changed since version 1" in response.content.decode()
    record.title_en = "Dataset 1, corrected"
    record.save()
    assert _publish(client, record, django_capture_on_commit_callbacks).status_code == 302
    assert DatasetVersion.objects.filter(record=record).count() == 2
    v1 = DatasetVersion.objects.get(record=record, number=1)
    assert (
        "corrected"
        not in client.get(reverse("dataset-version", args=[record.pk, 1])).content.decode()
    )
    assert v1.metadata["titles"][1]["title"] == "Dataset 1"

    withdraw = reverse("dataset-withdraw", args=[record.pk])
    assert client.post(withdraw, {"reason": " "}).status_code == 400
    client.force_login(researcher)
    assert client.post(withdraw, {"reason": "x"}).status_code == 403
    missing = reverse("dataset-publish", args=[999999])
    assert client.post(missing).status_code == 404


def test_closed_metadata_is_not_published(client, dataset):
    record, pm = dataset
    record.metadata_access = MetadataAccess.CLOSED
    record.save()
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    response = client.post(reverse("dataset-publish", args=[record.pk]))
    assert response.status_code == 400
    assert "metadata is open" in response.content.decode()


def test_fake_datacite_is_strict(fake_datacite, dataset):
    """The fake refuses what DataCite refuses, so the tests above mean something."""
    client = DataCiteRESTClient(USERNAME, PASSWORD, PREFIX, url=fake_datacite.url, timeout=5)
    record, _pm = dataset
    from repository.discovery.public.datacite import datacite_json
    from repository.publishing.facts import snapshot_of, version_facts

    facts = version_facts(snapshot_of(record), [], doi="", url="https://x.test/", public_ids={})
    doi = f"{PREFIX}/test.1"
    good = base64.b64encode(datacite_xml({**datacite_json(facts), "doi": doi}).encode()).decode()
    wrong_id = base64.b64encode(
        datacite_xml({**datacite_json(facts), "doi": f"{PREFIX}/other"}).encode()
    ).decode()
    invalid = base64.b64encode(
        datacite_xml({**datacite_json(facts), "doi": doi})
        .replace("<publisher", "<publisherX")
        .replace("</publisher>", "</publisherX>")
        .encode()
    ).decode()
    for xml in (wrong_id, invalid, "not base64!"):
        with pytest.raises(DataCiteError):
            client.draft_doi({"xml": xml}, doi)
    with pytest.raises(DataCiteError):  # JSON metadata: Kura sends XML
        client.draft_doi({"titles": [{"title": "x"}]}, doi)
    with pytest.raises(DataCiteError):
        client.post_doi({"attributes": {"doi": "10.1111/foreign", "xml": good}})
    client.draft_doi({"xml": good}, doi)
    with pytest.raises(DataCiteError):  # taken
        client.draft_doi({"xml": good}, doi)
    with pytest.raises(DataCiteError):  # a draft is not hidden
        client.hide_doi(doi)
    with pytest.raises(DataCiteError):  # publish needs a URL
        client.show_doi(doi)
    client.update_doi(doi, {"xml": good, "event": "publish"}, url="https://x.test/v1")
    assert fake_datacite.state(doi) == "findable"
    with pytest.raises(DataCiteError):  # findable is not deleted
        client.delete_doi(doi)
    client.hide_doi(doi)
    assert fake_datacite.state(doi) == "registered"
    bad = DataCiteRESTClient(USERNAME, "wrong", PREFIX, url=fake_datacite.url, timeout=5)
    with pytest.raises(DataCiteError):
        bad.get_metadata(doi)


def test_version_ro_crate_and_croissant_validate(
    client, dataset, django_capture_on_commit_callbacks
):
    import json

    from tests.repository.test_crates import assert_valid_croissant, assert_valid_ro_crate

    record, pm = dataset
    counts = _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    _publish(client, record, django_capture_on_commit_callbacks)
    client.logout()
    # The version's page as requested; its files' download URLs as frozen, on the base URL.
    url = "http://testserver" + reverse("dataset-version", args=[record.pk, 1])
    download = urljoin(settings.KURA_BASE_URL, reverse("object-download", args=[counts.pk]))

    def export(key):
        response = client.get(reverse("dataset-version-export", args=[record.pk, 1, key]))
        assert response.status_code == 200
        return json.loads(response.content)

    crate = export("ro-crate")
    assert_valid_ro_crate(crate)
    graph = {entity["@id"]: entity for entity in crate["@graph"]}
    assert graph["./"]["url"] == url and graph["./"]["identifier"] == url
    assert graph[download]["sha256"] == counts.sha256
    ml = export("croissant")
    assert_valid_croissant(ml)
    assert ml["citeAs"] == url
    assert [f["contentUrl"] for f in ml["distribution"]] == [download]


def test_a_withdrawal_whose_sync_was_lost_is_requeued(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    """The DOIs of a withdrawn dataset stay findable until hidden: if the sync queued by
    the withdrawal is lost, the hourly requeue still finds the record."""
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    _publish(client, record, django_capture_on_commit_callbacks)
    version = DatasetVersion.objects.get(record=record)
    assert version.doi_state == DoiState.FINDABLE and sync.records_waiting() == []

    client.post(reverse("dataset-withdraw", args=[record.pk]), {"reason": "x"})  # no on-commit
    assert sync.records_waiting() == [record.pk]
    assert sync.doi_sync(record.pk)
    assert fake_datacite.state(version.doi) == "registered"
    assert sync.records_waiting() == []


def test_the_same_doi_failure_again_saves_only_the_time_of_the_call(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    _file(record, "counts.csv", b"a,1\n")
    client.force_login(pm)
    fake_datacite.fail_next = 1000
    _publish(client, record, django_capture_on_commit_callbacks)
    version = DatasetVersion.objects.get(record=record)
    first_error, first_call = version.doi_error, version.doi_attempted_at
    assert first_error

    sync.doi_sync(record.pk)
    version.refresh_from_db()
    assert version.doi_error == first_error and version.doi_attempted_at > first_call


def _cited(html: str, key: str) -> str:
    """The text a copy button on the page copies."""
    import html as html_module
    import re

    match = re.search(rf'id="cite-{key}-text"[^>]*>(.*?)</(?:p|pre)>', html, re.S)
    assert match, key
    assert f'data-copy-target="cite-{key}-text"' in html  # its copy button
    return html_module.unescape(match.group(1))


def test_the_landing_page_cites_the_latest_version_once_there_is_one(
    client, dataset, django_capture_on_commit_callbacks
):
    record, pm = dataset
    _file(record, "counts.csv", b"sample,count\na,1\n")
    before = client.get(reverse("dataset-landing", args=[record.pk])).content.decode()
    assert "[Data set]" in _cited(before, "text")
    assert "(Version" not in _cited(before, "text")
    assert _cited(before, "bibtex").startswith("@misc{")
    assert _cited(before, "ris").startswith("TY  - DATA")

    client.force_login(pm)
    _publish(client, record, django_capture_on_commit_callbacks)
    _file(record, "more.csv", b"sample,count\nb,2\n")  # something new for version 2
    _publish(client, record, django_capture_on_commit_callbacks)
    client.logout()
    after = client.get(reverse("dataset-landing", args=[record.pk])).content.decode()

    latest = DatasetVersion.objects.get(record=record, number=2)
    version_page = client.get(reverse("dataset-version", args=[record.pk, 2])).content.decode()
    cited = _cited(after, "version-text")
    assert "(Version 2) [Data set]" in cited
    # The same words as the version's own page gives, ending with what identifies version 2.
    assert cited == _cited(version_page, "text")
    assert latest.doi_state != DoiState.FINDABLE  # no DataCite here: its page identifies it
    assert cited.endswith(reverse("dataset-version", args=[record.pk, 2]))
    assert _cited(after, "version-bibtex") == _cited(version_page, "bibtex")
    assert 'id="cite-all-versions"' in after


def test_publishing_and_its_doi_read_in_the_trail_with_names_not_codes(
    client, dataset, fake_datacite, django_capture_on_commit_callbacks
):
    record, pm = dataset
    _file(record, "counts.csv", b"sample,count\na,1\n")
    client.force_login(pm)
    _publish(client, record, django_capture_on_commit_callbacks)
    version = DatasetVersion.objects.get(record=record, number=1)
    trail = f"/projects/{record.project_id}/audit/"

    def cells(language: str) -> dict[str, list[str]]:
        """Each event's after cell, by action, on the trail read in ``language``."""
        html = client.get(trail, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        rows = re.findall(r'<tr class="audit-(\w+)">(.*?)</tr>', html, re.S)
        return {
            action: re.search(r'<td class="audit-after">(.*?)</td>', row, re.S).group(1)
            for action, row in rows
        }

    english = cells("en")
    japanese = cells("ja")

    assert english[AuditAction.VERSION_PUBLISHED] == (
        f"DOI: {version.doi}<br>Version: 1<br>Files: 1"
    )
    assert english[AuditAction.DOI_REGISTERED].startswith("DOI: ")
    assert "DOI state: findable<br>" in english[AuditAction.DOI_REGISTERED]  # its label
    for action in (AuditAction.VERSION_PUBLISHED, AuditAction.DOI_REGISTERED):
        for code in ("version:", "files:", "doi_state", "findable", "url:", "DOI state"):
            assert code not in japanese[action], (action, code)
    with translation.override("ja"):
        findable = str(DoiState.FINDABLE.label)
    assert findable in japanese[AuditAction.DOI_REGISTERED]
