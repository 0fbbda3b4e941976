"""The pytest side of the test OpenID provider: start it (once per session), and the
settings that point Kura's ORCID sign-in at it."""

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.oidc_provider import CLOCK_OFFSET_FILE

ROOT = Path(__file__).resolve().parents[2]
KURA_REDIRECT_URI = "http://testserver/oidc/callback/"  # the Django test client's host
KURA_CLIENT = ("kura-test", "kura-test-secret")
OTHER_CLIENT = ("other-app", "other-app-secret")  # another relying party of the provider
OTHER_REDIRECT_URI = "http://other.example/callback"
PEOPLE = {
    "carberry": {
        "username": "0000-0002-1825-0097",
        "password": "carberry-test",
        "first_name": "Josiah",
        "last_name": "Carberry",
    },
    "sato": {
        "username": "0000-0001-5109-3700",
        "password": "sato-test",
        "first_name": "Hanako",
        "last_name": "Sato",
    },
}


@dataclass
class Provider:
    base_url: str
    data_dir: Path


def _rsa_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def oidc_provider():
    """django-oauth-toolkit in its own process on a free loopback port."""
    data_dir = Path(tempfile.mkdtemp(prefix="kura-oidc-provider-"))
    spec = {
        "dir": str(data_dir),
        "rsa_key": _rsa_key_pem(),
        "users": list(PEOPLE.values()),
        "applications": [
            {
                "client_id": KURA_CLIENT[0],
                "client_secret": KURA_CLIENT[1],
                "redirect_uri": KURA_REDIRECT_URI,
            },
            {
                "client_id": OTHER_CLIENT[0],
                "client_secret": OTHER_CLIENT[1],
                # The other party may send people to Kura's callback too (a stolen code).
                "redirect_uri": f"{OTHER_REDIRECT_URI} {KURA_REDIRECT_URI}",
            },
        ],
    }
    spec_path = data_dir / "spec.json"
    spec_path.write_text(json.dumps(spec))
    process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-m", "tests.oidc_provider.server", str(spec_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=open(data_dir / "server.log", "w"),  # noqa: SIM115 - kept open for the process
        text=True,
    )
    try:
        line = process.stdout.readline()
        if not line.startswith("OIDC-PROVIDER "):
            log = (data_dir / "server.log").read_text()[-3000:]
            pytest.fail(f"the test OpenID provider did not start:\n{log}", pytrace=False)
        yield Provider(base_url=line.split()[1], data_dir=data_dir)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def orcid_settings(settings, oidc_provider):
    """Kura's ORCID sign-in switched on and pointed at the test provider."""
    base = oidc_provider.base_url
    settings.KURA_ORCID_CLIENT_ID = settings.OIDC_RP_CLIENT_ID = KURA_CLIENT[0]
    settings.OIDC_RP_CLIENT_SECRET = KURA_CLIENT[1]
    settings.KURA_ORCID_BASE_URL = settings.KURA_ORCID_ISSUER = base
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{base}/oauth/authorize"
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{base}/oauth/token"
    settings.OIDC_OP_JWKS_ENDPOINT = f"{base}/oauth/jwks"
    settings.OIDC_OP_USER_ENDPOINT = f"{base}/oauth/userinfo"
    settings.KURA_ORCID_CREATE_ACCOUNTS = True
    return settings


@pytest.fixture
def provider_clock(oidc_provider):
    """Sets the provider's clock ``seconds`` off from Kura's (its ID tokens' ``iat`` and
    ``exp``), back in step after the test."""
    offset_file = oidc_provider.data_dir / CLOCK_OFFSET_FILE

    def set_offset(seconds: int) -> None:
        offset_file.write_text(str(seconds))

    yield set_offset
    offset_file.unlink(missing_ok=True)
