"""Importing an official maDMP example in Chromium: the review lists where each value
comes from and asks for the rest; nothing is saved until the person confirms."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from dmp.models import DmpRecord
from tests.e2e.test_record_form import log_in
from tests.factories import InstitutionFactory, MembershipFactory, ProjectFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXAMPLE = Path(__file__).resolve().parent.parent / "dmp" / "madmp_examples" / "ex9-dmp-long.json"


def test_review_then_confirm_an_official_example(page, screenshots):
    institution = InstitutionFactory(name_en="Kura University", ror_id="https://ror.org/0abcdef12")
    project = ProjectFactory(institution=institution)
    pm = MembershipFactory(project=project, role=Role.PM).user
    log_in(page, pm)

    page.goto(f"/projects/{project.pk}/dmp/import/")
    page.locator("#id_format").select_option("madmp-json")
    page.locator("#id_file").set_input_files(str(EXAMPLE))
    page.locator("#import-form button[type=submit]").click()

    expect(page.locator("#import-duplicates")).to_contain_text("0000/00.00000")
    expect(page.locator("#import-dataset-1")).to_contain_text("dmp.contributor[1].name")
    expect(page.locator("#import-notes")).to_contain_text("Source code")
    screenshots.take(page, "madmp-import-review", full_page=True)
    assert not DmpRecord.objects.filter(project=project).exists()

    page.locator("#id_answer_data_policy_free").select_option("free")
    page.locator("#id_answer_data_policy_license").select_option("CCBY")
    page.locator("#id_answer_repo_information").fill("Kura")
    page.locator("#id_answer_data_man_number").fill("12345678")
    page.locator('input[name="duplicates"][value="skip"]').check()
    page.locator("#import-review-form button[type=submit]").click()

    expect(page).to_have_url(f"{page.url.split('/projects/')[0]}/projects/{project.pk}/dmp/")
    (record,) = DmpRecord.objects.filter(project=project)
    assert (record.title_en, record.data_policy_license) == ("Client application", "MIT")
