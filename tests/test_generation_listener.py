"""The generation listener: a process trusts its own copy of the generation numbers only
while it is certainly current, so a bump made by another process is never missed."""

import os
import subprocess
import sys
import time

import pytest
from django.core.cache import caches
from redis import Redis

from core import generations

BUMP = (
    "import django; django.setup(); "
    "from core import generations; generations.CATALOGUE.bump(); "
    "print(generations.CATALOGUE.current())"
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
    cache = caches[generations.CACHE_ALIAS]
    generations.CATALOGUE.current()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        known = generations._listener.numbers(cache, [generations.CATALOGUE.key])
        if known is not None:
            return known
        time.sleep(0.05)
    pytest.fail("the listener never became current")


def _numbers() -> int:
    cache = caches[generations.CACHE_ALIAS]
    return generations._numbers(cache, [generations.CATALOGUE])[generations.CATALOGUE.key]


def test_a_bump_in_another_process_is_seen_by_the_very_next_lookup():
    before = _listening()[generations.CATALOGUE.key]
    for _ in range(5):
        number = _bump_in_another_process()
        assert number > before
        # No waiting: either the listener has applied the announcement, or it is still on
        # the socket and the lookup asks Redis.
        assert _numbers() == number
        before = number


def test_an_announcement_not_yet_applied_is_not_ignored():
    before = _listening()[generations.CATALOGUE.key]
    cache = caches[generations.CACHE_ALIAS]
    # Holding the listener's lock keeps its thread from applying anything: the
    # announcement of the bump below stays on the socket, as when the thread has not run.
    with generations._listener._lock:
        number = _bump_in_another_process()
        assert number > before
        time.sleep(0.1)
        assert generations._listener.numbers(cache, [generations.CATALOGUE.key]) is None
        assert _numbers() == number


def test_a_bump_in_this_process_is_seen_at_once():
    before = _listening()[generations.CATALOGUE.key]
    generations.CATALOGUE.bump()
    assert _numbers() > before
    # Its own announcement is still on the socket until the thread reads it (the listener
    # is not trusted meanwhile); once read, the listener holds the same number.
    assert _listening() == {generations.CATALOGUE.key: _numbers()}


def test_a_lost_subscription_is_never_trusted():
    before = _listening()[generations.CATALOGUE.key]
    cache = caches[generations.CACHE_ALIAS]
    redis = Redis.from_url(cache._cache._servers[0])
    redis.client_kill_filter(_type="pubsub")
    # A bump whose announcement the listener cannot hear: the lookup must not miss it.
    number = redis.incr(cache.make_key(generations.CATALOGUE.key))
    assert number > before
    assert _numbers() == number
    # The listener comes back, and knows the number again.
    assert _listening()[generations.CATALOGUE.key] == number


def test_without_answers_to_its_pings_the_listener_is_not_trusted(monkeypatch):
    _listening()
    monkeypatch.setattr(generations._Listener, "HEALTHY_SECONDS", -1.0)
    cache = caches[generations.CACHE_ALIAS]
    assert generations._listener.numbers(cache, [generations.CATALOGUE.key]) is None
    number = _bump_in_another_process()
    assert _numbers() == number


# --- Another Kura on the same Redis server ------------------------------------------------

# A second Kura instance, as a deployment beside this one would run it: the same Redis
# server, another database number (or another key prefix). Its writes bump its own
# generation, and each bump is announced; it starts after this one, so its numbers (which
# start from the clock) are larger than ours.
NEIGHBOUR = (
    "import sys, time, django; django.setup(); "
    "from core import generations\n"
    "for _ in range(5):\n"
    "    generations.CATALOGUE.bump(); generations.ACTIVITY.bump()\n"
    "print('ready', flush=True)\n"
    "time.sleep(float(sys.argv[1]))\n"
)


def _neighbour(cache_url: str, prefix: str, seconds: float) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "KURA_CACHE_URL": cache_url,
        "KURA_CACHE_KEY_PREFIX": prefix,
    }
    neighbour = subprocess.Popen(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", NEIGHBOUR, str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert neighbour.stdout.readline().strip() == "ready"
    return neighbour


def _other_database_url(cache) -> str:
    server = cache._cache._servers[0]
    base, _slash, database = server.rpartition("/")
    return f"{base}/{(int(database or 0) + 1) % 16}"


def _real_number(cache) -> int:
    return int(
        Redis.from_url(cache._cache._servers[0]).get(cache.make_key(generations.CATALOGUE.key))
    )


def test_a_message_from_another_database_never_holds_our_numbers():
    """Redis pub/sub ignores database numbers: whatever is published on the channel — here a
    huge number for our very key, from a client on another database — the numbers this
    process uses are its own keys' values, and its own bumps show at once."""
    _listening()
    cache = caches[generations.CACHE_ALIAS]
    other = Redis.from_url(_other_database_url(cache))
    for channel in (generations._listener.channel(cache), cache.make_key("kura:generations")):
        other.publish(channel, f"{generations.CATALOGUE.key}\n{10**30}")
    time.sleep(0.2)
    assert _listening()[generations.CATALOGUE.key] == _real_number(cache)
    generations.CATALOGUE.bump()
    assert _listening()[generations.CATALOGUE.key] == _real_number(cache)
    assert _numbers() == _real_number(cache)


@pytest.mark.django_db
@pytest.mark.parametrize("neighbour_differs_by", ["database", "key prefix"])
def test_another_instance_on_the_same_redis_never_hides_a_closed_record(
    client, settings, neighbour_differs_by
):
    """Two Kura instances on one Redis server: after the other one has written (and
    announced its larger numbers), a record closed here leaves this instance's public page
    at once, every time."""
    from django.urls import reverse

    from core.vocabularies import MetadataAccess
    from dmp.models import DmpRecord
    from tests.repository.test_public import _open_record

    settings.KURA_PAGE_CACHE_SECONDS = 300
    cache = caches[generations.CACHE_ALIAS]
    record = _open_record(title_en="Shared Redis dataset")
    landing = reverse("dataset-landing", args=[record.pk])
    _listening()  # this instance is running and subscribed before the other one writes
    if neighbour_differs_by == "database":
        neighbour = _neighbour(_other_database_url(cache), cache.key_prefix, 20)
    else:
        neighbour = _neighbour(cache._cache._servers[0], f"{cache.key_prefix}-other", 20)
    try:
        _listening()
        assert client.get(landing).status_code == 200
        assert client.get(landing).status_code == 200  # now from the cache
        for attempt in range(3):
            DmpRecord.objects.filter(pk=record.pk).update(metadata_access=MetadataAccess.CLOSED)
            _listening()  # a later request: the listener has heard the bump
            assert client.get(landing).status_code == 404, attempt
            DmpRecord.objects.filter(pk=record.pk).update(metadata_access=MetadataAccess.OPEN)
            _listening()
            assert client.get(landing).status_code == 200, attempt
        assert neighbour.poll() is None, "the other instance stopped before the checks ended"
    finally:
        neighbour.kill()
        neighbour.wait()
