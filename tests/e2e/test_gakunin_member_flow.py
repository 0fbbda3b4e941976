"""Issue 17's whole path in Chromium: a new person signs in through GakuNin (the test IdP),
lands on My page, which tells them what to do; a PM invites them by their ePPN from the
members page; they accept, upload a file and see it verified; the PM removes them, and the
project's non-public data is closed to them from the next request on."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import ExternalIdentity, Membership, Role
from core.audit import AuditAction
from repository.models import AuditEvent, DataObject
from tests.e2e.gakunin import sign_in_with_gakunin
from tests.factories import PASSWORD, DmpRecordFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EPPN = "hanako@example.ac.jp"
CHECKSUM_TIMEOUT_MS = 120_000


@pytest.fixture
def pm_page(browser, live_server):
    """The PM's browser: a context of its own, closed however the test ends."""
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_a_newcomer_from_gakunin_is_invited_uploads_and_loses_access_when_removed(
    page, pm_page, gakunin, celery_worker_process, tmp_path, screenshots
):
    pm = MembershipFactory(role=Role.PM, user__username="pm-tanaka").user
    project = pm.memberships.get().project
    record = DmpRecordFactory(project=project)
    specimen = tmp_path / "plate-reader-run-07.csv"
    specimen.write_text("well,od600\nA1,0.412\nA2,0.397\n")

    # The newcomer signs in through their university's IdP and is told what to do next.
    sign_in_with_gakunin(page)
    expect(page).to_have_url(re.compile(r"/me/$"))
    next_steps = page.locator("#next-steps")
    expect(next_steps.get_by_role("heading")).to_have_text("You are not in a project yet")
    expect(next_steps).to_contain_text("Ask your project's PM (or its data manager) to invite you")
    expect(page.locator("#my-identifiers")).to_contain_text(EPPN)
    screenshots.take(page, "gakunin-newcomer-my-page", full_page=True)
    newcomer = ExternalIdentity.objects.get(subject=EPPN).user

    # The PM, in a browser of their own, invites that ePPN from the members page.
    pm_page.goto("/accounts/login/")
    pm_page.locator("#id_username").fill(pm.username)
    pm_page.locator("#id_password").fill(PASSWORD)
    pm_page.locator("#login-form button[type=submit]").click()
    expect(pm_page.locator(".nav-user")).to_be_visible()
    pm_page.goto(f"/projects/{project.pk}/")
    pm_page.get_by_role("link", name="Members").click()
    form = pm_page.locator("#invite-form")
    form.get_by_label("Invite by").select_option("eppn")
    form.get_by_label("Address").fill(EPPN)
    form.get_by_label("Role").select_option(Role.RESEARCHER)
    form.get_by_role("button", name="Invite").click()
    expect(pm_page.locator(".messages")).to_contain_text("Pass the link below on to the person")
    expect(pm_page.locator("#invitation-table")).to_contain_text(EPPN)
    link = pm_page.locator("#invitation-link").inner_text()
    path = link[link.index("/invitations/") :]
    screenshots.take(pm_page, "gakunin-pm-invited", full_page=True)

    # The newcomer opens the link and accepts.
    page.goto(path)
    expect(page.locator("main")).to_contain_text(project.name)
    expect(page.locator("main")).to_contain_text("Researcher")
    page.get_by_role("button", name="Accept invitation").click()
    expect(page).to_have_url(re.compile(rf"/projects/{project.pk}/$"))
    expect(page.locator(".messages")).to_contain_text("Welcome to")
    expect(page.locator(".page-header .badge.role")).to_have_text("Researcher")
    assert Membership.objects.get(user=newcomer, project=project).role == Role.RESEARCHER

    # They upload a file to the project (shared tier) and see it verified.
    page.get_by_role("link", name="Upload files").click()
    expect(page.locator("h1")).to_have_text("Upload files")
    page.select_option("#upload-record", str(record.pk))
    page.select_option("#upload-tier", "shared")
    page.locator("#uppy-dashboard input[type=file]").first.set_input_files(specimen)
    expect(page.locator(".uppy-Dashboard-Item-name")).to_contain_text(specimen.name)
    page.locator(".uppy-StatusBar-actionBtn--upload").click()
    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        "verified end to end", timeout=CHECKSUM_TIMEOUT_MS
    )
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert (data_object.uploaded_by, data_object.tier) == (newcomer, "shared")
    object_path = f"/objects/{data_object.pk}/"
    page.goto(object_path)
    expect(page.locator("h1")).to_contain_text(specimen.name)
    download = page.request.get(f"{object_path}download", max_redirects=0)
    assert download.status in (200, 302), download.status

    # The PM removes them.
    pm_page.reload()
    member_row = pm_page.locator("#member-table tr", has_text="Hanako Suzuki")
    member_row.get_by_role("button", name="Remove").click()
    expect(pm_page.locator(".messages")).to_contain_text(
        "Hanako Suzuki was removed from the project."
    )
    expect(pm_page.locator("#member-table")).not_to_contain_text("Hanako Suzuki")

    # From their next request on, the project's non-public data is closed to them: its
    # pages answer as if it did not exist, and the file's download too.
    for url in (object_path, f"/projects/{project.pk}/", f"/projects/{project.pk}/upload/"):
        response = page.goto(url)
        assert response.status == 404, (url, response.status)
    download = page.request.get(f"{object_path}download", max_redirects=0)
    assert download.status == 404
    page.goto("/me/")
    expect(page.locator("#my-projects")).not_to_contain_text(project.name)
    expect(page.locator("#next-steps")).to_be_visible()

    # Each step is on the project's audit trail, by the person who took it.
    trail = AuditEvent.objects.filter(project=project)
    assert set(trail.values_list("action", "actor__username")) >= {
        (AuditAction.MEMBER_INVITED, pm.username),
        (AuditAction.INVITATION_ACCEPTED, newcomer.username),
        (AuditAction.UPLOAD_COMPLETED, newcomer.username),
        (AuditAction.MEMBER_REMOVED, pm.username),
    }
