from django.utils.functional import SimpleLazyObject

from accounts.roles import ProjectAction, may


def navigation(request) -> dict:
    """Whether the header links to the program view and the review queue; asked only when a
    page renders it."""
    return {
        "show_programs": SimpleLazyObject(lambda: may(request.user, ProjectAction.READ_PROGRAMS)),
        "show_review": SimpleLazyObject(lambda: may(request.user, ProjectAction.REVIEW_TIERS)),
    }
