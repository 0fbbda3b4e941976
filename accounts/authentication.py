"""DRF authentication by personal API token: ``Authorization: Bearer <token>`` (or
``Token <token>``). Sessions keep working through DRF's SessionAuthentication."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from core.http import client_ip

from .tokens import api_token_authenticate

log = logging.getLogger(__name__)

KEYWORDS = {b"bearer", b"token"}


def _failures_key(request) -> str:
    return f"kura:api-token-failures:{client_ip(request)}"


def _token_failures_check(request) -> None:
    """Refuse (429, Retry-After) an address that sent ``KURA_API_TOKEN_FAILURE_LIMIT`` bad
    tokens within ``KURA_API_TOKEN_FAILURE_WINDOW`` seconds: authentication runs before the
    API's throttles, so guessing tokens is counted here. A cache outage never blocks anyone."""
    try:
        failures = cache.get(_failures_key(request), 0)
    except Exception:  # noqa: BLE001 - the cache is a guard, not a dependency
        log.warning("API token failure count unavailable", exc_info=True)
        return
    if failures >= settings.KURA_API_TOKEN_FAILURE_LIMIT:
        raise exceptions.Throttled(
            wait=settings.KURA_API_TOKEN_FAILURE_WINDOW,
            detail=str(_("Too many invalid API tokens from this address; try again later.")),
        )


def _token_failure_note(request) -> None:
    key = _failures_key(request)
    try:
        cache.add(key, 0, timeout=settings.KURA_API_TOKEN_FAILURE_WINDOW)
        cache.incr(key)
    except Exception:  # noqa: BLE001 - the cache is a guard, not a dependency
        log.warning("API token failure not counted", exc_info=True)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: let the next class (session) try
        _token_failures_check(request)
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the header as 'Authorization: Bearer <token>'.")
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            _token_failure_note(request)
            raise exceptions.AuthenticationFailed(_("The API token is invalid.")) from exc
        row = api_token_authenticate(token)
        if row is None:
            _token_failure_note(request)
            raise exceptions.AuthenticationFailed(_("The API token is invalid or revoked."))
        return row.user, row

    def authenticate_header(self, request):
        # Makes DRF answer 401 (with this challenge) rather than 403 when no one is signed in.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """Describes the token in the OpenAPI document (as HTTP bearer authentication)."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token from /accounts/tokens/ (kura_…).",
        }
