"""Who may do what with a project: site-wide roles and the project-role table.

Curators and program officers are members of named groups; everyone else acts through a
role in a project (:class:`accounts.models.Membership`). What each role may do with a
project is one table, :data:`ALLOWED`, read by :func:`may` — views, services and templates
ask ``may(user, ProjectAction.…, project)`` instead of spelling the roles out. Which
*objects* a user sees is the access chokepoint's business (``repository/access.py``), and
so is whether a user may open a project's page at all (it depends on the objects they see):
``repository.access.access_project(user, pk, need=…)``.
"""

from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db.models import OuterRef, QuerySet, Subquery

from .models import STEWARD_ROLES, Membership, Project, Role


def _in_group(user, group_name: str) -> bool:
    if not user.is_authenticated:
        return False
    cache = user.__dict__.setdefault("_kura_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user.__dict__["_kura_groups"] = cache
    return group_name in cache


def is_curator(user) -> bool:
    """Staff in the curator group review tier changes and see all metadata."""
    return bool(
        user.is_authenticated and user.is_staff and _in_group(user, settings.KURA_CURATOR_GROUP)
    )


def is_program_officer(user) -> bool:
    """Funder-side staff who read the aggregated metadata of a program."""
    return _in_group(user, settings.KURA_PROGRAM_OFFICER_GROUP)


UPLOADER_ROLES = (Role.PM, Role.DATA_MANAGER, Role.RESEARCHER)


class ProjectAction(StrEnum):
    """What a user may do with a project; the last three are site-wide (no project)."""

    READ_DMP = "read_dmp"  # the whole DMP page: plan, records, coverage
    EDIT_DMP = "edit_dmp"  # write the plan and records, import records
    UPLOAD = "upload"  # add data objects
    READ_DASHBOARD = "read_dashboard"
    DECIDE_ACCESS = "decide_access"  # decide access requests, grant and revoke access
    READ_AUDIT_TRAIL = "read_audit_trail"  # without a project: the site-wide trail
    READ_MEMBERS = "read_members"  # the members page: members, roles, pending invitations
    MANAGE_MEMBERS = "manage_members"  # invite, change roles and remove, below PM
    MANAGE_PMS = "manage_pms"  # also make, invite, demote and remove PMs
    REVIEW_TIERS = "review_tiers"  # the review queue: decide tier change requests
    READ_PROGRAMS = "read_programs"  # the aggregated program view
    CREATE_PROJECT = "create_project"  # the project creation page


@dataclass(frozen=True)
class Allowed:
    """Who may: members of the project in ``roles``, and the site-wide roles flagged."""

    roles: tuple[str, ...] = ()
    superusers: bool = True
    curators: bool = False
    program_officers: bool = False
    staff: bool = False  # any ``is_staff`` account, curator or not


ALLOWED: dict[ProjectAction, Allowed] = {
    ProjectAction.READ_DMP: Allowed(roles=tuple(Role), curators=True, program_officers=True),
    ProjectAction.EDIT_DMP: Allowed(roles=STEWARD_ROLES),
    ProjectAction.UPLOAD: Allowed(roles=UPLOADER_ROLES, superusers=False),
    ProjectAction.READ_DASHBOARD: Allowed(roles=STEWARD_ROLES, curators=True),
    ProjectAction.DECIDE_ACCESS: Allowed(roles=STEWARD_ROLES),
    ProjectAction.READ_AUDIT_TRAIL: Allowed(roles=STEWARD_ROLES, curators=True),
    ProjectAction.READ_MEMBERS: Allowed(roles=tuple(Role), curators=True),
    # Data managers run the team below the PM: they invite, change roles among data
    # manager, researcher and collaborator, and remove such members; only a PM makes,
    # invites, demotes or removes a PM (accounts/members.py keeps at least one).
    ProjectAction.MANAGE_MEMBERS: Allowed(roles=STEWARD_ROLES),
    ProjectAction.MANAGE_PMS: Allowed(roles=(Role.PM,)),
    ProjectAction.REVIEW_TIERS: Allowed(curators=True),
    ProjectAction.READ_PROGRAMS: Allowed(curators=True, program_officers=True),
    # Kura has no institution administrators: the site's staff create projects.
    ProjectAction.CREATE_PROJECT: Allowed(curators=True, staff=True),
}


def may(user, action: ProjectAction, project: Project | None = None) -> bool:
    """Whether ``user`` may do ``action`` with ``project`` (``None``: site-wide)."""
    if not user.is_authenticated:
        return False
    allowed = ALLOWED[action]
    if allowed.superusers and user.is_superuser:
        return True
    if allowed.curators and is_curator(user):
        return True
    if allowed.program_officers and is_program_officer(user):
        return True
    if allowed.staff and user.is_staff:
        return True
    return project is not None and project_role(user, project) in allowed.roles


def project_role(user, project: Project) -> str | None:
    """The user's role in ``project``, or ``None``."""
    if not user.is_authenticated:
        return None
    known = project.__dict__.get(_ROLE_READ)
    if known is not None and known[0] == user.pk:
        return known[1]
    return (
        Membership.objects.filter(user=user, project=project).values_list("role", flat=True).first()
    )


# Where a project fetched with its viewer's role (with_role) keeps it: (user id, role).
_ROLE_READ = "_kura_viewer_role"


def with_role(user, queryset: QuerySet) -> QuerySet:
    """``queryset`` of projects, each read with ``user``'s role in it (see :func:`role_read`)."""
    roles = Membership.objects.filter(user=user, project=OuterRef("pk")).values("role")[:1]
    return queryset.annotate(viewer_role=Subquery(roles))


def role_read(user, project: Project) -> Project:
    """Let :func:`project_role` answer for ``user`` from the role read with ``project`` (by
    :func:`with_role`): the same row, read in the same query, so the page asks once rather
    than once per check."""
    project.__dict__[_ROLE_READ] = (user.pk, project.viewer_role)
    return project
