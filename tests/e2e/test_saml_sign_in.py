"""A new person signs in through GakuNin in Chromium: the login page, Kura's IdP chooser,
a pysaml2 IdP served over HTTP by the test (the ``gakunin`` fixture), and back to Kura with
an account made for them."""

import pytest
from playwright.sync_api import expect

from accounts.models import ExternalIdentity, Institution, User
from tests.e2e.gakunin import IDP

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_new_person_signs_in_through_the_idp_chooser(page, gakunin):
    university = Institution.objects.create(name_en="Example University", idp_entity_id=IDP)

    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with GakuNin").click()

    expect(page.get_by_role("heading", name="Choose your institution")).to_be_visible()
    expect(page.locator("#idp-list li")).to_have_count(2)
    page.locator("#idp-query").fill("example")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#idp-list li")).to_have_count(1)
    page.get_by_role("link", name="Example University").click()

    expect(page.get_by_role("heading", name="Example University IdP")).to_be_visible()
    page.get_by_role("button", name="Continue to Kura").click()

    expect(page.locator(".nav-user")).to_have_text("Hanako Suzuki")
    user = User.objects.get(identities__subject="hanako@example.ac.jp")
    assert user.email == "hanako.suzuki@example.ac.jp"
    assert user.institution == university
    assert ExternalIdentity.objects.get(user=user).issuer == IDP

    # The chooser remembers the choice for the next sign-in.
    page.goto("/saml2/login/")
    expect(page.locator("#idp-list li").first).to_contain_text("last used")
