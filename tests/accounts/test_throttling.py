"""API rate limits: per signed-in user and per anonymous address, kept in the shared
(Redis) cache; a refused request gets 429 with Retry-After."""

import itertools

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import override_settings
from redis import Redis
from rest_framework.test import APIClient

from accounts.tokens import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

# Each test gets its own client address, so counts left by other tests never interfere.
_addresses = (f"203.0.113.{n}" for n in itertools.count(1))


def _retry_after(response) -> int:
    assert response.status_code == 429, response.content
    value = int(response["Retry-After"])
    assert 0 < value <= 60
    return value


@override_settings(KURA_API_THROTTLE_USER="3/minute")
def test_a_user_over_the_limit_gets_429_with_retry_after():
    _row, token = api_token_create(user=UserFactory(), name="x")
    api = APIClient(REMOTE_ADDR=next(_addresses))
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    answers = [api.get("/api/v1/objects/") for _ in range(4)]

    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    _retry_after(answers[3])
    assert "throttled" in answers[3].json()["detail"].lower()


@override_settings(KURA_API_THROTTLE_USER="3/minute")
def test_the_user_limit_counts_the_user_not_the_address_nor_the_credential():
    user = UserFactory()
    _row, token = api_token_create(user=user, name="x")
    by_token = APIClient(REMOTE_ADDR=next(_addresses))
    by_token.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    by_session = APIClient(REMOTE_ADDR=next(_addresses))
    by_session.force_login(user)
    someone_else = APIClient(REMOTE_ADDR=next(_addresses))
    someone_else.force_login(UserFactory())

    assert by_token.get("/api/v1/objects/").status_code == 200
    assert by_session.get("/api/v1/objects/").status_code == 200
    assert by_token.get("/api/v1/objects/").status_code == 200

    _retry_after(by_session.get("/api/v1/objects/"))
    assert someone_else.get("/api/v1/objects/").status_code == 200


@override_settings(KURA_API_THROTTLE_ANON="2/minute")
def test_an_anonymous_address_over_the_limit_gets_429_with_retry_after():
    address = next(_addresses)
    anonymous = APIClient(REMOTE_ADDR=address)

    answers = [anonymous.get("/api/v1/objects/") for _ in range(3)]

    assert [r.status_code for r in answers[:2]] == [200, 200]
    _retry_after(answers[2])
    # Another address still gets through, and so does a signed-in user at the same one.
    assert APIClient(REMOTE_ADDR=next(_addresses)).get("/api/v1/objects/").status_code == 200
    signed_in = APIClient(REMOTE_ADDR=address)
    signed_in.force_login(UserFactory())
    assert signed_in.get("/api/v1/objects/").status_code == 200


@override_settings(KURA_API_THROTTLE_ANON="1/minute")
def test_counts_live_in_the_shared_redis_cache():
    address = next(_addresses)
    assert APIClient(REMOTE_ADDR=address).get("/api/v1/objects/").status_code == 200

    redis = Redis.from_url(settings.CACHES["default"]["LOCATION"])
    keys = list(redis.scan_iter(match=f"*throttle_anon_{address}"))

    assert keys, "the anonymous count is stored in Redis"
    cache.delete(f"throttle_anon_{address}")
    assert APIClient(REMOTE_ADDR=address).get("/api/v1/objects/").status_code == 200


@override_settings(KURA_API_THROTTLE_ANON="")
def test_an_empty_rate_turns_the_limit_off():
    anonymous = APIClient(REMOTE_ADDR=next(_addresses))

    assert all(anonymous.get("/api/v1/objects/").status_code == 200 for _ in range(5))


@override_settings(KURA_API_THROTTLE_ANON="2/minute")
def test_a_forged_forwarded_for_header_does_not_escape_the_anonymous_limit():
    address = next(_addresses)
    answers = [
        APIClient(REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").get(
            "/api/v1/objects/"
        )
        for n in range(4)
    ]
    assert [r.status_code for r in answers[:2]] == [200, 200]
    _retry_after(answers[2])


def test_behind_a_configured_proxy_the_forwarded_address_counts():
    proxied = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = next(_addresses)
    with override_settings(REST_FRAMEWORK=proxied, KURA_API_THROTTLE_ANON="1/minute"):
        first, second = next(_addresses), next(_addresses)
        client = APIClient(REMOTE_ADDR=proxy)
        assert client.get("/api/v1/objects/", HTTP_X_FORWARDED_FOR=first).status_code == 200
        _retry_after(client.get("/api/v1/objects/", HTTP_X_FORWARDED_FOR=first))
        assert client.get("/api/v1/objects/", HTTP_X_FORWARDED_FOR=second).status_code == 200


def test_an_unreachable_cache_lets_requests_through():
    dead = {
        "default": {
            "BACKEND": "config.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    with override_settings(CACHES=dead, KURA_API_THROTTLE_ANON="1/minute"):
        client = APIClient(REMOTE_ADDR=next(_addresses))
        assert [client.get("/api/v1/objects/").status_code for _ in range(3)] == [200] * 3
