"""A database outage anywhere in a request answers 503 with Retry-After, never 500."""

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("path", "json"), [("/uploads/", False), ("/api/v1/objects/", True)])
def test_an_outage_after_the_view_answers_503(settings, monkeypatch, path, json):
    """The session middleware saves the session after the view has run; the database is
    gone by then."""
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory())
    settings.SESSION_SAVE_EVERY_REQUEST = True

    def fail(self, must_create=False):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(SessionStore, "save", fail)

    response = client.get(path)

    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    if json:
        assert response.json()["code"] == "unavailable"
    else:
        assert "Temporarily unavailable" in response.content.decode()


def test_other_errors_still_answer_500(settings, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory())
    settings.SESSION_SAVE_EVERY_REQUEST = True

    def fail(self, must_create=False):
        raise ValueError("a bug")

    monkeypatch.setattr(SessionStore, "save", fail)

    assert client.get("/uploads/").status_code == 500
