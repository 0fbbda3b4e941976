import re

from django.conf import settings
from django.db import models
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _

from accounts.models import Project, bilingual, erad_researcher_validator, ror_validator
from core.generations import RECORD, CatalogueQuerySet, scoped_by
from core.vocabularies import (
    ACCESS_RIGHTS,
    DATA_POLICY_FREE,
    DATA_TYPES,
    LICENSES,
    RESEARCH_FIELDS,
    SAME_AS_PROJECT,
    DataManagerType,
    MetadataAccess,
    Tier,
)

from .validators import repo_link_validate


class DataManagementPlan(models.Model):
    """The project's DMP: the plan-level answers. One per project; every save bumps ``version``."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="dmp", verbose_name=_("project")
    )
    title = models.CharField(_("title"), max_length=500)
    version = models.PositiveIntegerField(_("version"), default=1)
    data_produced = models.TextField(_("data the project produces"), blank=True)
    storage_and_preservation = models.TextField(_("storage and preservation"), blank=True)
    publication_policy = models.TextField(_("publication and sharing policy"), blank=True)
    restriction_reasons = models.TextField(_("reasons for restricting access"), blank=True)
    management_roles = models.TextField(_("who manages the data"), blank=True)
    # The project-level parts of an imported maDMP (contact, contributors, project and
    # funding, ethical issues, cost…), written back in place by the maDMP export.
    madmp_extension = models.JSONField(
        _("maDMP extension"), default=dict, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("updated by"),
    )

    objects = CatalogueQuerySet.as_manager()

    class Meta:
        verbose_name = _("data management plan")
        verbose_name_plural = _("data management plans")

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"


class DmpRecordQuerySet(CatalogueQuerySet):
    # A write also moves the record's own generation (core.generations), which the OAI-PMH
    # datestamps listen to; writing the datestamp itself moves nothing.
    quiet_fields = frozenset({"harvest_changed_at"})
    scope_fields = ("id",)
    scoped = scoped_by(RECORD, "id")


class RecordCreatorQuerySet(CatalogueQuerySet):
    scope_fields = ("record_id",)
    scoped = scoped_by(RECORD, "record_id")


class DmpRecord(models.Model):
    """One managed dataset (管理対象データ) as declared in the DMP: a row of the common metadata."""

    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="records", verbose_name=_("project")
    )
    data_number = models.CharField(_("Data No."), max_length=64)
    # The search's stored column (dmp/migrations/0007) reads title, description, keywords
    # and data number: a migration that changes their type must drop it first (see
    # repository/discovery/search/selectors.py, SEARCHED_FIELDS).
    title_ja = models.CharField(_("title (Japanese)"), max_length=500, blank=True)
    title_en = models.CharField(_("title (English)"), max_length=500, blank=True)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    date_issued_updated = models.DateField(_("date (issued / updated)"), null=True, blank=True)
    data_research_field = models.CharField(
        _("research field of the data"),
        max_length=8,
        choices=[(SAME_AS_PROJECT, _("Same as the project"))] + RESEARCH_FIELDS.choices,
        default=SAME_AS_PROJECT,
    )
    data_type = models.CharField(
        _("data type"), max_length=32, choices=DATA_TYPES.choices, default="dataset"
    )
    file_size = models.CharField(
        _("approximate data volume"),
        max_length=32,
        blank=True,
        help_text=_("For example <1GB, 1-10GB, 10-100GB or >100GB."),
    )
    data_policy_free = models.CharField(
        _("free or fee-based"), max_length=16, choices=DATA_POLICY_FREE.choices, blank=True
    )
    data_policy_license = models.CharField(
        _("licence"), max_length=16, choices=LICENSES.choices, blank=True
    )
    data_policy_cite_ja = models.TextField(_("citation information (Japanese)"), blank=True)
    data_policy_cite_en = models.TextField(_("citation information (English)"), blank=True)
    access_rights = models.CharField(
        _("access rights"), max_length=16, choices=Tier.choices, default=Tier.NON_SHARED
    )
    available_date = models.DateField(_("available date"), null=True, blank=True)
    repo_information_ja = models.CharField(
        _("repository information (Japanese)"), max_length=500, blank=True
    )
    repo_information_en = models.CharField(
        _("repository information (English)"), max_length=500, blank=True
    )
    repo_url_doi_link = models.URLField(
        _("repository URL / DOI link"),
        max_length=500,
        blank=True,
        validators=[repo_link_validate],
    )
    hosting_inst_ja = models.CharField(
        _("hosting institution (Japanese)"), max_length=500, blank=True
    )
    hosting_inst_en = models.CharField(
        _("hosting institution (English)"), max_length=500, blank=True
    )
    hosting_inst_id = models.URLField(
        _("hosting institution identifier (ROR)"), blank=True, validators=[ror_validator]
    )
    data_man_type = models.CharField(
        _("type of data manager"),
        max_length=16,
        choices=DataManagerType.choices,
        default=DataManagerType.INDIVIDUAL,
    )
    data_man_number = models.CharField(
        _("data manager's e-Rad researcher number"),
        max_length=8,
        blank=True,
        validators=[erad_researcher_validator],
    )
    data_man_name_ja = models.CharField(_("data manager (Japanese)"), max_length=200, blank=True)
    data_man_name_en = models.CharField(_("data manager (English)"), max_length=200, blank=True)
    data_man_org_ja = models.CharField(
        _("data manager's organisation (Japanese)"), max_length=500, blank=True
    )
    data_man_org_en = models.CharField(
        _("data manager's organisation (English)"), max_length=500, blank=True
    )
    data_man_address_ja = models.CharField(
        _("data manager's contact address (Japanese)"), max_length=500, blank=True
    )
    data_man_address_en = models.CharField(
        _("data manager's contact address (English)"), max_length=500, blank=True
    )
    data_man_tel = models.CharField(_("data manager's phone number"), max_length=40, blank=True)
    data_man_email = models.EmailField(_("data manager's e-mail address"), blank=True)
    keywords_ja = models.CharField(
        _("keywords (Japanese)"), max_length=500, blank=True, help_text=_("Separated by commas.")
    )
    keywords_en = models.CharField(
        _("keywords (English)"), max_length=500, blank=True, help_text=_("Separated by commas.")
    )
    withdrawn_at = models.DateTimeField(
        _("withdrawn at"),
        null=True,
        blank=True,
        help_text=_("A withdrawn record keeps a tombstone page and is reported as deleted."),
    )
    withdrawal_reason = models.TextField(_("reason for withdrawal"), blank=True)
    remarks_ja = models.TextField(_("remarks (Japanese)"), blank=True)
    remarks_en = models.TextField(_("remarks (English)"), blank=True)
    metadata_access = models.CharField(
        _("metadata access"),
        max_length=16,
        choices=MetadataAccess.choices,
        default=MetadataAccess.CLOSED,
        help_text=_("Whether people outside the project may read this record's metadata."),
    )
    # Three states: yes, no and unknown (None). Unknown blocks opening data beyond the
    # project exactly as yes does (repository/governance/tiers.py), until someone sets it.
    contains_personal_data = models.BooleanField(
        _("contains personal data"),
        null=True,
        blank=True,
        default=False,
        help_text=_("Unknown blocks opening the record's files beyond the project, like yes."),
    )
    anonymisation_attested = models.BooleanField(
        _("anonymisation attested"),
        default=False,
        help_text=_("The data manager attests that personal data has been anonymised."),
    )
    # What an imported maDMP dataset holds beyond Kura's items, written back in place by
    # the maDMP export (dmp/madmp.py, "Round trip"); empty for a record made in Kura.
    madmp_extension = models.JSONField(
        _("maDMP extension"), default=dict, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # The OAI-PMH datestamp: the last change to anything the record's harvested formats
    # show (its fields, creators, files, project, institution), or its closing or
    # withdrawal; empty while harvesters have never seen the record. Kept by
    # repository/discovery/oai/stamps.py, never by save() (see there).
    harvest_changed_at = models.DateTimeField(
        _("harvest datestamp"), null=True, blank=True, editable=False
    )

    objects = DmpRecordQuerySet.as_manager()

    class Meta:
        verbose_name = _("DMP record")
        verbose_name_plural = _("DMP records")
        ordering = ["project_id", "data_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "data_number"], name="dmprecord_unique_data_number"
            ),
            models.CheckConstraint(
                condition=~models.Q(title_ja="") | ~models.Q(title_en=""),
                name="dmprecord_has_a_title",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(access_rights=Tier.EMBARGOED, available_date__isnull=False)
                    | (
                        ~models.Q(access_rights=Tier.EMBARGOED)
                        & models.Q(available_date__isnull=True)
                    )
                ),
                name="dmprecord_available_date_iff_embargoed",
            ),
        ]
        indexes = [
            models.Index(fields=["metadata_access", "access_rights"]),
            # The search lists the newest first.
            models.Index(fields=["updated_at", "id"], name="dmprecord_datestamp_idx"),
            # OAI-PMH pages by (datestamp, id) and harvests by date range.
            models.Index(fields=["harvest_changed_at", "id"], name="dmprecord_harvest_idx"),
            # The search puts records whose title is the query first (title__iexact).
            models.Index(Upper("title_ja"), name="dmprecord_title_ja_upper_idx"),
            models.Index(Upper("title_en"), name="dmprecord_title_en_upper_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.data_number}: {self.title}"

    def save(self, *args, **kwargs) -> None:
        # The datestamp is written only by its keeper: a save of a row loaded before the
        # keeper moved it must not put the old value back.
        if not self._state.adding and self.pk is not None and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "harvest_changed_at"
            ]
        super().save(*args, **kwargs)

    @property
    def title(self) -> str:
        return bilingual(self.title_ja, self.title_en)

    @property
    def description(self) -> str:
        return bilingual(self.description_ja, self.description_en)

    @property
    def metadata_is_open(self) -> bool:
        return self.metadata_access == MetadataAccess.OPEN

    # Vocabulary terms of the record's coded items (None where the code is blank or unknown),
    # read by every export instead of each looking the codes up itself.
    @property
    def research_field_term(self):
        """The record's e-Rad field, or the project's when it defers to it."""
        code = self.data_research_field
        if code == SAME_AS_PROJECT:
            code = self.project.research_field
        return RESEARCH_FIELDS[code] if code in RESEARCH_FIELDS else None

    @property
    def data_type_term(self):
        return DATA_TYPES[self.data_type] if self.data_type in DATA_TYPES else None

    @property
    def licence_term(self):
        code = self.data_policy_license
        return LICENSES[code] if code in LICENSES else None

    @property
    def access_rights_term(self):
        return ACCESS_RIGHTS[self.access_rights]

    def keyword_list(self, language: str) -> list[str]:
        """The keywords in one language, split at commas (, 、 ，)."""
        text = self.keywords_ja if language == "ja" else self.keywords_en
        return [word.strip() for word in re.split(r"[,、，]", text or "") if word.strip()]


class RecordCreator(models.Model):
    """One creator (データ作成者) of a managed dataset, in the order they are cited."""

    record = models.ForeignKey(
        DmpRecord, on_delete=models.CASCADE, related_name="creators", verbose_name=_("DMP record")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    erad_researcher_number = models.CharField(
        _("e-Rad researcher number"),
        max_length=8,
        blank=True,
        validators=[erad_researcher_validator],
    )
    name_ja = models.CharField(_("name (Japanese)"), max_length=200, blank=True)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    affiliation_ja = models.CharField(_("affiliation (Japanese)"), max_length=500, blank=True)
    affiliation_en = models.CharField(_("affiliation (English)"), max_length=500, blank=True)
    # Never typed: the verified ORCID iD of the one Kura account with this creator's e-Rad
    # researcher number (dmp.services.record_creators_orcid_follow), exported with the name.
    orcid = models.CharField(_("ORCID iD"), max_length=19, blank=True, editable=False)

    objects = RecordCreatorQuerySet.as_manager()

    class Meta:
        verbose_name = _("creator")
        verbose_name_plural = _("creators")
        ordering = ["record_id", "position", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(name_ja="") | ~models.Q(name_en=""),
                name="recordcreator_has_a_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return bilingual(self.name_ja, self.name_en)


class DataManagementPlanVersion(models.Model):
    """A saved state of the plan: every save keeps one, so the history shows who changed
    what and when."""

    plan = models.ForeignKey(
        DataManagementPlan,
        on_delete=models.CASCADE,
        related_name="versions",
        verbose_name=_("data management plan"),
    )
    version = models.PositiveIntegerField(_("version"))
    answers = models.JSONField(_("answers"), default=dict)
    saved_at = models.DateTimeField(_("saved at"), auto_now_add=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("saved by"),
    )

    class Meta:
        verbose_name = _("plan version")
        verbose_name_plural = _("plan versions")
        ordering = ["plan_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "version"], name="planversion_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.plan} v{self.version}"


# The fields a person fills in (forms, API, imports): everything but the bookkeeping.
RECORD_FIELDS = tuple(
    field.name
    for field in DmpRecord._meta.concrete_fields
    if field.name
    not in {"id", "project", "created_at", "updated_at", "harvest_changed_at", "madmp_extension"}
)
CREATOR_FIELDS = (
    "erad_researcher_number",
    "name_ja",
    "name_en",
    "affiliation_ja",
    "affiliation_en",
)


class DmpRecordRevision(models.Model):
    """One saved state of a record: every change to it, by any path (forms, the records
    API, imports, the admin, a withdrawal), keeps one in the same transaction, so the
    record's history shows who changed what and when, and what the record was before.

    ``items`` is the whole record after the change (its fields and creators, as
    :func:`dmp.history.record_items` writes them); ``changes`` the fields that changed,
    each ``[before, after]`` (on a new record, ``before`` is ``null``)."""

    class Kind(models.TextChoices):
        CREATED = "created", _("DMP record created")
        EDITED = "edited", _("DMP record edited")
        IMPORTED = "imported", _("Imported from a file")
        ADMIN = "admin", _("Edited in the admin")
        WITHDRAWN = "withdrawn", _("Dataset withdrawn")
        BASELINE = "baseline", _("State when the history began")

    record = models.ForeignKey(
        DmpRecord,
        on_delete=models.CASCADE,
        related_name="revisions",
        verbose_name=_("DMP record"),
    )
    number = models.PositiveIntegerField(_("revision"))
    kind = models.CharField(_("kind of change"), max_length=16, choices=Kind.choices)
    detail = models.CharField(_("detail"), max_length=64, blank=True)
    items = models.JSONField(_("items"), default=dict)
    changes = models.JSONField(_("changes"), default=dict)
    saved_at = models.DateTimeField(_("saved at"), auto_now_add=True)
    saved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("saved by"),
    )

    class Meta:
        verbose_name = _("record revision")
        verbose_name_plural = _("record revisions")
        ordering = ["record_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["record", "number"], name="recordrevision_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.record_id} r{self.number}"
