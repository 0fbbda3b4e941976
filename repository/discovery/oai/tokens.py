"""Resumption tokens: the list request plus the last key served, signed.

Paging is by key, not offset: a token carries the ``(datestamp, id)`` of the last item of
the page, so records changed or added while a harvest is running do not shift the pages.
It also carries the list's size as counted on the first page and the cursor, for the
token's ``completeListSize`` and ``cursor``.
"""

import datetime
from dataclasses import asdict, dataclass

from django.core import signing

SALT = "kura.oai.resumption-token"


class BadResumptionToken(Exception):
    pass


@dataclass(frozen=True)
class ListState:
    verb: str
    metadata_prefix: str | None
    set_spec: str | None
    from_: str | None  # as the harvester sent them, so granularity checks stay the same
    until: str | None
    last_updated: str | None = None  # the last datestamp served, ISO 8601 with microseconds
    last_id: int | None = None
    total: int | None = None  # the list's size, counted on its first page
    cursor: int = 0  # items served before the page this state asks for

    @property
    def last_key(self) -> tuple[datetime.datetime, int] | None:
        if self.last_updated is None or self.last_id is None:
            return None
        return datetime.datetime.fromisoformat(self.last_updated), self.last_id


def encode(state: ListState) -> str:
    return signing.dumps(asdict(state), salt=SALT, compress=True)


def decode(token: str, verb: str) -> ListState:
    """The state inside ``token``, or :class:`BadResumptionToken` if forged, stale or foreign."""
    try:
        data = signing.loads(token, salt=SALT)
        state = ListState(**data)
        state.last_key  # noqa: B018 - validates the stored key
    except (signing.BadSignature, TypeError, ValueError) as exc:
        raise BadResumptionToken from exc
    if state.verb != verb or state.last_key is None:
        raise BadResumptionToken
    return state
