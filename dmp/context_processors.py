from django.utils.functional import SimpleLazyObject

from repository.access import can_review_tiers, can_view_programs


def navigation(request) -> dict:
    """Whether the header links to the program view and the review queue; asked only when a
    page renders it."""
    return {
        "show_programs": SimpleLazyObject(lambda: can_view_programs(request.user)),
        "show_review": SimpleLazyObject(lambda: can_review_tiers(request.user)),
    }
