"""kura-upload with many small files: sent --jobs at a time with one PUT each, started and
completed in batches, skipped on a rerun when Kura already holds them; against the suite's
S3 server (SeaweedFS) and a real Celery worker, the client in its own process."""

import http.server
import re
import threading

import pytest

from repository.models import DataObject, UploadSession
from repository.preservation.object_store import SINGLE_PUT_UPLOAD_ID

from .test_kura_upload import (
    MIB,
    SUMMARY,
    kura_upload,
    one_line_error,
    researcher,  # noqa: F401 - fixture
    stdout_rows,
    write_random,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

COUNTS = re.compile(r"already_in_kura=(\d+) failed=(\d+)")


def _folder(root, count: int, size: int = 20_000) -> dict[str, str]:
    """``count`` small files of random bytes under ``root``; {name in Kura: SHA-256}."""
    expected = {}
    for n in range(count):
        sub = f"plate{n // 10}"
        expected[f"{sub}__well_{n:03d}.bin"] = write_random(
            root / sub / f"well_{n:03d}.bin", size + n
        )
    return expected


def test_many_small_files_go_in_parallel_with_one_put_each_and_end_verified(
    live_server,
    celery_worker_process,
    researcher,  # noqa: F811
    tmp_path,
):
    data = tmp_path / "plates"
    expected = _folder(data, 45)
    expected["big.raw"] = write_random(data / "big.raw", 9 * MIB + 3)  # two parts

    result = kura_upload(
        "--project", researcher.project_id, "--record", researcher.record.pk,
        "--jobs", 4, "--wait", data,
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    sent, already, _bytes = map(int, SUMMARY.search(result.stderr).groups())
    assert (sent, already) == (45 + 2, 0)  # one PUT per small file, two parts for big.raw
    assert COUNTS.search(result.stderr).groups() == ("0", "0")
    for name in expected:
        assert f"{name}: sent" in result.stderr  # a progress line per file
    rows = stdout_rows(result)
    assert set(rows) == set(expected)
    for name, sha256 in expected.items():
        object_id, state, reported = rows[name]
        data_object = DataObject.objects.get(pk=object_id)
        assert (state, reported) == ("verified", sha256)
        assert data_object.sha256 == data_object.client_sha256 == sha256  # end to end
        assert data_object.record_id == researcher.record.pk
    single = UploadSession.objects.filter(upload_id=SINGLE_PUT_UPLOAD_ID).count()
    assert single == 45
    assert not list((tmp_path / "cache").rglob("*.json")), "no state is left after success"

    # The same command again: everything is in Kura, verified; nothing is sent.
    again = kura_upload(
        "--project", researcher.project_id, "--record", researcher.record.pk, "--jobs", 4, data,
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert again.returncode == 0, again.stderr
    assert SUMMARY.search(again.stderr).groups() == ("0", "0", "0")
    assert COUNTS.search(again.stderr).groups() == (str(len(expected)), "0")
    assert again.stderr.count("already in Kura (object ") == len(expected)
    assert stdout_rows(again) == rows
    assert DataObject.objects.count() == len(expected)  # nothing uploaded twice


def test_a_changed_file_is_sent_again_on_a_rerun(
    live_server,
    celery_worker_process,
    researcher,  # noqa: F811
    tmp_path,
):
    data = tmp_path / "d"
    expected = _folder(data, 3)
    run = {"url": live_server.url, "token": researcher.token, "cwd": tmp_path}
    args = ["--project", researcher.project_id, "--record", researcher.record.pk, "--wait", data]
    assert kura_upload(*args, **run).returncode == 0
    changed = data / "plate0" / "well_001.bin"
    size = changed.stat().st_size
    expected["plate0__well_001.bin"] = write_random(changed, size)  # same name and size

    again = kura_upload(*args, **run)

    assert again.returncode == 0, again.stderr
    assert COUNTS.search(again.stderr).groups() == ("2", "0")
    assert SUMMARY.search(again.stderr).groups()[0] == "1"
    rows = stdout_rows(again)
    assert rows["plate0__well_001.bin"][1:] == ("verified", expected["plate0__well_001.bin"])
    assert DataObject.objects.count() == 4  # the old version stays; Kura keeps both


def test_a_refused_file_fails_alone_and_the_others_are_sent(
    live_server,
    celery_worker_process,
    researcher,  # noqa: F811
    tmp_path,
):
    data = tmp_path / "d"
    expected = _folder(data, 6)
    write_random(data / "evil\u202egpj.exe", 100)  # a spoofing name: refused by Kura

    result = kura_upload(
        "--project", researcher.project_id, "--jobs", 3, data,
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    assert "U+202E" in result.stderr.strip().splitlines()[-1]
    assert result.stderr.strip().splitlines()[-1].startswith("kura-upload: error: could not")
    assert COUNTS.search(result.stderr).groups() == ("0", "1")
    stored = set(DataObject.objects.values_list("original_filename", flat=True))
    assert stored == set(expected)


def test_no_permission_is_still_one_line(
    live_server,
    researcher,  # noqa: F811
    tmp_path,
):
    from tests.factories import ProjectFactory

    write_random(tmp_path / "a.bin", 1000)

    result = kura_upload(
        "--project", ProjectFactory().pk, tmp_path / "a.bin",
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    message = one_line_error(result)
    assert "no permission" in message and "(403)" in message


# --- Retries: busy answers again, a full disk and refusals not ---------------------------------


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers each request with the next (status, headers) of the server's script."""

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.server.seen += 1
        status, headers = self.server.script.pop(0)
        body = b'{"status": %d, "code": "x", "detail": "scripted"}' % status
        if status == 200:
            body = b'{"uploads": []}'
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.seen = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.mark.parametrize(
    ("script", "requests", "error"),
    [
        ([(503, {"Retry-After": "0"}), (502, {}), (429, {"Retry-After": "0"}), (200, {})], 4, None),
        ([(504, {"Retry-After": "0"}), (200, {})], 2, None),
        ([(507, {})], 1, "(507)"),
        ([(400, {})], 1, "(400)"),
        ([(409, {})], 1, "(409)"),
    ],
)
def test_busy_answers_are_tried_again_but_not_a_full_disk_or_a_refusal(
    scripted_server, script, requests, error
):
    from kura_client.api import KuraApi, KuraError

    scripted_server.script = list(script)
    api = KuraApi(f"http://127.0.0.1:{scripted_server.server_port}", "token", retries=5)
    item = {"filename": "a.bin"}

    if error is None:
        assert api.upload_batch_start([item], skip_identical=True) == []
    else:
        with pytest.raises(KuraError, match=re.escape(error)):
            api.upload_batch_start([item], skip_identical=True)
    assert scripted_server.seen == requests


def test_the_help_says_what_jobs_and_workers_do(tmp_path):
    result = kura_upload("--help", url=None, token=None, cwd=tmp_path)

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--jobs" in text and "small files (up to 8 MiB) sent at once" in text
    assert "parts of one large file sent in parallel" in text
    assert "(507)" in text and "skipped" in text
