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
"""

import logging
import time
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
        except Exception:  # noqa: BLE001 - any cache failure means "do not cache"
            log.warning("%s generation unavailable", self.name, exc_info=True)
            return None
        return value

    def bump(self) -> None:
        cache = _cache()
        try:
            try:
                cache.incr(self.key)
            except ValueError:  # no such key yet
                cache.add(self.key, time.time_ns(), timeout=None)
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

# The public pages' names for the catalogue generation.
GENERATION_KEY = CATALOGUE.key
generation = CATALOGUE.current
changed = CATALOGUE.changed


# The numbers this process saw last, per set of generations read together: a guess that
# saves a round trip, never trusted.
_seen: dict[tuple[str, ...], tuple[int, ...]] = {}


def cached_lookup(
    generations: Sequence[Generation], key_for: Callable[[tuple[int, ...]], str]
) -> tuple[str | None, object | None]:
    """The key to store a page under (``key_for`` the current numbers of ``generations``)
    and the page stored there, or ``(None, None)`` when the cache is unreachable.

    One round trip when the numbers have not moved since this process last looked: they
    are read together with the page filed under the numbers seen last (MGET is atomic),
    and that page is used only if those numbers are still the current ones."""
    names = tuple(g.name for g in generations)
    guess = _seen.get(names)
    keys = [g.key for g in generations] + ([key_for(guess)] if guess is not None else [])
    cache = _cache()
    try:
        found = cache.get_many(keys)
        current = []
        for g in generations:
            number = found.get(g.key)
            if number is None:
                number = g.current()
                if number is None:
                    return None, None
            current.append(number)
        current = tuple(current)
        _seen[names] = current
        key = key_for(current)
        if current == guess:
            return key, found.get(key)
        return key, cache.get(key)
    except Exception:  # noqa: BLE001 - a cache failure only costs a rendering
        log.warning("page cache unavailable", exc_info=True)
        return None, None


def cached_store(key: str, value, seconds: int) -> None:
    """Keep ``value`` under ``key`` (from :func:`cached_lookup`) for ``seconds``."""
    try:
        _cache().set(key, value, seconds)
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
    def on_write(sender, using=None, update_fields=None, **kwargs) -> None:
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
    model's queryset's)."""
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
