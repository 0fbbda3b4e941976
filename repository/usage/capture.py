"""Capturing usage on the request path: one cheap append per counted view or download.

A landing-page view (a COUNTER *investigation*) or a file download (a *request*) becomes
one short line appended to a list in the process; a thread of the process moves the lines,
once a second, to the buffer — a Redis list on the shared cache's connection in
production, an append-only file under ``KURA_VAR_DIR`` on the embedded profile — and
``kura.usage_fold`` (every minute, ``fold.py``) moves them into ``UsageEvent`` rows,
filtering double clicks there. Nothing on the request path waits on Redis or the
database. A robot (the COUNTER-Robots lists, the ``counter-robots`` package; see
:func:`agent_class`) is never appended. When the buffer cannot be reached the count is lost
and logged; the page is answered as if nothing happened.

What a line keeps is what COUNTER needs and no more: the time, what was used, how the
visitor stands to it (public, shared through a grant, inside the project), whether a
machine asked, and the *session*: an HMAC of the visitor (their account, else their
session cookie, else address and user agent) and the hour, under a random salt that is
made afresh each day and kept only in the cache. Addresses and accounts are not kept.
"""

import atexit
import functools
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
import uuid
from pathlib import Path
from typing import NamedTuple

import counter_robots
from django.conf import settings
from django.core.cache import cache
from redis.exceptions import ResponseError

from accounts.roles import project_role
from core.http import client_ip
from core.tiers import open_to_everyone
from core.vocabularies import MetadataAccess
from repository.models import UsageEvent

log = logging.getLogger(__name__)

Kind = UsageEvent.Kind
Scope = UsageEvent.Scope

EVENTS_KEY = "kura:usage:events"
SALT_KEY = "kura:usage:salt:"
SALT_SECONDS = 2 * 24 * 60 * 60


@functools.lru_cache(maxsize=4096)
def agent_class(user_agent: str) -> str:
    """``machine``, ``robot`` (not counted) or ``regular``, by the COUNTER-Robots lists.

    The machine list (scripts and tools: ``curl``, ``python-requests``, …) is asked first:
    its patterns are in the robot list as well, and COUNTER counts such access, apart, as
    machine access; whatever else the robot list names (crawlers, spiders) is left out. No
    agent at all is a machine. Remembered per user agent (browsers send few distinct ones),
    so the lists' regular expressions run once per agent, not once per request."""
    if not user_agent or counter_robots.is_machine(user_agent):
        return "machine"
    if counter_robots.is_robot(user_agent):
        return "robot"
    return "regular"


def _salt(day: int) -> bytes:
    """Today's salt: random, shared by every process through the cache, replaced daily
    (kept two days so that a process whose clock is a little behind finds it)."""
    cached = _salts.get(day)
    if cached is None:
        key = f"{SALT_KEY}{day}"
        cache.add(key, secrets.token_hex(32), SALT_SECONDS)
        value = cache.get(key)
        if value is None:
            raise ConnectionError("the usage salt could not be kept")
        cached = value.encode()
        _salts.clear()
        _salts[day] = cached
    return cached


_salts: dict[int, bytes] = {}


def _visitor(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if cookie:
        return f"session:{cookie}"
    return f"client:{client_ip(request)}|{request.META.get('HTTP_USER_AGENT', '')}"


def session_of(request, now: float) -> str:
    """The visitor-and-hour key: an HMAC under the day's salt, 16 hex digits."""
    hour = int(now // 3600)
    salt = _salt(int(now // 86400))
    message = f"{_visitor(request)}|{hour}".encode()
    return hmac.new(salt, message, hashlib.sha256).hexdigest()[:16]


def _machine_request(request, agent: str) -> bool:
    """The API, a token, or a machine's user agent (COUNTER's "machine" access)."""
    return (
        agent == "machine"
        or request.path.startswith("/api/")
        or request.META.get("HTTP_AUTHORIZATION", "").startswith("Bearer ")
    )


def scope_of_record(user, record) -> str:
    """How a visitor of ``record``'s landing page stands to it: a member of its project,
    a reader of open metadata, or someone let in beyond it (a grantee, a curator)."""
    if user.is_authenticated and project_role(user, record.project) is not None:
        return Scope.PROJECT
    if record.metadata_access == MetadataAccess.OPEN:
        return Scope.PUBLIC
    return Scope.SHARED


def scope_of_object(user, data_object) -> str:
    """How a downloader stands to ``data_object``: a member of its project, anyone (a
    public file), or someone let in beyond the project (a grant, a curator's review)."""
    if user.is_authenticated and project_role(user, data_object.project) is not None:
        return Scope.PROJECT
    if open_to_everyone(data_object.tier):
        return Scope.PUBLIC
    return Scope.SHARED


class Line(NamedTuple):
    """One captured event as the buffer holds it (a tuple: a fold decodes a great many)."""

    at: float
    kind: str
    record_id: int
    data_object_id: int
    scope: str
    machine: bool
    session: str

    def encode(self) -> str:
        machine = "m" if self.machine else "h"
        return (
            f"{self.at:.3f}|{self.kind}|{self.record_id}|{self.data_object_id}|"
            f"{self.scope}|{machine}|{self.session}"
        )

    @classmethod
    def decode(cls, text: str) -> "Line":
        at, kind, record, data_object, scope, machine, session = text.split("|")
        return cls(float(at), kind, int(record), int(data_object), scope, machine == "m", session)


def usage_note(request, *, kind: str, record_id: int, scope: str, data_object_id: int = 0) -> bool:
    """Append one view or download to the buffer, unless a robot asked, the request is
    not a GET or counting is off (``KURA_USAGE_COUNTING``). Never raises: an unreachable
    buffer loses the count, logged. Answers whether it was appended."""
    if not settings.KURA_USAGE_COUNTING or request.method != "GET":
        return False  # a HEAD (a link checker's) retrieves nothing
    agent = agent_class(request.META.get("HTTP_USER_AGENT", ""))
    if agent == "robot":
        return False
    now = time.time()
    try:
        line = Line(
            now,
            kind,
            record_id,
            data_object_id,
            scope,
            _machine_request(request, agent),
            session_of(request, now),
        )
    except Exception:  # noqa: BLE001 - a lost count must never fail the page
        log.warning("usage event lost (the day's salt is unreachable)", exc_info=True)
        return False
    _pending.add(line.encode())
    return True


class _Pending:
    """This process's lines not yet in the buffer. The request path only appends to a list;
    a thread of the process moves them to the buffer in one call every
    ``FLUSH_SECONDS`` (sooner past ``FLUSH_LINES``), so a page never waits on Redis. Lines
    of a process killed before its next flush are lost, as counts are when the buffer is
    away (logged)."""

    FLUSH_SECONDS = 1.0
    FLUSH_LINES = 500

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._lines: list[str] = []
        self._pid: int | None = None
        self._wake = threading.Event()

    def add(self, text: str) -> None:
        with self._lock:
            self._lines.append(text)
            if self._pid != os.getpid():  # first line of this process (or of a fork)
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="kura-usage", daemon=True).start()
            if len(self._lines) >= self.FLUSH_LINES:
                self._wake.set()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            self._wake.wait(self.FLUSH_SECONDS)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Move the pending lines to the buffer now; how many were moved. One flush at a
        time: a flush asked for (by a fold) returns only once lines the thread took are in
        the buffer too."""
        with self._flushing:
            with self._lock:
                lines, self._lines = self._lines, []
            if not lines:
                return 0
            try:
                buffer().append_many(lines)
            except Exception:  # noqa: BLE001 - counts are lost, never the process
                log.warning("%d usage events lost (buffer unreachable)", len(lines), exc_info=True)
                return 0
            return len(lines)


_pending = _Pending()
atexit.register(_pending.flush)


def usage_flush() -> int:
    """Move this process's pending lines to the buffer (the fold does it first, so that a
    worker or a test running in the web process folds what it has just counted)."""
    return _pending.flush()


# --- The buffer ------------------------------------------------------------------------


# Delete the claimed list and its token if the token is still the one given (atomic).
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
    return redis.call('DEL', KEYS[1], KEYS[2])
end
return 0
"""


class RedisBuffer:
    """A Redis list on the shared cache's connection. ``claim`` renames the list away
    (atomic: new events go to a fresh list), under a token kept beside it, so a fold that
    crashed is finished by the next one and never counted twice (``UsageFold``)."""

    def __init__(self, cache_backend):
        self._cache = cache_backend
        self.events = cache_backend.make_key(EVENTS_KEY)
        self.claimed = cache_backend.make_key(f"{EVENTS_KEY}:claimed")
        self.token_key = cache_backend.make_key(f"{EVENTS_KEY}:claimed:token")

    def _client(self):
        return self._cache._cache.get_client(None, write=True)

    def append_many(self, texts: list[str]) -> None:
        self._client().rpush(self.events, *texts)

    def claim(self) -> tuple[str, list[str]] | None:
        client = self._client()
        if not client.exists(self.claimed):
            if not client.exists(self.events):
                return None
            try:
                client.renamenx(self.events, self.claimed)
            except ResponseError:  # the list was claimed by another fold meanwhile
                return None
        token = client.get(self.token_key)
        if token is None:
            client.set(self.token_key, uuid.uuid4().hex, nx=True)
            token = client.get(self.token_key)
        lines = client.lrange(self.claimed, 0, -1)
        return token.decode(), [line.decode() for line in lines]

    def release(self, token: str) -> None:
        """Drop the claimed batch ``token``, and only that one: a fold that ran late (beside
        another) must not drop the batch claimed after its own was released."""
        self._client().eval(RELEASE_SCRIPT, 2, self.claimed, self.token_key, token)

    def pending(self) -> int:
        client = self._client()
        return client.llen(self.events) + client.llen(self.claimed)


class FileBuffer:
    """The embedded profile's buffer: lines appended (``O_APPEND``, one ``write`` each) to
    ``usage/events.log`` under ``KURA_VAR_DIR``; ``claim`` renames it to a file named by
    its token."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.events = folder / "events.log"

    def append_many(self, texts: list[str]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.events, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, "".join(text + "\n" for text in texts).encode())
        finally:
            os.close(fd)

    def _claimed(self) -> list[Path]:
        return sorted(self.folder.glob("claimed-*.log"))

    def claim(self) -> tuple[str, list[str]] | None:
        claimed = self._claimed()
        if not claimed:
            if not self.events.exists():
                return None
            target = self.folder / f"claimed-{uuid.uuid4().hex}.log"
            try:
                os.rename(self.events, target)
            except FileNotFoundError:
                return None
            claimed = [target]
        path = claimed[0]
        token = path.stem.removeprefix("claimed-")
        return token, [line for line in path.read_text().splitlines() if line]

    def release(self, token: str) -> None:
        (self.folder / f"claimed-{token}.log").unlink(missing_ok=True)

    def pending(self) -> int:
        paths = [self.events, *self._claimed()]
        return sum(len(p.read_text().splitlines()) for p in paths if p.exists())


def buffer() -> RedisBuffer | FileBuffer:
    """The buffer of this deployment: Redis when the shared cache is Redis."""
    if hasattr(getattr(cache, "_cache", None), "get_client"):
        return RedisBuffer(cache)
    return FileBuffer(Path(settings.VAR_DIR) / "usage")


# --- Where views and downloads are noted -------------------------------------------------


def counted_investigation(view):
    """Count a successful GET of ``view`` (a landing page or export of ``record_id``) as an
    investigation. Put outside the page cache, so that a page served from the cache counts
    too: such a page goes only to visitors without a session (``cached_for_visitors``),
    who read it as the public; a view that ran says how its reader stands to the record
    (``request.usage_scope``, set by :func:`note_landing_reader`)."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if request.method == "GET" and response.status_code == 200:
            usage_note(
                request,
                kind=Kind.INVESTIGATION,
                record_id=kwargs["record_id"],
                scope=getattr(request, "usage_scope", Scope.PUBLIC),
            )
        return response

    return wrapper


def note_landing_reader(request, record) -> None:
    """Remember, for :func:`counted_investigation`, how this reader stands to ``record``."""
    request.usage_scope = scope_of_record(request.user, record)


def download_note(request, data_object, response) -> None:
    """Count a download that was answered (the bytes, or the redirect to them)."""
    if data_object.record_id and response.status_code in (200, 302):
        usage_note(
            request,
            kind=Kind.REQUEST,
            record_id=data_object.record_id,
            data_object_id=data_object.pk,
            scope=scope_of_object(request.user, data_object),
        )
