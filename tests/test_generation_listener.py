"""The generation listener: a process trusts its own copy of the generation numbers only
while it is certainly current, so a bump made by another process is never missed."""

import os
import subprocess
import sys
import time

import pytest
from django.core.cache import caches
from redis import Redis

from accounts import catalogue

BUMP = (
    "import django; django.setup(); "
    "from accounts import catalogue; catalogue.CATALOGUE.bump(); "
    "print(catalogue.CATALOGUE.current())"
)


def _bump_in_another_process() -> int:
    """Bump the catalogue generation from a separate Python process; its new number."""
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", BUMP],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(result.stdout.strip().splitlines()[-1])


def _listening() -> dict[str, int]:
    """Wait until this process's listener answers without asking Redis."""
    cache = caches[catalogue.CACHE_ALIAS]
    catalogue.CATALOGUE.current()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        known = catalogue._listener.numbers(cache, [catalogue.CATALOGUE.key])
        if known is not None:
            return known
        time.sleep(0.05)
    pytest.fail("the listener never became current")


def _numbers() -> int:
    cache = caches[catalogue.CACHE_ALIAS]
    return catalogue._numbers(cache, [catalogue.CATALOGUE])[catalogue.CATALOGUE.key]


def test_a_bump_in_another_process_is_seen_by_the_very_next_lookup():
    before = _listening()[catalogue.CATALOGUE.key]
    for _ in range(5):
        number = _bump_in_another_process()
        assert number > before
        # No waiting: either the listener has applied the announcement, or it is still on
        # the socket and the lookup asks Redis.
        assert _numbers() == number
        before = number


def test_an_announcement_not_yet_applied_is_not_ignored():
    before = _listening()[catalogue.CATALOGUE.key]
    cache = caches[catalogue.CACHE_ALIAS]
    # Holding the listener's lock keeps its thread from applying anything: the
    # announcement of the bump below stays on the socket, as when the thread has not run.
    with catalogue._listener._lock:
        number = _bump_in_another_process()
        assert number > before
        time.sleep(0.1)
        assert catalogue._listener.numbers(cache, [catalogue.CATALOGUE.key]) is None
        assert _numbers() == number


def test_a_bump_in_this_process_is_seen_at_once():
    before = _listening()[catalogue.CATALOGUE.key]
    catalogue.CATALOGUE.bump()
    assert _numbers() > before
    # Its own announcement is still on the socket until the thread reads it (the listener
    # is not trusted meanwhile); once read, the listener holds the same number.
    assert _listening() == {catalogue.CATALOGUE.key: _numbers()}


def test_a_lost_subscription_is_never_trusted():
    before = _listening()[catalogue.CATALOGUE.key]
    cache = caches[catalogue.CACHE_ALIAS]
    redis = Redis.from_url(cache._cache._servers[0])
    redis.client_kill_filter(_type="pubsub")
    # A bump whose announcement the listener cannot hear: the lookup must not miss it.
    number = redis.incr(cache.make_key(catalogue.CATALOGUE.key))
    assert number > before
    assert _numbers() == number
    # The listener comes back, and knows the number again.
    assert _listening()[catalogue.CATALOGUE.key] == number


def test_without_answers_to_its_pings_the_listener_is_not_trusted(monkeypatch):
    _listening()
    monkeypatch.setattr(catalogue._Listener, "HEALTHY_SECONDS", -1.0)
    cache = caches[catalogue.CACHE_ALIAS]
    assert catalogue._listener.numbers(cache, [catalogue.CATALOGUE.key]) is None
    number = _bump_in_another_process()
    assert _numbers() == number
