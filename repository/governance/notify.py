"""E-mail to the people a change concerns, in Japanese and English.

Kura does not know a recipient's language, so every message carries both: the Japanese text,
a separator, the English text. The texts are templates, ``templates/email/<notice>/``
``subject.txt`` and ``body.txt``, rendered once per language.

A service asks for a notice inside its transaction (:func:`notice_on_commit`); once the
transaction commits, the ``kura.notify`` task composes it from the database and sends it,
so a rollback sends nothing. A mail server that fails is retried by the task and then
logged; what the message reports (a decision, a quarantine, a grant) stands. If the broker
is away, the notice is sent at once instead.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.models import STEWARD_ROLES, Membership, Role
from repository.models import (
    AccessGrant,
    AccessRequest,
    DataObject,
    RequestStatus,
    TierChangeRequest,
)
from repository.preservation.queue import NOTIFY, task_by_name

logger = logging.getLogger(__name__)

LANGUAGES = ("ja", "en")


def absolute_url(path: str) -> str:
    """``path`` on Kura's public address (``KURA_BASE_URL``), for links in e-mails."""
    return urljoin(settings.KURA_BASE_URL, path)


def project_emails(project_id: int, roles: Iterable[str] = (Role.PM,)) -> list[str]:
    """Addresses of the project's active members in ``roles`` (PMs by default)."""
    return list(
        Membership.objects.filter(
            project_id=project_id, role__in=list(roles), user__is_active=True
        ).values_list("user__email", flat=True)
    )


def send_bilingual(
    *,
    recipients: Iterable[str],
    compose: Callable[[], tuple[str, str]],
    what: str,
    last_attempt: bool = True,
) -> bool:
    """Send one message to ``recipients`` (blank and repeated addresses dropped); returns
    whether it was sent.

    ``compose`` returns ``(subject, body)`` and is called once per language, with that
    language active, so that it can translate its texts and labels. A mail server that
    fails is logged; unless this is the ``last_attempt``, its error is raised instead, for
    the task to try again.
    """
    recipients = sorted({email for email in recipients if email})
    if not recipients:
        return False
    subjects, bodies = [], []
    for language in LANGUAGES:
        with translation.override(language):
            subject, body = compose()
        # A header holds one line: a title typed with a line break must not drop the mail.
        subjects.append(" ".join(subject.split()))
        bodies.append(body)
    try:
        send_mail("[Kura] " + " / ".join(subjects), "\n\n-----\n\n".join(bodies), None, recipients)
    except Exception as exc:
        if isinstance(exc, OSError) and not last_attempt:  # the server: worth another try
            raise
        logger.exception("%s e-mail was not sent", what)
        return False
    return True


# --- Notices: who is told what --------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A notice composed: its recipients, its templates' folder under ``templates/email/``
    and ``values()``, the templates' context, called once per language."""

    recipients: list[str]
    template: str
    values: Callable[[], dict]

    def render(self) -> tuple[str, str]:
        """Subject and body in the active language."""
        context = self.values()
        return tuple(
            render_to_string(f"email/{self.template}/{part}.txt", context).strip()
            for part in ("subject", "body")
        )


NOTICES: dict[str, Callable[..., Message]] = {}


def _notice(compose: Callable[..., Message]) -> Callable[..., Message]:
    """Register ``compose`` as the notice of its name (without the leading underscore)."""
    NOTICES[compose.__name__.lstrip("_")] = compose
    return compose


def notice_on_commit(name: str, **values) -> None:
    """Send the notice ``name`` (about the ids in ``values``, which must be JSON) once the
    current transaction commits; nothing if it rolls back."""
    if name not in NOTICES:
        raise KeyError(f"no notice {name!r}")
    transaction.on_commit(partial(_notice_queue, name, values), robust=True)


# After the broker refused a notice, this process sends notices itself for a while rather
# than wait the broker's connection timeout again for each (a decision for a whole record
# queues one notice per request).
BROKER_PAUSE_SECONDS = 30
_broker_down_until = 0.0


def _notice_queue(name: str, values: dict) -> None:
    """Queue the notice for the ``kura.notify`` task; with the broker away, send it now.
    Never raises: the change it reports is committed and stands."""
    global _broker_down_until
    if time.monotonic() >= _broker_down_until:
        try:
            task_by_name(NOTIFY).delay(name, values)
            return
        except Exception:  # noqa: BLE001 - any broker failure: send it from here
            _broker_down_until = time.monotonic() + BROKER_PAUSE_SECONDS
            logger.warning("%s e-mail not queued; sending it now", name, exc_info=True)
    try:
        notice_send(name, values)
    except Exception:  # noqa: BLE001 - the mail is lost, the committed change stands
        logger.exception("%s e-mail %s could not be sent", name, values)


def notice_send(name: str, values: dict, *, last_attempt: bool = True) -> bool:
    """Compose the notice ``name`` from the database and send it (the ``kura.notify``
    task); returns whether a message went out."""
    try:
        message = NOTICES[name](**values)
    except ObjectDoesNotExist:
        logger.warning("%s e-mail not sent: %s no longer exists", name, values)
        return False
    return send_bilingual(
        recipients=message.recipients,
        compose=message.render,
        what=f"{name} {values}",
        last_attempt=last_attempt,
    )


def _iso(day) -> str:
    return day.isoformat() if day else "-"


def _name(user) -> str:
    return user.display_name if user is not None else "-"


@_notice
def _tier_decided(*, request_id: int) -> Message:
    """The requester and the project's PMs: a curator approved or rejected a tier change."""
    tier_request = TierChangeRequest.objects.select_related(
        "project", "requested_by", "decided_by"
    ).get(pk=request_id)
    objects = list(tier_request.data_objects.order_by("pk"))
    return Message(
        recipients=[tier_request.requested_by.email, *project_emails(tier_request.project_id)],
        template="tier_decided",
        values=lambda: {
            "approved": tier_request.status == RequestStatus.APPROVED,
            "id": tier_request.pk,
            "project": tier_request.project.name,
            "tier": tier_request.get_requested_tier_display(),
            "date": _iso(tier_request.available_date),
            "curator": _name(tier_request.decided_by),
            "comment": tier_request.decision_comment or "-",
            "objects": "\n".join(
                f"  - {o.original_filename} " + absolute_url(reverse("object-detail", args=[o.pk]))
                for o in objects
            ),
        },
    )


def _access_request(request_id: int) -> AccessRequest:
    return AccessRequest.objects.select_related("record__project", "requester").get(pk=request_id)


@_notice
def _access_requested(*, request_id: int) -> Message:
    """The project's PM and data managers: someone asks for a record's shared data."""
    access_request = _access_request(request_id)
    record, requester = access_request.record, access_request.requester
    return Message(
        recipients=project_emails(record.project_id, STEWARD_ROLES),
        template="access_requested",
        values=lambda: {
            "requester": f"{requester.display_name} <{requester.email}>",
            "number": record.data_number,
            "title": record.title,
            "purpose": access_request.purpose,
            "url": absolute_url(reverse("project-access-requests", args=[record.project_id])),
        },
    )


@_notice
def _access_decided(*, request_id: int) -> Message:
    """The requester: access granted (until when) or declined (why)."""
    access_request = _access_request(request_id)
    approved = access_request.status == RequestStatus.APPROVED
    grant = AccessGrant.objects.get(request=access_request) if approved else None
    record = access_request.record
    return Message(
        recipients=[access_request.requester.email],
        template="access_decided",
        values=lambda: {
            "approved": approved,
            "number": record.data_number,
            "title": record.title,
            "comment": access_request.decision_comment or "—",
            "date": timezone.localtime(grant.expires_at).date().isoformat() if grant else "",
            "url": absolute_url(reverse("dataset-landing", args=[record.pk])),
        },
    )


@_notice
def _access_revoked(*, grant_id: int) -> Message:
    """The former grantee: a steward ended their access."""
    grant = AccessGrant.objects.select_related("record", "grantee").get(pk=grant_id)
    return Message(
        recipients=[grant.grantee.email],
        template="access_revoked",
        values=lambda: {
            "number": grant.record.data_number,
            "title": grant.record.title,
            "url": absolute_url(reverse("dataset-landing", args=[grant.record_id])),
        },
    )


def _about_object(
    data_object: DataObject,
    recipients: list[str],
    template: str,
    *,
    curator=None,
    comment: str = "",
    reasons: Iterable[tuple[str, dict]] = (),
) -> Message:
    """A message about ``data_object``: its names, its page's address, the curator, the
    comment and the ``reasons`` (pairs of a msgid and its values, translated)."""

    def context() -> dict:
        url = absolute_url(reverse("object-detail", args=[data_object.pk]))
        return {
            "filename": data_object.original_filename,
            "project": data_object.project.name,
            "url": url,
            "curator": _name(curator),
            "comment": comment,
            "reason": " ".join(gettext(msgid) % facts for msgid, facts in reasons),
        }

    return Message(recipients=recipients, template=template, values=context)


def _object(data_object_id: int) -> DataObject:
    return DataObject.objects.select_related("project", "uploaded_by").get(pk=data_object_id)


def _curator(curator_id: int | None):
    return get_user_model().objects.filter(pk=curator_id).first() if curator_id else None


def _uploader_and_pms(data_object: DataObject) -> list[str]:
    return [data_object.uploaded_by.email, *project_emails(data_object.project_id)]


@_notice
def _quarantined(*, data_object_id: int, reasons: list) -> Message:
    """The uploader and the PMs: the object is withheld after a failed check."""
    data_object = _object(data_object_id)
    return _about_object(
        data_object, _uploader_and_pms(data_object), "quarantined", reasons=reasons
    )


@_notice
def _quarantine_cleared(*, data_object_id: int, curator_id: int | None, comment: str) -> Message:
    """The uploader and the PMs: the bytes were read again and match; downloads resume."""
    data_object = _object(data_object_id)
    return _about_object(
        data_object,
        _uploader_and_pms(data_object),
        "quarantine_cleared",
        curator=_curator(curator_id),
        comment=comment,
    )


@_notice
def _quarantine_kept(*, data_object_id: int, curator_id: int | None, reasons: list) -> Message:
    """The curator who asked and the PMs: the bytes read again still do not match."""
    data_object = _object(data_object_id)
    curator = _curator(curator_id)
    return _about_object(
        data_object,
        [curator.email if curator else "", *project_emails(data_object.project_id)],
        "quarantine_kept",
        curator=curator,
        reasons=reasons,
    )
