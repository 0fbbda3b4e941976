"""The upload page in Chromium: Uppy sends parts straight to the S3 test server, Kura
completes the upload and a real Celery worker verifies the checksum."""

import hashlib
import os
import re
import time

import pytest
from playwright.sync_api import expect

from accounts.models import Role
from repository.models import DataObject, UploadSession
from repository.object_store import object_store
from tests.factories import PASSWORD, DmpRecordFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
SIZE = 30 * MIB  # four parts of 8 MiB (the server's smallest part size): 8 + 8 + 8 + 6
PART_URL = re.compile(r"[?&]partNumber=(\d+)")
CHECKSUM_TIMEOUT_MS = 120_000


@pytest.fixture
def researcher():
    membership = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=membership.project)
    return membership.user, record


@pytest.fixture
def specimen(tmp_path):
    data = os.urandom(SIZE)
    path = tmp_path / "specimen-001.tiff"
    path.write_bytes(data)
    return path, data


class PartGate:
    """Intercepts the browser's part PUTs: records them and can hold some back.

    A held request is never answered, as on a stalled connection; it ends when Uppy aborts
    it (pause, removal) or the page goes away. Playwright runs the handler only while the
    test waits inside a Playwright call, so tests wait with ``page.wait_for_timeout``.
    """

    def __init__(self, page):
        self.held_parts: set[int] = set()
        self.held: list[int] = []
        self.sent: list[int] = []
        page.route(PART_URL, self._handle)

    def _handle(self, route):
        part_number = int(PART_URL.search(route.request.url).group(1))
        if part_number in self.held_parts:
            self.held.append(part_number)
            return
        self.sent.append(part_number)
        route.continue_()


def log_in(page, user):
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator(".nav-user")).to_be_visible()


def open_upload_page(page, user, project):
    log_in(page, user)
    page.goto(f"/projects/{project.pk}/")
    page.get_by_role("link", name="Upload files").click()
    expect(page.locator("h1")).to_have_text("Upload files")
    expect(page.locator("#uppy-dashboard .uppy-Dashboard")).to_be_visible()


def add_file(page, path):
    page.locator("#uppy-dashboard input[type=file]").first.set_input_files(path)
    expect(page.locator(".uppy-Dashboard-Item-name")).to_contain_text(path.name)


def start_upload(page):
    page.locator(".uppy-StatusBar-actionBtn--upload").click()


def wait_for_stored_parts(page, count: int, timeout: float = 30) -> UploadSession:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        session = UploadSession.objects.select_related("data_object").first()
        if session is not None:
            stored = object_store().list_parts(session.data_object.storage_key, session.upload_id)
            if len(stored) >= count:
                return session
        page.wait_for_timeout(200)
    raise AssertionError(f"{count} parts were not stored within {timeout:.0f}s")


def test_researcher_uploads_pauses_resumes_and_sees_the_checksum_verified(
    page, live_server, celery_worker_process, researcher, specimen
):
    user, record = researcher
    path, data = specimen
    gate = PartGate(page)
    gate.held_parts = {4}
    open_upload_page(page, user, record.project)

    page.select_option("#upload-record", str(record.pk))
    page.select_option("#upload-tier", "shared")
    add_file(page, path)
    start_upload(page)

    # Parts 1-3 go through, part 4 stalls: both progress bars stop part-way.
    row = page.locator("#upload-results li[data-object-id]")
    bar = row.locator("progress.upload-progress")
    expect(bar).to_be_visible()
    expect(row.locator(".checksum-state")).to_have_text("uploading")
    wait_for_stored_parts(page, 3)
    page.wait_for_function("() => document.querySelector('#upload-results progress').value >= 50")
    assert 50 <= bar.evaluate("el => el.value") < 100
    total = page.locator(".uppy-StatusBar-progress")  # Uppy's bar for the whole batch
    page.wait_for_function(
        "0 < +document.querySelector('.uppy-StatusBar-progress').getAttribute('aria-valuenow')"
    )
    assert int(total.get_attribute("aria-valuenow")) < 100

    # Pause (Uppy drops the stalled request), then resume with the network back.
    toggle = page.locator("button[data-cy=togglePauseResume]")
    toggle.click()
    expect(toggle).to_have_attribute("aria-label", "Resume")
    gate.held_parts = set()
    toggle.click()

    expect(row.locator(".checksum-state")).to_have_text("verified", timeout=CHECKSUM_TIMEOUT_MS)
    expect(row.locator("code.sha256")).to_have_text(hashlib.sha256(data).hexdigest())
    assert sorted(gate.sent) == [1, 2, 3, 4]  # nothing sent twice
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert data_object.original_filename == path.name
    assert data_object.size == SIZE
    assert data_object.record == record
    assert data_object.uploaded_by == user
    assert data_object.tier == "shared"
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    expect(row.locator("a.upload-filename")).to_have_attribute(
        "href", f"/objects/{data_object.pk}/"
    )


def test_upload_continues_after_a_reload_without_sending_stored_parts_again(
    page, live_server, celery_worker_process, researcher, specimen
):
    user, record = researcher
    path, data = specimen
    gate = PartGate(page)
    gate.held_parts = {3, 4}
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)
    session = wait_for_stored_parts(page, 2)

    gate.held_parts = set()
    gate.sent.clear()
    page.reload()

    # Golden Retriever brings the file back as a ghost (too big to keep in the browser).
    expect(page.locator("#uppy-dashboard")).to_contain_text(path.name)
    row = page.locator(f"#upload-results li[data-object-id='{session.data_object_id}']")
    expect(row.locator(".checksum-state")).to_have_attribute("data-state", "interrupted")
    page.locator(".uppy-Dashboard-Item-reSelect").click()
    page.locator("#uppy-dashboard input[type=file]").first.set_input_files(path)
    start_upload(page)

    expect(row.locator(".checksum-state")).to_have_text("verified", timeout=CHECKSUM_TIMEOUT_MS)
    expect(row.locator("code.sha256")).to_have_text(hashlib.sha256(data).hexdigest())
    assert sorted(gate.sent) == [3, 4]
    assert DataObject.objects.get(pk=session.data_object_id).size == SIZE


def test_removing_a_file_mid_upload_aborts_its_upload(page, live_server, researcher, specimen):
    user, record = researcher
    path, _ = specimen
    gate = PartGate(page)
    gate.held_parts = {4}
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)
    session = wait_for_stored_parts(page, 3)

    page.locator(".uppy-Dashboard-Item-action--remove").click()

    deadline = time.monotonic() + 15
    while DataObject.objects.get(pk=session.data_object_id).status != "abandoned":
        assert time.monotonic() < deadline, "the upload was not aborted"
        page.wait_for_timeout(200)
    expect(page.locator("#upload-results li")).to_have_count(0)


def test_the_batch_needs_a_record_and_server_errors_show_next_to_the_file(
    page, live_server, researcher, specimen
):
    user, record = researcher
    path, _ = specimen
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_upload_page(page, user, record.project)
    add_file(page, path)

    start_upload(page)
    expect(page.locator("#upload-record-errors")).to_contain_text("Choose the DMP record")
    expect(page.locator("#upload-record")).to_be_focused()
    assert not DataObject.objects.exists()

    page.select_option("#upload-tier", "embargoed")
    expect(page.locator("#upload-available-date")).to_be_visible()
    page.select_option("#upload-record", str(record.pk))
    start_upload(page)
    expect(page.locator("#upload-available-date-errors")).to_contain_text("available date")
    assert not DataObject.objects.exists()

    # The server refuses the file (over the project's quota): its message is shown.
    record.project.quota_bytes = MIB
    record.project.save(update_fields=["quota_bytes"])
    page.select_option("#upload-tier", "non_shared")
    start_upload(page)
    row = page.locator("#upload-results li")
    expect(row.locator(".checksum-state")).to_have_text("upload failed")
    expect(row.locator(".upload-errors")).to_contain_text("quota")
    assert not DataObject.objects.exists()
    assert errors == []
