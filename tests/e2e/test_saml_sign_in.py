"""A new person signs in through GakuNin in Chromium: the login page, Kura's IdP chooser,
a pysaml2 IdP served over HTTP by the test, and back to Kura with an account made for them."""

import html
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client
from playwright.sync_api import expect

from accounts.models import ExternalIdentity, Institution, User
from tests.accounts.saml_idp import TestIdP, federation_metadata, make_keypair

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

IDP = "https://idp.example.ac.jp/idp/shibboleth"
PERSON = {
    "eduPersonPrincipalName": ["hanako@example.ac.jp"],
    "mail": ["hanako.suzuki@example.ac.jp"],
    "displayName": ["Hanako Suzuki"],
    "jaDisplayName": ["鈴木 花子"],
    "eduPersonScopedAffiliation": ["member@example.ac.jp"],
}


class IdPServer:
    """The IdP's web side: its SSO URL answers Kura's AuthnRequest with a page whose
    button posts the signed response to Kura's ACS, as a Shibboleth IdP does."""

    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://localhost:{self.httpd.server_port}"
        self.idp: TestIdP | None = None
        self.sp_metadata = ""
        self.acs = ""

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
                    server.base + self.path, server.sp_metadata, PERSON
                )
                body = (
                    "<!DOCTYPE html><html><body><h1>Example University IdP</h1>"
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

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _federation(idp_server, live_server, settings, tmp_path) -> None:
    idp = TestIdP(
        IDP,
        make_keypair(tmp_path, "idp"),
        f"{idp_server.base}/sso",
        "Example University",
        scopes=("example.ac.jp",),
    )
    other = TestIdP(
        "https://idp.other.ac.jp/idp/shibboleth",
        make_keypair(tmp_path, "other"),
        "https://idp.other.ac.jp/sso",
        "Other University",
        scopes=("other.ac.jp",),
    )
    federation = make_keypair(tmp_path, "federation")
    metadata = federation_metadata(
        [idp.metadata_config, other.metadata_config], federation, tmp_path / "fed.xml"
    )
    sp = make_keypair(tmp_path, "sp")
    settings.KURA_SAML_ENABLED = True
    settings.KURA_SAML_SP_KEY_FILE = sp.key_file
    settings.KURA_SAML_SP_CERT_FILE = sp.cert_file
    settings.KURA_SAML_METADATA_FILE = str(metadata)
    settings.KURA_SAML_METADATA_CERT = federation.cert_file
    settings.KURA_BASE_URL = f"{live_server.url}/"
    idp_server.idp = idp
    idp_server.sp_metadata = Client().get("/saml2/metadata/").content.decode()
    idp_server.acs = f"{live_server.url}/saml2/acs/"


def test_a_new_person_signs_in_through_the_idp_chooser(page, live_server, settings, tmp_path):
    with IdPServer() as idp_server:
        _federation(idp_server, live_server, settings, tmp_path)
        university = Institution.objects.create(name_en="Example University", idp_entity_id=IDP)

        page.goto("/accounts/login/")
        page.get_by_role("link", name="Sign in with GakuNin").click()

        expect(page.get_by_role("heading", name="Choose your institution")).to_be_visible()
        expect(page.locator("#idp-list li")).to_have_count(2)
        page.locator("#idp-query").fill("example")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("#idp-list li")).to_have_count(1)
        page.get_by_role("link", name="Example University").click()

        expect(page.get_by_role("heading", name="Example University IdP")).to_be_visible()
        page.get_by_role("button", name="Continue to Kura").click()

        expect(page.locator(".nav-user")).to_have_text("Hanako Suzuki")
        user = User.objects.get(identities__subject="hanako@example.ac.jp")
        assert user.email == "hanako.suzuki@example.ac.jp"
        assert user.institution == university
        assert ExternalIdentity.objects.get(user=user).issuer == IDP

        # The chooser remembers the choice for the next sign-in.
        page.goto("/saml2/login/")
        expect(page.locator("#idp-list li").first).to_contain_text("last used")


def test_a_signed_in_person_links_gakunin_then_signs_out_through_the_idp(
    page, live_server, settings, tmp_path
):
    """Linking finishes on the same-site page the ACS sends the browser to; signing out
    repeats the POST (307, with its CSRF token) at /saml2/logout/, whose page links to the
    IdP's single logout (a redirect there would break the form's CSP)."""
    User.objects.create_user("yamada", password="pw-12345-long")
    with IdPServer() as idp_server:
        _federation(idp_server, live_server, settings, tmp_path)
        page.goto("/accounts/login/")
        page.locator("#id_username").fill("yamada")
        page.locator("#id_password").fill("pw-12345-long")
        page.locator("#login-form button[type=submit]").click()
        expect(page.locator(".nav-user")).to_be_visible()

        page.goto("/accounts/login/")
        page.get_by_role("button", name="Link GakuNin to this account").click()
        page.get_by_role("link", name="Example University").click()
        page.get_by_role("button", name="Continue to Kura").click()

        expect(page.get_by_text("GakuNin is now linked to your account.")).to_be_visible()
        assert ExternalIdentity.objects.get(subject="hanako@example.ac.jp").user.username == (
            "yamada"
        )

        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="Signed out")).to_be_visible()
        expect(page.locator(".nav-user")).to_have_count(0)
        page.get_by_role("link", name="Sign out at your institution").click()
        expect(page.get_by_role("heading", name="Signed out at the IdP")).to_be_visible()
        assert "/slo?SAMLRequest=" in page.url
