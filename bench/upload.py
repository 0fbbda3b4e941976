"""Upload throughput to a real S3 server: the browser, ``kura-upload``, and the store's limit.

One file of 1.5 GiB (``--size-mib``) of random bytes goes to SeaweedFS (started by this
script on free loopback ports, as the test suite starts it) three ways, each with its
integrity work included:

(a) **browser** — Uppy in headless Chromium on Kura's upload page: one read of the file in
    a Web Worker for each part's MD5 and SHA-256 (the completion's digest is the SHA-256 of
    the parts' SHA-256s); parts signed ahead, six per request, each URL bound to its part's
    MD5;
(b) **cli** — ``kura-upload`` with the same parallelism: part MD5s and the SHA-256 from
    the same reads;
(c) **baseline** — boto3's own multipart upload straight to the bucket with the same part
    size and parallelism, each part sent with its ``Content-MD5`` and the whole file's
    SHA-256 computed as it is read: what the store and this machine allow.

Kura runs as in production: gunicorn (threads) on a throwaway PostgreSQL database, a real
Celery worker on Redis. Each path's time runs from the first request to the completed
upload; afterwards the bench waits until Kura's worker has verified the object and reads
its ``integrity``. Ratios are each path's MB/s over the baseline's, measured in this run.
Last line: ``browser_ratio=… cli_ratio=… end_to_end=yes|no`` (yes when both paths' objects
ended verified end to end).

Run: ``.venv/bin/python bench/upload.py``. Never part of the test suite.
"""

import argparse
import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import django_setup, run_on_throwaway_database  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS  # noqa: E402 - the suite's Chromium flags
from tests.seaweedfs import SeaweedFS  # noqa: E402

MIB = 1024**2
PATHS = ("baseline", "cli", "browser")
PARALLEL = 6  # the browser's requests at once (Uppy's limit on the upload page)
PASSWORD = "bench-password-1"  # noqa: S105 - a throwaway user on a throwaway database
ACCESS_KEY, SECRET_KEY = "KURABENCHACCESSKEY01", "kura-bench-secret-key-0123456789abcdefghij"


def write_random(path: Path, size: int) -> None:
    with path.open("wb") as fh:
        left = size
        while left:
            chunk = os.urandom(min(left, 64 * MIB))
            fh.write(chunk)
            left -= len(chunk)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise SystemExit(f"{what}: not within {timeout:.0f}s")


# --- (c) the baseline --------------------------------------------------------------------


def baseline_upload(path: Path, part_size: int) -> float:
    """boto3 multipart upload with Content-MD5 per part and the file's SHA-256; seconds.

    The client computes no checksum of its own beyond the Content-MD5 it is given (newer
    botocore adds a CRC32 to every part by default), so the baseline does the same
    integrity work as Kura's senders, no more."""
    import boto3
    from botocore.config import Config
    from django.conf import settings

    client = boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
        aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
        region_name=settings.AWS_S3_REGION_NAME,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            max_pool_connections=PARALLEL * 2,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    key = "bench/baseline"
    size = path.stat().st_size
    started = time.perf_counter()
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    digest = hashlib.sha256()
    slots = threading.BoundedSemaphore(PARALLEL + 1)

    def put(number: int, data: bytes) -> dict:
        try:
            md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324
            answer = client.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                Body=data,
                ContentMD5=md5,
            )
            return {"PartNumber": number, "ETag": answer["ETag"]}
        finally:
            slots.release()

    futures = []
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool, path.open("rb") as fh:
        number = 0
        while data := fh.read(part_size):
            number += 1
            digest.update(data)
            slots.acquire()
            futures.append(pool.submit(put, number, data))
        parts = [f.result() for f in futures]
    client.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    seconds = time.perf_counter() - started
    assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == size
    digest.hexdigest()
    client.delete_object(Bucket=bucket, Key=key)
    return seconds


# --- Kura as a server --------------------------------------------------------------------


class KuraProcesses:
    def __init__(self, env: dict, log_dir: Path):
        self.env, self.log_dir = env, log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        bin_dir = Path(sys.executable).parent
        subprocess.run(  # noqa: S603 - production serves collected, hashed static files
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        self._spawn(
            "web",
            [
                str(bin_dir / "gunicorn"),
                "config.wsgi",
                f"--bind=127.0.0.1:{self.port}",
                "--workers=2",
                "--threads=8",
                "--timeout=300",
            ],
        )
        self._spawn(
            "worker",
            [
                str(bin_dir / "celery"),
                "-A",
                "config",
                "worker",
                "--pool=solo",
                f"--queues={self.env['CELERY_TASK_DEFAULT_QUEUE']}",
                "--loglevel=WARNING",
            ],
        )
        import requests

        def answers() -> bool:
            try:
                return requests.get(f"{self.url}/healthz", timeout=2).status_code < 500
            except requests.RequestException:
                return False

        wait_for(answers, 60, "Kura's web server")

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.processes.append(
            subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)  # noqa: S603
        )

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_verified(object_id: int) -> str:
    """Wait for the worker; answers the object's integrity ("end_to_end", "at_rest", …)."""
    from repository.models import DataObject

    def done() -> bool:
        state = DataObject.objects.get(pk=object_id).checksum_state
        return state in (DataObject.ChecksumState.VERIFIED, DataObject.ChecksumState.FAILED)

    wait_for(done, 900, f"the checksum of object {object_id}")
    data_object = DataObject.objects.get(pk=object_id)
    if data_object.checksum_state != DataObject.ChecksumState.VERIFIED:
        return "failed"
    return data_object.integrity


# --- (b) kura-upload ---------------------------------------------------------------------


def cli_upload(kura: KuraProcesses, token: str, project, record, path: Path) -> tuple[float, int]:
    from repository.models import DataObject

    command = [
        str(Path(sys.executable).with_name("kura-upload")),
        "--project",
        str(project.pk),
        "--record",
        str(record.pk),
        "--tier",
        "shared",
        "--workers",
        str(PARALLEL),
        "--state",
        str(path.with_suffix(".state")),
        "-q",
        str(path),
    ]
    env = {**os.environ, "KURA_URL": kura.url, "KURA_TOKEN": token}
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, timeout=1800, stdout=subprocess.DEVNULL)  # noqa: S603
    seconds = time.perf_counter() - started
    latest = DataObject.objects.filter(original_filename=path.name).latest("pk")
    return seconds, latest.pk


# --- (a) the browser ---------------------------------------------------------------------


def browser_upload(kura: KuraProcesses, user, project, record, path: Path) -> tuple[float, int]:
    from playwright.sync_api import sync_playwright

    from repository.models import DataObject

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("KURA_CHROMIUM", "/usr/bin/chromium"),
            headless=True,
            args=CHROMIUM_ARGS,
        )
        page = browser.new_context(base_url=kura.url, locale="en-US").new_page()
        page.set_default_timeout(60_000)
        page.goto("/accounts/login/")
        page.locator("#id_username").fill(user.username)
        page.locator("#id_password").fill(PASSWORD)
        page.locator("#login-form button[type=submit]").click()
        page.wait_for_selector(".nav-user")
        page.goto(f"/projects/{project.pk}/upload/")
        page.locator("#upload-record").select_option(str(record.pk))
        page.locator("#upload-tier").select_option("shared")
        page.locator("#uppy-dashboard input[type=file]").first.set_input_files(str(path))
        button = page.locator(".uppy-StatusBar-actionBtn--upload")
        button.wait_for()
        started = time.perf_counter()
        button.click()
        page.wait_for_selector(".upload-result[data-stored]", timeout=1_800_000)
        seconds = time.perf_counter() - started
        browser.close()
    latest = DataObject.objects.filter(original_filename=path.name).latest("pk")
    return seconds, latest.pk


# --- The run -----------------------------------------------------------------------------


def measure(args, endpoint: str, work_dir: Path) -> dict:
    import io

    from django.core.management import call_command
    from django.db import connection

    from accounts.models import Role
    from accounts.tokens import api_token_create
    from repository.preservation.uploads import part_size_for
    from tests.factories import DmpRecordFactory, MembershipFactory

    call_command("kura_storage_setup", stdout=io.StringIO())
    size = args.size_mib * MIB
    part_size = part_size_for(size)
    membership = MembershipFactory(role=Role.RESEARCHER)
    membership.user.set_password(PASSWORD)
    membership.user.save()
    record = DmpRecordFactory(project=membership.project)
    _, token = api_token_create(user=membership.user, name="bench")

    settings_dict = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:"
        f"{settings_dict['PORT']}/{settings_dict['NAME']}",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "bench-only-secret-key-not-used-anywhere-else-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "KURA_VAR_DIR": str(work_dir / "var"),
    }
    kura = KuraProcesses(env, work_dir)
    kura.start()
    try:
        # The paths alternate round by round, so a busy moment on a shared machine hurts
        # each alike; the best round of each path counts, and every object must end verified
        # end to end.
        results = {name: {"mbps": 0.0, "integrity": []} for name in PATHS}
        for round_number in range(1, args.rounds + 1):
            for name in PATHS:
                path = work_dir / f"{name}-{round_number}-specimen.raw"
                write_random(path, size)
                os.sync()
                if name == "baseline":
                    seconds, object_id = baseline_upload(path, part_size), None
                elif name == "cli":
                    seconds, object_id = cli_upload(kura, token, membership.project, record, path)
                else:
                    seconds, object_id = browser_upload(
                        kura, membership.user, membership.project, record, path
                    )
                mbps = size / seconds / 1e6
                integrity = wait_verified(object_id) if object_id else "-"
                print(
                    f"round {round_number} {name}: {seconds:.1f} s, {mbps:.0f} MB/s,"
                    f" integrity {integrity}",
                    flush=True,
                )
                results[name]["mbps"] = max(results[name]["mbps"], mbps)
                results[name]["integrity"].append(integrity)
                path.unlink()
        return results
    finally:
        kura.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=1536)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/kura_bench_upload"
    )
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="kura-bench-upload-"))
    weed = SeaweedFS(work_dir / "seaweedfs", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    endpoint = weed.start()
    try:
        django_setup(
            args.database_url,
            KURA_STORAGE="s3",
            AWS_S3_ENDPOINT_URL=endpoint,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_STORAGE_BUCKET_NAME="kura-bench",
            CELERY_TASK_DEFAULT_QUEUE=f"kura-bench-{os.getpid()}",
        )
        results = run_on_throwaway_database(lambda: measure(args, endpoint, work_dir))
    finally:
        weed.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    baseline = results["baseline"]["mbps"]
    end_to_end = all(
        integrity == "end_to_end"
        for path in ("browser", "cli")
        for integrity in results[path]["integrity"]
    )
    print(", ".join(f"{name} {results[name]['mbps']:.0f} MB/s" for name in PATHS))
    print(
        f"browser_ratio={results['browser']['mbps'] / baseline:.2f} "
        f"cli_ratio={results['cli']['mbps'] / baseline:.2f} "
        f"end_to_end={'yes' if end_to_end else 'no'}"
    )


if __name__ == "__main__":
    main()
