"""/healthz is a free liveness answer for anyone; /readyz checks the database, the broker
and the storage, only for monitoring (a token, or a direct loopback caller) and at most once
per KURA_HEALTH_CACHE_SECONDS per process."""

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.test import override_settings

from repository import health

pytestmark = pytest.mark.django_db

UNREACHABLE = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {"endpoint_url": "http://127.0.0.1:9"},
}


@pytest.fixture(autouse=True)
def fresh_health_cache():
    health._cached = None
    yield
    health._cached = None


@pytest.fixture
def storage_writes(monkeypatch):
    """Counts the readiness probe's storage writes."""
    writes = []
    save = default_storage.save

    def counting(name, content, *args, **kwargs):
        writes.append(name)
        return save(name, content, *args, **kwargs)

    monkeypatch.setattr(default_storage, "save", counting)
    return writes


def test_healthz_is_cheap_and_touches_no_service(client, storage_writes, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", REMOTE_ADDR="203.0.113.9")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert storage_writes == []
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_answers_while_the_storage_is_down(client):
    with override_settings(STORAGES={**settings.STORAGES, "default": UNREACHABLE}):
        assert client.get("/healthz").status_code == 200


def test_readyz_reports_database_broker_and_storage_to_a_loopback_caller(client):
    response = client.get("/readyz", REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "broker": True,
        "storage": True,
    }
    assert body["checks"]["database"]["detail"] == "postgresql"
    assert body["checks"]["storage"]["detail"] == "s3"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.parametrize(
    "headers",
    [
        {"REMOTE_ADDR": "203.0.113.9"},
        # Through a reverse proxy on the same host: loopback, but forwarded for someone.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"REMOTE_ADDR": "203.0.113.9", "HTTP_AUTHORIZATION": "Bearer wrong-token"},
    ],
)
def test_readyz_is_refused_to_anyone_else_without_touching_a_service(
    client, settings, storage_writes, headers
):
    settings.KURA_HEALTH_TOKEN = "monitoring-token-0123456789"
    response = client.get("/readyz", **headers)

    assert response.status_code == 403
    assert "checks" not in response.json()
    assert storage_writes == []


def test_readyz_answers_a_remote_monitor_with_the_token(client, settings):
    settings.KURA_HEALTH_TOKEN = "monitoring-token-0123456789"
    response = client.get(
        "/readyz",
        REMOTE_ADDR="203.0.113.9",
        HTTP_AUTHORIZATION="Bearer monitoring-token-0123456789",
    )

    assert response.status_code == 200
    assert response.json()["checks"]["storage"]["ok"] is True


def test_readyz_checks_at_most_once_per_period(client, settings, storage_writes):
    settings.KURA_HEALTH_CACHE_SECONDS = 60
    for _ in range(5):
        assert client.get("/readyz").status_code == 200
    assert len(storage_writes) == 1

    settings.KURA_HEALTH_CACHE_SECONDS = 0
    client.get("/readyz")
    assert len(storage_writes) == 2


def test_readyz_answers_503_when_storage_is_unreachable(client):
    unreachable = {**settings.STORAGES, "default": UNREACHABLE}
    with override_settings(STORAGES=unreachable, AWS_S3_MAX_POOL_CONNECTIONS=1):
        response = client.get("/readyz")

    assert response.status_code == 503
    assert int(response["Retry-After"]) >= 1
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
