"""DRF authentication by personal API token: ``Authorization: Bearer <token>`` (or
``Token <token>``). Sessions keep working through DRF's SessionAuthentication."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from .tokens import api_token_authenticate

KEYWORDS = {b"bearer", b"token"}


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in KEYWORDS:
            return None  # not ours: let the next class (session) try
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                _("Send the header as 'Authorization: Bearer <token>'.")
            )
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(_("The API token is invalid.")) from exc
        row = api_token_authenticate(token)
        if row is None:
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
