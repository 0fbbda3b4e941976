"""The public catalogue's generation: a number that changes whenever public pages may.

Public pages (dataset landing pages, the dataset search) are cached for anonymous visitors
under keys that include this number (``repository/public/cache.py``). Every write to a
model that such a page shows bumps it, so a cached page is never served after the data
behind it changed:

* ``save()`` and ``delete()`` of a watched model, through Django's signals (``watch``);
* ``QuerySet.update()``, ``bulk_create()`` and ``bulk_update()`` through
  :class:`CatalogueQuerySet`, which watched models use as their manager.

A write bumps at once (so the writing connection, and a test inside one transaction, read
their own change) and again when its transaction commits (so a page rendered by another
connection from the data as it was before the commit, and cached under the first bump, is
left behind). The number lives in the shared cache; if the cache is unreachable nothing is
cached or bumped and pages are rendered every time.
"""

import logging
import time

from django.core.cache import caches
from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

log = logging.getLogger(__name__)

GENERATION_KEY = "kura:catalogue-generation"
CACHE_ALIAS = "default"


def _cache():
    return caches[CACHE_ALIAS]


def generation() -> int | None:
    """The current generation, or ``None`` when the cache cannot say."""
    cache = _cache()
    try:
        value = cache.get(GENERATION_KEY)
        if value is None:
            # Start from the clock, not 1: if the key is ever evicted while pages cached
            # under earlier numbers survive, the new numbers are all beyond theirs.
            cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
            value = cache.get(GENERATION_KEY)
    except Exception:  # noqa: BLE001 - any cache failure means "do not cache"
        log.warning("catalogue generation unavailable", exc_info=True)
        return None
    return value


def _bump() -> None:
    cache = _cache()
    try:
        try:
            cache.incr(GENERATION_KEY)
        except ValueError:  # no such key yet
            cache.add(GENERATION_KEY, time.time_ns(), timeout=None)
    except Exception:  # noqa: BLE001 - a write must not fail because the cache is down
        log.warning("could not bump the catalogue generation", exc_info=True)


def changed(using: str | None = None) -> None:
    """Public pages may have changed: bump now and again when the transaction commits."""
    _bump()
    connection = transaction.get_connection(using)
    # Once per transaction is enough: the bump at commit covers every write before it.
    if not any(func is _bump for _sids, func, _robust in connection.run_on_commit):
        transaction.on_commit(_bump, using=using)


class CatalogueQuerySet(models.QuerySet):
    """A queryset whose bulk writes bump the catalogue generation.

    ``quiet_fields`` names columns no public page shows (progress counters, timestamps of
    background checks): updates touching only those leave cached pages alone.
    """

    quiet_fields: frozenset[str] = frozenset()

    def update(self, **kwargs) -> int:
        rows = super().update(**kwargs)
        if rows and set(kwargs) - self.quiet_fields:
            changed(self.db)
        return rows

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            changed(self.db)
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        rows = super().bulk_update(objs, fields, *args, **kwargs)
        if rows and set(fields) - self.quiet_fields:
            changed(self.db)
        return rows


def _on_write(sender, using=None, update_fields=None, **kwargs) -> None:
    quiet = getattr(sender._default_manager._queryset_class, "quiet_fields", frozenset())
    if update_fields and set(update_fields) <= quiet:
        return
    changed(using)


def watch(*model_classes) -> None:
    """Bump the generation on every ``save()`` and ``delete()`` of ``model_classes``
    (a ``save(update_fields=...)`` of quiet fields only excepted)."""
    for model in model_classes:
        uid = f"kura.catalogue.{model._meta.label_lower}"
        post_save.connect(_on_write, sender=model, dispatch_uid=f"{uid}.save")
        post_delete.connect(_on_write, sender=model, dispatch_uid=f"{uid}.delete")
