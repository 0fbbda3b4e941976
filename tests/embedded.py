"""Kura on the embedded profile, started for tests the way ``bin/run`` starts it.

``bin/run`` migrates, prepares the store, loads the demo data, then runs a Celery worker
(two processes), Celery beat and Django's development server: SQLite, the filesystem
store (parts are PUT to Kura's own ``part_put`` view) and kombu's filesystem broker, all
under ``KURA_VAR_DIR``. :func:`embedded_kura_start` does the same in a temporary
``KURA_VAR_DIR`` on a free port, with every variable that picks the test suite's profile
(PostgreSQL, Redis, S3) removed, and adds two projects of its own for the tests (each with
one DMP record whose metadata is open, a researcher and a project manager), so that what a
test counts is only what it uploaded.

Each process writes its output to a log file in the var folder; the web server's log is
where the tests count HTTP 5xx answers. :class:`ThrottlingProxy` stands in for a slower
network between the browser and the server.
"""

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Prefixes of the variables that choose a profile or tune one; the test suite sets many
# (tests/settings.py). None reaches the embedded stack, as none is set for ``bin/run``.
PROFILE_PREFIXES = ("KURA_", "DJANGO_", "CELERY_", "AWS_")
PROFILE_NAMES = ("DATABASE_URL",)

DEMO_PASSWORD = "kura-embedded-e2e"  # noqa: S105 - given to the demo users of a throwaway database

# A request line of Django's development server: "PUT /api/v1/uploads/part?… HTTP/1.1" 500 145
REQUEST_LINE = re.compile(r'"(?P<request>[A-Z]+ \S+ HTTP/[0-9.]+)" (?P<status>\d{3}) ')

# Run by ``manage.py shell``: two projects for the tests, with the demo researcher and PM.
SETUP_SCRIPT = """
import json
from accounts.models import Institution, Membership, Project, Role, User
from dmp.models import DmpRecord
from core.vocabularies import MetadataAccess, Tier

institution = Institution.objects.order_by("pk").first()
researcher = User.objects.get(username="researcher")
pm = User.objects.get(username="pm")
projects = {}
for label in ("batch", "resume"):
    project = Project.objects.create(
        institution=institution,
        name_en=f"Upload acceptance ({label})",
        name_ja=f"アップロード受け入れ試験 ({label})",
        funder="JST",
        research_field="189",
        program_name_en="Moonshot Goal 2",
    )
    Membership.objects.create(user=researcher, project=project, role=Role.RESEARCHER)
    Membership.objects.create(user=pm, project=project, role=Role.PM)
    record = DmpRecord.objects.create(
        project=project,
        data_number=f"E2E-{label}",
        title_en=f"Upload acceptance dataset ({label})",
        title_ja=f"アップロード受け入れ試験データ ({label})",
        access_rights=Tier.SHARED,
        metadata_access=MetadataAccess.OPEN,
    )
    projects[label] = {"project": project.pk, "record": record.pk}
print("KURA-E2E-SETUP " + json.dumps(projects))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def embedded_environment(var_dir: Path) -> dict[str, str]:
    """The environment ``bin/run`` gives Kura, with its var folder in ``var_dir``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(PROFILE_PREFIXES) and name not in PROFILE_NAMES
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="true",  # development mode, as bin/run sets it (the default is production)
        KURA_VAR_DIR=str(var_dir),
        KURA_DEMO_PASSWORD=DEMO_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class EmbeddedKura:
    """A running embedded stack: its address, var folder, test projects and processes."""

    var_dir: Path
    url: str
    projects: dict[str, dict[str, int]]
    env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def server_log(self) -> Path:
        return self.logs["web"]

    def log_offset(self) -> int:
        """Where the web server's log ends now: count answers from here on."""
        return self.server_log.stat().st_size

    def request_lines(self, since: int = 0) -> list[tuple[int, str]]:
        """(status, line) of every request the web server logged after byte ``since``."""
        with self.server_log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", errors="replace")
        lines = []
        for line in text.splitlines():
            match = REQUEST_LINE.search(line)
            if match:
                lines.append((int(match["status"]), line))
        return lines

    def server_errors(self, since: int = 0) -> list[str]:
        """The web server's log lines answering HTTP 5xx after byte ``since``."""
        return [line for status, line in self.request_lines(since) if status >= 500]

    def log_tail(self, name: str = "web", lines: int = 60) -> str:
        text = self.logs[name].read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def tracebacks(self, since: int = 0) -> str:
        """Error reports (``Internal Server Error``, tracebacks) in the web server's log."""
        with self.server_log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode("utf-8", errors="replace")
        keep, out = False, []
        for line in text.splitlines():
            if "Internal Server Error" in line or line.startswith("Traceback"):
                keep = True
            elif REQUEST_LINE.search(line):
                keep = False
            if keep:
                out.append(line)
        return "\n".join(out[-200:])

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of a read-only query on the stack's SQLite database."""
        uri = f"file:{self.var_dir / 'kura.sqlite3'}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, timeout=30)
        try:
            return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def stop(self) -> None:
        """Terminate every process (and its children), then kill what is left."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()  # as bin/run does: each stops its own children
        deadline = time.monotonic() + 10  # a worker finishes its current task first (bin/run)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for process in self.processes.values():
            _signal_group(process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)


TOKEN_SCRIPT = """
from accounts.models import User
from accounts.tokens import api_token_create
_, token = api_token_create(user=User.objects.get(username=%r), name="embedded test")
print("KURA-E2E-TOKEN " + token)
"""


def embedded_api_token(kura: EmbeddedKura, username: str) -> str:
    """A new personal API token of the demo user ``username``."""
    output = _manage(kura.env, "shell", "-c", TOKEN_SCRIPT % username)
    marker = next(line for line in output.splitlines() if line.startswith("KURA-E2E-TOKEN"))
    return marker.removeprefix("KURA-E2E-TOKEN ")


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Signal the process group this process leads (Celery's pool children included)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def _wait_for(predicate, timeout: float, what: str, kura: EmbeddedKura) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        dead = [name for name, up in kura.alive().items() if not up]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited:\n{kura.log_tail(dead[0])}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f}s")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return response.status == 200
    except OSError:
        return False


def embedded_kura_start(var_dir: Path, **environment: str) -> EmbeddedKura:
    """Migrate, set up storage, load the demo and the test projects, and start the web
    server, a two-process Celery worker and Celery beat, as ``bin/run`` does (with the
    settings in ``environment`` added, e.g. ``KURA_SQLITE_TIMEOUT``)."""
    env = {**embedded_environment(var_dir), **environment}
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "kura_storage_setup")
    _manage(env, "kura_demo")
    setup_output = _manage(env, "shell", "-c", SETUP_SCRIPT)
    marker = next(line for line in setup_output.splitlines() if line.startswith("KURA-E2E-SETUP"))
    projects = json.loads(marker.removeprefix("KURA-E2E-SETUP "))

    port = free_port()
    kura = EmbeddedKura(var_dir=var_dir, url=f"http://127.0.0.1:{port}", projects=projects, env=env)
    commands = {
        "worker": [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO"]
        + ["--concurrency=2"],
        "beat": [str(BIN / "celery"), "-A", "config", "beat", "--loglevel=INFO"],
        "web": [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
    }
    try:
        for name, command in commands.items():
            log = var_dir / f"{name}.log"
            kura.logs[name] = log
            with log.open("wb") as out:
                kura.processes[name] = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own process group, stopped as one
                )
        _wait_for(lambda: _answers(f"{kura.url}/accounts/login/"), 90, "the web server", kura)
        _wait_for(
            lambda: " ready." in kura.logs["worker"].read_text(errors="replace"),
            90,
            "the Celery worker",
            kura,
        )
    except BaseException:
        kura.stop()
        raise
    return kura


class ThrottlingProxy:
    """A TCP proxy in front of the web server that passes on what the browser sends at most
    ``rate`` bytes per second per connection (answers go back at full speed); set ``rate``
    to 0 to lift the limit, at once for every connection.

    On loopback a part of 8 MiB is sent in milliseconds, so a reload rarely finds one
    half-sent; through this proxy each part takes about a second, as on a real network,
    and the parts in flight when the page goes away reach the server cut off mid-body.
    """

    chunk_size = 64 * 1024

    def __init__(self, upstream_port: int, rate: int):
        self.upstream_port = upstream_port
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            for source, target, limited in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump, args=(source, target, limited), daemon=True
                ).start()

    def _pump(self, source: socket.socket, target: socket.socket, limited: bool) -> None:
        """Copy until either side closes, then close both: a browser that goes away mid-body
        leaves the server with a short body, as a real network would."""
        try:
            while chunk := source.recv(self.chunk_size):
                target.sendall(chunk)
                if limited and self.rate:
                    time.sleep(len(chunk) / self.rate)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
