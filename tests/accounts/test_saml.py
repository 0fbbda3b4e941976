"""GakuNin (SAML 2.0) sign-in against a real IdP: pysaml2's Server signs the assertions,
Kura's ACS (djangosaml2 with Kura's backend) checks them. Nothing is mocked: keys are made
per test, the federation metadata is a signed aggregate checked with xmlsec1."""

import functools
import re
import secrets
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from saml2 import BINDING_HTTP_REDIRECT
from saml2.sigver import SignatureError
from saml2.xmldsig import SIG_RSA_SHA256

from accounts.models import ExternalIdentity, Institution, User
from accounts.saml import config as saml_config
from tests.accounts.saml_idp import TestIdP, federation_metadata, make_keypair

pytestmark = pytest.mark.django_db

IDP_A = "https://idp.example.ac.jp/idp/shibboleth"
IDP_B = "https://idp.other-univ.ac.jp/idp/shibboleth"


def person(eppn="taro@example.ac.jp", **changes) -> dict:
    identity = {
        "eduPersonPrincipalName": [eppn],
        "mail": ["taro.yamada@example.ac.jp"],
        "displayName": ["Taro Yamada"],
        "jaDisplayName": ["山田 太郎"],
        "eduPersonScopedAffiliation": ["faculty@example.ac.jp"],
        "o": ["Example University"],
    }
    identity.update(changes)
    return {k: v for k, v in identity.items() if v is not None}


class Federation:
    def __init__(self, folder: Path):
        self.folder = folder
        self.sp = make_keypair(folder, "sp")
        self.fed = make_keypair(folder, "federation")
        self.idp_a = TestIdP(
            IDP_A,
            make_keypair(folder, "idp-a"),
            "https://idp.example.ac.jp/sso",
            "Example University",
            "例示大学",
            scopes=("example.ac.jp",),
        )
        self.idp_b = TestIdP(
            IDP_B,
            make_keypair(folder, "idp-b"),
            "https://idp.other-univ.ac.jp/sso",
            "Other University",
            scopes=("other-univ.ac.jp",),
        )
        self.metadata = federation_metadata(
            [self.idp_a.metadata_config, self.idp_b.metadata_config],
            self.fed,
            folder / "federation.xml",
        )


@pytest.fixture
def federation(tmp_path, settings) -> Federation:
    federation = Federation(tmp_path)
    settings.KURA_SAML_ENABLED = True
    settings.KURA_SAML_SP_KEY_FILE = federation.sp.key_file
    settings.KURA_SAML_SP_CERT_FILE = federation.sp.cert_file
    settings.KURA_SAML_METADATA_FILE = str(federation.metadata)
    settings.KURA_SAML_METADATA_CERT = federation.fed.cert_file
    settings.KURA_BASE_URL = "http://testserver/"
    return federation


@pytest.fixture
def sp_metadata(client, federation) -> str:
    response = client.get("/saml2/metadata/")
    assert response.status_code == 200
    return response.content.decode()


def start(client, idp: TestIdP, next_url: str = "/", link: str = "") -> str:
    params = {"idp": idp.entity_id, "next": next_url, **({"link": link} if link else {})}
    response = client.get("/saml2/login/", params)
    assert response.status_code == 302, response.content[:500]
    assert response["Location"].startswith(idp.sso_url)
    return response["Location"]


def ask_to_link(client, next_url: str = "/") -> str:
    """The signed-in person's "Link GakuNin to this account" button (a POST); the one-time
    link nonce it hands to the GET that starts the AuthnRequest."""
    response = client.post("/saml2/login/", {"next": next_url})
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["link"][0]


def link_in(client, idp: TestIdP, sp_metadata: str, identity: dict):
    """Link GakuNin from the signed-in account: the button, the IdP, the ACS (which signs
    nobody in) and the same-site GET that finishes the link."""
    link = ask_to_link(client)
    saml_response, relay = idp.answer(start(client, idp, link=link), sp_metadata, identity)
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    if response.status_code != 302 or response["Location"] != "/saml2/login/?finish=link":
        return response
    return client.get(response["Location"])


def sign_in(client, idp: TestIdP, sp_metadata: str, identity: dict, **answer):
    saml_response, relay_state = idp.answer(start(client, idp), sp_metadata, identity, **answer)
    return client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay_state})


def signed_in_user(client) -> User | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk) if pk else None


def test_sp_metadata_names_the_endpoints_and_the_attributes(client, federation):
    response = client.get("/saml2/metadata/")
    body = response.content.decode()
    assert response.status_code == 200
    assert 'entityID="http://testserver/saml2/metadata/"' in body
    assert "http://testserver/saml2/acs/" in body
    assert "http://testserver/saml2/ls/" in body
    assert "urn:oid:1.3.6.1.4.1.5923.1.1.1.6" in body  # eduPersonPrincipalName, required
    assert "urn:oid:1.3.6.1.4.1.32264.1.1.3" in body  # jaDisplayName
    assert "DiscoveryResponse" in body


def test_first_sign_in_creates_the_account_links_the_eppn_and_matches_the_institution(
    client, federation, sp_metadata
):
    university = Institution.objects.create(name_en="Example University", idp_entity_id=IDP_A)

    response = sign_in(client, federation.idp_a, sp_metadata, person())

    assert response.status_code == 302 and response["Location"] == "/"
    user = signed_in_user(client)
    assert user is not None
    assert (user.email, user.name_en, user.name_ja) == (
        "taro.yamada@example.ac.jp",
        "Taro Yamada",
        "山田 太郎",
    )
    assert user.institution == university and user.organization_name == "Example University"
    assert not user.has_usable_password()
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.provider, identity.subject, identity.issuer) == (
        "saml",
        "taro@example.ac.jp",
        IDP_A,
    )
    assert client.get("/").context["user"] == user


def test_institution_matched_by_scope_when_no_institution_names_the_idp(
    client, federation, sp_metadata
):
    other = Institution.objects.create(name_en="Other University", saml_scopes="other-univ.ac.jp")
    sign_in(
        client,
        federation.idp_b,
        sp_metadata,
        person("hanako@other-univ.ac.jp", eduPersonScopedAffiliation=["staff@other-univ.ac.jp"]),
    )
    assert signed_in_user(client).institution == other


def test_returning_sign_in_reaches_the_same_account_and_updates_a_changed_mail(
    client, federation, sp_metadata
):
    sign_in(client, federation.idp_a, sp_metadata, person())
    first = signed_in_user(client)
    client.logout()

    response = sign_in(
        client, federation.idp_a, sp_metadata, person(mail=["t.yamada@new.example.ac.jp"])
    )

    assert response.status_code == 302
    again = signed_in_user(client)
    assert again.pk == first.pk
    assert again.email == "t.yamada@new.example.ac.jp"
    assert User.objects.count() == 1


def test_encrypted_assertion_is_accepted(client, federation, sp_metadata):
    response = sign_in(client, federation.idp_a, sp_metadata, person(), encrypt=True)
    assert response.status_code == 302
    assert signed_in_user(client).identities.get().subject == "taro@example.ac.jp"


def test_missing_eppn_answers_403_saying_what_the_idp_must_release(client, federation, sp_metadata):
    response = sign_in(client, federation.idp_a, sp_metadata, person(eduPersonPrincipalName=None))

    assert response.status_code == 403
    page = response.content.decode()
    assert "did not send your eduPersonPrincipalName" in page
    assert "eduPersonPrincipalName が送信されなかった" in page
    for attribute in ("eduPersonPrincipalName", "mail", "jaDisplayName", "organizationName"):
        assert f"<code>{attribute}</code>" in page
    assert signed_in_user(client) is None
    assert not User.objects.exists()


def test_assertion_signed_by_an_untrusted_key_is_refused(client, federation, sp_metadata):
    intruder = make_keypair(federation.folder, "intruder")
    response = sign_in(client, federation.idp_a, sp_metadata, person(), keys=intruder)
    assert response.status_code == 403
    assert signed_in_user(client) is None
    assert not User.objects.exists()


def test_the_idps_post_needs_no_csrf_token(federation, sp_metadata):
    browser = Client(enforce_csrf_checks=True)
    saml_response, relay = federation.idp_a.answer(
        start(browser, federation.idp_a), sp_metadata, person()
    )
    response = browser.post(
        "/saml2/acs/",
        {"SAMLResponse": saml_response, "RelayState": relay},
        HTTP_ORIGIN="https://idp.example.ac.jp",
    )
    assert response.status_code == 302
    assert signed_in_user(browser) is not None


def test_replayed_response_is_refused(client, federation, sp_metadata):
    saml_response, relay = federation.idp_a.answer(
        start(client, federation.idp_a), sp_metadata, person()
    )
    data = {"SAMLResponse": saml_response, "RelayState": relay}
    assert client.post("/saml2/acs/", data).status_code == 302
    user = signed_in_user(client)
    client.logout()

    replay = client.post("/saml2/acs/", data)

    assert replay.status_code == 403
    assert signed_in_user(client) is None
    # Nor in a new browser that has an AuthnRequest of its own outstanding.
    other = client.__class__()
    start(other, federation.idp_a)
    assert other.post("/saml2/acs/", data).status_code == 403
    assert signed_in_user(other) is None
    assert User.objects.count() == 1 and user.identities.count() == 1


def test_replayed_assertion_id_is_refused_even_when_the_request_check_passes(
    client, federation, sp_metadata
):
    """Behind djangosaml2's outstanding-request check, the backend remembers assertion IDs."""
    from accounts.saml.backend import assertion_first_use

    info = {
        "assertion_id": f"_replay-probe-{secrets.token_hex(8)}",
        "not_on_or_after": "2099-01-01T00:00:00Z",
    }
    assert assertion_first_use(IDP_A, info) is True
    assert assertion_first_use(IDP_A, info) is False


def test_expired_assertion_is_refused(client, federation, sp_metadata):
    response = sign_in(client, federation.idp_a, sp_metadata, person(), lifetime_minutes=-10)
    assert response.status_code == 403
    assert signed_in_user(client) is None


def test_response_for_no_request_of_this_browser_is_refused(client, federation, sp_metadata):
    other = client.__class__()
    saml_response, relay = federation.idp_a.answer(
        start(other, federation.idp_a), sp_metadata, person()
    )
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 403
    assert signed_in_user(client) is None


def test_acs_without_a_response_is_a_400(client, federation):
    assert client.post("/saml2/acs/", {}).status_code == 400
    assert client.post("/saml2/acs/", {"SAMLResponse": "not base64 at all"}).status_code in (
        400,
        403,
    )


def _signature_of(text: str) -> str:
    """The aggregate's signature element, whatever prefix the serialiser chose for it."""
    return re.search(r"<(\w+:)?Signature[ >].*?</\1Signature>", text, re.S).group(0)


def _wrapped(text: str, outer_id: str) -> str:
    """The genuine signed aggregate inside an outer one that names an evil IdP and carries
    a copy of the genuine signature (an XML signature wrapping attempt)."""
    inner = text[re.search(r"<(\w+:)?EntitiesDescriptor[ >]", text).start() :]
    signature = _signature_of(text)
    prefix = re.match(r"<(\w+):", signature).group(1)
    evil = (
        '<md:EntityDescriptor entityID="https://evil.example.org/idp"><md:IDPSSODescriptor '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        'Location="https://evil.example.org/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
    )
    return (
        '<?xml version="1.0"?><md:EntitiesDescriptor '
        'xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:{prefix}="http://www.w3.org/2000/09/xmldsig#" ID="{outer_id}">'
        + signature
        + evil
        + inner
        + "</md:EntitiesDescriptor>"
    )


@pytest.mark.parametrize(
    "damage", ["tampered", "other_key", "unsigned", "wrapped", "wrapped_same_id"]
)
def test_federation_metadata_without_a_valid_signature_is_refused(
    client, federation, damage, settings
):
    text = federation.metadata.read_text()
    if damage == "tampered":
        text = text.replace("https://idp.example.ac.jp/sso", "https://evil.example.org/sso")
    elif damage == "other_key":
        rogue = make_keypair(federation.folder, "rogue-federation")
        text = federation_metadata(
            [federation.idp_a.metadata_config], rogue, federation.folder / "rogue.xml"
        ).read_text()
    elif damage == "unsigned":
        text = text.replace(_signature_of(text), "")
    elif damage == "wrapped":
        text = _wrapped(text, "outer")
    elif damage == "wrapped_same_id":
        text = _wrapped(text, "fed-aggregate")
    bad = federation.folder / f"bad-{damage}.xml"
    bad.write_text(text)
    settings.KURA_SAML_METADATA_FILE = str(bad)

    with pytest.raises(SignatureError):
        saml_config._load(with_federation=True)
    response = client.get("/saml2/login/", {"idp": IDP_A})
    assert response.status_code == 503
    assert "could not be loaded" in response.content.decode()


def test_expired_federation_metadata_is_refused(client, federation, settings):
    expired = federation_metadata(
        [federation.idp_a.metadata_config],
        federation.fed,
        federation.folder / "expired.xml",
        valid_hours=-1,
    )
    settings.KURA_SAML_METADATA_FILE = str(expired)
    assert client.get("/saml2/login/", {"idp": IDP_A}).status_code == 503


def test_good_metadata_loads_both_idps(federation):
    conf = saml_config._load(with_federation=True)
    assert {IDP_A, IDP_B} <= set(conf.metadata.identity_providers())


def test_signing_in_while_signed_in_links_the_eppn_to_the_current_account(
    client, federation, sp_metadata
):
    local = User.objects.create_user("yamada", password="pw-12345-long")
    client.force_login(local)

    response = link_in(client, federation.idp_a, sp_metadata, person())

    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_user(client) == local
    assert local.identities.get().subject == "taro@example.ac.jp"
    assert User.objects.count() == 1
    assert "GakuNin is now linked" in client.get("/").content.decode()
    # From now on GakuNin alone reaches the same account.
    client.logout()
    sign_in(client, federation.idp_a, sp_metadata, person())
    assert signed_in_user(client) == local


def test_linking_works_when_the_browser_withholds_the_session_cookie_on_the_idps_post(
    client, federation, sp_metadata
):
    """Browsers do not send a SameSite=Lax session cookie with a cross-site POST: the link
    is kept with the AuthnRequest in the SAML session, and finished on the same-site GET
    the ACS redirects to (a top-level navigation, which carries the session cookie)."""
    local = User.objects.create_user("yamada", password="pw-12345-long")
    client.force_login(local)
    link = ask_to_link(client)
    saml_response, relay = federation.idp_a.answer(
        start(client, federation.idp_a, link=link), sp_metadata, person()
    )
    session_cookie = client.cookies.pop("sessionid")

    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})

    assert response.status_code == 302 and response["Location"] == "/saml2/login/?finish=link"
    assert not local.identities.exists()  # nobody signed in or linked by the ACS itself
    assert "sessionid" not in client.cookies or not client.cookies["sessionid"].value
    client.cookies["sessionid"] = session_cookie.value
    assert client.get(response["Location"]).status_code == 302
    assert signed_in_user(client) == local
    assert local.identities.get().subject == "taro@example.ac.jp"


def test_a_sign_in_started_by_a_plain_link_does_not_link(client, federation, sp_metadata):
    """A link another site makes a signed-in browser follow (GET /saml2/login/?idp=…) must
    not attach the ePPN that comes back — it may be the other party's, from their IdP."""
    victim = User.objects.create_user("victim", password="pw-12345-long")
    client.force_login(victim)

    response = sign_in(client, federation.idp_a, sp_metadata, person("mallory@example.ac.jp"))

    assert response.status_code == 302
    assert not victim.identities.exists()
    assert signed_in_user(client) != victim  # the browser now holds mallory's own account


def test_linking_starts_with_a_post_carrying_the_csrf_token(federation):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(User.objects.create_user("yamada", password="pw-12345-long"))
    assert browser.post("/saml2/login/", {"next": "/"}).status_code == 403
    page = browser.get("/accounts/login/")
    assert 'action="/saml2/login/"' in page.content.decode()
    token = page.context["csrf_token"]
    assert (
        browser.post("/saml2/login/", {"next": "/", "csrfmiddlewaretoken": str(token)}).status_code
        == 302
    )


def test_linking_an_eppn_another_account_holds_is_refused(client, federation, sp_metadata):
    sign_in(client, federation.idp_a, sp_metadata, person())
    holder = signed_in_user(client)
    client.logout()
    other = User.objects.create_user("someone-else", password="pw-12345-long")
    client.force_login(other)

    response = link_in(client, federation.idp_a, sp_metadata, person())

    assert response.status_code == 403
    assert "already linked to another Kura account" in response.content.decode()
    assert not other.identities.exists()
    assert ExternalIdentity.objects.get(subject="taro@example.ac.jp").user == holder


def test_a_disabled_account_does_not_sign_in(client, federation, sp_metadata):
    sign_in(client, federation.idp_a, sp_metadata, person())
    User.objects.update(is_active=False)
    client.logout()

    response = sign_in(client, federation.idp_a, sp_metadata, person())

    assert response.status_code == 403
    assert "This Kura account is disabled." in response.content.decode()
    assert signed_in_user(client) is None


def test_no_account_is_made_when_just_in_time_accounts_are_off(
    client, federation, sp_metadata, settings
):
    settings.KURA_SAML_CREATE_ACCOUNTS = False
    response = sign_in(client, federation.idp_a, sp_metadata, person())
    assert response.status_code == 403
    assert "not linked to a Kura account" in response.content.decode()
    assert not User.objects.exists()


def test_chooser_lists_the_idps_searches_and_redirects_to_the_chosen_one(client, federation):
    page = client.get("/saml2/login/", {"next": "/datasets/"})
    assert page.status_code == 200
    names = [c["name"] for c in page.context["choices"]]
    assert names == ["Example University", "Other University"]

    found = client.get("/saml2/login/", {"q": "other"})
    assert [c["entity_id"] for c in found.context["choices"]] == [IDP_B]

    chosen = client.get(found.context["choices"][0]["url"])
    assert chosen.status_code == 302
    assert chosen["Location"].startswith("https://idp.other-univ.ac.jp/sso?SAMLRequest=")
    assert chosen.cookies["kura_saml_idp"].value == IDP_B

    again = client.get("/saml2/login/")
    first = again.context["choices"][0]
    assert first["entity_id"] == IDP_B and first["remembered"]


def test_chooser_names_idps_in_the_pages_language_and_searches_both(client, federation):
    client.cookies["django_language"] = "ja"
    page = client.get("/saml2/login/", HTTP_ACCEPT_LANGUAGE="ja")
    # Japanese where the metadata has it, else the English name.
    assert [c["name"] for c in page.context["choices"]] == ["Other University", "例示大学"]
    found = client.get("/saml2/login/", {"q": "example"}, HTTP_ACCEPT_LANGUAGE="ja")
    assert [c["name"] for c in found.context["choices"]] == ["例示大学"]


def test_chooser_refuses_an_idp_outside_the_federation(client, federation):
    response = client.get("/saml2/login/", {"idp": "https://evil.example.org/idp"})
    assert response.status_code == 400
    assert "not in the GakuNin federation" in response.content.decode()


def test_external_discovery_service(client, federation, settings):
    settings.SAML2_DISCO_URL = "https://ds.gakunin.nii.ac.jp/WAYF"
    response = client.get("/saml2/login/", {"next": "/"})
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == settings.SAML2_DISCO_URL
    query = parse_qs(location.query)
    assert query["entityID"] == ["http://testserver/saml2/metadata/"]
    assert query["returnIDParam"] == ["idp"]
    assert query["return"][0].startswith("http://testserver/saml2/login/")


def test_single_logout_goes_to_the_idp_and_ends_the_local_session(client, federation, sp_metadata):
    sign_in(client, federation.idp_a, sp_metadata, person())
    assert signed_in_user(client) is not None

    response = client.post("/accounts/logout/", follow=False)
    # A 307: the browser repeats the POST (with its CSRF token) at /saml2/logout/.
    assert response.status_code == 307 and response["Location"] == "/saml2/logout/"
    response = client.post("/saml2/logout/")

    # A page with a link to the IdP: a redirect from the logout form's POST to another
    # site would break the page's CSP (form-action 'self').
    assert response.status_code == 200
    assert response.context["continue_url"].startswith("https://idp.example.ac.jp/slo?SAMLRequest=")
    assert 'id="saml-logout-continue"' in response.content.decode()
    assert signed_in_user(client) is None


def test_single_logout_round_trip_through_the_idp(client, federation, sp_metadata):
    sign_in(client, federation.idp_a, sp_metadata, person())
    to_idp = client.post("/saml2/logout/").context["continue_url"]

    # The IdP checks Kura's signed LogoutRequest and answers with a signed LogoutResponse.
    idp = federation.idp_a.server(sp_metadata)
    query = parse_qs(urlsplit(to_idp).query)
    request = idp.parse_logout_request(
        query["SAMLRequest"][0],
        BINDING_HTTP_REDIRECT,
        relay_state=query.get("RelayState", [""])[0],
        sigalg=query["SigAlg"][0],
        signature=query["Signature"][0],
    )
    answer = idp.create_logout_response(request.message, [BINDING_HTTP_REDIRECT])
    http = idp.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(answer),
        "http://testserver/saml2/ls/",
        query.get("RelayState", [""])[0],
        response=True,
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    back = urlsplit(dict(http["headers"])["Location"])

    response = client.get(f"{back.path}?{back.query}")

    assert response.status_code == 302 and response["Location"] == "/"
    assert signed_in_user(client) is None


@pytest.mark.parametrize(
    "query", ["SAMLRequest=bm90IHNhbWw%3D", "SAMLResponse=bm90IHNhbWw%3D", "SAMLResponse=%%%"]
)
def test_malformed_logout_messages_are_a_400(client, federation, query):
    response = client.get(f"/saml2/ls/?{query}")
    assert response.status_code in (400, 403)


def test_saml_routes_are_404_while_switched_off(client, settings):
    settings.KURA_SAML_ENABLED = False
    for url in ("/saml2/login/", "/saml2/metadata/", "/saml2/acs/"):
        assert client.get(url).status_code == 404


def test_login_page_offers_gakunin(client, federation):
    page = client.get("/accounts/login/?next=/datasets/")
    assert [m.key for m in page.context["sign_in_methods"]] == ["saml"]
    assert 'href="/saml2/login/?next=%2Fdatasets%2F"' in page.content.decode()
    assert 'id="login-form"' in page.content.decode()


def test_local_passwords_off_hides_the_form_and_refuses_passwords(client, settings):
    settings.KURA_LOCAL_PASSWORDS = False
    User.objects.create_user("yamada", password="pw-12345-long")

    page = client.get("/accounts/login/")
    assert 'id="login-form"' not in page.content.decode()
    response = client.post("/accounts/login/", {"username": "yamada", "password": "pw-12345-long"})
    assert response.status_code == 403
    assert signed_in_user(client) is None
    User.objects.filter(username="yamada").update(is_staff=True, is_superuser=True)
    admin = client.post(
        "/admin/login/?next=/admin/", {"username": "yamada", "password": "pw-12345-long"}
    )
    assert admin.status_code == 200  # the admin's form again, not a redirect into it
    assert signed_in_user(client) is None


def test_local_passwords_on_still_sign_in(client):
    User.objects.create_user("yamada", password="pw-12345-long")
    response = client.post("/accounts/login/", {"username": "yamada", "password": "pw-12345-long"})
    assert response.status_code == 302
    assert signed_in_user(client).username == "yamada"


def test_a_failed_metadata_reload_keeps_the_last_good_metadata(federation, settings):
    settings.KURA_SAML_METADATA_REFRESH_SECONDS = 0  # reload on every use
    good = saml_config.sp_config()
    federation.metadata.write_text(
        federation.metadata.read_text().replace("idp.example.ac.jp/sso", "evil.example.org/sso")
    )

    kept = saml_config.sp_config()

    assert kept is good
    assert IDP_A in kept.metadata.identity_providers()


def test_refused_sign_ins_do_not_lock_gakunin_out(client, federation, sp_metadata, settings):
    """Each refusal counts as a failed login for django-axes; they must not pause the
    sign-in of the next person from the same address."""
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):
        refused = sign_in(
            client, federation.idp_a, sp_metadata, person(eduPersonPrincipalName=None)
        )
        assert refused.status_code == 403
    response = sign_in(client, federation.idp_a, sp_metadata, person())
    assert response.status_code == 302
    assert signed_in_user(client) is not None


def test_federation_metadata_from_a_url(federation, settings):
    """The aggregate fetched over HTTP, checked the same way (a tampered copy is refused)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(federation.folder))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        settings.KURA_SAML_METADATA_FILE = ""
        settings.KURA_SAML_METADATA_URL = f"{base}/federation.xml"
        assert IDP_B in saml_config._load(with_federation=True).metadata.identity_providers()

        (federation.folder / "tampered.xml").write_text(
            federation.metadata.read_text().replace("Other University", "Evil University")
        )
        settings.KURA_SAML_METADATA_URL = f"{base}/tampered.xml"
        with pytest.raises(SignatureError):
            saml_config._load(with_federation=True)
    finally:
        server.shutdown()
        server.server_close()


def test_enabling_saml_without_its_keys_and_metadata_refuses_to_start(tmp_path):
    from tests.test_settings import DEVELOPMENT, _settings_in_subprocess

    result = _settings_in_subprocess(tmp_path, KURA_SAML_ENABLED="true", **DEVELOPMENT)

    assert result.returncode != 0
    assert (
        "KURA_SAML_ENABLED needs KURA_SAML_SP_KEY_FILE, KURA_SAML_SP_CERT_FILE, "
        "KURA_SAML_METADATA_CERT, KURA_SAML_METADATA_URL or KURA_SAML_METADATA_FILE"
    ) in result.stderr


def test_linking_with_an_external_discovery_service_continues_by_a_link(
    client, federation, sp_metadata, settings
):
    settings.SAML2_DISCO_URL = "https://ds.gakunin.nii.ac.jp/WAYF"
    local = User.objects.create_user("yamada", password="pw-12345-long")
    client.force_login(local)

    page = client.post("/saml2/login/", {"next": "/datasets/"})

    assert page.status_code == 200
    continue_url = re.search(r'href="(/saml2/login/\?[^"]+)"', page.content.decode()).group(1)
    continue_url = continue_url.replace("&amp;", "&")
    assert "next=%2Fdatasets%2F" in continue_url and "link=" in continue_url
    to_ds = client.get(continue_url)["Location"]
    assert to_ds.startswith(settings.SAML2_DISCO_URL)
    assert "datasets" not in to_ds  # the way back is an opaque token
    back = urlsplit(parse_qs(urlsplit(to_ds).query)["return"][0])
    # The discovery service returns with the chosen IdP; the link goes on from there.
    to_idp = client.get(f"{back.path}?{back.query}&idp={IDP_A}")["Location"]
    saml_response, relay = federation.idp_a.answer(to_idp, sp_metadata, person())
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response["Location"] == "/saml2/login/?finish=link"
    assert client.get(response["Location"])["Location"] == "/datasets/"
    assert local.identities.get().subject == "taro@example.ac.jp"
