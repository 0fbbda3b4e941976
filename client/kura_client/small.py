"""Small files (one part each, at most 8 MiB): many at once, one PUT each, in batches.

For a folder of thousands of small files the round trips around each file cost more than
its bytes. Small files therefore go in batches: each file is read once to hash it (SHA-256
and MD5), one request starts the whole batch (``POST /api/v1/uploads/batch/``; files Kura
already holds, by name, size and SHA-256 in the same project and record, are answered
with their object and not sent again), each file is PUT once to its own presigned URL
(signed with its MD5, so the store refuses other bytes), and one request completes the
batch. ``jobs`` batches are in flight at once, so ``jobs`` files are being sent at any
moment. Each file succeeds or fails on its own; a failed file is reported and the others
go on. The state file remembers each batch's uploads, so an interrupted run does not send
twice what it completed.
"""

import base64
import hashlib
import math
import mimetypes
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import requests

from .api import KuraApi, KuraError
from .upload import Counters, LocalFile, Settings, State, held_result

# A file up to this size is one part (Kura's smallest part size): it goes as one PUT.
SMALL_MAX = 8 * 1024 * 1024
BATCH_MAX = 50  # files per batch request (the server takes up to 100)
# Statuses of one file of a batch worth another try, as for a whole request.
ITEM_RETRY = {429, 502, 503, 504}
ITEM_RETRY_AFTER = 5.0  # seconds: what Kura's 503 asks


@dataclass
class SmallFile:
    local: LocalFile
    sha256: str = ""
    md5: str = ""  # base64, as Content-MD5
    upload_id: int | None = None
    object_id: int | None = None
    put: dict | None = None
    etag: str = ""
    result: dict | None = None
    error: KuraError | None = None
    attempts: int = 0


def is_small(local: LocalFile) -> bool:
    return local.size <= SMALL_MAX


def batch_size(count: int, jobs: int) -> int:
    """Files per batch: at most BATCH_MAX, and small enough that every job has work."""
    return max(1, min(BATCH_MAX, math.ceil(count / max(jobs, 1))))


class SmallFiles:
    """Sends small files ``jobs`` at a time (see the module docstring)."""

    def __init__(
        self,
        api: KuraApi,
        settings: Settings,
        state: State,
        progress,
        counters: Counters,
        jobs: int,
    ):
        self.api, self.settings, self.state = api, settings, state
        self.progress, self.counters, self.jobs = progress, counters, jobs
        self.multipart: list[LocalFile] = []  # given more than one part by the server

    def send(self, locals_: list[LocalFile]) -> list[SmallFile]:
        """Send every file; answers them all, each with its ``result`` or its ``error``."""
        files = [SmallFile(local) for local in locals_]
        size = batch_size(len(files), self.jobs)
        batches = [files[i : i + size] for i in range(0, len(files), size)]
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="kura-batch") as pool:
            for future in [pool.submit(self._batch, batch) for batch in batches]:
                future.result()  # a whole-request failure (401, network) stops the run
        return files

    # --- One batch: hash, start, PUT each, complete ---------------------------------------

    def _batch(self, batch: list[SmallFile]) -> None:
        waiting = []
        for small in batch:
            entry = self.state.get(small.local)
            if entry and entry.get("complete"):
                small.result = {**entry, "name": small.local.name, "resumed": True}
                self.progress.skip_file(small.local)
                continue
            if entry is None and str(small.local.path) in self.state.files:
                self._abandon(self.state.files[str(small.local.path)])  # changed since
            elif entry is not None:
                self._abandon(entry)  # started but never completed: start afresh
            try:
                self._hash(small)
            except OSError as exc:
                self._fail(small, KuraError(f"cannot read {small.local.path}: {exc}"))
                continue
            waiting.append(small)
        started = self._start(waiting)
        for small in started:
            self._put(small)
        self._complete([small for small in started if small.etag])

    def _hash(self, small: SmallFile) -> None:
        sha256 = hashlib.sha256()
        md5 = hashlib.md5()  # noqa: S324 - S3's Content-MD5, not a security digest
        with open(small.local.path, "rb") as source:
            while chunk := source.read(1024 * 1024):
                sha256.update(chunk)
                md5.update(chunk)
        small.sha256 = sha256.hexdigest()
        small.md5 = base64.b64encode(md5.digest()).decode()

    def _fields(self, small: SmallFile) -> dict:
        local = small.local
        fields = {
            "project": self.settings.project,
            "record": self.settings.record,
            "filename": local.name,
            "size": local.size,
            "content_type": mimetypes.guess_type(local.name)[0] or "application/octet-stream",
            "tier": self.settings.tier,
            "sha256": small.sha256,
            "md5": small.md5,
            "single_put": True,
        }
        if self.settings.available_date:
            fields["available_date"] = self.settings.available_date
        if self.settings.reason:
            fields["reason"] = self.settings.reason
        return fields

    def _start(self, waiting: list[SmallFile]) -> list[SmallFile]:
        """Start the batch; answers the files to PUT now. Files Kura already holds are
        done; a file the server gave several parts is left for the part-by-part path."""
        started: list[SmallFile] = []

        def send(files):
            fields = [self._fields(small) for small in files]
            return self.api.upload_batch_start(fields, skip_identical=True)

        def accept(small, answer, status, remembered) -> bool:
            if status == 200:
                small.result = held_result(small.local, answer["object"])
                self.counters.held()
                self.progress.skip_file(
                    small.local, f"already in Kura (object {answer['object']['id']})"
                )
            elif status == 201 and answer["upload"].get("put"):
                upload = answer["upload"]
                small.upload_id, small.object_id = upload["id"], upload["object_id"]
                small.put = upload["put"]
                started.append(small)
                remembered.append((small.local, self._entry(small, complete=False)))
            elif status == 201:
                self._abandon({"upload_id": answer["upload"]["id"]})
                self.multipart.append(small.local)
            else:
                return False
            return True

        self._each_answer(waiting, send, accept, "start")
        return started

    def _each_answer(self, waiting: list[SmallFile], send, accept, verb: str) -> None:
        """Send ``waiting`` as one batch request until every file has its answer:
        ``accept(small, answer, status, remembered)`` takes the answers it knows (and adds
        what the state file should keep to ``remembered``); a file answered 429/502/503/504
        goes again, after ``ITEM_RETRY_AFTER``, up to the client's attempts; any other
        answer fails that file alone."""
        while waiting:
            answers = send(waiting)
            again, remembered = [], []
            for small, answer in zip(waiting, answers, strict=True):
                status = int(answer.get("status") or 0)
                if accept(small, answer, status, remembered):
                    continue
                if status in ITEM_RETRY and small.attempts < self.api.attempts - 1:
                    small.attempts += 1
                    again.append(small)
                else:
                    what = f"{verb} the upload of {small.local.name}"
                    self._fail(small, self.api.item_error(answer, what))
            if remembered:
                self.state.put_many(remembered)
            if again:
                time.sleep(ITEM_RETRY_AFTER)
            waiting = again

    def _entry(self, small: SmallFile, *, complete: bool) -> dict:
        return {
            "upload_id": small.upload_id,
            "object_id": small.object_id,
            "part_size": SMALL_MAX,
            "part_count": 1,
            "name": small.local.name,
            "complete": complete,
            "sha256": small.sha256,
        }

    def _put(self, small: SmallFile) -> None:
        """PUT the file to its URL; on success ``small.etag`` is set. Transient failures
        are tried again (an expired URL is signed anew); the store's 412 means an earlier
        try stored it already (the URL writes once), which completion checks."""
        try:
            with open(small.local.path, "rb") as source:
                data = source.read(small.local.size + 1)
        except OSError as exc:
            self._fail(small, KuraError(f"cannot read {small.local.path}: {exc}"))
            return
        if len(data) != small.local.size:
            self._fail(small, KuraError(f"{small.local.path} changed while it was being sent"))
            return
        md5_hex = base64.b64decode(small.md5).hex()
        url, headers = small.put["url"], dict(small.put.get("headers") or {})
        problem = ""
        for attempt in range(1, self.api.attempts + 1):
            try:
                response = self.api.put_part(url, data, headers)
            except requests.RequestException as exc:
                problem = " ".join(str(exc).split())[:200]
            else:
                if response.ok and response.headers.get("ETag"):
                    small.etag = response.headers["ETag"].strip('"')
                    self.counters.sent(len(data))
                    return
                if response.status_code == 412:
                    small.etag = md5_hex  # stored by an earlier try; completion checks it
                    return
                problem = f"HTTP {response.status_code} {response.reason}"
                if response.status_code == 400 and "BadDigest" in response.text:
                    self._fail(
                        small,
                        KuraError(
                            f"{small.local.path} changed while it was being sent (the store"
                            " refused bytes that differ from the MD5 read before)"
                        ),
                    )
                    return
                if response.status_code == 403:
                    url, headers = self.api.part_url(small.upload_id, 1, small.md5)  # expired
                elif response.status_code not in (408, 429) and response.status_code < 500:
                    break
            time.sleep(min(2**attempt, 30) if attempt < self.api.attempts else 0)
        self._fail(small, KuraError(f"could not send {small.local.name}: {problem}"))

    def _complete(self, sent: list[SmallFile]) -> None:
        def send(files):
            return self.api.upload_batch_complete(
                [
                    {
                        "id": small.upload_id,
                        "parts": [{"part_number": 1, "etag": small.etag}],
                        "sha256": small.sha256,
                    }
                    for small in files
                ]
            )

        def accept(small, answer, status, remembered) -> bool:
            if status != 200:
                return False
            small.result = {
                **self._entry(small, complete=True),
                "checksum_state": answer["object"].get("checksum_state"),
            }
            remembered.append((small.local, self._entry(small, complete=True)))
            self.progress.file_sent(small.local)
            return True

        self._each_answer(sent, send, accept, "complete")

    def _fail(self, small: SmallFile, error: KuraError) -> None:
        small.error = error
        self.progress.file_failed(small.local, str(error))

    def _abandon(self, entry: dict) -> None:
        if entry.get("complete") or not entry.get("upload_id"):
            return
        try:
            self.api.abort(entry["upload_id"])
        except KuraError:
            pass  # gone already: nothing to clean up
