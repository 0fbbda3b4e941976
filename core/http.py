"""The client's address, as every part of Kura records it; the security headers that
depend on settings (Content-Security-Policy's storage origins, Permissions-Policy)."""

from csp.middleware import CSPMiddleware
from django.conf import settings
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


class PermissionsPolicyMiddleware:
    """Adds ``Permissions-Policy`` (``KURA_PERMISSIONS_POLICY``): the browser features no page
    of Kura uses are switched off, for Kura's pages and anything they might embed."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.KURA_PERMISSIONS_POLICY)
        return response


def _origin(url: str) -> str:
    scheme, _sep, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else ""


def storage_origins() -> list[str]:
    """Where presigned URLs point: the browser uploads parts straight there."""
    if settings.KURA_STORAGE != "s3":
        return []  # the embedded store's part URLs are Kura's own
    endpoint = getattr(settings, "AWS_S3_ENDPOINT_URL", None)
    if endpoint:
        return [_origin(endpoint)]
    region = settings.AWS_S3_REGION_NAME
    return [
        f"https://{settings.AWS_STORAGE_BUCKET_NAME}.s3.{region}.amazonaws.com",
        f"https://s3.{region}.amazonaws.com",
    ]


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the storage's origin in ``connect-src``."""

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        origins = storage_origins()
        if origins and not report_only:
            update = dict(parts.update or {})
            update["connect-src"] = [*update.get("connect-src", []), *origins]
            parts.update = update
        return parts
