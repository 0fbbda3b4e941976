"""Uploading files: parts in parallel, SHA-256 while reading, resumable through a state file.

Each file is read once, in order, one part at a time: the part goes into the SHA-256 and,
unless the server already holds it, to a thread pool that PUTs it to its presigned URL.
At most ``workers + 1`` parts are in memory. A state file remembers each file's upload
(id, size, modification time); after an interruption the server's list of stored parts
says what need not be sent again.
"""

import base64
import hashlib
import json
import mimetypes
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .api import KuraApi, KuraError, StartedUpload, UploadGone

STATE_VERSION = 1


@dataclass(frozen=True)
class LocalFile:
    path: Path  # absolute
    name: str  # the file name Kura keeps
    size: int
    mtime_ns: int


@dataclass
class Settings:
    project: int
    record: int | None = None
    tier: str = "non_shared"
    available_date: str | None = None
    reason: str = ""  # why the files should be opened: a curator reads it
    workers: int = 4
    # For tests: exit abruptly (like a killed process) after this many parts were sent.
    stop_after_parts: int | None = None


@dataclass
class Counters:
    parts_sent: int = 0
    parts_skipped: int = 0
    bytes_sent: int = 0
    files_held: int = 0  # already in Kura (same name, size and SHA-256): not sent
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, size: int) -> None:
        with self.lock:
            self.parts_sent += 1
            self.bytes_sent += size

    def held(self) -> None:
        with self.lock:
            self.files_held += 1


def files_to_upload(paths: list[str], separator: str, skip: set[Path]) -> list[LocalFile]:
    """The files named, and those under the folders named (recursively, sorted).

    A file inside a folder is named by its path relative to that folder, its parts joined
    by ``separator`` (Kura's file names hold no ``/``).
    """
    found: list[LocalFile] = []
    for given in paths:
        root = Path(given).expanduser()
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.resolve() not in skip:
                    relative = path.relative_to(root).parts
                    found.append(_local(path, separator.join(relative)))
        elif root.is_file():
            found.append(_local(root, root.name))
        else:
            raise KuraError(f"no such file or folder: {given}")
    names: dict[str, Path] = {}
    for local in found:
        if local.name in names:
            raise KuraError(
                f"two files would both be called {local.name!r}: {names[local.name]} and"
                f" {local.path} (choose another --separator or upload them separately)"
            )
        names[local.name] = local.path
    return found


def _local(path: Path, name: str) -> LocalFile:
    stat = path.stat()
    return LocalFile(path.resolve(), name, stat.st_size, stat.st_mtime_ns)


class State:
    """What this machine knows about uploads in flight, in one small JSON file."""

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, dict] = {}
        self.lock = threading.RLock()  # files are sent by several threads at once
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise KuraError(f"cannot read the state file {path}: {exc}") from exc
            if data.get("version") == STATE_VERSION:
                self.files = data.get("files", {})

    def get(self, local: LocalFile) -> dict | None:
        entry = self.files.get(str(local.path))
        if entry and (entry.get("size"), entry.get("mtime_ns")) == (local.size, local.mtime_ns):
            return entry
        return None

    def put(self, local: LocalFile, entry: dict) -> None:
        self.put_many([(local, entry)])

    def put_many(self, entries: list[tuple[LocalFile, dict]]) -> None:
        """Remember several files' uploads with one write (a batch of small files)."""
        with self.lock:
            for local, entry in entries:
                self.files[str(local.path)] = {
                    **entry,
                    "size": local.size,
                    "mtime_ns": local.mtime_ns,
                }
            self.save()

    def forget(self, locals_: list[LocalFile]) -> None:
        with self.lock:
            for local in locals_:
                self.files.pop(str(local.path), None)
            self.save()

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        try:
            if not self.files:
                self.path.unlink(missing_ok=True)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(self.path.name + ".tmp")
            temporary.write_text(json.dumps({"version": STATE_VERSION, "files": self.files}))
            os.replace(temporary, self.path)
        except OSError as exc:
            raise KuraError(f"cannot write the state file {self.path}: {exc}") from exc


class Uploader:
    def __init__(self, api: KuraApi, settings: Settings, state: State, progress):
        self.api, self.settings, self.state, self.progress = api, settings, state, progress
        self.counters = Counters()
        self.pool = ThreadPoolExecutor(max_workers=settings.workers)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def upload(self, local: LocalFile) -> dict:
        """Send one file (or finish sending it); answers {object_id, name, sha256, ...}."""
        entry = self.state.get(local)
        if entry is None and str(local.path) in self.state.files:
            self._abandon(self.state.files[str(local.path)])  # the file changed since
        if entry and entry.get("complete"):
            self.progress.skip_file(local)
            return {**entry, "name": local.name, "resumed": True}
        if entry is None:
            held = self.held_already(local)
            if held is not None:
                self.counters.held()
                self.progress.skip_file(local, f"already in Kura (object {held['id']})")
                return held_result(local, held)
        stored: dict[int, tuple[int, str]] = {}
        if entry:
            try:
                stored = self.api.stored_parts(entry["upload_id"])
                upload = StartedUpload(
                    entry["upload_id"], entry["object_id"], entry["part_size"], entry["part_count"]
                )
            except UploadGone:
                entry = None
        if entry is None:
            upload = self.api.upload_start(self._fields(local))
            entry = {
                "upload_id": upload.id,
                "object_id": upload.object_id,
                "part_size": upload.part_size,
                "part_count": upload.part_count,
                "name": local.name,
                "complete": False,
            }
            self.state.put(local, entry)
        sha256, etags = self._send_parts(local, upload, stored)
        body = self.api.complete(upload.id, etags, sha256)
        entry = {**entry, "complete": True, "sha256": sha256}
        self.state.put(local, entry)
        self.progress.file_done(local)
        return {**entry, "name": local.name, "checksum_state": body.get("checksum_state")}

    def held_already(self, local: LocalFile) -> dict | None:
        """A verified object of the target (project and record) with this file's name,
        size and SHA-256, asked of the server by name; the file is hashed only when an
        object of that name and size is there."""
        candidates = [
            held
            for held in self.api.verified_objects_named(self.settings.project, local.name)
            if held.get("size") == local.size and held.get("record") == self.settings.record
        ]
        if not candidates:
            return None
        sha256 = file_sha256(local)
        return next((held for held in candidates if held.get("sha256") == sha256), None)

    def _fields(self, local: LocalFile) -> dict:
        content_type = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        fields = {
            "project": self.settings.project,
            "record": self.settings.record,
            "filename": local.name,
            "size": local.size,
            "content_type": content_type,
            "tier": self.settings.tier,
        }
        if self.settings.available_date:
            fields["available_date"] = self.settings.available_date
        if self.settings.reason:
            fields["reason"] = self.settings.reason
        return fields

    def _abandon(self, entry: dict) -> None:
        if entry.get("complete"):
            return
        try:
            self.api.abort(entry["upload_id"])
        except KuraError:
            pass  # gone already: nothing to clean up

    def _send_parts(
        self, local: LocalFile, upload: StartedUpload, stored: dict[int, tuple[int, str]]
    ) -> tuple[str, dict[int, str]]:
        def expected(number: int) -> int:
            if number < upload.part_count:
                return upload.part_size
            return local.size - upload.part_size * (upload.part_count - 1)

        kept = {n: etag for n, (size, etag) in stored.items() if size == expected(n)}
        slots = threading.BoundedSemaphore(self.settings.workers + 1)
        failed = threading.Event()
        futures: list[Future] = []

        def finished(future: Future) -> None:
            slots.release()
            if not future.cancelled() and future.exception() is not None:
                failed.set()

        digest = hashlib.sha256()
        self.progress.start_file(local)
        with open(local.path, "rb") as source:
            for number in range(1, upload.part_count + 1):
                slots.acquire()
                if failed.is_set():
                    slots.release()
                    break
                data = source.read(expected(number))
                if len(data) != expected(number):
                    slots.release()
                    raise KuraError(f"{local.path} changed while it was being sent (shorter)")
                digest.update(data)
                if number in kept:
                    slots.release()
                    self.counters.parts_skipped += 1
                    self.progress.add(local, len(data))
                    continue
                future = self.pool.submit(self._put, local, upload.id, number, data)
                future.add_done_callback(finished)
                futures.append(future)
            else:
                if source.read(1):
                    raise KuraError(f"{local.path} changed while it was being sent (longer)")
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            if future.exception() is not None:
                for other in futures:
                    other.cancel()
                raise future.exception()
        etags = dict(kept)
        etags.update(f.result() for f in futures)
        return digest.hexdigest(), etags

    def _put(self, local: LocalFile, upload_id: int, number: int, data: bytes):
        """Send one part, signed with its MD5 (a part damaged on the way is refused by the
        store with 400 and sent again); each attempt asks for a fresh URL."""
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - S3's digest
        problem = ""
        attempts = self.api.attempts
        for attempt in range(1, attempts + 1):
            url, headers = self.api.part_url(upload_id, number, md5)
            try:
                response = self.api.put_part(url, data, headers)
            except requests.RequestException as exc:
                problem = " ".join(str(exc).split())[:200]
            else:
                if response.ok and response.headers.get("ETag"):
                    self.counters.sent(len(data))
                    self.progress.add(local, len(data))
                    stop = self.settings.stop_after_parts
                    if stop is not None and self.counters.parts_sent >= stop:
                        os._exit(75)  # as if killed: no clean-up, no state written
                    return number, response.headers["ETag"].strip('"')
                problem = f"HTTP {response.status_code} {response.reason}"
                if response.status_code not in (400, 403, 408, 429) and response.status_code < 500:
                    break  # not transient; 400/403 may be an expired URL: sign again
            time.sleep(min(2**attempt, 30) if attempt < attempts else 0)
        raise KuraError(f"could not send part {number} of {local.name}: {problem}")


def file_sha256(local: LocalFile) -> str:
    digest = hashlib.sha256()
    with open(local.path, "rb") as source:
        while chunk := source.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def held_result(local: LocalFile, held: dict) -> dict:
    """The result row of a file Kura already holds (nothing was sent)."""
    return {
        "object_id": held["id"],
        "name": local.name,
        "sha256": held.get("sha256") or "",
        "server_sha256": held.get("sha256") or "",
        "checksum_state": held.get("checksum_state") or "verified",
        "held": True,
    }


def wait_for_verification(api: KuraApi, object_ids: list[int], timeout: float, progress) -> dict:
    """Poll each object until its checksum is verified or failed; answers {id: object}."""
    final: dict[int, dict] = {}
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        for object_id in object_ids:
            if object_id in final:
                continue
            body = api.data_object(object_id)
            if body.get("checksum_state") in ("verified", "failed"):
                final[object_id] = body
        progress.verifying(len(final), len(object_ids))
        if len(final) == len(object_ids):
            return final
        if time.monotonic() > deadline:
            raise KuraError(
                f"{len(object_ids) - len(final)} of {len(object_ids)} objects were not"
                f" verified within {timeout:.0f} s (the server is still checking; look again later)"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 5.0)
