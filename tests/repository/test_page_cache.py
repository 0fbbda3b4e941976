"""The public page cache: anonymous visitors without a session get landing and search pages
from the shared cache (Redis), and every write to what those pages show makes the cached
copy unreachable at once — never a stale file list, never a page meant for someone else."""

import datetime

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from core import generations
from core.vocabularies import MetadataAccess, Tier
from dmp.models import DmpRecord, RecordCreator
from repository.models import AuditEvent, DataObject
from repository.services import audit_event_record
from tests.factories import MembershipFactory
from tests.repository.test_public import _download_url, _landing, _object, _open_record
from tests.repository.upload_client import UploadClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def page_cache(settings):
    settings.KURA_PAGE_CACHE_SECONDS = 300


@pytest.fixture
def dataset():
    record = _open_record(title_en="Cached liver images", keywords_en="liver, cachetest")
    public = _object(record, "liver-cached.tif", tier=Tier.PUBLIC)
    return record, public


def _search(client, q="cachetest"):
    return client.get(reverse("dataset-list"), {"q": q})


def _served_from_cache(client, django_assert_num_queries, get) -> str:
    """Fetch twice; the second answer must come without a database query."""
    first = get(client)
    assert first.status_code in (200, 410)
    with django_assert_num_queries(0):
        second = get(client)
    assert second.status_code == first.status_code
    assert second.content == first.content
    return second.content.decode()


def test_landing_and_search_are_served_from_the_cache(client, dataset, django_assert_num_queries):
    record, public = dataset
    html = _served_from_cache(client, django_assert_num_queries, lambda c: _landing(c, record))
    assert public.original_filename in html
    second = _landing(client, record)
    assert _download_url(public) in second["Link"]  # the headers come back too
    assert second["Content-Type"].startswith("text/html")
    html = _served_from_cache(client, django_assert_num_queries, _search)
    assert record.title_en in html


def test_public_pages_set_no_cookie(client, dataset):
    record, _ = dataset
    for response in (_landing(client, record), _search(client)):
        assert not response.cookies  # no CSRF token, no session: the page is the same for all


def test_the_language_switcher_works_without_a_token(dataset):
    record, _ = dataset
    client = Client(enforce_csrf_checks=True)
    landing = reverse("dataset-landing", args=[record.pk])
    assert '<html lang="en"' in _landing(client, record).content.decode()
    response = client.post(reverse("set_language"), {"language": "ja", "next": landing})
    assert response.status_code == 302
    assert '<html lang="ja"' in client.get(landing).content.decode()


@pytest.mark.parametrize(
    "hide",
    [
        pytest.param(lambda obj: setattr(obj, "tier", Tier.NON_SHARED) or obj.save(), id="save"),
        pytest.param(
            lambda obj: DataObject.objects.filter(pk=obj.pk).update(tier=Tier.NON_SHARED),
            id="queryset-update",
        ),
        pytest.param(
            lambda obj: DataObject.objects.filter(pk=obj.pk).update(
                quarantined_at=timezone.now(), quarantine_reason="fixity"
            ),
            id="quarantine",
        ),
        pytest.param(
            lambda obj: DataObject.objects.bulk_update(
                [DataObject(pk=obj.pk, tier=Tier.SHARED)], ["tier"]
            ),
            id="bulk-update",
        ),
        pytest.param(lambda obj: obj.delete(), id="delete"),
    ],
)
def test_a_file_made_non_public_leaves_the_cached_page_at_once(client, dataset, hide):
    record, public = dataset
    name, url = public.original_filename, _download_url(public)
    assert url in _landing(client, record).content.decode()
    assert url in _landing(client, record).content.decode()  # now from the cache
    hide(public)
    response = _landing(client, record)
    assert url not in response.content.decode()
    assert url not in response["Link"]
    # Non-shared and deleted files are not even named; shared and quarantined ones are listed.
    still_listed = DataObject.objects.filter(pk=public.pk).exclude(tier=Tier.NON_SHARED).exists()
    assert (name in response.content.decode()) == still_listed


def test_a_closed_or_withdrawn_record_leaves_the_cache(client, dataset):
    record, _ = dataset
    assert _landing(client, record).status_code == 200
    assert record.title_en in _search(client).content.decode()
    record.withdrawn_at = timezone.now()
    record.withdrawal_reason = "Duplicate of another dataset."
    record.save()
    assert _landing(client, record).status_code == 410
    assert record.title_en not in _search(client).content.decode()
    DmpRecord.objects.filter(pk=record.pk).update(
        withdrawn_at=None, metadata_access=MetadataAccess.CLOSED
    )
    assert _landing(client, record).status_code == 404
    assert record.title_en not in _search(client).content.decode()


def test_new_and_edited_records_show_at_once(client, dataset):
    record, _ = dataset
    assert "Second cached dataset" not in _search(client).content.decode()
    _open_record(
        record.project, number=2, title_en="Second cached dataset", keywords_en="cachetest"
    )
    assert "Second cached dataset" in _search(client).content.decode()
    creator = RecordCreator.objects.filter(record=record).first()
    creator.name_en = "Renamed Creator"
    creator.save()
    assert "Renamed Creator" in _landing(client, record).content.decode()
    record.project.name_en = "Renamed programme project"
    record.project.save()
    assert "Renamed programme project" in _landing(client, record).content.decode()


def test_progress_counters_do_not_empty_the_cache(client, dataset, django_assert_num_queries):
    record, public = dataset
    _landing(client, record)
    DataObject.objects.filter(pk=public.pk).update(checksum_progress=42)
    with django_assert_num_queries(0):
        assert _landing(client, record).status_code == 200


def test_visitors_with_a_session_get_their_own_page(client, dataset, django_assert_num_queries):
    record, _ = dataset
    hidden = _object(record, "members-only.tif", tier=Tier.NON_SHARED)
    anonymous = _landing(client, record).content.decode()
    member = MembershipFactory(project=record.project, role=Role.PM).user
    member_client = Client()
    member_client.force_login(member)
    own = _landing(member_client, record).content.decode()
    assert member.username in own or member.display_name in own
    assert hidden.original_filename in own
    # The member's page was not stored for others, and the cached page not served to them.
    again = _landing(client, record).content.decode()
    assert again == anonymous
    assert hidden.original_filename not in again
    assert member.display_name not in again
    with django_assert_num_queries(0):
        _landing(client, record)
    with CaptureQueriesContext(connection) as queries:
        _landing(member_client, record)
    assert len(queries) > 0


def test_languages_are_cached_apart(client, dataset):
    record, _ = dataset
    english = _landing(client, record).content.decode()
    client.cookies["django_language"] = "ja"
    japanese = _landing(client, record).content.decode()
    assert english != japanese
    assert '<html lang="ja"' in japanese
    del client.cookies["django_language"]
    assert _landing(client, record).content.decode() == english


def test_embargo_dates_are_part_of_the_key(client, dataset, monkeypatch):
    record, _ = dataset
    opens = timezone.localdate() + datetime.timedelta(days=1)
    embargoed = _object(record, "opens-tomorrow.tif", tier=Tier.EMBARGOED, available_date=opens)
    assert _download_url(embargoed) not in _landing(client, record).content.decode()
    tomorrow = timezone.now() + datetime.timedelta(days=1, hours=1)
    monkeypatch.setattr(timezone, "now", lambda: tomorrow)
    assert _download_url(embargoed) in _landing(client, record).content.decode()


def test_the_page_cache_can_be_switched_off(client, dataset, settings):
    record, _ = dataset
    settings.KURA_PAGE_CACHE_SECONDS = 0
    _landing(client, record)
    with CaptureQueriesContext(connection) as queries:
        assert _landing(client, record).status_code == 200
    assert len(queries) > 0


def test_an_unreachable_cache_only_costs_a_rendering(client, dataset, settings):
    record, public = dataset
    settings.CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    for _ in range(2):
        response = _landing(client, record)
        assert response.status_code == 200
        assert public.original_filename in response.content.decode()
    public.tier = Tier.NON_SHARED
    public.save()  # a write does not fail because the cache is down
    assert public.original_filename not in _landing(client, record).content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_commit_bumps_the_generation_again():
    """A page rendered by another connection before the commit, and cached under the first
    bump, must not outlive the commit."""
    before = generations.CATALOGUE.current()
    with transaction.atomic():
        generations.CATALOGUE.changed()
        during = generations.CATALOGUE.current()
        assert during > before
    assert generations.CATALOGUE.current() > during


def test_unknown_query_parameters_are_rendered_but_never_stored(
    client, dataset, django_assert_num_queries
):
    record, _ = dataset
    landing = reverse("dataset-landing", args=[record.pk])
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(landing, {"x": "random"}).status_code == 200
        assert len(queries) > 0  # rendered each time: no copy of the page per junk parameter
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("dataset-list"), {"q": "cachetest", "utm": "x"})
        client.get(reverse("dataset-list"), {"q": "cachetest", "utm": "x"})
    assert len(queries) > 2
    # Known parameters (query, facets, page) are cached as before.
    _served_from_cache(client, django_assert_num_queries, lambda c: _search(c, q="cachetest"))


def test_an_upload_in_flight_leaves_cached_pages_alone_until_it_is_stored(
    client, dataset, django_assert_num_queries
):
    """No cached page shows an upload in flight, so starting one (its object and its audit
    event) keeps them; completing it stores a file, which empties them at once."""
    record, _ = dataset
    uploader = UploadClient(MembershipFactory(project=record.project, role=Role.RESEARCHER).user)
    data = b"arriving bytes " * 100
    _landing(client, record)

    upload = uploader.start_ok(
        project=record.project.pk,
        record=record.pk,
        filename="arriving.tif",
        size=len(data),
        content_type="image/tiff",
        tier=Tier.SHARED,
    )
    with django_assert_num_queries(0):
        assert _landing(client, record).status_code == 200

    etags = uploader.put_parts(upload, data, [1])
    assert uploader.complete(upload.id, etags).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert _landing(client, record).status_code == 200
    assert len(queries) > 0


# --- Invalidated by what a page shows -----------------------------------------------------------


def test_files_written_elsewhere_leave_this_landing_page_and_search_cached(
    client, dataset, django_assert_num_queries
):
    """A landing page is filed under its own record's files: an upload stored in another
    record (of this project or another), its checksum verified, and an audited download
    there move neither it nor the search page."""
    record, public = dataset
    other = _open_record(record.project, number=2, title_en="Another dataset")
    elsewhere = _open_record(title_en="A dataset of another project")
    _landing(client, record)
    _search(client)

    for target in (other, elsewhere):
        stored = _object(target, "new-elsewhere.tif", tier=Tier.PUBLIC)
        DataObject.objects.filter(pk=stored.pk).update(
            checksum_state=DataObject.ChecksumState.VERIFYING
        )
        stored.checksum_state = DataObject.ChecksumState.VERIFIED
        stored.save()
        audit_event_record(
            actor=None,
            action=AuditEvent.Action.DOWNLOAD,
            data_object=stored,
        )
        with django_assert_num_queries(0):
            assert public.original_filename in _landing(client, record).content.decode()
            assert record.title_en in _search(client).content.decode()
        # The other record's own landing page shows its new file at once.
        assert "new-elsewhere.tif" in _landing(client, target).content.decode()


@pytest.mark.parametrize(
    "move",
    [
        pytest.param(lambda obj, to: setattr(obj, "record", to) or obj.save(), id="save"),
        pytest.param(
            lambda obj, to: DataObject.objects.filter(pk=obj.pk).update(record=to),
            id="queryset-update",
        ),
    ],
)
def test_a_file_moved_to_another_record_leaves_both_landing_pages(client, dataset, move):
    record, public = dataset
    other = _open_record(record.project, number=2, title_en="Another dataset")
    name = public.original_filename
    public = DataObject.objects.get(pk=public.pk)  # as loaded from the database
    assert name in _landing(client, record).content.decode()
    assert name not in _landing(client, other).content.decode()

    move(public, other)

    assert name not in _landing(client, record).content.decode()
    assert name in _landing(client, other).content.decode()


def test_a_landing_page_links_its_project_only_for_its_own_files(client, dataset):
    """A visitor without a session gets the page cached under this record's files, so
    whether it links the project may not depend on another record's files."""
    record, public = dataset
    bare = _open_record(record.project, number=2, title_en="A dataset without files")
    project_link = f'href="/projects/{record.project.pk}/"'
    assert project_link in _landing(client, record).content.decode()
    assert project_link not in _landing(client, bare).content.decode()
    _object(bare, "later.tif", tier=Tier.NON_SHARED)  # nothing a visitor may see
    assert project_link not in _landing(client, bare).content.decode()
    # Signed in, the page is not cached: the project page's own rule decides.
    client.force_login(MembershipFactory(project=record.project).user)
    assert project_link in _landing(client, bare).content.decode()


def test_reading_pages_makes_no_scoped_numbers(client, dataset):
    """Only writes make a record's or a project's generation: visitors asking for landing
    pages, of records nobody wrote to or of ids that do not exist, add no keys."""
    record, _ = dataset
    quiet = _open_record(record.project, number=2, title_en="Nobody writes here")
    redis = generations._cache()._cache.get_client(None)
    ours = generations._cache().key_prefix  # this run's keys only: others share the server

    def keys() -> set:
        return set(redis.keys(f"{ours}:*record-files*")) | set(redis.keys(f"{ours}:*project:*"))

    before = keys()
    assert _landing(client, quiet).status_code == 200
    assert client.get(reverse("dataset-landing", args=[10**9])).status_code == 404
    assert keys() == before
    _object(quiet, "first-file.tif", tier=Tier.PUBLIC)  # the first write makes its number
    made = keys() - before
    assert [key.decode().split(":")[-2:] for key in made] == [
        ["record-files", f"{quiet.pk}-generation"]
    ]
    assert "first-file.tif" in _landing(client, quiet).content.decode()


# --- content negotiation and the linkset (issue 16 items 6 and 7) ---------------------------


def test_negotiated_metadata_and_the_page_never_stand_in_for_each_other(
    client, dataset, django_assert_num_queries
):
    record, _ = dataset
    landing = reverse("dataset-landing", args=[record.pk])
    html = _served_from_cache(client, django_assert_num_queries, lambda c: _landing(c, record))
    assert "Accept" in _landing(client, record)["Vary"]  # kept with the cached headers
    for _ in range(2):  # the cached page is not served to a negotiating client, nor stored
        with CaptureQueriesContext(connection) as queries:
            response = client.get(landing, HTTP_ACCEPT="application/ld+json")
        assert len(queries) > 0
        assert response["Content-Type"] == "application/ld+json"
        assert "Accept" in response["Vary"]
    with django_assert_num_queries(0):  # ... and the page is still cached for browsers
        assert _landing(client, record).content.decode() == html


def test_a_negotiating_client_first_leaves_no_metadata_for_browsers(client, dataset):
    record, _ = dataset
    landing = reverse("dataset-landing", args=[record.pk])
    assert client.get(landing, HTTP_ACCEPT="application/x-bibtex")["Content-Type"].startswith(
        "application/x-bibtex"
    )
    assert _landing(client, record)["Content-Type"].startswith("text/html")


def test_the_linkset_is_cached_and_follows_the_files(client, dataset, django_assert_num_queries):
    record, public = dataset
    linkset = reverse("dataset-linkset-json", args=[record.pk])
    body = _served_from_cache(client, django_assert_num_queries, lambda c: c.get(linkset))
    assert _download_url(public) in body
    public.tier = Tier.SHARED
    public.save()
    assert _download_url(public) not in client.get(linkset).content.decode()
