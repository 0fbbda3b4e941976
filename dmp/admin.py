import copy

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .history import record_items, record_revision_write
from .models import DataManagementPlan, DmpRecord, DmpRecordRevision
from .services import record_update_errors


@admin.register(DataManagementPlan)
class DataManagementPlanAdmin(admin.ModelAdmin):
    list_display = ("title", "project", "version", "updated_at", "updated_by")
    list_filter = ("project__funder", "project__funding_stream_code")
    list_select_related = ("project", "updated_by")
    search_fields = (
        "title",
        "project__japan_grant_number",
        "project__name_ja",
        "project__name_en",
    )
    autocomplete_fields = ("project",)
    readonly_fields = ("version", "created_at", "updated_at", "updated_by")
    fieldsets = (
        (None, {"fields": ("project", "title")}),
        (
            _("Plan"),
            {
                "fields": (
                    "data_produced",
                    "storage_and_preservation",
                    "publication_policy",
                    "restriction_reasons",
                    "management_roles",
                )
            },
        ),
        (_("History"), {"fields": ("version", "created_at", "updated_at", "updated_by")}),
    )

    def save_model(self, request, obj, form, change):
        # The plan is versioned: every saved edit is a new version (see the model docstring).
        if change and form.has_changed():
            obj.version += 1
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class DmpRecordAdminForm(forms.ModelForm):
    """Asks the checks ``record_update`` asks (a published record's metadata stays open)."""

    class Meta:
        model = DmpRecord
        fields = ("metadata_access",)  # the admin's fieldsets choose the fields it shows

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None:
            return cleaned
        candidate = copy.copy(self.instance)
        for name, value in cleaned.items():
            setattr(candidate, name, value)
        for name, messages in record_update_errors(candidate).items():
            for message in messages:
                self.add_error(name if name in self.fields else None, message)
        return cleaned


@admin.register(DmpRecord)
class DmpRecordAdmin(admin.ModelAdmin):
    form = DmpRecordAdminForm
    list_display = (
        "data_number",
        "title",
        "project",
        "access_rights",
        "available_date",
        "metadata_access",
        "contains_personal_data",
        "anonymisation_attested",
        "updated_at",
    )
    list_display_links = ("data_number", "title")
    list_filter = (
        "access_rights",
        "metadata_access",
        "contains_personal_data",
        "anonymisation_attested",
        ("project", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("project",)
    search_fields = (
        "data_number",
        "title_ja",
        "title_en",
        "project__japan_grant_number",
        "project__name_ja",
        "project__name_en",
    )
    autocomplete_fields = ("project",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("project", "data_number")}),
        (
            _("Description"),
            {"fields": ("title_ja", "title_en", "description_ja", "description_en")},
        ),
        (
            _("Access"),
            {
                "fields": (
                    "access_rights",
                    "available_date",
                    "metadata_access",
                    "contains_personal_data",
                    "anonymisation_attested",
                )
            },
        ),
        (None, {"fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        # The admin saves without dmp.services, so it keeps the record's history itself,
        # in the transaction the admin wraps every save in.
        before = None
        if change:
            before = record_items(DmpRecord.objects.select_for_update().get(pk=obj.pk))
        super().save_model(request, obj, form, change)
        record_revision_write(
            record=obj, actor=request.user, kind=DmpRecordRevision.Kind.ADMIN, before=before
        )

    @admin.display(description=_("title"), ordering="title_en")
    def title(self, obj: DmpRecord) -> str:
        return obj.title
