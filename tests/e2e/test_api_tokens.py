"""A person creates an API token from the user menu, copies it once, uses it, revokes it."""

import pytest
from playwright.sync_api import expect
from rest_framework.test import APIClient

from accounts.models import ApiToken
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_create_use_and_revoke_a_token(page, screenshots):
    user = UserFactory()
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()

    page.get_by_role("link", name="API tokens").click()
    page.locator("#id_name").fill("lab workstation")
    page.get_by_role("button", name="Create token").click()

    token = page.locator("#new-token-value").inner_text()
    assert token.startswith("kura_")
    row = page.locator("#token-table tbody tr").first
    expect(row).to_contain_text("lab workstation")
    expect(row).to_contain_text("never")
    screenshots.take(page, "api-tokens", full_page=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/objects/").status_code == 200

    page.goto("/accounts/tokens/")  # the secret is not shown again
    expect(page.locator("#new-token-value")).to_have_count(0)
    expect(page.locator("#token-table tbody tr").first).not_to_contain_text("never")
    page.get_by_role("button", name="Revoke").click()

    expect(page.locator(".messages")).to_contain_text("was revoked")
    expect(page.locator("#token-table tbody tr").first).to_contain_text("revoked")
    assert ApiToken.objects.get().revoked_at is not None
    assert api.get("/api/v1/objects/").status_code == 401
