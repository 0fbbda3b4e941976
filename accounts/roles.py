"""Site-wide roles: curators and program officers are members of named groups."""

from django.conf import settings


def _in_group(user, group_name: str) -> bool:
    if not user.is_authenticated:
        return False
    cache = user.__dict__.setdefault("_kura_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user.__dict__["_kura_groups"] = cache
    return group_name in cache


def is_curator(user) -> bool:
    """Staff in the curator group review tier changes and see all metadata."""
    return bool(
        user.is_authenticated and user.is_staff and _in_group(user, settings.KURA_CURATOR_GROUP)
    )


def is_program_officer(user) -> bool:
    """Funder-side staff who read the aggregated metadata of a program."""
    return _in_group(user, settings.KURA_PROGRAM_OFFICER_GROUP)
