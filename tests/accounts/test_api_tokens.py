"""Personal API tokens: the page that creates, lists and revokes them, and the API
authentication that accepts them (only a hash is stored)."""

import datetime
import re

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Role
from accounts.tokens import api_token_authenticate, api_token_create, api_token_revoke
from tests.factories import DataObjectFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_IN_PAGE = re.compile(r'id="new-token-value">(kura_[0-9a-f]{12}_[A-Za-z0-9_-]+)<')


def _create_on_page(client, name="laptop") -> str:
    response = client.post(reverse("api-tokens"), {"name": name})
    assert response.status_code == 200
    match = TOKEN_IN_PAGE.search(response.content.decode())
    assert match, "the new token is shown once on the page"
    return match.group(1)


def _api(token: str, keyword: str = "Bearer") -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")
    return api


def test_page_needs_login(client):
    response = client.get(reverse("api-tokens"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_user_menu_links_to_the_page(client):
    client.force_login(UserFactory())

    assert f'href="{reverse("api-tokens")}"' in client.get(reverse("home")).content.decode()


def test_created_token_is_shown_once_and_only_its_hash_is_stored(client):
    user = UserFactory()
    client.force_login(user)

    token = _create_on_page(client, "lab workstation")

    row = ApiToken.objects.get(user=user)
    assert row.name == "lab workstation"
    assert token.startswith(f"kura_{row.prefix}_")
    secret = token.removeprefix(f"kura_{row.prefix}_")  # may itself contain "_"
    assert len(secret) >= 40
    # No column of any row holds the token or its secret part.
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM accounts_apitoken")
        stored = " ".join(str(value) for row_ in cursor.fetchall() for value in row_)
    assert token not in stored and secret not in stored
    # The listing shows the name and the prefix, never the token again.
    listing = client.get(reverse("api-tokens")).content.decode()
    assert "lab workstation" in listing and f"kura_{row.prefix}_" in listing
    assert secret not in listing
    assert "no-cache" in client.get(reverse("api-tokens"))["Cache-Control"]


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_a_name_is_required(client, name):
    client.force_login(UserFactory())

    response = client.post(reverse("api-tokens"), {"name": name})

    assert response.status_code == 400
    assert 'class="field-errors"' in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("keyword", ["Bearer", "Token", "bearer"])
def test_token_authenticates_api_requests(client, keyword):
    member = MembershipFactory(role=Role.RESEARCHER)
    client.force_login(member.user)
    token = _create_on_page(client)
    mine = DataObjectFactory(project=member.project, uploaded_by=member.user)

    response = _api(token, keyword).get(f"/api/v1/objects/{mine.pk}/")

    assert response.status_code == 200
    assert response.json()["id"] == mine.pk


def test_token_requests_need_no_csrf_token():
    member = MembershipFactory(role=Role.RESEARCHER)
    _row, token = api_token_create(user=member.user, name="cli")
    api = APIClient(enforce_csrf_checks=True)
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api.post(
        "/api/v1/uploads/",
        {"project": member.project_id, "filename": "a.bin", "size": 0},
        format="json",
    )

    assert response.status_code == 400  # reached validation: authenticated, no CSRF refusal
    assert "size" in response.json()["errors"]


def test_revoked_token_is_refused_with_401(client):
    user = UserFactory()
    client.force_login(user)
    token = _create_on_page(client)
    row = ApiToken.objects.get(user=user)
    assert _api(token).get("/api/v1/objects/").status_code == 200

    response = client.post(reverse("api-token-revoke", args=[row.pk]))

    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None
    refused = _api(token).get("/api/v1/objects/")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="api"'
    assert "revoked" in refused.json()["detail"]
    listing = client.get(reverse("api-tokens")).content.decode()
    assert "revoked" in listing


def test_revoking_twice_changes_nothing():
    row, _token = api_token_create(user=UserFactory(), name="x")
    first = api_token_revoke(user=row.user, token_pk=row.pk).revoked_at

    assert api_token_revoke(user=row.user, token_pk=row.pk).revoked_at == first


def test_nobody_else_can_revoke_a_token(client):
    row, token = api_token_create(user=UserFactory(), name="x")
    client.force_login(UserFactory())

    response = client.post(reverse("api-token-revoke", args=[row.pk]))

    assert response.status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None
    assert _api(token).get("/api/v1/objects/").status_code == 200


def test_revoke_needs_post(client):
    row, _token = api_token_create(user=UserFactory(), name="x")
    client.force_login(row.user)

    assert client.get(reverse("api-token-revoke", args=[row.pk])).status_code == 405
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer kura_000000000000_wrong",
        "Bearer not-a-kura-token",
        "Bearer",
        "Bearer two parts",
        "Token kura_",
    ],
)
def test_malformed_or_unknown_tokens_get_401(header):
    api_token_create(user=UserFactory(), name="x")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)

    response = api.get("/api/v1/objects/")

    assert response.status_code == 401


def test_a_right_prefix_with_a_wrong_secret_is_refused():
    row, token = api_token_create(user=UserFactory(), name="x")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")

    assert _api(forged).get("/api/v1/objects/").status_code == 401
    row.refresh_from_db()
    assert row.last_used_at is None


def test_tokens_of_inactive_users_are_refused():
    row, token = api_token_create(user=UserFactory(), name="x")
    row.user.is_active = False
    row.user.save()

    assert _api(token).get("/api/v1/objects/").status_code == 401


def test_last_used_at_is_noted_at_most_once_a_minute():
    row, token = api_token_create(user=UserFactory(), name="x")
    assert row.last_used_at is None

    assert _api(token).get("/api/v1/objects/").status_code == 200
    row.refresh_from_db()
    first = row.last_used_at
    assert first is not None

    assert _api(token).get("/api/v1/objects/").status_code == 200
    row.refresh_from_db()
    assert row.last_used_at == first  # within the minute: no write

    an_hour_ago = timezone.now() - datetime.timedelta(hours=1)
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=an_hour_ago)
    assert api_token_authenticate(token) is not None
    row.refresh_from_db()
    assert row.last_used_at > an_hour_ago


def test_token_page_lists_last_use(client):
    row, token = api_token_create(user=UserFactory(), name="nightly sync")
    client.force_login(row.user)
    assert "never" in client.get(reverse("api-tokens")).content.decode()

    _api(token).get("/api/v1/objects/")

    row.refresh_from_db()
    listing = client.get(reverse("api-tokens")).content.decode()
    local = timezone.localtime(row.last_used_at).strftime("%Y-%m-%d %H:%M")
    assert local in listing
