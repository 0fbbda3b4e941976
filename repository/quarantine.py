"""Quarantine: an object whose bytes cannot be trusted is withheld from everyone.

Set by the checksum and fixity services (:mod:`repository.checksums`); cleared by a curator.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.models import Membership, Role

from .models import AuditEvent, DataObject
from .services import audit_event_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reason:
    """A translatable reason with its values; ``str()`` is the English text that is stored."""

    template: str
    values: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.template % self.values

    def translated(self) -> str:
        return gettext(self.template) % self.values


def data_object_quarantine(
    *, data_object: DataObject, reasons: list[Reason], now: datetime | None = None
) -> bool:
    """Withhold the object's file from everyone until a curator clears it.

    Sets ``quarantined_at`` and the reason, appends a ``fixity_failed`` AuditEvent and, once
    the transaction commits, e-mails the uploader and the project's PMs. Returns ``False``
    (and does nothing) if the object was already quarantined.
    """
    now = now or timezone.now()
    reason = " ".join(map(str, reasons))
    with transaction.atomic():
        quarantined = DataObject.objects.filter(
            pk=data_object.pk, quarantined_at__isnull=True
        ).update(quarantined_at=now, quarantine_reason=reason)
        if not quarantined:
            return False
        audit_event_record(
            actor=None,
            action=AuditEvent.Action.FIXITY_FAILED,
            data_object=data_object,
            before={"quarantined": False},
            after={"quarantined": True},
            detail=reason,
        )
        pk = data_object.pk
        transaction.on_commit(lambda: _quarantine_notify(data_object_id=pk, reasons=reasons))
    return True


def _quarantine_recipients(data_object: DataObject) -> list[str]:
    pm_emails = Membership.objects.filter(
        project_id=data_object.project_id, role=Role.PM, user__is_active=True
    ).values_list("user__email", flat=True)
    emails = {data_object.uploaded_by.email, *pm_emails}
    return sorted(email for email in emails if email)


def _quarantine_notify(*, data_object_id: int, reasons: list[Reason]) -> None:
    """E-mail the uploader and the PMs, in Japanese and English (their language is not
    known). A mail server that fails is logged: the quarantine itself stands."""
    data_object = DataObject.objects.select_related("project", "uploaded_by").get(pk=data_object_id)
    recipients = _quarantine_recipients(data_object)
    if not recipients:
        return
    subjects, bodies = [], []
    for language in ("ja", "en"):
        with translation.override(language):
            values = {
                "filename": data_object.original_filename,
                "project": data_object.project.name,
                "reason": " ".join(reason.translated() for reason in reasons),
                "path": reverse("object-detail", args=[data_object.pk]),
            }
            subjects.append(gettext("Fixity failure: %(filename)s") % values)
            bodies.append(
                gettext(
                    "Kura has quarantined a stored file because its checksum verification "
                    "failed: nobody can download it until a curator has looked into it and "
                    "cleared the quarantine.\n\n"
                    "File: %(filename)s\n"
                    "Project: %(project)s\n"
                    "Reason: %(reason)s\n"
                    "Object page: %(path)s"
                )
                % values
            )
    try:
        send_mail(
            "[Kura] " + " / ".join(subjects),
            "\n\n-----\n\n".join(bodies),
            None,
            recipients,
        )
    except Exception:
        logger.exception("quarantine e-mail for object %s was not sent", data_object_id)
