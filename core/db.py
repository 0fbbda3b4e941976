"""Public pages never hold a worker for long: a statement timeout on their queries.

Anyone can ask the public pages for anything (a search for a word found in every record,
with a fresh parameter each time, misses every cache). :func:`statement_timeout` makes
PostgreSQL cancel any query of the view that runs longer than
``KURA_PUBLIC_QUERY_TIMEOUT_MS``; the cancellation is an ``OperationalError``, which
:mod:`config.outages` answers with 503 and ``Retry-After``, never a hung worker. The limit
is set for the view's queries only and put back afterwards (two short statements, on
PostgreSQL only; a page served from the page cache makes neither).
"""

from functools import wraps

from django.conf import settings
from django.db import DatabaseError, connection


def _set_timeout(milliseconds: int | None) -> None:
    value = "DEFAULT" if milliseconds is None else str(int(milliseconds))
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = {value}")  # an int or DEFAULT, no input


def statement_timeout(view):
    """Run ``view`` with every query limited to ``KURA_PUBLIC_QUERY_TIMEOUT_MS`` (0: none)."""

    @wraps(view)
    def limited(request, *args, **kwargs):
        milliseconds = settings.KURA_PUBLIC_QUERY_TIMEOUT_MS
        if not milliseconds or connection.vendor != "postgresql":
            return view(request, *args, **kwargs)
        _set_timeout(milliseconds)
        try:
            return view(request, *args, **kwargs)
        finally:
            if connection.connection is not None:  # not after the database went away
                try:
                    _set_timeout(None)
                except DatabaseError:  # broken, or its transaction aborted:
                    connection.close_if_unusable_or_obsolete()  # a new one starts afresh

    return limited
