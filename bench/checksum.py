"""Throughput and memory of the checksum pass, on the filesystem and on S3.

An object of 2 GiB (``--size-mib``) of random bytes is written once under a temporary
``KURA_VAR_DIR`` (filesystem backend) and uploaded to a SeaweedFS S3 server that this script
starts on free loopback ports (S3 backend; tests/seaweedfs.py, as the suite does). For each
backend the checksum service's streamed pass (``repository.preservation.fixity.object_scan``: ranged
reads in the configured chunk size, SHA-256 and MD5, byte count, format sniffing) runs in a
child process of its own, so the peak RSS reported (the child's ``ru_maxrss``, from
``wait4``) is that of the checksum work alone, Python and Django included.

The baseline, measured in the same run: hashlib computing SHA-256 and MD5 over bytes already
in memory, one after the other, the way a straightforward loop would. It hashes a 256 MiB
buffer 8 times (2 GiB) so that the baseline itself stays small. Ratios above 1 mean the
service beats it (it hashes the two digests in parallel threads).

Run: ``.venv/bin/python bench/checksum.py``. Never part of the test suite.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024**2
BASELINE_BUFFER_MIB = 256
KEY = "objects/be/bench-object"
BUCKET = "kura-bench"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "KURABENCHACCESSKEY01",
    "AWS_SECRET_ACCESS_KEY": "kura-bench-secret-key-0123456789abcdefghij",
}


# --- Children: one measurement each --------------------------------------------------------


def child_baseline(path: str, total_mib: int) -> dict:
    with open(path, "rb") as fh:
        buffer = fh.read(BASELINE_BUFFER_MIB * MIB)
    rounds = max(total_mib // BASELINE_BUFFER_MIB, 1)
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    started = time.perf_counter()
    for _ in range(rounds):
        sha256.update(buffer)
        md5.update(buffer)
    seconds = time.perf_counter() - started
    return {"bytes": rounds * len(buffer), "seconds": seconds}


def child_read_only() -> dict:
    """Only the store's ranged reads, no hashing: what the storage itself can deliver."""
    import django

    django.setup()
    from django.conf import settings

    from repository.preservation.object_store import object_store

    started = time.perf_counter()
    size = 0
    for chunk in object_store().read_chunks(
        KEY, settings.KURA_CHECKSUM_CHUNK_SIZE, settings.KURA_CHECKSUM_RANGE_SIZE
    ):
        size += len(chunk)
    return {"bytes": size, "seconds": time.perf_counter() - started}


def child_service() -> dict:
    import django

    django.setup()
    from django.conf import settings

    from repository.preservation.fixity import object_scan

    started = time.perf_counter()
    scan = object_scan(storage_key=KEY, filename="bench-object.raw")
    seconds = time.perf_counter() - started
    return {
        "bytes": scan.digests.size,
        "seconds": seconds,
        "sha256": scan.digests.sha256,
        "md5": scan.digests.md5,
        "chunk_mib": settings.KURA_CHECKSUM_CHUNK_SIZE / MIB,
        "range_mib": settings.KURA_CHECKSUM_RANGE_SIZE / MIB,
    }


# --- Parent: set up, run the children, report ----------------------------------------------


def run_child(args: list[str], env: dict) -> tuple[dict, float]:
    """(the child's JSON answer, its peak RSS in MiB)."""
    process = subprocess.Popen(  # noqa: S603 - this very script
        [sys.executable, __file__, "--child", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"child {args} failed with {process.returncode}")
    return json.loads(output.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def write_random(path: Path, size_mib: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for _ in range(size_mib // 16):
            fh.write(os.urandom(16 * MIB))
        fh.write(os.urandom((size_mib % 16) * MIB))


def upload_to_s3(endpoint: str, path: Path) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=BUCKET)
    client.upload_file(str(path), BUCKET, KEY, Config=TransferConfig(multipart_chunksize=64 * MIB))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3, help="baseline and fs runs each")
    parser.add_argument("--child", nargs="+")
    options = parser.parse_args()
    if options.child:
        kind, *rest = options.child
        if kind == "baseline":
            answer = child_baseline(rest[0], int(rest[1]))
        elif kind == "read-only":
            answer = child_read_only()
        else:
            answer = child_service()
        print(json.dumps(answer))
        return

    workdir = Path(tempfile.mkdtemp(prefix="kura-bench-"))
    sys.path.insert(0, str(ROOT))
    from tests.seaweedfs import SeaweedFS

    seaweedfs = SeaweedFS(
        workdir / "seaweedfs",
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        var_dir = workdir / "var"
        path = var_dir / "media" / KEY
        print(f"writing {options.size_mib} MiB of random bytes to {path}")
        write_random(path, options.size_mib)
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KURA_"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # Development mode, as before (the default is production, which needs secrets).
            "DJANGO_DEBUG": "true",
            "KURA_VAR_DIR": str(var_dir),
        }
        base_env.pop("DATABASE_URL", None)
        base_env.pop("CELERY_BROKER_URL", None)

        endpoint = seaweedfs.start()
        print(f"uploading it to SeaweedFS S3 at {endpoint}")
        upload_to_s3(endpoint, path)
        s3_env = {
            **base_env,
            **CREDENTIALS,
            "KURA_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
        }
        fs_env = {**base_env, "KURA_STORAGE": "filesystem"}

        def throughput(answer: dict) -> float:
            return answer["bytes"] / answer["seconds"] / MIB

        def measure(name: str, env: dict) -> tuple[float, float]:
            answer, rss = run_child(["service"], env)
            assert answer["bytes"] == options.size_mib * MIB, answer
            digests.add((answer["sha256"], answer["md5"]))
            print(
                f"checksum service, {name}:   {throughput(answer):7.1f} MiB/s  "
                f"(peak rss {rss:.0f} MiB, chunk {answer['chunk_mib']:.0f} MiB, "
                f"range {answer['range_mib']:.0f} MiB)"
            )
            return throughput(answer), rss

        # Baseline and filesystem runs alternate, so a busy moment on a shared machine hurts
        # both alike; the best of each is kept.
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        digests: set = set()
        baselines, fs_runs = [], []
        for _ in range(options.rounds):
            answer, rss = run_child(["baseline", str(path), str(options.size_mib)], base_env)
            baselines.append(throughput(answer))
            print(f"baseline hashlib in memory: {baselines[-1]:7.1f} MiB/s  (rss {rss:.0f} MiB)")
            fs_runs.append(measure("fs", fs_env))
        s3_runs = [measure("s3", s3_env)]
        answer, _ = run_child(["read-only"], s3_env)
        print(
            f"SeaweedFS alone, ranged reads without hashing: {throughput(answer):7.1f} MiB/s "
            "(this bounds the S3 figure)"
        )
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        baseline = max(baselines)
        results = {
            name: (max(t for t, _ in runs) / baseline, max(rss for _, rss in runs))
            for name, runs in (("fs", fs_runs), ("s3", s3_runs))
        }
        assert len(digests) == 1, "the two backends disagree about the same bytes"
        sha256, md5 = digests.pop()
        print(f"sha256={sha256} md5={md5} (same on both backends)")
        peak_rss = max(peak for _, peak in results.values())
        print(
            f"ratio_fs={results['fs'][0]:.2f} ratio_s3={results['s3'][0]:.2f} "
            f"peak_rss_mib={peak_rss:.0f}"
        )
    finally:
        seaweedfs.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
