"""A GakuNin test federation for the browser tests: two pysaml2 IdPs in a signed metadata
aggregate, one of them ("Example University") served over HTTP by the test, and Kura
configured as their SP. The ``gakunin`` fixture (tests/e2e/conftest.py) sets it up."""

import html
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.test import Client
from playwright.sync_api import Page, expect

from tests.accounts.saml_idp import TestIdP, federation_metadata, make_keypair

IDP = "https://idp.example.ac.jp/idp/shibboleth"
IDP_NAME = "Example University"
OTHER_IDP = "https://idp.other.ac.jp/idp/shibboleth"


def person(
    eppn: str = "hanako@example.ac.jp",
    *,
    mail: str = "hanako.suzuki@example.ac.jp",
    name_en: str = "Hanako Suzuki",
    name_ja: str = "鈴木 花子",
) -> dict[str, list[str]]:
    """The attributes Example University's IdP releases for one person."""
    return {
        "eduPersonPrincipalName": [eppn],
        "mail": [mail],
        "displayName": [name_en],
        "jaDisplayName": [name_ja],
        "eduPersonScopedAffiliation": [f"member@{eppn.partition('@')[2]}"],
    }


@dataclass
class IdPServer:
    """The IdP's web side: its SSO URL answers Kura's AuthnRequest with a page whose
    button posts the signed response to Kura's ACS, as a Shibboleth IdP does. It asserts
    ``person`` (set it before a sign-in)."""

    person: dict[str, list[str]] = field(default_factory=person)
    idp: TestIdP | None = None
    sp_metadata: str = ""
    acs: str = ""

    def __post_init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://localhost:{self.httpd.server_port}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                if self.path.startswith("/slo?"):  # Kura's LogoutRequest: the IdP's page
                    self._page(b"<!DOCTYPE html><html><body><h1>Signed out at the IdP</h1>")
                    return
                if "SAMLRequest=" not in self.path:
                    self.send_error(404)
                    return
                saml_response, relay = server.idp.answer(
                    server.base + self.path, server.sp_metadata, server.person
                )
                body = (
                    f"<!DOCTYPE html><html><body><h1>{IDP_NAME} IdP</h1>"
                    f'<form method="post" action="{html.escape(server.acs)}">'
                    f'<input type="hidden" name="SAMLResponse" value="{saml_response}">'
                    f'<input type="hidden" name="RelayState" value="{html.escape(relay)}">'
                    '<button type="submit">Continue to Kura</button></form></body></html>'
                ).encode()
                self._page(body)

            def _page(self, body: bytes):
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        return Handler

    def start(self) -> None:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def federation_start(server: IdPServer, live_server_url: str, settings, folder: Path) -> None:
    """Make the federation's keys and signed metadata (Example University, served by
    ``server``, and Other University) and point Kura's SAML settings at them."""
    idp = TestIdP(
        IDP,
        make_keypair(folder, "idp"),
        f"{server.base}/sso",
        IDP_NAME,
        scopes=("example.ac.jp",),
    )
    other = TestIdP(
        OTHER_IDP,
        make_keypair(folder, "other"),
        "https://idp.other.ac.jp/sso",
        "Other University",
        scopes=("other.ac.jp",),
    )
    federation = make_keypair(folder, "federation")
    metadata = federation_metadata(
        [idp.metadata_config, other.metadata_config], federation, folder / "fed.xml"
    )
    sp = make_keypair(folder, "sp")
    settings.KURA_SAML_ENABLED = True
    settings.KURA_SAML_SP_KEY_FILE = sp.key_file
    settings.KURA_SAML_SP_CERT_FILE = sp.cert_file
    settings.KURA_SAML_METADATA_FILE = str(metadata)
    settings.KURA_SAML_METADATA_CERT = federation.cert_file
    settings.KURA_BASE_URL = f"{live_server_url}/"
    server.idp = idp
    server.sp_metadata = Client().get("/saml2/metadata/").content.decode()
    server.acs = f"{live_server_url}/saml2/acs/"


def sign_in_with_gakunin(page: Page) -> None:
    """From the login page through Kura's IdP chooser and Example University's IdP, back
    to Kura signed in as the IdP server's ``person``."""
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Sign in with GakuNin").click()
    expect(page.get_by_role("heading", name="Choose your institution")).to_be_visible()
    page.get_by_role("link", name=IDP_NAME).click()
    expect(page.get_by_role("heading", name=f"{IDP_NAME} IdP")).to_be_visible()
    page.get_by_role("button", name="Continue to Kura").click()
    expect(page.locator(".nav-user")).to_be_visible()
