"""ORCID sign-in (OpenID Connect) against a real OpenID provider in its own process
(django-oauth-toolkit, tests/oidc_provider/): the browser's round trip is Kura's test
client on Kura's side and a ``requests`` session signed in at the provider."""

import logging
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests
from django.core.exceptions import SuspiciousOperation
from django.urls import reverse

from accounts.models import ExternalIdentity, User
from accounts.orcid import LINK_MAX_AGE_SECONDS, LINK_SESSION_KEY, OrcidBackend, orcid_id_valid
from tests.accounts.test_saml import federation, sp_metadata  # noqa: F401 - fixtures
from tests.accounts.test_saml import person as saml_person
from tests.accounts.test_saml import sign_in as saml_sign_in
from tests.factories import UserFactory
from tests.oidc_provider.fixtures import (  # noqa: F401 - fixtures
    KURA_CLIENT,
    KURA_REDIRECT_URI,
    OTHER_CLIENT,
    OTHER_REDIRECT_URI,
    PEOPLE,
    oidc_provider,
    orcid_settings,
    provider_clock,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("orcid_settings")]

CARBERRY = PEOPLE["carberry"]["username"]
SATO = PEOPLE["sato"]["username"]


class ProviderBrowser:
    """A person's browser at the provider, signed in there."""

    def __init__(self, provider, person: str):
        self.base_url = provider.base_url
        self.http = requests.Session()
        answer = self.http.post(
            f"{self.base_url}/login/",
            data={**{k: PEOPLE[person][k] for k in ("username", "password")}, "next": "/"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text

    def authorize(self, url: str) -> str:
        """Where the provider sends the browser back to (with a code)."""
        answer = self.http.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]

    def id_token(self, client: tuple[str, str], redirect_uri: str, nonce: str) -> str:
        """An ID token the provider issues to ``client`` for this person."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client[0],
                "redirect_uri": redirect_uri,
                "scope": "openid",
                "state": "s",
                "nonce": nonce,
            }
        )
        back = self.authorize(f"{self.base_url}/oauth/authorize?{query}")
        code = parse_qs(urlsplit(back).query)["code"][0]
        answer = requests.post(
            f"{self.base_url}/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": client[0],
                "client_secret": client[1],
            },
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["id_token"]


def _to_orcid(client, start: str = "/oidc/authenticate/") -> str:
    answer = client.get(start)
    assert answer.status_code == 302
    return answer["Location"]


def _back_to_kura(client, location: str):
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == KURA_REDIRECT_URI
    return client.get(f"{parts.path}?{parts.query}")


def _sign_in(client, oidc_provider, person: str, start: str = "/oidc/authenticate/"):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, person)
    return _back_to_kura(client, browser.authorize(_to_orcid(client, start)))


def _signed_in_user(client) -> User | None:
    pk = client.session.get("_auth_user_id")
    return User.objects.get(pk=pk) if pk else None


def _replace_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return urlunsplit(parts._replace(query=urlencode(query)))


# --- signing in -------------------------------------------------------------------------


def test_first_sign_in_creates_an_account_with_the_verified_id(client, oidc_provider):  # noqa: F811
    answer = _sign_in(client, oidc_provider, "carberry")

    assert answer.status_code == 302
    user = _signed_in_user(client)
    assert user is not None
    assert (user.orcid, user.orcid_verified) == (CARBERRY, True)
    assert (user.first_name, user.last_name, user.name_en) == (
        "Josiah",
        "Carberry",
        "Josiah Carberry",
    )
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.provider, identity.subject) == ("orcid", CARBERRY)
    assert identity.issuer == oidc_provider.base_url
    assert client.get(reverse("home")).context["user"] == user


def test_returning_sign_in_reaches_the_same_account(client, oidc_provider):  # noqa: F811
    _sign_in(client, oidc_provider, "carberry")
    first = _signed_in_user(client)
    client.logout()

    answer = _sign_in(client, oidc_provider, "carberry")

    assert answer.status_code == 302
    assert _signed_in_user(client) == first
    assert User.objects.count() == 1


def test_next_is_kept_through_the_round_trip(client, oidc_provider):  # noqa: F811
    target = reverse("api-tokens")

    answer = _sign_in(client, oidc_provider, "carberry", f"/oidc/authenticate/?next={target}")

    assert answer["Location"] == target


def test_login_page_offers_orcid_only_when_enabled(client, settings):
    assert "Sign in with ORCID" in client.get(reverse("login")).content.decode()

    settings.KURA_ORCID_CLIENT_ID = ""

    assert "Sign in with ORCID" not in client.get(reverse("login")).content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


def test_without_just_in_time_accounts_an_unknown_id_is_refused(client, oidc_provider, settings):  # noqa: F811
    settings.KURA_ORCID_CREATE_ACCOUNTS = False

    answer = _sign_in(client, oidc_provider, "carberry")

    assert answer.status_code == 403
    assert "No Kura account is linked to the ORCID iD" in answer.content.decode()
    assert _signed_in_user(client) is None
    assert not User.objects.exists()


def test_an_inactive_account_is_not_signed_in(client, oidc_provider):  # noqa: F811
    _sign_in(client, oidc_provider, "carberry")
    User.objects.update(is_active=False)
    client.logout()

    answer = _sign_in(client, oidc_provider, "carberry")

    assert answer.status_code == 400
    assert _signed_in_user(client) is None


def test_a_person_who_declines_at_orcid_is_told_so(client):
    to_orcid = _to_orcid(client)
    state = parse_qs(urlsplit(to_orcid).query)["state"][0]

    answer = client.get("/oidc/callback/", {"error": "access_denied", "state": state})

    assert answer.status_code == 400
    assert "You did not allow Kura to read your ORCID iD" in answer.content.decode()


# --- refusals: state, nonce, audience ----------------------------------------------------


def test_a_state_this_browser_never_sent_is_refused(client, oidc_provider):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    back = browser.authorize(_to_orcid(client))

    answer = _back_to_kura(client, _replace_query(back, state="forged-state"))

    assert answer.status_code == 400
    assert "was not started in this browser" in answer.content.decode()
    assert _signed_in_user(client) is None
    assert not User.objects.exists()


def test_a_state_is_used_once(client, oidc_provider):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    back = browser.authorize(_to_orcid(client))
    assert _back_to_kura(client, back).status_code == 302
    client.logout()
    _to_orcid(client)  # a new flow in the same browser: a session with states again

    answer = _back_to_kura(client, back)

    assert answer.status_code == 400
    assert _signed_in_user(client) is None


def test_an_id_token_with_another_nonce_is_refused(client, oidc_provider):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    to_orcid = _to_orcid(client)
    # The provider signs whatever nonce it is sent: one from another sign-in attempt.
    back = browser.authorize(_replace_query(to_orcid, nonce="a-nonce-from-elsewhere"))

    answer = _back_to_kura(client, back)

    assert answer.status_code == 400
    assert "could not be verified" in answer.content.decode()
    assert _signed_in_user(client) is None
    assert not User.objects.exists()


def test_an_id_token_for_another_audience_is_refused(oidc_provider):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    ours = browser.id_token(KURA_CLIENT, KURA_REDIRECT_URI, nonce="n1")
    theirs = browser.id_token(OTHER_CLIENT, OTHER_REDIRECT_URI, nonce="n2")
    backend = OrcidBackend()

    assert backend.verify_token(ours, nonce="n1")["sub"] == CARBERRY  # signed and ours
    with pytest.raises(SuspiciousOperation, match="another audience"):
        backend.verify_token(theirs, nonce="n2")


def test_an_id_token_from_another_issuer_is_refused(oidc_provider, settings):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    token = browser.id_token(KURA_CLIENT, KURA_REDIRECT_URI, nonce="n1")
    settings.KURA_ORCID_ISSUER = "https://orcid.org"

    with pytest.raises(SuspiciousOperation, match="another issuer"):
        OrcidBackend().verify_token(token, nonce="n1")


def test_a_code_issued_to_another_application_is_refused(client, oidc_provider):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    to_orcid = _to_orcid(client)
    # The person's browser is sent to the other application's authorisation, but the
    # answer is delivered to Kura with Kura's state.
    back = browser.authorize(_replace_query(to_orcid, client_id=OTHER_CLIENT[0]))

    answer = _back_to_kura(client, back)

    assert answer.status_code == 400
    assert _signed_in_user(client) is None
    assert not User.objects.exists()


def test_orcid_out_of_reach_is_a_clear_502(client, oidc_provider, settings):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    back = browser.authorize(_to_orcid(client))
    settings.OIDC_OP_TOKEN_ENDPOINT = "http://127.0.0.1:9/oauth/token"  # nothing listens

    answer = _back_to_kura(client, back)

    assert answer.status_code == 502
    assert "ORCID did not confirm the sign-in" in answer.content.decode()
    assert _signed_in_user(client) is None


# --- the ID token's times ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_ahead", "leeway", "signed_in"),
    [
        (30, 60, True),  # a provider clock half a minute fast: within the default leeway
        (30, 0, False),  # the same without leeway: issued "in the future"
        (120, 60, False),  # two minutes fast: beyond the leeway
        (-2 * 86400, 60, False),  # two days slow: the token expired long ago
    ],
)
def test_the_id_tokens_times_are_checked_with_the_leeway(
    client,
    oidc_provider,  # noqa: F811
    provider_clock,  # noqa: F811
    settings,
    provider_ahead,
    leeway,
    signed_in,
):
    settings.KURA_ORCID_LEEWAY_SECONDS = leeway
    provider_clock(provider_ahead)

    answer = _sign_in(client, oidc_provider, "carberry")

    if signed_in:
        assert answer.status_code == 302
        assert _signed_in_user(client).orcid == CARBERRY
    else:
        assert answer.status_code == 400
        assert "could not be verified" in answer.content.decode()
        assert _signed_in_user(client) is None
        assert not User.objects.exists()


def test_a_malformed_id_token_is_refused(client, oidc_provider, monkeypatch):  # noqa: F811
    exchange = OrcidBackend.get_token

    def garbled(backend, payload):  # ORCID's real answer, its ID token garbled on the way
        return exchange(backend, payload) | {"id_token": "not-a-jwt"}

    monkeypatch.setattr(OrcidBackend, "get_token", garbled)

    answer = _sign_in(client, oidc_provider, "carberry")

    assert answer.status_code == 400
    assert "could not be verified" in answer.content.decode()
    assert _signed_in_user(client) is None


# --- an error answer signs nobody out ------------------------------------------------------


def test_an_error_answer_any_site_can_send_signs_nobody_out(client):
    person = UserFactory()
    client.force_login(person)

    # e.g. <img src="https://kura.example/oidc/callback/?error=x"> on another site's page
    answer = client.get("/oidc/callback/", {"error": "x"})

    assert answer.status_code == 400
    assert "ORCID did not sign you in" in answer.content.decode()
    assert _signed_in_user(client) == person


def test_an_error_answer_uses_up_its_state(client, oidc_provider):  # noqa: F811
    browser = ProviderBrowser(oidc_provider, "carberry")
    back = browser.authorize(_to_orcid(client))
    state = parse_qs(urlsplit(back).query)["state"][0]
    assert (
        client.get("/oidc/callback/", {"error": "access_denied", "state": state}).status_code == 400
    )

    answer = _back_to_kura(client, back)

    assert answer.status_code == 400
    assert _signed_in_user(client) is None


def test_an_error_answer_from_elsewhere_leaves_a_pending_link(client, oidc_provider):  # noqa: F811
    local = UserFactory()
    client.force_login(local)
    start = client.post(reverse("account-orcid"))["Location"]
    back = ProviderBrowser(oidc_provider, "carberry").authorize(_to_orcid(client, start))
    assert client.get("/oidc/callback/", {"error": "x", "state": "not-ours"}).status_code == 400

    answer = _back_to_kura(client, back)

    assert answer.status_code == 302
    assert ExternalIdentity.objects.get(subject=CARBERRY).user == local
    assert _signed_in_user(client) == local


# --- linking ------------------------------------------------------------------------------


def _link(client, oidc_provider, person: str):  # noqa: F811
    answer = client.post(reverse("account-orcid"))
    assert answer.status_code == 302
    return _sign_in(client, oidc_provider, person, start=answer["Location"])


def test_a_signed_in_person_links_their_id(client, oidc_provider):  # noqa: F811
    local = UserFactory(orcid="0000-0000-0000-0000")  # a typed, unverified iD
    client.force_login(local)

    answer = _link(client, oidc_provider, "carberry")

    assert answer.status_code == 302
    assert answer["Location"] == reverse("account-orcid")
    local.refresh_from_db()
    assert (local.orcid, local.orcid_verified) == (CARBERRY, True)
    assert ExternalIdentity.objects.get(provider="orcid", subject=CARBERRY).user == local
    assert _signed_in_user(client) == local
    assert User.objects.count() == 1
    page = client.get(reverse("account-orcid")).content.decode()
    assert "Your ORCID iD is now linked to your account." in page
    assert f"https://orcid.org/{CARBERRY}" in page
    assert 'id="orcid-link-form"' not in page
    # Signing in with ORCID later reaches the local account.
    client.logout()
    _sign_in(client, oidc_provider, "carberry")
    assert _signed_in_user(client) == local


def test_an_id_held_by_another_account_is_refused(client, oidc_provider):  # noqa: F811
    _sign_in(client, oidc_provider, "carberry")
    holder = _signed_in_user(client)
    client.logout()
    other = UserFactory()
    client.force_login(other)

    answer = _link(client, oidc_provider, "carberry")

    assert answer.status_code == 403
    assert "already linked to another Kura account" in answer.content.decode()
    other.refresh_from_db()
    assert (other.orcid, other.orcid_verified) == ("", False)
    assert ExternalIdentity.objects.get(subject=CARBERRY).user == holder
    assert _signed_in_user(client) == other


def test_an_account_with_a_verified_id_cannot_link_a_second(client, oidc_provider):  # noqa: F811
    local = UserFactory()
    client.force_login(local)
    _link(client, oidc_provider, "carberry")

    answer = _link(client, oidc_provider, "sato")

    assert answer.status_code == 403
    local.refresh_from_db()
    assert local.orcid == CARBERRY
    assert not ExternalIdentity.objects.filter(subject=SATO).exists()


def test_a_link_flow_finished_by_someone_else_is_refused(client, oidc_provider):  # noqa: F811
    first = UserFactory()
    client.force_login(first)
    start = client.post(reverse("account-orcid"))["Location"]
    browser = ProviderBrowser(oidc_provider, "carberry")
    back = browser.authorize(_to_orcid(client, start))
    # Another account signs in in this browser meanwhile (Django starts a new session).
    client.force_login(UserFactory())

    answer = _back_to_kura(client, back)

    assert answer.status_code == 400
    assert not ExternalIdentity.objects.exists()
    assert not User.objects.filter(orcid_verified=True).exists()


def _link_started_ago(client, seconds: int) -> None:
    session = client.session
    marker = session[LINK_SESSION_KEY]
    marker["at"] -= seconds
    session[LINK_SESSION_KEY] = marker
    session.save()


@pytest.mark.parametrize(
    ("age", "linked"), [(LINK_MAX_AGE_SECONDS - 60, True), (LINK_MAX_AGE_SECONDS + 1, False)]
)
def test_a_link_started_too_long_ago_links_nothing(client, oidc_provider, age, linked):  # noqa: F811
    local = UserFactory()
    client.force_login(local)
    start = client.post(reverse("account-orcid"))["Location"]
    _link_started_ago(client, age)

    answer = _sign_in(client, oidc_provider, "carberry", start=start)

    assert _signed_in_user(client) == local
    assert User.objects.count() == 1  # no account made just in time either
    if linked:
        assert answer.status_code == 302
        assert ExternalIdentity.objects.get(subject=CARBERRY).user == local
    else:
        assert answer.status_code == 400
        assert "Linking your ORCID iD took too long" in answer.content.decode()
        assert not ExternalIdentity.objects.exists()
        local.refresh_from_db()
        assert not local.orcid_verified
    assert LINK_SESSION_KEY not in client.session


def test_logging_out_forgets_a_pending_link(client):
    client.force_login(UserFactory())
    client.post(reverse("account-orcid"))
    assert LINK_SESSION_KEY in client.session

    client.post(reverse("logout"))

    assert LINK_SESSION_KEY not in client.session


def test_a_gakunin_logout_forgets_a_pending_link_before_going_to_the_idp(
    client,
    federation,  # noqa: F811
    sp_metadata,  # noqa: F811
):
    saml_sign_in(client, federation.idp_a, sp_metadata, saml_person())
    client.post(reverse("account-orcid"))
    assert LINK_SESSION_KEY in client.session

    answer = client.post(reverse("logout"))

    # On to the IdP's single logout (a 307 repeats the POST there), which may never answer.
    assert answer.status_code == 307
    assert LINK_SESSION_KEY not in client.session


def test_the_orcid_page_needs_a_signed_in_person(client):
    answer = client.get(reverse("account-orcid"))

    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("login"))


# --- identity events in the security log ---------------------------------------------------


def _security_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "kura.security"]


def test_identity_events_are_logged_with_who_what_and_which_issuer(client, oidc_provider, caplog):  # noqa: F811
    caplog.set_level(logging.INFO, logger="kura.security")
    issuer = repr(oidc_provider.base_url)

    _sign_in(client, oidc_provider, "carberry")  # an account made just in time
    made = _signed_in_user(client)
    client.logout()
    local = UserFactory()
    client.force_login(local)
    _link(client, oidc_provider, "sato")

    lines = _security_log(caplog)
    assert (
        f"account created just in time: user={made.pk} provider=orcid subject={CARBERRY} "
        f"issuer={issuer}"
    ) in lines
    assert (
        f"identity linked: user={made.pk} provider=orcid subject='{CARBERRY}' issuer={issuer}"
        in lines
    )
    assert (
        f"identity linked: user={local.pk} provider=orcid subject='{SATO}' issuer={issuer}" in lines
    )
    assert f"ORCID iD verified: user={local.pk} orcid={SATO}" in lines
    for line in lines:  # no client secret, token or code
        assert KURA_CLIENT[1] not in line
        assert "eyJ" not in line
        assert "code=" not in line


# --- the iD ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("0000-0002-1825-0097", True),
        ("0000-0002-1694-233X", True),
        ("0000-0002-1825-0098", False),  # wrong check digit
        ("0000-0002-1825-009", False),
        ("https://orcid.org/0000-0002-1825-0097", False),
        ("", False),
    ],
)
def test_orcid_id_check_digit(value, valid):
    assert orcid_id_valid(value) is valid


# --- the verified iD in creators and exports ------------------------------------------


def test_a_verified_id_reaches_the_creators_and_every_export(client, oidc_provider):  # noqa: F811
    from datacite import schema45

    from tests.repository.datacite_xsd import assert_valid_datacite_xml
    from tests.repository.test_public import _export, _landing, _open_record

    record = _open_record()  # creator 1 has e-Rad researcher number 70312345 (tests/dmp)
    person = UserFactory(erad_researcher_number="70312345")
    client.force_login(person)
    assert _link(client, oidc_provider, "carberry").status_code == 302
    client.logout()
    orcid_uri = f"https://orcid.org/{CARBERRY}"

    first, second = record.creators.order_by("position")
    assert (first.orcid, second.orcid) == (CARBERRY, "")
    datacite = _export(client, record, "datacite-json").json()
    assert {
        "nameIdentifier": orcid_uri,
        "nameIdentifierScheme": "ORCID",
        "schemeUri": "https://orcid.org",
    } in datacite["creators"][0]["nameIdentifiers"]
    assert "nameIdentifiers" not in datacite["creators"][1]
    assert_valid_datacite_xml(schema45.tostring(datacite))
    jpcoar = _export(client, record, "jpcoar").content.decode()
    assert f'nameIdentifierScheme="ORCID" nameIdentifierURI="{orcid_uri}">{orcid_uri}<' in jpcoar
    crate = _export(client, record, "ro-crate").json()
    assert any(e.get("@id") == orcid_uri and e["@type"] == "Person" for e in crate["@graph"])
    landing = _landing(client, record)
    assert f'<{orcid_uri}>; rel="author"' in landing["Link"]
    assert f'<a class="orcid-id" href="{orcid_uri}"' in landing.content.decode()


def test_creators_edited_later_take_the_verified_id(client, oidc_provider):  # noqa: F811
    from dmp.services import record_update
    from tests.repository.test_public import _open_record

    person = UserFactory(erad_researcher_number="80123456")
    client.force_login(person)
    _link(client, oidc_provider, "carberry")
    record = _open_record()
    steward = UserFactory(is_superuser=True)
    creators = [
        {"erad_researcher_number": "80123456", "name_en": "Josiah Carberry"},
        {"erad_researcher_number": "70312345", "name_en": "Hanako Yamada"},
    ]

    record_update(actor=steward, record=record, fields={}, creators=creators)

    assert list(record.creators.order_by("position").values_list("orcid", flat=True)) == [
        CARBERRY,
        "",
    ]


def test_two_accounts_claiming_one_erad_number_give_no_id(oidc_provider):  # noqa: F811
    from dmp.services import record_creators_orcid_follow
    from tests.repository.test_public import _open_record

    record = _open_record()
    UserFactory(erad_researcher_number="70312345", orcid=SATO, orcid_verified=True)
    person = UserFactory(erad_researcher_number="70312345", orcid=CARBERRY, orcid_verified=True)

    assert record_creators_orcid_follow(user=person) == 0
    assert not record.creators.exclude(orcid="").exists()


def test_the_admin_shows_a_verified_id_read_only(admin_client):
    verified = UserFactory(orcid=CARBERRY, orcid_verified=True)
    typed = UserFactory(orcid=SATO)

    verified_page = admin_client.get(reverse("admin:accounts_user_change", args=[verified.pk]))
    typed_page = admin_client.get(reverse("admin:accounts_user_change", args=[typed.pk]))

    assert 'name="orcid"' not in verified_page.content.decode()
    assert CARBERRY in verified_page.content.decode()
    assert 'name="orcid"' in typed_page.content.decode()
    assert 'name="orcid_verified"' not in typed_page.content.decode()
