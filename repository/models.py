import re
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from accounts.models import Project
from core.audit import AuditAction
from core.generations import (
    PROJECT,
    RECORD,
    RECORD_FILES,
    CatalogueQuerySet,
    ScopeTracking,
    scoped_by,
)
from core.machine_text import MachineTextField
from core.tiers import beyond_project
from core.vocabularies import Tier
from dmp.models import DmpRecord


def new_storage_key() -> str:
    """A random object key: never derived from the file name."""
    key = uuid.uuid4().hex
    return f"objects/{key[:2]}/{key}"


def _project_scoped(values: dict) -> list:
    """The generation of the project a row belongs to (core.generations)."""
    project_id = values.get("project_id", values.get("record__project_id"))
    return [PROJECT.of(project_id)] if project_id is not None else []


class ProjectActivityQuerySet(CatalogueQuerySet):
    """Requests and audit events: what a project's dashboard lists. A write moves only that
    project's generation (core.generations)."""

    generation = None
    scope_fields = ("project_id",)
    scoped = staticmethod(_project_scoped)


class RecordActivityQuerySet(ProjectActivityQuerySet):
    """Access requests and grants, which belong to a project through their record."""

    scope_fields = ("record__project_id",)


class DataObjectQuerySet(CatalogueQuerySet):
    # Columns no public page shows: updating only these leaves cached pages alone.
    quiet_fields = frozenset(
        {"checksum_progress", "last_fixity_at", "checksum_unsent", "checksum_missing_tries"}
    )
    # A write moves the generations of the object's record (its landing page) and of its
    # project (its dashboard), not the whole catalogue's (core.generations); and, while
    # the object is (or was, before the write) on a tier open beyond the project, the
    # record's own generation: what harvesters see of the record (its OAI-PMH datestamp).
    generation = None
    scope_fields = ("record_id", "project_id", "tier")

    @staticmethod
    def scoped(values: dict) -> list:
        record_id = values.get("record_id")
        if record_id is None:
            return _project_scoped(values)
        shown = [RECORD.of(record_id)] if values.get("tier") in beyond_project() else []
        return [RECORD_FILES.of(record_id), *shown, *_project_scoped(values)]


class DataObject(ScopeTracking):
    """One stored file of managed data."""

    class Status(models.TextChoices):
        UPLOADING = "uploading", _("Uploading")
        STORED = "stored", _("Stored")
        ABANDONED = "abandoned", _("Abandoned")
        DELETED = "deleted", _("Deleted")

    class ChecksumState(models.TextChoices):
        PENDING = "pending", _("Pending")
        VERIFYING = "verifying", _("Verifying")
        VERIFIED = "verified", _("Verified")
        FAILED = "failed", _("Failed")

    class PreviewState(models.TextChoices):
        """What became of the preview (repository/previews/), made after the checksum."""

        NONE = "none", _("No preview")  # a format Kura does not preview
        PENDING = "pending", _("Being prepared")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not previewed")  # too large, or no decoder: see the reason

    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="data_objects", verbose_name=_("project")
    )
    record = models.ForeignKey(
        DmpRecord,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="data_objects",
        verbose_name=_("DMP record"),
        help_text=_("Empty only while the object is being described."),
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="uploaded_objects",
        verbose_name=_("uploaded by"),
    )
    storage_key = models.CharField(_("storage key"), max_length=255, unique=True, editable=False)
    original_filename = models.CharField(_("file name"), max_length=255)
    size = models.BigIntegerField(_("size (bytes)"))
    content_type = models.CharField(_("content type"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.UPLOADING
    )
    tier = models.CharField(_("tier"), max_length=16, choices=Tier.choices, default=Tier.NON_SHARED)
    available_date = models.DateField(
        _("available date"), null=True, blank=True, help_text=_("When an embargo lifts.")
    )
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    md5 = models.CharField(_("MD5"), max_length=32, blank=True)
    checksum_state = models.CharField(
        _("checksum state"),
        max_length=16,
        choices=ChecksumState.choices,
        default=ChecksumState.PENDING,
    )
    checksum_progress = models.PositiveSmallIntegerField(
        _("checksum progress (%)"), default=0, help_text=_("How far the running verification is.")
    )
    checksum_unsent = models.BooleanField(
        _("checksum not queued yet"),
        default=False,
        help_text=_(
            "The broker was away when the checksum was to be queued: beat's requeue sends it"
            " as soon as the broker is back."
        ),
    )
    checksum_missing_tries = models.PositiveSmallIntegerField(
        _("reads that found no stored file"),
        default=0,
        help_text=_(
            "First verification only: after KURA_CHECKSUM_MISSING_TRIES such reads the object"
            " is quarantined and reported as missing."
        ),
    )
    client_sha256 = models.CharField(
        _("SHA-256 given by the uploader"),
        max_length=64,
        blank=True,
        help_text=_("Cross-checked against the SHA-256 Kura computes from the stored bytes."),
    )
    client_parts_sha256 = models.CharField(
        _("SHA-256 of the parts given by the uploader"),
        max_length=64,
        blank=True,
        help_text=_(
            "The SHA-256 of the SHA-256 digests of the upload's parts, in part order (a browser"
            " hashes each part as it reads it); cross-checked against the stored bytes cut at"
            " the same part size."
        ),
    )
    client_part_size = models.PositiveBigIntegerField(
        _("part size of the uploader's part digests"), null=True, blank=True
    )
    duplicate_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="duplicates",
        verbose_name=_("duplicate of"),
        help_text=_(
            "An object of the same record (or, without a record, of the same project) that"
            " already held the same bytes when this one was verified; cleared when the"
            " uploader keeps both."
        ),
    )
    quarantined_at = models.DateTimeField(_("quarantined at"), null=True, blank=True)
    quarantine_reason = MachineTextField(_("quarantine reason"), blank=True)
    technical_metadata = models.JSONField(_("technical metadata"), default=dict, blank=True)
    contains_personal_data = models.BooleanField(_("contains personal data"), default=False)
    preview_state = models.CharField(
        _("preview state"), max_length=8, choices=PreviewState.choices, default=PreviewState.NONE
    )
    # What the preview worker derived (repository/previews/): the image planes and their
    # sizes, or a sequencing file's summary. The derived files themselves are in storage
    # beside the object (previews.keys), never counted in ``size``.
    preview = models.JSONField(_("preview"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    stored_at = models.DateTimeField(_("stored at"), null=True, blank=True)
    last_fixity_at = models.DateTimeField(_("last fixity check"), null=True, blank=True)

    objects = DataObjectQuerySet.as_manager()

    class Meta:
        verbose_name = _("data object")
        verbose_name_plural = _("data objects")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(size__gte=0), name="dataobject_size_nonneg"),
            models.CheckConstraint(
                condition=~models.Q(tier=Tier.EMBARGOED) | models.Q(available_date__isnull=False),
                name="dataobject_embargo_has_date",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "tier"]),
            models.Index(fields=["status", "tier"]),
            models.Index(fields=["checksum_state"]),
            models.Index(fields=["tier", "available_date"], name="dataobject_embargo_idx"),
            models.Index(fields=["last_fixity_at"], name="dataobject_fixity_idx"),
            # Beat's requeue looks for previews left pending every minute: few rows.
            models.Index(
                fields=["last_fixity_at"],
                condition=models.Q(preview_state="pending"),
                name="dataobject_preview_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.original_filename

    def save(self, *args, **kwargs):
        if not self.storage_key:
            self.storage_key = new_storage_key()
        super().save(*args, **kwargs)

    def quiet_when_created(self) -> bool:
        """A new upload in flight is on no cached page (pages list stored files only), so
        its creation bumps no generation (core.generations.watch)."""
        return self.status == self.Status.UPLOADING

    @property
    def is_quarantined(self) -> bool:
        return self.quarantined_at is not None

    @property
    def embargo_lifted(self) -> bool:
        return self.available_date is not None and self.available_date <= timezone.localdate()

    @property
    def integrity(self) -> str | None:
        """How far "verified" reaches: ``end_to_end`` when the uploader's SHA-256 (of the
        file, or of its parts) matched the stored bytes, ``at_rest`` when the uploader sent
        none (only the stored bytes were hashed), ``None`` while not verified (a mismatch
        never ends verified)."""
        if self.checksum_state != self.ChecksumState.VERIFIED:
            return None
        if self.client_sha256 or self.client_parts_sha256:
            return Integrity.END_TO_END
        return Integrity.AT_REST


class Integrity(models.TextChoices):
    """What a verified checksum vouches for (:attr:`DataObject.integrity`)."""

    END_TO_END = "end_to_end", _("Verified end to end: the uploader's SHA-256 matched")
    AT_REST = "at_rest", _("Verified at rest: no digest was sent by the uploader")


class UploadSession(models.Model):
    """One multipart upload in flight."""

    data_object = models.OneToOneField(
        DataObject,
        on_delete=models.CASCADE,
        related_name="upload_session",
        verbose_name=_("data object"),
    )
    upload_id = models.CharField(_("upload id"), max_length=1024)
    part_size = models.PositiveBigIntegerField(_("part size"))
    part_count = models.PositiveIntegerField(_("part count"))
    requested_tier = models.CharField(
        _("requested tier"),
        max_length=16,
        choices=Tier.choices,
        blank=True,
        help_text=_("A tier that needs a curator: requested when the upload completes."),
    )
    requested_available_date = models.DateField(
        _("requested available date"), null=True, blank=True
    )
    requested_reason = models.TextField(
        _("requested reason"),
        blank=True,
        help_text=_("Why the uploader asks for the reviewed tier: the request's reason."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="upload_sessions",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_activity_at = models.DateTimeField(_("last activity at"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires at"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    failure_reason = models.TextField(
        _("failure reason"),
        blank=True,
        help_text=_(
            "Why the upload was abandoned, in English (translated when shown): one of"
            " the UploadSession.FAILURE_* sentences."
        ),
    )

    # Why an upload was abandoned. Stored in English, shown translated (failure_reason_display).
    FAILURE_IDLE = gettext_noop("No activity for %(hours)s hours.")
    FAILURE_ABORTED = gettext_noop("Aborted by the uploader.")
    FAILURE_LEFT = gettext_noop("Aborted: the uploader left the project.")
    _FAILURE_IDLE_STORED = re.compile(r"^No activity for (?P<hours>\d+) hours\.$")

    class Meta:
        verbose_name = _("upload session")
        verbose_name_plural = _("upload sessions")
        indexes = [models.Index(fields=["completed_at", "last_activity_at"])]

    def __str__(self) -> str:
        return f"upload {self.pk} of {self.data_object}"

    @classmethod
    def failure_idle(cls, hours: int) -> str:
        """The stored reason of an upload the idle sweep aborted after ``hours``."""
        return cls.FAILURE_IDLE % {"hours": hours}

    @property
    def failure_reason_display(self) -> str:
        """:attr:`failure_reason` in the current language (other text as it was stored)."""
        reason = self.failure_reason.strip()
        if reason in (self.FAILURE_ABORTED, self.FAILURE_LEFT):
            return gettext(reason)
        idle = self._FAILURE_IDLE_STORED.match(reason)
        if idle:
            return gettext(self.FAILURE_IDLE) % {"hours": idle["hours"]}
        return reason


class FixityCheck(models.Model):
    """One checksum verification of a stored object."""

    class Outcome(models.TextChoices):
        MATCH = "match", _("Match")
        MISMATCH = "mismatch", _("Mismatch")
        ERROR = "error", _("Error")

    data_object = models.ForeignKey(
        DataObject,
        on_delete=models.CASCADE,
        related_name="fixity_checks",
        verbose_name=_("data object"),
    )
    checked_at = models.DateTimeField(_("checked at"), default=timezone.now)
    outcome = models.CharField(_("outcome"), max_length=16, choices=Outcome.choices)
    sha256 = models.CharField(_("sha256"), max_length=64, blank=True)
    md5 = models.CharField(_("md5"), max_length=32, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    detail = MachineTextField(_("detail"), blank=True)

    class Meta:
        verbose_name = _("fixity check")
        verbose_name_plural = _("fixity checks")
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["data_object", "-checked_at"])]

    def __str__(self) -> str:
        return f"{self.data_object} {self.outcome} {self.checked_at:%Y-%m-%d}"


class RequestStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    CANCELLED = "cancelled", _("Cancelled")


def decider_field(*, related_name: str) -> models.ForeignKey:
    """Who decided a :class:`ReviewedRequest` (none while pending, or when Kura did)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name=related_name,
        verbose_name=_("decided by"),
    )


class ReviewedRequest(models.Model):
    """A request that someone other than the requester decides: its status and decision.

    Tier change requests (a curator decides) and access requests (the project's stewards
    decide) share these columns and one workflow, :mod:`repository.governance.decisions`. Each kind
    names the field that holds who asked (``requester_field``) and declares ``decided_by``
    with :func:`decider_field`, so that the reverse names on the user stay its own.
    """

    status = models.CharField(
        _("status"), max_length=16, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    # A decider's words, or Kura's when it cancels a request itself (core.machine_text).
    decision_comment = MachineTextField(_("decision comment"), blank=True)

    requester_field = "requester"
    # The fields a decision writes.
    DECISION_FIELDS = ("status", "decided_by", "decided_at", "decision_comment")

    class Meta:
        abstract = True

    @property
    def asked_by(self):
        """Who asked: the user in ``requester_field``."""
        return getattr(self, self.requester_field)

    def already_decided_message(self) -> str:
        """What a second decider is told, in the active language."""
        return gettext("This request has already been decided (%(status)s).") % {
            "status": self.get_status_display()
        }


class TierChangeRequest(ReviewedRequest):
    """A request to open one or more objects beyond the project; a curator decides."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="tier_requests", verbose_name=_("project")
    )
    data_objects = models.ManyToManyField(
        DataObject, related_name="tier_requests", verbose_name=_("data objects")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="tier_requests",
        verbose_name=_("requested by"),
    )
    requested_tier = models.CharField(_("requested tier"), max_length=16, choices=Tier.choices)
    available_date = models.DateField(_("available date"), null=True, blank=True)
    reason = MachineTextField(_("reason"), blank=True)
    decided_by = decider_field(related_name="tier_decisions")

    objects = ProjectActivityQuerySet.as_manager()
    requester_field = "requested_by"

    class Meta:
        verbose_name = _("tier change request")
        verbose_name_plural = _("tier change requests")
        ordering = ["created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(requested_tier=Tier.EMBARGOED)
                | models.Q(available_date__isnull=False),
                name="tierrequest_embargo_has_date",
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} → {self.get_requested_tier_display()} ({self.get_status_display()})"

    def already_decided_message(self) -> str:
        """Which request, how and by whom it was decided, and when."""
        values = {
            "id": self.pk,
            "status": self.get_status_display().lower(),
            "who": self.decided_by.display_name if self.decided_by else "Kura",
            "when": timezone.localtime(self.decided_at).strftime("%Y-%m-%d %H:%M")
            if self.decided_at
            else "-",
        }
        return gettext("Request #%(id)s was already decided (%(status)s by %(who)s, %(when)s).") % (
            values
        )


class AccessRequest(ReviewedRequest):
    """Someone outside the project asks to use a record's shared data."""

    record = models.ForeignKey(
        DmpRecord,
        on_delete=models.CASCADE,
        related_name="access_requests",
        verbose_name=_("record"),
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="access_requests",
        verbose_name=_("requester"),
    )
    purpose = models.TextField(_("purpose"))
    decided_by = decider_field(related_name="access_decisions")

    objects = RecordActivityQuerySet.as_manager()
    requester_field = "requester"

    class Meta:
        verbose_name = _("access request")
        verbose_name_plural = _("access requests")
        ordering = ["created_at"]
        indexes = [models.Index(fields=["record", "status"])]

    def __str__(self) -> str:
        return f"{self.requester} → {self.record} ({self.get_status_display()})"


class AccessGrantQuerySet(RecordActivityQuerySet):
    def live(self, now=None) -> "AccessGrantQuerySet":
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class AccessGrant(models.Model):
    """Lets one person outside the project download a record's shared objects until expiry."""

    record = models.ForeignKey(
        DmpRecord, on_delete=models.CASCADE, related_name="access_grants", verbose_name=_("record")
    )
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="access_grants",
        verbose_name=_("grantee"),
    )
    request = models.OneToOneField(
        AccessRequest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="grant",
        verbose_name=_("request"),
    )
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="grants_given",
        verbose_name=_("granted by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="grants_revoked",
        verbose_name=_("revoked by"),
    )

    objects = AccessGrantQuerySet.as_manager()

    class Meta:
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        indexes = [models.Index(fields=["grantee", "record", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.grantee} ⇒ {self.record} until {self.expires_at:%Y-%m-%d}"


class AuditEventQuerySet(ProjectActivityQuerySet):
    """Appends only; ``bulk_create`` bumps the generations of the events' projects."""

    def update(self, **kwargs):
        raise PermissionError("The audit trail is append-only.")

    def delete(self):
        raise PermissionError("The audit trail is append-only.")


class AuditEvent(models.Model):
    """Append-only record of every change of access, every integrity event, every upload
    and every change of the DMP (its plan and records).

    ``before`` and ``after`` keep the raw values (codes, ISO dates) for machines; the pages
    and the CSV show them with labels (:func:`repository.governance.audit.audit_values_shown`)."""

    Action = AuditAction

    # An upload's own steps are in the audit trail only: the dashboard counts stored files,
    # and no page but the trail names an upload in flight (only its uploader sees it
    # elsewhere, on pages that are never cached).
    UPLOAD_STEPS = frozenset(
        {Action.UPLOAD_STARTED, Action.UPLOAD_COMPLETED, Action.UPLOAD_ABORTED}
    )

    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("actor"),
    )
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("project"),
    )
    data_object = models.ForeignKey(
        DataObject,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("data object"),
    )
    record = models.ForeignKey(
        DmpRecord,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="audit_events",
        verbose_name=_("record"),
    )
    before = models.JSONField(_("before"), default=dict, blank=True)
    after = models.JSONField(_("after"), default=dict, blank=True)
    ip_address = models.GenericIPAddressField(_("ip address"), null=True, blank=True)
    detail = MachineTextField(_("detail"), blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-occurred_at", "-pk"]
        indexes = [models.Index(fields=["project", "-occurred_at"])]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.get_action_display()}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit trail is append-only.")

    def quiet_when_created(self) -> bool:
        """An upload's step changes no cached page (core.generations.watch)."""
        return self.action in self.UPLOAD_STEPS


class ObjectTally(models.Model):
    """How many stored objects, and how many bytes, a project holds in each combination of
    DMP record, tier and checksum state (``quarantined`` for a quarantined object), as of
    the last fold of :class:`TallyDelta` (:mod:`repository.tally`), so the dashboard reads a
    few rows whatever the project's size. Not kept on SQLite (the embedded profile counts
    the objects themselves)."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    record = models.ForeignKey(
        DmpRecord, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )
    tier = models.CharField(max_length=16)
    checksum = models.CharField(max_length=16)
    object_count = models.BigIntegerField(default=0)
    byte_count = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["project"], name="objecttally_project_idx")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.record_id} {self.tier} {self.checksum}"


class TallyDelta(models.Model):
    """One change of a stored object's contribution to the tallies (``object_count`` ±1,
    ``byte_count`` ± its size), appended by the trigger: appending takes no lock that
    another write could wait on, so concurrent writes never block or deadlock each other.
    A job folds the changes into :class:`ObjectTally`, :class:`MonthTally` and
    :class:`EmbargoTally` every minute;
    a dashboard reads the tallies and the changes not yet folded, in one statement."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    record = models.ForeignKey(
        DmpRecord, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )
    tier = models.CharField(max_length=16)
    checksum = models.CharField(max_length=16)
    month = models.DateField()
    available_date = models.DateField(null=True)  # embargoed objects only
    object_count = models.IntegerField()
    byte_count = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["project"], name="tallydelta_project_idx")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.record_id} {self.object_count:+d}"


class MonthTally(models.Model):
    """How many stored objects, and how many bytes, a project added in each month (that of
    ``coalesce(stored_at, created_at)`` in ``TIME_ZONE``); kept like :class:`ObjectTally`."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    month = models.DateField()
    object_count = models.BigIntegerField(default=0)
    byte_count = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["project", "month"], name="monthtally_project_idx")]

    def __str__(self) -> str:
        return f"{self.project_id} {self.month:%Y-%m}"


class EmbargoTally(models.Model):
    """How many stored embargoed objects, and how many bytes, a project holds in each DMP
    record lifting on each date; kept like :class:`ObjectTally`, for the dashboard's
    embargo panel."""

    project = models.ForeignKey(
        Project, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    record = models.ForeignKey(
        DmpRecord, on_delete=models.DO_NOTHING, db_constraint=False, null=True, related_name="+"
    )
    available_date = models.DateField()
    object_count = models.BigIntegerField(default=0)
    byte_count = models.BigIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["project", "available_date"], name="embargotally_project_idx")
        ]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.record_id} {self.available_date}"


class DoiState(models.TextChoices):
    """Where a DOI stands at its provider (docs/architecture.md, "Published versions and
    DOIs"): pending → draft → findable; registered (hidden) on withdrawal; never back to
    draft. ``local``: the deployment registers no DOIs."""

    PENDING = "pending", _("waiting for the DOI provider")
    DRAFT = "draft", _("draft")
    FINDABLE = "findable", _("findable")
    REGISTERED = "registered", _("registered (hidden)")
    LOCAL = "local", _("no DOI (local identifier)")


class PublicationQuerySet(CatalogueQuerySet):
    """Versions and concept DOIs. Landing pages list them (the catalogue's generation), and
    a record's live exports name them — its versions' DOIs, its concept DOI — so a write
    moves the record's own generation too: its OAI-PMH datestamp
    (``repository/discovery/oai/stamps.py``)."""

    quiet_fields = frozenset({"doi_attempted_at"})
    scope_fields = ("record_id",)
    scoped = scoped_by(RECORD, "record_id")


class DoiColumns(models.Model):
    """A DOI, its state at the provider and the last call's outcome."""

    doi = models.CharField(_("DOI"), max_length=255, blank=True)
    doi_state = models.CharField(
        _("DOI state"), max_length=12, choices=DoiState.choices, default=DoiState.PENDING
    )
    doi_error = models.TextField(_("last DOI error"), blank=True)
    doi_attempted_at = models.DateTimeField(_("last DOI call"), null=True, blank=True)

    class Meta:
        abstract = True


class DatasetConcept(DoiColumns):
    """A published record: its concept DOI, which resolves to the latest version."""

    record = models.OneToOneField(
        DmpRecord, on_delete=models.PROTECT, related_name="concept", verbose_name=_("record")
    )
    # The version whose metadata and URL the provider has for the concept DOI.
    described_version = models.PositiveIntegerField(_("version described"), null=True, blank=True)

    objects = PublicationQuerySet.as_manager()

    class Meta:
        verbose_name = _("published dataset")
        verbose_name_plural = _("published datasets")

    def __str__(self) -> str:
        return self.doi or f"record {self.record_id}"


class DatasetVersion(DoiColumns):
    """One published version of a record: frozen, never changed but for its DOI columns."""

    record = models.ForeignKey(
        DmpRecord, on_delete=models.PROTECT, related_name="versions", verbose_name=_("record")
    )
    number = models.PositiveIntegerField(_("version"))
    published_at = models.DateTimeField(_("published at"), default=timezone.now)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published by"),
    )
    # The record, its creators, project and institution as Django's serializer writes them.
    snapshot = models.JSONField(_("frozen record"))
    # The DataCite JSON as exported at publication.
    metadata = models.JSONField(_("frozen metadata"))
    # [{object_id, name, size, sha256, tier, available_date}], by name.
    manifest = models.JSONField(_("file manifest"))

    objects = PublicationQuerySet.as_manager()

    class Meta:
        verbose_name = _("published version")
        verbose_name_plural = _("published versions")
        ordering = ("record", "-number")
        constraints = [
            models.UniqueConstraint(fields=("record", "number"), name="version_number_unique"),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="version_number_gte_1"),
        ]

    def __str__(self) -> str:
        return f"record {self.record_id} v{self.number}"


class UsageEvent(models.Model):
    """One landing-page view (a COUNTER *investigation*) or file download (a *request*),
    as folded by ``kura.usage_fold`` from the capture buffer (``repository/usage/``).

    Only what the COUNTER Code of Practice for Research Data needs is kept: when, what,
    how the visitor stands to the data (``scope``), whether a machine asked, and
    ``session``, a salted hash of the visitor and the hour whose salt changes every day
    (no address, no account). Rows are never updated; counts are read from them
    (``repository/usage/selectors.py``)."""

    class Kind(models.TextChoices):
        INVESTIGATION = "i", _("view")
        REQUEST = "r", _("download")

    class Scope(models.TextChoices):
        PUBLIC = "public", _("public")
        SHARED = "shared", _("shared")
        PROJECT = "project", _("in the project")

    at = models.DateTimeField(_("at"))
    # The first day of the month of ``at`` in KURA_TIME_ZONE: reports and charts group by it.
    month = models.DateField(_("month"))
    kind = models.CharField(_("kind"), max_length=1, choices=Kind.choices)
    # Without database constraints, as for an append-only log: checking three foreign keys
    # of every row at commit was a third of a fold's time. The fold writes only ids it has
    # just read, and deleting a project, record or object deletes its events (Django's
    # cascade); the readers join the rows they count.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    record = models.ForeignKey(
        DmpRecord, on_delete=models.CASCADE, related_name="+", db_constraint=False
    )
    data_object = models.ForeignKey(
        "DataObject",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
    )
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices)
    machine = models.BooleanField(_("machine access"), default=False)
    session = models.CharField(_("session"), max_length=16)
    # A repeat of the same visitor's click on the same item within 30 seconds: kept, so
    # that the next batch still sees it, and left out of every total.
    double_click = models.BooleanField(_("double click"), default=False)

    class Meta:
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")
        indexes = [
            models.Index(fields=("record", "month"), name="usage_record_month"),
            models.Index(fields=("project", "month"), name="usage_project_month"),
            models.Index(fields=("month",), name="usage_month"),
            models.Index(fields=("at",), name="usage_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of record {self.record_id} at {self.at:%Y-%m-%d %H:%M}"


class UsageFold(models.Model):
    """A batch of captured events already folded into ``UsageEvent``: the batch's token,
    written in the fold's transaction, makes a fold repeated after a crash change nothing."""

    token = models.CharField(max_length=64, unique=True)
    events = models.PositiveIntegerField(default=0)
    folded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"usage batch {self.token}"
