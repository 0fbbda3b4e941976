"""From a verified GakuNin assertion to a Kura account (djangosaml2's backend, Kura's rules).

djangosaml2 has checked the response (signature against the IdP's key in the federation
metadata, audience, lifetime, that it answers an AuthnRequest of this browser) before
:class:`KuraSaml2Backend` sees it. The backend then:

- refuses an assertion whose ID it has seen before (a replay within its lifetime), as a
  second line behind djangosaml2's outstanding-request check;
- takes ``eduPersonPrincipalName`` as the person's stable key (``ExternalIdentity``,
  provider ``saml``, issuer the IdP's entityID) — without it the sign-in is refused, and
  so is one malformed or outside the IdP's ``shibmd:Scope`` in the federation metadata;
- links it to the account being linked (the person signed in first), or finds the account
  that holds it — linked through the same IdP — or creates one (just in time,
  ``KURA_SAML_CREATE_ACCOUNTS``);
- brings the account's mail, names and institution up to date on every sign-in.

The ACS view (``views.py``) calls the backend itself rather than through Django's
``authenticate``, which would report every refusal as a failed password to django-axes
(locking the address out) and hide the reason; a refusal is kept on the request
(``request.kura_saml_refusal``) for the view's page that says what went wrong. The backend
stays in ``AUTHENTICATION_BACKENDS`` for the sessions it signs in.
"""

import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from djangosaml2.backends import Saml2Backend

from accounts.identities import IdentityIssuerChanged, identity_link, identity_user
from accounts.models import ExternalIdentity, Institution, User

from .attributes import EPPN

log = logging.getLogger("kura.security")

PROVIDER = ExternalIdentity.Provider.SAML
# The longest an assertion ID is remembered against replays when it names no expiry.
REPLAY_WINDOW_SECONDS = 60 * 60


class SamlRefusal(PermissionDenied):
    """A sign-in that Kura refuses, with the reason the page shows (``code``)."""

    MISSING_EPPN = "missing_eppn"
    IDENTITY_TAKEN = "identity_taken"
    NO_ACCOUNT = "no_account"
    INACTIVE = "inactive"
    REPLAYED = "replayed"
    BAD_EPPN = "bad_eppn"
    OUT_OF_SCOPE = "out_of_scope"
    ISSUER_CHANGED = "issuer_changed"

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class SamlPerson:
    """What one assertion says about a person."""

    issuer: str
    eppn: str
    mail: str = ""
    name_en: str = ""
    name_ja: str = ""
    organization_name: str = ""
    affiliations: list[str] = field(default_factory=list)

    @property
    def scopes(self) -> set[str]:
        """The security domains of the ePPN and the scoped affiliations (``…@scope``)."""
        values = [self.eppn, *self.affiliations]
        return {v.rpartition("@")[2].lower() for v in values if "@" in v}


# ExternalIdentity.subject holds at most this many characters.
EPPN_MAX_LENGTH = 255


def _scope_allowed(scope: str, idp_scopes: list[dict]) -> bool:
    """Whether ``scope`` is one of the IdP's ``shibmd:Scope`` entries (pysaml2's
    ``shibmd_scopes``: literal text, or a compiled pattern where ``regexp="true"``)."""
    for entry in idp_scopes:
        if entry["regexp"]:
            if entry["text"].fullmatch(scope):
                return True
        elif entry["text"].strip().lower() == scope.lower():
            return True
    return False


def eppn_check(eppn: str, idp_scopes: list[dict]) -> None:
    """Refuse an ePPN that is malformed (not ``local@scope``, or too long to keep) or whose
    scope the asserting IdP may not assert (its ``shibmd:Scope`` in the federation
    metadata, as Shibboleth SP's scoped attribute decoder checks)."""
    local, at, scope = eppn.rpartition("@")
    if (
        len(eppn) > EPPN_MAX_LENGTH
        or not at
        or not local
        or not scope
        or "@" in local
        or any(c.isspace() for c in eppn)
    ):
        raise SamlRefusal(
            SamlRefusal.BAD_EPPN,
            _("Your institution sent an eduPersonPrincipalName Kura cannot use."),
        )
    if not _scope_allowed(scope, idp_scopes):
        log.warning("SAML ePPN out of the IdP's scope: eppn=%s", eppn)
        raise SamlRefusal(
            SamlRefusal.OUT_OF_SCOPE,
            _(
                "Your institution's sign-in service (IdP) is not allowed to assert an "
                "eduPersonPrincipalName in the domain “%(scope)s”."
            )
            % {"scope": scope},
        )


def _first(ava: dict, name: str) -> str:
    for value in ava.get(name) or []:
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def saml_person(issuer: str, ava: dict, idp_scopes: list[dict] | None = None) -> SamlPerson:
    """The person an assertion's attributes (pysaml2's ``ava``) describe.

    With ``idp_scopes`` (the issuer's ``shibmd:Scope`` entries) a scoped affiliation in a
    scope the IdP may not assert is dropped, as Shibboleth SP drops it.
    """
    affiliations = [v for v in ava.get("eduPersonScopedAffiliation") or [] if isinstance(v, str)]
    if idp_scopes is not None:
        affiliations = [
            v for v in affiliations if "@" in v and _scope_allowed(v.rpartition("@")[2], idp_scopes)
        ]
    return SamlPerson(
        issuer=issuer,
        eppn=_first(ava, EPPN),
        mail=_first(ava, "mail")[:254],
        name_en=_first(ava, "displayName")[:200],
        name_ja=_first(ava, "jaDisplayName")[:200],
        organization_name=(_first(ava, "o") or _first(ava, "jao"))[:255],
        affiliations=affiliations,
    )


def institution_of(person: SamlPerson) -> Institution | None:
    """The institution whose IdP asserted ``person``; else the one whose SAML scopes hold the
    person's ePPN or affiliation scope."""
    by_idp = Institution.objects.filter(idp_entity_id=person.issuer).order_by("pk").first()
    if by_idp is not None:
        return by_idp
    scopes = person.scopes
    if not scopes:
        return None
    for institution in Institution.objects.exclude(saml_scopes="").order_by("pk"):
        if scopes & {s.lower() for s in institution.saml_scopes.split()}:
            return institution
    return None


def _username_base(eppn: str) -> str:
    """A username Django accepts, from the ePPN (letters, digits and @.+-_ only)."""
    base = re.sub(r"[^\w.@+-]", "_", eppn)[:140]
    return base or "gakunin"


def _user_create(person: SamlPerson) -> User:
    base = _username_base(person.eppn)
    for attempt in range(1, 1000):
        username = base if attempt == 1 else f"{base}-{attempt}"
        if User.objects.filter(username__iexact=username).exists():
            continue
        try:
            with transaction.atomic():
                user = User(username=username)
                user.set_unusable_password()
                user.save()
                return user
        except IntegrityError:  # taken meanwhile
            continue
    raise SamlRefusal(SamlRefusal.NO_ACCOUNT, _("No username could be found for this account."))


def _user_update(user: User, person: SamlPerson) -> None:
    """Mail, names and institution as the IdP asserts them now (empty values keep ours)."""
    values = {
        "email": person.mail,
        "name_en": person.name_en,
        "name_ja": person.name_ja,
        "organization_name": person.organization_name,
    }
    changed = [name for name, value in values.items() if value and getattr(user, name) != value]
    for name in changed:
        setattr(user, name, values[name])
    institution = institution_of(person)
    if institution is not None and user.institution_id != institution.pk:
        user.institution = institution
        changed.append("institution")
    if changed:
        user.save(update_fields=changed)


def _issuer_changed(person: SamlPerson) -> SamlRefusal:
    log.warning(
        "GakuNin sign-in refused: eppn=%s asserted by another IdP %s", person.eppn, person.issuer
    )
    return SamlRefusal(
        SamlRefusal.ISSUER_CHANGED,
        _(
            "This GakuNin identity was linked through another sign-in service (IdP) than "
            "the one that sent it now. If your institution changed its IdP, ask the "
            "repository's administrator to unlink the old identity, then sign in to your "
            "account and link GakuNin again."
        ),
    )


def saml_sign_in(*, person: SamlPerson, link_user: User | None = None) -> User:
    """The account ``person`` signs in to, linking, finding or creating it.

    ``person`` was checked by :func:`saml_person_verified`. ``link_user`` is the account
    the person is signed in to already: the ePPN is linked to it (refused if another
    account holds it). Otherwise the account holding the ePPN, linked through the same IdP
    (``issuer``), or a new one (just in time) unless ``KURA_SAML_CREATE_ACCOUNTS`` is off.
    """
    if not person.eppn:
        raise SamlRefusal(
            SamlRefusal.MISSING_EPPN,
            _("Your institution did not send your eduPersonPrincipalName."),
        )
    with transaction.atomic():
        if link_user is not None:
            try:
                identity = identity_link(
                    user=link_user, provider=PROVIDER, subject=person.eppn, issuer=person.issuer
                )
            except ValidationError as exc:
                log.warning(
                    "GakuNin link refused: user=%s eppn=%s held by another account",
                    link_user.pk,
                    person.eppn,
                )
                raise SamlRefusal(SamlRefusal.IDENTITY_TAKEN, exc.messages[0]) from exc
            if identity.issuer != person.issuer:
                raise _issuer_changed(person)
            user = link_user
        else:
            try:
                user = identity_user(PROVIDER, person.eppn, issuer=person.issuer)
            except IdentityIssuerChanged as exc:
                raise _issuer_changed(person) from exc
            if user is None:
                if not settings.KURA_SAML_CREATE_ACCOUNTS:
                    raise SamlRefusal(
                        SamlRefusal.NO_ACCOUNT,
                        _("This GakuNin identity is not linked to a Kura account."),
                    )
                user = _user_create(person)
                identity_link(
                    user=user, provider=PROVIDER, subject=person.eppn, issuer=person.issuer
                )
                log.info("account created from GakuNin: user=%s issuer=%s", user.pk, person.issuer)
        _user_update(user, person)
    if not user.is_active:
        raise SamlRefusal(SamlRefusal.INACTIVE, _("This Kura account is disabled."))
    return user


def saml_person_verified(
    *, issuer: str, ava: dict, assertion_info: dict | None, idp_scopes: list[dict]
) -> SamlPerson:
    """The person a verified assertion describes, refused (:class:`SamlRefusal`) if the
    assertion was seen before, has no ePPN, or an ePPN malformed or out of the IdP's scope."""
    if not assertion_first_use(issuer, assertion_info):
        log.warning("SAML assertion replayed: issuer=%s", issuer)
        raise SamlRefusal(SamlRefusal.REPLAYED, _("This sign-in response was used already."))
    person = saml_person(issuer, ava, idp_scopes)
    if not person.eppn:
        raise SamlRefusal(
            SamlRefusal.MISSING_EPPN,
            _("Your institution did not send your eduPersonPrincipalName."),
        )
    eppn_check(person.eppn, idp_scopes)
    return person


def assertion_first_use(issuer: str, assertion_info: dict | None) -> bool:
    """Remember an assertion's ID until it expires; False if it was seen already."""
    assertion_id = (assertion_info or {}).get("assertion_id")
    if not assertion_id:
        return True
    timeout = REPLAY_WINDOW_SECONDS
    not_on_or_after = (assertion_info or {}).get("not_on_or_after")
    if not_on_or_after:
        try:
            expiry = datetime.fromisoformat(not_on_or_after.replace("Z", "+00:00"))
            timeout = max(1, int((expiry - datetime.now(UTC)).total_seconds()) + 60)
        except ValueError:
            pass
    return cache.add(f"kura:saml-assertion:{issuer}:{assertion_id}", 1, timeout)


class KuraSaml2Backend(Saml2Backend):
    """djangosaml2's backend, deciding the account with :func:`saml_sign_in`.

    ``idp_scopes`` are the issuer's ``shibmd:Scope`` entries from the federation metadata
    (the ACS view reads them); without them no ePPN is accepted.
    """

    def authenticate(
        self,
        request,
        session_info=None,
        attribute_mapping=None,
        create_unknown_user=True,
        assertion_info=None,
        idp_scopes=None,
        **kwargs,
    ):
        if request is None or not session_info or "ava" not in session_info:
            return None
        try:
            person = saml_person_verified(
                issuer=session_info.get("issuer") or "",
                ava=session_info["ava"],
                assertion_info=assertion_info,
                idp_scopes=list(idp_scopes or []),
            )
            return saml_sign_in(person=person)
        except SamlRefusal as refusal:
            request.kura_saml_refusal = refusal
            return None
