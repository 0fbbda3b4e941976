"""Projects and their members, run by their PMs: create a project, invite, accept an
invitation, revoke it, change a member's role, remove a member.

Who may do which is :data:`accounts.roles.ALLOWED`: ``MANAGE_MEMBERS`` (PMs and data
managers) for everything below PM, ``MANAGE_PMS`` (PMs) as soon as a PM role is given,
taken or invited; ``CREATE_PROJECT`` (curators and staff) for new projects. Every service
checks that itself, changes what it changes under a row lock on the project (so that two
concurrent changes cannot both take away the last PM), and audits in its transaction.

Invitations are addressed to an e-mail address, a GakuNin ePPN or an ORCID iD. For ePPN
and ORCID the person accepting must hold that identity (``identities_of``); for e-mail,
holding the link (mailed to that address) is the proof, and any signed-in account may
accept it — as GitHub's and GitLab's invitations work. A token is used once.

A removed member loses access on their next request: every rule reads ``Membership``
afresh, and the project's generation moves (``MembershipQuerySet``). :data:`member_removed`
is sent in the removal's transaction; the repository listens and aborts the member's
unfinished uploads in the project once it commits (docs/architecture.md, "Members").
"""

import datetime
import hashlib
import logging
import re
import secrets
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.dispatch import Signal
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.audit import AuditAction, audit_record

from .identities import identities_of
from .models import ExternalIdentity, Institution, Invitation, Membership, Project, Role, User
from .roles import ProjectAction, may

log = logging.getLogger("kura.members")

# Sent in the transaction that removes a member: sender=Membership, project=, user=, actor=.
member_removed = Signal()

# Invitation e-mails hold both languages, Japanese first (as repository notices do).
MAIL_LANGUAGES = ("ja", "en")

_ORCID = re.compile(r"^(?:https?://(?:www\.)?orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$", re.I)


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


def invitations_pending(*, project: Project | None = None, now=None) -> QuerySet[Invitation]:
    """Invitations neither accepted, revoked nor expired (of ``project``, if given)."""
    pending = Invitation.objects.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now()
    )
    if project is not None:
        pending = pending.filter(project=project)
    return pending.select_related("project", "invited_by")


def invitations_addressed_to(user: User) -> QuerySet[Invitation]:
    """Pending invitations addressed to ``user``: to their e-mail address, or to an ePPN or
    ORCID iD linked to their account."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    linked = identities_of(user)
    where = Q(kind=Invitation.Kind.EPPN, value__in=linked.get(ExternalIdentity.Provider.SAML, []))
    where |= Q(
        kind=Invitation.Kind.ORCID, value__in=linked.get(ExternalIdentity.Provider.ORCID, [])
    )
    if user.email:
        where |= Q(kind=Invitation.Kind.EMAIL, value__iexact=user.email)
    return invitations_pending().filter(where).order_by("expires_at", "pk")


def invitation_by_token(token: str) -> Invitation | None:
    """The invitation whose link holds ``token``, in any state, or ``None``."""
    if not token or len(token) > 200:
        return None
    return (
        Invitation.objects.select_related("project__institution", "invited_by", "accepted_by")
        .filter(token_hash=_hash(token))
        .first()
    )


def invitation_url(token: str) -> str:
    """The absolute link of an invitation (``KURA_BASE_URL``)."""
    return urljoin(settings.KURA_BASE_URL, reverse("invitation", args=[token]))


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


# --- Address normalisation ----------------------------------------------------------------


def orcid_normalise(value: str) -> str | None:
    """The bare ORCID iD in ``value`` (an iD or its https://orcid.org/ URL) when its
    check digit (ISO 7064 MOD 11-2) is right, else ``None``."""
    match = _ORCID.match((value or "").strip())
    if match is None:
        return None
    orcid = match.group(1).upper()
    digits = orcid.replace("-", "")
    total = 0
    for digit in digits[:-1]:
        total = (total + int(digit)) * 2
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    return orcid if digits[-1] == expected else None


def invitation_address_normalise(kind: str, value: str) -> str:
    """``value`` as stored for ``kind``, or a ``ValidationError`` on ``value``."""
    value = (value or "").strip()
    if kind == Invitation.Kind.EMAIL:
        try:
            validate_email(value)
        except ValidationError as exc:
            raise ValidationError({"value": _("Enter a valid e-mail address.")}) from exc
        return value
    if kind == Invitation.Kind.EPPN:
        local, at, scope = value.partition("@")
        if not (local and at and scope and "." in scope) or " " in value or len(value) > 255:
            raise ValidationError(
                {"value": _("An ePPN looks like an e-mail address: user@example.ac.jp.")}
            )
        return value
    if kind == Invitation.Kind.ORCID:
        orcid = orcid_normalise(value)
        if orcid is None:
            raise ValidationError(
                {"value": _("Enter a valid ORCID iD, such as 0000-0002-1825-0097.")}
            )
        return orcid
    raise ValidationError({"kind": _("Choose how the person is addressed.")})


def _member_by_address(project: Project, kind: str, value: str) -> Membership | None:
    members = Membership.objects.filter(project=project).select_related("user")
    if kind == Invitation.Kind.EMAIL:
        return members.filter(user__email__iexact=value).first()
    provider = (
        ExternalIdentity.Provider.SAML
        if kind == Invitation.Kind.EPPN
        else ExternalIdentity.Provider.ORCID
    )
    return members.filter(
        user__identities__provider=provider, user__identities__subject=value
    ).first()


# --- Writes -------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _project_locked(project: Project) -> Project:
    """``project``'s row, locked: every membership change of one project is serialised."""
    return Project.objects.select_for_update().get(pk=project.pk)


def _require(actor, project: Project, *roles: str) -> None:
    if not may(actor, ProjectAction.MANAGE_MEMBERS, project):
        raise PermissionDenied(_("You may not change this project's members."))
    if Role.PM in roles and not may(actor, ProjectAction.MANAGE_PMS, project):
        raise PermissionDenied(_("Only a PM may make, invite, change or remove a PM."))


def _role_checked(role: str) -> str:
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


def member_invite(
    *, actor, project: Project, kind: str, value: str, role: str
) -> tuple[Invitation, str]:
    """Invite the person at ``value`` (an e-mail address, ePPN or ORCID iD, by ``kind``)
    into ``project`` as ``role``; answers the invitation and its token (shown once, never
    stored). Refused for a current member and while an invitation to the same address is
    pending. An e-mail invitation is mailed once the transaction commits. Audits
    ``member_invited``."""
    role = _role_checked(role)
    _require(actor, project, role)
    value = invitation_address_normalise(kind, value)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        _project_locked(project)
        member = _member_by_address(project, kind, value)
        if member is not None:
            raise ValidationError(
                {
                    "value": _("%(name)s is already a member of this project.")
                    % {"name": member.user.display_name}
                }
            )
        if invitations_pending(project=project).filter(kind=kind, value__iexact=value).exists():
            raise ValidationError(
                {"value": _("An invitation to this address is pending; revoke it to send another.")}
            )
        invitation = Invitation.objects.create(
            project=project,
            role=role,
            kind=kind,
            value=value,
            token_hash=_hash(token),
            invited_by=actor,
            expires_at=timezone.now() + datetime.timedelta(days=settings.KURA_INVITATION_DAYS),
        )
        audit_record(
            actor=actor,
            action=AuditAction.MEMBER_INVITED,
            project=project,
            after={"invitation": invitation.pk, "kind": kind, "address": value, "role": role},
        )
        if kind == Invitation.Kind.EMAIL:
            transaction.on_commit(
                lambda: invitation_mail_send(invitation=invitation, token=token), robust=True
            )
    return invitation, token


def invitation_mail_send(*, invitation: Invitation, token: str) -> bool:
    """Mail the invitation's link to its address, in Japanese and English; a failing mail
    server is logged (the inviter was shown the link and may pass it on)."""
    context = {
        "project": invitation.project,
        "inviter": invitation.invited_by.display_name,
        "url": invitation_url(token),
        "expires_at": invitation.expires_at,
    }
    subjects, bodies = [], []
    for language in MAIL_LANGUAGES:
        with translation.override(language):
            context["role"] = str(Role(invitation.role).label)
            context["project_name"] = invitation.project.name
            subject = render_to_string("email/invitation/subject.txt", context)
            subjects.append(" ".join(subject.split()))
            bodies.append(render_to_string("email/invitation/body.txt", context).strip())
    try:
        send_mail(
            "[Kura] " + " / ".join(subjects), "\n\n-----\n\n".join(bodies), None, [invitation.value]
        )
    except Exception:  # noqa: BLE001 - the inviter holds the link; the invitation stands
        log.exception("invitation %s was not mailed", invitation.pk)
        return False
    return True


def invitation_refusal(invitation: Invitation, user) -> ValidationError | None:
    """Why ``user`` may not accept ``invitation`` now (its ``code``: ``accepted``,
    ``revoked``, ``expired``, ``mismatch``, ``member``), or ``None``."""
    state = invitation.state()
    if state == "accepted":
        return ValidationError(_("This invitation has already been used."), code="accepted")
    if state == "revoked":
        return ValidationError(_("This invitation was withdrawn by the project."), code="revoked")
    if state == "expired":
        return ValidationError(
            _("This invitation has expired. Ask the project's PM for a new one."), code="expired"
        )
    if invitation.kind != Invitation.Kind.EMAIL:
        provider = (
            ExternalIdentity.Provider.SAML
            if invitation.kind == Invitation.Kind.EPPN
            else ExternalIdentity.Provider.ORCID
        )
        if invitation.value not in identities_of(user).get(provider, []):
            return ValidationError(
                _(
                    "This invitation is addressed to %(kind)s %(value)s. Sign in with it "
                    "(or link it to your account) to accept."
                )
                % {"kind": invitation.get_kind_display(), "value": invitation.value},
                code="mismatch",
            )
    if Membership.objects.filter(project_id=invitation.project_id, user=user).exists():
        return ValidationError(_("You are already a member of this project."), code="member")
    return None


def invitation_accept(*, actor, token: str) -> Membership:
    """Make ``actor`` a member of the invitation's project in its role, once: under a lock
    on the invitation, it must be pending and addressed to ``actor`` (see the module);
    else a ``ValidationError`` whose code says why, and nothing changes. An unknown token
    answers ``Invitation.DoesNotExist``. Audits ``invitation_accepted``."""
    return _accept(actor, token_hash=_hash(token or ""))


def invitation_accept_addressed(*, actor, invitation_pk: int) -> Membership:
    """Accept, without its link, an invitation to an ePPN or ORCID iD linked to ``actor``'s
    account (My page): the identity is the proof. An e-mail invitation needs its link
    (:func:`invitation_accept`), and answers ``Invitation.DoesNotExist`` here, as does one
    addressed to someone else."""
    return _accept(actor, pk=invitation_pk, kind__in=[Invitation.Kind.EPPN, Invitation.Kind.ORCID])


def _accept(actor, **lookup) -> Membership:
    if not actor.is_authenticated:
        raise PermissionDenied(_("Sign in to accept the invitation."))
    with transaction.atomic():
        invitation = Invitation.objects.select_for_update().select_related("project").get(**lookup)
        refusal = invitation_refusal(invitation, actor)
        if refusal is not None:
            if refusal.code == "mismatch" and "pk" in lookup:
                raise Invitation.DoesNotExist  # not theirs: as if it did not exist
            raise refusal
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    project=invitation.project, user=actor, role=invitation.role
                )
        except IntegrityError as exc:  # joined by another way meanwhile
            raise ValidationError(
                _("You are already a member of this project."), code="member"
            ) from exc
        invitation.accepted_by = actor
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_by", "accepted_at"])
        audit_record(
            actor=actor,
            action=AuditAction.INVITATION_ACCEPTED,
            project=invitation.project,
            after={
                "invitation": invitation.pk,
                "user": actor.username,
                "role": invitation.role,
                "kind": invitation.kind,
                "address": invitation.value,
            },
        )
    return membership


def invitation_revoke(*, actor, project: Project, invitation_pk: int) -> Invitation:
    """Withdraw a pending invitation of ``project`` (PM invitations: PMs only). A missing
    one answers ``Invitation.DoesNotExist``; one no longer pending a ``ValidationError``.
    Audits ``invitation_revoked``."""
    with transaction.atomic():
        _project_locked(project)
        invitation = Invitation.objects.select_for_update().get(pk=invitation_pk, project=project)
        _require(actor, project, invitation.role)
        if invitation.state() != "pending":
            raise ValidationError(_("This invitation is no longer pending."))
        invitation.revoked_at = timezone.now()
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
            },
        )
    return invitation


def member_role_change(*, actor, project: Project, membership_pk: int, role: str) -> Membership:
    """Give the member ``membership_pk`` of ``project`` the role ``role``. Making or
    unmaking a PM needs ``MANAGE_PMS``; the last PM stays PM. Audits
    ``member_role_changed``; the new role rules from the next request."""
    role = _role_checked(role)
    with transaction.atomic():
        _project_locked(project)
        membership = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(pk=membership_pk, project=project)
        )
        _require(actor, project, membership.role, role)
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
    return membership


def member_remove(*, actor, project: Project, membership_pk: int) -> Membership:
    """Take the member ``membership_pk`` out of ``project`` (a PM: ``MANAGE_PMS``; never the
    last PM). Their access ends with the transaction; :data:`member_removed` lets the
    repository abort their unfinished uploads in the project. Audits ``member_removed``."""
    with transaction.atomic():
        _project_locked(project)
        membership = (
            Membership.objects.select_for_update()
            .select_related("user")
            .get(pk=membership_pk, project=project)
        )
        _require(actor, project, membership.role)
        if membership.role == Role.PM:
            _keeps_a_pm(project, membership)
        membership.delete()
        audit_record(
            actor=actor,
            action=AuditAction.MEMBER_REMOVED,
            project=project,
            before={"user": membership.user.username, "role": membership.role},
        )
        member_removed.send(Membership, project=project, user=membership.user, actor=actor)
    return membership


def user_by_handle(handle: str) -> User:
    """The active account named by ``handle``: a username, else a unique e-mail address."""
    handle = (handle or "").strip()
    if handle:
        user = User.objects.filter(username=handle, is_active=True).first()
        if user is not None:
            return user
        by_email = list(User.objects.filter(email__iexact=handle, is_active=True)[:2])
        if len(by_email) == 1:
            return by_email[0]
        if len(by_email) > 1:
            raise ValidationError(
                {"first_pm": _("Several accounts have this e-mail address; give the username.")}
            )
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
