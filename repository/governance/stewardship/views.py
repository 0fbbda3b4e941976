from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.roles import ProjectAction, may
from core.forms import form_errors_add
from core.http import client_ip
from repository.access import (
    Action,
    access_data_object,
    access_decision_refusal,
    access_project,
)
from repository.discovery.public.landing import record_for_landing
from repository.governance import audit, deletion, grants
from repository.governance.stewardship.forms import (
    AccessRequestForm,
    ApproveForm,
    AuditFilterForm,
    RejectForm,
)
from repository.preservation.object_store import StoreError

# --- Access requests ------------------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def access_request_new(request, record_id: int):
    record = record_for_landing(user=request.user, record_id=record_id)
    form = AccessRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            grants.access_request_create(
                requester=request.user, record=record, purpose=form.cleaned_data["purpose"]
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(
                request,
                _("Your request was sent. You will get an e-mail when the project has decided."),
            )
            return redirect(reverse("dataset-landing", args=[record.pk]) + "#request-access")
    context = {
        "record": record,
        "form": form,
        "panel": grants.access_panel(user=request.user, record=record),
    }
    return render(
        request,
        "repository/stewardship/access_request_form.html",
        context,
        status=400 if form.errors else 200,
    )


def _approve_form(request_id, data=None) -> ApproveForm:
    initial = {"expires_on": grants.default_expiry_date()}
    return ApproveForm(data, prefix=f"approve-{request_id}", initial=initial)


def _reject_form(request_id, data=None) -> RejectForm:
    return RejectForm(data, prefix=f"reject-{request_id}")


def _access_page(request, project, *, status=200, bound=None):
    """The project's requests and grants; ``bound`` = (request id, approve, reject forms)
    puts a failed submission's forms, with their errors, back in place."""
    pending = []
    for access_request in grants.pending_access_requests(project=project):
        if bound and bound[0] == access_request.pk:
            approve_form, reject_form = bound[1], bound[2]
        else:
            approve_form, reject_form = (
                _approve_form(access_request.pk),
                _reject_form(access_request.pk),
            )
        # Four eyes: whoever asked is shown why they cannot decide, not the forms.
        access_request.decision_refusal = access_decision_refusal(request.user, access_request)
        pending.append((access_request, approve_form, reject_form))
    if bound and bound[0] not in {access_request.pk for access_request, *_forms in pending}:
        # Decided meanwhile (or by someone else): its forms are no longer on the page.
        for form in bound[1:]:
            for errors in form.errors.values():
                for error in errors:
                    messages.error(request, error)
    context = {
        "project": project,
        "pending": pending,
        "decided": grants.decided_access_requests(project=project),
        "grants": grants.project_access_grants(project=project),
        "latest_expiry": grants.latest_expiry_date(),
    }
    return render(request, "repository/stewardship/access_requests.html", context, status=status)


@never_cache
@login_required
@require_safe
def project_access_requests(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.DECIDE_ACCESS)
    return _access_page(request, project)


def _access_decide(request, project_id: int, request_id: int, *, approve: bool):
    """Approve or reject an access request from its form on the project's requests page;
    a refusal puts the forms back in place with their errors (400)."""
    project = access_project(request.user, project_id, need=ProjectAction.DECIDE_ACCESS)
    forms = [_approve_form(request_id), _reject_form(request_id)]
    form = forms[not approve] = (_approve_form if approve else _reject_form)(
        request_id, request.POST
    )
    if form.is_valid():
        data, actor, ip_address = form.cleaned_data, request.user, client_ip(request)
        try:
            if approve:
                grant = grants.access_request_approve(
                    actor=actor,
                    project=project,
                    access_request_id=request_id,
                    expires_on=data["expires_on"],
                    comment=data["comment"],
                    ip_address=ip_address,
                )
                done = _("Access granted to %(name)s until %(date)s.") % {
                    "name": grant.grantee.display_name,
                    "date": data["expires_on"],
                }
            else:
                access_request = grants.access_request_reject(
                    actor=actor,
                    project=project,
                    access_request_id=request_id,
                    comment=data["comment"],
                    ip_address=ip_address,
                )
                done = _("The request of %(name)s was declined.") % {
                    "name": access_request.requester.display_name
                }
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, done)
            return redirect("project-access-requests", project_id=project.pk)
    return _access_page(request, project, status=400, bound=(request_id, *forms))


@login_required
@require_POST
def access_request_approve(request, project_id: int, request_id: int):
    return _access_decide(request, project_id, request_id, approve=True)


@login_required
@require_POST
def access_request_reject(request, project_id: int, request_id: int):
    return _access_decide(request, project_id, request_id, approve=False)


@login_required
@require_POST
def access_grant_revoke(request, project_id: int, grant_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.DECIDE_ACCESS)
    try:
        grant = grants.access_grant_revoke(
            actor=request.user, project=project, grant_id=grant_id, ip_address=client_ip(request)
        )
    except ValidationError as exc:
        for message in exc.messages:
            messages.error(request, message)
        return _access_page(request, project, status=400)
    messages.success(
        request,
        _("The access of %(name)s was revoked.") % {"name": grant.grantee.display_name},
    )
    return redirect("project-access-requests", project_id=project.pk)


# --- Deleting an object ---------------------------------------------------------------------


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def object_delete(request, object_id: int):
    data_object = access_data_object(request.user, object_id, Action.DELETE)
    status = 200
    if request.method == "POST":
        try:
            deletion.data_object_delete(
                actor=request.user, data_object_id=data_object.pk, ip_address=client_ip(request)
            )
        except StoreError:
            messages.error(
                request,
                _(
                    "The storage could not delete the file just now. "
                    "Nothing was changed; try again."
                ),
            )
            status = 503
        else:
            messages.success(
                request, _("%(name)s was deleted.") % {"name": data_object.original_filename}
            )
            return redirect("project-detail", project_id=data_object.project_id)
    return render(
        request, "repository/stewardship/object_delete.html", {"object": data_object}, status=status
    )


# --- The audit trail ------------------------------------------------------------------------


def _audit_response(request, *, project):
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"project": project, "form": form, "page": None}
        return render(request, "repository/stewardship/audit_trail.html", context, status=400)
    events = audit.audit_events(project=project, filters=form.filters())
    fmt = request.GET.get("format", "")
    if fmt == "csv":
        stem = f"project-{project.pk}" if project else "kura"
        response = StreamingHttpResponse(
            audit.audit_csv_lines(events), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{stem}-audit-trail.csv"'
        return response
    if fmt:
        raise Http404("No such export format.")
    page = Paginator(events, settings.KURA_AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"project": project, "form": form, "page": page}
    return render(request, "repository/stewardship/audit_trail.html", context)


@never_cache
@login_required
@require_safe
def project_audit_trail(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_AUDIT_TRAIL)
    return _audit_response(request, project=project)


@never_cache
@login_required
@require_safe
def site_audit_trail(request):
    if not may(request.user, ProjectAction.READ_AUDIT_TRAIL):
        raise Http404("No such page.")
    return _audit_response(request, project=None)
