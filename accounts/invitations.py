"""Invitations to join a project: made by its PM or data managers (``member_invite``),
accepted once by signing in (``invitation_accept``), or withdrawn (``invitation_revoke``).

An invitation is addressed to an e-mail address, a GakuNin ePPN or an ORCID iD. For ePPN
and ORCID the person accepting must hold that identity (``identities_of``); for e-mail,
holding the link (mailed to that address) is the proof, and any signed-in account may
accept it — as GitHub's and GitLab's invitations work. Only the SHA-256 of the token is
kept; a token is used once, under a row lock. Who may invite is
:func:`accounts.members` ``members_manage_check`` (the ``ALLOWED`` table). An invitation
stands on its inviter: it is accepted only while they may still invite to its role
(``may_grant``; their removal or demotion revokes those they may no longer make), and
never by the inviter themselves.
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
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.audit import AuditAction, audit_record

from .identities import identities_of
from .members import (
    invitation_withdraw,
    may_grant,
    members_manage_check,
    project_lock,
    role_checked,
)
from .models import ExternalIdentity, Invitation, Membership, Project, Role, User

log = logging.getLogger("kura.members")

# Invitation e-mails hold both languages, Japanese first (as repository notices do).
MAIL_LANGUAGES = ("ja", "en")

_ORCID = re.compile(r"^(?:https?://(?:www\.)?orcid\.org/)?(\d{4}-\d{4}-\d{4}-\d{3}[\dX])$", re.I)


# --- Reads --------------------------------------------------------------------------------


def invitations_pending(*, project: Project | None = None, now=None) -> QuerySet[Invitation]:
    """Invitations neither accepted, revoked nor expired (of ``project``, if given)."""
    pending = Invitation.objects.filter(
        accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now or timezone.now()
    )
    if project is not None:
        pending = pending.filter(project=project)
    return pending.select_related("project", "invited_by")


def invitations_addressed_to(user: User) -> QuerySet[Invitation]:
    """Pending invitations addressed to ``user``: to an ePPN or ORCID iD linked to their
    account. Never e-mail invitations: an account's e-mail address is not proved (an IdP
    or the person may set any), and their link is what reaches the address's holder."""
    if not user.is_authenticated:
        return Invitation.objects.none()
    linked = identities_of(user)
    where = Q(kind=Invitation.Kind.EPPN, value__in=linked.get(ExternalIdentity.Provider.SAML, []))
    where |= Q(
        kind=Invitation.Kind.ORCID, value__in=linked.get(ExternalIdentity.Provider.ORCID, [])
    )
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


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def member_invite(
    *, actor, project: Project, kind: str, value: str, role: str
) -> tuple[Invitation, str]:
    """Invite the person at ``value`` (an e-mail address, ePPN or ORCID iD, by ``kind``)
    into ``project`` as ``role``; answers the invitation and its token (shown once, never
    stored). Refused for a current member and while an invitation to the same address is
    pending. An e-mail invitation is mailed once the transaction commits. Audits
    ``member_invited``."""
    role = role_checked(role)
    members_manage_check(actor, project, role)
    value = invitation_address_normalise(kind, value)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        members_manage_check(actor, project_lock(project), role)  # the role as of the lock
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
    ``revoked``, ``expired``, ``own``, ``inviter``, ``mismatch``, ``member``), or ``None``."""
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
    if user.is_authenticated and invitation.invited_by_id == user.pk:
        return ValidationError(
            _("You made this invitation yourself, so you cannot accept it."), code="own"
        )
    if not may_grant(invitation.invited_by, invitation.project, invitation.role):
        return ValidationError(
            _(
                "The person who made this invitation may no longer invite to this role. "
                "Ask the project's PM for a new one."
            ),
            code="inviter",
        )
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
        # The project first, as every membership change takes it: the inviter's role is
        # then the one that holds until this commits (and no lock-order deadlock).
        project = Invitation.objects.select_related("project").get(**lookup).project
        project = project_lock(project)
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("invited_by")
            .get(project=project, **lookup)
        )
        invitation.project = project
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
        locked = project_lock(project)
        invitation = Invitation.objects.select_for_update().get(pk=invitation_pk, project=project)
        members_manage_check(actor, locked, invitation.role)
        if invitation.state() != "pending":
            raise ValidationError(_("This invitation is no longer pending."))
        invitation_withdraw(invitation, actor=actor, project=project, when=timezone.now())
    return invitation
