"""kura-upload (client/) against a live Kura: the suite's S3 server (SeaweedFS), a real Celery
worker and the client in its own process, as a person would run it."""

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from accounts.models import Role
from accounts.tokens import api_token_create
from repository.models import DataObject, UploadSession
from repository.preservation.uploads import upload_parts_list
from tests.factories import DmpRecordFactory, MembershipFactory, ProjectFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
SUMMARY = re.compile(r"parts_sent=(\d+) parts_already_stored=(\d+) bytes_sent=(\d+)")


def kura_upload(*args, url, token, cwd, timeout=600) -> subprocess.CompletedProcess:
    """Run the client as a user would (its own interpreter, no Django on its path)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "KURA_", "DATABASE_", "AWS_"))
    }
    env.update(PYTHONPATH=str(ROOT / "client"), XDG_CACHE_HOME=str(cwd / "cache"))
    if url is not None:
        env["KURA_URL"] = url
    if token is not None:
        env["KURA_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "kura_client", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes in 8 MiB chunks (never all in memory); answer the SHA-256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MIB))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kura-upload: error: "), result.stderr
    return lines[0]


@pytest.fixture
def researcher():
    member = MembershipFactory(role=Role.RESEARCHER)
    member.record = DmpRecordFactory(project=member.project)
    member.token = api_token_create(user=member.user, name="cli")[1]
    return member


def stdout_rows(result) -> dict[str, tuple[int, str, str]]:
    """{file name: (object id, checksum state, sha256)} from the client's report."""
    rows = {}
    for line in result.stdout.strip().splitlines():
        object_id, state, sha256, name = line.split("\t")
        rows[name] = (int(object_id), state, sha256)
    return rows


# --- Failures: one line, non-zero exit, nothing stored --------------------------------------


def test_bad_token_exits_non_zero_with_a_clear_message(live_server, researcher, tmp_path):
    write_random(tmp_path / "data" / "a.bin", 1000)

    result = kura_upload(
        "--project", researcher.project_id, tmp_path / "data",
        url=live_server.url, token="kura_000000000000_nope", cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    message = one_line_error(result)
    assert "refused the token (401)" in message and "accounts/tokens/" in message
    assert not DataObject.objects.exists()


def test_revoked_token_is_refused(live_server, researcher, tmp_path):
    from accounts.tokens import api_token_revoke

    api_token_revoke(user=researcher.user, token_pk=researcher.user.api_tokens.get().pk)
    write_random(tmp_path / "a.bin", 1000)

    result = kura_upload(
        "--project", researcher.project_id, tmp_path / "a.bin",
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    assert "(401)" in one_line_error(result)


def test_no_permission_exits_non_zero(live_server, researcher, tmp_path):
    elsewhere = ProjectFactory()
    write_random(tmp_path / "a.bin", 1000)

    result = kura_upload(
        "--project", elsewhere.pk, tmp_path / "a.bin",
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    message = one_line_error(result)
    assert "no permission" in message and "(403)" in message
    assert "You cannot upload to this project." in message
    assert not DataObject.objects.exists()


def test_a_reviewed_tier_needs_a_reason_and_the_curator_reads_it(live_server, researcher, tmp_path):
    from repository.models import TierChangeRequest

    write_random(tmp_path / "a.bin", 1000)
    args = ["--project", researcher.project_id, "--record", researcher.record.pk]

    refused = kura_upload(
        *args, "--tier", "public", tmp_path / "a.bin",
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert refused.returncode == 1
    assert "Say why these data should be opened" in refused.stderr
    assert not DataObject.objects.exists()

    sent = kura_upload(
        *args, "--tier", "public", "--reason", "Supports figure 3.", tmp_path / "a.bin",
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert sent.returncode == 0, sent.stderr
    (tier_request,) = TierChangeRequest.objects.all()
    assert tier_request.reason == "Supports figure 3."


def test_unreachable_server_exits_non_zero(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    write_random(tmp_path / "a.bin", 1000)

    result = kura_upload(
        "--project", 1, "--retries", 0, tmp_path / "a.bin",
        url=f"http://127.0.0.1:{port}", token="kura_000000000000_x", cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 1
    assert f"cannot reach http://127.0.0.1:{port}/" in one_line_error(result)


@pytest.mark.parametrize(
    ("url", "token", "expected"),
    [(None, "kura_x", "--url or KURA_URL"), ("http://127.0.0.1:9", None, "--token or KURA_TOKEN")],
)
def test_missing_configuration_is_a_usage_error(tmp_path, url, token, expected):
    result = kura_upload("--project", 1, tmp_path, url=url, token=token, cwd=tmp_path)

    assert result.returncode == 2
    assert expected in result.stderr


def test_missing_file_exits_non_zero(tmp_path):
    result = kura_upload(
        "--project", 1, tmp_path / "nope.bin", url="http://127.0.0.1:9", token="t", cwd=tmp_path
    )

    assert result.returncode == 1
    assert "no such file or folder" in one_line_error(result)


# --- Folders, resume and verification --------------------------------------------------------


def test_a_folder_is_sent_with_relative_names_and_verified(
    live_server, celery_worker_process, researcher, tmp_path
):
    data = tmp_path / "run7"
    expected = {
        "sample.csv": write_random(data / "sample.csv", 5000),
        "raw__lane1__R1.fastq": write_random(data / "raw" / "lane1" / "R1.fastq", 9 * MIB + 7),
        "raw__lane2__R1.fastq": write_random(data / "raw" / "lane2" / "R1.fastq", 1),
    }
    (data / "empty.txt").touch()

    result = kura_upload(
        "--project", researcher.project_id, "--record", researcher.record.pk, "--wait", data,
        url=live_server.url, token=researcher.token, cwd=tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "skipped empty file" in result.stderr
    rows = stdout_rows(result)
    assert set(rows) == set(expected)
    for name, sha256 in expected.items():
        object_id, state, reported = rows[name]
        data_object = DataObject.objects.get(pk=object_id)
        assert (state, reported) == ("verified", sha256)
        assert data_object.original_filename == name
        assert data_object.record_id == researcher.record.pk
        assert data_object.uploaded_by == researcher.user
        assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
        assert data_object.sha256 == data_object.client_sha256 == sha256
    assert not list((tmp_path / "cache").rglob("*.json")), "no state is left after success"


def _stored_part_count(upload: UploadSession) -> int:
    """The parts Kura reports as stored (each number once), once that count holds still.

    A real S3 server goes on storing the parts that were in flight for a moment after the
    client died, so the count is read until it has not changed for two seconds."""
    counts: list[int] = []
    deadline = time.monotonic() + 60
    while len(counts) < 5 or len(set(counts[-5:])) > 1:
        assert time.monotonic() < deadline, f"the stored part count never settled: {counts}"
        counts.append(len(upload_parts_list(session=upload)))
        time.sleep(0.5)
    return counts[-1]


@pytest.mark.large
def test_a_gigabyte_folder_is_interrupted_resumed_and_verified(
    live_server, celery_worker_process, researcher, tmp_path
):
    data = tmp_path / "imaging"
    sizes = {
        "a_scan.raw": 400 * MIB + 123,
        "b_scan.raw": 400 * MIB + 4567,
        "c_scan.raw": 224 * MIB,
        "meta__d_notes.txt": 3000,
        "meta__e_sheet.csv": 2 * MIB + 1,
        "meta__sub__f_tiny.json": 17,
    }
    expected = {
        name: write_random(data.joinpath(*name.split("__")), size) for name, size in sizes.items()
    }
    assert sum(sizes.values()) >= 1024**3
    args = ["--project", researcher.project_id, "--record", researcher.record.pk, "--workers", 4]
    run = {"url": live_server.url, "token": researcher.token, "cwd": tmp_path}

    # First run: dies abruptly (like kill -9) after 70 parts: a_scan (51 parts) is complete,
    # b_scan is partly stored.
    first = kura_upload(*args, "--stop-after-parts", 70, data, **run)

    assert first.returncode == 75, first.stderr
    completed = UploadSession.objects.filter(completed_at__isnull=False)
    assert [s.data_object.original_filename for s in completed] == ["a_scan.raw"]
    in_flight = UploadSession.objects.get(completed_at__isnull=True)
    assert in_flight.data_object.original_filename == "b_scan.raw"
    stored_before = _stored_part_count(in_flight)
    assert 0 < stored_before < in_flight.part_count
    total_parts = sum(-(-size // (8 * MIB)) for size in sizes.values())

    # Second run, the same command: sends only what the server does not hold yet.
    second = kura_upload(*args, "--wait", data, **run)

    assert second.returncode == 0, second.stderr
    sent, already, _bytes = map(int, SUMMARY.search(second.stderr).groups())
    assert already == stored_before
    assert sent == total_parts - 51 - stored_before
    assert "a_scan.raw: sent earlier" in second.stderr
    rows = stdout_rows(second)
    assert set(rows) == set(expected)
    objects = DataObject.objects.filter(project=researcher.project)
    assert objects.count() == len(expected)  # nothing uploaded twice
    for data_object in objects:
        name = data_object.original_filename
        assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED, name
        assert data_object.sha256 == data_object.client_sha256 == expected[name]
        assert data_object.size == sizes[name]
        assert rows[name] == (data_object.pk, "verified", expected[name])


def test_a_file_changed_between_runs_fails_the_checksum_cross_check(
    live_server, celery_worker_process, researcher, tmp_path
):
    path = tmp_path / "data" / "scan.raw"
    write_random(path, 24 * MIB + 5)
    stat = path.stat()
    run = {"url": live_server.url, "token": researcher.token, "cwd": tmp_path}
    args = ["--project", researcher.project_id, "--workers", 1, path]

    first = kura_upload(*args, "--stop-after-parts", 1, **run)
    assert first.returncode == 75, first.stderr
    # The first part (already on the server) changes; size and modification time do not,
    # so the client trusts the stored part and the server's SHA-256 must disagree.
    with open(path, "r+b") as handle:
        handle.write(b"changed!")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    local_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()

    second = kura_upload(*args, "--wait", **run)

    assert second.returncode == 3, second.stderr
    assert "checksum mismatch: 1 of 1 objects failed verification" in second.stderr
    data_object = DataObject.objects.get()
    assert data_object.checksum_state == DataObject.ChecksumState.FAILED
    assert data_object.client_sha256 == local_sha256 != data_object.sha256
    assert data_object.quarantined_at is not None
    assert f"Kura computed {data_object.sha256}, this machine {local_sha256}" in second.stderr


def test_bin_test_installs_the_console_script():
    script = Path(sys.executable).with_name("kura-upload")

    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)

    assert result.returncode == 0
    assert result.stdout.strip().startswith("kura-upload ")
