"""Rate limits: the API per signed-in user and per anonymous client address, and the
uncached dataset searches per client address.

The rates are read from settings at each request (``KURA_API_THROTTLE_USER`` /
``_ANON``), not frozen at import as DRF's ``DEFAULT_THROTTLE_RATES`` are, so a deployment
and a test can change them. Counts live in the default cache, shared by every web process.
A refused request gets 429 with ``Retry-After``. If the cache cannot be reached the request
is let through (and logged): a rate limit must not take the whole API down with it.
"""

import ipaddress
import logging

from django.conf import settings
from rest_framework import throttling

log = logging.getLogger(__name__)


class _FailOpen:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - the cache is down: count nothing, refuse nothing
            log.warning("rate limit unavailable; request let through", exc_info=True)
            return True


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    def get_rate(self):
        return settings.KURA_API_THROTTLE_USER or None


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    def get_rate(self):
        return settings.KURA_API_THROTTLE_ANON or None


class SearchRateThrottle(_FailOpen, throttling.SimpleRateThrottle):
    """Dataset searches that reach the database (``KURA_SEARCH_THROTTLE``), per signed-in
    user or per anonymous client address: a search served from the page cache is not
    counted. The address is the one the API throttles use (``KURA_API_NUM_PROXIES`` hops of
    ``X-Forwarded-For``); an IPv6 address counts with its /64, which one client holds."""

    scope = "search"

    def get_rate(self):
        return settings.KURA_SEARCH_THROTTLE or None

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ident = f"user-{user.pk}"
        else:
            ident = _network(self.get_ident(request))
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _network(address: str) -> str:
    """``address``, or for IPv6 its /64 network."""
    try:
        parsed = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return address or "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
