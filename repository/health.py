"""Reachability of the services Kura depends on: database, broker and storage."""

import hmac
import ipaddress
import threading
import time
import uuid

from celery import current_app
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection


def _timed(check) -> dict:
    started = time.monotonic()
    try:
        detail = check()
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1), "detail": detail}


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_broker() -> str:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.KURA_HEALTH_TIMEOUT)
        return conn.transport.driver_name


def check_storage() -> str:
    """Write, read back and delete a small probe object."""
    key = f"healthz/{uuid.uuid4().hex}"
    name = default_storage.save(key, ContentFile(b"kura"))
    try:
        with default_storage.open(name, "rb") as fh:
            if fh.read() != b"kura":
                raise OSError("storage returned different bytes")
    finally:
        default_storage.delete(name)
    return settings.KURA_STORAGE


def run_health_checks(*, include_broker: bool = True) -> dict:
    checks = {"database": _timed(check_database)}
    if include_broker:
        checks["broker"] = _timed(check_broker)
    checks["storage"] = _timed(check_storage)
    return checks


_cached: tuple[float, dict] | None = None
_cached_lock = threading.Lock()


def run_health_checks_cached() -> dict:
    """:func:`run_health_checks`, run at most once per ``KURA_HEALTH_CACHE_SECONDS`` in
    this process (a monitor polling every second costs one storage write per period)."""
    global _cached
    seconds = settings.KURA_HEALTH_CACHE_SECONDS
    with _cached_lock:
        if _cached is not None and time.monotonic() - _cached[0] < seconds:
            return _cached[1]
        checks = run_health_checks()
        _cached = (time.monotonic(), checks)
        return checks


def health_caller_allowed(request) -> bool:
    """A caller with the bearer token ``KURA_HEALTH_TOKEN``, or one on this host that came
    straight in (loopback, no ``X-Forwarded-For``: a reverse proxy on the same host adds one)."""
    token = settings.KURA_HEALTH_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header.removeprefix("Bearer ").strip(), token)
    if "X-Forwarded-For" in request.headers:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False
