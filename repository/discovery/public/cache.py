"""Whole-page cache of public pages for visitors without a session.

Harvesters, crawlers and first-time visitors ask for the same landing and search pages
over and over; for them the rendered page is kept in the shared cache. The key holds the
generations of what the page shows (``core/generations.py``: the catalogue's, which
changes with every write to a record, creator, plan, project or institution, and for a
landing page its record's files' generation, which changes with every write to one of its
objects), today's date (embargo dates), the language, the host and the full path with its
query, so a cached page is never older than the data it shows, and an upload to another
record leaves it cached. A request is served from the cache only when nothing about it is
personal: a GET with no session and no pending messages (so the visitor is anonymous
without a database query). A page is stored only if its rendering set no cookie and
embedded no CSRF token.
"""

import hashlib
from functools import wraps

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import get_language

from core.generations import CATALOGUE, cached_lookup, cached_store

CACHEABLE_STATUSES = (200, 410)  # a page, or the tombstone of a withdrawn record


def _personal(request) -> bool:
    """True when the response could depend on who is asking."""
    return (
        settings.SESSION_COOKIE_NAME in request.COOKIES
        or CookieStorage.cookie_name in request.COOKIES
    )


def _key(request, generations: tuple[int, ...]) -> str:
    raw = "\n".join(
        (
            *map(str, generations),
            timezone.localdate().isoformat(),
            get_language() or "",
            request.scheme,
            request.get_host(),
            request.get_full_path(),
        )
    )
    return "kura:page:" + hashlib.sha256(raw.encode()).hexdigest()


def _storable(request, response) -> bool:
    return (
        response.status_code in CACHEABLE_STATUSES
        and not response.streaming
        and not response.cookies
        and not request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
    )


def cached_for_visitors(*, params: frozenset[str] = frozenset(), scoped=None, bypass=None):
    """Serve the view's page from the shared cache to visitors without a session.

    The page is filed under the catalogue generation and ``scoped(**view_kwargs)`` (the
    scoped generations of what else it shows, e.g. a record's files).

    Only requests whose query parameters are all among ``params`` are cached: a page asked
    for with anything else (``?x=<random>``) is rendered and not stored, so nobody can fill
    the cache with copies of one page. (Each distinct search still takes an entry, for
    ``KURA_PAGE_CACHE_SECONDS``: give the cache a memory limit, see the README.)

    A request for which ``bypass(request)`` is true is neither served from the cache nor
    stored: a landing URL asked for a metadata record by content negotiation is answered
    afresh, so the page and the records never stand in for each other under one key.
    """

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if bypass is not None and bypass(request):
                return view(request, *args, **kwargs)
            generations = (CATALOGUE, *(scoped(**kwargs) if scoped else ()))
            return _serve(view, params, generations, request, *args, **kwargs)

        return wrapper

    return decorator


def _serve(view, params, generations, request, *args, **kwargs):
    seconds = settings.KURA_PAGE_CACHE_SECONDS
    if (
        seconds <= 0
        or request.method != "GET"
        or _personal(request)
        or not set(request.GET) <= params
    ):
        return view(request, *args, **kwargs)
    key, stored = cached_lookup(generations, lambda numbers: _key(request, numbers))
    if stored is not None:
        status, headers, content = stored
        return HttpResponse(content, status=status, headers=headers)
    response = view(request, *args, **kwargs)
    if key is not None and _storable(request, response):
        cached_store(key, (response.status_code, dict(response.items()), response.content), seconds)
    return response
