"""``/me/`` ("My page"): the signed-in person's projects, invitations, access requests
and grants; and where a sign-in lands when nothing asked for a page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from repository.mine.selectors import lands_on_my_page
from repository.mine.selectors import my_page as my_page_read


@never_cache
@login_required
@require_safe
def my_page(request):
    return render(request, "repository/my_page.html", {"page": my_page_read(user=request.user)})


@never_cache
@login_required
@require_safe
def signed_in(request):
    """``LOGIN_REDIRECT_URL``, for every sign-in method: a person in no project yet, or
    with an invitation waiting, lands on My page, which says what to do next and offers the
    invitation; the others on the home page with their projects."""
    return redirect("my-page" if lands_on_my_page(request.user) else "home")
