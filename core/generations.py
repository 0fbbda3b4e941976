"""Generations: numbers in the shared cache that change whenever some cached pages may.

A cached page is filed under the generations of everything it shows, so it is never served
after the data behind it changed, and a write moves only the generations of what it
changes, so pages showing other things stay cached:

* ``catalogue`` (:data:`CATALOGUE`): records, creators, plans, projects, institutions —
  what the public pages show (``repository/discovery/public/cache.py``) and the dashboards name;
* ``activity`` (:data:`ACTIVITY`): people's names, which dashboards list beside their
  figures (``repository/dashboard.py``);
* one generation per DMP record for its files (:data:`RECORD_FILES`): a record's landing
  page is filed under it, so an upload to one record leaves every other landing page and
  every search page alone;
* one generation per project (:data:`PROJECT`): its objects, tier-change and access
  requests, grants and audit trail — what its dashboard counts and lists. An upload, or an
  audited download of non-public data, moves only its own project's dashboard;
* one generation per DMP record for its own row and creators (:data:`RECORD`), per
  project for its own row (:data:`PROJECT_DETAILS`: names, funder, program) and per
  institution (:data:`INSTITUTION`). No page is filed under these yet (they show in
  ``catalogue``); they name *which* records a write touches, for listeners.

A family may be listened to (:meth:`Family.listen`): the listener hears the scope of every
change of one of its generations, in the writing transaction. That is how the OAI-PMH
datestamps follow every write that changes what a record's harvested formats show
(``repository/discovery/oai/stamps.py``).

The per-record and per-project numbers are *scoped* generations (:class:`Family`): which
ones a write moves is named by the written rows' own columns (``scope_fields`` of the
model's queryset, see :class:`CatalogueQuerySet`).

Every write to a watched model bumps its generations:

* ``save()`` and ``delete()``, through Django's signals (:func:`watch`), and changes of a
  watched many-to-many relation (:func:`watch_m2m`);
* ``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` through
  :class:`CatalogueQuerySet` (or :class:`ActivityQuerySet`), which watched models use as
  their manager (an update first reads which scopes its rows are in).

A write bumps at once (so the writing connection, and a test inside one transaction, read
their own change) and again when its transaction commits (so a page rendered by another
connection from the data as it was before the commit, and cached under the first bump, is
left behind). The numbers live in the shared cache; if the cache is unreachable nothing is
cached or bumped and pages are rendered every time. A scoped number is made by the first
write to its scope (until then it reads as 0, so reads add no keys), and every number that
is made again (after a flush) starts from the clock, beyond every earlier one, so a page
cached under an old number is never served.

Every bump of ``catalogue`` and ``activity`` is also announced on a Redis channel; each web
process keeps those two numbers (:class:`_Listener`) and serves cached pages without asking
Redis for them while that copy is certainly current, falling back to reading the numbers
whenever it cannot be sure. Scoped numbers are always read from Redis (one ``MGET`` with
whatever else is needed). An announcement is only a hint to read the numbers again: the
numbers a process keeps are only ever ones it read from its own keys in Redis (or got from
its own ``INCR``), so nothing published on the channel — by another Kura on the same Redis
server, whose database number pub/sub ignores, or by anyone else — can hold a process's
numbers back or push them ahead.
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
    """One named generation number. A scoped one (``scoped``: of a record, of a project) is
    made by the first write only: until then it reads as 0, so looking at pages of records
    nobody writes to (or of ids that do not exist) adds nothing to the cache."""

    def __init__(
        self, name: str, *, scoped: bool = False, family: "Family | None" = None, scope=None
    ) -> None:
        self.name = name
        self.key = f"kura:{name}-generation"
        self.scoped = scoped
        self.family = family
        self.scope = scope

    def __repr__(self) -> str:
        return f"<Generation {self.name}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, Generation) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def _announce(self, cache, number: int) -> None:
        if self.key in _LISTENED:
            _listener.announce(cache, self.key, number)

    def current(self) -> int | None:
        """The current number, or ``None`` when the cache cannot say."""
        cache = _cache()
        try:
            value = cache.get(self.key)
            if value is None and self.scoped:
                return 0  # never written: the first write starts it from the clock
            if value is None:
                # Start from the clock, not 1: if the key is ever evicted while pages cached
                # under earlier numbers survive, the new numbers are all beyond theirs.
                cache.add(self.key, time.time_ns(), timeout=None)
                value = cache.get(self.key)
                if value is not None:
                    self._announce(cache, value)
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
            self._announce(cache, number)
        except Exception:  # noqa: BLE001 - a write must not fail because the cache is down
            log.warning("could not bump the %s generation", self.name, exc_info=True)

    def changed(self, using: str | None = None) -> None:
        """Pages may have changed: bump now and again when the transaction commits (and
        tell the family's listeners, in the writing transaction)."""
        if self.family is not None:
            for listener in self.family.listeners:
                listener(self.scope, using)
        self.bump()
        connection = transaction.get_connection(using)
        # Once per transaction is enough: the bump at commit covers every write before it.
        # (Scoped generations are made anew for each write: compare the generations.)
        if not any(
            getattr(func, "__func__", None) is Generation.bump and func.__self__ == self
            for _sids, func, _robust in connection.run_on_commit
        ):
            transaction.on_commit(self.bump, using=using)


class Family:
    """Generations one per scope (a record's primary key, a project's): ``of(scope)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.listeners: list[Callable[[object, str | None], None]] = []

    def __repr__(self) -> str:
        return f"<Family {self.name}>"

    def of(self, scope) -> Generation:
        return Generation(f"{self.name}:{scope}", scoped=True, family=self, scope=scope)

    def listen(self, listener: Callable[[object, str | None], None]) -> None:
        """Call ``listener(scope, using)`` on every change of one of this family's
        generations, before its bump, in the writing transaction (once per listener)."""
        if listener not in self.listeners:
            self.listeners.append(listener)


CATALOGUE = Generation("catalogue")
ACTIVITY = Generation("activity")
GENERATIONS = (CATALOGUE, ACTIVITY)  # the ones every process listens for
_LISTENED = frozenset(g.key for g in GENERATIONS)
RECORD_FILES = Family("record-files")
PROJECT = Family("project")
RECORD = Family("record")
PROJECT_DETAILS = Family("project-details")
INSTITUTION = Family("institution")


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
    """The generation numbers: the listened ones from this process's listener when it
    certainly knows them, the others in one MGET (straight through the Redis client when the
    cache is Redis: they are stored as plain integers, so Django's per-key validation and
    unpickling are skipped)."""
    keys = [g.key for g in generations]
    listened = [key for key in keys if key in _LISTENED]
    known = (_listener.numbers(cache, listened) if listened else None) or {}
    missing = [key for key in keys if key not in known]
    if not missing:
        return known
    if _Listener._config_of(cache) is None:  # not Redis
        return {**known, **cache.get_many(missing)}
    values = cache._cache.get_client(None).mget([cache.make_key(key) for key in missing])
    found = {
        key: int(value) for key, value in zip(missing, values, strict=True) if value is not None
    }
    return {**known, **found}


def _number(generation: Generation, found: dict[str, int]) -> int | None:
    """``generation``'s number among ``found`` (a scoped one not found was never written:
    0), else read (and made) now; ``None`` when the cache cannot say."""
    number = found.get(generation.key)
    if number is None:
        return generation.current()
    return number


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
            number = _number(g, found)
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
    """A queryset whose bulk writes bump :attr:`generation` (the catalogue's; ``None`` for
    none) and the scoped generations of the rows written (:meth:`scoped`).

    ``quiet_fields`` names columns no cached page shows (progress counters, timestamps of
    background checks): updates touching only those leave cached pages alone.
    ``scope_fields`` names the columns (``record_id``, or a path such as
    ``record__project_id``) that :meth:`scoped` turns into generations.
    """

    generation: Generation | None = CATALOGUE
    quiet_fields: frozenset[str] = frozenset()
    scope_fields: tuple[str, ...] = ()

    @staticmethod
    def scoped(values: dict) -> list[Generation]:
        """The scoped generations of a row whose ``scope_fields`` hold ``values``."""
        return []

    def _changed(self, scopes) -> None:
        generations = {g for values in scopes for g in self.scoped(values)}
        if self.generation is not None:
            generations.add(self.generation)
        for generation in generations:
            generation.changed(self.db)

    def scoped_as(self, instance) -> "CatalogueQuerySet":
        """This queryset's rows are ``instance`` (a row filtered by its primary key, say):
        an update bumps ``instance``'s scoped generations without reading them first (for
        hot paths such as the checksum worker's, which holds the row already)."""
        clone = self._chain()
        clone._known_scopes = [scope_values(instance, self.scope_fields)]
        return clone

    def scoped_as_all(self, instances) -> "CatalogueQuerySet":
        """:meth:`scoped_as` for a queryset whose rows are ``instances``."""
        clone = self._chain()
        clone._known_scopes = [scope_values(obj, self.scope_fields) for obj in instances]
        return clone

    def rows_written(self, instances) -> None:
        """Bump what an update of ``instances`` (and their scopes) bumps, for rows a caller
        wrote in SQL of its own (a set-wise ``UPDATE … FROM``, say)."""
        self._changed([scope_values(obj, self.scope_fields) for obj in instances])

    def _clone(self):
        clone = super()._clone()
        clone._known_scopes = getattr(self, "_known_scopes", None)
        return clone

    def _scopes_of(self, objs) -> list[dict]:
        """The scopes of ``objs`` as they are, and as they were loaded (a row moved)."""
        if not self.scope_fields:
            return []
        scopes = []
        for obj in objs:
            now = scope_values(obj, self.scope_fields)
            scopes.append(now)
            loaded = getattr(obj, "_loaded_scope", None)
            if loaded:
                scopes.append({**now, **loaded})
        return scopes

    def update(self, **kwargs) -> int:
        if not set(kwargs) - self.quiet_fields:
            return super().update(**kwargs)
        before = getattr(self, "_known_scopes", None) or []
        if self.scope_fields and not before:
            # The scopes the rows are in before (and, if the update moves them, after).
            before = [
                dict(zip(self.scope_fields, row, strict=True))
                for row in self.order_by().values_list(*self.scope_fields).distinct()
            ]
        rows = super().update(**kwargs)
        if rows:
            moved = {
                field: _pk(kwargs[name])
                for field in self.scope_fields
                for name in (field, field.removesuffix("_id"))
                if name in kwargs
            }
            self._changed([*before, *({**values, **moved} for values in before if moved)])
        return rows

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        # As for save(): a new row whose quiet_when_created() says no cached page shows it
        # (an upload in flight, an upload's audit event) bumps nothing.
        shown = [obj for obj in created if not getattr(obj, "quiet_when_created", bool)()]
        if shown:
            self._changed(self._scopes_of(shown))
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows and set(fields) - self.quiet_fields:
            self._changed(self._scopes_of(objs))
        return rows


def scoped_by(family: Family, field: str):
    """A :meth:`CatalogueQuerySet.scoped` for rows whose ``field`` (a ``scope_fields``
    entry) names their generation in ``family``."""

    def scoped(values: dict) -> list[Generation]:
        scope = values.get(field)
        return [family.of(scope)] if scope is not None else []

    return staticmethod(scoped)


class ActivityQuerySet(CatalogueQuerySet):
    """A queryset whose bulk writes bump the activity generation."""

    generation = ACTIVITY


def _pk(value):
    return value.pk if isinstance(value, models.Model) else value


def scope_values(instance, fields: tuple[str, ...]) -> dict:
    """``fields`` of ``instance`` (``record_id``; ``record__project_id`` follows the record)."""
    values = {}
    for field in fields:
        target = instance
        *path, last = field.split("__")
        for step in path:
            target = getattr(target, step, None) if target is not None else None
        values[field] = getattr(target, last, None) if target is not None else None
    return values


class ScopeTracking(models.Model):
    """Remembers the scope columns a row was loaded with, so that a ``save()`` moving it
    (to another record, say) also bumps the generations of where it was."""

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.remember_scope()
        return instance

    def remember_scope(self) -> None:
        """Where the row is now is where it was, for its next ``save()``."""
        fields = type(self)._default_manager._queryset_class.scope_fields
        self._loaded_scope = {
            field: self.__dict__[field]
            for field in fields
            if "__" not in field and field in self.__dict__  # not deferred
        }


def _receiver(generation: Generation | None, quiet: frozenset[str] | None):
    def on_write(sender, instance=None, using=None, update_fields=None, **kwargs) -> None:
        if kwargs.get("created") and isinstance(instance, ScopeTracking):
            instance.remember_scope()  # a row created and then moved moves from here
        if kwargs.get("created") and getattr(instance, "quiet_when_created", bool)():
            return  # a new row no cached page shows (the model says so)
        queryset_class = sender._default_manager._queryset_class
        quiet_fields = quiet
        if quiet_fields is None:
            quiet_fields = getattr(queryset_class, "quiet_fields", frozenset())
        if update_fields and set(update_fields) <= quiet_fields:
            return
        generations = set()
        if generation is not None:
            generations.add(generation)
        fields = getattr(queryset_class, "scope_fields", ())
        if fields:
            scoped = queryset_class.scoped
            generations.update(scoped(scope_values(instance, fields)))
            loaded = getattr(instance, "_loaded_scope", None)
            if loaded:
                generations.update(scoped({**scope_values(instance, fields), **loaded}))
            if loaded is not None:  # saved: where it is now is where it was for the next save
                instance._loaded_scope = scope_values(instance, tuple(loaded))
        for changed in generations:
            changed.changed(using)

    return on_write


def watch(*model_classes, generation: Generation | None = CATALOGUE, quiet_fields=None) -> None:
    """Bump ``generation`` (``None``: only the scoped ones) and the scoped generations of
    the row (its queryset's :meth:`CatalogueQuerySet.scoped`) on every ``save()`` and
    ``delete()`` of ``model_classes`` (a ``save(update_fields=...)`` of quiet fields only
    excepted: ``quiet_fields``, else the model's queryset's; and the creation of a row whose
    ``quiet_when_created()`` says no cached page shows it)."""
    quiet = frozenset(quiet_fields) if quiet_fields is not None else None
    for model in model_classes:
        receiver = _receiver(generation, quiet)
        name = generation.name if generation is not None else "scoped"
        uid = f"kura.{name}.{model._meta.label_lower}"
        post_save.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.save")
        post_delete.connect(receiver, sender=model, weak=False, dispatch_uid=f"{uid}.delete")


def _on_m2m_change(scoped: Callable[[models.Model], list[Generation]]):
    def on_change(sender, instance, action, using=None, **kwargs) -> None:
        if action.startswith("post_"):
            for generation in scoped(instance):
                generation.changed(using)

    return on_change


def watch_m2m(*fields, scoped: Callable[[models.Model], list[Generation]]) -> None:
    """Bump ``scoped(instance)`` on every ``add()``, ``remove()``, ``set()`` and ``clear()``
    of the many-to-many ``fields`` (``Model.field`` descriptors; ``instance`` is the side
    the change was made from), and on every ``save()`` and ``delete()`` of a row of their
    through tables (with the row's first foreign key's object as ``instance``)."""
    for descriptor in fields:
        through = descriptor.through
        handler = _on_m2m_change(scoped)
        m2m_changed.connect(
            handler,
            sender=through,
            weak=False,
            dispatch_uid=f"kura.scoped.{through._meta.label_lower}.m2m",
        )

        def on_row(sender, instance=None, using=None, **kwargs) -> None:
            owner = next(getattr(instance, f.name) for f in sender._meta.fields if f.is_relation)
            for generation in scoped(owner):
                generation.changed(using)

        uid = f"kura.scoped.{through._meta.label_lower}"
        post_save.connect(on_row, sender=through, weak=False, dispatch_uid=f"{uid}.save")
        post_delete.connect(on_row, sender=through, weak=False, dispatch_uid=f"{uid}.delete")
