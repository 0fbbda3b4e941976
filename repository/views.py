import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from accounts.roles import ProjectAction, may
from core.forms import form_errors_add
from core.http import client_ip
from core.vocabularies import Tier
from repository import dashboard, presenters, selectors, services
from repository.access import Action, access_data_object, access_project, can
from repository.discovery.public import signposts
from repository.forms import QuarantineClearForm, TierChangeForm
from repository.governance import tiers
from repository.health import health_caller_allowed, run_health_checks_cached
from repository.presenters import page_context
from repository.preservation import quarantine
from repository.preservation.fixity import CHECKSUM_FILTERS
from repository.preservation.storage import download_response
from repository.usage.capture import download_note


@require_safe
def home(request):
    context = {
        "recent_objects": selectors.recent_public_objects(user=request.user),
        "member_projects": selectors.member_projects(user=request.user),
        "can_create_project": may(request.user, ProjectAction.CREATE_PROJECT),
    }
    return render(request, "repository/home.html", context)


@require_safe
def project_detail(request, project_id: int):
    project = access_project(request.user, project_id)
    checksum = request.GET.get("checksum") or None
    if checksum is not None and checksum not in CHECKSUM_FILTERS:
        return HttpResponseBadRequest(
            _("Unknown checksum state: %(state)s") % {"state": checksum},
            content_type="text/plain; charset=utf-8",
        )
    context = selectors.project_page_context(user=request.user, project=project, checksum=checksum)
    return render(request, "repository/project_detail.html", context)


@login_required
@require_safe
def project_dashboard(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DASHBOARD)
    records_page = request.GET.get("records", "1")
    if not re.fullmatch(r"[0-9]{1,9}", records_page):
        return HttpResponseBadRequest(
            _("Not a page number: %(page)s") % {"page": records_page[:40]},
            content_type="text/plain; charset=utf-8",
        )
    body = dashboard.dashboard_body(
        user=request.user, project=project, records_page=int(records_page)
    )
    return render(request, "repository/dashboard.html", {"project": project, "body": body})


@login_required
@require_safe
def upload_page(request, project_id: int):
    project = access_project(request.user, project_id)
    if not may(request.user, ProjectAction.UPLOAD, project):
        raise Http404("No such project.")  # the same answer as for a project one cannot see
    context = selectors.upload_page_context(user=request.user, project=project)
    return render(request, "repository/upload.html", context)


@require_safe
def object_detail(request, object_id: int):
    data_object = access_data_object(request.user, object_id, Action.VIEW_METADATA)
    page = presenters.object_page(user=request.user, data_object=data_object)
    return render(request, "repository/object_detail.html", page_context(page))


@login_required
@require_POST
def object_tier_change(request, object_id: int):
    data_object = access_data_object(request.user, object_id, Action.VIEW_METADATA)
    if not can(request.user, Action.EDIT, data_object):
        raise PermissionDenied(_("You may not change the access tier of this object."))
    form = TierChangeForm(request.POST)
    if form.is_valid():
        try:
            outcome = tiers.tier_change_request(
                actor=request.user,
                data_object_ids=[data_object.pk],
                ip_address=client_ip(request),
                **form.cleaned_data,
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, _tier_change_message(outcome, form.cleaned_data["tier"]))
            return redirect("object-detail", object_id=data_object.pk)
    page = presenters.object_page(user=request.user, data_object=data_object, tier_form=form)
    return render(request, "repository/object_detail.html", page_context(page), status=400)


def _tier_change_message(outcome: tiers.TierChangeOutcome, tier: str) -> str:
    values = {"tier": Tier(tier).label}
    if outcome.request is not None:
        values["id"] = outcome.request.pk
        return _("Request #%(id)s to make this object %(tier)s is waiting for a curator.") % values
    return _("The access tier is now %(tier)s.") % values


@login_required
@require_POST
def object_quarantine_clear(request, object_id: int):
    data_object = access_data_object(request.user, object_id, Action.VIEW_METADATA)
    if not may(request.user, ProjectAction.REVIEW_TIERS):
        raise PermissionDenied(_("Only curators clear a quarantine."))
    form = QuarantineClearForm(request.POST)
    if form.is_valid():
        try:
            quarantine.quarantine_reverify_request(
                actor=request.user,
                data_object_id=data_object.pk,
                comment=form.cleaned_data["comment"],
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(
                request,
                _(
                    "Kura is reading the file again. If its bytes match the recorded "
                    "checksums, the quarantine is cleared; if not, you will get an e-mail."
                ),
            )
            return redirect("object-detail", object_id=data_object.pk)
    page = presenters.object_page(user=request.user, data_object=data_object, quarantine_form=form)
    return render(request, "repository/object_detail.html", page_context(page), status=400)


@never_cache
@require_safe
def object_download(request, object_id: int):
    data_object = access_data_object(request.user, object_id, Action.DOWNLOAD)
    services.data_object_download_note(
        actor=request.user, data_object=data_object, ip_address=client_ip(request)
    )
    response = download_response(data_object)
    download_note(request, data_object, response)
    if data_object.record_id:
        # FAIR Signposting: the file belongs to its dataset's landing page (on S3's 302 too).
        response["Link"] = signposts.link_header(
            signposts.collection(request, data_object.record_id)
        )
    return response


@never_cache
@require_safe
def healthz(request):
    """Liveness, for anyone: this process answers. Touches no other service, so it costs
    nothing to call and tells nothing about the deployment."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    """Readiness: the database, the broker and the storage (a write, a read and a delete),
    for monitoring only — a caller with ``KURA_HEALTH_TOKEN`` or a direct loopback caller —
    and at most once per ``KURA_HEALTH_CACHE_SECONDS`` per process whoever asks."""
    if not health_caller_allowed(request):
        return JsonResponse(
            {"status": "forbidden", "detail": "Readiness is for monitoring; use /healthz."},
            status=403,
        )
    checks = run_health_checks_cached()
    healthy = all(c["ok"] for c in checks.values())
    response = JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )
    if not healthy:
        response["Retry-After"] = str(max(1, round(settings.KURA_HEALTH_CACHE_SECONDS)))
    return response
