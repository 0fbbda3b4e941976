"""The client's address, as every part of Kura records it."""

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from rest_framework.settings import api_settings


def client_ip(request) -> str | None:
    """``REMOTE_ADDR``, or — with ``KURA_API_NUM_PROXIES`` reverse proxies in front — the
    address the outermost trusted proxy saw in ``X-Forwarded-For`` (the same address the
    API's rate limit counts). Anything that is not an IP address falls back to
    ``REMOTE_ADDR``: a forged header can neither break the audit trail nor go unnoticed."""
    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    proxies = api_settings.NUM_PROXIES or 0
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",")]
    candidate = hops[-min(proxies, len(hops))]
    try:
        validate_ipv46_address(candidate)
    except ValidationError:
        return remote
    return candidate
