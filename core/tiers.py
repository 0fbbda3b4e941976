"""The tier table: what each access tier means, declared once.

One row per :class:`~core.vocabularies.Tier` (docs/architecture.md, "Tier table"): how
open it is, whether it opens data beyond the project, whether it needs an available date
and what it becomes on that date, who downloads the bytes and who sees the object listed,
the maDMP ``data_access`` value and the colour of its dashboard charts. Its label and COAR
access-rights URI are the tier's term in ``ACCESS_RIGHTS``.

The rules read the table, never a tier by name: the access chokepoint
(``repository/access.py``) builds its ``Q`` expressions from :attr:`TierRule.downloaders`
and :attr:`TierRule.listed_to`, tier changes compare :attr:`TierRule.openness`, maDMP maps
:attr:`TierRule.data_access` both ways. The values derived here are functions that read
:data:`TIER_TABLE` when called, so a row added to it is picked up everywhere.

It stands on the ground floor, beside ``Tier``, because ``dmp`` (maDMP, record checks)
needs it as much as ``repository`` does.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from .vocabularies import ACCESS_RIGHTS, Term, Tier


class Downloaders(StrEnum):
    """Who may download an object's bytes, besides its stewards (who always may)."""

    EVERYONE = "everyone"
    # Members of the project until the object's available date, then everyone.
    MEMBERS_UNTIL_DATE = "members_until_date"
    # Members of the project, and holders of a live AccessGrant on its record.
    MEMBERS_AND_GRANTEES = "members_and_grantees"
    # The project's PM and data managers, and the uploader while still a member.
    STEWARDS = "stewards"


class ListedTo(StrEnum):
    """Who sees an object listed (its metadata), besides its stewards."""

    EVERYONE = "everyone"
    # Everyone if the record's metadata is open; else members and live grantees.
    OPEN_RECORDS_MEMBERS_AND_GRANTEES = "open_records_members_and_grantees"
    STEWARDS = "stewards"


@dataclass(frozen=True)
class TierRule:
    """One row of the tier table."""

    tier: str
    openness: int  # a change to a lower number makes data less open
    beyond_project: bool  # personal data and unverified bytes stay out
    needs_date: bool  # an ``available_date`` is required (and only then kept)
    lifted_to: str | None  # the tier it becomes when its available date comes
    downloaders: Downloaders
    listed_to: ListedTo
    data_access: str  # maDMP 1.2 ``distribution.data_access``
    colour: str  # dashboard charts (the badges have their own, in static/css/kura.css)

    @property
    def access_right(self) -> Term:
        """Its term in ``ACCESS_RIGHTS``: bilingual label and COAR access-rights URI."""
        return ACCESS_RIGHTS[self.tier]


TIER_TABLE: tuple[TierRule, ...] = (
    TierRule(
        tier=Tier.PUBLIC,
        openness=3,
        beyond_project=True,
        needs_date=False,
        lifted_to=None,
        downloaders=Downloaders.EVERYONE,
        listed_to=ListedTo.EVERYONE,
        data_access="open",
        colour="#166534",
    ),
    TierRule(
        tier=Tier.EMBARGOED,
        openness=2,
        beyond_project=True,
        needs_date=True,
        lifted_to=Tier.PUBLIC,
        downloaders=Downloaders.MEMBERS_UNTIL_DATE,
        listed_to=ListedTo.EVERYONE,
        data_access="open",  # with the licence starting on the available date
        colour="#b45309",
    ),
    TierRule(
        tier=Tier.SHARED,
        openness=1,
        beyond_project=False,
        needs_date=False,
        lifted_to=None,
        downloaders=Downloaders.MEMBERS_AND_GRANTEES,
        listed_to=ListedTo.OPEN_RECORDS_MEMBERS_AND_GRANTEES,
        data_access="shared",
        colour="#1e40af",
    ),
    TierRule(
        tier=Tier.NON_SHARED,
        openness=0,
        beyond_project=False,
        needs_date=False,
        lifted_to=None,
        downloaders=Downloaders.STEWARDS,
        listed_to=ListedTo.STEWARDS,
        data_access="closed",
        colour="#52525b",
    ),
)


def tier_rule(tier: str) -> TierRule:
    """The row of ``tier`` (``KeyError`` for a code that is no tier)."""
    for row in TIER_TABLE:
        if row.tier == tier:
            return row
    raise KeyError(tier)


def _tiers(rows: Iterable[TierRule]) -> tuple[str, ...]:
    return tuple(row.tier for row in rows)


def openness(tier: str) -> int:
    return tier_rule(tier).openness


def beyond_project() -> frozenset[str]:
    """Tiers that open data beyond the project."""
    return frozenset(_tiers(row for row in TIER_TABLE if row.beyond_project))


def dated_tiers() -> tuple[str, ...]:
    """Tiers that need an available date."""
    return _tiers(row for row in TIER_TABLE if row.needs_date)


def downloaded_by(*kinds: Downloaders) -> tuple[str, ...]:
    """Tiers whose bytes are downloaded by any of ``kinds``."""
    return _tiers(row for row in TIER_TABLE if row.downloaders in kinds)


def listed_to(*kinds: ListedTo) -> tuple[str, ...]:
    """Tiers whose objects are listed to any of ``kinds``."""
    return _tiers(row for row in TIER_TABLE if row.listed_to in kinds)


def open_to_everyone(tier: str) -> bool:
    """Whether anyone may download the bytes of ``tier`` whatever the date (such
    downloads are not audited, and their links live longer)."""
    return tier_rule(tier).downloaders is Downloaders.EVERYONE


def most_open_within_project() -> str:
    """Where an upload asking for a reviewed tier waits for the curator."""
    return max((row for row in TIER_TABLE if not row.beyond_project), key=_openness).tier


def least_open() -> str:
    return min(TIER_TABLE, key=_openness).tier


def _openness(row: TierRule) -> int:
    return row.openness


def madmp_data_access() -> dict[str, str]:
    """Tier → maDMP ``data_access``."""
    return {row.tier: row.data_access for row in TIER_TABLE}


def tier_of_data_access(data_access: str, *, dated: bool) -> str:
    """The tier a maDMP ``data_access`` value reads as: of the tiers with that value, one
    that needs a date when ``dated`` (the licence starts in the future), else one that does
    not; the least open tier for a value no tier has."""
    rows = [row for row in TIER_TABLE if row.data_access == data_access]
    if not rows:
        return least_open()
    return next((row.tier for row in rows if row.needs_date == dated), rows[0].tier)
