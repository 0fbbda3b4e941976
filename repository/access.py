"""The single chokepoint for access to data objects.

Every rule of the access-tier table lives here, written once as a ``Q`` expression per
action. Everything else is derived from :func:`rule`:

* :func:`visible_to` filters a queryset (lists, search, exports, harvesters, dashboards);
* :func:`access_data_object` returns one object or raises ``Http404`` — the same answer for
  "does not exist" and "you may not";
* :func:`can` answers for one object already in hand (templates, services);
* :func:`with_permissions` annotates a list with one flag per action, so a page that shows
  many objects does not ask once per object.

Nothing else in Kura decides access by tier (other filters by tier read the tier table,
``core/tiers.py``, and narrow a queryset from here).

Who downloads the bytes and who sees the objects listed on each tier is the tier table
(``core/tiers.py``, docs/architecture.md "Tier table"): the expressions here are built from
its ``downloaders`` and ``listed_to`` columns, never from tiers named one by one.

Further rules: curators see all stored metadata and may download (and decide) only while
a tier change request on the object is pending; a quarantined object cannot be downloaded
(or previewed) by anyone. Previews (thumbnails, tiles, summaries) follow the download rule,
except that personal data is never previewed to the public and a DICOM image of personal
data only to the project's stewards (``Action.PREVIEW``). Only stored objects are
downloaded, edited or deleted, and pages that list objects list only stored ones: an
upload that never completed is seen by nobody but its uploader, who sees it while it is
still ``uploading`` (on "My uploads", the upload page and the object API; it is aborted
through the upload API, not edited), and by nobody once ``abandoned``; deleted objects
are seen by nobody (the audit trail keeps what they were). The uploader counts as a
steward only while still a member of the project. Superusers see, edit and manage every
stored object, but quarantine binds them too. Deleting an object (its bytes leave storage;
the row stays, marked deleted, for the audit trail) is for its stewards.

Who may do what with a project (decide access requests, read the audit trail, …) is
``accounts.roles.may``; the record, request and audit-event rules and the four-eyes
refusals are at the end of this module.
"""

from enum import StrEnum

from django.conf import settings
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import STEWARD_ROLES, Membership, Project
from accounts.roles import ProjectAction, is_curator, is_program_officer, may, role_read, with_role
from core.tiers import Downloaders, ListedTo, downloaded_by, listed_to
from core.vocabularies import MetadataAccess
from dmp.models import DmpRecord
from repository.models import (
    AccessGrant,
    AccessRequest,
    AuditEvent,
    DataObject,
    RequestStatus,
    TierChangeRequest,
)


class Action(StrEnum):
    VIEW_METADATA = "view_metadata"
    DOWNLOAD = "download"
    EDIT = "edit"
    MANAGE_ACCESS = "manage_access"
    DELETE = "delete"
    # A preview, tile or summary (repository/previews/): who may download the bytes, but
    # never the public for personal data, and a DICOM image of personal data only stewards.
    PREVIEW = "preview"


ALL = Q(pk__isnull=False)
NOTHING = Q(pk__isnull=True)

STORED = Q(status=DataObject.Status.STORED)
NOT_QUARANTINED = Q(quarantined_at__isnull=True)
# Neither the object nor its record (unless the record attests anonymisation) is flagged
# as personal data: the same test as the one that keeps personal data from opening.
NOT_PERSONAL = Q(contains_personal_data=False) & (
    Q(record__isnull=True)
    | Q(record__contains_personal_data=False)
    | Q(record__anonymisation_attested=True)
)


def _membership(user, project_ref: str = "project", roles=None, project=None) -> Q:
    if not user.is_authenticated:
        return NOTHING
    # Bound to a known project the subquery no longer depends on the row, so the database
    # answers it once rather than once per object.
    where = {"project": project if project is not None else OuterRef(project_ref)}
    memberships = Membership.objects.filter(user=user, **where)
    if roles is not None:
        memberships = memberships.filter(role__in=roles)
    return Q(Exists(memberships))


def _steward(user, project=None) -> Q:
    """PM and data managers of the object's project, and its uploader while a member."""
    if not user.is_authenticated:
        return NOTHING
    return _membership(user, roles=STEWARD_ROLES, project=project) | _own_upload(user, project)


def _own_upload(user, project=None) -> Q:
    """Objects ``user`` uploaded while still a member of their project."""
    if not user.is_authenticated:
        return NOTHING
    return Q(uploaded_by=user) & _membership(user, project=project)


def _live_grant(user, now) -> Q:
    if not user.is_authenticated:
        return NOTHING
    grants = AccessGrant.objects.live(now).filter(record=OuterRef("record"), grantee=user)
    return Q(tier__in=downloaded_by(Downloaders.MEMBERS_AND_GRANTEES)) & Q(Exists(grants))


def _pending_review(user) -> Q:
    if not is_curator(user):
        return NOTHING
    pending = TierChangeRequest.data_objects.through.objects.filter(
        dataobject=OuterRef("pk"), tierchangerequest__status=RequestStatus.PENDING
    )
    return Q(Exists(pending))


def rule(user, action: Action | str, project: Project | None = None) -> Q:
    """The condition, as a ``Q`` on ``DataObject``, under which ``user`` may do ``action``.

    With ``project``, the condition holds only for objects of that project (the caller
    filters on it, as :func:`visible_to` does): the membership checks then name the project
    instead of following each row's, which the database evaluates once."""
    action = Action(action)
    now = timezone.now()
    if action is Action.VIEW_METADATA:
        if user.is_superuser or is_curator(user):
            return STORED
        listed_to_everyone = Q(tier__in=listed_to(ListedTo.EVERYONE)) | Q(
            tier__in=listed_to(ListedTo.OPEN_RECORDS_MEMBERS_AND_GRANTEES),
            record__metadata_access=MetadataAccess.OPEN,
        )
        members = _membership(user, project=project) & ~Q(tier__in=listed_to(ListedTo.STEWARDS))
        stewards = _membership(user, roles=STEWARD_ROLES, project=project)
        # The uploader sees their own upload in flight (to resume it); nobody else does.
        stored_or_in_flight = Q(status__in=[DataObject.Status.STORED, DataObject.Status.UPLOADING])
        own = stored_or_in_flight & _own_upload(user, project)
        return (STORED & (listed_to_everyone | members | _live_grant(user, now) | stewards)) | own
    if action is Action.DOWNLOAD:
        if user.is_superuser:
            return STORED & NOT_QUARANTINED
        open_to_everyone = Q(tier__in=downloaded_by(Downloaders.EVERYONE)) | Q(
            tier__in=downloaded_by(Downloaders.MEMBERS_UNTIL_DATE),
            available_date__lte=timezone.localdate(now),
        )
        members = _membership(user, project=project) & Q(
            tier__in=downloaded_by(Downloaders.MEMBERS_UNTIL_DATE, Downloaders.MEMBERS_AND_GRANTEES)
        )
        return (
            STORED
            & NOT_QUARANTINED
            & (
                open_to_everyone
                | members
                | _steward(user, project)
                | _live_grant(user, now)
                | _pending_review(user)
            )
        )
    if action in (Action.EDIT, Action.DELETE):
        # Only stored objects: an upload in flight is aborted, not edited or deleted.
        if user.is_superuser:
            return STORED
        return STORED & _steward(user, project)
    if action is Action.MANAGE_ACCESS:
        if user.is_superuser:
            return STORED
        return STORED & (_steward(user, project) | _pending_review(user))
    if action is Action.PREVIEW:
        download = rule(user, Action.DOWNLOAD, project)
        if user.is_superuser:
            return download
        # Personal data is previewed only to those who download it as members, grantees or
        # reviewing curators, never because it is open to everyone; DICOM images of
        # personal data (faces, burnt-in names) only to the project's stewards.
        beyond_everyone = (
            _membership(user, project=project) | _live_grant(user, now) | _pending_review(user)
        )
        personal_allowed = _steward(user, project) | (
            beyond_everyone & ~Q(technical_metadata__format="DICOM")
        )
        return download & (NOT_PERSONAL | personal_allowed)
    raise ValueError(action)  # pragma: no cover - Action() already refused it


def visible_to(
    user, action: Action | str, queryset: QuerySet | None = None, *, project: Project | None = None
) -> QuerySet:
    """Data objects ``user`` may do ``action`` on (optionally narrowing ``queryset``, or to
    the objects of one ``project``, which is cheaper than filtering on it afterwards)."""
    queryset = DataObject.objects.all() if queryset is None else queryset
    if project is not None:
        queryset = queryset.filter(project=project)
    return queryset.filter(rule(user, action, project))


def access_data_object(user, pk, action: Action | str) -> DataObject:
    """The object ``pk`` if ``user`` may do ``action`` on it, else ``Http404``."""
    try:
        return visible_to(user, action).select_related("project", "record").get(pk=pk)
    except (DataObject.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such data object.") from exc


def _flag(action: Action) -> str:
    return f"can_{action.value}"


def with_permissions(queryset: QuerySet, user, *actions: Action) -> QuerySet:
    """Annotate ``can_<action>`` booleans, derived from the same rules, on every row."""
    actions = actions or tuple(Action)
    # SQL's three-valued logic makes a condition over a missing record NULL: count it as no.
    flags = {
        _flag(a): Coalesce(
            ExpressionWrapper(rule(user, a), output_field=BooleanField()), Value(False)
        )
        for a in actions
    }
    return queryset.annotate(**flags)


def permissions_for(user, obj: DataObject) -> dict[str, bool]:
    """Every ``can_<action>`` flag for one object, in one query."""
    flags = with_permissions(DataObject.objects.filter(pk=obj.pk), user)
    return flags.values(*(_flag(a) for a in Action)).get()


def can(user, action: Action | str, obj: DataObject) -> bool:
    """Whether ``user`` may do ``action`` on ``obj`` (uses :func:`with_permissions` flags)."""
    action = Action(action)
    flag = getattr(obj, _flag(action), None)
    if flag is not None:
        return bool(flag)
    return visible_to(user, action).filter(pk=obj.pk).exists()


# --- Projects and records ---------------------------------------------------------------


def project_rule(user) -> Q:
    """Projects whose page ``user`` may open: members, staff roles, or anyone who may see
    at least one of its objects."""
    if user.is_superuser or is_curator(user) or is_program_officer(user):
        return ALL
    visible_objects = visible_to(user, Action.VIEW_METADATA).filter(project=OuterRef("pk"))
    members = _membership(user, project_ref="pk") if user.is_authenticated else NOTHING
    return members | Q(Exists(visible_objects))


def projects_visible_to(user) -> QuerySet:
    return Project.objects.filter(project_rule(user))


def access_project(user, pk, *, need: ProjectAction | None = None) -> Project:
    """The project ``pk`` if ``user`` may open its page and, with ``need``, may do that
    there (:data:`accounts.roles.ALLOWED`); else ``Http404``, as if it did not exist.

    Everyone who may do anything with a project may open its page (its members in any role
    are members; curators, program officers and superusers open every project), so with
    ``need`` :func:`project_rule`, which costs more, is not asked. The project then comes
    with ``user``'s role in it, read in the same query, which the page's other checks
    reuse."""
    if need is None:
        queryset = projects_visible_to(user)
    elif user.is_authenticated:
        queryset = with_role(user, Project.objects.all())
    else:
        raise Http404("No such project.")
    try:
        project = queryset.select_related("institution").get(pk=pk)
    except (Project.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such project.") from exc
    if need is not None and not may(user, need, role_read(user, project)):
        raise Http404("No such project.")
    return project


def record_rule(user) -> Q:
    """DMP records whose metadata ``user`` may read."""
    if user.is_superuser or is_curator(user) or is_program_officer(user):
        return ALL
    opened = Q(metadata_access=MetadataAccess.OPEN)
    if not user.is_authenticated:
        return opened
    grants = AccessGrant.objects.live().filter(record=OuterRef("pk"), grantee=user)
    return opened | _membership(user) | Q(Exists(grants))


def records_visible_to(user) -> QuerySet:
    return DmpRecord.objects.filter(record_rule(user))


def tier_request_rule(user) -> Q:
    """Tier change requests ``user`` may read: curators all of them, the PM and data
    managers their project's, anyone the requests they made."""
    if not user.is_authenticated:
        return NOTHING
    if user.is_superuser or is_curator(user):
        return ALL
    return Q(requested_by=user) | _membership(user, roles=STEWARD_ROLES)


def tier_requests_visible_to(user) -> QuerySet:
    return TierChangeRequest.objects.filter(tier_request_rule(user))


def access_request_rule(user) -> Q:
    """Access requests ``user`` may read: curators all of them, the PM and data managers
    those for their project's records, anyone the requests they made."""
    if not user.is_authenticated:
        return NOTHING
    if user.is_superuser or is_curator(user):
        return ALL
    return Q(requester=user) | _membership(user, "record__project", roles=STEWARD_ROLES)


def access_requests_visible_to(user) -> QuerySet:
    return AccessRequest.objects.filter(access_request_rule(user))


def audit_event_rule(user) -> Q:
    """Audit events ``user`` may read: curators all of them, the PM and data managers
    their project's (the same rule as ``ProjectAction.READ_AUDIT_TRAIL``)."""
    if not user.is_authenticated:
        return NOTHING
    if user.is_superuser or is_curator(user):
        return ALL
    return _membership(user, roles=STEWARD_ROLES)


def audit_events_visible_to(user) -> QuerySet:
    return AuditEvent.objects.filter(audit_event_rule(user))


def _requesters_and_stewards(tier_request: TierChangeRequest) -> tuple[set[int], set[int]]:
    """Who asked for ``tier_request``, and who stewards its data: the project's PM and
    data managers and the uploaders of its objects who are still members."""
    members = Membership.objects.filter(project_id=tier_request.project_id)
    stewards = set(members.filter(role__in=STEWARD_ROLES).values_list("user_id", flat=True))
    uploaders = DataObject.objects.filter(
        tier_requests=tier_request, uploaded_by__in=members.values("user_id")
    ).values_list("uploaded_by_id", flat=True)
    return {tier_request.requested_by_id}, stewards | set(uploaders)


def tier_decision_refusal(user, tier_request: TierChangeRequest) -> str | None:
    """Why ``user``, a curator, may not decide ``tier_request`` (``None``: they may).

    Four eyes: opening data takes two people, so whoever asked never decides, and (with
    ``KURA_FOUR_EYES_EXCLUDE_STEWARDS``, the default) neither does anyone who stewards the
    data. Superusers are bound too; a single-curator installation turns the setting off,
    or leaves tiers out of ``KURA_REVIEWED_TIERS``."""
    requesters, stewards = _requesters_and_stewards(tier_request)
    if user.pk in requesters:
        return _("You asked for this; another curator decides.")
    if settings.KURA_FOUR_EYES_EXCLUDE_STEWARDS and user.pk in stewards:
        return _("You manage this project's data; a curator from outside the project decides.")
    return None


def access_decision_refusal(user, access_request: AccessRequest) -> str | None:
    """Why ``user`` may not decide ``access_request`` (``None``: they may): the person who
    asked never decides their own request (four eyes), superusers included."""
    if user.pk == access_request.requester_id:
        return _("You asked for this; another steward of the project decides.")
    return None


def access_dmp_record(user, project: Project, pk) -> DmpRecord:
    """The record ``pk`` of ``project`` if ``user`` may read its metadata, else ``Http404``."""
    try:
        return records_visible_to(user).select_related("project").get(project=project, pk=pk)
    except (DmpRecord.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such record.") from exc


def through(condition: Q, prefix: str) -> Q:
    """``condition`` (a rule of this module) for rows that reach its model through the
    relation ``prefix`` (``"data_object__"``, ``"record__"``): the same rule, joined
    instead of asked in a subquery. Only a rule of plain column conditions can be followed
    so — an anonymous visitor's, which holds no membership or grant subquery; any other
    raises ``ValueError``."""
    children = []
    for child in condition.children:
        if isinstance(child, Q):
            children.append(through(child, prefix))
        elif isinstance(child, tuple):
            children.append((prefix + child[0], child[1]))
        else:
            raise ValueError(f"{child!r} cannot be followed through {prefix!r}")
    return Q(*children, _connector=condition.connector, _negated=condition.negated)


def may_read_restricted_usage(user, project: Project) -> bool:
    """Whether ``user`` sees a project's shared and in-project usage figures (views and
    downloads by grantees and members) beside the public ones: whoever reads its dashboard
    (its PM and data managers, curators, superusers) and program officers. Everyone else
    sees the public figures only (``repository/usage/selectors.py``)."""
    return may(user, ProjectAction.READ_DASHBOARD, project) or may(
        user, ProjectAction.READ_PROGRAMS
    )
