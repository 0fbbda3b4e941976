"""Access requests and grants to a record's shared data.

Someone outside the project asks on the record's landing page, giving a purpose; the
project's PM or a data manager approves with an expiry date (which creates an
:class:`~repository.models.AccessGrant`) or rejects with a comment; a grant can be revoked
at any time. Who may download what stays in :mod:`repository.access` (a live grant lets its
holder download the record's shared objects); this module only writes the requests and
grants, audits them and tells the people concerned by e-mail.

Every decision locks its row (``select_for_update``) and checks the state again under the lock, so
two stewards deciding at once cannot both win: the workflow tier change requests share,
:mod:`repository.governance.decisions`. The e-mails are notices of
:mod:`repository.governance.notify`.
"""

import datetime
import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Project
from accounts.roles import ProjectAction, may, project_role
from core.tiers import Downloaders, downloaded_by
from dmp.models import DmpRecord
from repository.access import Action, access_decision_refusal, visible_to
from repository.governance.decisions import decision_change, pending_request_lock, request_decide
from repository.governance.notify import notice_on_commit
from repository.models import AccessGrant, AccessRequest, AuditEvent, RequestStatus
from repository.services import audit_event_record

logger = logging.getLogger(__name__)

PURPOSE_MAX_LENGTH = 4000


# --- Reads ----------------------------------------------------------------------------------


def requestable_objects(*, user, record: DmpRecord) -> QuerySet:
    """The record's shared objects that ``user`` can see listed (what a request is for):
    those on tiers a grant opens (``Downloaders.MEMBERS_AND_GRANTEES``)."""
    return visible_to(user, Action.VIEW_METADATA).filter(
        record=record, tier__in=downloaded_by(Downloaders.MEMBERS_AND_GRANTEES)
    )


def live_grant(*, user, record: DmpRecord) -> AccessGrant | None:
    """``user``'s grant on ``record`` that is neither expired nor revoked, if any."""
    if not user.is_authenticated:
        return None
    return (
        AccessGrant.objects.live()
        .filter(record=record, grantee=user)
        .order_by("-expires_at")
        .first()
    )


@dataclass(frozen=True)
class AccessPanel:
    """What the landing page's "request access" panel shows to one person.

    ``state`` is one of ``anonymous`` (log in first), ``member`` (the project's own shared
    data), ``granted`` (``grant`` is live), ``pending`` (``request`` awaits a decision) or
    ``form`` (may ask; ``request`` is the last refused one, if any).
    """

    state: str
    grant: AccessGrant | None = None
    request: AccessRequest | None = None


def access_panel(*, user, record: DmpRecord) -> AccessPanel | None:
    """The panel for ``user`` on ``record``'s landing page; ``None`` when it has no shared
    objects to ask for."""
    if not requestable_objects(user=user, record=record).exists():
        return None
    if not user.is_authenticated:
        return AccessPanel("anonymous")
    if project_role(user, record.project) is not None:
        return AccessPanel("member")
    grant = live_grant(user=user, record=record)
    if grant is not None:
        return AccessPanel("granted", grant=grant)
    latest = AccessRequest.objects.filter(record=record, requester=user).order_by("-pk").first()
    if latest is not None and latest.status == RequestStatus.PENDING:
        return AccessPanel("pending", request=latest)
    refused = latest if latest is not None and latest.status == RequestStatus.REJECTED else None
    return AccessPanel("form", request=refused)


def pending_access_requests(*, project: Project) -> QuerySet:
    """Requests on the project's records that wait for a decision, oldest first."""
    return (
        AccessRequest.objects.filter(record__project=project, status=RequestStatus.PENDING)
        .select_related("record", "requester")
        .order_by("created_at", "pk")
    )


def decided_access_requests(*, project: Project, limit: int = 20) -> list[AccessRequest]:
    """The project's most recently decided requests."""
    return list(
        AccessRequest.objects.filter(record__project=project)
        .exclude(status=RequestStatus.PENDING)
        .select_related("record", "requester", "decided_by")
        .order_by("-decided_at", "-pk")[:limit]
    )


def project_access_grants(*, project: Project, past_limit: int = 20) -> dict:
    """The project's live grants (revocable) and its most recent expired or revoked ones."""
    now = timezone.now()
    grants = AccessGrant.objects.filter(record__project=project).select_related(
        "record", "grantee", "granted_by", "revoked_by"
    )
    live = grants.live(now)
    return {
        "live": list(live.order_by("expires_at", "pk")),
        "past": list(
            grants.exclude(pk__in=live.values("pk")).order_by("-created_at", "-pk")[:past_limit]
        ),
    }


def default_expiry_date() -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=settings.KURA_ACCESS_GRANT_DEFAULT_DAYS)


def latest_expiry_date() -> datetime.date:
    return timezone.localdate() + datetime.timedelta(days=settings.KURA_ACCESS_GRANT_MAX_DAYS)


# --- Writes ---------------------------------------------------------------------------------


def access_request_create(*, requester, record: DmpRecord, purpose: str) -> AccessRequest:
    """Ask for access to ``record``'s shared data, for ``purpose``.

    Refused (``ValidationError``, nothing written) without a purpose, for members of the
    project, for someone who already holds a live grant or has a request pending, and when
    the record has no shared objects the requester can see. The project's PM and data
    managers are e-mailed once the request is saved.
    """
    purpose = (purpose or "").strip()
    if not purpose:
        raise ValidationError(
            {"purpose": _("Say what you will use the data for: the project decides on it.")}
        )
    if len(purpose) > PURPOSE_MAX_LENGTH:
        raise ValidationError(
            {
                "purpose": _("Keep the purpose under %(max)s characters.")
                % {"max": PURPOSE_MAX_LENGTH}
            }
        )
    if not requester.is_authenticated:
        raise PermissionDenied(_("Log in to request access."))
    with transaction.atomic():
        # One request at a time per record, so two submissions cannot both pass the checks.
        DmpRecord.objects.select_for_update().filter(pk=record.pk).values_list("pk").get()
        if project_role(requester, record.project) is not None:
            raise ValidationError(
                _("You are a member of this project: its shared data is already yours to use.")
            )
        if not requestable_objects(user=requester, record=record).exists():
            raise ValidationError(_("This dataset has no shared files to request."))
        if live_grant(user=requester, record=record) is not None:
            raise ValidationError(_("You already have access to this dataset's shared files."))
        if AccessRequest.objects.filter(
            record=record, requester=requester, status=RequestStatus.PENDING
        ).exists():
            raise ValidationError(
                _(
                    "You have already asked for access to this dataset; "
                    "the project has not decided yet."
                )
            )
        access_request = AccessRequest.objects.create(
            record=record, requester=requester, purpose=purpose
        )
        notice_on_commit("access_requested", request_id=access_request.pk)
    return access_request


def _require_decider(actor, project: Project) -> None:
    if not may(actor, ProjectAction.DECIDE_ACCESS, project):
        raise PermissionDenied(
            _(
                "Only the project manager or a data manager decides on access "
                "to this project's data."
            )
        )


def _pending_request_lock(actor, project: Project, access_request_id) -> AccessRequest:
    """The pending request of ``project``, locked; ``PermissionDenied`` if ``actor`` asked
    for it (four eyes: nobody decides their own request)."""
    return pending_request_lock(
        AccessRequest.objects.filter(record__project=project).select_related("record", "requester"),
        access_request_id,
        actor=actor,
        refusal=access_decision_refusal,
        missing="No such access request.",
    )


def grant_expiry(expires_on: datetime.date | None) -> datetime.datetime:
    """The moment a grant chosen to run through ``expires_on`` ends: the end of that day
    in Kura's time zone. Refuses a date that is not in the future or lies beyond
    ``KURA_ACCESS_GRANT_MAX_DAYS``."""
    if expires_on is None:
        raise ValidationError({"expires_on": _("Choose the date until which access is granted.")})
    if expires_on <= timezone.localdate():
        raise ValidationError({"expires_on": _("The expiry date must be in the future.")})
    latest = latest_expiry_date()
    if expires_on > latest:
        raise ValidationError(
            {
                "expires_on": _("Access can be granted until %(date)s at the latest.")
                % {"date": latest.isoformat()}
            }
        )
    end_of_day = datetime.datetime.combine(expires_on, datetime.time.max)
    return timezone.make_aware(end_of_day, timezone.get_current_timezone())


def access_request_approve(
    *,
    actor,
    project: Project,
    access_request_id,
    expires_on: datetime.date | None,
    comment: str = "",
    ip_address: str | None = None,
) -> AccessGrant:
    """Approve a pending request: the requester may download the record's shared objects
    until the end of ``expires_on``.

    Creates the grant, audits ``grant_created`` (actor, address, grantee and expiry) and
    e-mails the requester. ``Http404`` for a request not of ``project``,
    ``ValidationError`` (nothing changed) for a bad expiry or a request already decided.
    """
    _require_decider(actor, project)
    expires_at = grant_expiry(expires_on)
    with transaction.atomic():
        access_request = _pending_request_lock(actor, project, access_request_id)
        grant = AccessGrant.objects.create(
            record=access_request.record,
            grantee=access_request.requester,
            request=access_request,
            granted_by=actor,
            expires_at=expires_at,
        )
        request_decide(
            access_request,
            actor=actor,
            status=RequestStatus.APPROVED,
            comment=(comment or "").strip(),
            audit=partial(
                _decision_audit,
                actor=actor,
                ip_address=ip_address,
                action=AuditEvent.Action.GRANT_CREATED,
                change={"after": _grant_facts(grant)},
            ),
            notice="access_decided",
        )
    return grant


def access_request_reject(
    *,
    actor,
    project: Project,
    access_request_id,
    comment: str,
    ip_address: str | None = None,
) -> AccessRequest:
    """Refuse a pending request, saying why; audits ``access_request_rejected`` (actor,
    address, requester and comment) and e-mails the requester the comment.

    ``Http404`` for a request not of ``project``; ``ValidationError`` (nothing changed)
    without a comment or for a request already decided.
    """
    _require_decider(actor, project)
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError({"comment": _("Tell the requester why access is refused.")})
    with transaction.atomic():
        access_request = _pending_request_lock(actor, project, access_request_id)
        request_decide(
            access_request,
            actor=actor,
            status=RequestStatus.REJECTED,
            comment=comment,
            audit=partial(
                _decision_audit,
                actor=actor,
                ip_address=ip_address,
                action=AuditEvent.Action.ACCESS_REQUEST_REJECTED,
            ),
            notice="access_decided",
        )
    return access_request


def _decision_audit(
    access_request: AccessRequest, *, actor, ip_address, action, change=None
) -> None:
    """The decision's event on the record, its detail the purpose; by default its
    ``before`` and ``after`` are the status, the requester and the comment."""
    audit_event_record(
        actor=actor,
        action=action,
        record=access_request.record,
        ip_address=ip_address,
        **(
            change
            or decision_change(
                access_request,
                requester=access_request.requester.username,
                decision_comment=access_request.decision_comment,
            )
        ),
        detail=access_request.purpose,
    )


def access_grant_revoke(
    *, actor, project: Project, grant_id, ip_address: str | None = None
) -> AccessGrant:
    """End a live grant now: its holder can no longer download from the next request on.

    Audits ``grant_revoked`` and e-mails the former grantee. ``Http404`` for a grant not of
    ``project``; ``ValidationError`` (nothing changed) if it is already revoked or expired.
    """
    _require_decider(actor, project)
    now = timezone.now()
    with transaction.atomic():
        try:
            grant = (
                AccessGrant.objects.select_for_update(of=("self",))
                .select_related("record", "grantee")
                .get(pk=grant_id, record__project=project)
            )
        except (AccessGrant.DoesNotExist, ValueError, TypeError) as exc:
            raise Http404("No such access grant.") from exc
        if grant.revoked_at is not None:
            raise ValidationError(_("This grant has already been revoked."))
        if grant.expires_at <= now:
            raise ValidationError(_("This grant has already expired."))
        before = {**_grant_facts(grant), "revoked": False}
        grant.revoked_at = now
        grant.revoked_by = actor
        grant.save(update_fields=["revoked_at", "revoked_by"])
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.GRANT_REVOKED,
            record=grant.record,
            ip_address=ip_address,
            before=before,
            after={**_grant_facts(grant), "revoked": True, "revoked_at": now.isoformat()},
        )
        notice_on_commit("access_revoked", grant_id=grant.pk)
    return grant


def _grant_facts(grant: AccessGrant) -> dict:
    return {
        "grant": grant.pk,
        "grantee": grant.grantee.username,
        "grantee_id": grant.grantee_id,
        "expires_at": grant.expires_at.isoformat(),
        "access_request": grant.request_id,
    }
