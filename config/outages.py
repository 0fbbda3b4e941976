"""A dependency that is briefly away answers 503 with ``Retry-After``, never 500.

Two kinds of outage reach a view as exceptions: the database (``OperationalError`` —
PostgreSQL gone, or SQLite's write lock held longer than the busy timeout on the embedded
profile) and the services wrapped as :class:`core.api.ServiceUnavailable` (storage).
Under ``/api/`` the answer is the API's one error body; elsewhere a plain 503 page. A
transaction that was under way was rolled back, so nothing was changed and the request can
simply be sent again — which is what the browser uploader and ``kura-upload`` do after
``Retry-After`` seconds.

The same holds for an outage raised outside any view (a middleware, the session saved
after the view): :func:`server_error` is Django's 500 handler and answers the same 503.
Besides the database, the net catches the object store's own errors (a ``StoreError``
that is not a missing upload or object: the store did not answer), Redis (the cache that
counts API throttling and holds the page cache) and the broker. One exception is not an
outage but a full disk (SQLite's "database or disk is full", PostgreSQL's ``DiskFull``):
waiting five seconds will not help, so it answers 507 Insufficient Storage, without
``Retry-After`` (``kura-upload`` does not retry it), and the transaction was rolled back.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader

from core.api import RETRY_AFTER_SECONDS, ServiceUnavailable

logger = logging.getLogger(__name__)

OUTAGES = (OperationalError, InterfaceError, ServiceUnavailable)

DATABASE_DETAIL = "The database is busy or unavailable; nothing was changed. Try again shortly."
STORAGE_DETAIL = "The storage is unavailable; nothing was changed. Try again shortly."
SERVICE_DETAIL = (
    "A service Kura needs (cache or task queue) is unavailable; nothing was changed. "
    "Try again shortly."
)
DISK_FULL_DETAIL = (
    "The server's disk is full; nothing was changed. An administrator must free space "
    "before anything more can be stored."
)


def _disk_full(exception) -> bool:
    """SQLite's SQLITE_FULL or PostgreSQL's 53100 (``disk_full``), however wrapped."""
    cause = exception.__cause__
    if getattr(cause, "sqlstate", None) == "53100":
        return True
    text = str(exception).lower()
    return "database or disk is full" in text or "no space left on device" in text


def _store_errors() -> tuple[type, ...]:
    from repository.preservation.object_store import StoreError

    return (StoreError,)


def _store_client_errors() -> tuple[type, ...]:
    from repository.preservation.object_store import BadDigest, NoSuchObject, NoSuchUpload

    return (NoSuchUpload, NoSuchObject, BadDigest)


def _service_errors() -> tuple[type, ...]:
    """Redis (cache) and the broker: connection errors only, never a bug in a caller."""
    errors: list[type] = []
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        errors += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover - the embedded profile may lack redis-py
        pass
    try:
        from kombu.exceptions import OperationalError as BrokerError

        errors.append(BrokerError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def outage_answer(exception) -> tuple[int, str, str] | None:
    """(status, code, detail) when ``exception`` is an outage of a dependency, else None."""
    if isinstance(exception, OperationalError | InterfaceError):
        if _disk_full(exception):
            return 507, "insufficient_storage", DISK_FULL_DETAIL
        return 503, "unavailable", DATABASE_DETAIL
    if isinstance(exception, ServiceUnavailable):
        return 503, "unavailable", STORAGE_DETAIL
    if isinstance(exception, _store_errors()) and not isinstance(exception, _store_client_errors()):
        return 503, "unavailable", STORAGE_DETAIL
    if isinstance(exception, _service_errors()):
        return 503, "unavailable", SERVICE_DETAIL
    return None


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def unavailable_response(
    request, detail: str, *, status: int = 503, code: str = "unavailable"
) -> HttpResponse:
    """The 503 (or 507) for ``request``: the API's JSON body under /api/, else the page."""
    if is_api(request):
        response = JsonResponse({"status": status, "code": code, "detail": detail}, status=status)
    else:
        body = loader.render_to_string("503.html", {"disk_full": status == 507})
        response = HttpResponse(body, status=status, content_type="text/html; charset=utf-8")
    if status == 503:
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    """Turns a dependency outage raised by a view into a 503 (see module doc)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        answer = outage_answer(exception)
        if answer is None:
            return None
        status, code, detail = answer
        logger.warning("%s for %s %s: %r", status, request.method, request.path, exception)
        return unavailable_response(request, detail, status=status, code=code)


def server_error(request):
    """Django's 500 handler, but an outage raised outside a view (a middleware saving the
    session, say) still answers 503: the handler runs while the exception is being
    handled, so it can see which one it was."""
    import sys

    from django.views.defaults import server_error as default_server_error

    answer = outage_answer(sys.exc_info()[1])
    if answer is not None:
        status, code, detail = answer
        return unavailable_response(request, detail, status=status, code=code)
    return default_server_error(request)
