"""``/me/`` ("My page"): the signed-in person's projects, invitations, access requests
and grants."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from repository.mine.selectors import my_page as my_page_read


@never_cache
@login_required
@require_safe
def my_page(request):
    return render(request, "repository/my_page.html", {"page": my_page_read(user=request.user)})
