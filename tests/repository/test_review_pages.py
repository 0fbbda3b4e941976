"""Tier changes over HTTP: the form on the object page and the curator's /review/ pages."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.vocabularies import Tier
from repository.governance.review.selectors import PAGE_SIZE
from repository.models import AuditEvent, DataObject, RequestStatus, TierChangeRequest
from tests.factories import (
    DataObjectFactory,
    DmpRecordFactory,
    ProjectFactory,
    TierChangeRequestFactory,
    UserFactory,
    make_curator,
    make_superuser,
)
from tests.repository.test_tiers import ProjectWithRoles, in_days, state

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    return ProjectWithRoles()


def change_tier(client, data_object, **data):
    return client.post(f"/objects/{data_object.pk}/tier", data, REMOTE_ADDR="198.51.100.9")


# --- The object page form ---------------------------------------------------------------


@pytest.mark.parametrize("role", ["uploader", "pm", "data_manager"])
def test_stewards_see_the_tier_form_others_do_not(client, setup, role):
    data_object = setup.object()
    client.force_login(setup.user(role))

    html = client.get(f"/objects/{data_object.pk}/").content.decode()

    assert 'id="tier-form"' in html
    assert f'action="/objects/{data_object.pk}/tier"' in html


@pytest.mark.parametrize("role", ["researcher", "collaborator", "curator", "anonymous"])
def test_no_tier_form_for_people_who_may_not_change_it(client, setup, role):
    data_object = setup.object()
    user = setup.user(role)
    if user.is_authenticated:
        client.force_login(user)

    html = client.get(f"/objects/{data_object.pk}/").content.decode()

    assert 'id="tier-form"' not in html


def test_a_steward_shares_within_the_project_at_once(client, setup):
    data_object = setup.object(tier=Tier.NON_SHARED)
    client.force_login(setup.uploader)

    response = change_tier(client, data_object, tier="shared")

    assert response.status_code == 302
    assert state(data_object) == (Tier.SHARED, None)
    page = client.get(response["Location"]).content.decode()
    assert "The access tier is now Shared." in page
    event = AuditEvent.objects.get()
    assert (event.actor, event.ip_address) == (setup.uploader, "198.51.100.9")


def test_asking_for_public_creates_a_request_and_says_so(client, setup):
    data_object = setup.object()
    client.force_login(setup.uploader)

    response = change_tier(client, data_object, tier="public", reason="With the paper.")

    assert response.status_code == 302
    tier_request = TierChangeRequest.objects.get()
    assert tier_request.reason == "With the paper."
    assert state(data_object) == (Tier.SHARED, None)
    page = client.get(response["Location"]).content.decode()
    assert f"Request #{tier_request.pk} to make this object Public is waiting" in page
    assert 'class="pending-tier-request"' in page


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tier": "secret"}, "Select a valid choice"),
        ({}, "This field is required"),
        ({"tier": "embargoed", "reason": "x"}, "An embargo needs an available date."),
        (
            {"tier": "embargoed", "reason": "x", "available_date": "2001-01-01"},
            "The available date must be in the future.",
        ),
        ({"tier": "embargoed", "reason": "x", "available_date": "tomorrow"}, "Enter a valid date"),
        ({"tier": "public", "reason": ""}, "Say why these data should be opened"),
        ({"tier": "shared"}, "already as requested"),
    ],
)
def test_bad_input_is_a_form_error_and_changes_nothing(client, setup, data, message):
    data_object = setup.object()
    client.force_login(setup.pm)

    response = change_tier(client, data_object, **data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert 'id="tier-form"' in response.content.decode()
    assert state(data_object) == (Tier.SHARED, None)
    assert not AuditEvent.objects.exists() and not TierChangeRequest.objects.exists()


def test_a_blocked_opening_names_the_object_and_the_reason(client, setup):
    data_object = setup.object(contains_personal_data=True, original_filename="faces.tif")
    client.force_login(setup.pm)

    response = change_tier(client, data_object, tier="public", reason="Paper.")

    assert response.status_code == 400
    assert "faces.tif: it is flagged as containing personal data" in response.content.decode()
    assert not TierChangeRequest.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"),
    [("researcher", 403), ("collaborator", 403), ("curator", 403), ("outsider", 404)],
)
def test_people_without_rights_get_403_or_404_and_nothing_changes(client, setup, role, status):
    data_object = setup.object()
    client.force_login(setup.user(role))

    response = change_tier(client, data_object, tier="non_shared")

    assert response.status_code == status
    assert state(data_object) == (Tier.SHARED, None)
    assert not AuditEvent.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(client, setup):
    data_object = setup.object(tier=Tier.PUBLIC)

    response = change_tier(client, data_object, tier="non_shared")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert state(data_object) == (Tier.PUBLIC, None)


def test_the_tier_form_takes_post_only(client, setup):
    data_object = setup.object()
    client.force_login(setup.pm)
    assert client.get(f"/objects/{data_object.pk}/tier").status_code == 405


# --- /review/ permissions -----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/review/", "/review/{id}/"])
@pytest.mark.parametrize("role", ["pm", "uploader", "outsider", "staff"])
def test_non_curators_cannot_see_the_review_pages(client, setup, path, role):
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    user = UserFactory(is_staff=True) if role == "staff" else setup.user(role)
    client.force_login(user)

    assert client.get(path.format(id=tier_request.pk)).status_code == 404
    assert "/review/" not in client.get("/").content.decode()  # no link in the header


@pytest.mark.parametrize("path", ["/review/", "/review/1/"])
def test_anonymous_visitors_are_sent_to_log_in_from_review(client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize("role", ["pm", "uploader", "staff"])
def test_non_curators_cannot_decide_over_http(client, setup, role):
    data_object = setup.object()
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[data_object])
    client.force_login(UserFactory(is_staff=True) if role == "staff" else setup.user(role))

    approve = client.post(f"/review/{tier_request.pk}/", {"decision": "approve"})
    for_record = client.post(f"/review/records/{setup.record.pk}/decide", {"decision": "approve"})

    assert approve.status_code == 404 and for_record.status_code == 404
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING
    assert state(data_object) == (Tier.SHARED, None)


@pytest.mark.parametrize("make", [make_curator, make_superuser])
def test_curators_have_a_review_link_and_see_the_queue(client, setup, make):
    TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make())

    home = client.get("/").content.decode()
    queue = client.get("/review/")

    assert 'href="/review/"' in home
    assert queue.status_code == 200
    assert "1 pending request" in queue.content.decode()


# --- The queue ---------------------------------------------------------------------------


def _request(setup, *, tier=Tier.PUBLIC, days_old=0, personal=False, project=None):
    record = DmpRecordFactory(project=project or setup.project)
    data_object = DataObjectFactory(
        project=record.project,
        record=record,
        uploaded_by=setup.uploader,
        tier=Tier.SHARED,
        contains_personal_data=personal,
        checksum_state=DataObject.ChecksumState.VERIFIED,
    )
    tier_request = TierChangeRequestFactory(
        project=record.project,
        requested_tier=tier,
        available_date=in_days(30) if tier == Tier.EMBARGOED else None,
        data_objects=[data_object],
    )
    created = timezone.now() - datetime.timedelta(days=days_old)
    TierChangeRequest.objects.filter(pk=tier_request.pk).update(created_at=created)
    return tier_request


ROW = re.compile(r'<tr data-request-id="(\d+)"')


def listed(response) -> set[int]:
    return {int(pk) for pk in ROW.findall(response.content.decode())}


@pytest.fixture
def queue(setup):
    other = ProjectFactory()
    return {
        "fresh_public": _request(setup),
        "old_embargo": _request(setup, tier=Tier.EMBARGOED, days_old=10),
        "personal": _request(setup, personal=True, days_old=3),
        "other_project": _request(setup, project=other, days_old=20),
        "decided": TierChangeRequestFactory(project=setup.project, status=RequestStatus.APPROVED),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"fresh_public", "old_embargo", "personal", "other_project"}),
        ("tier=embargoed", {"old_embargo"}),
        ("tier=public", {"fresh_public", "personal", "other_project"}),
        ("older_than_days=5", {"old_embargo", "other_project"}),
        ("older_than_days=0", {"fresh_public", "old_embargo", "personal", "other_project"}),
        ("personal_data=yes", {"personal"}),
        ("personal_data=no", {"fresh_public", "old_embargo", "other_project"}),
        ("project={project}", {"fresh_public", "old_embargo", "personal"}),
        ("project={project}&older_than_days=2&tier=public", {"personal"}),
    ],
)
def test_the_queue_filters(client, setup, queue, query, expected):
    client.force_login(make_curator())

    response = client.get("/review/?" + query.format(project=setup.project.pk))

    assert response.status_code == 200
    assert listed(response) == {queue[name].pk for name in expected}


def test_the_queue_is_oldest_first(client, setup, queue):
    client.force_login(make_curator())

    rows = ROW.findall(client.get("/review/").content.decode())

    assert [int(pk) for pk in rows] == [
        queue[name].pk for name in ("other_project", "old_embargo", "personal", "fresh_public")
    ]


def test_a_personal_data_flag_on_the_record_counts_too(client, setup):
    tier_request = _request(setup)
    record = tier_request.data_objects.get().record
    record.contains_personal_data = True
    record.save()
    client.force_login(make_curator())

    assert listed(client.get("/review/?personal_data=yes")) == {tier_request.pk}


@pytest.mark.parametrize(
    "query",
    [
        "tier=secret",
        "older_than_days=-1",
        "older_than_days=abc",
        "personal_data=maybe",
        "project=999999",
    ],
)
def test_bad_filters_are_reported_not_a_500(client, setup, queue, query):
    client.force_login(make_curator())

    response = client.get("/review/?" + query)

    assert response.status_code == 400
    assert "Some filters are not valid" in response.content.decode()
    assert len(listed(response)) == 4  # shown unfiltered


def test_the_queue_is_paginated(client, setup, django_assert_max_num_queries):
    for _ in range(PAGE_SIZE + 3):
        _request(setup)
    client.force_login(make_curator())

    with django_assert_max_num_queries(12):
        first = client.get("/review/")
    second = client.get("/review/?page=2")
    beyond = client.get("/review/?page=abc")

    assert len(listed(first)) == PAGE_SIZE
    assert len(listed(second)) == 3
    assert listed(beyond) == listed(first)
    assert 'rel="next"' in first.content.decode()


# --- The detail page and the decision ------------------------------------------------------


def test_the_detail_page_shows_what_a_curator_weighs(client, setup):
    data_object = setup.object(
        original_filename="scan-001.dcm",
        content_type="application/dicom",
        size=5 * 1024 * 1024,
        technical_metadata={"format": "DICOM", "modality": "MR"},
        contains_personal_data=True,
    )
    setup.record.access_rights = Tier.SHARED
    setup.record.contains_personal_data = True
    setup.record.save()
    tier_request = TierChangeRequestFactory(
        project=setup.project,
        requested_by=setup.uploader,
        reason="Published with the article.",
        data_objects=[data_object],
    )
    client.force_login(make_curator())

    html = client.get(f"/review/{tier_request.pk}/").content.decode()

    for expected in (
        "scan-001.dcm",
        "5.0\xa0MB",
        "application/dicom",
        "DICOM",
        "modality",
        "Verified",
        "Contains personal data",
        "anonymisation not attested",
        setup.record.data_number,
        "tier-shared",  # the record's declared access rights
        setup.uploader.display_name,
        "Published with the article.",
        "scan-001.dcm: it is flagged as containing personal data",
        'id="decision-form"',
    ):
        assert expected in html, expected


def test_a_curator_approves_on_the_detail_page(
    client, setup, mailoutbox, django_capture_on_commit_callbacks
):
    data_object = setup.object()
    tier_request = TierChangeRequestFactory(
        project=setup.project, requested_by=setup.uploader, data_objects=[data_object]
    )
    curator = make_curator()
    client.force_login(curator)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/review/{tier_request.pk}/", {"decision": "approve", "comment": "OK"}
        )

    assert response.status_code == 302 and response["Location"] == "/review/"
    assert state(data_object) == (Tier.PUBLIC, None)
    assert "Approved 1 request(s)" in client.get("/review/").content.decode()
    assert len(mailoutbox) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"decision": "reject", "comment": ""}, "Say why the request is rejected"),
        ({"decision": "maybe"}, "Select a valid choice"),
        ({}, "This field is required"),
    ],
)
def test_bad_decisions_are_form_errors(client, setup, data, message):
    data_object = setup.object()
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[data_object])
    client.force_login(make_curator())

    response = client.post(f"/review/{tier_request.pk}/", data)

    assert response.status_code == 400
    assert message in response.content.decode()
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING
    assert state(data_object) == (Tier.SHARED, None)


def test_approving_a_blocked_request_is_refused_with_the_reason(client, setup):
    data_object = setup.object(checksum_state=DataObject.ChecksumState.FAILED)
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[data_object])
    client.force_login(make_curator())

    response = client.post(f"/review/{tier_request.pk}/", {"decision": "approve"})

    assert response.status_code == 400
    assert "checksum is not verified" in response.content.decode()
    assert state(data_object) == (Tier.SHARED, None)


def test_deciding_an_already_decided_request_says_so(client, setup):
    tier_request = TierChangeRequestFactory(
        project=setup.project,
        data_objects=[setup.object()],
        status=RequestStatus.REJECTED,
        decided_at=timezone.now(),
    )
    client.force_login(make_curator())

    response = client.post(f"/review/{tier_request.pk}/", {"decision": "approve"})

    assert response.status_code == 400
    assert "was already decided" in response.content.decode()
    assert 'id="decision-form"' not in response.content.decode()


def test_a_missing_request_is_404(client):
    client.force_login(make_curator())
    assert client.get("/review/999999/").status_code == 404
    assert client.post("/review/999999/", {"decision": "approve"}).status_code == 404


def test_deciding_all_requests_of_a_record_from_the_detail_page(client, setup):
    first = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    second = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make_curator())
    html = client.get(f"/review/{first.pk}/").content.decode()
    assert f'id="decide-record-{setup.record.pk}"' in html

    response = client.post(
        f"/review/records/{setup.record.pk}/decide",
        {"decision": "reject", "comment": "Not this year.", "back": first.pk},
    )

    assert response.status_code == 302 and response["Location"] == "/review/"
    assert set(
        TierChangeRequest.objects.filter(pk__in=[first.pk, second.pk]).values_list(
            "status", flat=True
        )
    ) == {RequestStatus.REJECTED}


def test_the_review_page_says_which_requests_deciding_for_a_record_leaves(client, setup):
    other_record = DmpRecordFactory(project=setup.project)
    theirs = setup.object(record=other_record)
    spanning = TierChangeRequestFactory(
        project=setup.project, data_objects=[setup.object(), theirs]
    )
    first = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    second = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make_curator())

    html = client.get(f"/review/{first.pk}/").content.decode()
    form = html[html.index(f'id="decide-record-{setup.record.pk}"') :]
    form = form[: form.index("</form>")]
    assert f'href="/review/{spanning.pk}/"' in form
    assert "also cover objects of other records" in form

    response = client.post(
        f"/review/records/{setup.record.pk}/decide",
        {"decision": "approve", "comment": "", "back": first.pk},
        follow=True,
    )

    statuses = dict(TierChangeRequest.objects.values_list("pk", "status"))
    assert statuses == {
        first.pk: RequestStatus.APPROVED,
        second.pk: RequestStatus.APPROVED,
        spanning.pk: RequestStatus.PENDING,
    }
    assert state(theirs) == (Tier.SHARED, None)
    page = response.content.decode()
    assert "Approved 2 request(s)" in page
    assert f"#{spanning.pk}" in page and "also cover objects of other records" in page


def test_deciding_all_of_a_record_with_bad_input_changes_nothing(client, setup):
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make_curator())

    response = client.post(
        f"/review/records/{setup.record.pk}/decide",
        {"decision": "reject", "comment": "", "back": tier_request.pk},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/review/{tier_request.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Say why the request is rejected" in page
    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.PENDING
    assert client.post("/review/records/999999/decide", {"decision": "approve"}).status_code == 404


def decision_buttons(html: str) -> dict[str, bool]:
    """The decision form's buttons: value -> whether it is enabled."""
    form = html[html.index('id="decision-form"') :]
    form = form[: form.index("</form>")]
    buttons = re.findall(r'<button type="submit" name="decision" value="(\w+)"([^>]*)>', form)
    return {value: "disabled" not in attributes for value, attributes in buttons}


def test_approve_is_disabled_with_the_reason_when_approval_is_known_to_be_refused(client, setup):
    blocked = setup.object(checksum_state=DataObject.ChecksumState.FAILED)
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[blocked])
    client.force_login(make_curator())

    html = client.get(f"/review/{tier_request.pk}/").content.decode()

    assert decision_buttons(html) == {"approve": False, "reject": True}
    assert 'aria-describedby="approval-blocked"' in html
    assert 'id="approval-blocked"' in html and "approval will be refused" in html
    # The server still refuses, whatever the page offered.
    response = client.post(f"/review/{tier_request.pk}/", {"decision": "approve"})
    assert response.status_code == 400
    assert state(blocked) == (Tier.SHARED, None)


def record_decision_buttons(html: str, record_id: int) -> dict[str, bool]:
    """The buttons of the form that decides all requests of a record: value -> enabled."""
    form = html[html.index(f'id="decide-record-{record_id}"') :]
    form = form[: form.index("</form>")]
    buttons = re.findall(r'<button type="submit" name="decision" value="(\w+)"([^>]*)>', form)
    return {value: "disabled" not in attributes for value, attributes in buttons}


def test_approving_all_of_a_record_is_disabled_when_one_of_its_files_may_not_open(client, setup):
    first = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make_curator())
    html = client.get(f"/review/{first.pk}/").content.decode()
    assert f'id="record-approval-blocked-{setup.record.pk}"' not in html

    failed = setup.object(checksum_state=DataObject.ChecksumState.FAILED)
    TierChangeRequestFactory(project=setup.project, data_objects=[failed])
    html = client.get(f"/review/{first.pk}/").content.decode()

    assert record_decision_buttons(html, setup.record.pk) == {"approve": False, "reject": True}
    assert f'aria-describedby="record-approval-blocked-{setup.record.pk}"' in html
    assert "approving all of them will be refused" in html
    # The first request alone may still be approved on its own page.
    assert decision_buttons(html) == {"approve": True, "reject": True}
    # And the server refuses approving all, whatever the page offered: nothing opens.
    client.post(f"/review/records/{setup.record.pk}/decide", {"decision": "approve"})
    assert set(TierChangeRequest.objects.values_list("status", flat=True)) == {
        RequestStatus.PENDING
    }


def test_the_detail_page_reads_a_records_pending_requests_in_the_same_queries_however_many(
    client, setup
):
    first = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make_curator())

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(f"/review/{first.pk}/").status_code == 200
        return len(captured)

    few = queries()
    for _ in range(6):
        TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    assert queries() == few


def test_approve_is_enabled_when_nothing_blocks(client, setup):
    tier_request = TierChangeRequestFactory(project=setup.project, data_objects=[setup.object()])
    client.force_login(make_curator())

    html = client.get(f"/review/{tier_request.pk}/").content.decode()

    assert decision_buttons(html) == {"approve": True, "reject": True}
    assert 'id="approval-blocked"' not in html


@pytest.mark.parametrize(
    ("declared", "requested", "warned"),
    [
        (Tier.SHARED, Tier.PUBLIC, True),  # the record says shared, the file asks for public
        (Tier.NON_SHARED, Tier.EMBARGOED, True),
        (Tier.PUBLIC, Tier.PUBLIC, False),
    ],
)
def test_a_request_that_contradicts_the_dmp_is_flagged_beside_the_declared_value(
    client, setup, declared, requested, warned
):
    setup.record.access_rights = declared
    setup.record.save()
    tier_request = TierChangeRequestFactory(
        project=setup.project,
        requested_tier=requested,
        available_date=in_days(30) if requested == Tier.EMBARGOED else None,
        data_objects=[setup.object()],
    )
    client.force_login(make_curator())

    html = client.get(f"/review/{tier_request.pk}/").content.decode()

    declared_block = html[html.index('id="declared-access-rights"') :]
    declared_block = declared_block[: declared_block.index("</dd>")]
    assert f"tier-{declared}" in declared_block  # the declared value, beside the request
    assert setup.record.data_number in declared_block
    assert ('id="dmp-contradiction"' in html) is warned
    assert ("differs from the request" in declared_block) is warned
    if warned:
        assert decision_buttons(html)["approve"]  # a warning, not a refusal
