"""Runs the test OpenID provider: ``python -m tests.oidc_provider.server SPEC``.

``SPEC`` is a JSON file: ``{"dir": ..., "rsa_key": PEM, "users": [{"username": iD,
"password", "first_name", "last_name"}], "applications": [{"client_id",
"client_secret", "redirect_uri"}]}``. The server binds a free loopback port, makes its
SQLite database in ``dir``, registers the users and applications (confidential,
authorization code, RS256, no consent screen), prints ``OIDC-PROVIDER <base URL>`` and
serves until it is terminated.
"""

import json
import os
import sys
from pathlib import Path


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    server = ThreadedWSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
    os.environ["OIDC_PROVIDER_DIR"] = spec["dir"]
    os.environ["OIDC_PROVIDER_ISSUER"] = base_url
    os.environ["OIDC_PROVIDER_RSA_KEY"] = spec["rsa_key"]

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0, interactive=False)
    for person in spec["users"]:
        User.objects.create_user(**person)
    for app in spec["applications"]:
        Application.objects.create(
            name=app["client_id"],
            client_id=app["client_id"],
            client_secret=app["client_secret"],
            redirect_uris=app["redirect_uri"],
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            algorithm=Application.RS256_ALGORITHM,
            skip_authorization=True,
        )
    server.set_app(get_wsgi_application())
    print(f"OIDC-PROVIDER {base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
