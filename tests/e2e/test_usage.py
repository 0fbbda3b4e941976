"""Usage figures in Chromium: a visitor views a dataset and downloads its public file, a
grantee downloads its shared file, a headless crawler is not counted; after the fold the
landing page, the PM's dashboard and the program officers' page show the counts."""

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from repository.usage.fold import usage_fold
from tests.e2e.test_access_request import log_in
from tests.factories import (
    AccessGrantFactory,
    DataObjectFactory,
    DmpRecordFactory,
    MembershipFactory,
    UserFactory,
    make_program_officer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A person's browser: Chromium run headless says "HeadlessChrome", which COUNTER-Robots
# lists as a robot (and which is not counted: see below).
DESKTOP = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.fixture
def dataset():
    membership = MembershipFactory(role=Role.PM, user__username="pm-usage")
    record = DmpRecordFactory(
        project=membership.project,
        access_rights=Tier.PUBLIC,
        metadata_access=MetadataAccess.OPEN,
        title_en="Paddy methane flux",
    )
    files = {}
    for tier, name in ((Tier.PUBLIC, "flux-public.csv"), (Tier.SHARED, "flux-shared.csv")):
        content = f"{name}\n".encode() * 64
        data_object = DataObjectFactory(
            project=record.project,
            record=record,
            uploaded_by=membership.user,
            tier=tier,
            original_filename=name,
            size=len(content),
        )
        default_storage.save(data_object.storage_key, ContentFile(content))
        files[tier] = data_object
    return membership.user, record, files


def _download(page, name: str) -> None:
    row = page.locator("section[aria-labelledby=files] tr", has_text=name)
    with page.expect_download():
        row.get_by_role("link", name="Download").click()


def test_counts_reach_the_landing_page_dashboard_and_programs_page(
    browser, live_server, dataset, screenshots
):
    pm, record, files = dataset
    grantee = UserFactory(username="grantee-usage")
    AccessGrantFactory(record=record, grantee=grantee)
    officer = make_program_officer(username="officer-usage")
    landing = f"/datasets/{record.pk}/"
    usage_fold()  # what other tests left in the buffer: none of it is about these records

    def context(agent=DESKTOP):
        return browser.new_context(base_url=live_server.url, locale="en-US", user_agent=agent)

    visitor = context()
    page = visitor.new_page()
    page.goto(landing)
    _download(page, "flux-public.csv")
    visitor.close()

    crawler = browser.new_context(base_url=live_server.url, locale="en-US")  # HeadlessChrome
    crawler.new_page().goto(landing)
    crawler.close()

    reader = context()
    page = reader.new_page()
    log_in(page, grantee)
    page.goto(landing)
    _download(page, "flux-shared.csv")
    reader.close()

    usage_fold()  # what Celery beat does every minute

    anonymous = context()
    page = anonymous.new_page()
    page.goto(landing)
    usage = page.locator("section[aria-labelledby=usage]")
    # The visitor's view and download, and the grantee's view of the open record: the
    # crawler is not counted, the grantee's shared download is not public.
    expect(usage.locator("[data-usage=views] .stat-value")).to_have_text("3")
    expect(usage.locator("[data-usage=downloads] .stat-value")).to_have_text("1")
    expect(usage.locator("[data-usage=unique-downloads] .stat-value")).to_have_text("1")
    screenshots.take(usage, "usage-landing")
    anonymous.close()

    steward = context()
    page = steward.new_page()
    log_in(page, pm)
    page.goto(f"/projects/{record.project_id}/dashboard/")
    panel = page.locator("#usage")
    expect(panel.locator("[data-usage=public-downloads] .stat-value")).to_have_text("1")
    expect(panel.locator("[data-usage=shared-downloads] .stat-value")).to_have_text("1")
    row = panel.locator(f"tr[data-usage-record='{record.pk}']")
    expect(row.locator("[data-scope=public]")).to_have_text("1")
    expect(row.locator("[data-scope=shared]")).to_have_text("1")
    expect(panel.locator("svg.usage rect.usage-bar")).to_have_count(2)  # public and shared
    screenshots.take(panel, "usage-dashboard")
    steward.close()

    funder = context()
    page = funder.new_page()
    log_in(page, officer)
    page.goto("/programs/")
    row = page.locator(f"tr[data-project='{record.project_id}']")
    expect(row.locator("[data-usage=public-views]")).to_have_text("3")
    expect(row.locator("[data-usage=public-downloads]")).to_have_text("1")
    expect(row.locator("[data-usage=shared-downloads]")).to_have_text("1")
    screenshots.take(page, "usage-programs")
    funder.close()
