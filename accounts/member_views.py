"""The members page of a project, invitations, and the project creation page.

Each view checks who may see the page, calls one service of ``accounts/members.py`` or
``accounts/invitations.py`` and renders; a service's refusal is shown on the page with a
4xx status, never a 500.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from core.forms import form_errors_add

from . import invitations, members
from .forms import InviteForm, ProjectCreateForm, RoleForm
from .models import Invitation, Membership, Project, Role
from .roles import ProjectAction, may, role_read, with_role


def _project(user, project_id: int, need: ProjectAction) -> Project:
    """The project if ``user`` may do ``need`` there, else 404 (as if it did not exist)."""
    if not user.is_authenticated:
        raise Http404("No such project.")
    project = (
        with_role(user, Project.objects.select_related("institution")).filter(pk=project_id).first()
    )
    if project is None or not may(user, need, role_read(user, project)):
        raise Http404("No such project.")
    return project


def _members_page(request, project: Project, *, form=None, new_link=None, status=200):
    user = request.user
    roles = members.roles_assignable(user, project)
    rows = [
        {
            "membership": membership,
            "can_manage": members.may_manage(user, project, membership.role),
            "roles": roles,
        }
        for membership in members.project_members(project)
    ]
    pending = [
        {"invitation": invitation, "can_revoke": members.may_manage(user, project, invitation.role)}
        for invitation in invitations.invitations_pending(project=project).order_by("expires_at")
    ]
    context = {
        "project": project,
        "rows": rows,
        "pending": pending,
        "can_manage": bool(roles),
        "form": form or InviteForm(roles=roles),
        "new_link": new_link,
    }
    return render(request, "accounts/members.html", context, status=status)


@never_cache  # the page right after an invitation shows its link once
@login_required
@require_http_methods(["GET", "POST"])
def project_members(request, project_id: int):
    project = _project(request.user, project_id, ProjectAction.READ_MEMBERS)
    if request.method == "GET":
        return _members_page(request, project)
    if not may(request.user, ProjectAction.MANAGE_MEMBERS, project):
        raise PermissionDenied
    form = InviteForm(request.POST, roles=members.roles_assignable(request.user, project))
    if not form.is_valid():
        return _members_page(request, project, form=form, status=400)
    try:
        invitation, token = invitations.member_invite(
            actor=request.user, project=project, **form.cleaned_data
        )
    except (ValidationError, PermissionDenied) as exc:
        form_errors_add(
            form, exc if isinstance(exc, ValidationError) else ValidationError(str(exc))
        )
        return _members_page(request, project, form=form, status=400)
    if invitation.kind == Invitation.Kind.EMAIL:
        messages.success(
            request,
            _("The invitation was e-mailed to %(address)s.") % {"address": invitation.value},
        )
    else:
        messages.success(
            request, _("The invitation was made. Pass the link below on to the person.")
        )
    return _members_page(request, project, new_link=invitations.invitation_url(token))


def _refused(request, project: Project, exc: Exception):
    """Back to the members page with the service's refusal (400, or 403 when not allowed)."""
    status = 403 if isinstance(exc, PermissionDenied) else 400
    text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    messages.error(request, text or _("You may not do that."))
    return _members_page(request, project, status=status)


@login_required
@require_POST
def member_role_change(request, project_id: int, membership_id: int):
    project = _project(request.user, project_id, ProjectAction.MANAGE_MEMBERS)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return _refused(request, project, ValidationError(_("Choose a role.")))
    try:
        membership = members.member_role_change(
            actor=request.user,
            project=project,
            membership_pk=membership_id,
            role=form.cleaned_data["role"],
        )
    except Membership.DoesNotExist as exc:
        raise Http404("No such member.") from exc
    except (ValidationError, PermissionDenied) as exc:
        return _refused(request, project, exc)
    messages.success(
        request,
        _("%(name)s is now %(role)s.")
        % {"name": membership.user.display_name, "role": Role(membership.role).label},
    )
    return redirect("project-members", project.pk)


@login_required
@require_POST
def member_remove(request, project_id: int, membership_id: int):
    project = _project(request.user, project_id, ProjectAction.MANAGE_MEMBERS)
    try:
        membership = members.member_remove(
            actor=request.user, project=project, membership_pk=membership_id
        )
    except Membership.DoesNotExist as exc:
        raise Http404("No such member.") from exc
    except (ValidationError, PermissionDenied) as exc:
        return _refused(request, project, exc)
    messages.success(
        request,
        _("%(name)s was removed from the project.") % {"name": membership.user.display_name},
    )
    if membership.user_id == request.user.pk:
        return redirect("home")  # they left: the members page is no longer theirs
    return redirect("project-members", project.pk)


@login_required
@require_POST
def invitation_revoke(request, project_id: int, invitation_id: int):
    project = _project(request.user, project_id, ProjectAction.MANAGE_MEMBERS)
    try:
        invitation = invitations.invitation_revoke(
            actor=request.user, project=project, invitation_pk=invitation_id
        )
    except Invitation.DoesNotExist as exc:
        raise Http404("No such invitation.") from exc
    except (ValidationError, PermissionDenied) as exc:
        return _refused(request, project, exc)
    messages.success(
        request, _("The invitation to %(address)s was withdrawn.") % {"address": invitation.value}
    )
    return redirect("project-members", project.pk)


# Statuses of an invitation that cannot be accepted, by the refusal's code.
REFUSAL_STATUS = {
    "accepted": 410,
    "revoked": 410,
    "expired": 410,
    "own": 403,
    "inviter": 410,
    "mismatch": 403,
    "member": 409,
}


@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request, token: str):
    """An invitation's link: sign in first; then the project, the role and Accept."""
    found = invitations.invitation_by_token(token)
    if found is None:
        raise Http404("No such invitation.")
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    refusal = invitations.invitation_refusal(found, request.user)
    if request.method == "POST" and refusal is None:
        try:
            membership = invitations.invitation_accept(actor=request.user, token=token)
        except ValidationError as exc:
            refusal = exc
        else:
            messages.success(
                request,
                _("Welcome to %(project)s. You are %(role)s.")
                % {"project": membership.project.name, "role": Role(membership.role).label},
            )
            return redirect("project-detail", membership.project_id)
    context = {
        "invitation": found,
        "refusal": " ".join(refusal.messages) if refusal is not None else None,
    }
    status = REFUSAL_STATUS.get(refusal.code, 400) if refusal is not None else 200
    return render(request, "accounts/invitation.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def project_new(request):
    if not may(request.user, ProjectAction.CREATE_PROJECT):
        raise Http404("No such page.")
    form = ProjectCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        handle = fields.pop("first_pm")
        try:
            first_pm = members.user_by_handle(handle) if handle else request.user
            project = members.project_create(actor=request.user, first_pm=first_pm, **fields)
        except ValidationError as exc:
            form_errors_add(form, exc)
        else:
            messages.success(
                request, _("The project “%(name)s” was created.") % {"name": project.name}
            )
            return redirect("project-members", project.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/project_new.html", {"form": form}, status=status)


@login_required
@require_POST
def invitation_accept_addressed(request, invitation_id: int):
    """Accept from My page an invitation to an ePPN or ORCID iD linked to the account."""
    try:
        membership = invitations.invitation_accept_addressed(
            actor=request.user, invitation_pk=invitation_id
        )
    except Invitation.DoesNotExist as exc:
        raise Http404("No such invitation.") from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("my-page")
    messages.success(
        request,
        _("Welcome to %(project)s. You are %(role)s.")
        % {"project": membership.project.name, "role": Role(membership.role).label},
    )
    return redirect("project-detail", membership.project_id)
