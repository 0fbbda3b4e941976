"""Access to shared data in Chromium: an outsider asks on the landing page, the PM approves
with an expiry on the project's access page, and the outsider downloads the shared file."""

import datetime

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.models import AccessGrant, AccessRequest, AuditEvent, RequestStatus
from tests.factories import (
    PASSWORD,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    UserFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTENT = b"shared microscopy bytes\n" * 512
FILENAME = "liver-slice-07.tiff"


@pytest.fixture
def shared_dataset():
    membership = MembershipFactory(role=Role.PM, user__username="pm-tanaka")
    pm = membership.user
    record = DmpRecordFactory(
        project=membership.project,
        access_rights=Tier.SHARED,
        metadata_access=MetadataAccess.OPEN,
        title_en="Liver slices under stress",
    )
    data_object = DataObjectFactory(
        project=record.project,
        record=record,
        uploaded_by=pm,
        tier=Tier.SHARED,
        original_filename=FILENAME,
        size=len(CONTENT),
    )
    default_storage.save(data_object.storage_key, ContentFile(CONTENT))
    return pm, record, data_object


def log_in(page, user):
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator(".nav-user")).to_be_visible()


def test_outsider_requests_pm_approves_outsider_downloads(
    page, browser, live_server, shared_dataset
):
    pm, record, data_object = shared_dataset
    outsider = UserFactory(username="outsider-sato")
    landing = f"/datasets/{record.pk}/"

    # The outsider finds the dataset, sees the shared file withheld and asks for it.
    log_in(page, outsider)
    page.goto(landing)
    files = page.locator("section[aria-labelledby=files]")
    expect(files.get_by_role("link", name="Download")).to_have_count(0)
    files.get_by_role("link", name="Request access").click()
    panel = page.locator("#request-access")
    expect(panel).to_be_in_viewport()
    panel.get_by_role("button", name="Request access").click()  # empty purpose: refused
    assert AccessRequest.objects.count() == 0
    panel.get_by_label("Purpose").fill("Re-analysis of hepatocyte stress markers for a review.")
    panel.get_by_role("button", name="Request access").click()
    expect(page.locator(".messages")).to_contain_text("Your request was sent")
    expect(page.locator("#request-access")).to_contain_text("The project has not decided yet")

    # The PM opens the project's access page from the project page and approves.
    pm_context = browser.new_context(base_url=live_server.url, locale="en-US")
    pm_page = pm_context.new_page()
    try:
        log_in(pm_page, pm)
        pm_page.goto(f"/projects/{record.project_id}/")
        pm_page.get_by_role("link", name="Access requests").click()
        access_request = AccessRequest.objects.get()
        card = pm_page.locator(f"#request-{access_request.pk}")
        expect(card).to_contain_text("Re-analysis of hepatocyte stress markers")
        expires_on = timezone.localdate() + datetime.timedelta(days=14)
        card.get_by_label("Access until").fill(expires_on.isoformat())
        card.locator(".approve-form").get_by_role("button", name="Approve").click()
        expect(pm_page.locator(".messages")).to_contain_text("Access granted")
        grants_table = pm_page.locator("#live-grants-table")
        expect(grants_table).to_contain_text("outsider-sato")
        expect(grants_table).to_contain_text(expires_on.isoformat())
    finally:
        pm_context.close()

    # The outsider now downloads the file itself.
    page.goto(landing)
    expect(page.locator("#request-access")).to_contain_text(
        f"granted until {expires_on.isoformat()}"
    )
    with page.expect_download() as download_info:
        page.locator("section[aria-labelledby=files]").get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == FILENAME
    with open(download.path(), "rb") as saved:
        assert saved.read() == CONTENT

    access_request.refresh_from_db()
    assert access_request.status == RequestStatus.APPROVED
    grant = AccessGrant.objects.get()
    assert (grant.grantee, grant.granted_by) == (outsider, pm)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert actions == {AuditEvent.Action.GRANT_CREATED, AuditEvent.Action.DOWNLOAD}
