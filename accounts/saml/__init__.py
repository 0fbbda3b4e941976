"""GakuNin (SAML 2.0) sign-in: Kura as a service provider, on djangosaml2 and pysaml2.

``config.py`` builds pysaml2's configuration from settings and loads the federation's
signed metadata; ``backend.py`` maps an assertion's attributes to a Kura account through
``accounts/identities.py``; ``views.py`` wraps djangosaml2's views (the embedded IdP
chooser, linking, the pages that refuse a sign-in). See docs/architecture.md, "Sign-in".
"""
