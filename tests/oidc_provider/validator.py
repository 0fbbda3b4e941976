from oauth2_provider.oauth2_validators import OAuth2Validator


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
