"""The interface follows the browser's language and the switcher."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("accept_language", "lang", "login_label"),
    [
        ("en-US,en;q=0.9", "en", "Log in"),
        ("ja-JP,ja;q=0.9,en;q=0.5", "ja", "ログイン"),
        ("fr-FR", "en", "Log in"),
    ],
)
def test_language_follows_the_browser(client, accept_language, lang, login_label):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE=accept_language)

    html = response.content.decode()
    assert f'<html lang="{lang}"' in html
    assert login_label in html


def test_switcher_overrides_the_browser(client):
    response = client.post("/i18n/setlang/", {"language": "ja", "next": "/"})
    assert response.status_code == 302

    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="ja"' in html
    assert "ログイン" in html


def test_switcher_refuses_an_unknown_language(client):
    client.post("/i18n/setlang/", {"language": "xx", "next": "/"})

    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="en"' in html
