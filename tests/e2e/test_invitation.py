"""Members in Chromium: a PM invites someone by e-mail from the members page; the invitee
(a local-password account) opens the mailed link, signs in, accepts and sees the project."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from accounts.models import Membership, Role
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, user):
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()


def test_pm_invites_by_email_and_the_invitee_accepts(page, browser, live_server, screenshots):
    pm = MembershipFactory(role=Role.PM, user__username="pm-tanaka").user
    project = pm.memberships.get().project
    invitee = UserFactory(username="suzuki", email="suzuki@lab.example.ac.jp")

    page.goto("/accounts/login/")
    sign_in(page, pm)
    page.goto(f"/projects/{project.pk}/")
    page.get_by_role("link", name="Members").click()
    form = page.locator("#invite-form")
    form.get_by_label("Address").fill("not-an-address")
    form.get_by_role("button", name="Invite").click()
    expect(page.locator("#invite-form .field-errors")).to_contain_text("valid e-mail")
    page.locator("#invite-form").get_by_label("Address").fill("suzuki@lab.example.ac.jp")
    page.locator("#invite-form").get_by_label("Role").select_option(Role.DATA_MANAGER)
    page.locator("#invite-form").get_by_role("button", name="Invite").click()
    expect(page.locator(".messages")).to_contain_text("e-mailed to suzuki@lab.example.ac.jp")
    expect(page.locator("#invitation-table")).to_contain_text("suzuki@lab.example.ac.jp")
    screenshots.take(page, "members-invited", full_page=True)

    (message,) = mail.outbox
    link = re.search(r"https?://\S+/invitations/\S+/", message.body).group(0)
    path = link[link.index("/invitations/") :]
    assert page.locator("#invitation-link").inner_text().endswith(path)

    # The invitee, in a browser of their own, follows the link and signs in first.
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    other = context.new_page()
    other.goto(path)
    expect(other).to_have_url(re.compile(r"/accounts/login/\?next="))
    sign_in(other, invitee)
    expect(other.locator("#accept-form")).to_be_visible()
    expect(other.locator("main")).to_contain_text(project.name)
    expect(other.locator("main")).to_contain_text("Data manager")
    other.get_by_role("button", name="Accept invitation").click()

    expect(other).to_have_url(re.compile(rf"/projects/{project.pk}/$"))
    expect(other.locator(".messages")).to_contain_text("Welcome to")
    expect(other.locator(".page-header .badge.role")).to_have_text("Data manager")
    assert Membership.objects.get(user=invitee, project=project).role == Role.DATA_MANAGER

    # The link is used: opening it again says so.
    other.goto(path)
    expect(other.locator("#invitation-refusal")).to_contain_text("already been used")
    context.close()
