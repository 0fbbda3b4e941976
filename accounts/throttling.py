"""API rate limits per signed-in user and per anonymous client address.

The rates are read from settings at each request (``KURA_API_THROTTLE_USER`` /
``_ANON``), not frozen at import as DRF's ``DEFAULT_THROTTLE_RATES`` are, so a deployment
and a test can change them. Counts live in the default cache, shared by every web process.
A refused request gets 429 with ``Retry-After``.
"""

from django.conf import settings
from rest_framework import throttling


class UserRateThrottle(throttling.UserRateThrottle):
    def get_rate(self):
        return settings.KURA_API_THROTTLE_USER or None


class AnonRateThrottle(throttling.AnonRateThrottle):
    def get_rate(self):
        return settings.KURA_API_THROTTLE_ANON or None
