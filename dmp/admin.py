from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import DataManagementPlan, DmpRecord


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


@admin.register(DmpRecord)
class DmpRecordAdmin(admin.ModelAdmin):
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

    @admin.display(description=_("title"), ordering="title_en")
    def title(self, obj: DmpRecord) -> str:
        return obj.title
