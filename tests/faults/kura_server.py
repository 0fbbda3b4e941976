"""Kura as its own process for fault tests: gunicorn on a free port, with the database
the test gives (a private PostgreSQL cluster, or an SQLite file), so a test can take a
dependency away under the whole middleware stack — authentication, sessions, the handler
of last resort — and see exactly what a client sees over HTTP.

The server runs with ``DJANGO_DEBUG=false`` as in production (Django's 500 handler is
only used then), so the static files are collected first.
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.seaweedfs import free_ports, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# Run by ``manage.py shell``: a researcher with a token, their project and one record.
SETUP_SCRIPT = """
import json
from accounts.models import Role
from accounts.tokens import api_token_create
from tests.factories import DmpRecordFactory, MembershipFactory

membership = MembershipFactory(role=Role.RESEARCHER)
membership.user.set_password("kura-fault-test")
membership.user.save()
record = DmpRecordFactory(project=membership.project)
_, token = api_token_create(user=membership.user, name="faults")
from importlib import import_module
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
session = import_module(settings.SESSION_ENGINE).SessionStore()
session[SESSION_KEY] = str(membership.user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = membership.user.get_session_auth_hash()
session.create()
print("KURA-FAULT-SETUP " + json.dumps({
    "username": membership.user.username, "token": token, "session": session.session_key,
    "project": membership.project_id, "record": record.pk,
}))
"""


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class KuraServer:
    env: dict
    work: Path
    port: int = field(default_factory=lambda: free_ports(1)[0])
    process: subprocess.Popen | None = None
    setup: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def prepare(self) -> dict:
        self.manage("migrate", "--noinput", "-v0")
        self.manage("collectstatic", "--noinput", "-v0")
        out = self.manage("shell", "-c", SETUP_SCRIPT)
        line = next(x for x in out.splitlines() if x.startswith("KURA-FAULT-SETUP "))
        self.setup = json.loads(line.split(" ", 1)[1])
        return self.setup

    def start(self) -> None:
        log = (self.work / "web.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                f"--bind=127.0.0.1:{self.port}",
                "--workers=1",
                "--threads=4",
                "--timeout=300",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

        def answers() -> bool:
            try:
                return self.request("GET", "/healthz").status == 200
            except OSError:
                return False

        wait_for(answers, 120, "Kura's web server")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def log(self) -> str:
        return (self.work / "web.log").read_text(errors="replace")[-6000:]

    def request(
        self, method: str, path: str, *, body=None, token: str | None = None, session: str = ""
    ) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if session:
            request.add_header("Cookie", f"sessionid={session}")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())


def server_environment(*, database_url: str, var_dir: Path) -> dict[str, str]:
    """The suite's own environment (Redis, the session's S3 server), production mode,
    with the database the test chose."""
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "fault-test-only-secret-key-not-used-anywhere-else-0123456789",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_COOKIES": "false",
        "KURA_VAR_DIR": str(var_dir),
        "PYTHONUNBUFFERED": "1",
    }
