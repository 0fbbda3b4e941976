import io
import re

import pytest
from django.conf import settings
from django.core.management import call_command
from playwright.sync_api import expect

from accounts.models import Project

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_project():
    call_command("kura_demo", stdout=io.StringIO())
    return Project.objects.get(memberships__user__username="pm")


def test_home_in_english_switch_to_japanese_log_in_as_pm_and_see_the_project(page, demo_project):
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Log in")).to_be_visible()

    page.locator("#language-switcher button[value=ja]").click()
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    page.get_by_role("link", name="ログイン").click()

    page.locator("#id_username").fill("pm")
    page.locator("#id_password").fill(settings.KURA_DEMO_PASSWORD)
    page.locator("#login-form button[type=submit]").click()

    your_projects = page.locator("section[aria-labelledby=your-projects]")
    expect(your_projects.locator("h2")).to_have_text("参加しているプロジェクト")
    project_link = your_projects.get_by_role("link", name=demo_project.name_ja)
    expect(project_link).to_be_visible()
    project_link.click()
    expect(page).to_have_url(re.compile(rf"/projects/{demo_project.pk}/$"))
    expect(page.locator("h1")).to_contain_text(demo_project.name_ja)
    first_object = demo_project.data_objects.order_by("pk").first()
    expect(page.get_by_text(first_object.original_filename).first).to_be_visible()
