"""Tier changes: asking, applying, a curator's decision, and lifting embargoes.

The rules (docs/architecture.md, "Tier changes"):

* the uploader, the PM or a data manager asks — whoever may edit the object
  (``Action.EDIT`` in :mod:`repository.access`);
* making data less open is always immediate, and so is any change that does not open data
  to a tier in ``KURA_REVIEWED_TIERS`` (within the project: ``non_shared`` ⇄ ``shared``);
* opening data to a reviewed tier creates a pending :class:`TierChangeRequest`, with a
  reason, that a curator approves or rejects; an embargo needs an available date in the
  future;
* opening data beyond the project (the tiers the tier table, ``core/tiers.py``, marks so)
  is refused, object by object with the reason, by :func:`tier_change_blockers` — both
  when asked and when approved.

Every change of tier goes through :func:`data_object_tier_apply`, which audits it. Deciding
and cancelling a request is the workflow every reviewed request shares,
:mod:`repository.governance.decisions`.
"""

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.roles import ProjectAction, may
from core.machine_text import MachineText, Message
from core.tiers import beyond_project, dated_tiers, openness, tier_rule
from core.vocabularies import Tier
from dmp.models import DmpRecord
from repository.access import Action, tier_decision_refusal, visible_to
from repository.governance.decisions import (
    RequestAlreadyDecided,
    decision_change,
    pending_request_lock,
    request_cancel,
    request_decide,
)
from repository.models import AuditEvent, DataObject, RequestStatus, TierChangeRequest
from repository.services import audit_event_record

logger = logging.getLogger(__name__)

# The name callers knew before both kinds of request shared one error.
TierRequestAlreadyDecided = RequestAlreadyDecided


@dataclass(frozen=True)
class TierChangeOutcome:
    """What a request did: objects whose tier changed now, and the request for the rest."""

    applied: list[DataObject]
    request: TierChangeRequest | None


# What a request to open data beyond the project needs, on the object page and at upload.
REASON_NEEDED = gettext_noop("Say why these data should be opened: a curator reads it.")


def _iso(day: datetime.date | None) -> str | None:
    return day.isoformat() if day else None


def tier_change_opens(
    data_object: DataObject, *, tier: str, available_date: datetime.date | None
) -> bool:
    """Whether changing ``data_object`` to ``tier`` makes its bytes more open."""
    if tier == data_object.tier and tier in dated_tiers():
        return available_date < data_object.available_date  # an earlier lift opens sooner
    return openness(tier) > openness(data_object.tier)


def tier_change_needs_review(
    data_object: DataObject, *, tier: str, available_date: datetime.date | None
) -> bool:
    """Opening data to a tier in ``KURA_REVIEWED_TIERS`` waits for a curator."""
    return tier in settings.KURA_REVIEWED_TIERS and tier_change_opens(
        data_object, tier=tier, available_date=available_date
    )


def record_personal_data_blocker(record: DmpRecord | None, *, name: str) -> str | None:
    """Why the record's personal-data state keeps the file ``name`` inside the project:
    it holds personal data, or nobody knows whether it does (unknown blocks exactly as
    yes), and the record does not attest anonymisation; ``None`` when it does not."""
    if record is None or record.anonymisation_attested:
        return None
    if record.contains_personal_data:
        return _(
            "%(name)s: its DMP record is flagged as containing personal data and does not"
            " attest anonymisation."
        ) % {"name": name}
    if record.contains_personal_data is None:
        return _(
            "%(name)s: the record's personal-data state is unknown: set it in the DMP first."
        ) % {"name": name}
    return None


def tier_change_blockers(
    data_object: DataObject, *, tier: str, available_date: datetime.date | None = None
) -> list[str]:
    """Why ``data_object`` may not change to ``tier`` (empty: nothing stands in the way).

    Only opening data beyond the project is ever blocked: by personal data (on the object
    or its record, where an unknown state counts as yes,
    :func:`record_personal_data_blocker`) unless the record attests anonymisation, by a
    checksum that is not verified, by quarantine, or by a missing or withdrawn DMP record.
    The service and the review page both ask here, so the curator sees exactly what the
    service will refuse.
    """
    if tier not in beyond_project() or not tier_change_opens(
        data_object, tier=tier, available_date=available_date
    ):
        return []
    name = {"name": data_object.original_filename}
    record = data_object.record
    reasons = []
    if data_object.status != DataObject.Status.STORED:
        reasons.append(_("%(name)s: the upload is not complete.") % name)
    if record is None:
        reasons.append(_("%(name)s: it is not described by a DMP record yet.") % name)
    elif record.withdrawn_at is not None:
        reasons.append(_("%(name)s: its DMP record has been withdrawn.") % name)
    attested = record is not None and record.anonymisation_attested
    if data_object.contains_personal_data and not attested:
        reasons.append(
            _(
                "%(name)s: it is flagged as containing personal data and its record does not"
                " attest anonymisation."
            )
            % name
        )
    elif reason := record_personal_data_blocker(record, name=data_object.original_filename):
        reasons.append(reason)
    if data_object.checksum_state != DataObject.ChecksumState.VERIFIED:
        reasons.append(
            _("%(name)s: its checksum is not verified (%(state)s).")
            % {**name, "state": data_object.get_checksum_state_display()}
        )
    if data_object.is_quarantined:
        reasons.append(_("%(name)s: it is quarantined after a fixity failure.") % name)
    return reasons


def tier_change_blockers_of(
    objects: Sequence[DataObject], *, tier: str, available_date: datetime.date | None
) -> list[str]:
    """Every reason, object by object, why ``objects`` may not change to ``tier``."""
    return [
        reason
        for o in objects
        for reason in tier_change_blockers(o, tier=tier, available_date=available_date)
    ]


def data_object_tier_apply(
    *,
    actor,
    data_object: DataObject,
    tier: str,
    available_date: datetime.date | None,
    ip_address: str | None = None,
    action: AuditEvent.Action = AuditEvent.Action.TIER_CHANGED,
    detail: str = "",
) -> bool:
    """Set the object's tier and embargo date and audit the change (before, after, actor,
    address). The update is conditional on the tier and date ``data_object`` holds, so a
    stale copy or a second run changes nothing and writes no event; returns whether it
    changed. Callers check the rules (and lock the row); this only writes."""
    before = {"tier": data_object.tier, "available_date": _iso(data_object.available_date)}
    after = {"tier": tier, "available_date": _iso(available_date)}
    if before == after:
        return False
    changed = DataObject.objects.filter(
        pk=data_object.pk, tier=data_object.tier, available_date=data_object.available_date
    ).update(tier=tier, available_date=available_date)
    if not changed:
        return False
    data_object.tier, data_object.available_date = tier, available_date
    audit_event_record(
        actor=actor,
        action=action,
        data_object=data_object,
        ip_address=ip_address,
        before=before,
        after=after,
        detail=detail,
    )
    return True


def _clean_embargo(tier: str, available_date: datetime.date | None) -> datetime.date | None:
    if tier not in Tier.values:
        raise ValidationError({"tier": _("Choose one of the access tiers.")})
    if tier not in dated_tiers():
        return None
    if available_date is None:
        raise ValidationError({"available_date": _("An embargo needs an available date.")})
    if available_date <= timezone.localdate():
        raise ValidationError({"available_date": _("The available date must be in the future.")})
    return available_date


def _pending_requests_of(objects: Sequence[DataObject]):
    covering = TierChangeRequest.data_objects.through.objects.filter(dataobject__in=objects)
    return TierChangeRequest.objects.filter(
        status=RequestStatus.PENDING, pk__in=covering.values("tierchangerequest")
    ).order_by("pk")


def tier_change_request(
    *,
    actor,
    data_object_ids: Sequence[int],
    tier: str,
    available_date: datetime.date | None = None,
    reason: str = "",
    ip_address: str | None = None,
) -> TierChangeOutcome:
    """Change the tier of one or more objects of a project, or ask a curator to.

    Objects whose change does not need review are changed at once; making an object less
    open cancels the pending requests that cover it (the steward has changed their mind).
    Objects that would be opened to a reviewed tier go into one pending
    :class:`TierChangeRequest`, which needs a reason. All or nothing: any refusal raises
    ``ValidationError`` (per field, naming each blocked object) or ``PermissionDenied``,
    and nothing changes.
    """
    available_date = _clean_embargo(tier, available_date)
    reason = (reason or "").strip()
    wanted = set(data_object_ids)
    with transaction.atomic():
        objects = list(
            visible_to(actor, Action.EDIT)
            .filter(pk__in=wanted)
            .select_related("record")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        if not wanted or len(objects) != len(wanted):
            raise PermissionDenied(_("You may not change the access tier of these objects."))
        if len({o.project_id for o in objects}) > 1:
            raise ValidationError(
                {"data_objects": _("A tier change covers objects of one project only.")}
            )
        changes = [o for o in objects if (o.tier, o.available_date) != (tier, available_date)]
        if not changes:
            raise ValidationError({"tier": _("The access tier is already as requested.")})
        blockers = tier_change_blockers_of(changes, tier=tier, available_date=available_date)
        if blockers:
            raise ValidationError({"tier": blockers})
        reviewed = [
            o
            for o in changes
            if tier_change_needs_review(o, tier=tier, available_date=available_date)
        ]
        direct = [o for o in changes if o not in reviewed]
        if reviewed and not reason:
            raise ValidationError({"reason": _(REASON_NEEDED)})
        waiting = [
            _("%(name)s: request #%(id)s for it is already waiting for a curator.")
            % {"name": o.original_filename, "id": pending.pk}
            for pending in _pending_requests_of(reviewed).prefetch_related("data_objects")
            for o in pending.data_objects.all()
            if o in reviewed
        ]
        if waiting:
            raise ValidationError({"tier": waiting})
        # Making an object less open withdraws the requests to open it.
        closed = [
            o for o in direct if not tier_change_opens(o, tier=tier, available_date=available_date)
        ]
        for o in direct:
            data_object_tier_apply(
                actor=actor,
                data_object=o,
                tier=tier,
                available_date=available_date,
                ip_address=ip_address,
            )
        _cancel_pending(actor=actor, objects=closed, ip_address=ip_address)
        tier_request = None
        if reviewed:
            tier_request = tier_request_create(
                actor=actor,
                objects=reviewed,
                tier=tier,
                available_date=available_date,
                reason=reason,
                ip_address=ip_address,
            )
    return TierChangeOutcome(applied=direct, request=tier_request)


def tier_request_create(
    *,
    actor,
    objects: Sequence[DataObject],
    tier: str,
    available_date: datetime.date | None,
    reason: str,
    ip_address: str | None = None,
) -> TierChangeRequest:
    """Record a pending request to change ``objects`` (of one project) to ``tier`` and
    audit it per object. No checks: :func:`tier_change_request` makes them first, and an
    upload asks before its checksum exists (the approval checks again)."""
    tier_request = TierChangeRequest.objects.create(
        project_id=objects[0].project_id,
        requested_by=actor,
        requested_tier=tier,
        available_date=available_date,
        reason=reason,
    )
    tier_request.data_objects.add(*objects)
    for o in objects:
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.TIER_REQUESTED,
            data_object=o,
            ip_address=ip_address,
            before={"tier": o.tier, "available_date": _iso(o.available_date)},
            after={
                "tier": tier,
                "available_date": _iso(available_date),
                "request": tier_request.pk,
            },
            detail=reason,
        )
    return tier_request


def _cancel_pending(*, actor, objects, ip_address, comment: MachineText | None = None) -> None:
    """Cancel the pending requests that cover ``objects``, audited like a decision."""
    if not objects:
        return
    # Kura's sentence, stored as a code: each reader reads it in their own language.
    names = ", ".join(o.original_filename for o in objects)
    comment = comment or MachineText(Message("tier.cancelled_tier_changed", {"names": names}))
    for pending in _pending_requests_of(objects).select_for_update(of=("self",)):
        request_cancel(
            pending,
            actor=actor,
            comment=comment,
            audit=partial(_decision_audit, actor=actor, ip_address=ip_address),
        )


def data_object_withdraw_from_requests(
    *, actor, data_object: DataObject, ip_address: str | None = None
) -> None:
    """Take ``data_object`` (being deleted) out of the pending requests that cover it.

    The object is removed from a request that covers others too, so that the curator can
    still decide on them; a request for that object alone is cancelled
    (:func:`_cancel_pending`). Both are audited per object as a cancellation. The caller
    holds the object's row lock.
    """
    comment = MachineText(
        Message("tier.cancelled_object_deleted", {"name": data_object.original_filename})
    )
    others = DataObject.objects.filter(tier_requests=OuterRef("pk")).exclude(pk=data_object.pk)
    larger = _pending_requests_of([data_object]).filter(Exists(others))
    for pending in larger.select_for_update(of=("self",)):
        pending.data_objects.remove(data_object)
        _decision_audit(
            pending,
            actor=actor,
            ip_address=ip_address,
            objects=[data_object],
            status=RequestStatus.CANCELLED,
            comment=comment,
        )
    _cancel_pending(actor=actor, objects=[data_object], ip_address=ip_address, comment=comment)


def _decision_audit(
    tier_request, *, actor, ip_address, objects=None, status=None, comment=None
) -> None:
    """One ``tier_decided`` event per object (by default, all the request's): what became
    of its part in the request (by default, the request's status and comment)."""
    for o in tier_request.data_objects.all() if objects is None else objects:
        audit_event_record(
            actor=actor,
            action=AuditEvent.Action.TIER_DECIDED,
            data_object=o,
            ip_address=ip_address,
            **decision_change(tier_request, status, tier=tier_request.requested_tier),
            detail=tier_request.decision_comment if comment is None else comment,
        )


def _curator_only(actor) -> None:
    if not may(actor, ProjectAction.REVIEW_TIERS):
        raise PermissionDenied(_("Only curators decide tier change requests."))


def tier_request_decide(
    *,
    actor,
    tier_request_id: int,
    approve: bool,
    comment: str = "",
    ip_address: str | None = None,
) -> TierChangeRequest:
    """Approve or reject a pending request (curators only, never the one who asked nor,
    by ``KURA_FOUR_EYES_EXCLUDE_STEWARDS``, a steward of the data: ``PermissionDenied``).

    Approval checks every object again (:func:`tier_change_blockers`) and applies the requested tier
    to all of them, or to none. The objects and then the request are locked, so of two curators
    deciding at once exactly one does; the other gets
    :class:`~repository.governance.decisions.RequestAlreadyDecided`. A rejection needs a comment.
    The requester and the project's PMs are e-mailed once the decision is committed.
    """
    _curator_only(actor)
    comment = (comment or "").strip()
    if not approve and not comment:
        raise ValidationError(
            {"comment": _("Say why the request is rejected: the requester reads it.")}
        )
    with transaction.atomic():
        # Objects first, then the request: the order tier_change_request takes them in.
        objects = list(
            DataObject.objects.filter(tier_requests__pk=tier_request_id)
            .select_related("record")
            .select_for_update(of=("self",))
            .order_by("pk")
        )
        tier_request = pending_request_lock(
            TierChangeRequest.objects,
            tier_request_id,
            actor=actor,
            refusal=tier_decision_refusal,
            missing="No such request.",
        )
        tier, available_date = tier_request.requested_tier, tier_request.available_date
        if approve:
            blockers = tier_change_blockers_of(objects, tier=tier, available_date=available_date)
            if blockers:
                raise ValidationError({"decision": blockers})
            for o in objects:
                data_object_tier_apply(
                    actor=actor,
                    data_object=o,
                    tier=tier,
                    available_date=available_date,
                    ip_address=ip_address,
                    detail=Message("tier.request_approved", {"request": tier_request.pk}),
                )
        request_decide(
            tier_request,
            actor=actor,
            status=RequestStatus.APPROVED if approve else RequestStatus.REJECTED,
            comment=comment,
            audit=partial(_decision_audit, actor=actor, ip_address=ip_address),
            notice="tier_decided",
        )
    return tier_request


@dataclass(frozen=True)
class RecordDecision:
    """What deciding for a record did: the requests decided, and those left pending because
    they also cover objects of other records (or objects not described yet)."""

    decided: list[TierChangeRequest]
    left: list[TierChangeRequest]


def record_pending_requests(*, record_id: int) -> QuerySet:
    """Pending requests with an object of the record, oldest first, each annotated
    ``spans_other_records``: whether it also covers an object of another record or of none.
    Deciding for the record decides only the others."""
    ours = DataObject.objects.filter(tier_requests=OuterRef("pk"), record_id=record_id)
    # exclude() keeps the objects without a record: they are not the record's either.
    elsewhere = DataObject.objects.filter(tier_requests=OuterRef("pk")).exclude(record_id=record_id)
    return (
        TierChangeRequest.objects.filter(Exists(ours), status=RequestStatus.PENDING)
        .annotate(spans_other_records=Exists(elsewhere))
        .order_by("pk")
    )


def requests_left_message(left: Sequence[TierChangeRequest]) -> str:
    """Why deciding for a record left ``left`` pending."""
    return _(
        "Left pending: request(s) %(ids)s also cover objects of other records; decide them"
        " on their own pages."
    ) % {"ids": ", ".join(f"#{r.pk}" for r in left)}


def tier_requests_decide_for_record(
    *,
    actor,
    record_id: int,
    approve: bool,
    comment: str = "",
    ip_address: str | None = None,
) -> RecordDecision:
    """Decide every pending request whose objects all belong to the record, all or none
    (curators only). A request that also covers objects of other records is left pending
    (deciding it would open or refuse those too) and is named in the result. Requests
    someone else decides meanwhile are left to that decision."""
    _curator_only(actor)
    decided = []
    with transaction.atomic():
        pending = list(record_pending_requests(record_id=record_id))
        left = [r for r in pending if r.spans_other_records]
        # Four eyes, all or none: one request the curator may not decide stops them all.
        for tier_request in pending:
            refusal = (
                None
                if tier_request.spans_other_records
                else tier_decision_refusal(actor, tier_request)
            )
            if refusal:
                raise PermissionDenied(f"#{tier_request.pk}: {refusal}")
        for tier_request in pending:
            if tier_request.spans_other_records:
                continue
            try:
                decided.append(
                    tier_request_decide(
                        actor=actor,
                        tier_request_id=tier_request.pk,
                        approve=approve,
                        comment=comment,
                        ip_address=ip_address,
                    )
                )
            except RequestAlreadyDecided:
                continue
        if not decided and left:
            raise ValidationError({"decision": requests_left_message(left)})
        if not decided:
            raise ValidationError(
                {"decision": _("This record has no tier change requests waiting for a curator.")}
            )
    return RecordDecision(decided=decided, left=left)


def embargoes_lift(*, today: datetime.date | None = None) -> int:
    """Make public every embargoed object whose available date has come — the tier its
    row of the tier table is ``lifted_to`` (Celery beat).

    Each object is changed through :func:`data_object_tier_apply` and audited as
    ``embargo_lifted``; a second run finds nothing to do and writes nothing. Returns how
    many objects were opened.
    """
    today = today or timezone.localdate()
    due = DataObject.objects.filter(tier__in=dated_tiers(), available_date__lte=today).exclude(
        status=DataObject.Status.DELETED
    )
    lifted = 0
    for pk in list(due.order_by("available_date", "pk").values_list("pk", flat=True)):
        with transaction.atomic():
            data_object = (
                due.select_for_update(skip_locked=True).filter(pk=pk).first()
            )  # skip one a steward is changing right now: the next run takes it
            if data_object is None:
                continue
            lifted += data_object_tier_apply(
                actor=None,
                data_object=data_object,
                tier=tier_rule(data_object.tier).lifted_to,
                available_date=data_object.available_date,
                action=AuditEvent.Action.EMBARGO_LIFTED,
                detail=Message("tier.embargo_lifted"),
            )
    return lifted
