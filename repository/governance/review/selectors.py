"""Reads for the curator's review queue of tier change requests."""

import datetime
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from dmp.models import DmpRecord
from repository.governance.tiers import (
    record_pending_requests,
    tier_change_blockers,
    tier_change_blockers_of,
)
from repository.models import DataObject, RequestStatus, TierChangeRequest

PAGE_SIZE = 25
# Technical metadata shown per object on the detail page: the rest is on the object page.
TECHMETA_SUMMARY_FIELDS = 4

# Flagged for the curator: personal data on the object or its record, or a record whose
# personal-data state is unknown (which blocks opening exactly as yes does).
PERSONAL_DATA = (
    Q(contains_personal_data=True)
    | Q(record__contains_personal_data=True)
    | Q(record__isnull=False, record__contains_personal_data__isnull=True)
)


@dataclass(frozen=True)
class QueueFilters:
    project_id: int | None = None
    tier: str | None = None
    older_than_days: int | None = None
    personal_data: bool | None = None


def tier_request_queue(*, filters: QueueFilters, now: datetime.datetime | None = None) -> QuerySet:
    """Pending requests, oldest first, with their object count, volume and whether any
    object or its record is flagged as containing personal data (or its record's state is
    unknown)."""
    flagged = DataObject.objects.filter(PERSONAL_DATA, tier_requests=OuterRef("pk"))
    requests = (
        TierChangeRequest.objects.filter(status=RequestStatus.PENDING)
        .select_related("project", "requested_by")
        .annotate(
            object_count=Count("data_objects"),
            total_size=Sum("data_objects__size"),
            has_personal_data=Exists(flagged),
        )
        .order_by("created_at", "pk")
    )
    if filters.project_id is not None:
        requests = requests.filter(project_id=filters.project_id)
    if filters.tier:
        requests = requests.filter(requested_tier=filters.tier)
    if filters.older_than_days is not None:
        now = now or timezone.now()
        requests = requests.filter(
            created_at__lte=now - datetime.timedelta(days=filters.older_than_days)
        )
    if filters.personal_data is not None:
        requests = requests.filter(has_personal_data=filters.personal_data)
    return requests


def tier_request_queue_page(*, filters: QueueFilters, page_number) -> Page:
    return Paginator(tier_request_queue(filters=filters), PAGE_SIZE).get_page(page_number)


def projects_with_requests() -> QuerySet:
    """Projects that have ever asked for a tier change: the queue's project filter."""
    from accounts.models import Project

    return Project.objects.filter(
        Exists(TierChangeRequest.objects.filter(project=OuterRef("pk")))
    ).order_by("name_en", "name_ja", "pk")


@dataclass(frozen=True)
class ReviewedObject:
    data_object: DataObject
    blockers: list[str]
    techmeta_summary: list[tuple[str, object]]


def tier_request_detail_context(*, tier_request: TierChangeRequest) -> dict:
    """Everything a curator weighs: the objects with their integrity, personal-data flags
    and blocking reasons (from the service's own check), the records' declarations."""
    objects = list(tier_request.data_objects.select_related("record", "uploaded_by").order_by("pk"))
    reviewed = [
        ReviewedObject(
            data_object=o,
            blockers=tier_change_blockers(
                o, tier=tier_request.requested_tier, available_date=tier_request.available_date
            ),
            techmeta_summary=list(o.technical_metadata.items())[:TECHMETA_SUMMARY_FIELDS],
        )
        for o in objects
    ]
    records = list(
        DmpRecord.objects.filter(pk__in={o.record_id for o in objects if o.record_id}).order_by(
            "data_number", "pk"
        )
    )
    for record in records:
        # What "decide all for this record" would decide, and which requests it would leave.
        pending = list(
            record_pending_requests(record_id=record.pk).prefetch_related(
                Prefetch("data_objects", queryset=DataObject.objects.select_related("record"))
            )
        )
        record.pending_requests = len(pending)
        record.spanning_requests = [r for r in pending if r.spans_other_records]
        record.decidable_requests = len(pending) - len(record.spanning_requests)
        # Approving all is all or none: one object that may not open as asked refuses it.
        # The same check tier_request_decide makes, on objects fetched once for all.
        record.approval_blocked = any(
            tier_change_blockers_of(
                r.data_objects.all(), tier=r.requested_tier, available_date=r.available_date
            )
            for r in pending
            if not r.spans_other_records
        )
        # The DMP coverage's rule: declared access rights and a tier disagree when they differ.
        record.contradicts_request = record.access_rights != tier_request.requested_tier
    return {
        "tier_request": tier_request,
        "objects": reviewed,
        "records": records,
        "blocked": any(o.blockers for o in reviewed),
        "contradicting_records": [r for r in records if r.contradicts_request],
        "total_size": sum(o.size for o in objects),
    }
