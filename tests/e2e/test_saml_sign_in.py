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


def test_a_signed_in_person_links_gakunin_then_signs_out_through_the_idp(page, gakunin):
    """Linking finishes on the same-site page the ACS sends the browser to; signing out
    repeats the POST (307, with its CSRF token) at /saml2/logout/, whose page links to the
    IdP's single logout (a redirect there would break the form's CSP)."""
    User.objects.create_user("yamada", password="pw-12345-long")
    page.goto("/accounts/login/")
    page.locator("#id_username").fill("yamada")
    page.locator("#id_password").fill("pw-12345-long")
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator(".nav-user")).to_be_visible()

    page.goto("/accounts/login/")
    page.get_by_role("button", name="Link GakuNin to this account").click()
    page.get_by_role("link", name="Example University").click()
    page.get_by_role("button", name="Continue to Kura").click()

    expect(page.get_by_text("GakuNin is now linked to your account.")).to_be_visible()
    assert ExternalIdentity.objects.get(subject="hanako@example.ac.jp").user.username == "yamada"

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
    expect(page.locator(".nav-user")).to_have_count(0)
    page.get_by_role("link", name="Sign out at your institution").click()
    expect(page.get_by_role("heading", name="Signed out at the IdP")).to_be_visible()
    assert "/slo?SAMLRequest=" in page.url
