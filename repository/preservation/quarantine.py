"""Quarantine: an object whose bytes cannot be trusted is withheld from everyone.

Set by the checksum and fixity services (:mod:`repository.preservation.checksums`). Cleared only by
a curator, and only by reading the stored bytes again: :func:`quarantine_reverify_request` marks the
object (``checksum_state`` ``verifying`` while quarantined means "a curator's re-verification is
pending") and queues :func:`data_object_quarantine_reverify`, which lifts the quarantine when the
bytes are the recorded ones and leaves it in place otherwise.
"""

import logging
from datetime import datetime
from enum import StrEnum

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from accounts.roles import ProjectAction, may
from core.machine_text import MachineText, Message
from repository.governance.notify import notice_on_commit
from repository.models import AuditEvent, DataObject, FixityCheck
from repository.preservation.fixity import (
    REVERIFY_PENDING,
    Digests,
    ProgressWriter,
    Reason,
    fixity_compare,
    hashing_lock,
)
from repository.preservation.object_store import StoreError
from repository.preservation.queue import quarantine_reverify_send
from repository.services import audit_event_record

logger = logging.getLogger(__name__)


# Fixity check details are stored as codes (core.machine_text), read in the reader's language.
REVERIFY_MATCH = Message("fixity.reverify_match")
REVERIFY_MISMATCH = Message("fixity.reverify_mismatch")
REVERIFY_ERROR = Message("fixity.reverify_error")


def data_object_quarantine(
    *, data_object: DataObject, reasons: list[Reason], now: datetime | None = None
) -> bool:
    """Withhold the object's file from everyone until a curator clears it.

    Sets ``quarantined_at`` and the reason, appends a ``fixity_failed`` AuditEvent and, once
    the transaction commits, e-mails the uploader and the project's PMs. Returns ``False``
    (and does nothing) if the object was already quarantined.
    """
    now = now or timezone.now()
    reason = MachineText(*reasons)
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
        notice_on_commit(
            "quarantined", data_object_id=data_object.pk, reasons=Reason.as_json(reasons)
        )
    return True


def fixity_record(
    data_object: DataObject,
    digests: Digests | None,
    problems: list[Reason],
    *,
    detail: Message | None = None,
) -> FixityCheck:
    """Record one fixity check (``detail`` goes before the problems) and set
    ``last_fixity_at``; problems fail the checksum state and quarantine the object."""
    now = timezone.now()
    with transaction.atomic():
        check = FixityCheck.objects.create(
            data_object=data_object,
            checked_at=now,
            outcome=FixityCheck.Outcome.MISMATCH if problems else FixityCheck.Outcome.MATCH,
            sha256=digests.sha256 if digests else "",
            md5=digests.md5 if digests else "",
            size=digests.size if digests else None,
            detail=MachineText(*filter(None, [detail, *problems])),
        )
        updates: dict = {"last_fixity_at": now}
        if problems:
            updates["checksum_state"] = DataObject.ChecksumState.FAILED
        DataObject.objects.filter(pk=data_object.pk).scoped_as(data_object).update(**updates)
        if problems:
            data_object_quarantine(data_object=data_object, reasons=problems, now=now)
    return check


# --- Clearing: a curator asks, a worker reads the bytes again -----------------------------


class ReverifyOutcome(StrEnum):
    CLEARED = "cleared"
    STILL_QUARANTINED = "still_quarantined"
    STORAGE_ERROR = "storage_error"
    NOTHING_TO_DO = "nothing_to_do"


def quarantine_reverify_pending(data_object: DataObject) -> bool:
    """Whether a curator's re-verification of the quarantined object is queued or running."""
    return (
        data_object.is_quarantined
        and data_object.status == DataObject.Status.STORED
        and data_object.checksum_state == DataObject.ChecksumState.VERIFYING
    )


def quarantine_reverify_request(
    *, actor, data_object_id: int, comment: str, ip_address: str | None = None
) -> DataObject:
    """A curator asks Kura to read a quarantined object's bytes again and, if they are the
    recorded ones, to lift the quarantine (curators and superusers only).

    The ``comment`` (required) says what the curator looked into; it goes to the audit
    trail and the e-mails. Marks the re-verification pending (``checksum_state``
    ``verifying``) and, once committed, queues the ``kura.quarantine_reverify`` task. Refuses
    with a ``ValidationError`` (and changes nothing) an object that is not quarantined, whose
    file is deleted, or whose re-verification is already pending.
    """
    if not may(actor, ProjectAction.REVIEW_TIERS):
        raise PermissionDenied(gettext("Only curators clear a quarantine."))
    comment = (comment or "").strip()
    if not comment:
        raise ValidationError(
            {"comment": gettext("Say what you looked into: the audit trail keeps it.")}
        )
    with transaction.atomic():
        data_object = DataObject.objects.select_for_update().filter(pk=data_object_id).first()
        if data_object is None:
            raise Http404("No such data object.")
        if not data_object.is_quarantined or data_object.status != DataObject.Status.STORED:
            raise ValidationError(gettext("This object is not quarantined."))
        if quarantine_reverify_pending(data_object):
            raise ValidationError(gettext("A re-verification of this object is already pending."))
        if not data_object.sha256:
            raise ValidationError(
                gettext("No checksums were recorded for this object: there is nothing to compare.")
            )
        before = {"checksum_state": data_object.checksum_state}
        data_object.checksum_state = DataObject.ChecksumState.VERIFYING
        data_object.checksum_progress = 0
        data_object.save(update_fields=["checksum_state", "checksum_progress"])
        # The request on the trail is also what queues it again should the task be lost
        # (housekeeping.quarantine_reverifications_stalled).
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.QUARANTINE_REVERIFY_REQUESTED,
            data_object=data_object,
            ip_address=ip_address,
            before=before,
            after={"checksum_state": DataObject.ChecksumState.VERIFYING},
            detail=comment,
        )
        pk, actor_id = data_object.pk, actor.pk
        # A broker that is away must not turn the committed request into an error: the
        # request is kept (checksum_unsent) and beat's requeue sends it once it is back.
        transaction.on_commit(
            lambda: quarantine_reverify_send(pk, actor_id, comment, ip_address), robust=True
        )
    return data_object


def data_object_quarantine_reverify(
    *,
    data_object_id: int,
    curator_id: int | None,
    comment: str,
    ip_address: str | None = None,
    last_attempt: bool = False,
) -> ReverifyOutcome:
    """Read a quarantined object's stored bytes again, as a curator asked, and decide.

    Streams the bytes once (:func:`repository.preservation.checksums.fixity_compare`) and records
    the FixityCheck. When the size, SHA-256 and MD5 are the recorded ones (and the uploader's
    SHA-256, if given), the quarantine is lifted, the checksum state is ``verified``, a
    ``quarantine_cleared`` AuditEvent names the curator, their address and comment, and the uploader
    and PMs are e-mailed. Otherwise the object stays quarantined (state ``failed``) and the curator
    and PMs are e-mailed.

    Only an object whose re-verification is pending is read, under the hashing lock, so a
    second run changes nothing. A storage error propagates for the task to retry, leaving
    the request pending; on the ``last_attempt`` it is recorded as an ``error`` check and
    the request ends (state ``failed``).
    """
    with hashing_lock(data_object_id) as locked:
        if not locked:
            return ReverifyOutcome.NOTHING_TO_DO  # another worker is reading it right now
        data_object = DataObject.objects.filter(pk=data_object_id, **REVERIFY_PENDING).first()
        if data_object is None:
            return ReverifyOutcome.NOTHING_TO_DO
        try:
            digests, problems = fixity_compare(
                data_object, on_progress=ProgressWriter(data_object_id)
            )
        except StoreError as exc:
            if not last_attempt:
                raise
            # The storage's message stays in the log: it can name hosts and buckets.
            logger.warning("re-verification of object %s gave up: %s", data_object_id, exc)
            return _reverify_give_up(data_object)
        curator = get_user_model().objects.filter(pk=curator_id).first() if curator_id else None
        with transaction.atomic():
            data_object = (
                DataObject.objects.select_for_update()
                .filter(pk=data_object_id, **REVERIFY_PENDING)
                .first()
            )
            if data_object is None:
                return ReverifyOutcome.NOTHING_TO_DO
            if problems:
                fixity_record(data_object, digests, problems, detail=REVERIFY_MISMATCH)
                # The object was quarantined already (no new quarantine event): the trail
                # must still say that the curator's re-verification found it corrupt.
                audit_event_record(
                    actor=curator,
                    action=AuditEvent.Action.FIXITY_FAILED,
                    data_object=data_object,
                    ip_address=ip_address,
                    before={"quarantined": True},
                    after={"quarantined": True, "checksum_state": DataObject.ChecksumState.FAILED},
                    detail=MachineText(REVERIFY_MISMATCH, *problems, comment),
                )
                notice_on_commit(
                    "quarantine_kept",
                    data_object_id=data_object_id,
                    curator_id=curator_id if curator else None,
                    reasons=Reason.as_json(problems),
                )
                return ReverifyOutcome.STILL_QUARANTINED
            fixity_record(data_object, digests, [], detail=REVERIFY_MATCH)
            DataObject.objects.filter(pk=data_object_id).update(
                quarantined_at=None,
                quarantine_reason="",
                checksum_state=DataObject.ChecksumState.VERIFIED,
                checksum_progress=100,
            )
            audit_event_record(
                actor=curator,
                action=AuditEvent.Action.QUARANTINE_CLEARED,
                data_object=data_object,
                ip_address=ip_address,
                before={"quarantined": True, "quarantine_reason": data_object.quarantine_reason},
                after={"quarantined": False, "checksum_state": DataObject.ChecksumState.VERIFIED},
                detail=comment,
            )
            notice_on_commit(
                "quarantine_cleared",
                data_object_id=data_object_id,
                curator_id=curator_id if curator else None,
                comment=comment,
            )
    return ReverifyOutcome.CLEARED


def _reverify_give_up(data_object: DataObject) -> ReverifyOutcome:
    with transaction.atomic():
        ended = DataObject.objects.filter(pk=data_object.pk, **REVERIFY_PENDING).update(
            checksum_state=DataObject.ChecksumState.FAILED, checksum_progress=0
        )
        if not ended:
            return ReverifyOutcome.NOTHING_TO_DO
        FixityCheck.objects.create(
            data_object=data_object, outcome=FixityCheck.Outcome.ERROR, detail=REVERIFY_ERROR
        )
    return ReverifyOutcome.STORAGE_ERROR
