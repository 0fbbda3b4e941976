"""Reads for pages: every data object comes through :mod:`repository.access`."""

import datetime

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from accounts.models import Membership, Project, Role
from accounts.roles import UPLOADER_ROLES, ProjectAction, may, project_role
from core.tiers import Downloaders, dated_tiers, downloaded_by
from core.vocabularies import Tier
from dmp.models import DmpRecord
from repository.access import Action, records_visible_to, visible_to, with_permissions
from repository.governance.tiers import REASON_NEEDED
from repository.models import DataObject, RequestStatus, TierChangeRequest
from repository.preservation.fixity import CHECKSUM_FILTER_LABELS, CHECKSUM_FILTERS


def data_object_list(*, user, project: Project | None = None) -> QuerySet:
    """Stored objects ``user`` may see, newest first, with permission flags for the page
    (an upload in flight is listed only on its uploader's "My uploads" and upload page)."""
    objects = visible_to(user, Action.VIEW_METADATA).filter(status=DataObject.Status.STORED)
    if project is not None:
        objects = objects.filter(project=project)
    objects = objects.select_related("record", "uploaded_by")
    return with_permissions(objects, user, Action.DOWNLOAD, Action.EDIT)


def recent_public_objects(*, user, limit: int = 10) -> list[DataObject]:
    """The newest objects anyone may download, for the home page, each with ``landing``:
    whether its record's landing page opens for ``user`` (described, metadata readable,
    not withdrawn), where the page sends a visitor; else the object's own page."""
    anonymous_view = visible_to(user, Action.DOWNLOAD).filter(
        tier__in=downloaded_by(Downloaders.EVERYONE)
    )
    landing = records_visible_to(user).filter(pk=OuterRef("record_id"), withdrawn_at__isnull=True)
    return list(
        anonymous_view.select_related("project", "record")
        .annotate(landing=Exists(landing))
        .order_by("-stored_at", "-pk")[:limit]
    )


def member_projects(*, user) -> QuerySet:
    """Projects ``user`` is a member of, for the home page (none for anonymous users)."""
    if not user.is_authenticated:
        return Project.objects.none()
    return (
        Project.objects.filter(memberships__user=user)
        .select_related("institution")
        .order_by("name_en", "name_ja", "pk")
    )


def project_page_context(*, user, project: Project, checksum: str | None = None) -> dict:
    """The project page; ``checksum`` (a key of :data:`CHECKSUM_FILTERS`) narrows the list
    of objects, not the summary."""
    objects = data_object_list(user=user, project=project)
    totals = objects.aggregate(count=Count("pk"), volume=Sum("size"))
    by_tier = dict(
        objects.order_by().values_list("tier").annotate(n=Count("pk")).values_list("tier", "n")
    )
    role = project_role(user, project)
    members = (
        Membership.objects.filter(project=project).select_related("user").order_by("role", "pk")
    )
    records = (
        records_visible_to(user)
        .filter(project=project)
        .annotate(
            object_count=Count("data_objects", filter=Q(data_objects__in=objects.values("pk")))
        )
    )
    listed = objects if checksum is None else objects.filter(CHECKSUM_FILTERS[checksum])
    return {
        "project": project,
        "objects": listed,
        "checksum_filter": checksum,
        "checksum_filter_label": CHECKSUM_FILTER_LABELS.get(checksum),
        "can_view_dashboard": may(user, ProjectAction.READ_DASHBOARD, project),
        "totals": totals,
        "by_tier": by_tier,
        "tier_counts": [
            {"tier": tier.value, "label": tier.label, "count": by_tier[tier.value]}
            for tier in Tier
            if tier.value in by_tier
        ],
        "role": role,
        "role_label": Role(role).label if role else None,
        "can_upload": role in UPLOADER_ROLES,
        "can_view_dmp": may(user, ProjectAction.READ_DMP, project),
        "members": members if role else Membership.objects.none(),
        "records": records,
        # Objects may be listed while their record's metadata is closed to this user.
        "readable_record_ids": {record.pk for record in records},
        "can_decide_access": may(user, ProjectAction.DECIDE_ACCESS, project),
        "can_view_audit_trail": may(user, ProjectAction.READ_AUDIT_TRAIL, project),
        "can_view_members": may(user, ProjectAction.READ_MEMBERS, project),
    }


# What static/js/uploader.js shows, in the page's language (rendered with json_script).
UPLOADER_STRINGS = {
    "uploading": pgettext_lazy("upload state", "uploading"),
    "uploadFailed": pgettext_lazy("upload state", "upload failed"),
    "interrupted": pgettext_lazy("upload state", "interrupted: press Upload to continue"),
    "interruptedGhost": pgettext_lazy(
        "upload state", "interrupted: add the same file again to continue"
    ),
    "pending": pgettext_lazy("checksum state", "pending"),
    # %(progress)s is replaced in the browser.
    "verifying": pgettext_lazy("checksum state", "verifying %(progress)s%%"),
    "verified": pgettext_lazy("checksum state", "verified"),
    "verifiedEndToEnd": pgettext_lazy("checksum state", "verified end to end"),
    "verifiedAtRest": pgettext_lazy("checksum state", "verified (at rest)"),
    "paused": pgettext_lazy("upload state", "paused"),
    "waiting": pgettext_lazy("upload state", "waiting: press Upload"),
    # %(progress)s is replaced in the browser.
    "hashing": _("SHA-256 in your browser: %(progress)s%%"),
    "hashed": _("SHA-256 computed in your browser"),
    "hashFailed": _("Your browser could not compute the SHA-256: checked at rest only."),
    "reselect": _("Choose the file again"),
    "reselectLabel": _("Choose %(name)s again to continue its upload"),
    "partRefused": _("The storage refused a part of this file. Try again."),
    "failed": pgettext_lazy("checksum state", "failed"),
    "preparing": _("Preparing the upload…"),
    "chooseRecord": _("Choose the DMP record for this batch before uploading."),
    "chooseDate": _("An embargo needs an available date in the future."),
    "chooseReason": _(REASON_NEEDED),
    "serverError": _("The server could not be reached or answered with an error. Try again."),
    "checksumUnavailable": _("The checksum state could not be read. Reload the page to see it."),
    "note": _("Any number of files. Large files go up in parts and can be paused and resumed."),
    "progressLabel": _("Upload progress of %(name)s"),
    "reviewPending": _("Stored as shared until a curator approves the requested tier."),
    "duplicate": _("The same bytes are already in this record:"),
    # %(id)s is replaced in the browser.
    "duplicateOriginal": _("object %(id)s"),
    "duplicateDecide": _("keep both or delete this copy"),
    # %(code)s is replaced in the browser (the character's hexadecimal code).
    "hiddenCharacter": _(
        "This file name contains an invisible or direction-changing character (U+%(code)s),"
        " which could make it look like another name. Rename the file and add it again."
    ),
}


def upload_page_context(*, user, project: Project) -> dict:
    """The upload page: the batch choices (record, tier) and the uploader's settings."""
    records = records_visible_to(user).filter(project=project).order_by("data_number", "pk")
    return {
        "project": project,
        "records": records,
        "tiers": Tier.choices,
        "default_tier": Tier.NON_SHARED,
        "earliest_available_date": timezone.localdate() + datetime.timedelta(days=1),
        "uploader_strings": UPLOADER_STRINGS,
        "uploader_config": {
            # One saved state per user and project, so a reload resumes the right batch.
            "uppy_id": f"kura-upload-{user.pk}-{project.pk}",
            "project": project.pk,
            "uploads_url": reverse("upload-list"),
            "objects_url": reverse("api-object-list"),
            "object_page_url": reverse("object-detail", args=[0]).replace("/0/", "/{id}/"),
            "max_file_size": settings.KURA_MAX_OBJECT_SIZE,
            "min_part_size": settings.KURA_UPLOAD_MIN_PART_SIZE,
            "max_parts": settings.KURA_UPLOAD_MAX_PARTS,
            "parts_per_file": settings.KURA_UPLOAD_PARTS_PER_FILE,
            "large_part_size": settings.KURA_UPLOAD_LARGE_PART_SIZE,
            "resume_hours": settings.KURA_UPLOAD_ABANDON_AFTER_HOURS,
            "reviewed_tiers": list(settings.KURA_REVIEWED_TIERS),
            "dated_tiers": list(dated_tiers()),
            # The hashing worker and the hash-wasm builds it loads (hashed names in production).
            "hasher_url": static("js/upload-hasher.js"),
            "hash_library_urls": [
                static("vendor/hash-wasm-4.13.0/md5.umd.min.js"),
                static("vendor/hash-wasm-4.13.0/sha256.umd.min.js"),
            ],
        },
    }


def object_record(*, user, data_object: DataObject) -> DmpRecord | None:
    """The object's DMP record, if ``user`` may read it."""
    if not data_object.record_id:
        return None
    return records_visible_to(user).filter(pk=data_object.record_id).first()


def object_pending_tier_requests(*, user, data_object: DataObject, can_edit: bool) -> QuerySet:
    """The pending tier change requests on the object, for those who may edit it
    (``can_edit``) and for curators; none for anyone else."""
    if not (can_edit or may(user, ProjectAction.REVIEW_TIERS)):
        return TierChangeRequest.objects.none()
    return data_object.tier_requests.filter(status=RequestStatus.PENDING).select_related(
        "requested_by"
    )


def object_duplicate_original(*, user, data_object: DataObject) -> DataObject | None:
    """The copy's original, only when ``user`` may see it (it may be another member's file
    they are not shown: then the copy is not said to be a duplicate)."""
    if not data_object.duplicate_of_id:
        return None
    return visible_to(user, Action.VIEW_METADATA).filter(pk=data_object.duplicate_of_id).first()
