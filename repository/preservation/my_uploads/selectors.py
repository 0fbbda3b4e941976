"""Reads behind "My uploads": the signed-in user's upload sessions across projects.

Every upload a user starts has an :class:`~repository.models.UploadSession`; the page
sorts them into five groups by what the user can do next:

* **in flight** — still ``uploading`` and active within the life of a part URL
  (``KURA_UPLOAD_PART_URL_EXPIRY``: a sender that asked for none since then holds no
  valid URL, so it has stopped), with the share of parts the storage holds;
* **interrupted** — still ``uploading`` but idle longer than that: the same file added
  again on the project's upload page sends only the missing parts, until the idle-abort
  sweep (:func:`repository.preservation.housekeeping.uploads_abandon_idle`) gives up on it;
* **failed** — ``abandoned`` (with the session's ``failure_reason``), or stored but its
  checksum failed (the file is quarantined);
* **verifying** — stored, checksum ``pending`` or ``verifying`` (with its progress);
* **verified** — with its integrity (end to end or at rest), a page at a time.

Deleted objects are left out: their uploader deleted them or saw them deleted. Only the
user's own sessions are read (``created_by``), so nothing here needs the object access
rules except the links, which :mod:`repository.access` decides. The storage is asked
only for the parts of a few uploads still ``uploading``; it being down costs those rows
their progress, never the page.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from repository.access import Action, visible_to
from repository.models import DataObject, UploadSession
from repository.preservation.object_store import NoSuchUpload, StoreError, object_store

logger = logging.getLogger(__name__)

# Rows shown in each group but "verified" (which is paged): the newest first.
GROUP_LIMIT = 50
VERIFIED_PAGE_SIZE = 50
# Uploads whose stored parts are counted per page view (each costs a storage request).
PROGRESS_LOOKUPS = 20


@dataclass(frozen=True)
class UploadRow:
    """One upload as the page shows it."""

    session: UploadSession
    # Stored parts and their share of the upload; None when not asked or not known.
    parts_stored: int | None = None
    percent: int | None = None

    @property
    def data_object(self) -> DataObject:
        return self.session.data_object


@dataclass(frozen=True)
class UploadGroup:
    rows: list[UploadRow]
    # How many uploads the group holds (more than len(rows) when capped).
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass(frozen=True)
class MyUploads:
    in_flight: UploadGroup
    interrupted: UploadGroup
    failed: UploadGroup
    verifying: UploadGroup
    verified: Page
    # Whether the storage could not say how far some uploads got.
    progress_unavailable: bool
    resume_hours: int

    @property
    def empty(self) -> bool:
        return not any(
            (
                self.in_flight.total,
                self.interrupted.total,
                self.failed.total,
                self.verifying.total,
                self.verified.paginator.count,
            )
        )


_STORED = Q(data_object__status=DataObject.Status.STORED)
_CHECKSUM_FAILED = _STORED & (
    Q(data_object__checksum_state=DataObject.ChecksumState.FAILED)
    | Q(data_object__quarantined_at__isnull=False)
)
_CHECKING = [DataObject.ChecksumState.PENDING, DataObject.ChecksumState.VERIFYING]


def _group_filters(now: datetime) -> dict[str, Q]:
    active_since = now - timedelta(seconds=settings.KURA_UPLOAD_PART_URL_EXPIRY)
    uploading = Q(data_object__status=DataObject.Status.UPLOADING, completed_at__isnull=True)
    sound = _STORED & ~_CHECKSUM_FAILED
    return {
        "in_flight": uploading & Q(last_activity_at__gte=active_since),
        "interrupted": uploading & Q(last_activity_at__lt=active_since),
        "failed": Q(data_object__status=DataObject.Status.ABANDONED) | _CHECKSUM_FAILED,
        "verifying": sound & Q(data_object__checksum_state__in=_CHECKING),
        "verified": sound & Q(data_object__checksum_state=DataObject.ChecksumState.VERIFIED),
    }


def upload_sessions_of(*, user) -> QuerySet:
    """``user``'s upload sessions, newest first, each with its object, project and record,
    and ``can_open``: whether ``user`` may open the object's page."""
    openable = visible_to(user, Action.VIEW_METADATA).filter(pk=OuterRef("data_object_id"))
    return (
        UploadSession.objects.filter(created_by=user, data_object__uploaded_by=user)
        .select_related("data_object__project", "data_object__record")
        .annotate(can_open=Exists(openable))
        .order_by("-created_at", "-pk")
    )


def _capped(sessions: QuerySet) -> tuple[list[UploadSession], int]:
    rows = list(sessions[: GROUP_LIMIT + 1])
    if len(rows) <= GROUP_LIMIT:
        return rows, len(rows)
    return rows[:GROUP_LIMIT], sessions.count()


def _with_progress(sessions: list[UploadSession]) -> tuple[list[UploadRow], bool]:
    """Rows with the share of parts stored, for the first ``PROGRESS_LOOKUPS`` sessions.

    Answers the rows and whether the storage failed to answer for some. After a failure
    other than an unknown upload the storage is not asked again: it is likely down, and
    every further request would only make the page wait."""
    rows, unavailable = [], False
    store = object_store()
    for index, session in enumerate(sessions):
        if index >= PROGRESS_LOOKUPS or unavailable:
            rows.append(UploadRow(session))
            continue
        try:
            parts = store.list_parts(session.data_object.storage_key, session.upload_id)
        except NoSuchUpload:
            rows.append(UploadRow(session))
            continue
        except StoreError as exc:
            logger.warning("my uploads: parts of upload %s not listed: %s", session.pk, exc)
            unavailable = True
            rows.append(UploadRow(session))
            continue
        # A store may list one part number twice (SeaweedFS keeps both copies of a resent
        # part): count each number once.
        stored = len({p.part_number for p in parts if 1 <= p.part_number <= session.part_count})
        percent = stored * 100 // session.part_count if session.part_count else 0
        rows.append(UploadRow(session, parts_stored=stored, percent=percent))
    return rows, unavailable


def my_uploads(*, user, page_number=None, now: datetime | None = None) -> MyUploads:
    """Everything "My uploads" shows for ``user`` (see the module docstring)."""
    now = now or timezone.now()
    sessions = upload_sessions_of(user=user)
    filters = _group_filters(now)
    in_flight, in_flight_total = _capped(sessions.filter(filters["in_flight"]))
    interrupted, interrupted_total = _capped(sessions.filter(filters["interrupted"]))
    rows, unavailable = _with_progress(in_flight + interrupted)
    groups = {
        "in_flight": UploadGroup(rows[: len(in_flight)], in_flight_total),
        "interrupted": UploadGroup(rows[len(in_flight) :], interrupted_total),
    }
    for name in ("failed", "verifying"):
        capped, total = _capped(sessions.filter(filters[name]))
        groups[name] = UploadGroup([UploadRow(s) for s in capped], total)
    verified = Paginator(sessions.filter(filters["verified"]), VERIFIED_PAGE_SIZE).get_page(
        page_number
    )
    return MyUploads(
        **groups,
        verified=verified,
        progress_unavailable=unavailable,
        resume_hours=settings.KURA_UPLOAD_ABANDON_AFTER_HOURS,
    )
