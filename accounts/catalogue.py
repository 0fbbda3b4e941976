"""Generations: numbers in the shared cache that change whenever some cached pages may.

Two are kept, each for the models a kind of cached page shows:

* ``catalogue`` (:data:`CATALOGUE`): records, creators, objects, projects, institutions —
  what the public pages show (``repository/public/cache.py``) and the dashboards count;
* ``activity`` (:data:`ACTIVITY`): tier-change and access requests, grants, the audit trail
  and people's names — what project dashboards list beside their figures
  (``repository/dashboard.py``). Downloads of non-public data write an audit event each
  time; keeping those apart leaves the public pages' cache alone.

A cached page is filed under the generations of everything it shows, so it is never served
after the data behind it changed. Every write to a watched model bumps its generation:

* ``save()`` and ``delete()``, through Django's signals (:func:`watch`), and changes of a
  watched many-to-many relation (:func:`watch_m2m`);
* ``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` through
  :class:`CatalogueQuerySet` (or :class:`ActivityQuerySet`), which watched models use as
  their manager.

A write bumps at once (so the writing connection, and a test inside one transaction, read
their own change) and again when its transaction commits (so a page rendered by another
connection from the data as it was before the commit, and cached under the first bump, is
left behind). The numbers live in the shared cache; if the cache is unreachable nothing is
cached or bumped and pages are rendered every time.

Every bump is also announced on a Redis channel; each web process keeps the numbers
(:class:`_Listener`) and serves cached pages without asking Redis while that copy is
certainly current, falling back to reading the numbers whenever it cannot be sure. An
announcement is only a hint to read the numbers again: the numbers a process keeps are only
ever ones it read from its own keys in Redis (or got from its own ``INCR``), so nothing
published on the channel — by another Kura on the same Redis server, whose database number
pub/sub ignores, or by anyone else — can hold a process's numbers back or push them ahead.
"""

import logging
import os
import select
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from django.core.cache import caches
from django.db import models, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

log = logging.getLogger(__name__)

CACHE_ALIAS = "default"


def _cache():
    return caches[CACHE_ALIAS]


class Generation:
    """One named generation number."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = f"kura:{name}-generation"

    def __repr__(self) -> str:
        return f"<Generation {self.name}>"

    def current(self) -> int | None:
        """The current number, or ``None`` when the cache cannot say."""
        cache = _cache()
        try:
            value = cache.get(self.key)
            if value is None:
                # Start from the clock, not 1: if the key is ever evicted while pages cached
                # under earlier numbers survive, the new numbers are all beyond theirs.
                cache.add(self.key, time.time_ns(), timeout=None)
                value = cache.get(self.key)
                if value is not None:
                    _listener.announce(cache, self.key, value)
        except Exception:  # noqa: BLE001 - any cache failure means "do not cache"
            log.warning("%s generation unavailable", self.name, exc_info=True)
            return None
        return value

    def bump(self) -> None:
        cache = _cache()
        try:
            try:
                number = cache.incr(self.key)
            except ValueError:  # no such key yet
                number = time.time_ns()
                if not cache.add(self.key, number, timeout=None):
                    number = cache.incr(self.key)
            _listener.announce(cache, self.key, number)
        except Exception:  # noqa: BLE001 - a write must not fail because the cache is down
            log.warning("could not bump the %s generation", self.name, exc_info=True)

    def changed(self, using: str | None = None) -> None:
        """Pages may have changed: bump now and again when the transaction commits."""
        self.bump()
        connection = transaction.get_connection(using)
        # Once per transaction is enough: the bump at commit covers every write before it.
        # (A bound method is made anew on each access: compare with ==, not is.)
        if not any(func == self.bump for _sids, func, _robust in connection.run_on_commit):
            transaction.on_commit(self.bump, using=using)


CATALOGUE = Generation("catalogue")
ACTIVITY = Generation("activity")
GENERATIONS = (CATALOGUE, ACTIVITY)


class _LocalCopies:
    """Pages this process fetched lately, by their full key (which holds the generation
    numbers): a copy is only ever served for the numbers it was stored under, so keeping
    it here is as safe as keeping it in Redis, and saves moving the page on every hit.
    Copies live at most ``seconds``, so the cache's expiry stays a backstop here too."""

    def __init__(self, size: int = 256, seconds: float = 60):
        self.size = size
        self.seconds = seconds
        self._pages: OrderedDict[str, tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str):
        with self._lock:
            entry = self._pages.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._pages[key]
                return None
            self._pages.move_to_end(key)
            return entry[1]

    def put(self, key: str, page) -> None:
        with self._lock:
            self._pages[key] = (time.monotonic() + self.seconds, page)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)


_local = _LocalCopies()


class _Listener:
    """The generation numbers as this process last heard them, kept current by a thread
    subscribed to the channel every bump is announced on (Redis pub/sub).

    With it, a cached page costs no round trip at all. It is trusted only while it is
    certainly current: the thread is subscribed, it has had an answer to a PING in the last
    ``HEALTHY_SECONDS``, and no message is waiting unread on its socket (checked without
    blocking on every use, so an announcement that has reached this host is never ignored
    because the thread has not run yet). Otherwise the numbers are read from Redis, as
    without it. Announcements may be lost only with the connection, which the thread then
    re-opens, reading the numbers afresh after subscribing.
    """

    HEALTHY_SECONDS = 3.0
    PING_SECONDS = 1.0

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pid = None
        self._config = None
        self._numbers: dict[str, int] = {}
        self._pong_at = 0.0
        self._socket = None

    @staticmethod
    def _config_of(cache):
        client = getattr(cache, "_cache", None)
        if client is None or not hasattr(client, "get_client"):
            return None  # not Redis (the embedded profile): no channel to listen on
        return (tuple(client._servers), cache.key_prefix)

    @staticmethod
    def channel(cache) -> str:
        """The channel of this cache's database and key prefix. Redis pub/sub ignores
        database numbers, so the number is part of the name: another Kura on the same
        server, with another database and the same prefix, announces elsewhere. (Its
        announcements would do no harm here, only cost a read: see :meth:`_listen`.)"""
        client = cache._cache.get_client(None)
        database = client.connection_pool.connection_kwargs.get("db", 0)
        return f"{cache.make_key('kura:generations')}:db{database}"

    def announce(self, cache, key: str, number: int) -> None:
        """After a bump: tell every process, and this one at once."""
        config = self._config_of(cache)
        if config is None:
            return
        cache._cache.get_client(None, write=True).publish(self.channel(cache), f"{key}\n{number}")
        with self._lock:
            if config == self._config:
                self._heard(key, number)

    def _heard(self, key: str, number: int) -> None:
        """A number read from this cache's key, or got from this process's own ``INCR``:
        the larger is the later (numbers only grow; a lost key starts again from the clock)."""
        if number > self._numbers.get(key, -1):
            self._numbers[key] = number

    def numbers(self, cache, keys: list[str]) -> dict[str, int] | None:
        """The numbers of ``keys`` if this process certainly knows them, else ``None``."""
        config = self._config_of(cache)
        if config is None:
            return None
        with self._lock:
            if self._pid != os.getpid() or self._config != config:
                self._start(cache, config)
                return None
            if self._socket is None or time.monotonic() - self._pong_at > self.HEALTHY_SECONDS:
                return None
            known = {key: self._numbers[key] for key in keys if key in self._numbers}
            if len(known) != len(keys):
                return None
            # The thread drains its socket under this lock: nothing waiting there means
            # every announcement that has reached this host has been applied.
            try:
                waiting, _w, _x = select.select([self._socket], [], [], 0)
            except (OSError, ValueError):
                return None
            return None if waiting else known

    def _start(self, cache, config) -> None:
        self._pid, self._config = os.getpid(), config
        self._numbers, self._pong_at, self._socket = {}, 0.0, None
        thread = threading.Thread(
            target=self._run,
            args=(cache._cache.get_client(None), self.channel(cache), cache.make_key, config),
            name="kura-generations",
            daemon=True,
        )
        thread.start()

    def _current(self, config) -> bool:
        return self._pid == os.getpid() and self._config == config

    def _run(self, client, channel: str, make_key, config) -> None:
        while self._current(config):
            pubsub = client.pubsub()
            try:
                pubsub.subscribe(channel)
                self._listen(pubsub, client, make_key, config)
            except Exception:  # noqa: BLE001 - reconnect; readers fall back to Redis meanwhile
                log.info("generation listener reconnecting", exc_info=True)
                with self._lock:
                    self._pong_at, self._socket = 0.0, None
                time.sleep(0.5)
            finally:
                pubsub.close()

    def _listen(self, pubsub, client, make_key, config) -> None:
        pinged = 0.0
        while self._current(config):
            sock = pubsub.connection._sock
            select.select([sock], [], [], self.PING_SECONDS / 2)
            with self._lock:
                # Read everything that has arrived and apply it, in one go under the lock,
                # so that no reader ever sees a message read but not yet applied.
                announced = False
                while (message := pubsub.get_message(timeout=0)) is not None:
                    kind = message["type"]
                    if kind == "subscribe":
                        # Subscribed first, then read: no bump can fall between the two.
                        self._refresh(client, make_key)
                        self._socket = sock
                    elif kind == "message":
                        announced = True
                    elif kind == "pong":
                        self._pong_at = time.monotonic()
                if announced:
                    # The number in a message is never taken: whoever published it, the
                    # numbers come from this cache's own keys (one read for all messages).
                    self._refresh(client, make_key)
                now = time.monotonic()
                if self._socket is not None and now - pinged >= self.PING_SECONDS:
                    pubsub.ping()
                    pinged = now

    def _refresh(self, client, make_key) -> None:
        keys = [g.key for g in GENERATIONS]
        values = client.mget([make_key(key) for key in keys])
        for key, value in zip(keys, values, strict=True):
            if value is not None:
                self._heard(key, int(value))


_listener = _Listener()


def _numbers(cache, generations: Sequence[Generation]) -> dict[str, int]:
    """The generation numbers: from this process's listener when it certainly knows them,
    else in one MGET (straight through the Redis client when the cache is Redis: they are
    stored as plain integers, so Django's per-key validation and unpickling are skipped)."""
    keys = [g.key for g in generations]
    known = _listener.numbers(cache, keys)
    if known is not None:
        return known
    if _Listener._config_of(cache) is None:  # not Redis
        return cache.get_many(keys)
    values = cache._cache.get_client(None).mget([cache.make_key(key) for key in keys])
    return {key: int(value) for key, value in zip(keys, values, strict=True) if value is not None}


def cached_lookup(
    generations: Sequence[Generation], key_for: Callable[[tuple[int, ...]], str]
) -> tuple[str | None, object | None]:
    """The key to store a page under (``key_for`` the current numbers of ``generations``)
    and the page stored there, or ``(None, None)`` when the cache is unreachable.

    On a hit, no round trip while this process's listener is current (else one small MGET
    for the numbers); the page itself comes from this process's recent copies when it has
    one under that very key, else from Redis."""
    cache = _cache()
    try:
        found = _numbers(cache, generations)
        current = []
        for g in generations:
            number = found.get(g.key)
            if number is None:
                number = g.current()
                if number is None:
                    return None, None
            current.append(number)
        key = key_for(tuple(current))
        page = _local.get(key)
        if page is None:
            page = cache.get(key)
            if page is not None:
                _local.put(key, page)
        return key, page
    except Exception:  # noqa: BLE001 - a cache failure only costs a rendering
        log.warning("page cache unavailable", exc_info=True)
        return None, None


def cached_store(key: str, value, seconds: int) -> None:
    """Keep ``value`` under ``key`` (from :func:`cached_lookup`) for ``seconds``."""
    try:
        _cache().set(key, value, seconds)
        _local.put(key, value)
    except Exception:  # noqa: BLE001 - a cache failure only costs a rendering next time
        log.warning("could not cache %s", key, exc_info=True)


class CatalogueQuerySet(models.QuerySet):
    """A queryset whose bulk writes bump :attr:`generation` (the catalogue's).

    ``quiet_fields`` names columns no cached page shows (progress counters, timestamps of
    background checks): updates touching only those leave cached pages alone.
    """

    generation: Generation = CATALOGUE
    quiet_fields: frozenset[str] = frozenset()

    def update(self, **kwargs) -> int:
        rows = super().update(**kwargs)
        if rows and set(kwargs) - self.quiet_fields:
            self.generation.changed(self.db)
        return rows

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            self.generation.changed(self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows and set(fields) - self.quiet_fields:
            self.generation.changed(self.db)
        return rows


class ActivityQuerySet(CatalogueQuerySet):
    """A queryset whose bulk writes bump the activity generation."""

    generation = ACTIVITY


def _receiver(generation: Generation, quiet: frozenset[str] | None):
    def on_write(sender, instance=None, using=None, update_fields=None, **kwargs) -> None:
        if kwargs.get("created") and getattr(instance, "quiet_when_created", bool)():
            return  # a new row no cached page shows (the model says so)
        quiet_fields = quiet
        if quiet_fields is None:
            queryset_class = sender._default_manager._queryset_class
            quiet_fields = getattr(queryset_class, "quiet_fields", frozenset())
        if update_fields and set(update_fields) <= quiet_fields:
            return
        generation.changed(using)

    return on_write


def watch(*model_classes, generation: Generation = CATALOGUE, quiet_fields=None) -> None:
    """Bump ``generation`` on every ``save()`` and ``delete()`` of ``model_classes`` (a
    ``save(update_fields=...)`` of quiet fields only excepted: ``quiet_fields``, else the
    model's queryset's; and the creation of a row whose ``quiet_when_created()`` says no
    cached page shows it)."""
    quiet = frozenset(quiet_fields) if quiet_fields is not None else None
    for model in model_classes:
        receiver = _receiver(generation, quiet)
        uid = f"kura.{generation.name}.{model._meta.label_lower}"
        post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.save")
        post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.delete")


def _on_m2m_change(generation: Generation):
    def on_change(sender, action, using=None, **kwargs) -> None:
        if action.startswith("post_"):
            generation.changed(using)

    return on_change


def watch_m2m(*fields, generation: Generation) -> None:
    """Bump ``generation`` on every ``add()``, ``remove()``, ``set()`` and ``clear()`` of
    the many-to-many ``fields`` (``Model.field`` descriptors), and on every ``save()`` and
    ``delete()`` of a row of their through tables."""
    for descriptor in fields:
        through = descriptor.through
        m2m_changed.connect(
            _on_m2m_change(generation),
            sender=through,
            weak=False,
            dispatch_uid=f"kura.{generation.name}.{through._meta.label_lower}.m2m",
        )
        watch(through, generation=generation, quiet_fields=())
