"""Personal API tokens: create (the secret is returned once), find by token, revoke.

A token is ``kura_<prefix>_<secret>``. The prefix (12 hex digits, not secret) finds the
row; the SHA-256 of the whole token, compared in constant time, proves it. A fast hash is
enough here: the secret has 256 random bits, so there is nothing to guess offline.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import ApiToken, User

TOKEN_PREFIX = "kura_"  # noqa: S105 - the public marker of every token, not a secret
# last_used_at is written at most this often per token (one UPDATE, not one per request).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _split(token: str) -> str | None:
    """The lookup prefix of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, _sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if len(prefix) != 12 or not secret:
        return None
    return prefix


def api_tokens_of(user: User) -> QuerySet[ApiToken]:
    """The user's tokens, newest first, revoked ones included."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-pk")


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token for ``user``; answers the row and the token, which is never stored."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the token a name.")})
    if len(name) > ApiToken._meta.get_field("name").max_length:
        raise ValidationError({"name": _("The name is longer than 100 characters.")})
    while True:
        prefix = secrets.token_hex(6)
        if not ApiToken.objects.filter(prefix=prefix).exists():
            break
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(user=user, name=name, prefix=prefix, token_hash=_hash(token))
    return row, token


def api_token_revoke(*, user: User, token_pk: int) -> ApiToken | None:
    """Revoke one of ``user``'s tokens (a second call changes nothing); None if not theirs."""
    row = ApiToken.objects.filter(pk=token_pk, user=user).first()
    if row is None:
        return None
    ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    row.refresh_from_db(fields=["revoked_at"])
    return row


def api_token_authenticate(token: str) -> ApiToken | None:
    """The active token row matching ``token`` (its user active too), else None.

    Notes the use in ``last_used_at``, at most once per ``LAST_USED_RESOLUTION``.
    """
    prefix = _split(token)
    if prefix is None:
        return None
    row = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if row is None or not hmac.compare_digest(row.token_hash, _hash(token)):
        return None
    if row.revoked_at is not None or not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
        row.last_used_at = now
    return row
