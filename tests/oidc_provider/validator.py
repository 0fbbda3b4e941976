from pathlib import Path

from django.conf import settings
from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.oidc_provider import CLOCK_OFFSET_FILE


def clock_offset() -> int:
    path = Path(settings.DATA_DIR) / CLOCK_OFFSET_FILE
    return int(path.read_text()) if path.exists() else 0


class OrcidLikeValidator(OAuth2Validator):
    """Claims as ORCID sends them: ``sub`` is the iD (the provider's username), with the
    person's given and family names."""

    oidc_claim_scope = None  # every claim below goes out with scope "openid"

    def get_claim_dict(self, request):
        return {
            "sub": lambda r: r.user.username,
            "given_name": lambda r: r.user.first_name,
            "family_name": lambda r: r.user.last_name,
        }

    def get_id_token_dictionary(self, token, token_handler, request):
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        offset = clock_offset()
        claims["exp"] += offset
        claims["auth_time"] += offset
        return claims, expiration_time

    def finalize_id_token(self, id_token, token, token_handler, request):
        id_token["iat"] += clock_offset()  # set by oauthlib before this is called
        return super().finalize_id_token(id_token, token, token_handler, request)
