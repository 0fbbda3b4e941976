"""Every page works under Kura's Content-Security-Policy, in Chromium: no violation is
reported while people use the upload page (Uppy, the hashing worker's WebAssembly, parts
sent straight to the bucket), the dashboard's SVG charts, the record form and Swagger UI."""

import os

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from repository.models import DataObject
from tests.e2e.test_upload import (
    CHECKSUM_TIMEOUT_MS,
    VERIFIED_END_TO_END,
    add_file,
    log_in,
    open_upload_page,
    start_upload,
)
from tests.factories import DataObjectFactory, DmpRecordFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Collects the browser's own reports of blocked content, from the first script on.
COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def watched(page):
    page.add_init_script(COLLECT_VIOLATIONS)
    console = []
    page.on(
        "console",
        lambda msg: console.append(msg.text) if "Content Security Policy" in msg.text else None,
    )

    def violations():
        return page.evaluate("window.__csp || []") + console

    return page, violations


@pytest.fixture
def pm():
    membership = MembershipFactory(role=Role.PM)
    record = DmpRecordFactory(project=membership.project)
    for tier in ("public", "shared", "non_shared"):
        DataObjectFactory(project=membership.project, record=record, tier=tier)
    return membership.user, record


def test_the_policy_is_sent_on_every_page(page, live_server):
    response = page.goto("/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
    assert os.environ["AWS_S3_ENDPOINT_URL"].rstrip("/") in policy  # parts go there
    assert "camera=()" in response.headers["permissions-policy"]


def test_an_upload_goes_through_under_the_policy(
    watched, live_server, celery_worker_process, pm, tmp_path
):
    page, violations = watched
    user, record = pm
    path = tmp_path / "csp-check.csv"
    path.write_bytes(b"sample,value\n" * 50_000)
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    page.select_option("#upload-tier", "shared")
    add_file(page, path)
    start_upload(page)

    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    assert DataObject.objects.get(original_filename=path.name).integrity == "end_to_end"
    assert violations() == []


def test_dashboard_record_form_and_api_docs_render_under_the_policy(watched, live_server, pm):
    page, violations = watched
    user, record = pm
    log_in(page, user)

    page.goto(f"/projects/{record.project.pk}/dashboard/")
    expect(page.locator("svg.tier-mix rect").first).to_be_visible()
    expect(page.locator(".chart-legend svg.swatch").first).to_be_visible()

    page.goto(f"/projects/{record.project.pk}/dmp/records/{record.pk}/edit/")
    expect(page.locator("form").first).to_be_visible()

    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()

    assert violations() == []
