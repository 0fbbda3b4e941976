"""A record's history in Chromium: an edit made in the form appears on the record's page,
newest first, and opening it shows each changed item before and after."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from core.vocabularies import Tier
from dmp import services
from tests.dmp.test_services import complete_fields
from tests.e2e.test_record_form import log_in
from tests.factories import DataObjectFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GB = 1024**3


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_an_edit_shows_in_the_records_history_with_its_diff(page, screenshots):
    membership = MembershipFactory(role=Role.PM)
    project, pm = membership.project, membership.user
    record = services.record_create(
        actor=pm, project=project, fields=complete_fields(title_en="Light-sheet images")
    )
    for _ in range(3):
        DataObjectFactory(project=project, record=record, tier=Tier.SHARED, size=GB)
    log_in(page, pm)

    page.goto(f"/projects/{project.pk}/dmp/records/{record.pk}/edit/")
    page.locator("#id_title_en").fill("Confocal images")
    page.locator("#id_contains_personal_data").select_option("unknown")
    page.locator("#record-form button[type=submit]").click()

    expect(page.locator("#object-totals")).to_have_text("3 objects, 3.0\xa0GB in all")
    rows = page.locator("#record-history-table > tbody > tr")
    expect(rows).to_have_count(2)
    newest = rows.first
    expect(newest).to_have_attribute("data-revision", "2")
    expect(newest).to_contain_text(pm.display_name)
    diff = newest.locator("table.revision-diff")
    expect(diff).to_be_hidden()
    newest.locator("summary").click()
    expect(diff.locator('tr[data-item="title_en"] .before')).to_have_text("Light-sheet images")
    expect(diff.locator('tr[data-item="title_en"] .after')).to_have_text("Confocal images")
    expect(diff.locator('tr[data-item="contains_personal_data"] .after')).to_have_text("Unknown")
    screenshots.take(page.locator("#record-history").locator(".."), "record-history-en")
