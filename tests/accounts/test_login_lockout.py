"""Guessing is throttled: wrong passwords lock a username out from one address for a while
(django-axes), and bad API tokens from one address are refused for a window — both with
429 and Retry-After, neither letting anyone lock a colleague out from elsewhere."""

import itertools

import pytest
from django.test import Client, override_settings
from rest_framework.test import APIClient

from accounts.tokens import api_token_create
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def _sign_in(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


@pytest.fixture
def user():
    return UserFactory()


def test_five_wrong_passwords_pause_that_username_from_that_address(user):
    browser = Client(REMOTE_ADDR=next(_addresses))
    for _ in range(4):
        response = _sign_in(browser, user.username, "wrong-password")
        assert response.status_code == 200  # the form again, with its error
    locked = _sign_in(browser, user.username, "wrong-password")

    assert locked.status_code == 429
    assert int(locked["Retry-After"]) == 15 * 60
    assert "paused" in locked.content.decode()
    # Even the right password waits for the cool-off: guessing cannot go on.
    again = _sign_in(browser, user.username, PASSWORD)
    assert again.status_code == 429
    assert "_auth_user_id" not in browser.session


def test_a_lockout_never_reaches_another_address_or_username(user):
    attacker = Client(REMOTE_ADDR=next(_addresses))
    for _ in range(6):
        _sign_in(attacker, user.username, "wrong-password")
    assert _sign_in(attacker, user.username, PASSWORD).status_code == 429

    colleague = Client(REMOTE_ADDR=next(_addresses))
    response = _sign_in(colleague, user.username, PASSWORD)
    assert response.status_code == 302
    assert colleague.session["_auth_user_id"] == str(user.pk)
    other = UserFactory()
    assert _sign_in(attacker, other.username, PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_count(user):
    browser = Client(REMOTE_ADDR=next(_addresses))
    for _ in range(4):
        _sign_in(browser, user.username, "wrong-password")
    assert _sign_in(browser, user.username, PASSWORD).status_code == 302
    browser.logout()
    for _ in range(4):
        assert _sign_in(browser, user.username, "wrong-password").status_code == 200
    assert _sign_in(browser, user.username, PASSWORD).status_code == 302


def test_the_lockout_page_is_in_japanese_too(user):
    browser = Client(REMOTE_ADDR=next(_addresses), HTTP_ACCEPT_LANGUAGE="ja")
    for _ in range(5):
        response = _sign_in(browser, user.username, "wrong-password")
    assert response.status_code == 429
    assert 'lang="ja"' in response.content.decode()


@override_settings(KURA_API_TOKEN_FAILURE_LIMIT=3, KURA_API_TOKEN_FAILURE_WINDOW=120)
def test_bad_api_tokens_from_one_address_are_refused_for_a_window(user):
    _row, token = api_token_create(user=user, name="good")
    address = next(_addresses)
    guesser = APIClient(REMOTE_ADDR=address)
    for n in range(3):
        guesser.credentials(HTTP_AUTHORIZATION=f"Bearer kura_guess{n}_0123456789abcdef")
        assert guesser.get("/api/v1/objects/").status_code == 401

    guesser.credentials(HTTP_AUTHORIZATION="Bearer kura_guess9_0123456789abcdef")
    refused = guesser.get("/api/v1/objects/")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) == 120
    # Guessing right now does not help: the address waits out the window.
    guesser.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert guesser.get("/api/v1/objects/").status_code == 429

    elsewhere = APIClient(REMOTE_ADDR=next(_addresses))
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert elsewhere.get("/api/v1/objects/").status_code == 200


@override_settings(KURA_API_TOKEN_FAILURE_LIMIT=3)
def test_good_tokens_are_never_counted(user):
    _row, token = api_token_create(user=user, name="good")
    api = APIClient(REMOTE_ADDR=next(_addresses))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert [api.get("/api/v1/objects/").status_code for _ in range(6)] == [200] * 6


@override_settings(
    KURA_API_TOKEN_FAILURE_LIMIT=1,
    CACHES={"default": {"BACKEND": "config.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}},
)
def test_an_unreachable_cache_never_blocks_a_good_token(user):
    _row, token = api_token_create(user=user, name="good")
    api = APIClient(REMOTE_ADDR=next(_addresses))
    api.credentials(HTTP_AUTHORIZATION="Bearer kura_guess_0123456789abcdef")
    assert api.get("/api/v1/objects/").status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/objects/").status_code == 200
