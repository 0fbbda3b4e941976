"""Whole-page cache of public pages for visitors without a session.

Harvesters, crawlers and first-time visitors ask for the same landing and search pages
over and over; for them the rendered page is kept in the shared cache. The key holds the
catalogue generation (``accounts/catalogue.py``: it changes with every write to a record,
creator, object, project or institution), today's date (embargo dates), the language, the
host and the full path with its query, so a cached page is never older than the data it
shows. A request is served from the cache only when nothing about it is personal: a GET
with no session and no pending messages (so the visitor is anonymous without a database
query). A page is stored only if its rendering set no cookie and embedded no CSRF token.
"""

import hashlib
import logging
from functools import wraps

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.cache import caches
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import get_language

from accounts import catalogue

log = logging.getLogger(__name__)

CACHEABLE_STATUSES = (200, 410)  # a page, or the tombstone of a withdrawn record

# The generation this process saw last: a guess that saves a round trip, never trusted.
_seen_generation: int | None = None


def _personal(request) -> bool:
    """True when the response could depend on who is asking."""
    return (
        settings.SESSION_COOKIE_NAME in request.COOKIES
        or CookieStorage.cookie_name in request.COOKIES
    )


def _key(request, generation: int) -> str:
    raw = "\n".join(
        (
            str(generation),
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


def _lookup(request, cache) -> tuple[str | None, tuple | None]:
    """The key to store the page under and the stored page, in one round trip when the
    generation has not moved since this process last looked: the generation and the page
    filed under the generation seen last are read together (MGET is atomic), and the page
    is used only if that generation is still the current one."""
    global _seen_generation
    guess = _seen_generation
    keys = [catalogue.GENERATION_KEY] + ([_key(request, guess)] if guess is not None else [])
    try:
        found = cache.get_many(keys)
        current = found.get(catalogue.GENERATION_KEY)
        if current is None:
            current = catalogue.generation()
            if current is None:
                return None, None
        _seen_generation = current
        key = _key(request, current)
        if current == guess:
            return key, found.get(key)
        return key, cache.get(key)
    except Exception:  # noqa: BLE001 - a cache failure only costs a rendering
        log.warning("page cache unavailable", exc_info=True)
        return None, None


def cached_for_visitors(view):
    """Serve ``view``'s page from the shared cache to visitors without a session."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        seconds = settings.KURA_PAGE_CACHE_SECONDS
        if seconds <= 0 or request.method != "GET" or _personal(request):
            return view(request, *args, **kwargs)
        cache = caches[catalogue.CACHE_ALIAS]
        key, stored = _lookup(request, cache)
        if stored is not None:
            status, headers, content = stored
            return HttpResponse(content, status=status, headers=headers)
        response = view(request, *args, **kwargs)
        if key is not None and _storable(request, response):
            try:
                cache.set(
                    key, (response.status_code, dict(response.items()), response.content), seconds
                )
            except Exception:  # noqa: BLE001
                log.warning("could not cache %s", request.path, exc_info=True)
        return response

    return wrapper
