"""Signing in with ORCID (OpenID Connect), through ``mozilla-django-oidc``.

Everything ORCID-specific lives here, so that another OpenID provider can be added beside
it later: the iD's syntax, the claims ORCID sends, the checks ``mozilla-django-oidc``
leaves to its users (audience, issuer, that the ID token and userinfo name one person),
and the decision what a sign-in does:

- the ORCID iD is the ``sub`` claim of the ID token; the account that holds it as an
  :class:`~accounts.models.ExternalIdentity` (provider ``orcid``) is signed in;
- a person who started the flow from their signed-in account ("link my ORCID iD",
  :func:`orcid_link_start`) within :data:`LINK_MAX_AGE_SECONDS` gets the iD linked to
  that account;
- otherwise, with ``KURA_ORCID_CREATE_ACCOUNTS`` on, a new account is made just in time,
  named from the ``given_name``/``family_name`` claims;
- an iD another account holds is refused (:class:`OrcidSignInRefused`).

Every successful sign-in or link sets ``User.orcid`` to the iD and ``orcid_verified``: a
verified iD is read-only and flows into the creators of the person's records (see
docs/architecture.md, "Sign-in").
"""

import logging
import re
import time

import jwt
import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from accounts.identities import identity_link, identity_user
from accounts.models import ExternalIdentity, User

log = logging.getLogger("kura.security")

PROVIDER = ExternalIdentity.Provider.ORCID
# Set by the "link my ORCID iD" view to the signed-in account's id and the time, read (and
# removed) by the callback: only a flow the account holder started, a short while ago,
# links an iD to their account. Logging out removes it with the rest of the session.
LINK_SESSION_KEY = "kura_orcid_link_user"
LINK_MAX_AGE_SECONDS = 600

ORCID_ID_RE = re.compile(r"^[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X]$")

# Sent with the verified iD after it was stored on ``user`` (sender: User): other layers
# that copy the iD (dmp's record creators) listen instead of being imported here.
orcid_verified = Signal()


class OrcidSignInRefused(Exception):
    """A sign-in the person must be told about: the message says why, in their language."""

    def __init__(self, message: str, *, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status


def orcid_enabled() -> bool:
    return bool(settings.KURA_ORCID_CLIENT_ID)


def orcid_id_valid(value: str) -> bool:
    """``value`` is an ORCID iD (``0000-0002-1825-0097``) with a good ISO 7064 11,2 check
    digit."""
    if not ORCID_ID_RE.match(value or ""):
        return False
    digits = value.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    return digits[-1] == ("X" if check == 10 else str(check))


def orcid_url(orcid_id: str) -> str:
    """The iD as the URI ORCID asks everyone to show and export."""
    return f"https://orcid.org/{orcid_id}"


def orcid_link_start(*, session, user: User) -> None:
    """Remember in ``session`` that signed-in ``user`` asked to link an iD, for
    :data:`LINK_MAX_AGE_SECONDS`: the next ORCID answer links instead of signing in."""
    session[LINK_SESSION_KEY] = {"user": user.pk, "at": int(time.time())}


def _names(claims: dict) -> tuple[str, str]:
    given = (claims.get("given_name") or "").strip()
    family = (claims.get("family_name") or "").strip()
    return given[:150], family[:150]


def _username_for(orcid_id: str) -> str:
    base = f"orcid-{orcid_id}"
    if not User.objects.filter(username=base).exists():
        return base
    return f"{base}-{get_random_string(6).lower()}"  # a local account took the name first


def user_orcid_verify(*, user: User, orcid_id: str) -> None:
    """Record on ``user`` that they proved ``orcid_id`` by signing in with ORCID."""
    if user.orcid != orcid_id or not user.orcid_verified:
        User.objects.filter(pk=user.pk).update(orcid=orcid_id, orcid_verified=True)
        user.orcid, user.orcid_verified = orcid_id, True
        log.info("ORCID iD verified: user=%s orcid=%s", user.pk, orcid_id)
    orcid_verified.send(sender=User, user=user, orcid_id=orcid_id)


def orcid_sign_in(*, orcid_id: str, issuer: str, claims: dict, link_to: User | None) -> User:
    """The account ORCID iD ``orcid_id`` signs in to (linked to ``link_to`` if given, else
    found, else created just in time); refuses with :class:`OrcidSignInRefused`."""
    if not orcid_id_valid(orcid_id):
        raise OrcidSignInRefused(_("ORCID sent no valid ORCID iD."), status=400)
    with transaction.atomic():
        holder = identity_user(PROVIDER, orcid_id)
        if link_to is not None:
            if holder is not None and holder.pk != link_to.pk:
                log.warning(
                    "ORCID link refused: user=%s orcid=%s issuer=%r is held by user=%s",
                    link_to.pk,
                    orcid_id,
                    issuer,
                    holder.pk,
                )
                raise OrcidSignInRefused(
                    _(
                        "The ORCID iD %(orcid)s is already linked to another Kura account. "
                        "Sign in with ORCID to reach that account, or ask an administrator "
                        "to unlink it."
                    )
                    % {"orcid": orcid_id}
                )
            if link_to.orcid_verified and link_to.orcid != orcid_id:
                raise OrcidSignInRefused(
                    _(
                        "Your account already has the verified ORCID iD %(orcid)s; it cannot "
                        "hold a second one."
                    )
                    % {"orcid": link_to.orcid}
                )
            _verified_elsewhere_check(orcid_id, link_to)
            _identity_link(link_to, orcid_id, issuer)
            user = link_to
        elif holder is not None:
            user = holder
        else:
            if not settings.KURA_ORCID_CREATE_ACCOUNTS:
                raise OrcidSignInRefused(
                    _(
                        "No Kura account is linked to the ORCID iD %(orcid)s. Sign in the way "
                        "you usually do, then link your ORCID iD from your account."
                    )
                    % {"orcid": orcid_id}
                )
            _verified_elsewhere_check(orcid_id, None)
            given, family = _names(claims)
            user = User.objects.create_user(
                _username_for(orcid_id),
                first_name=given,
                last_name=family,
                name_en=" ".join(part for part in (given, family) if part)[:200],
            )
            _identity_link(user, orcid_id, issuer)
            log.info(
                "account created just in time: user=%s provider=orcid subject=%s issuer=%r",
                user.pk,
                orcid_id,
                issuer,
            )
        user_orcid_verify(user=user, orcid_id=orcid_id)
    return user


def _identity_link(user: User, orcid_id: str, issuer: str) -> None:
    try:
        identity_link(user=user, provider=PROVIDER, subject=orcid_id, issuer=issuer)
    except ValidationError as exc:  # another account linked it a moment ago
        raise OrcidSignInRefused(" ".join(exc.messages)) from exc


def _verified_elsewhere_check(orcid_id: str, user: User | None) -> None:
    """An iD another account holds as verified (set before identities existed, or by an
    administrator) is theirs: refused like an identity another account holds."""
    others = User.objects.filter(orcid=orcid_id, orcid_verified=True)
    if user is not None:
        others = others.exclude(pk=user.pk)
    if others.exists():
        raise OrcidSignInRefused(
            _("The ORCID iD %(orcid)s is already verified on another Kura account.")
            % {"orcid": orcid_id}
        )


class OrcidBackend(OIDCAuthenticationBackend):
    """``mozilla-django-oidc``'s backend with ORCID's rules.

    The library checks the signature (RS256, the provider's JWKS), the nonce and the
    expiry; it does not check the audience or the issuer, which this class does, and it
    matches people by e-mail, which ORCID does not release by default: the iD (``sub``)
    is the key here.
    """

    def authenticate(self, request, **kwargs):
        # Only the callback view passes a nonce: a password sign-in is none of ours.
        if request is None or "nonce" not in kwargs or not orcid_enabled():
            return None
        try:
            return super().authenticate(request, **kwargs)
        except requests.HTTPError as exc:
            if exc.response is None or exc.response.status_code >= 500:
                raise self._unavailable(exc) from exc
            # ORCID refused the code (another client's, used, expired): not our outage.
            log.warning("ORCID sign-in refused by the provider: %s", exc)
            raise OrcidSignInRefused(
                _("The answer from ORCID could not be verified; nobody was signed in."),
                status=400,
            ) from exc
        except requests.RequestException as exc:
            raise self._unavailable(exc) from exc
        except (SuspiciousOperation, jwt.PyJWTError) as exc:
            # PyJWT's errors (a malformed token, an unusable key) are not SuspiciousOperation
            # and the library lets them through: each is a refusal, never a 500.
            log.warning("ORCID sign-in refused: %s", exc)
            raise OrcidSignInRefused(
                _("The answer from ORCID could not be verified; nobody was signed in."),
                status=400,
            ) from exc

    @staticmethod
    def _unavailable(exc: Exception) -> OrcidSignInRefused:
        log.warning("ORCID sign-in failed talking to the provider: %s", exc)
        return OrcidSignInRefused(
            _("ORCID did not confirm the sign-in (it may be unavailable). Try again."),
            status=502,
        )

    def _verify_jws(self, payload, key):
        """The signature and the time claims, as the library checks them but with
        ``KURA_ORCID_LEEWAY_SECONDS`` of slack for clocks that differ (an ``iat`` a few
        seconds ahead is not an attack), and every PyJWT refusal (expired, not yet valid,
        bad signature) a :class:`SuspiciousOperation` the sign-in turns into a 400 page."""
        header = jwt.get_unverified_header(payload)
        if header.get("alg") != self.OIDC_RP_SIGN_ALGO:
            raise SuspiciousOperation("token signed with another algorithm")
        try:
            return jwt.decode(
                payload,
                key,
                algorithms=[self.OIDC_RP_SIGN_ALGO],
                options={"verify_aud": False},  # verify_token checks it, azp too
                leeway=settings.KURA_ORCID_LEEWAY_SECONDS,
            )
        except jwt.InvalidTokenError as exc:
            raise SuspiciousOperation(f"token refused: {exc}") from exc

    def verify_token(self, token, **kwargs):
        payload = super().verify_token(token, **kwargs)
        if "nonce" not in kwargs:
            return payload  # a userinfo JWT: the ID token's checks below already ran
        if "exp" not in payload or "iat" not in payload:  # both required by OpenID Connect
            raise SuspiciousOperation("ID token without its lifetime")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("ID token issued for another audience")
        if len(audiences) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("ID token authorised for another party")
        if payload.get("iss") != settings.KURA_ORCID_ISSUER:
            raise SuspiciousOperation("ID token from another issuer")
        self._id_token_claims = payload
        return payload

    def get_or_create_user(self, access_token, id_token, payload):
        claims = dict(payload)
        userinfo = self.get_userinfo(access_token, id_token, payload)
        if userinfo.get("sub") not in (None, payload.get("sub")):
            raise SuspiciousOperation("userinfo names another person than the ID token")
        for name in ("given_name", "family_name"):
            claims.setdefault(name, userinfo.get(name))
        link_to = self._link_target()
        return orcid_sign_in(
            orcid_id=str(payload.get("sub") or ""),
            issuer=str(payload.get("iss") or ""),
            claims=claims,
            link_to=link_to,
        )

    def _link_target(self) -> User | None:
        """The signed-in account that started a link flow in this browser, or ``None``."""
        marker = self.request.session.pop(LINK_SESSION_KEY, None)
        if marker is None:
            return None
        marker = marker if isinstance(marker, dict) else {}  # a bare id: from before expiry
        wanted, started = marker.get("user"), marker.get("at")
        if not isinstance(started, int) or not 0 <= time.time() - started <= LINK_MAX_AGE_SECONDS:
            # Linking instead of signing in is only for the flow just started: a marker left
            # by an abandoned attempt must not turn a sign-in days later into a link.
            log.info("ORCID link refused: started too long ago by user=%s", wanted)
            raise OrcidSignInRefused(
                _(
                    "Linking your ORCID iD took too long, so nothing was linked. Start "
                    "again from your account's ORCID page."
                ),
                status=400,
            )
        signed_in = getattr(self.request, "user", None)
        if signed_in is None or not signed_in.is_authenticated or signed_in.pk != wanted:
            raise OrcidSignInRefused(
                _("You were signed out before ORCID answered; sign in and link again.")
            )
        return signed_in

    def get_user(self, user_id):
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None
