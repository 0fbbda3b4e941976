"""Projects and their members, run by their PMs: create a project, change a member's
role, remove a member (invitations: ``accounts/invitations.py``).

Who may do which is :data:`accounts.roles.ALLOWED`: ``MANAGE_MEMBERS`` (PMs and data
managers) for everything below PM, ``MANAGE_PMS`` (PMs) as soon as a PM role is given,
taken or invited; ``CREATE_PROJECT`` (curators and staff) for new projects. Every service
checks that itself, changes what it changes under a row lock on the project (so that two
concurrent changes cannot both take away the last PM), and audits in its transaction.

A removed member loses access on their next request: every rule reads ``Membership``
afresh, and the project's generation moves (``MembershipQuerySet``). :data:`member_removed`
is sent in the removal's transaction; the repository listens and aborts the member's
unfinished uploads in the project once it commits (docs/architecture.md, "Members and invitations").
"""

import logging

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, QuerySet, Value, When
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit import AuditAction, audit_record

from .models import Institution, Invitation, Membership, Project, Role, User
from .roles import ProjectAction, may

log = logging.getLogger("kura.members")

# Sent in the transaction that removes a member: sender=Membership, project=, user=, actor=.
member_removed = Signal()


# --- Reads --------------------------------------------------------------------------------


def project_members(project: Project) -> QuerySet[Membership]:
    """The project's members, PMs first, then by role and name."""
    rank = Case(
        *(When(role=role, then=Value(n)) for n, role in enumerate(Role.values)),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(project=project)
        .select_related("user")
        .annotate(role_rank=rank)
        .order_by("role_rank", "user__name_en", "user__username", "pk")
    )


def roles_assignable(user, project: Project) -> list[tuple[str, str]]:
    """The roles ``user`` may give in ``project`` (PM only for those who may manage PMs)."""
    if not may(user, ProjectAction.MANAGE_MEMBERS, project):
        return []
    pms = may(user, ProjectAction.MANAGE_PMS, project)
    return [(value, label) for value, label in Role.choices if pms or value != Role.PM]


def may_manage(user, project: Project, membership_role: str) -> bool:
    """Whether ``user`` may change or remove a member (or invitation) in ``membership_role``."""
    if membership_role == Role.PM:
        return may(user, ProjectAction.MANAGE_PMS, project)
    return may(user, ProjectAction.MANAGE_MEMBERS, project)


def may_grant(user, project: Project, role: str) -> bool:
    """Whether ``user`` (an active account) may still invite someone into ``project`` as
    ``role``: what an invitation they made stands on until it is accepted."""
    return user is not None and user.is_active and may_manage(user, project, role)


# --- Writes -------------------------------------------------------------------------------


def project_lock(project: Project) -> Project:
    """``project``'s row, locked: every membership change of one project is serialised.
    Check permissions against the answer, not ``project``: it is read afresh, so no role
    read before the lock (``accounts.roles.role_read``) comes with it."""
    return Project.objects.select_for_update().get(pk=project.pk)


def members_manage_check(actor, project: Project, *roles: str) -> None:
    if not may(actor, ProjectAction.MANAGE_MEMBERS, project):
        raise PermissionDenied(_("You may not change this project's members."))
    if Role.PM in roles and not may(actor, ProjectAction.MANAGE_PMS, project):
        raise PermissionDenied(_("Only a PM may make, invite, change or remove a PM."))


def role_checked(role: str) -> str:
    if role not in Role.values:
        raise ValidationError({"role": _("Choose a role.")})
    return role


def _keeps_a_pm(project: Project, leaving: Membership) -> None:
    others = Membership.objects.filter(project=project, role=Role.PM).exclude(pk=leaving.pk)
    if not others.exists():
        raise ValidationError(
            _(
                "A project always keeps at least one PM: make another member PM first, "
                "then change or remove this one."
            )
        )


def member_role_change(*, actor, project: Project, membership_pk: int, role: str) -> Membership:
    """Give the member ``membership_pk`` of ``project`` the role ``role``. Making or
    unmaking a PM needs ``MANAGE_PMS``; the last PM stays PM. Audits
    ``member_role_changed``; the new role rules from the next request."""
    role = role_checked(role)
    with transaction.atomic():
        locked = project_lock(project)
        membership = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(pk=membership_pk, project=project)
        )
        members_manage_check(actor, locked, membership.role, role)
        if membership.role == role:
            return membership
        if membership.role == Role.PM:
            _keeps_a_pm(project, membership)
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action=AuditAction.MEMBER_ROLE_CHANGED,
            project=project,
            before={"user": membership.user.username, "role": before},
            after={"user": membership.user.username, "role": role},
        )
        _invitations_unbacked_revoke(actor=actor, project=locked, inviter=membership.user)
    return membership


def member_remove(*, actor, project: Project, membership_pk: int) -> Membership:
    """Take the member ``membership_pk`` out of ``project`` (a PM: ``MANAGE_PMS``; never the
    last PM). Their access ends with the transaction; :data:`member_removed` lets the
    repository abort their unfinished uploads in the project. Audits ``member_removed``."""
    with transaction.atomic():
        locked = project_lock(project)
        membership = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(pk=membership_pk, project=project)
        )
        members_manage_check(actor, locked, membership.role)
        if membership.role == Role.PM:
            _keeps_a_pm(project, membership)
        membership.delete()
        audit_record(
            actor=actor,
            action=AuditAction.MEMBER_REMOVED,
            project=project,
            before={"user": membership.user.username, "role": membership.role},
        )
        _invitations_unbacked_revoke(actor=actor, project=locked, inviter=membership.user)
        member_removed.send(Membership, project=project, user=membership.user, actor=actor)
    return membership


# Why Kura withdrew an invitation itself: a code kept in the audit event's ``reason``, read
# in the reader's language on the trail (repository/governance/audit.py).
INVITER_MAY_NOT_INVITE = "inviter_may_not_invite"
WITHDRAWAL_REASONS = {
    INVITER_MAY_NOT_INVITE: gettext_lazy("the inviter may no longer invite to this role"),
}


def _invitations_unbacked_revoke(*, actor, project: Project, inviter: User) -> None:
    """Withdraw the pending invitations ``inviter`` made in ``project`` that they may no
    longer make (:func:`may_grant`, read after their removal or role change, in its
    transaction): a leaver's invitations die with their membership, a demoted member's
    above their new role. Each is audited ``invitation_revoked`` by ``actor``."""
    now = timezone.now()
    pending = Invitation.objects.select_for_update().filter(
        project=project,
        invited_by=inviter,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=now,
    )
    for invitation in pending.order_by("pk"):
        if may_grant(inviter, project, invitation.role):
            continue
        invitation_withdraw(
            invitation,
            actor=actor,
            project=project,
            when=now,
            invited_by=inviter.username,
            reason=INVITER_MAY_NOT_INVITE,
        )


def invitation_withdraw(invitation: Invitation, *, actor, project, when, **detail) -> None:
    """Mark ``invitation`` (of ``project``) revoked by ``actor`` and audit it (``detail``:
    more of why), in the caller's transaction, which holds the project's lock."""
    invitation.revoked_at = when
    invitation.revoked_by = actor
    invitation.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor,
        action=AuditAction.INVITATION_REVOKED,
        project=project,
        before={
            "invitation": invitation.pk,
            "kind": invitation.kind,
            "address": invitation.value,
            "role": invitation.role,
            **detail,
        },
    )


def user_by_handle(handle: str) -> User:
    """The active account named by ``handle``: with an ``@``, the one account with that
    e-mail address (else the account with that username); without, the username. Two or
    more accounts that answer to it are refused rather than guessed between (a username
    may look like someone else's e-mail address)."""
    handle = (handle or "").strip()
    active = User.objects.filter(is_active=True)
    if handle and "@" in handle:
        by_email = list(active.filter(email__iexact=handle).order_by("pk")[:2])
        by_username = active.filter(username=handle).first()
        if len(by_email) > 1 or (
            by_email and by_username is not None and by_username != by_email[0]
        ):
            raise ValidationError(
                {
                    "first_pm": _(
                        "Several accounts answer to this e-mail address; give the username "
                        "of the one you mean, or ask an administrator."
                    )
                }
            )
        if by_email:
            return by_email[0]
        if by_username is not None:
            return by_username
    elif handle:
        user = active.filter(username=handle).first()
        if user is not None:
            return user
    raise ValidationError({"first_pm": _("No account has this username or e-mail address.")})


PROJECT_FIELDS = (
    "institution",
    "name_ja",
    "name_en",
    "funder",
    "funding_stream_code",
    "program_name_ja",
    "program_name_en",
    "japan_grant_number",
    "research_field",
)


def project_create(*, actor, first_pm: User, institution: Institution, **fields) -> Project:
    """Create a project with ``first_pm`` as its PM (curators and staff:
    ``CREATE_PROJECT``). The fields are Project's (:data:`PROJECT_FIELDS`); every model
    check applies (a name, a unique Japan Grant Number, the vocabularies). Audits
    ``project_created``."""
    if not may(actor, ProjectAction.CREATE_PROJECT):
        raise PermissionDenied(_("You may not create projects."))
    unknown = set(fields) - set(PROJECT_FIELDS)
    if unknown:
        raise TypeError(f"not project fields: {sorted(unknown)}")
    if not (fields.get("name_ja") or "").strip() and not (fields.get("name_en") or "").strip():
        raise ValidationError({"name_en": _("Give the project a name in Japanese or English.")})
    grant_number = (fields.get("japan_grant_number") or "").strip()
    if grant_number and Project.objects.filter(japan_grant_number=grant_number).exists():
        raise ValidationError(
            {"japan_grant_number": _("Another project has this Japan Grant Number.")}
        )
    project = Project(institution=institution, **fields)
    project.full_clean()
    with transaction.atomic():
        try:
            with transaction.atomic():
                project.save()
        except IntegrityError as exc:  # the same grant number, created meanwhile
            raise ValidationError(
                {"japan_grant_number": _("Another project has this Japan Grant Number.")}
            ) from exc
        Membership.objects.create(project=project, user=first_pm, role=Role.PM)
        audit_record(
            actor=actor,
            action=AuditAction.PROJECT_CREATED,
            project=project,
            after={
                **{
                    name: str(getattr(project, name))
                    for name in PROJECT_FIELDS
                    if name != "institution"
                },
                "institution": institution.pk,
                "pm": first_pm.username,
            },
        )
    return project
