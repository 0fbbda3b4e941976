"""Requests someone decides: one workflow for tier changes and access requests.

A :class:`~repository.models.ReviewedRequest` is decided once. A curator approves or rejects a tier
change request (:mod:`repository.governance.tiers`), the project's PM or a data manager an access
request (:mod:`repository.governance.grants`), and Kura cancels a tier change request that a direct
change or a deletion has made moot. Every decision goes the same way, inside the caller's
transaction:

* :func:`pending_request_lock` locks the request and checks it again under the lock: gone
  (``Http404``), decided meanwhile (:class:`RequestAlreadyDecided`, nothing changed) or
  not the actor's to decide (four eyes, ``PermissionDenied``);
* :func:`request_decide` writes the status, the decider, the time and the comment, audits
  it the way the caller says (per object for a tier change, on the record for access) and,
  once the transaction commits, has the people concerned e-mailed
  (:func:`repository.governance.notify.notice_on_commit`);
* :func:`request_cancel` is a decision that tells nobody.

What a kind of request does besides (apply tiers, create a grant) stays in its module.
"""

from collections.abc import Callable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from repository.governance.notify import notice_on_commit
from repository.models import RequestStatus, ReviewedRequest


class RequestAlreadyDecided(ValidationError):
    """Someone decided the request first; nothing was changed."""

    @classmethod
    def of(cls, request: ReviewedRequest) -> "RequestAlreadyDecided":
        return cls(request.already_decided_message(), code="already_decided")


def pending_request_lock(
    requests: QuerySet,
    pk,
    *,
    actor,
    refusal: Callable[[object, ReviewedRequest], str | None],
    missing: str,
) -> ReviewedRequest:
    """The request ``pk`` of ``requests``, locked (``select_for_update``) and still pending.

    ``Http404`` (with ``missing``) when there is none, :class:`RequestAlreadyDecided` when
    it was decided, ``PermissionDenied`` when ``refusal(actor, request)`` gives a reason
    (the four-eyes rules of :mod:`repository.access`).
    """
    try:
        request = requests.select_for_update(of=("self",)).get(pk=pk)
    except (requests.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(missing) from exc
    if request.status != RequestStatus.PENDING:
        raise RequestAlreadyDecided.of(request)
    reason = refusal(actor, request)
    if reason:
        raise PermissionDenied(reason)
    return request


def decision_change(request: ReviewedRequest, status: str | None = None, **after) -> dict:
    """The ``before`` and ``after`` of a decision's audit event: pending, then ``status``
    (by default the request's), with the facts in ``after``."""
    return {
        "before": {"request": request.pk, "status": RequestStatus.PENDING},
        "after": {"request": request.pk, "status": status or request.status, **after},
    }


def request_decide(
    request: ReviewedRequest,
    *,
    actor,
    status: RequestStatus,
    comment: str,
    audit: Callable[[ReviewedRequest], None],
    notice: str | None,
) -> None:
    """Record the decision on a locked pending request, then ``audit(request)`` and, once
    committed, send the ``notice`` about it (none when ``None``).

    ``actor`` is the decider; an anonymous or missing one (Kura itself) is stored as none.
    """
    request.status = status
    request.decided_by = actor if actor is not None and actor.is_authenticated else None
    request.decided_at = timezone.now()
    request.decision_comment = comment
    request.save(update_fields=list(request.DECISION_FIELDS))
    audit(request)
    if notice:
        notice_on_commit(notice, request_id=request.pk)


def request_cancel(
    request: ReviewedRequest, *, actor, comment: str, audit: Callable[[ReviewedRequest], None]
) -> None:
    """Cancel a locked pending request (the change it asked for is moot): a decision,
    audited, that nobody is told of."""
    request_decide(
        request,
        actor=actor,
        status=RequestStatus.CANCELLED,
        comment=comment,
        audit=audit,
        notice=None,
    )
