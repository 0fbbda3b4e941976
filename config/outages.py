"""A dependency that is briefly away answers 503 with ``Retry-After``, never 500.

Two kinds of outage reach a view as exceptions: the database (``OperationalError`` —
PostgreSQL gone, or SQLite's write lock held longer than the busy timeout on the embedded
profile) and the services wrapped as :class:`config.api.ServiceUnavailable` (storage).
Under ``/api/`` the answer is the API's one error body; elsewhere a plain 503 page. A
transaction that was under way was rolled back, so nothing was changed and the request can
simply be sent again — which is what the browser uploader and ``kura-upload`` do after
``Retry-After`` seconds.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import loader

from config.api import RETRY_AFTER_SECONDS, ServiceUnavailable

logger = logging.getLogger(__name__)

OUTAGES = (OperationalError, InterfaceError, ServiceUnavailable)


def is_api(request) -> bool:
    return request.path.startswith("/api/")


def unavailable_response(request, detail: str) -> HttpResponse:
    """The 503 for ``request``: the API's JSON body under /api/, else the 503 page."""
    if is_api(request):
        response = JsonResponse(
            {"status": 503, "code": "unavailable", "detail": detail}, status=503
        )
    else:
        body = loader.render_to_string("503.html")
        response = HttpResponse(body, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    """Turns a database or storage outage raised by a view into a 503 (see module doc)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OUTAGES):
            return None
        logger.warning("503 for %s %s: %s", request.method, request.path, exception)
        if isinstance(exception, ServiceUnavailable):
            detail = "The storage is unavailable; nothing was changed. Try again shortly."
        else:
            detail = "The database is busy or unavailable; nothing was changed. Try again shortly."
        return unavailable_response(request, detail)


def server_error(request):
    """Django's 500 handler, but a database outage raised outside a view (a middleware
    saving the session, say) still answers 503: the handler runs while the exception is
    being handled, so it can see which one it was."""
    import sys

    from django.views.defaults import server_error as default_server_error

    exception = sys.exc_info()[1]
    if isinstance(exception, OUTAGES):
        return unavailable_response(
            request,
            "The database is busy or unavailable; nothing was changed. Try again shortly.",
        )
    return default_server_error(request)
