"""Presenters: what a page shows, assembled into one dataclass, so its view stays a few
lines (access check, presenter, render).

A presenter reads through the selectors (every object through :mod:`repository.access`)
and builds the page's forms; the template reads the dataclass's fields as its context
(:func:`page_context`), under the names the templates have always used.
"""

from dataclasses import dataclass, fields
from typing import Any

from django.db.models import QuerySet

from accounts.roles import ProjectAction, may
from core.tiers import dated_tiers
from dmp.models import DmpRecord
from repository.access import permissions_for
from repository.forms import QuarantineClearForm, TierChangeForm
from repository.models import DataObject, FixityCheck
from repository.preservation.quarantine import quarantine_reverify_pending
from repository.previews.presenters import PreviewPanel, preview_panel
from repository.selectors import (
    object_duplicate_original,
    object_pending_tier_requests,
    object_record,
)

FIXITY_CHECKS_SHOWN = 10


def page_context(page) -> dict[str, Any]:
    """A page dataclass as a template context: one entry per field (not copied)."""
    return {f.name: getattr(page, f.name) for f in fields(page)}


@dataclass(frozen=True)
class ObjectPage:
    """The object page (``repository/object_detail.html``)."""

    object: DataObject
    record: DmpRecord | None
    permissions: dict[str, bool]
    duplicate_original: DataObject | None
    fixity_checks: list[FixityCheck]
    tier_form: TierChangeForm | None  # stewards only
    pending_tier_requests: QuerySet
    can_review: bool
    # Curators only: {"pending", "form", "last_check"} of a quarantined object.
    quarantine: dict[str, Any] | None
    dated_tiers: tuple[str, ...]  # tiers shown with their available date
    preview: PreviewPanel | None  # to those who may see it (Action.PREVIEW)


def object_page(
    *,
    user,
    data_object: DataObject,
    tier_form: TierChangeForm | None = None,
    quarantine_form: QuarantineClearForm | None = None,
) -> ObjectPage:
    """The object page; stewards get the tier form (``tier_form``: a bound one to show its
    errors), and they and curators see the pending tier change requests on the object.
    Curators see a quarantined object's reason and either its pending re-verification or
    the form to ask for one (``quarantine_form``)."""
    record = object_record(user=user, data_object=data_object)
    permissions = permissions_for(user, data_object)
    may_change_tier = permissions["can_edit"]  # only stored objects are editable
    if may_change_tier and tier_form is None:
        tier_form = TierChangeForm(
            initial={"tier": data_object.tier, "available_date": data_object.available_date}
        )
    pending_requests = object_pending_tier_requests(
        user=user, data_object=data_object, can_edit=permissions["can_edit"]
    )
    can_review = may(user, ProjectAction.REVIEW_TIERS)
    fixity_checks = list(data_object.fixity_checks.all()[:FIXITY_CHECKS_SHOWN])
    quarantine = None
    if can_review and (data_object.is_quarantined or quarantine_form is not None):
        pending = quarantine_reverify_pending(data_object)
        if quarantine_form is None and not pending:
            quarantine_form = QuarantineClearForm()
        quarantine = {
            "pending": pending,
            "form": quarantine_form,
            "last_check": fixity_checks[0] if fixity_checks else None,
        }
    return ObjectPage(
        object=data_object,
        record=record,
        permissions=permissions,
        duplicate_original=object_duplicate_original(user=user, data_object=data_object),
        fixity_checks=fixity_checks,
        tier_form=tier_form if may_change_tier else None,
        pending_tier_requests=pending_requests,
        can_review=can_review,
        quarantine=quarantine,
        dated_tiers=dated_tiers(),
        preview=preview_panel(data_object=data_object, may_preview=permissions["can_preview"]),
    )
