"""Signing in with an external identity (GakuNin/SAML, ORCID) and linking it to an account.

Every sign-in method that proves who a person is ends here: the provider's adapter
(``djangosaml2``'s backend, the ORCID OpenID Connect backend) hands over the provider, the
stable subject it asserted and the issuer, and :func:`identity_user` answers the account
that holds it. A new subject makes a new account only where the adapter asks for it (just
in time); linking a subject to an existing account needs the person to be signed in to
that account first (:func:`identity_link`). See docs/architecture.md, "Sign-in".
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ExternalIdentity, User

log = logging.getLogger("kura.security")


class IdentityIssuerChanged(ValidationError):
    """The subject is held, but was linked through another issuer than the one asserting it
    now (an IdP of the federation asserting another's subject, or an institution's IdP
    that changed its entityID: an administrator unlinks the old identity)."""


def identity_user(provider: str, subject: str, *, issuer: str | None = None) -> User | None:
    """The account that holds ``subject`` of ``provider``, or ``None``; marks it used.

    With ``issuer``, the identity must have been linked through that issuer
    (:class:`IdentityIssuerChanged` otherwise).
    """
    identity = (
        ExternalIdentity.objects.select_related("user")
        .filter(provider=provider, subject=subject)
        .first()
    )
    if identity is None:
        return None
    if issuer is not None and identity.issuer != issuer:
        raise IdentityIssuerChanged(
            _("This identity was linked through another sign-in service than this one.")
        )
    ExternalIdentity.objects.filter(pk=identity.pk).update(last_used_at=timezone.now())
    return identity.user


def identity_link(*, user: User, provider: str, subject: str, issuer: str = "") -> ExternalIdentity:
    """Link ``subject`` of ``provider`` to ``user`` (who is signed in, or just created).

    Linking the same subject again is a no-op; a subject another account holds is refused
    with a ``ValidationError`` (one person, one account: the other account must unlink it).
    """
    if not subject:
        raise ValidationError(_("The sign-in service sent no identifier."))
    try:
        with transaction.atomic():
            identity, created = ExternalIdentity.objects.get_or_create(
                provider=provider,
                subject=subject,
                defaults={"user": user, "issuer": issuer, "last_used_at": timezone.now()},
            )
    except IntegrityError:  # a concurrent link of the same subject won
        identity, created = ExternalIdentity.objects.get(provider=provider, subject=subject), False
    if identity.user_id != user.pk:
        raise ValidationError(_("This identity is already linked to another Kura account."))
    if created:
        log.info(  # not a project event: the security log is its record (architecture.md)
            "identity linked: user=%s provider=%s subject=%r issuer=%r",
            user.pk,
            provider,
            subject,
            issuer,
        )
    return identity


def identities_of(user: User) -> dict[str, list[str]]:
    """The subjects linked to ``user``, by provider."""
    linked: dict[str, list[str]] = {}
    for provider, subject in ExternalIdentity.objects.filter(user=user).values_list(
        "provider", "subject"
    ):
        linked.setdefault(provider, []).append(subject)
    return linked
