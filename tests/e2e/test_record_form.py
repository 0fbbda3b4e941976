"""The DMP record form in Chromium, in Japanese and in English: item names, required marks,
vocabulary labels, and field-level errors in the reader's language."""

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from core.vocabularies import Tier
from dmp.models import DmpRecord
from tests.factories import PASSWORD, DataObjectFactory, DmpRecordFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LANGUAGES = {
    "ja": {
        "locale": "ja-JP",
        "data_type": "データ種別",
        "option": "実験データ",
        "title": "データの名称",
        "required_sr": ("必須",),
        "required_error": "この項目は必須です。",
        "save": "保存",
    },
    "en": {
        "locale": "en-US",
        "data_type": "Data type",
        "option": "experimental data",
        "title": "Data Title",
        "required_sr": ("required",),
        "required_error": "This field is required.",
        "save": "Save",
    },
}


@pytest.fixture
def pm():
    membership = MembershipFactory(role=Role.PM)
    record = DmpRecordFactory(project=membership.project, data_number="D-007")
    DataObjectFactory(project=membership.project, record=record, tier=Tier.SHARED)
    DataObjectFactory(project=membership.project, record=None, original_filename="loose.tif")
    return membership.user, membership.project


@pytest.fixture(params=list(LANGUAGES))
def localized_page(request, browser, live_server):
    language = request.param
    context = browser.new_context(
        base_url=live_server.url,
        locale=LANGUAGES[language]["locale"],
        viewport={"width": 1200, "height": 900},
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page, language
    context.close()


def log_in(page, user):
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()


def test_record_form_in_the_readers_language(localized_page, pm, screenshots):
    page, language = localized_page
    strings = LANGUAGES[language]
    user, project = pm
    log_in(page, user)

    page.goto(f"/projects/{project.pk}/")
    page.locator(f'a[href="/projects/{project.pk}/dmp/"]').click()
    expect(page.locator("#objects-without-record + ul")).to_contain_text("loose.tif")
    screenshots.take(page, f"dmp-page-{language}", full_page=True)
    page.locator(f'a[href="/projects/{project.pk}/dmp/records/new/"]').click()

    expect(page.locator("html")).to_have_attribute("lang", language)
    data_type = page.locator('label[for="id_data_type"]')
    expect(data_type).to_contain_text(strings["data_type"])
    expect(data_type.locator(".required")).to_have_text("*")
    expect(data_type.locator(".required")).to_have_attribute("aria-hidden", "true")
    assert data_type.locator(".visually-hidden").inner_text().strip() in strings["required_sr"]
    expect(page.get_by_label(strings["data_type"])).to_be_visible()
    options = page.locator("#id_data_type option")
    expect(options.filter(has_text=strings["option"])).to_have_count(1)
    assert " | " not in "".join(options.all_inner_texts())
    expect(page.locator("#pair-title legend")).to_contain_text(strings["title"])
    expect(page.locator("#id_data_number")).to_have_value("D-008")
    # Optional items carry no mark.
    expect(page.locator('label[for="id_file_size"] .required')).to_have_count(0)

    # Add a creator row, then submit with required items missing.
    page.locator("#creator-add").click()
    expect(page.locator(".creator-row")).to_have_count(2)
    page.locator("#id_creators-1-name_en").fill("Taro Suzuki")
    page.locator("#id_data_policy_free").select_option("")
    page.locator("#id_title_ja").fill("")
    page.locator("#id_title_en").fill("")
    if screenshots.enabled:
        screenshots.take(page, f"record-form-{language}", full_page=True)
        for fieldset in page.locator("fieldset.fieldset").all():
            slug = fieldset.get_attribute("id")
            screenshots.take(fieldset, f"record-form-{language}-{slug}")
    page.locator("#record-form button[type=submit]").click()

    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator("#id_data_policy_free_errors")).to_have_text(strings["required_error"])
    expect(page.locator("#field-data_policy_free")).to_have_class("field field-invalid")
    expect(page.locator("#pair-title-errors")).to_have_count(1)
    expect(page.locator("#id_title_ja")).to_have_attribute("aria-describedby", "pair-title-errors")
    expect(page.locator("#id_creators-1-name_en")).to_have_value("Taro Suzuki")
    assert DmpRecord.objects.filter(project=project).count() == 1
    screenshots.take(page, f"record-form-errors-{language}", full_page=True)
    screenshots.take(page.locator("#fieldset-basic"), f"record-form-errors-{language}-basic")
