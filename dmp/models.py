from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Project, bilingual

from .vocabularies import MetadataAccess, Tier


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

    class Meta:
        verbose_name = _("data management plan")
        verbose_name_plural = _("data management plans")

    def __str__(self) -> str:
        return f"{self.title} (v{self.version})"


class DmpRecord(models.Model):
    """One managed dataset (管理対象データ) as declared in the DMP: a row of the common metadata."""

    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="records", verbose_name=_("project")
    )
    data_number = models.CharField(_("Data No."), max_length=64)
    title_ja = models.CharField(_("title (Japanese)"), max_length=500, blank=True)
    title_en = models.CharField(_("title (English)"), max_length=500, blank=True)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    access_rights = models.CharField(
        _("access rights"), max_length=16, choices=Tier.choices, default=Tier.NON_SHARED
    )
    available_date = models.DateField(_("available date"), null=True, blank=True)
    metadata_access = models.CharField(
        _("metadata access"),
        max_length=16,
        choices=MetadataAccess.choices,
        default=MetadataAccess.CLOSED,
        help_text=_("Whether people outside the project may read this record's metadata."),
    )
    contains_personal_data = models.BooleanField(_("contains personal data"), default=False)
    anonymisation_attested = models.BooleanField(
        _("anonymisation attested"),
        default=False,
        help_text=_("The data manager attests that personal data has been anonymised."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

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
        indexes = [models.Index(fields=["metadata_access", "access_rights"])]

    def __str__(self) -> str:
        return f"{self.data_number}: {self.title}"

    @property
    def title(self) -> str:
        return bilingual(self.title_ja, self.title_en)

    @property
    def description(self) -> str:
        return bilingual(self.description_ja, self.description_en)

    @property
    def metadata_is_open(self) -> bool:
        return self.metadata_access == MetadataAccess.OPEN
