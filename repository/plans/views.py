"""DMP pages: the plan, its records and coverage, exports, and the program overview."""

import secrets
import time

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from accounts.roles import ProjectAction, may
from core.forms import form_errors_add
from core.http import client_ip
from dmp import exports, grdm, madmp, madmp_import, services
from dmp.forms import (
    ImportForm,
    MadmpReviewForm,
    PlanForm,
    RecordForm,
    creators_formset,
    creators_from,
)
from dmp.models import DataManagementPlan
from dmp.records_import import ImportProblem, ImportRefused, records_import
from repository.access import access_dmp_record, access_project, records_visible_to
from repository.plans import selectors
from repository.usage.exports import usage_csv_rows

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _export(fmt: str, records, stem: str):
    """The export ``fmt`` of ``records`` as a download, or ``Http404`` for an unknown one."""
    if fmt in ("csti-csv-ja", "csti-csv-en"):
        language = fmt.rsplit("-", 1)[1]
        response = StreamingHttpResponse(
            exports.csv_rows(records, language), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = (
            f'attachment; filename="{stem}-common-metadata-{language}.csv"'
        )
        return response
    if fmt == "moonshot-xlsx":
        return FileResponse(
            exports.moonshot_xlsx(records, get_language() or "en"),
            as_attachment=True,
            filename=f"{stem}-moonshot-dmp.xlsx",
            content_type=XLSX,
        )
    raise Http404("No such export format.")


def _require_editor(user, project) -> None:
    if not may(user, ProjectAction.EDIT_DMP, project):
        raise PermissionDenied(_("Only the project manager or a data manager may change the DMP."))


@require_safe
def dmp_page(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DMP)
    fmt = request.GET.get("format")
    if fmt:
        records = records_visible_to(request.user).filter(project=project)
        if fmt == "madmp-json":
            return _madmp_response(request, project)
        return _export(fmt, records.order_by("data_number", "pk"), f"project-{project.pk}")
    context = selectors.dmp_page_context(user=request.user, project=project)
    return render(request, "dmp/dmp_page.html", context)


def _madmp_response(request, project):
    try:
        document = madmp.madmp_export(project=project, base_url=request.build_absolute_uri("/"))
    except madmp.MadmpExportError as exc:
        messages.error(request, str(exc))
        return redirect("project-dmp", project_id=project.pk)
    response = JsonResponse(document, json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = f'attachment; filename="project-{project.pk}-madmp.json"'
    return response


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def plan_edit(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DMP)
    _require_editor(request.user, project)
    plan = DataManagementPlan.objects.filter(project=project).first()
    form = PlanForm(request.POST or None, instance=plan)
    if request.method == "POST" and form.is_valid():
        answers = {name: form.cleaned_data[name] for name in form.Meta.fields}
        try:
            services.plan_save(
                actor=request.user,
                plan_or_project=project,
                answers=answers,
                ip_address=client_ip(request),
            )
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(request, _("The data management plan was saved."))
            return redirect("project-dmp", project_id=project.pk)
    return render(request, "dmp/plan_form.html", {"project": project, "plan": plan, "form": form})


def _pending_key(project) -> str:
    return f"madmp-import:{project.pk}"


# How long a reviewed maDMP import waits for its confirmation.
PENDING_SECONDS = 3600


def _madmp_review(request, project, document: bytes):
    """Step 1 of a maDMP import: check the document, keep it in the session (nothing is
    written) and show what would be imported and where each value comes from."""
    review = madmp_import.madmp_import_review(
        actor=request.user, project=project, document=document
    )
    if review.refusals:
        raise ImportRefused(review.refusals)
    token = secrets.token_urlsafe(16)
    request.session[_pending_key(project)] = {
        "token": token,
        "document": document.decode("utf-8-sig"),
        "at": time.time(),
    }
    form = MadmpReviewForm(initial={"token": token}, review=review)
    return _review_page(request, project, review, form)


def _review_page(request, project, review, form, problems=(), status=200):
    return render(
        request,
        "dmp/import_review.html",
        {"project": project, "review": review, "form": form, "problems": list(problems)},
        status=status,
    )


def _madmp_confirm(request, project):
    """Step 2: import the pending document with the person's answers, all or nothing,
    checking it all again."""
    pending = request.session.get(_pending_key(project))
    if (
        not pending
        or pending.get("token") != request.POST.get("token")
        or time.time() - pending.get("at", 0) > PENDING_SECONDS
    ):
        raise ImportRefused(
            [
                ImportProblem(
                    None,
                    "",
                    "",
                    _(
                        "This import is no longer pending (it expired or was replaced): "
                        "upload the file again."
                    ),
                )
            ]
        )
    document = pending["document"]
    review = madmp_import.madmp_import_review(
        actor=request.user, project=project, document=document
    )
    form = MadmpReviewForm(request.POST, review=review)
    if not form.is_valid():
        return _review_page(request, project, review, form, status=400)
    try:
        created = madmp_import.madmp_import(
            actor=request.user,
            project=project,
            document=document,
            answers=form.answers(),
            duplicates=form.cleaned_data.get("duplicates"),
            ip_address=client_ip(request),
        )
    except ImportRefused as refused:
        return _review_page(request, project, review, form, refused.problems, status=400)
    del request.session[_pending_key(project)]
    messages.success(request, _("%(count)s records were imported.") % {"count": len(created)})
    return redirect("project-dmp", project_id=project.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def dmp_import(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DMP)
    _require_editor(request.user, project)
    if request.method == "POST" and "token" in request.POST:
        try:
            return _madmp_confirm(request, project)
        except ImportRefused as refused:
            context = {"project": project, "form": ImportForm(), "problems": refused.problems}
            return render(request, "dmp/import.html", context, status=400)
    form = ImportForm(request.POST or None, request.FILES or None)
    context = {"project": project, "form": form, "problems": []}
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            fmt = form.cleaned_data["format"]
            if fmt == "madmp-json":
                return _madmp_review(request, project, upload.read())
            if fmt == "grdm-rocrate":
                created = grdm.grdm_rocrate_import(
                    actor=request.user,
                    project=project,
                    upload=upload.read(),
                    ip_address=client_ip(request),
                )
            else:
                created = records_import(
                    actor=request.user,
                    project=project,
                    rows=exports.csv_parse(upload),
                    source=fmt,
                    ip_address=client_ip(request),
                )
        except ImportRefused as refused:
            context["problems"] = refused.problems
            return render(request, "dmp/import.html", context, status=400)
        messages.success(request, _("%(count)s records were imported.") % {"count": len(created)})
        return redirect("project-dmp", project_id=project.pk)
    return render(request, "dmp/import.html", context, status=400 if form.errors else 200)


def _record_form(request, project, record=None):
    if request.method == "POST":
        form = RecordForm(request.POST, instance=record, project=project)
        creators = creators_formset(data=request.POST, record=record)
        if form.is_valid() and creators.is_valid():
            fields = {name: form.cleaned_data[name] for name in services.RECORD_FIELDS}
            try:
                if record is None:
                    record = services.record_create(
                        actor=request.user,
                        project=project,
                        fields=fields,
                        creators=creators_from(creators),
                        ip_address=client_ip(request),
                    )
                else:
                    record = services.record_update(
                        actor=request.user,
                        record=record,
                        fields=fields,
                        creators=creators_from(creators),
                        ip_address=client_ip(request),
                    )
            except ValidationError as exc:
                form_errors_add(form, exc)
            else:
                messages.success(request, _("The record was saved."))
                return redirect("dmp-record-detail", project_id=project.pk, record_id=record.pk)
    else:
        initial = {}
        if record is None:
            institution = project.institution
            initial = {
                "data_number": services.next_data_number(project),
                "hosting_inst_ja": institution.name_ja,
                "hosting_inst_en": institution.name_en,
                "hosting_inst_id": institution.ror_id,
            }
        form = RecordForm(instance=record, initial=initial, project=project)
        creators = creators_formset(record=record)
    context = {"project": project, "record": record, "form": form, "creators": creators}
    return render(request, "dmp/record_form.html", context)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def record_new(request, project_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DMP)
    _require_editor(request.user, project)
    return _record_form(request, project)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def record_edit(request, project_id: int, record_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DMP)
    record = access_dmp_record(request.user, project, record_id)
    _require_editor(request.user, project)
    return _record_form(request, project, record)


@require_safe
def record_detail(request, project_id: int, record_id: int):
    project = access_project(request.user, project_id, need=ProjectAction.READ_DMP)
    record = access_dmp_record(request.user, project, record_id)
    context = selectors.record_page_context(user=request.user, record=record)
    return render(request, "dmp/record_detail.html", context)


@require_safe
def programs(request):
    if not may(request.user, ProjectAction.READ_PROGRAMS):
        raise Http404("No such page.")
    groups = selectors.program_overview(user=request.user)
    return render(request, "dmp/programs.html", {"groups": groups})


@require_safe
def program_export(request, funder: str, funding_stream_code: str):
    if not may(request.user, ProjectAction.READ_PROGRAMS):
        raise Http404("No such page.")
    records = selectors.program_records(
        user=request.user, funder=funder, funding_stream_code=funding_stream_code
    )
    fmt = request.GET.get("format", "")
    if fmt == "usage-csv":
        projects = selectors.program_projects(
            user=request.user, funder=funder, funding_stream_code=funding_stream_code
        )
        response = StreamingHttpResponse(
            usage_csv_rows(projects, records), content_type="text/csv; charset=utf-8"
        )
        stem = f"{funder}-{funding_stream_code}"
        response["Content-Disposition"] = f'attachment; filename="{stem}-usage.csv"'
        return response
    if fmt not in ("csti-csv-ja", "csti-csv-en"):
        raise Http404("No such export format.")
    return _export(fmt, records, f"{funder}-{funding_stream_code}")
