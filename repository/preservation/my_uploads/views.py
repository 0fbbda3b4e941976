"""``/uploads/`` ("My uploads") and the duplicate notice's "keep both" answer."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from core.http import client_ip
from repository.preservation.duplicates import data_object_duplicate_keep
from repository.preservation.my_uploads import selectors


@never_cache
@login_required
@require_safe
def my_uploads(request):
    uploads = selectors.my_uploads(user=request.user, page_number=request.GET.get("page"))
    return render(request, "repository/my_uploads.html", {"uploads": uploads})


@login_required
@require_POST
def object_duplicate_keep(request, object_id: int):
    try:
        data_object = data_object_duplicate_keep(
            actor=request.user, data_object_id=object_id, ip_address=client_ip(request)
        )
    except ValidationError as exc:
        messages.info(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("%(name)s is kept as a file of its own.") % {"name": data_object.original_filename},
        )
    return redirect("object-detail", object_id=object_id)
