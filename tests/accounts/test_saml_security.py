"""GakuNin sign-in against the attacks of security review 17 (findings 1, 2, 4, 6, 9, 10),
with the same real IdPs and signed federation metadata as test_saml.py: IdP A may assert
``example.ac.jp``, IdP B ``other-univ.ac.jp`` (their shibmd:Scope)."""

# ruff: noqa: F811 - the fixtures of test_saml.py, imported, are the tests' arguments

import re
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from saml2 import BINDING_HTTP_REDIRECT
from saml2.ident import decode
from saml2.xmldsig import SIG_RSA_SHA256

from accounts.invitations import member_invite
from accounts.models import ExternalIdentity, Institution, Membership, Role, User
from accounts.saml.backend import SamlRefusal, eppn_check
from tests.accounts.test_saml import (  # noqa: F401 - fixtures
    IDP_A,
    ask_to_link,
    federation,
    link_in,
    person,
    sign_in,
    signed_in_user,
    sp_metadata,
    start,
)
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("scopes", "eppn", "allowed"),
    [
        ([{"regexp": False, "text": "example.ac.jp"}], "taro@Example.AC.JP", True),
        ([{"regexp": False, "text": "example.ac.jp"}], "taro@sub.example.ac.jp", False),
        (
            [{"regexp": True, "text": re.compile(r"^([a-z0-9-]+\.)?example\.ac\.jp$")}],
            "taro@lab.example.ac.jp",
            True,
        ),
        (
            [{"regexp": True, "text": re.compile(r"^([a-z0-9-]+\.)?example\.ac\.jp$")}],
            "taro@example.ac.jp.evil.org",
            False,
        ),
        ([], "taro@example.ac.jp", False),  # an IdP with no shibmd:Scope asserts no ePPN
    ],
)
def test_eppn_scope_against_the_idps_shibmd_scopes(scopes, eppn, allowed):
    if allowed:
        eppn_check(eppn, scopes)
    else:
        with pytest.raises(SamlRefusal) as refusal:
            eppn_check(eppn, scopes)
        assert refusal.value.code == SamlRefusal.OUT_OF_SCOPE


def test_another_idp_asserting_a_held_eppn_is_refused(client, federation, sp_metadata):
    sign_in(client, federation.idp_a, sp_metadata, person("taro@example.ac.jp"))
    victim = signed_in_user(client)
    client.logout()

    response = sign_in(
        client,
        federation.idp_b,
        sp_metadata,
        person("taro@example.ac.jp", mail=["attacker@other-univ.ac.jp"]),
    )

    assert response.status_code == 403
    assert "not allowed to assert" in response.content.decode()
    assert signed_in_user(client) is None
    victim.refresh_from_db()
    assert victim.email == "taro.yamada@example.ac.jp"


def test_another_idp_cannot_take_an_eppn_invitation(client, federation, sp_metadata):
    pm = MembershipFactory(role=Role.PM)
    _invitation, token = member_invite(
        actor=pm.user, project=pm.project, kind="eppn", value="hanako@example.ac.jp", role=Role.PM
    )

    response = sign_in(client, federation.idp_b, sp_metadata, person("hanako@example.ac.jp"))

    assert response.status_code == 403
    assert signed_in_user(client) is None
    assert not ExternalIdentity.objects.filter(subject="hanako@example.ac.jp").exists()
    assert client.post(f"/invitations/{token}/").status_code == 302  # to the login page
    assert Membership.objects.filter(project=pm.project).count() == 1


def test_a_scoped_affiliation_outside_the_idps_scope_is_ignored(client, federation, sp_metadata):
    Institution.objects.create(name_en="Example University", saml_scopes="example.ac.jp")
    response = sign_in(
        client,
        federation.idp_b,
        sp_metadata,
        person("hanako@other-univ.ac.jp", eduPersonScopedAffiliation=["staff@example.ac.jp"]),
    )
    assert response.status_code == 302
    assert signed_in_user(client).institution is None


def test_an_eppn_linked_through_another_idp_is_refused_until_an_administrator_unlinks_it(
    client, federation, sp_metadata, admin_client
):
    """An institution that changed its IdP's entityID: the old identity names the old one."""
    holder = UserFactory(email="taro@example.ac.jp")
    identity = ExternalIdentity.objects.create(
        user=holder,
        provider="saml",
        subject="taro@example.ac.jp",
        issuer="https://old-idp.example.ac.jp/idp/shibboleth",
    )

    response = sign_in(client, federation.idp_a, sp_metadata, person("taro@example.ac.jp"))

    assert response.status_code == 403
    assert "administrator to unlink the old identity" in response.content.decode()
    assert signed_in_user(client) is None
    holder.refresh_from_db()
    assert holder.email == "taro@example.ac.jp"

    # The administrator finds it by its subject and unlinks it; linking again then works.
    changelist = reverse("admin:accounts_externalidentity_changelist")
    listed = admin_client.get(changelist, {"q": "taro@example"})
    assert list(listed.context["cl"].result_list) == [identity]
    delete_url = reverse("admin:accounts_externalidentity_delete", args=[identity.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not ExternalIdentity.objects.exists()
    client.force_login(holder)
    assert link_in(client, federation.idp_a, sp_metadata, person()).status_code == 302
    assert ExternalIdentity.objects.get(user=holder).issuer == IDP_A


def test_identities_are_read_only_in_the_admin(admin_client):
    identity = ExternalIdentity.objects.create(
        user=UserFactory(), provider="saml", subject="taro@example.ac.jp", issuer=IDP_A
    )
    change_url = reverse("admin:accounts_externalidentity_change", args=[identity.pk])
    assert admin_client.get(reverse("admin:accounts_externalidentity_add")).status_code == 403
    assert admin_client.get(change_url).status_code == 200  # to look at
    admin_client.post(change_url, {"subject": "evil@example.ac.jp", "issuer": "x"})
    identity.refresh_from_db()
    assert (identity.subject, identity.issuer) == ("taro@example.ac.jp", IDP_A)


@pytest.mark.parametrize(
    "eppn",
    ["a" * 300 + "@example.ac.jp", "no-scope", "@example.ac.jp", "a@b@example.ac.jp", "a@"],
    ids=["too_long", "no_scope", "empty_local_part", "two_scopes", "empty_scope"],
)
def test_a_malformed_eppn_is_refused_with_a_page(federation, sp_metadata, eppn):
    client = Client(raise_request_exception=False)
    saml_response, relay = federation.idp_a.answer(
        start(client, federation.idp_a), sp_metadata, person(eppn)
    )

    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})

    assert response.status_code == 403
    assert "eduPersonPrincipalName Kura cannot use" in response.content.decode()
    assert not User.objects.exists()


def test_the_next_person_on_a_shared_browser_gets_nothing_of_the_last(
    client, federation, sp_metadata
):
    victim = UserFactory()
    client.force_login(victim)
    authn_url = start(client, federation.idp_a, link=ask_to_link(client))  # then abandoned
    assert client.post("/accounts/logout/").status_code == 302
    assert signed_in_user(client) is None

    # The next person goes Back to the IdP's page and signs in there as themselves.
    saml_response, relay = federation.idp_a.answer(
        authn_url, sp_metadata, person("next.person@example.ac.jp")
    )
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})

    assert response.status_code == 403  # the SAML session went with the sign-out
    assert signed_in_user(client) is None
    assert not ExternalIdentity.objects.exists()


def test_a_link_is_finished_only_for_the_account_that_asked(client, federation, sp_metadata):
    victim = UserFactory()
    client.force_login(victim)
    link = ask_to_link(client)
    saml_response, relay = federation.idp_a.answer(
        start(client, federation.idp_a, link=link), sp_metadata, person()
    )
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 302
    # The ACS signed nobody in; someone else is signed in when the browser comes back.
    client.logout()
    other = UserFactory()
    client.force_login(other)

    finish = client.get(response["Location"])

    assert finish.status_code == 403
    assert "could not be linked" in finish.content.decode()
    assert signed_in_user(client) == other
    assert not ExternalIdentity.objects.exists()
    assert client.get(response["Location"]).status_code == 403  # and it is gone


def test_a_plain_get_after_an_abandoned_link_click_does_not_link(client, federation, sp_metadata):
    victim = UserFactory()
    client.force_login(victim)
    ask_to_link(client)  # pressed "Link GakuNin", then closed the chooser
    # Later a page the victim visits navigates the browser to /saml2/login/?idp=B.
    response = sign_in(client, federation.idp_b, sp_metadata, person("evil@other-univ.ac.jp"))

    assert response.status_code == 302
    assert not victim.identities.exists()
    assert ExternalIdentity.objects.get(subject="evil@other-univ.ac.jp").user != victim


def test_a_link_nonce_works_once(client, federation, sp_metadata):
    victim = UserFactory()
    client.force_login(victim)
    link = ask_to_link(client)
    start(client, federation.idp_a, link=link)  # abandoned at the IdP
    response = sign_in(client, federation.idp_b, sp_metadata, person("evil@other-univ.ac.jp"))
    # sign_in starts again without the nonce; reusing the nonce is no better:
    saml_response, relay = federation.idp_b.answer(
        start(client, federation.idp_b, link=link), sp_metadata, person("evil2@other-univ.ac.jp")
    )
    client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 302
    assert not victim.identities.exists()


def test_a_forged_link_nonce_links_nothing(client, federation, sp_metadata):
    victim = UserFactory()
    client.force_login(victim)
    ask_to_link(client)
    saml_response, relay = federation.idp_a.answer(
        start(client, federation.idp_a, link="nonce-ü"), sp_metadata, person()
    )
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not victim.identities.exists()


def test_the_invitation_token_stays_out_of_the_relay_state(client, federation, sp_metadata):
    location = start(client, federation.idp_a, next_url="/invitations/SECRETTOKEN123/")
    assert "SECRETTOKEN123" not in unquote(location)
    relay = parse_qs(urlsplit(location).query)["RelayState"][0]
    assert relay.startswith("relay.")

    saml_response, relay = federation.idp_a.answer(location, sp_metadata, person())
    response = client.post("/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": relay})

    assert response.status_code == 302
    assert response["Location"] == "/invitations/SECRETTOKEN123/"


def test_a_relay_state_of_another_browser_leads_home(client, federation, sp_metadata):
    other = Client()
    start(other, federation.idp_a, next_url="/invitations/SECRETTOKEN123/")
    saml_response, relay = federation.idp_a.answer(
        start(client, federation.idp_a, next_url="/datasets/"), sp_metadata, person()
    )
    response = client.post(
        "/saml2/acs/", {"SAMLResponse": saml_response, "RelayState": "/evil/" + relay}
    )
    # Where any sign-in without a page to return to lands (My page or home).
    assert response.status_code == 302 and response["Location"] == reverse("signed-in")


def test_saml_logout_needs_a_post(federation):
    browser = Client()
    browser.force_login(UserFactory())

    assert browser.get("/saml2/logout/").status_code == 405
    assert signed_in_user(browser) is not None
    assert browser.post("/saml2/logout/").status_code == 302
    assert signed_in_user(browser) is None


def test_idp_initiated_single_logout_still_signs_out(client, federation, sp_metadata):
    sign_in(client, federation.idp_a, sp_metadata, person())
    assert signed_in_user(client) is not None
    name_id = decode(_saml_session(client)["_saml2_subject_id"])
    idp = federation.idp_a.server(sp_metadata)
    _request_id, request = idp.create_logout_request(
        "http://testserver/saml2/ls/", "http://testserver/saml2/metadata/", name_id=name_id
    )
    http = idp.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        "http://testserver/saml2/ls/",
        "",
        sign=True,
        sigalg=SIG_RSA_SHA256,
    )
    to_sp = urlsplit(dict(http["headers"])["Location"])

    response = client.get(f"{to_sp.path}?{to_sp.query}")

    assert response.status_code == 302
    assert signed_in_user(client) is None


def _saml_session(client) -> dict:
    from importlib import import_module

    from django.conf import settings

    store = import_module(settings.SESSION_ENGINE).SessionStore
    cookie = client.cookies[getattr(settings, "SAML_SESSION_COOKIE_NAME", "saml_session")]
    return store(cookie.value).load()
