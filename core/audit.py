"""The audit trail as every app writes to it.

The trail (``repository.models.AuditEvent``, append-only) and its writer live in
``repository``, which reads and exports it. Apps below ``repository`` (``dmp``: plan and
record edits, imports) write to it through :func:`audit_record` without importing an app
above them: ``repository`` registers its writer when it starts
(``RepositoryConfig.ready``). The event is written in the caller's transaction, so a
change rolled back leaves no event. See docs/architecture.md, "Audit trail".
"""

from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditAction(models.TextChoices):
    TIER_CHANGED = "tier_changed", _("Tier changed")
    TIER_REQUESTED = "tier_requested", _("Tier change requested")
    TIER_DECIDED = "tier_decided", _("Tier change decided")
    GRANT_CREATED = "grant_created", _("Access granted")
    GRANT_REVOKED = "grant_revoked", _("Access revoked")
    DOWNLOAD = "download", _("Download of non-public data")
    DELETED = "deleted", _("Deleted")
    FIXITY_FAILED = "fixity_failed", _("Fixity failure")
    QUARANTINE_REVERIFY_REQUESTED = (
        "quarantine_reverify_requested",
        _("Quarantine re-verification requested"),
    )
    QUARANTINE_CLEARED = "quarantine_cleared", _("Quarantine cleared")
    DUPLICATE_KEPT = "duplicate_kept", _("Duplicate kept")
    EMBARGO_LIFTED = "embargo_lifted", _("Embargo lifted")
    UPLOAD_STARTED = "upload_started", _("Upload started")
    UPLOAD_COMPLETED = "upload_completed", _("Upload completed")
    UPLOAD_ABORTED = "upload_aborted", _("Upload aborted")
    ACCESS_REQUEST_REJECTED = "access_request_rejected", _("Access request rejected")
    PLAN_EDITED = "plan_edited", _("Data management plan edited")
    RECORD_CREATED = "record_created", _("DMP record created")
    RECORD_EDITED = "record_edited", _("DMP record edited")
    RECORDS_IMPORTED = "records_imported", _("DMP records imported")
    VERSION_PUBLISHED = "version_published", _("Version published")
    RECORD_WITHDRAWN = "record_withdrawn", _("Dataset withdrawn")
    DOI_REGISTERED = "doi_registered", _("DOI registered")
    DOI_FAILED = "doi_failed", _("DOI registration failed")
    PROJECT_CREATED = "project_created", _("Project created")
    MEMBER_INVITED = "member_invited", _("Member invited")
    INVITATION_ACCEPTED = "invitation_accepted", _("Invitation accepted")
    INVITATION_REVOKED = "invitation_revoked", _("Invitation revoked")
    MEMBER_ROLE_CHANGED = "member_role_changed", _("Member's role changed")
    MEMBER_REMOVED = "member_removed", _("Member removed")


_writer: Callable | None = None


def audit_writer_register(writer: Callable) -> None:
    """Make ``writer`` (keyword arguments of :func:`audit_record`) the trail's writer."""
    global _writer
    _writer = writer


def audit_record(*, actor, action: AuditAction, **about):
    """Append one event to the audit trail: who (``actor``), what (``action``), about which
    object, record or project, with ``before``/``after``/``detail``/``ip_address`` as the
    registered writer takes them (``repository.services.audit_event_record``)."""
    if _writer is None:
        raise ImproperlyConfigured("No audit trail: the repository app is not installed.")
    return _writer(actor=actor, action=action, **about)
