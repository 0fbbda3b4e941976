"""Test settings: the production profile (PostgreSQL, Redis, S3 over HTTP).

Values come from the environment like everywhere else; these are only the defaults the
README's test command relies on. The S3 endpoint is set by the session fixture that
starts SeaweedFS (tests/conftest.py), which accepts requests signed with the credentials
below and nothing else.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/kura")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")
# A queue of its own per test run, so a worker never picks up another run's messages.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"kura-test-{os.getpid()}")
# The cache (API throttle counts) in another Redis database than the broker's, with keys of
# this run's own; the limits are high so that only the throttling tests (which lower them)
# ever meet them.
os.environ.setdefault("KURA_CACHE_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("KURA_CACHE_KEY_PREFIX", f"kura-test-{os.getpid()}")
os.environ.setdefault("KURA_API_THROTTLE_USER", "100000/minute")
os.environ.setdefault("KURA_API_THROTTLE_ANON", "100000/minute")
os.environ.setdefault("KURA_SEARCH_THROTTLE", "100000/minute")
os.environ.setdefault("KURA_API_TOKEN_FAILURE_LIMIT", "100000")
# Pages are rendered every time (tests read response.context); tests/repository/
# test_page_cache.py switches the public page cache on.
os.environ.setdefault("KURA_PAGE_CACHE_SECONDS", "0")
os.environ.setdefault("KURA_STORAGE", "s3")
os.environ.setdefault("AWS_STORAGE_BUCKET_NAME", "kura-test")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "kura-test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "kura-test-secret")  # noqa: S105 - test server only
os.environ.setdefault("AWS_S3_REGION_NAME", "us-east-1")
os.environ.setdefault("KURA_DEMO_PASSWORD", "kura-demo-test")  # noqa: S105 - test only
# Development mode, which config/settings.py no longer defaults to (tests render Django's
# development static files without collectstatic); a test that runs Kura as in production
# passes DJANGO_DEBUG=false with the secrets it then needs (tests/faults/kura_server.py).
os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
