"""The upload page in Chromium on the embedded profile, the one ``bin/run`` starts.

SQLite, the filesystem store (parts are PUT to Kura's own ``part_put`` view) and kombu's
filesystem broker, with a two-process Celery worker and Celery beat beside Django's
development server (tests/embedded.py starts them all in a temporary var folder).
A researcher drops a batch of thirty small files and a gigabyte at once, and reloads the
page halfway through a large upload and continues it: every file must end verified end to
end (Kura's SHA-256 of the stored bytes equals the one the browser computed), with no
HTTP 5xx in the server's log and no ghost or duplicate on any page.
"""

import collections
import gzip
import hashlib
import io
import os
import random
import re
import shutil
import time
from pathlib import Path

import numpy
import pytest
import tifffile
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from tests.embedded import (
    DEMO_PASSWORD,
    EmbeddedKura,
    ThrottlingProxy,
    embedded_kura_start,
)

pytestmark = [pytest.mark.e2e, pytest.mark.large]

MIB = 1024 * 1024
GIB = 1024 * MIB
BATCH_LARGE_SIZE = GIB + 123_457  # over a gigabyte, with a short last part
RESUME_SIZE = 768 * MIB + 77_777
RESUME_RATE = 4 * 1000 * 1000  # bytes a second per connection: two seconds a part
BATCH_TIMEOUT = 13 * 60  # seconds for the whole batch to be verified (two shared cores)
RESUME_TIMEOUT = 8 * 60
STALL_TIMEOUT = 3 * 60  # no row changed for this long: something is stuck
UPLOAD_PART = re.compile(r"/api/v1/uploads/part(\?|$)")
SIGN_PARTS = re.compile(r"/api/v1/uploads/\d+/parts$")
UPLOAD_API = re.compile(r"/api/v1/uploads/(\d+/parts)?$")  # start an upload, sign parts


@pytest.fixture(scope="module")
def kura(tmp_path_factory):
    var_dir = tmp_path_factory.mktemp("kura-var")
    stack = embedded_kura_start(var_dir)
    yield stack
    stack.stop()
    # The stored bytes are gigabytes; the logs and the database stay for a look afterwards.
    for folder in ("media", "uploads"):
        shutil.rmtree(var_dir / folder, ignore_errors=True)


@pytest.fixture
def context(browser, kura):
    context = browser.new_context(base_url=kura.url, locale="en-US")
    context.set_default_timeout(30_000)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


@pytest.fixture
def proxy(kura):
    proxy = ThrottlingProxy(kura.port, RESUME_RATE)
    yield proxy
    proxy.close()


@pytest.fixture
def slow_page(browser, proxy):
    """A page that reaches the server through a slower network (ThrottlingProxy)."""
    context = browser.new_context(base_url=proxy.url, locale="en-US")
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


# --- Files, made the way instruments and pipelines write them ---------------------------


def fastq_gz(seed: int, reads: int = 200) -> bytes:
    rng = random.Random(seed)
    records = []
    for n in range(reads):
        length = rng.randint(50, 150)
        sequence = "".join(rng.choice("ACGT") for _ in range(length))
        quality = "".join(rng.choice("#+5?AFIJ") for _ in range(length))
        records.append(f"@read{seed}.{n} 1:N:0:ATCACG\n{sequence}\n+\n{quality}\n")
    return gzip.compress("".join(records).encode(), mtime=0)


def tiff(seed: int) -> bytes:
    pixels = numpy.random.default_rng(seed).integers(0, 4096, (2, 48, 64), dtype=numpy.uint16)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, photometric="minisblack")
    return buffer.getvalue()


def dicom(seed: int, rows: int = 32, columns: int = 24) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = CTImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CT"
    dataset.Rows, dataset.Columns = rows, columns
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PixelData = random.Random(seed).randbytes(rows * columns * 2)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def csv(seed: int) -> bytes:
    rng = random.Random(seed)
    lines = ["site,date,ch4_flux_mg_m2_h,soil_temp_c"]
    lines += [
        f"P{seed:02d},2025-07-{day:02d},{rng.uniform(0, 40):.3f},{rng.uniform(15, 32):.1f}"
        for day in range(1, 29)
    ]
    return ("\n".join(lines) + "\n").encode()


def small_batch(folder: Path) -> dict[str, bytes]:
    """Thirty files: eight FASTQ.gz, eight TIFF, seven DICOM and seven CSV, all different."""
    files = {}
    for sample in range(1, 5):
        for read in (1, 2):
            files[f"sample{sample}_L001_R{read}_001.fastq.gz"] = fastq_gz(10 * sample + read)
    for n in range(1, 9):
        files[f"liver_{n:04d}_DAPI.tiff"] = tiff(n)
    for n in range(1, 8):
        files[f"ct_slice_{n:03d}.dcm"] = dicom(n)
    for n in range(1, 8):
        files[f"soil_ch4_flux_plot{n:02d}.csv"] = csv(n)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path``, 16 MiB at a time; answer their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(16 * MIB, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def part_md5s(path: Path, part_size: int) -> list[str]:
    """The hex MD5 of each part of ``path`` (the ETag the store answers for it)."""
    digests = []
    with path.open("rb") as fh:
        while chunk := fh.read(part_size):
            digests.append(hashlib.md5(chunk, usedforsecurity=False).hexdigest())
    return digests


# --- The upload page ------------------------------------------------------------------


def log_in(page, username: str) -> None:
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(DEMO_PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator(".nav-user")).to_be_visible()


def open_upload_page(page, project_id: int) -> None:
    page.goto(f"/projects/{project_id}/")
    page.get_by_role("link", name="Upload files").click()
    expect(page.locator("h1")).to_have_text("Upload files")
    expect(page.locator("#uppy-dashboard .uppy-Dashboard")).to_be_visible()


def add_files(page, paths: list[Path]) -> None:
    page.locator("#uppy-dashboard input[type=file]").first.set_input_files(paths)


def start_upload(page) -> None:
    page.locator(".uppy-StatusBar-actionBtn--upload").click()


ROWS_SCRIPT = """rows => rows.map(row => {
  const state = row.querySelector('.checksum-state');
  const bar = row.querySelector('progress.upload-progress');
  return {
    name: (row.querySelector('.upload-filename') || row).textContent.trim(),
    object: row.dataset.objectId || '',
    state: state ? (state.dataset.state || '') : '',
    text: state ? state.textContent.trim() : '',
    integrity: state ? (state.dataset.integrity || '') : '',
    progress: bar ? bar.value : null,
    errors: (row.querySelector('.upload-errors') || {textContent: ''}).textContent.trim(),
  };
})"""


def result_rows(page) -> list[dict]:
    """Kura's own results list on the upload page, one entry per row."""
    return page.locator("#upload-results > li").evaluate_all(ROWS_SCRIPT)


def wait_until_verified(page, kura: EmbeddedKura, names: set[str], timeout: float) -> float:
    """Wait until the results list shows exactly ``names``, each verified; answer the time.

    Fails early when nothing on the list changed for STALL_TIMEOUT seconds, with each
    row's state and the server's 5xx answers in the message."""
    started = time.monotonic()
    deadline = started + timeout
    last, last_change = None, started
    while True:
        rows = result_rows(page)
        if sorted(r["name"] for r in rows) == sorted(names) and all(
            r["state"] == "verified" for r in rows
        ):
            return time.monotonic() - started
        snapshot = [(r["name"], r["state"], r["progress"], r["errors"]) for r in rows]
        now = time.monotonic()
        if snapshot != last:
            last, last_change = snapshot, now
        if now > deadline or now - last_change > STALL_TIMEOUT:
            states = collections.Counter(f"{r['state']}: {r['text']}" for r in rows)
            unfinished = [r for r in rows if r["state"] != "verified"][:10]
            raise AssertionError(
                f"after {now - started:.0f}s, {len(rows)} rows for {len(names)} files: "
                f"{dict(states)}; unfinished: {unfinished}; server 5xx: "
                f"{kura.server_errors()[:10]}\n{kura.tracebacks()[-3000:]}"
            )
        page.wait_for_timeout(2000)


class PartTraffic:
    """What the page sends: the uploads it starts, the part URLs it gets, the part PUTs.

    Part URLs of the embedded store carry an opaque token, so each PUT is matched to its
    part number through the signing answer that gave its URL. Those answers are read on
    their way to the page (a route), since a reload makes the page's copies unreadable."""

    def __init__(self, page):
        self.uploads: list[dict] = []  # answers of POST /api/v1/uploads/
        self.part_numbers: dict[str, int] = {}  # signed URL -> part number
        self.put: list[str] = []  # part URLs, each time a PUT starts
        self.answered: list[tuple[str, int]] = []  # (URL, status) of PUTs answered
        page.route(UPLOAD_API, self._read_answer)
        page.on("request", self._request)
        page.on("response", self._response)

    def _read_answer(self, route):
        if route.request.method != "POST":
            route.fallback()
            return
        try:
            response = route.fetch()
            if response.ok:
                body = response.json()
                if SIGN_PARTS.search(route.request.url):
                    for part in body["parts"]:
                        self.part_numbers[part["url"]] = part["part_number"]
                else:
                    self.uploads.append(body)
            route.fulfill(response=response)
        except PlaywrightError:
            pass  # the page went away (reloaded) while its request was on the way

    def _request(self, request):
        if request.method == "PUT" and UPLOAD_PART.search(request.url):
            self.put.append(request.url)

    def _response(self, response):
        request = response.request
        if request.method == "PUT" and UPLOAD_PART.search(request.url):
            self.answered.append((request.url, response.status))

    def unanswered(self) -> list[str]:
        """URLs of the PUTs that started and got no answer (cut off, or still going)."""
        answered = collections.Counter(url for url, _ in self.answered)
        return list((collections.Counter(self.put) - answered).elements())

    def number(self, url: str) -> int:
        assert url in self.part_numbers, f"no signing answer gave {url}"
        return self.part_numbers[url]

    def numbers(self, urls) -> list[int]:
        return sorted(self.number(url) for url in urls)


def stored_parts(page, upload_id: int) -> list[dict]:
    """The server's list of the parts it has stored, once it stops changing."""
    previous = None
    for _ in range(30):
        response = page.request.get(f"/api/v1/uploads/{upload_id}/parts")
        assert response.ok, f"{response.status}: {response.text()}"
        parts = sorted(response.json()["parts"], key=lambda p: p["part_number"])
        if parts == previous:
            return parts
        previous = parts
        page.wait_for_timeout(1000)
    raise AssertionError(f"the list of stored parts of upload {upload_id} never settled")


# --- What the pages and the API show --------------------------------------------------


def api_objects(page, project_id: int) -> list[dict]:
    response = page.request.get(f"/api/v1/objects/?project={project_id}&page_size=500")
    assert response.ok, f"{response.status}: {response.text()}"
    body = response.json()
    assert body["next"] is None
    return body["results"]


def database_objects(kura: EmbeddedKura, project_id: int) -> list[tuple]:
    """Every data object row of the project, whoever may see it (ghosts included)."""
    return kura.query(
        "SELECT original_filename, status, checksum_state, sha256, size"
        " FROM repository_dataobject WHERE project_id = ? ORDER BY original_filename",
        (project_id,),
    )


# The files listed on the project page, the DMP record page and the landing page.
PROJECT_ROWS = "section[aria-labelledby=data-objects] table tbody tr"
RECORD_ROWS = "section[aria-labelledby=record-objects] table tbody tr"
LANDING_ROWS = "section[aria-labelledby=files] table tbody tr"
LISTED_SCRIPT = """rows => rows.map(row => ({
  // the name alone: a landing page's cell also holds the file's preview (thumbnail, summary)
  name: (row.querySelector('td.filename .file-name') || row.querySelector('td.filename'))
    .textContent.trim(),
  text: row.textContent.replace(/\\s+/g, ' ').trim(),
  sha256: (row.querySelector('code.checksum') || {textContent: ''}).textContent.trim(),
  states: [...row.querySelectorAll('.state')].map(el => el.className),
}))"""


def page_listing_problems(page, url: str, rows: str, expected: dict[str, str]) -> list[str]:
    """What is wrong with the files ``url`` lists in ``rows``: each of ``expected`` (name:
    SHA-256) exactly once, verified, and nothing else (no ghost, no duplicate)."""
    response = page.goto(url)
    if response is None or response.status != 200:
        return [f"{url}: HTTP {response.status if response else '?'}"]
    listed = page.locator(rows).evaluate_all(LISTED_SCRIPT)
    problems = []
    counts = collections.Counter(row["name"] for row in listed)
    if counts != collections.Counter(expected.keys()):
        extra = {name: n for name, n in counts.items() if expected.get(name) is None or n > 1}
        missing = sorted(set(expected) - set(counts))
        problems.append(f"{url}: listed more than once or unknown {extra}; missing {missing}")
    for row in listed:
        not_verified = [c for c in row["states"] if "state-verified" not in c.split()]
        if not_verified:
            problems.append(f"{url}: {row['name']} is shown as {not_verified}: {row['text']}")
        if row["sha256"] and row["sha256"] != expected.get(row["name"]):
            problems.append(f"{url}: {row['name']} shows SHA-256 {row['sha256']}")
        if re.search(r"uploading|pending|not computed", row["text"], re.IGNORECASE):
            problems.append(f"{url}: {row['name']} is shown as {row['text']!r}")
    return problems


# --- The tests ----------------------------------------------------------------------------


def test_thirty_files_and_a_gigabyte_dropped_at_once_all_end_verified_end_to_end(
    kura, browser, page, tmp_path
):
    ids = kura.projects["batch"]
    small = small_batch(tmp_path / "batch")
    large = tmp_path / "flowcell_A_scan_0001.raw"
    expected = {name: hashlib.sha256(data).hexdigest() for name, data in small.items()}
    sizes = {name: len(data) for name, data in small.items()}
    try:
        expected[large.name] = random_file(large, BATCH_LARGE_SIZE)
        sizes[large.name] = BATCH_LARGE_SIZE
        paths = [tmp_path / "batch" / name for name in small] + [large]
        log_offset = kura.log_offset()

        log_in(page, "researcher")
        open_upload_page(page, ids["project"])
        page.select_option("#upload-record", str(ids["record"]))
        page.select_option("#upload-tier", "shared")
        add_files(page, paths)
        expect(page.locator(".uppy-Dashboard-Item")).to_have_count(len(paths))
        started = time.monotonic()
        start_upload(page)
        seconds = wait_until_verified(page, kura, set(expected), BATCH_TIMEOUT)
        print(f"\n{len(paths)} files verified {seconds:.0f}s after Upload was pressed")
    finally:
        large.unlink(missing_ok=True)

    rows = result_rows(page)
    assert all(row["integrity"] == "end_to_end" for row in rows), rows
    assert len({row["object"] for row in rows}) == len(expected)

    objects = api_objects(page, ids["project"])
    assert sorted(o["filename"] for o in objects) == sorted(expected)
    for data_object in objects:
        name = data_object["filename"]
        assert data_object["status"] == "stored", data_object
        assert data_object["checksum_state"] == "verified", data_object
        assert data_object["integrity"] == "end_to_end", data_object
        assert data_object["sha256"] == expected[name], name
        assert data_object["size"] == sizes[name], name
        assert data_object["record"] == ids["record"]
        assert data_object["tier"] == "shared"
    # Nothing else in the database either: no row left behind by a failed start or retry.
    assert database_objects(kura, ids["project"]) == sorted(
        (name, "stored", "verified", sha256, sizes[name]) for name, sha256 in expected.items()
    )

    assert kura.server_errors(log_offset) == [], kura.tracebacks(log_offset)[-5000:]

    project_url = f"/projects/{ids['project']}/"
    record_url = f"/projects/{ids['project']}/dmp/records/{ids['record']}/"
    landing_url = f"/datasets/{ids['record']}/"
    problems = []
    problems += page_listing_problems(page, project_url, PROJECT_ROWS, expected)
    problems += page_listing_problems(page, record_url, RECORD_ROWS, expected)
    problems += page_listing_problems(page, landing_url, LANDING_ROWS, expected)
    # The project manager and a visitor (the record's metadata is open) see the same files.
    for username in ("pm", None):
        other = browser.new_context(base_url=kura.url, locale="en-US")
        try:
            other_page = other.new_page()
            if username:
                log_in(other_page, username)
                problems += page_listing_problems(other_page, project_url, PROJECT_ROWS, expected)
            problems += page_listing_problems(other_page, landing_url, LANDING_ROWS, expected)
        finally:
            other.close()
    assert problems == []
    print(f"whole test {time.monotonic() - started:.0f}s after Upload was pressed")


def test_a_large_upload_reloaded_halfway_resumes_and_sends_only_the_missing_parts(
    kura, proxy, slow_page, tmp_path
):
    page = slow_page
    ids = kura.projects["resume"]
    path = tmp_path / "liver_RNAseq_S07_R1.raw"
    try:
        sha256 = random_file(path, RESUME_SIZE)
        log_offset = kura.log_offset()
        traffic = PartTraffic(page)
        log_in(page, "researcher")
        open_upload_page(page, ids["project"])
        page.select_option("#upload-record", str(ids["record"]))
        page.select_option("#upload-tier", "shared")
        add_files(page, [path])
        start_upload(page)
        halfway = page.wait_for_function(
            """() => {
              const bar = document.querySelector('#upload-results progress');
              return bar && bar.value >= 50 ? bar.value : false;
            }""",
            polling=50,
            timeout=RESUME_TIMEOUT * 1000,
        ).json_value()
        page.reload()
        reloaded = time.monotonic()

        assert len(traffic.uploads) == 1, traffic.uploads
        upload = traffic.uploads[0]
        part_size, part_count = upload["part_size"], upload["part_count"]
        row = page.locator(f"#upload-results li[data-object-id='{upload['object_id']}']")
        expect(page.locator("#uppy-dashboard")).to_contain_text(path.name)
        expect(row.locator(".checksum-state")).to_have_attribute("data-state", "interrupted")
        choices_after_reload = (
            page.locator("#upload-record").input_value(),
            page.locator("#upload-tier").input_value(),
        )

        # The reload cut off the parts in flight; none of them may be listed as stored
        # unless the store has all of its bytes.
        cut_off = traffic.numbers(traffic.unanswered())
        assert cut_off, "no part was in flight at the reload: nothing was cut off"
        stored = stored_parts(page, upload["id"])
        md5s = part_md5s(path, part_size)
        assert len(md5s) == part_count
        for part in stored:
            number = part["part_number"]
            whole = part_size if number < part_count else RESUME_SIZE - part_size * (number - 1)
            assert (part["size"], part["etag"].strip('"')) == (whole, md5s[number - 1]), (
                f"part {number} is listed as stored but is not the file's part {number} "
                f"({whole} bytes); parts cut off by the reload: {cut_off}"
            )
        stored_numbers = {part["part_number"] for part in stored}
        assert stored_numbers, "no part was stored before the reload"
        assert set(cut_off) - stored_numbers, f"all of {cut_off} were stored whole"

        sent_before = len(traffic.put)
        proxy.rate = 0  # the rest at full speed
        # The same file again, through the row's button: it fills Golden Retriever's ghost in.
        reselect = row.get_by_role("button", name=f"Choose {path.name} again")
        with page.expect_file_chooser() as chooser:
            reselect.click()
        chooser.value.set_files(path)
        expect(reselect).to_have_count(0)
        start_upload(page)
        expect(row.locator(".checksum-state")).to_have_attribute(
            "data-state", "verified", timeout=RESUME_TIMEOUT * 1000
        )
        print(
            f"\nreloaded at {halfway}% with parts {cut_off} in flight; "
            f"{len(stored_numbers)} of {part_count} parts were stored; verified end to end "
            f"{time.monotonic() - reloaded:.0f}s after the reload"
        )
    finally:
        path.unlink(missing_ok=True)

    expect(row.locator(".checksum-state")).to_have_attribute("data-integrity", "end_to_end")
    sent_after = set(traffic.numbers(traffic.put[sent_before:]))
    missing = set(range(1, part_count + 1)) - stored_numbers
    assert sent_after == missing, (
        f"sent again although stored: {sorted(sent_after & stored_numbers)}; "
        f"missing but not sent: {sorted(missing - sent_after)}"
    )
    resent = set(traffic.put[sent_before:])
    answers = [(traffic.number(url), status) for url, status in traffic.answered if url in resent]
    assert [(number, status) for number, status in answers if status != 200] == []

    (data_object,) = api_objects(page, ids["project"])
    assert data_object["filename"] == path.name
    assert data_object["size"] == RESUME_SIZE
    assert data_object["checksum_state"] == "verified"
    assert data_object["integrity"] == "end_to_end"
    assert data_object["sha256"] == sha256
    assert database_objects(kura, ids["project"]) == [
        (path.name, "stored", "verified", sha256, RESUME_SIZE)
    ]
    assert kura.server_errors(log_offset) == [], kura.tracebacks(log_offset)[-5000:]
    # The batch choices came back with the page after the reload.
    assert choices_after_reload == (str(ids["record"]), "shared")
