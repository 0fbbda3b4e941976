"""Private copies of Redis and PostgreSQL for fault tests: started on a free loopback port,
killed or stopped by the test itself, never the shared services the suite runs on.

Each copy keeps its data in a folder the test gives (``tmp_path``) and is stopped when
the test ends (use them as context managers, or call :meth:`stop` in a ``finally``).
PostgreSQL refuses to run as root: under root the cluster is created and run as the
``postgres`` user that Debian's package creates.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.seaweedfs import free_ports, wait_for


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivateRedis:
    """A ``redis-server`` with no persistence on a free port: :attr:`url` is its broker
    URL. :meth:`stop` ends it (SIGTERM), :meth:`kill` without a word (SIGKILL); either way
    everything it held is gone, as when Redis restarts without persistence.
    :meth:`start` again serves on the same port."""

    def __init__(self, data: Path, *, port: int | None = None):
        self.data = Path(data)
        self.port = port or free_ports(1)[0]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.data.mkdir(parents=True, exist_ok=True)
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing (bin/test installs it)")
        self.process = subprocess.Popen(  # noqa: S603
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data),
            ],
            stdout=(self.data / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for(lambda: _port_open(self.port), 20, f"private redis on {self.port}")
        return self.url

    def _end(self, sig: int) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        self.process.wait(timeout=20)
        wait_for(lambda: not _port_open(self.port), 10, f"private redis on {self.port} closed")

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.kill()


class PrivatePostgres:
    """A PostgreSQL cluster of its own (``initdb`` once, trust authentication for
    ``postgres`` on loopback) on a free port. :attr:`url` is a ``DATABASE_URL`` for its
    ``postgres`` database; :meth:`createdb` adds one and answers its URL.
    :meth:`stop` takes a ``pg_ctl`` mode (``fast``, ``immediate``); :meth:`kill` SIGKILLs
    the postmaster (children die with it; the next start recovers from the WAL)."""

    def __init__(self, data: Path | None = None, *, port: int | None = None):
        # Under root the cluster lives in a folder of its own in the temporary directory
        # (pytest's folders are private to root, and the postgres user must reach it).
        self._as_postgres = os.geteuid() == 0
        if data is None or self._as_postgres:
            data = Path(tempfile.mkdtemp(prefix="kura-private-pg-"))
            self._temporary = True
        else:
            self._temporary = False
        self.root = Path(data)
        self.data = self.root / "cluster"
        self.socket_dir = self.root / "socket"
        self.port = port or free_ports(1)[0]

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def _bin(self, name: str) -> str:
        found = shutil.which(name)
        if found is None:
            versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
            candidates = [v / name for v in versions if (v / name).exists()]
            if not candidates:
                raise RuntimeError(f"PostgreSQL's {name} is missing (bin/test installs it)")
            found = str(candidates[0])
        return found

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = list(args)
        kwargs = {}
        if self._as_postgres:
            user = pwd.getpwnam("postgres")

            def demote():  # PostgreSQL refuses to run as root
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

            kwargs["preexec_fn"] = demote
        return subprocess.run(  # noqa: S603, PLW1509 - preexec_fn only drops root
            command, check=check, capture_output=True, text=True, timeout=120, **kwargs
        )

    def _own(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(path, user.pw_uid, user.pw_gid)

    def start(self) -> str:
        if not (self.data / "PG_VERSION").exists():
            self._own(self.root)
            self._own(self.socket_dir)
            self._run(
                self._bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
        command = [
            self._bin("pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c full_page_writes=off -c max_connections=60",
            "start",
        ]
        deadline = time.monotonic() + 30
        while (started := self._run(*command, check=False)).returncode:
            # After a kill the old shared memory may linger a moment.
            if time.monotonic() > deadline:
                log = (self.root / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"private PostgreSQL did not start: {started.stderr}\n{log}")
            time.sleep(0.5)
        wait_for(lambda: _port_open(self.port), 30, f"private PostgreSQL on {self.port}")
        return self.url

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(
                self._bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
            )
        wait_for(lambda: not _port_open(self.port), 30, f"private PostgreSQL on {self.port} closed")

    def kill(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            children = subprocess.run(  # noqa: S603
                [shutil.which("pgrep") or "pgrep", "-P", str(pid)],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            for victim in [pid, *map(int, children)]:  # the whole server, as a crash would
                try:
                    os.kill(victim, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_for(lambda: not _port_open(self.port), 30, f"private PostgreSQL on {self.port} closed")
        time.sleep(0.5)  # the children notice the postmaster is gone and exit

    def createdb(self, name: str) -> str:
        self._run(
            self._bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name
        )
        return self.database_url(name)

    def __enter__(self):
        self.start()
        return self

    def cleanup(self) -> None:
        """Stop the cluster if it runs and delete its folder (when this class made it)."""
        self.stop("immediate")
        if self._temporary:
            shutil.rmtree(self.root, ignore_errors=True)

    def __exit__(self, *exc):
        self.cleanup()
