"""The two profiles and the production guard, each checked in a fresh interpreter."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "storage": settings.STORAGES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "debug": settings.DEBUG,
    "cache": settings.CACHES["default"]["BACKEND"],
    "cache_location": str(settings.CACHES["default"]["LOCATION"]),
}))
"""

# Variables that choose a profile; removed so each case starts from nothing.
PROFILE_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "KURA_STORAGE",
    "AWS_S3_ENDPOINT_URL",
    "AWS_STORAGE_BUCKET_NAME",
    "DJANGO_DEBUG",
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "KURA_CACHE_URL",
    "KURA_API_THROTTLE_USER",
    "KURA_API_THROTTLE_ANON",
    "KURA_SEARCH_THROTTLE",
    # The browser tests switch Django's async guard off for their own process only.
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


# Development mode, which everything that runs Kura for development sets itself (bin/run,
# tests/settings.py, tests/embedded.py): the default is production.
DEVELOPMENT = {"DJANGO_DEBUG": "true"}


def _settings_in_subprocess(tmp_path, **variables):
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", KURA_VAR_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_development_mode_with_nothing_else_set_gives_the_embedded_profile(tmp_path):
    result = _settings_in_subprocess(tmp_path, **DEVELOPMENT)

    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert profile == {
        "engine": "django.db.backends.sqlite3",
        "storage": "django.core.files.storage.FileSystemStorage",
        "broker": "filesystem://",
        "debug": True,
        "cache": "django.core.cache.backends.filebased.FileBasedCache",
        "cache_location": str(tmp_path / "cache"),
    }
    assert (tmp_path / "celery" / "broker").is_dir()


def test_nothing_set_is_production_and_refuses_to_start_without_its_secrets(tmp_path):
    """A deployment that forgets DJANGO_DEBUG gets production, never debug pages or the
    development secret key: with nothing set Kura stops and says what to set."""
    result = _settings_in_subprocess(tmp_path)

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false, its default" in (
        result.stderr
    )
    assert "For development set DJANGO_DEBUG=true, as bin/run does." in result.stderr


@pytest.mark.parametrize("debug", [{}, {"DJANGO_DEBUG": ""}], ids=["unset", "empty"])
def test_without_django_debug_debug_is_off(tmp_path, debug):
    result = _settings_in_subprocess(
        tmp_path, DJANGO_SECRET_KEY="x" * 50, DJANGO_ALLOWED_HOSTS="kura.example.org", **debug
    )

    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert profile["debug"] is False
    assert profile["engine"] == "django.db.backends.sqlite3"  # the embedded profile, in production


def test_environment_selects_postgres_redis_and_s3(tmp_path):
    result = _settings_in_subprocess(
        tmp_path,
        **DEVELOPMENT,
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/kura",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        KURA_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="kura",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9000",
        KURA_CACHE_URL="redis://127.0.0.1:6379/1",
    )

    assert result.returncode == 0, result.stderr
    profile = json.loads(result.stdout)
    assert profile["cache"] == "config.cache.RedisCache"
    assert profile["cache_location"] == "redis://127.0.0.1:6379/1"
    assert profile["engine"] == "django.db.backends.postgresql"
    assert profile["storage"] == "storages.backends.s3.S3Storage"
    assert profile["broker"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("debug", [{"DJANGO_DEBUG": "false"}, {}], ids=["false", "unset"])
@pytest.mark.parametrize(
    ("variables", "missing"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "kura.example.org"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "x" * 50}, "DJANGO_ALLOWED_HOSTS"),
    ],
)
def test_production_without_a_required_variable_refuses_to_start(
    tmp_path, debug, variables, missing
):
    result = _settings_in_subprocess(tmp_path, **debug, **variables)

    assert result.returncode != 0
    assert f"{missing} must be set when DJANGO_DEBUG is false" in result.stderr


def test_production_with_its_variables_starts(tmp_path):
    result = _settings_in_subprocess(
        tmp_path,
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="x" * 50,
        DJANGO_ALLOWED_HOSTS="kura.example.org",
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["debug"] is False


def test_s3_without_a_bucket_is_refused(tmp_path):
    result = _settings_in_subprocess(tmp_path, KURA_STORAGE="s3", **DEVELOPMENT)

    assert result.returncode != 0
    assert "AWS_STORAGE_BUCKET_NAME must be set" in result.stderr


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"KURA_API_THROTTLE_USER": "lots"}, "KURA_API_THROTTLE_USER must look like 600/minute"),
        ({"KURA_API_THROTTLE_ANON": "10/fortnight"}, "KURA_API_THROTTLE_ANON must look like"),
        ({"KURA_CACHE_URL": "memcached://127.0.0.1"}, "KURA_CACHE_URL must be a redis:// URL"),
        ({"KURA_SEARCH_THROTTLE": "often"}, "KURA_SEARCH_THROTTLE must look like"),
        ({"KURA_SEARCH_COUNT_CAP": "0"}, "KURA_SEARCH_COUNT_CAP must be at least 1"),
        ({"KURA_OAI_REPOSITORY_ID": "kura"}, "KURA_OAI_REPOSITORY_ID must be a domain name"),
    ],
)
def test_a_malformed_cache_or_rate_setting_refuses_to_start(tmp_path, variables, message):
    result = _settings_in_subprocess(tmp_path, **DEVELOPMENT, **variables)

    assert result.returncode != 0
    assert message in result.stderr


def test_beat_starts_on_a_fresh_production_deployment(tmp_path):
    """No folder exists yet under KURA_VAR_DIR: beat must still find where to keep its
    schedule, and keep running (it used to stop with FileNotFoundError)."""
    var_dir = tmp_path / "fresh"
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        KURA_VAR_DIR=str(var_dir),
        DJANGO_SECRET_KEY=PRODUCTION["DJANGO_SECRET_KEY"],
        DJANGO_ALLOWED_HOSTS=PRODUCTION["DJANGO_ALLOWED_HOSTS"],
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/kura",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/15",
        CELERY_TASK_DEFAULT_QUEUE=f"kura-beat-test-{os.getpid()}",
        KURA_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="kura",
    )
    beat = subprocess.Popen(
        [str(Path(sys.executable).with_name("celery")), "-A", "config", "beat", "-l", "INFO"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and beat.poll() is None:
            if list((var_dir / "celery").glob("beat-schedule*")):
                break
            time.sleep(0.2)
        time.sleep(1)
        alive = beat.poll() is None
    finally:
        beat.terminate()
        output, _ = beat.communicate(timeout=30)

    assert alive, output
    assert list((var_dir / "celery").glob("beat-schedule*")), output


# The README's production settings (Deployment), behind a TLS-terminating proxy; no
# DJANGO_DEBUG, as production is the default.
PRODUCTION = {
    "DJANGO_SECRET_KEY": "kura-production-check-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFG",
    "DJANGO_ALLOWED_HOSTS": "kura.example.org",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/kura",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "KURA_CACHE_URL": "redis://127.0.0.1:6379/1",
    "KURA_STORAGE": "s3",
    "AWS_STORAGE_BUCKET_NAME": "kura",
    "KURA_TLS": "true",
}

HEADERS_PROBE = """
import json, django
django.setup()
from django.test import Client
client = Client(HTTP_HOST="kura.example.org")
plain = client.get("/healthz")
proxied = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
redirected = client.get("/datasets/")
print(json.dumps({
    "plain": plain.status_code,
    "proxied": proxied.status_code,
    "hsts": proxied.get("Strict-Transport-Security"),
    "redirect": [redirected.status_code, redirected.get("Location")],
}))
"""


def _production(tmp_path, code, **variables):
    env = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "KURA_VAR_DIR": str(tmp_path),
            **PRODUCTION,
            **variables,
        }
    )
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, *code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_the_documented_production_settings(tmp_path):
    result = _production(tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_tls_check_deploy_names_what_is_missing(tmp_path):
    result = _production(
        tmp_path, ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], KURA_TLS="false"
    )

    assert result.returncode != 0
    assert "security.W004" in result.stderr + result.stdout  # no HSTS
    assert "security.W008" in result.stderr + result.stdout  # no redirect to HTTPS


def test_behind_a_tls_proxy_hsts_is_sent_and_plain_http_redirected(tmp_path):
    result = _production(tmp_path, ["-c", HEADERS_PROBE])

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    assert answers["plain"] == 200  # monitors on the host reach /healthz over HTTP
    assert answers["proxied"] == 200
    assert answers["hsts"] == "max-age=31536000; includeSubDomains"
    assert answers["redirect"] == [301, "https://kura.example.org/datasets/"]
