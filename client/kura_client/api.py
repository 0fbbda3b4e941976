"""Kura's upload API over HTTP, with one-line errors and polite retries."""

import threading
import time
from dataclasses import dataclass

import requests

from . import __version__

# Transient answers worth another try (429 waits for Retry-After).
RETRY_STATUSES = {429, 502, 503, 504}
RETRIES = 5  # further attempts after a transient failure, with backoff
TIMEOUT = (10, 300)  # connect, read (seconds)


class KuraError(Exception):
    """A failure to report as one line and a non-zero exit."""

    exit_code = 1

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class UploadGone(KuraError):
    """The server no longer knows an upload (aborted, expired or completed elsewhere)."""


def _detail(response: requests.Response) -> str:
    """The server's explanation in one line."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:200] or response.reason
    if isinstance(body, dict):
        # Kura's error body: {"status", "code", "detail"[, "errors"]}; detail says it all.
        if isinstance(body.get("detail"), str):
            return body["detail"]
        parts = []
        for key, value in body.items():
            messages = value if isinstance(value, list) else [value]
            parts.append(f"{key}: {' '.join(str(m) for m in messages)}")
        return "; ".join(parts)
    return str(body)[:200]


@dataclass(frozen=True)
class StartedUpload:
    id: int
    object_id: int
    part_size: int
    part_count: int


class KuraApi:
    """One Kura server, one token. Safe to share between threads."""

    def __init__(self, url: str, token: str, retries: int = RETRIES):
        self.base = url.rstrip("/") + "/"
        self.token = token
        self.attempts = retries + 1
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["User-Agent"] = f"kura-upload/{__version__}"
            self._local.session = session
        return session

    def request(self, method: str, path: str, what: str, **kwargs) -> requests.Response:
        """Call the API; answers a 2xx response or raises a KuraError saying ``what`` failed."""
        url = self.base + path.lstrip("/")
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.request(
                    method, url, headers=headers, timeout=TIMEOUT, **kwargs
                )
            except requests.RequestException as exc:
                if attempt == self.attempts:
                    raise KuraError(f"cannot reach {self.base} ({what}): {_reason(exc)}") from exc
                time.sleep(min(2**attempt, 30))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.attempts:
                time.sleep(_retry_after(response, attempt))
                continue
            if response.ok:
                return response
            raise self._error(response, what)
        raise AssertionError("unreachable")

    def _error(self, response: requests.Response, what: str) -> KuraError:
        return self.error_for(response.status_code, _detail(response), what)

    def error_for(self, status: int, detail: str, what: str) -> KuraError:
        """The one-line error for ``status``, said the same way for a whole request and
        for one file of a batch."""
        if status == 401:
            message = (
                f"the server refused the token (401): {detail} "
                f"(create one at {self.base}accounts/tokens/)"
            )
        elif status == 403:
            message = f"no permission to {what} (403): {detail}"
        elif status == 404:
            message = f"not found while trying to {what} (404): {detail}"
        elif status == 429:
            message = f"the server keeps refusing requests as too many (429): {detail}"
        else:
            message = f"could not {what} ({status}): {detail}"
        return KuraError(message, status)

    # --- The upload protocol -----------------------------------------------------------

    def upload_start(self, fields: dict) -> StartedUpload:
        response = self.request(
            "POST", "api/v1/uploads/", f"start the upload of {fields['filename']}", json=fields
        )
        body = response.json()
        return StartedUpload(body["id"], body["object_id"], body["part_size"], body["part_count"])

    def stored_parts(self, upload_id: int) -> dict[int, tuple[int, str]]:
        """{part number: (size, ETag)} of the parts the storage already holds."""
        try:
            response = self.request(
                "GET", f"api/v1/uploads/{upload_id}/parts", f"list the parts of upload {upload_id}"
            )
        except KuraError as exc:
            if exc.status in (400, 404):  # aborted, expired, or not this user's any more
                raise UploadGone(str(exc), exc.status) from exc
            raise
        return {p["part_number"]: (p["size"], p["etag"]) for p in response.json()["parts"]}

    def part_url(self, upload_id: int, number: int, md5: str) -> tuple[str, dict[str, str]]:
        """A presigned URL for one part, bound to the part's MD5 (base64): the store takes
        only those bytes. Answers the URL and the headers the PUT must carry."""
        response = self.request(
            "POST",
            f"api/v1/uploads/{upload_id}/parts",
            f"sign part {number} of upload {upload_id}",
            json={"parts": [{"part_number": number, "md5": md5}]},
        )
        part = response.json()["parts"][0]
        return part["url"], dict(part.get("headers") or {})

    def complete(self, upload_id: int, etags: dict[int, str], sha256: str) -> dict:
        parts = [{"part_number": n, "etag": etag} for n, etag in sorted(etags.items())]
        response = self.request(
            "POST",
            f"api/v1/uploads/{upload_id}/complete",
            f"complete upload {upload_id}",
            json={"parts": parts, "sha256": sha256},
        )
        return response.json()

    def upload_batch_start(self, items: list[dict], *, skip_identical: bool) -> list[dict]:
        """Start many uploads in one request; one answer per item, in order: ``status``
        201 (``upload``), 200 (``object``: Kura already holds the file) or the item's own
        error (``error``)."""
        response = self.request(
            "POST",
            "api/v1/uploads/batch/",
            f"start the uploads of {items[0]['filename']} and {len(items) - 1} more"
            if len(items) > 1
            else f"start the upload of {items[0]['filename']}",
            json={"uploads": items, "skip_identical": skip_identical},
        )
        return response.json()["uploads"]

    def upload_batch_complete(self, items: list[dict]) -> list[dict]:
        """Complete many uploads in one request; one answer per item, in order."""
        response = self.request(
            "POST",
            "api/v1/uploads/batch/complete",
            f"complete {len(items)} uploads",
            json={"uploads": items},
        )
        return response.json()["uploads"]

    def item_error(self, answer: dict, what: str) -> KuraError:
        """The error of one item of a batch answer, as a KuraError with its status."""
        error = answer.get("error") or {}
        status = int(answer.get("status") or error.get("status") or 0)
        return self.error_for(status, str(error.get("detail") or "refused"), what)

    def verified_objects_named(self, project: int, name: str) -> list[dict]:
        """The project's stored, verified objects called exactly ``name`` (the list API
        filters by a part of the name; the exact match is made here)."""
        response = self.request(
            "GET",
            "api/v1/objects/",
            f"look for {name} in project {project}",
            params={
                "project": project,
                "filename": name,
                "status": "stored",
                "checksum_state": "verified",
                "page_size": 100,
            },
        )
        return [o for o in response.json().get("results", []) if o.get("filename") == name]

    def version_publish(self, record: int) -> dict:
        """Publish a new version of ``record``; answers the version (``number``, ``doi``,
        ``doi_state``, ``url``, ``files``, …)."""
        response = self.request(
            "POST", f"api/v1/records/{record}/versions/", f"publish record {record}"
        )
        return response.json()

    def abort(self, upload_id: int) -> None:
        self.request("DELETE", f"api/v1/uploads/{upload_id}", f"abort upload {upload_id}")

    def data_object(self, object_id: int) -> dict:
        return self.request(
            "GET", f"api/v1/objects/{object_id}/", f"read object {object_id}"
        ).json()

    def put_part(self, url: str, body: bytes, headers: dict[str, str]) -> requests.Response:
        """PUT one part's bytes to its presigned URL (no Kura credentials go there)."""
        return self.session.put(
            url,
            data=body,
            headers={"Content-Type": "application/octet-stream", **headers},
            timeout=TIMEOUT,
        )


def _retry_after(response: requests.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 120.0)
    except ValueError:
        return float(min(2**attempt, 30))


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__
