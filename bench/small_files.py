"""Thousands of small files through ``kura-upload`` against the store's own limit.

2,000 files of 1 MB (``--files``, ``--size``) of random bytes go to SeaweedFS (started by
this script on free loopback ports, as the test suite starts it) two ways, with the same
concurrency (``--jobs``) and the same integrity work:

(a) **kura** — ``kura-upload --jobs N`` into one project: per file a SHA-256 and an MD5
    (signed into its one PUT URL), batches started and completed in one request each,
    then Kura's worker reads every object back and verifies its SHA-256;
(b) **baseline** — boto3 ``put_object`` of the same files straight to the bucket, each
    with its ``Content-MD5`` and the file's SHA-256 computed by hashlib: what the store and
    this machine allow. Run before and after (a); the faster run counts.

Kura runs on the production profile: gunicorn (2 workers, 8 threads) on a throwaway
PostgreSQL database, one Celery worker (the default prefork pool) on Redis, the real S3
server; both gunicorn workers serve a few empty batch requests before the clock runs (their
first request imports the views). ``files_per_s`` runs from starting ``kura-upload`` to its
exit (every file stored, its checksum queued); ``drain_s`` from that exit until every object
is verified. The CPU per file of each role counts only this run's processes.
Last line: ``files_per_s=… baseline_files_per_s=… small_ratio=… drain_s=…``
(``small_ratio`` = Kura's files/s over the baseline's).

Run: ``.venv/bin/python bench/small_files.py`` (``--files 200`` for a quick run). Never part
of the test suite.
"""

import argparse
import base64
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._harness import django_setup, run_on_throwaway_database  # noqa: E402
from bench.upload import ACCESS_KEY, SECRET_KEY, KuraProcesses, wait_for  # noqa: E402
from tests.seaweedfs import SeaweedFS  # noqa: E402


def write_files(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"sample_{n:05d}.bin").write_bytes(os.urandom(size))


# --- (b) the baseline --------------------------------------------------------------------


def baseline_upload(files: list[Path], jobs: int, prefix: str) -> float:
    """boto3 put_object of every file, ``jobs`` at once, each with Content-MD5 and its
    SHA-256 by hashlib; seconds. The objects are deleted afterwards (not timed)."""
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
            max_pool_connections=jobs * 2,
            # No CRC32 of its own beyond the Content-MD5 (newer botocore adds one): the
            # same integrity work as Kura's sender, no more.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    bucket = settings.AWS_STORAGE_BUCKET_NAME

    def put(path: Path) -> str:
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - S3's
        client.put_object(Bucket=bucket, Key=f"{prefix}/{path.name}", Body=data, ContentMD5=md5)
        return sha256

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        digests = list(pool.map(put, files))
    seconds = time.perf_counter() - started
    assert len(digests) == len(files)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(
            pool.map(lambda p: client.delete_object(Bucket=bucket, Key=f"{prefix}/{p.name}"), files)
        )
    return seconds


# --- Kura as a server: one worker with the default (prefork) pool --------------------------


class Kura(KuraProcesses):
    """gunicorn as bench/upload.py runs it; one Celery worker as the README's deployment
    runs it (the default pool, its default concurrency), consuming both of Kura's queues."""

    def _spawn(self, name: str, command: list[str]) -> None:
        if name == "worker":
            command = [
                str(Path(sys.executable).with_name("celery")),
                "-A",
                "config",
                "worker",
                f"--queues={self.env['CELERY_TASK_DEFAULT_QUEUE']},"
                f"{self.env['CELERY_TASK_DEFAULT_QUEUE']}-housekeeping",
                "--loglevel=WARNING",
            ]
        super()._spawn(name, command)

    def warm(self, token: str, requests_count: int = 32) -> None:
        """Have every gunicorn worker serve the batch endpoints once before the clock runs:
        a worker imports the URLconf, DRF and the views on its first request (seconds of
        CPU on a busy machine), which a server that has been up for a while has long done.
        Each request is an empty batch (a 400 that starts nothing)."""
        import requests

        def ask(n: int) -> int:
            path = "batch/" if n % 2 else "batch/complete"
            return requests.post(
                f"{self.url}/api/v1/uploads/{path}",
                json={"uploads": []},
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            ).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = set(pool.map(ask, range(requests_count)))
        assert statuses == {400}, statuses


# --- (a) kura-upload ---------------------------------------------------------------------


def kura_upload(kura: Kura, token: str, project, record, folder: Path, jobs: int) -> float:
    command = [
        str(Path(sys.executable).with_name("kura-upload")),
        "--project",
        str(project.pk),
        "--record",
        str(record.pk),
        "--tier",
        "shared",
        "--jobs",
        str(jobs),
        "--state",
        str(folder.parent / "kura-upload.state"),
        "-q",
        str(folder),
    ]
    env = {**os.environ, "KURA_URL": kura.url, "KURA_TOKEN": token}
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own console script
        command, env=env, check=True, timeout=3600, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def drain(project, count: int, timeout: float) -> tuple[float, dict]:
    """Seconds until every object of ``project`` is verified or failed; and the states."""
    from django.db.models import Count

    from repository.models import DataObject

    finished = (DataObject.ChecksumState.VERIFIED, DataObject.ChecksumState.FAILED)
    started = time.perf_counter()

    def done() -> bool:
        objects = DataObject.objects.filter(project=project, checksum_state__in=finished)
        return objects.count() >= count

    wait_for(done, timeout, "the checksums")
    seconds = time.perf_counter() - started
    states = dict(
        DataObject.objects.filter(project=project)
        .values_list("checksum_state")
        .annotate(n=Count("pk"))
        .values_list("checksum_state", "n")
    )
    return seconds, states


# --- Where the CPU goes ------------------------------------------------------------------

ROLES = {"gunicorn": "web", "celery": "worker", "weed": "store", "postgres": "database"}


# Set by main() and measure(): the processes this run started (their descendants count
# as theirs) and its database (only the PostgreSQL backends serving it count). Other
# sessions on a shared machine run gunicorn, Celery and SeaweedFS too.
OWN_ROOTS: set[int] = set()
OWN_DATABASE = ""


def cpu_by_role() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this run's running processes of each
    role (descendants of :data:`OWN_ROOTS`; PostgreSQL backends of :data:`OWN_DATABASE`),
    read from /proc (Linux); the client is counted separately (it has exited)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(ROLES.values(), 0.0)
    processes = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        processes[int(entry.name)] = (command, int(fields[1]), fields)

    def own(pid: int) -> bool:
        seen = set()
        while pid not in seen and pid in processes:
            if pid in OWN_ROOTS:
                return True
            seen.add(pid)
            pid = processes[pid][1]
        return False

    for pid, (command, _parent, fields) in processes.items():
        if command.startswith("postgres:"):
            name = "database" if f" {OWN_DATABASE} " in command else None
        elif own(pid):
            head = command.split(" ", 2)[:2]
            name = next((r for key, r in ROLES.items() if any(key in part for part in head)), None)
        else:
            name = None
        if name is not None:
            used[name] += (int(fields[11]) + int(fields[12])) / tick
    return used


# --- The run -----------------------------------------------------------------------------


def measure(args, work_dir: Path) -> dict:
    import io

    from django.core.management import call_command
    from django.db import connection
    from django.db.models import F

    from accounts.models import Role
    from accounts.tokens import api_token_create
    from repository.models import DataObject
    from tests.factories import DmpRecordFactory, MembershipFactory

    call_command("kura_storage_setup", stdout=io.StringIO())
    membership = MembershipFactory(role=Role.RESEARCHER)
    record = DmpRecordFactory(project=membership.project)
    _, token = api_token_create(user=membership.user, name="bench")
    folder = work_dir / "files"
    write_files(folder, args.files, args.size)
    files = sorted(folder.iterdir())
    os.sync()

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
    kura = Kura(env, work_dir)
    kura.start()
    kura.warm(token)
    global OWN_DATABASE
    OWN_ROOTS.update(process.pid for process in kura.processes)
    OWN_DATABASE = settings_dict["NAME"]
    try:
        baseline_cpu = cpu_by_role()["store"]
        baseline_process = time.process_time()
        baseline_first = baseline_upload(files, args.jobs, "bench/baseline-1")
        print(
            f"baseline: {args.files / baseline_first:.1f} files/s; CPU ms per file: store="
            f"{(cpu_by_role()['store'] - baseline_cpu) * 1000 / args.files:.1f} client="
            f"{(time.process_time() - baseline_process) * 1000 / args.files:.1f}"
            " (both include deleting the objects afterwards)",
            flush=True,
        )
        cpu_before = cpu_by_role()
        client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        kura_seconds = kura_upload(kura, token, membership.project, record, folder, args.jobs)
        print(f"kura-upload: {args.files / kura_seconds:.1f} files/s", flush=True)
        drain_seconds, states = drain(membership.project, args.files, args.drain_timeout)
        cpu_after = cpu_by_role()
        client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        client = (client_after.ru_utime + client_after.ru_stime) - (
            client_before.ru_utime + client_before.ru_stime
        )
        per_file = {role: (cpu_after[role] - cpu_before[role]) for role in cpu_after}
        per_file["client"] = client
        print(
            "CPU ms per file (upload and verification): "
            + " ".join(
                f"{role}={seconds * 1000 / args.files:.1f}" for role, seconds in per_file.items()
            ),
            flush=True,
        )
        end_to_end = DataObject.objects.filter(
            project=membership.project, sha256=F("client_sha256")
        ).count()
        print(f"drained in {drain_seconds:.1f} s: {states}; end to end: {end_to_end}", flush=True)
        baseline_second = baseline_upload(files, args.jobs, "bench/baseline-2")
        print(f"baseline again: {args.files / baseline_second:.1f} files/s", flush=True)
    finally:
        kura.stop()
    return {
        "files_per_s": args.files / kura_seconds,
        "baseline_files_per_s": args.files / min(baseline_first, baseline_second),
        "drain_s": drain_seconds,
        "verified": states.get(DataObject.ChecksumState.VERIFIED, 0),
        "end_to_end": end_to_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes per file")
    parser.add_argument("--jobs", type=int, default=8, help="files in flight, both ways")
    parser.add_argument("--drain-timeout", type=float, default=1800)
    parser.add_argument(
        "--database-url", default="postgres://postgres@127.0.0.1:5432/kura_bench_small"
    )
    args = parser.parse_args()
    work_dir = Path(tempfile.mkdtemp(prefix="kura-bench-small-"))
    weed = SeaweedFS(work_dir / "seaweedfs", access_key=ACCESS_KEY, secret_key=SECRET_KEY)
    endpoint = weed.start()
    OWN_ROOTS.add(weed.process.pid)
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
        result = run_on_throwaway_database(lambda: measure(args, work_dir))
    finally:
        weed.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
    print(
        f"{args.files} files of {args.size} bytes, --jobs {args.jobs}:"
        f" {result['verified']} verified, {result['end_to_end']} end to end"
    )
    print(
        f"files_per_s={result['files_per_s']:.1f}"
        f" baseline_files_per_s={result['baseline_files_per_s']:.1f}"
        f" small_ratio={result['files_per_s'] / result['baseline_files_per_s']:.2f}"
        f" drain_s={result['drain_s']:.1f}"
    )


if __name__ == "__main__":
    main()
