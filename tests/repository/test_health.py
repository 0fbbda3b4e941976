import pytest
from django.conf import settings
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_broker_and_storage(client):
    response = client.get("/healthz")

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


def test_healthz_answers_503_when_storage_is_unreachable(client):
    unreachable = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"endpoint_url": "http://127.0.0.1:9"},
        },
    }
    with override_settings(STORAGES=unreachable, AWS_S3_MAX_POOL_CONNECTIONS=1):
        response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
