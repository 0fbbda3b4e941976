"""API rate limits per signed-in user and per anonymous client address.

The rates are read from settings at each request (``KURA_API_THROTTLE_USER`` /
``_ANON``), not frozen at import as DRF's ``DEFAULT_THROTTLE_RATES`` are, so a deployment
and a test can change them. Counts live in the default cache, shared by every web process.
A refused request gets 429 with ``Retry-After``. If the cache cannot be reached the request
is let through (and logged): a rate limit must not take the whole API down with it.
"""

import logging

from django.conf import settings
from rest_framework import throttling

log = logging.getLogger(__name__)


class _FailOpen:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except Exception:  # noqa: BLE001 - the cache is down: count nothing, refuse nothing
            log.warning("API rate limit unavailable; request let through", exc_info=True)
            return True


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    def get_rate(self):
        return settings.KURA_API_THROTTLE_USER or None


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    def get_rate(self):
        return settings.KURA_API_THROTTLE_ANON or None
