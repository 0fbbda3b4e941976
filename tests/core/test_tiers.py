"""The tier table (docs/architecture.md, "Tier table"): it covers every tier once, its
columns agree with each other, and what is derived from it follows a row added to it."""

import dataclasses
import datetime
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db.models import Q

from core import tiers
from core.tiers import TIER_TABLE, Downloaders, ListedTo, TierRule, tier_rule
from core.vocabularies import ACCESS_RIGHTS, Tier
from repository.access import Action, rule
from repository.governance.tiers import tier_change_opens


def test_the_table_covers_every_tier_once():
    assert sorted(row.tier for row in TIER_TABLE) == sorted(Tier.values)
    assert [row.tier for row in TIER_TABLE] == list(Tier.values)  # in the order of Tier
    for tier in Tier:
        assert tier_rule(tier).tier == tier
        assert tier_rule(tier).access_right is ACCESS_RIGHTS[tier]
    with pytest.raises(KeyError):
        tier_rule("no_such_tier")


def test_the_columns_agree():
    assert len({row.openness for row in TIER_TABLE}) == len(TIER_TABLE)
    for row in TIER_TABLE:
        assert row.needs_date == (row.lifted_to is not None)
        if row.lifted_to is not None:
            assert tier_rule(row.lifted_to).openness > row.openness
            assert not tier_rule(row.lifted_to).needs_date
        # Only tiers beyond the project are listed to, or downloaded by, everyone.
        opens = row.downloaders in (Downloaders.EVERYONE, Downloaders.MEMBERS_UNTIL_DATE)
        assert opens == row.beyond_project == (row.listed_to is ListedTo.EVERYONE)
        # maDMP reads each tier back from its data_access and whether it has a date.
        assert tiers.tier_of_data_access(row.data_access, dated=row.needs_date) == row.tier


def test_the_values_read_today():
    assert [tiers.openness(t) for t in Tier] == [3, 2, 1, 0]
    assert tiers.beyond_project() == {Tier.PUBLIC, Tier.EMBARGOED}
    assert tiers.dated_tiers() == (Tier.EMBARGOED,)
    assert tiers.downloaded_by(Downloaders.EVERYONE) == (Tier.PUBLIC,)
    assert tiers.downloaded_by(Downloaders.MEMBERS_AND_GRANTEES) == (Tier.SHARED,)
    assert tiers.listed_to(ListedTo.STEWARDS) == (Tier.NON_SHARED,)
    assert tiers.most_open_within_project() == Tier.SHARED
    assert tiers.least_open() == Tier.NON_SHARED
    assert tiers.madmp_data_access() == {
        Tier.PUBLIC: "open",
        Tier.EMBARGOED: "open",
        Tier.SHARED: "shared",
        Tier.NON_SHARED: "closed",
    }
    assert tiers.tier_of_data_access("open", dated=True) == Tier.EMBARGOED
    assert tiers.tier_of_data_access("open", dated=False) == Tier.PUBLIC
    assert tiers.tier_of_data_access("no such value", dated=False) == Tier.NON_SHARED


# A hypothetical tier between shared and embargoed: the whole campus downloads it, it is
# not beyond the project, and it opens on a date to embargoed.
CAMPUS = TierRule(
    tier="campus",
    openness=2,
    beyond_project=False,
    needs_date=True,
    lifted_to=Tier.EMBARGOED,
    downloaders=Downloaders.MEMBERS_UNTIL_DATE,
    listed_to=ListedTo.OPEN_RECORDS_MEMBERS_AND_GRANTEES,
    data_access="campus",
    colour="#000000",
)


@pytest.fixture
def campus_tier(monkeypatch):
    """The table with CAMPUS added (and the tiers above it one more open)."""
    more_open = [
        dataclasses.replace(row, openness=row.openness + 1) if row.openness >= 2 else row
        for row in TIER_TABLE
    ]
    monkeypatch.setattr(tiers, "TIER_TABLE", (*more_open, CAMPUS))


def test_a_row_added_to_the_table_is_picked_up(campus_tier):
    assert tiers.tier_rule("campus") == CAMPUS
    assert tiers.openness(Tier.SHARED) < tiers.openness("campus") < tiers.openness(Tier.EMBARGOED)
    assert "campus" not in tiers.beyond_project()
    assert tiers.dated_tiers() == (Tier.EMBARGOED, "campus")
    assert tiers.downloaded_by(Downloaders.MEMBERS_UNTIL_DATE) == (Tier.EMBARGOED, "campus")
    assert tiers.listed_to(ListedTo.OPEN_RECORDS_MEMBERS_AND_GRANTEES) == (Tier.SHARED, "campus")
    assert tiers.most_open_within_project() == "campus"
    assert tiers.madmp_data_access()["campus"] == "campus"
    assert tiers.tier_of_data_access("campus", dated=True) == "campus"


def test_the_rules_read_the_added_row(campus_tier):
    today = datetime.date(2030, 4, 1)
    shared = SimpleNamespace(tier=Tier.SHARED, available_date=None)
    campus = SimpleNamespace(tier="campus", available_date=today)
    assert tier_change_opens(shared, tier="campus", available_date=today)
    assert not tier_change_opens(campus, tier=Tier.SHARED, available_date=None)
    # An earlier date opens a dated tier sooner, as it does an embargo.
    assert tier_change_opens(campus, tier="campus", available_date=today.replace(year=2000))
    # The access rules name it: everyone downloads it once its date has come, and it is
    # listed to everyone where its record's metadata is open.
    assert _names_tier(rule(AnonymousUser(), Action.DOWNLOAD), "campus")
    assert _names_tier(rule(AnonymousUser(), Action.VIEW_METADATA), "campus")


def _names_tier(condition: Q, tier: str) -> bool:
    """Whether a ``tier__in`` lookup anywhere in ``condition`` names ``tier``."""
    return any(
        _names_tier(child, tier)
        if isinstance(child, Q)
        else child[0] == "tier__in" and tier in child[1]
        for child in condition.children
    )
