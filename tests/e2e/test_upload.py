"""The upload page in Chromium: Uppy sends parts straight to the S3 test server, Kura
completes the upload and a real Celery worker verifies the checksum.

Every part goes with the Content-MD5 the browser computed (the store refuses other bytes),
and completion carries the browser's SHA-256 of the file, so the object ends verified end
to end."""

import base64
import datetime
import hashlib
import os
import re
import time

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Role
from repository.models import DataObject, UploadSession
from repository.preservation.object_store import object_store
from repository.preservation.uploads import part_size_for
from tests.factories import PASSWORD, DmpRecordFactory, MembershipFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MIB = 1024 * 1024
PART_SIZE = 8 * MIB  # the server's smallest part size
SIZE = 30 * MIB  # four parts: 8 + 8 + 8 + 6
PART_URL = re.compile(r"[?&]partNumber=(\d+)")
CHECKSUM_TIMEOUT_MS = 120_000
VERIFIED_END_TO_END = "verified end to end"


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
    """Intercepts the browser's part PUTs: records them and can hold some back or corrupt
    them on the way.

    A held request is never answered, as on a stalled connection; it ends when Uppy aborts
    it (pause, removal) or the page goes away. A part in ``delayed_parts`` waits once in
    ``delayed`` until the test lets it go. A part in ``corrupt_parts`` goes to the store
    once with one byte changed (its Content-MD5 still that of the true bytes).
    Playwright runs the handler only while the test waits inside a Playwright call, so
    tests wait with ``page.wait_for_timeout``.
    """

    def __init__(self, page):
        self.held_parts: set[int] = set()
        self.corrupt_parts: set[int] = set()
        self.delayed_parts: set[int] = set()
        self.delayed = []  # routes kept waiting, continued by the test
        self.held: list[int] = []
        self.sent: list[int] = []
        self.content_md5: dict[int, list[str | None]] = {}
        self.statuses: dict[int, list[int]] = {}
        page.route(PART_URL, self._handle)
        page.on("response", self._response)

    def _handle(self, route):
        request = route.request
        if request.method != "PUT":  # the CORS preflight
            route.continue_()
            return
        part_number = int(PART_URL.search(request.url).group(1))
        if part_number in self.held_parts:
            self.held.append(part_number)
            return
        self.sent.append(part_number)
        self.content_md5.setdefault(part_number, []).append(
            request.all_headers().get("content-md5")
        )
        if part_number in self.delayed_parts:
            self.delayed_parts.discard(part_number)
            self.delayed.append(route)
            return
        if part_number in self.corrupt_parts:
            self.corrupt_parts.discard(part_number)
            body = bytearray(request.post_data_buffer)
            body[len(body) // 2] ^= 0xFF
            route.continue_(post_data=bytes(body))
            return
        route.continue_()

    def _response(self, response):
        match = PART_URL.search(response.url)
        if match and response.request.method == "PUT":
            self.statuses.setdefault(int(match.group(1)), []).append(response.status)


def part_md5s(data: bytes) -> dict[int, str]:
    """Each part's Content-MD5 (base64 of the MD5 of its bytes), by part number."""
    return {
        index // PART_SIZE + 1: base64.b64encode(
            hashlib.md5(data[index : index + PART_SIZE], usedforsecurity=False).digest()
        ).decode()
        for index in range(0, len(data), PART_SIZE)
    }


def digest_of_parts(data: bytes) -> str:
    """The SHA-256 of each PART_SIZE part's SHA-256, in order: what the page sends for a
    file of several parts, computed here on its own."""
    joined = b"".join(
        hashlib.sha256(data[index : index + PART_SIZE]).digest()
        for index in range(0, len(data), PART_SIZE)
    )
    return hashlib.sha256(joined).hexdigest()


def completions(page) -> list[dict]:
    """The bodies of the page's completion requests, as they are sent."""
    sent: list[dict] = []

    def record(request):
        if request.method == "POST" and request.url.endswith("/complete"):
            sent.append(request.post_data_json)

    page.on("request", record)
    return sent


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
    completed = completions(page)
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
    # Nothing on the page is animated while bytes move: every frame of an animation is
    # repainted on the thread that also drives the uploads (kura.css says what it cost).
    running = page.evaluate(
        "() => document.getAnimations().filter((a) => a.playState === 'running')"
        ".map((a) => a.animationName || a.transitionProperty)"
    )
    assert running == []
    transitions = page.evaluate(
        "() => [...document.querySelectorAll('.uppy-StatusBar-progress,"
        " .uppy-Dashboard-Item-progressIcon--progress')]"
        ".map((el) => getComputedStyle(el).transitionDuration)"
    )
    assert transitions == ["0s", "0s"]

    # Pause (Uppy drops the stalled request): Kura's row says so too. Then resume with the
    # network back.
    toggle = page.locator("button[data-cy=togglePauseResume]")
    toggle.click()
    expect(toggle).to_have_attribute("aria-label", "Resume")
    expect(row.locator(".checksum-state")).to_have_text("paused")
    gate.held_parts = set()
    toggle.click()
    expect(row.locator(".checksum-state")).not_to_have_text("paused")

    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    expect(row.locator("code.sha256")).to_have_text(hashlib.sha256(data).hexdigest())
    expect(row.locator(".upload-hash")).to_have_text("SHA-256 computed in your browser")
    assert sorted(gate.sent) == [1, 2, 3, 4]  # nothing sent twice
    # Every part went with its own MD5, and completion with the SHA-256 of its parts'.
    assert {n: md5s[0] for n, md5s in gate.content_md5.items()} == part_md5s(data)
    assert [body.get("parts_sha256") for body in completed] == [digest_of_parts(data)]
    assert "sha256" not in completed[0]
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert data_object.original_filename == path.name
    assert data_object.size == SIZE
    assert data_object.record == record
    assert data_object.uploaded_by == user
    assert data_object.tier == "shared"
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.integrity == "end_to_end"
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
    page.select_option("#upload-tier", "shared")
    add_file(page, path)
    start_upload(page)
    session = wait_for_stored_parts(page, 2)

    page.reload()

    # The batch choices are kept; Golden Retriever brings the file back as a ghost (too big
    # to keep in the browser), and the row's button opens the file chooser to give it back.
    expect(page.locator("#upload-record")).to_have_value(str(record.pk))
    expect(page.locator("#upload-tier")).to_have_value("shared")
    expect(page.locator("#uppy-dashboard")).to_contain_text(path.name)
    row = page.locator(f"#upload-results li[data-object-id='{session.data_object_id}']")
    expect(row.locator(".checksum-state")).to_have_attribute("data-state", "interrupted")
    with page.expect_file_chooser():  # Uppy's own "Re-select" opens one too
        page.locator(".uppy-Dashboard-Item-reSelect").click()
    with page.expect_file_chooser() as chooser:
        row.get_by_role("button", name=f"Choose {path.name} again").click()
    chooser.value.set_files(path)
    expect(row.locator(".checksum-state")).to_have_text("interrupted: press Upload to continue")
    expect(row.get_by_role("button", name=f"Choose {path.name} again")).to_have_count(0)
    # Parts 3 and 4 of the page before the reload may reach the gate only now (Playwright
    # hands routes over while the test waits in one of its calls), so the gate holds them
    # until here and counts only what the reloaded page sends.
    gate.held_parts = set()
    gate.sent.clear()
    start_upload(page)

    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    expect(row.locator("code.sha256")).to_have_text(hashlib.sha256(data).hexdigest())
    assert sorted(gate.sent) == [3, 4]
    data_object = DataObject.objects.get(pk=session.data_object_id)
    assert (data_object.size, data_object.tier) == (SIZE, "shared")
    assert data_object.integrity == "end_to_end"


def test_a_part_corrupted_on_the_way_is_refused_by_the_store_and_sent_again(
    page, live_server, celery_worker_process, researcher, specimen
):
    user, record = researcher
    path, data = specimen
    gate = PartGate(page)
    gate.corrupt_parts = {2}
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)

    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    # The store refused the altered bytes (their MD5 is not the signed one); Uppy signed
    # part 2 again and resent it, and only the true bytes were stored.
    assert gate.statuses[2] == [400, 200]
    assert sorted(gate.sent) == [1, 2, 2, 3, 4]
    assert gate.content_md5[2] == [part_md5s(data)[2]] * 2
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert data_object.sha256 == hashlib.sha256(data).hexdigest()
    assert data_object.integrity == "end_to_end"
    stored = object_store().read_range(data_object.storage_key, 0, SIZE)
    assert hashlib.sha256(stored).digest() == hashlib.sha256(data).digest()


def test_a_part_whose_url_expired_on_the_way_is_signed_again(
    page, live_server, celery_worker_process, researcher, specimen, settings
):
    user, record = researcher
    path, data = specimen
    settings.KURA_UPLOAD_PART_URL_EXPIRY = 5
    gate = PartGate(page)
    gate.delayed_parts = {3}
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)

    # Part 3 reaches the store only after its URL expired (a long stall on the way).
    deadline = time.monotonic() + 30
    while not gate.delayed:
        assert time.monotonic() < deadline, "part 3 was never sent"
        page.wait_for_timeout(100)
    page.wait_for_timeout(8_000)
    gate.delayed.pop().continue_()

    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    assert gate.statuses[3] == [403, 200]
    assert gate.content_md5[3] == [part_md5s(data)[3]] * 2
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert data_object.sha256 == hashlib.sha256(data).hexdigest()


def test_batch_choices_are_kept_across_a_reload(page, live_server, researcher):
    user, record = researcher
    other = DmpRecordFactory(project=record.project)
    available = (timezone.localdate() + datetime.timedelta(days=30)).isoformat()
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(other.pk))
    page.select_option("#upload-tier", "embargoed")
    page.locator("#upload-available-date").fill(available)
    page.locator("#upload-available-date").dispatch_event("change")

    page.reload()

    expect(page.locator("#upload-record")).to_have_value(str(other.pk))
    expect(page.locator("#upload-tier")).to_have_value("embargoed")
    expect(page.locator("#upload-available-date")).to_be_visible()
    expect(page.locator("#upload-available-date")).to_have_value(available)


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


def test_after_a_failed_batch_new_files_and_the_failed_ones_go_up_with_upload(
    page, live_server, celery_worker_process, researcher, specimen, tmp_path
):
    user, record = researcher
    path, data = specimen
    small = tmp_path / "notes.csv"
    small.write_bytes(b"sample,reads\n" + os.urandom(64 * 1024).hex().encode())
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    record.project.quota_bytes = MIB
    record.project.save(update_fields=["quota_bytes"])
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)
    failed = page.locator("#upload-results li", has_text=path.name)
    expect(failed.locator(".checksum-state")).to_have_text("upload failed")

    # The quota is raised and another file is added: "Upload" (not only "Retry") is offered
    # and sends both; Uppy and Kura's rows agree on the outcome.
    record.project.quota_bytes = 10 * SIZE
    record.project.save(update_fields=["quota_bytes"])
    page.locator(".uppy-DashboardContent-addMore").click()
    page.locator("#uppy-dashboard input[type=file]").first.set_input_files(small)
    expect(page.locator(".uppy-Dashboard-Item-name")).to_have_count(2)
    expect(failed.locator(".checksum-state")).to_have_text("waiting: press Upload")
    expect(page.locator(".uppy-StatusBar-actionBtn--upload")).to_have_text("Upload 2 files")
    start_upload(page)

    rows = page.locator("#upload-results li")
    expect(rows).to_have_count(2)
    for row in rows.all():
        expect(row.locator(".checksum-state")).to_have_text(
            VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
        )
    expect(page.locator(".uppy-Dashboard-Item.is-complete")).to_have_count(2)
    expect(page.locator(".uppy-Dashboard-Item.is-error")).to_have_count(0)
    stored = DataObject.objects.order_by("original_filename")
    assert [(o.original_filename, o.integrity) for o in stored] == [
        ("notes.csv", "end_to_end"),
        (path.name, "end_to_end"),
    ]
    assert stored.get(original_filename=path.name).sha256 == hashlib.sha256(data).hexdigest()
    assert errors == []


def test_a_busy_server_and_a_lost_request_are_retried_without_failing_the_file(
    page, live_server, celery_worker_process, researcher, specimen
):
    """Kura's API answers 503 with Retry-After while its database is briefly locked; a
    request can also be lost on the network. The page waits as told and asks again."""
    user, record = researcher
    path, data = specimen
    refused: list[float] = []
    lost: list[str] = []
    started: list[float] = []

    def busy_once(route):
        if route.request.method == "POST" and not refused:
            refused.append(time.monotonic())
            route.fulfill(
                status=503,
                headers={"Retry-After": "2", "Content-Type": "application/json"},
                body='{"status": 503, "code": "unavailable", "detail": "busy"}',
            )
            return
        started.append(time.monotonic())
        route.continue_()

    def lost_once(route):
        if not lost:
            lost.append(route.request.url)
            route.abort("connectionreset")
            return
        route.continue_()

    page.route(re.compile(r"/api/v1/uploads/$"), busy_once)
    page.route(re.compile(r"/api/v1/uploads/\d+/parts$"), lost_once)
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)

    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    assert len(refused) == 1 and len(started) == 1
    assert started[0] - refused[0] >= 1.9  # the server's Retry-After was kept
    assert len(lost) == 1
    data_object = DataObject.objects.get()  # one object: the refused start left nothing
    assert data_object.sha256 == hashlib.sha256(data).hexdigest()
    expect(page.locator(".uppy-Dashboard-Item.is-error")).to_have_count(0)


def test_a_second_upload_of_the_same_bytes_is_flagged_with_a_link_to_the_first(
    page, live_server, celery_worker_process, researcher, tmp_path
):
    user, record = researcher
    first, second = tmp_path / "plate_A1.csv", tmp_path / "plate_A1_again.csv"
    data = os.urandom(40_000)
    first.write_bytes(data)
    second.write_bytes(data)
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, first)
    start_upload(page)
    rows = page.locator("#upload-results li[data-object-id]")
    expect(rows.first.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    expect(rows.first.locator(".upload-duplicate")).to_have_count(0)

    page.locator(".uppy-DashboardContent-addMore").click()
    page.locator("#uppy-dashboard input[type=file]").first.set_input_files(second)
    start_upload(page)

    copy_row = page.locator("#upload-results li", has_text="plate_A1_again.csv")
    expect(copy_row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    notice = copy_row.locator(".upload-duplicate")
    expect(notice).to_be_visible()
    original = DataObject.objects.get(original_filename="plate_A1.csv")
    copy = DataObject.objects.get(original_filename="plate_A1_again.csv")
    assert copy.duplicate_of_id == original.pk
    links = [a.get_attribute("href") for a in notice.locator("a").all()]
    assert links == [f"/objects/{original.pk}/", f"/objects/{copy.pk}/"]


def test_a_name_with_a_direction_changing_character_is_refused_in_the_browser(
    page, live_server, researcher
):
    user, record = researcher
    open_upload_page(page, user, record.project)
    files = page.locator("#uppy-dashboard input[type=file]").first
    files.set_input_files(
        [
            {"name": "invoice\u202efdp.exe", "mimeType": "application/pdf", "buffer": b"x" * 64},
            {"name": "notes.csv", "mimeType": "text/csv", "buffer": b"a,b\n1,2\n"},
        ]
    )

    expect(page.locator(".uppy-Informer", has_text="U+202E").first).to_be_visible()
    expect(page.locator(".uppy-Dashboard-Item-name")).to_have_count(1)
    expect(page.locator(".uppy-Dashboard-Item-name")).to_contain_text("notes.csv")
    assert not DataObject.objects.exists()


def test_without_web_workers_the_parts_go_up_unhashed_and_the_object_is_verified_at_rest(
    page, live_server, celery_worker_process, researcher, specimen
):
    """A browser that cannot run the hashing worker still uploads: each part is signed and
    sent without a Content-MD5, no SHA-256 goes with completion, and the object ends
    verified at rest only."""
    user, record = researcher
    path, data = specimen
    page.add_init_script("delete window.Worker;")
    gate = PartGate(page)
    sent = completions(page)
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)

    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        "verified (at rest)", timeout=CHECKSUM_TIMEOUT_MS
    )
    assert sorted(gate.sent) == [1, 2, 3, 4]
    assert all(md5s == [None] for md5s in gate.content_md5.values())
    assert len(sent) == 1 and "sha256" not in sent[0] and "parts_sha256" not in sent[0]
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert data_object.sha256 == hashlib.sha256(data).hexdigest()
    assert data_object.integrity == "at_rest"


def test_a_tier_a_curator_reviews_asks_why_and_the_request_carries_the_answer(
    page, live_server, researcher, tmp_path
):
    from repository.models import TierChangeRequest

    user, record = researcher
    path = tmp_path / "figure-3.csv"
    path.write_bytes(b"sample,count\na,1\n")
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    expect(page.locator("#upload-reason")).to_be_hidden()  # non-shared: nobody reviews it

    page.select_option("#upload-tier", "public")
    expect(page.locator("#upload-reason")).to_be_visible()
    add_file(page, path)
    start_upload(page)

    expect(page.locator("#upload-reason-errors")).to_contain_text("Say why")
    expect(page.locator("#upload-reason")).to_be_focused()
    assert not DataObject.objects.exists()

    page.locator("#upload-reason").fill("The data behind figure 3 of the accepted paper.")
    start_upload(page)

    expect(page.locator("#upload-results li a.upload-filename")).to_have_text(path.name)
    tier_request = TierChangeRequest.objects.get()
    assert tier_request.reason == "The data behind figure 3 of the accepted paper."
    assert tier_request.requested_tier == "public"


def test_without_web_crypto_the_parts_are_hashed_in_webassembly_to_the_same_digest(
    page, live_server, celery_worker_process, researcher, specimen
):
    """A page served where Web Crypto is missing (plain HTTP to a host other than
    localhost) hashes each part with hash-wasm instead: the same digest of the parts goes
    with completion and the object ends verified end to end."""
    user, record = researcher
    path, data = specimen

    served = []

    def without_web_crypto(route):
        script = route.fetch().text()
        served.append("self.crypto && self.crypto.subtle" in script)
        route.fulfill(
            body=script.replace("self.crypto && self.crypto.subtle", "null"),
            content_type="text/javascript",
        )

    page.route(re.compile(r"/upload-hasher[^/]*\.js"), without_web_crypto)
    sent = completions(page)
    open_upload_page(page, user, record.project)
    page.select_option("#upload-record", str(record.pk))
    add_file(page, path)
    start_upload(page)

    row = page.locator("#upload-results li[data-object-id]")
    expect(row.locator(".checksum-state")).to_have_text(
        VERIFIED_END_TO_END, timeout=CHECKSUM_TIMEOUT_MS
    )
    assert served and all(served)  # every hashing worker ran without Web Crypto
    assert [body.get("parts_sha256") for body in sent] == [digest_of_parts(data)]
    data_object = DataObject.objects.get(pk=row.get_attribute("data-object-id"))
    assert data_object.integrity == "end_to_end"


def test_the_page_cuts_a_file_into_the_parts_the_server_expects(browser, settings):
    """Uppy cuts a file into parts before Kura's upload of it has started when the page
    could not start it first: the page's own rule must then give the server's part size."""
    source = (settings.BASE_DIR / "static" / "js" / "uploader.js").read_text()
    rule = re.search(r"\n  function partSizeFor\(file\) \{\n(.*?)\n  \}\n", source, re.S)
    config = {
        "min_part_size": settings.KURA_UPLOAD_MIN_PART_SIZE,
        "max_parts": settings.KURA_UPLOAD_MAX_PARTS,
        "parts_per_file": settings.KURA_UPLOAD_PARTS_PER_FILE,
        "large_part_size": settings.KURA_UPLOAD_LARGE_PART_SIZE,
    }
    sizes = [1, 8 * MIB, 512 * MIB, 512 * MIB + 1, 1536 * MIB + 77, 2048 * MIB, 80_001 * MIB]
    sizes += [320_000 * MIB, 320_000 * MIB + 1, 5 * 1024**4]
    context = browser.new_context()
    try:
        page = context.new_page()
        cut = page.evaluate(
            """([rule, config, sizes]) => {
                const partSizeFor = new Function("config", "file", rule);
                return sizes.map((size) => partSizeFor(config, { size, meta: {} }));
            }""",
            [rule.group(1), config, sizes],
        )
    finally:
        context.close()
    assert cut == [part_size_for(size) for size in sizes]
