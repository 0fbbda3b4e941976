"""Admin for the repository: a place to find and inspect, not to change access.

Every change of tier, request decision, grant or quarantine must leave an audit event and
pass the checks in the services, so those fields are read-only here and the state
machines (uploads, fixity history, requests, grants, the audit trail) are view-only.
Data objects are created by uploads, never in the admin, and deleting a row here would
orphan its bytes in storage.
"""

import json

from django.contrib import admin
from django.db.models import Count, Q
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from dmp.admin import DmpRecordAdmin
from dmp.models import DmpRecord, DmpRecordRevision
from repository.models import (
    AccessGrant,
    AccessRequest,
    AuditEvent,
    DataObject,
    DatasetConcept,
    DatasetVersion,
    FixityCheck,
    TierChangeRequest,
    UploadSession,
)


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows that only services write: listed and shown, never added, changed or deleted."""

    actions = None

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _changelist_link(model, label, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}">{}</a>', url, urlencode(filters), label)


def _pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, ensure_ascii=False, indent=2))


class QuarantinedFilter(admin.SimpleListFilter):
    title = _("quarantined")
    parameter_name = "quarantined"

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No")))

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(quarantined_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(quarantined_at__isnull=True)
        return queryset


@admin.register(DataObject)
class DataObjectAdmin(admin.ModelAdmin):
    list_display = (
        "original_filename",
        "project",
        "tier",
        "status",
        "checksum_state",
        "human_size",
        "is_quarantined",
        "uploaded_by",
        "created_at",
    )
    list_filter = (
        "tier",
        "status",
        "checksum_state",
        ("project", admin.RelatedOnlyFieldListFilter),
        QuarantinedFilter,
        "contains_personal_data",
    )
    list_select_related = ("project", "uploaded_by")
    search_fields = ("original_filename", "^sha256", "^md5", "storage_key")
    date_hierarchy = "created_at"
    # Tier, record, status and integrity change only through services, which audit them.
    readonly_fields = (
        "project",
        "record",
        "uploaded_by",
        "storage_key",
        "size",
        "status",
        "tier",
        "available_date",
        "sha256",
        "md5",
        "checksum_state",
        "stored_at",
        "last_fixity_at",
        "quarantined_at",
        "quarantine_reason",
        "created_at",
        "history",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "original_filename",
                    "content_type",
                    "size",
                    "project",
                    "record",
                    "uploaded_by",
                )
            },
        ),
        (_("Access"), {"fields": ("tier", "available_date", "contains_personal_data")}),
        (
            _("Storage and integrity"),
            {
                "fields": (
                    "status",
                    "storage_key",
                    "sha256",
                    "md5",
                    "checksum_state",
                    "created_at",
                    "stored_at",
                    "last_fixity_at",
                    "quarantined_at",
                    "quarantine_reason",
                )
            },
        ),
        (_("Technical metadata"), {"fields": ("technical_metadata",)}),
        (_("History"), {"fields": ("history",)}),
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("size"), ordering="size")
    def human_size(self, obj: DataObject) -> str:
        return filesizeformat(obj.size)

    @admin.display(description=_("quarantined"), boolean=True, ordering="quarantined_at")
    def is_quarantined(self, obj: DataObject) -> bool:
        return obj.is_quarantined

    @admin.display(description=_("history"))
    def history(self, obj: DataObject) -> str:
        if obj.pk is None:
            return "-"
        return format_html(
            "{} · {} · {}",
            _changelist_link(FixityCheck, _("fixity checks"), data_object__id__exact=obj.pk),
            _changelist_link(TierChangeRequest, _("tier requests"), data_objects__id__exact=obj.pk),
            _changelist_link(AuditEvent, _("audit events"), data_object__id__exact=obj.pk),
        )


@admin.register(UploadSession)
class UploadSessionAdmin(ViewOnlyAdmin):
    list_display = (
        "data_object",
        "created_by",
        "part_count",
        "human_part_size",
        "created_at",
        "last_activity_at",
        "expires_at",
        "completed_at",
    )
    list_filter = (("completed_at", admin.EmptyFieldListFilter), "expires_at")
    list_select_related = ("data_object", "created_by")
    search_fields = ("data_object__original_filename", "=upload_id", "created_by__username")
    date_hierarchy = "created_at"

    @admin.display(description=_("part size"), ordering="part_size")
    def human_part_size(self, obj: UploadSession) -> str:
        return filesizeformat(obj.part_size)


@admin.register(FixityCheck)
class FixityCheckAdmin(ViewOnlyAdmin):
    list_display = ("data_object", "checked_at", "outcome", "size", "sha256")
    list_filter = ("outcome", "checked_at")
    list_select_related = ("data_object",)
    search_fields = ("data_object__original_filename", "^sha256", "^data_object__sha256")
    date_hierarchy = "checked_at"
    show_full_result_count = False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(ViewOnlyAdmin):
    """Published versions are frozen; their DOIs move only through repository/publishing."""

    list_display = ("record", "number", "published_at", "published_by", "doi", "doi_state")
    list_filter = ("doi_state", "published_at")
    list_select_related = ("record", "published_by")
    search_fields = ("doi", "record__data_number", "record__title_ja", "record__title_en")
    exclude = ("snapshot", "metadata", "manifest")
    readonly_fields = ("metadata_shown", "manifest_shown")

    @admin.display(description=_("frozen metadata"))
    def metadata_shown(self, obj):
        return _pretty_json(obj.metadata)

    @admin.display(description=_("file manifest"))
    def manifest_shown(self, obj):
        return _pretty_json(obj.manifest)


@admin.register(DatasetConcept)
class DatasetConceptAdmin(ViewOnlyAdmin):
    list_display = ("record", "doi", "doi_state", "described_version", "doi_attempted_at")
    list_filter = ("doi_state",)
    list_select_related = ("record",)
    search_fields = ("doi", "record__data_number", "record__title_ja", "record__title_en")


@admin.register(TierChangeRequest)
class TierChangeRequestAdmin(ViewOnlyAdmin):
    """Decided in the curator review queue (``/review/``), which applies and audits it."""

    list_display = (
        "__str__",
        "project",
        "requested_tier",
        "status",
        "object_count",
        "requested_by",
        "created_at",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status", "requested_tier", ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("project", "requested_by", "decided_by")
    search_fields = (
        "reason",
        "decision_comment",
        "requested_by__username",
        "project__japan_grant_number",
        "data_objects__original_filename",
    )
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(object_count=Count("data_objects"))

    @admin.display(description=_("objects"), ordering="object_count")
    def object_count(self, obj: TierChangeRequest) -> int:
        return obj.object_count


@admin.register(AccessRequest)
class AccessRequestAdmin(ViewOnlyAdmin):
    """Decided by the project's PM or data manager on the project pages."""

    list_display = ("requester", "record", "status", "created_at", "decided_by", "decided_at")
    list_filter = ("status", ("record__project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("requester", "record", "decided_by")
    search_fields = (
        "purpose",
        "requester__username",
        "requester__name_ja",
        "requester__name_en",
        "record__data_number",
        "record__title_ja",
        "record__title_en",
    )
    date_hierarchy = "created_at"


class LiveGrantFilter(admin.SimpleListFilter):
    title = _("live")
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return (("yes", _("Yes")), ("no", _("No")))

    def queryset(self, request, queryset):
        live = AccessGrant.objects.live().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=live)
        if self.value() == "no":
            return queryset.exclude(pk__in=live)
        return queryset


@admin.register(AccessGrant)
class AccessGrantAdmin(ViewOnlyAdmin):
    """Granted and revoked on the project pages, which audit both."""

    list_display = (
        "grantee",
        "record",
        "granted_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
    )
    list_filter = (
        LiveGrantFilter,
        ("revoked_at", admin.EmptyFieldListFilter),
        ("record__project", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("grantee", "record", "granted_by", "revoked_by")
    search_fields = (
        "grantee__username",
        "grantee__name_ja",
        "grantee__name_en",
        "record__data_number",
        "record__title_ja",
        "record__title_en",
    )
    date_hierarchy = "created_at"


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdmin):
    """The append-only audit trail: never added, changed or deleted through the admin."""

    list_display = (
        "occurred_at",
        "action",
        "actor",
        "project",
        "data_object",
        "record",
        "ip_address",
    )
    list_filter = ("action", ("project", admin.RelatedOnlyFieldListFilter), "occurred_at")
    list_select_related = ("actor", "project", "data_object", "record")
    search_fields = (
        "detail",
        "actor__username",
        "data_object__original_filename",
        "^data_object__sha256",
        "record__data_number",
        "project__japan_grant_number",
        "=ip_address",
    )
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    fields = (
        "occurred_at",
        "action",
        "actor",
        "ip_address",
        "project",
        "data_object",
        "record",
        "before_json",
        "after_json",
        "detail",
    )
    readonly_fields = fields

    @admin.display(description=_("before"))
    def before_json(self, obj: AuditEvent) -> str:
        return _pretty_json(obj.before)

    @admin.display(description=_("after"))
    def after_json(self, obj: AuditEvent) -> str:
        return _pretty_json(obj.after)


@admin.register(DmpRecordRevision)
class DmpRecordRevisionAdmin(ViewOnlyAdmin):
    """A record's history: written by whatever changed the record (``dmp/history.py``),
    never edited."""

    list_display = ("record", "number", "kind", "saved_at", "saved_by")
    list_filter = ("kind", "saved_at")
    list_select_related = ("record", "saved_by")
    search_fields = ("record__data_number", "record__title_ja", "record__title_en")
    fields = ("record", "number", "kind", "detail", "saved_at", "saved_by", "changes_json")
    readonly_fields = fields

    @admin.display(description=_("changes"))
    def changes_json(self, obj: DmpRecordRevision) -> str:
        return _pretty_json(obj.changes)


admin.site.unregister(DmpRecord)


@admin.register(DmpRecord)
class DmpRecordWithObjectsAdmin(DmpRecordAdmin):
    """The DMP record admin (``dmp/admin.py``) with how many data objects each record
    describes, deleted ones aside."""

    list_display = (*DmpRecordAdmin.list_display[:-1], "object_count", "updated_at")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                object_count=Count(
                    "data_objects", filter=~Q(data_objects__status=DataObject.Status.DELETED)
                )
            )
        )

    @admin.display(description=_("objects"), ordering="object_count")
    def object_count(self, obj: DmpRecord) -> int:
        return obj.object_count
