"""Opening data in Chromium: a researcher asks for `public` on the object page, a curator
decides in /review/, and (when approved) an anonymous visitor downloads the file from the
S3 test server."""

import re

import pytest
from playwright.sync_api import expect

from core.vocabularies import Tier
from repository.models import AuditEvent, DataObject, RequestStatus, TierChangeRequest
from tests.e2e.test_upload import log_in
from tests.factories import make_curator
from tests.repository.stored_objects import store_object

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTENT = b"II*\x00" + bytes(range(256)) * 64


@pytest.fixture
def new_page(browser, live_server):
    """Another browser, as someone else: its own cookies."""
    contexts = []

    def make():
        context = browser.new_context(base_url=live_server.url, locale="en-US")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shared_object():
    data_object = store_object(
        CONTENT,
        filename="liver-section-01.tif",
        tier=Tier.SHARED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        content_type="image/tiff",
    )
    return data_object


def ask_for_public(page, data_object):
    log_in(page, data_object.uploaded_by)
    page.goto(f"/objects/{data_object.pk}/")
    form = page.locator("#tier-form")
    expect(form).to_contain_text("Shared")
    form.locator("#id_tier").select_option("public")
    form.locator("#id_reason").fill("Published with the article in Nature Methods.")
    form.get_by_role("button", name="Change the tier").click()
    expect(page.locator(".messages")).to_contain_text("is waiting for a curator")
    expect(page.locator(".pending-tier-request")).to_be_visible()
    return TierChangeRequest.objects.get(status=RequestStatus.PENDING)


def open_request_as_curator(page, tier_request):
    curator = make_curator(name_en="Kenji Curator")
    log_in(page, curator)
    page.get_by_role("link", name="Review", exact=True).click()
    expect(page.locator("h1")).to_have_text("Review queue")
    row = page.locator(f'tr[data-request-id="{tier_request.pk}"]')
    expect(row).to_contain_text("Public")
    row.get_by_role("link", name=f"#{tier_request.pk}").click()
    expect(page.locator("#request-object-table")).to_contain_text("liver-section-01.tif")
    expect(page.locator("#request-info")).to_be_visible()
    expect(page.locator(".reason")).to_contain_text("Nature Methods")
    return curator


def test_a_researcher_asks_a_curator_approves_and_anyone_downloads(
    page, new_page, shared_object, mailoutbox
):
    data_object = shared_object
    anonymous = new_page()
    anonymous.goto(f"/objects/{data_object.pk}/")
    expect(anonymous.locator("h1")).not_to_have_text(data_object.original_filename)  # 404

    tier_request = ask_for_public(page, data_object)

    curator_page = new_page()
    curator = open_request_as_curator(curator_page, tier_request)
    curator_page.locator("#id_comment").fill("Checked: no personal data.")
    curator_page.get_by_role("button", name="Approve", exact=True).click()
    expect(curator_page.locator(".messages")).to_contain_text("Approved 1 request(s)")
    expect(curator_page.locator(f'tr[data-request-id="{tier_request.pk}"]')).to_have_count(0)

    data_object.refresh_from_db()
    assert data_object.tier == Tier.PUBLIC
    event = AuditEvent.objects.get(action=AuditEvent.Action.TIER_CHANGED)
    assert (event.actor, event.before["tier"], event.after["tier"]) == (curator, "shared", "public")
    assert event.ip_address == "127.0.0.1"

    anonymous.goto(f"/objects/{data_object.pk}/")
    expect(anonymous.locator("h1")).to_have_text(data_object.original_filename)
    with anonymous.expect_download() as download_info:
        anonymous.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "liver-section-01.tif"
    with open(download.path(), "rb") as downloaded:
        assert downloaded.read() == CONTENT

    (mail,) = mailoutbox
    assert data_object.uploaded_by.email in mail.to
    assert "approved" in mail.subject


def test_a_curator_rejects_and_the_requester_is_notified(page, new_page, shared_object, mailoutbox):
    data_object = shared_object
    tier_request = ask_for_public(page, data_object)

    curator_page = new_page()
    open_request_as_curator(curator_page, tier_request)
    curator_page.get_by_role("button", name="Reject", exact=True).click()
    expect(curator_page.locator("#field-comment .field-errors")).to_contain_text(
        "Say why the request is rejected"
    )
    curator_page.locator("#id_comment").fill("The record declares the data as shared only.")
    curator_page.get_by_role("button", name="Reject", exact=True).click()
    expect(curator_page.locator(".messages")).to_contain_text("Rejected 1 request(s)")

    tier_request.refresh_from_db()
    assert tier_request.status == RequestStatus.REJECTED
    data_object.refresh_from_db()
    assert data_object.tier == Tier.SHARED
    (mail,) = mailoutbox
    pm = data_object.project.memberships.get(role="pm").user
    assert sorted(mail.to) == sorted([data_object.uploaded_by.email, pm.email])
    assert "rejected" in mail.subject
    assert "The record declares the data as shared only." in mail.body

    # The requester's page no longer shows a request waiting; the file stays members-only.
    page.reload()
    expect(page.locator(".pending-tier-request")).to_have_count(0)
    expect(page.locator("#tier-form")).to_contain_text("Shared")
    anonymous = new_page()
    response = anonymous.goto(f"/objects/{data_object.pk}/download")
    assert response.status == 404
    assert re.search(r"/objects/\d+/download$", anonymous.url)
