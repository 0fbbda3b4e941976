"""The curator's review queue: ``/review/`` and one request at ``/review/<id>/``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.roles import ProjectAction, may
from core.forms import form_errors_add
from core.http import client_ip
from dmp.models import DmpRecord
from repository.access import tier_decision_refusal
from repository.forms import TierDecisionForm
from repository.governance import tiers
from repository.governance.review import selectors
from repository.governance.review.forms import QueueFilterForm
from repository.models import TierChangeRequest


def _require_curator(user) -> None:
    # The same answer as for a page that does not exist: the queue is not advertised.
    if not may(user, ProjectAction.REVIEW_TIERS):
        raise Http404("No such page.")


@login_required
@require_safe
def queue(request):
    _require_curator(request.user)
    form = QueueFilterForm(request.GET or None)
    filters = form.filters() if form.is_valid() else selectors.QueueFilters()
    page = selectors.tier_request_queue_page(filters=filters, page_number=request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "page_query": query.urlencode()}
    return render(request, "review/queue.html", context, status=400 if form.errors else 200)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def detail(request, request_id: int):
    _require_curator(request.user)
    tier_request = get_object_or_404(
        TierChangeRequest.objects.select_related("project", "requested_by", "decided_by"),
        pk=request_id,
    )
    form = TierDecisionForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            tiers.tier_request_decide(
                actor=request.user,
                tier_request_id=tier_request.pk,
                approve=form.approve,
                comment=form.cleaned_data["comment"],
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
            tier_request.refresh_from_db()  # someone else may have decided it meanwhile
        else:
            messages.success(request, _decided_message(form.approve, 1))
            return redirect("review-queue")
    context = selectors.tier_request_detail_context(tier_request=tier_request)
    context["form"] = form
    # Four eyes: the page offers no decision to whom the service would refuse it.
    context["decision_refusal"] = tier_decision_refusal(request.user, tier_request)
    return render(request, "review/detail.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def decide_record(request, record_id: int):
    _require_curator(request.user)
    record = get_object_or_404(DmpRecord, pk=record_id)
    form = TierDecisionForm(request.POST)
    back = request.POST.get("back")
    if form.is_valid():
        try:
            outcome = tiers.tier_requests_decide_for_record(
                actor=request.user,
                record_id=record.pk,
                approve=form.approve,
                comment=form.cleaned_data["comment"],
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            for error in exc.messages:
                messages.error(request, error)
        else:
            messages.success(request, _decided_message(form.approve, len(outcome.decided)))
            if outcome.left:
                messages.warning(request, tiers.requests_left_message(outcome.left))
            return redirect("review-queue")
    else:
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
    if back and back.isdigit() and TierChangeRequest.objects.filter(pk=back).exists():
        return redirect("review-detail", request_id=int(back))
    return redirect("review-queue")


def _decided_message(approved: bool, count: int) -> str:
    if approved:
        return _("Approved %(count)s request(s); the new tier applies now.") % {"count": count}
    return _("Rejected %(count)s request(s); the requesters are notified.") % {"count": count}
