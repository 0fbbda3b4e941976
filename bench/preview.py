"""Previews: the IIIF pyramid of a 20,000 x 20,000 image, its tiles served warm, and the
summary of a 2 GB FASTQ.gz against ``gzip -dc``.

Made at run time under a temporary folder (``/tmp``): a 20,000 x 20,000 RGB pyramidal
TIFF (libvips, JPEG-compressed 256-pixel tiles) and a FASTQ.gz of ``--fastq-mb`` MB
(2,048 by default; 150-base reads, a tenth of them shorter, Phred+33 qualities), both
uploaded to a SeaweedFS S3 server this script starts on free loopback ports
(``tests/seaweedfs.py``, as the suite does).

* ``pyramid_s``: the preview service's image work (``previews.services``: the object read
  from S3 to the worker's disk, libvips ``dzsave`` of the IIIF 3 tiles, every tile and the
  thumbnail written to S3) in a child process of its own, whose peak RSS (``wait4``) is
  that of the preview work alone, Python and Django included.
* ``tile_ms_p50``, ``tile_ms_p95``: GETs of tiles through Django's full stack (sessions,
  the access check in ``repository/access.py``, the read from S3) with a throwaway
  PostgreSQL database, after a warm-up; tiles drawn at random from every pyramid level.
* ``fastq_summary_ratio``: the summary pass's MB/s (compressed bytes per second, reading
  the stored file on the filesystem profile) divided by ``gzip -dc file > /dev/null``'s
  on the same file, runs alternating, median of each; the S3 figure is printed too.
* ``peak_rss_mib``: the largest peak RSS of the pyramid and summary children.

Targets (issue 20): tile p95 <= 100 ms warm, ratio >= 0.7, peak RSS <= 400 MiB.
Run: ``.venv/bin/python bench/preview.py [--fastq-mb 2048] [--side 20000]``. Never part
of the test suite.
"""

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MIB = 1024**2
IMAGE_KEY = "objects/be/bench-image"
FASTQ_KEY = "objects/be/bench-reads"
BUCKET = "kura-bench"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "KURABENCHACCESSKEY01",
    "AWS_SECRET_ACCESS_KEY": "kura-bench-secret-key-0123456789abcdefghij",
}


# --- Inputs ------------------------------------------------------------------------------


def write_image(path: Path, side: int) -> None:
    """An RGB gradient with a checker pattern (no two tiles alike), as a pyramidal TIFF."""
    import pyvips

    x = pyvips.Image.xyz(side, side)
    red = (x[0] * 255 / side).cast("uchar")
    green = (x[1] * 255 / side).cast("uchar")
    blue = ((x[0] // 97 + x[1] // 61) % 2 * 180 + 40).cast("uchar")
    image = red.bandjoin([green, blue]).copy(interpretation="srgb")
    image.tiffsave(
        str(path), tile=True, tile_width=256, tile_height=256, pyramid=True,
        compression="jpeg", Q=85, bigtiff=True,
    )  # fmt: skip


def write_fastq(path: Path, size_mb: int) -> None:
    """A gzip FASTQ of about ``size_mb`` MB: a pool of random records, shuffled again for
    every stretch (ISA-L level 1, so that making it takes seconds, not minutes)."""
    import numpy as np
    from isal import igzip

    rng = np.random.default_rng(20)
    bases = np.frombuffer(b"ACGTN", np.uint8)
    pool = []
    for n in range(20_000):
        length = 150 if n % 10 else int(rng.integers(50, 151))
        sequence = bases[rng.choice(5, length, p=[0.29, 0.21, 0.21, 0.28, 0.01])].tobytes()
        quality = (np.clip(rng.normal(34, 5, length), 2, 41) + 33).astype(np.uint8).tobytes()
        pool.append(b"@bench:%d 1:N:0:ACGT\n%s\n+\n%s\n" % (n, sequence, quality))
    target = size_mb * 1024**2
    with igzip.open(path, "wb", compresslevel=1) as out:
        while path.stat().st_size < target:
            out.write(b"".join(pool[i] for i in rng.permutation(len(pool))))


def upload(endpoint: str, path: Path, key: str) -> None:
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        client.create_bucket(Bucket=BUCKET)
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    client.upload_file(str(path), BUCKET, key, Config=TransferConfig(multipart_chunksize=64 * MIB))


# --- Children ----------------------------------------------------------------------------


def child_pyramid(side: int) -> dict:
    import django

    django.setup()
    from repository.models import DataObject
    from repository.previews import services

    data_object = DataObject(
        storage_key=IMAGE_KEY,
        technical_metadata={"format": "TIFF", "width": side, "height": side},
    )
    started = time.perf_counter()
    preview = services._image_preview(data_object)
    return {"seconds": time.perf_counter() - started, "preview": preview}


def child_fastq() -> dict:
    import django

    django.setup()
    from repository.models import DataObject
    from repository.preservation.object_store import object_store
    from repository.previews import services

    data_object = DataObject(
        storage_key=FASTQ_KEY, technical_metadata={"format": "FASTQ", "compression": "gzip"}
    )
    size = object_store().size(FASTQ_KEY)
    started = time.perf_counter()
    preview = services._sequencing_preview(data_object)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": size, "reads": preview["summary"]["reads"]}


def child_tiles(preview: dict, requests: int) -> dict:
    from bench._harness import django_setup, run_on_throwaway_database

    django_setup(
        os.environ.get("KURA_BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kura_bench")
    )

    def work() -> dict:
        from django.test import Client

        from accounts.models import Role
        from core.vocabularies import Tier
        from repository.models import DataObject
        from tests.factories import DataObjectFactory, MembershipFactory

        member = MembershipFactory(role=Role.COLLABORATOR)
        data_object = DataObjectFactory(
            project=member.project,
            storage_key=IMAGE_KEY,
            tier=Tier.SHARED,
            checksum_state=DataObject.ChecksumState.VERIFIED,
            preview_state=DataObject.PreviewState.READY,
            preview=preview,
        )
        client = Client()
        client.force_login(member.user)
        plane = preview["planes"][0]
        tile = plane["tile_size"]
        urls = []
        for factor in plane["scale_factors"]:
            region = tile * factor
            for y in range(0, plane["height"], region):
                for x in range(0, plane["width"], region):
                    w, h = min(region, plane["width"] - x), min(region, plane["height"] - y)
                    size = f"{-(-w // factor)},{-(-h // factor)}"
                    urls.append(
                        f"/objects/{data_object.pk}/iiif/0/{x},{y},{w},{h}/{size}/0/default.jpg"
                    )
        chooser = random.Random(7)
        for url in chooser.sample(urls, 30):  # warm-up: connections, code paths
            assert client.get(url).status_code == 200
        timings = []
        for url in (chooser.choice(urls) for _ in range(requests)):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        timings.sort()
        return {
            "tiles": len(urls),
            "p50": statistics.median(timings),
            "p95": timings[int(len(timings) * 0.95) - 1],
        }

    return run_on_throwaway_database(work)


def run_child(args: list[str], env: dict) -> tuple[dict, float]:
    """(the child's JSON answer, its peak RSS in MiB)."""
    process = subprocess.Popen(  # noqa: S603 - this very script
        [sys.executable, __file__, "--child", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child {args[0]} failed")
    return json.loads(output.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def gzip_seconds(path: Path) -> float:
    started = time.perf_counter()
    with open(os.devnull, "wb") as sink:
        subprocess.run(["gzip", "-dc", str(path)], stdout=sink, check=True)  # noqa: S603,S607
    return time.perf_counter() - started


# --- Parent ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=20_000, help="image width and height")
    parser.add_argument("--fastq-mb", type=int, default=2048, help="size of the FASTQ.gz")
    parser.add_argument("--rounds", type=int, default=3, help="gzip and summary runs each")
    parser.add_argument("--tile-requests", type=int, default=400)
    parser.add_argument("--child", nargs="+")
    options = parser.parse_args()
    if options.child:
        kind, *rest = options.child
        if kind == "pyramid":
            answer = child_pyramid(int(rest[0]))
        elif kind == "fastq":
            answer = child_fastq()
        else:
            answer = child_tiles(json.loads(Path(rest[0]).read_text()), int(rest[1]))
        print(json.dumps(answer))
        return

    from tests.seaweedfs import SeaweedFS

    workdir = Path(tempfile.mkdtemp(prefix="kura-bench-preview-", dir="/tmp"))
    seaweedfs = SeaweedFS(
        workdir / "seaweedfs",
        access_key=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        secret_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    try:
        var_dir = workdir / "var"
        image = workdir / "image.tif"
        fastq = var_dir / "media" / FASTQ_KEY
        fastq.parent.mkdir(parents=True)
        started = time.perf_counter()
        write_image(image, options.side)
        megabytes = image.stat().st_size / MIB
        print(f"{options.side} x {options.side} pyramidal TIFF: {megabytes:.0f} MiB"
              f" in {time.perf_counter() - started:.0f} s")  # fmt: skip
        started = time.perf_counter()
        write_fastq(fastq, options.fastq_mb)
        print(f"FASTQ.gz: {fastq.stat().st_size / MIB:.0f} MiB"
              f" in {time.perf_counter() - started:.0f} s")  # fmt: skip
        endpoint = seaweedfs.start()
        upload(endpoint, image, IMAGE_KEY)
        upload(endpoint, fastq, FASTQ_KEY)
        image.unlink()
        base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KURA_"))},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "true",
            "KURA_VAR_DIR": str(var_dir),
            "KURA_PREVIEW_WORK_DIR": str(workdir),
        }
        for name in ("DATABASE_URL", "CELERY_BROKER_URL"):
            base_env.pop(name, None)
        s3_env = {
            **base_env,
            **CREDENTIALS,
            "KURA_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": BUCKET,
            "AWS_S3_ENDPOINT_URL": endpoint,
            "AWS_S3_REGION_NAME": "us-east-1",
        }
        fs_env = {**base_env, "KURA_STORAGE": "filesystem"}
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)

        pyramid, pyramid_rss = run_child(["pyramid", str(options.side)], s3_env)
        plane = pyramid["preview"]["planes"][0]
        print(f"pyramid: {pyramid['seconds']:.1f} s, scale factors {plane['scale_factors']},"
              f" peak rss {pyramid_rss:.0f} MiB", flush=True)  # fmt: skip
        preview_file = workdir / "preview.json"
        preview_file.write_text(json.dumps(pyramid["preview"]))
        tile_env = {
            **s3_env,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "KURA_CACHE_URL": "redis://127.0.0.1:6379/14",
        }
        tiles, _ = run_child(["tiles", str(preview_file), str(options.tile_requests)], tile_env)
        print(f"tiles: {tiles['tiles']} in the pyramid; {options.tile_requests} GETs:"
              f" p50 {tiles['p50']:.1f} ms, p95 {tiles['p95']:.1f} ms", flush=True)  # fmt: skip

        size_mb = fastq.stat().st_size / 1e6
        gzip_rates, summary_rates, summary_rss = [], [], 0.0
        for _ in range(options.rounds):
            gzip_rates.append(size_mb / gzip_seconds(fastq))
            answer, rss = run_child(["fastq"], fs_env)
            summary_rates.append(answer["bytes"] / 1e6 / answer["seconds"])
            summary_rss = max(summary_rss, rss)
            print(f"gzip -dc {gzip_rates[-1]:.0f} MB/s; summary {summary_rates[-1]:.0f} MB/s"
                  f" ({answer['reads']} reads, peak rss {rss:.0f} MiB)", flush=True)  # fmt: skip
        answer, rss = run_child(["fastq"], s3_env)
        summary_rss = max(summary_rss, rss)
        print(f"summary reading from S3: {answer['bytes'] / 1e6 / answer['seconds']:.0f} MB/s"
              f" (peak rss {rss:.0f} MiB)")  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        ratio = statistics.median(summary_rates) / statistics.median(gzip_rates)
        peak = max(pyramid_rss, summary_rss)
        print(
            f"tile_ms_p50={tiles['p50']:.1f} tile_ms_p95={tiles['p95']:.1f} "
            f"pyramid_s={pyramid['seconds']:.1f} fastq_summary_ratio={ratio:.2f} "
            f"peak_rss_mib={peak:.0f}"
        )
    finally:
        seaweedfs.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
