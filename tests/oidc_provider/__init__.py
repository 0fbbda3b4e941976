"""A real OpenID provider for the ORCID sign-in tests: django-oauth-toolkit in OIDC mode,
in its own process (``python -m tests.oidc_provider.server``), serving DOT's views at
ORCID's paths (/oauth/authorize, /oauth/token, /oauth/jwks, /oauth/userinfo) and naming
each person by their ORCID iD (``sub``), as ORCID does. See :mod:`tests.oidc_provider.server`.
"""

# The tests write seconds to this file in the provider's folder to set its clock off from
# Kura's (``fixtures.provider_clock``): its ID tokens then say they were issued, and
# expire, that much later.
CLOCK_OFFSET_FILE = "clock_offset_seconds"
