import logging

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from .models import (
    ApiToken,
    ExternalIdentity,
    Institution,
    Invitation,
    Membership,
    Project,
    User,
)

log = logging.getLogger("kura.security")

RESEARCHER_PROFILE_FIELDS = ("name_ja", "name_en", "erad_researcher_number", "orcid")


class UserMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "user"
    extra = 0
    fields = ("project", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("project",)
    verbose_name = _("project membership")
    verbose_name_plural = _("project memberships")


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = (
        *BaseUserAdmin.fieldsets[:2],
        (_("Researcher profile"), {"fields": (*RESEARCHER_PROFILE_FIELDS, "orcid_verified")}),
        *BaseUserAdmin.fieldsets[2:],
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        (
            _("Researcher profile"),
            {"classes": ("wide",), "fields": ("email", *RESEARCHER_PROFILE_FIELDS)},
        ),
    )
    list_display = (
        "username",
        "name_ja",
        "name_en",
        "email",
        "erad_researcher_number",
        "is_staff",
        "is_active",
        "last_login",
    )
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")
    search_fields = (
        "username",
        "name_ja",
        "name_en",
        "first_name",
        "last_name",
        "email",
        "erad_researcher_number",
        "orcid",
    )
    inlines = (UserMembershipInline,)

    def get_readonly_fields(self, request, obj=None):
        # Only signing in with ORCID verifies an iD; a verified iD is the person's own proof
        # and nobody edits it by hand (accounts/orcid.py).
        fields = [*super().get_readonly_fields(request, obj), "orcid_verified"]
        if obj is not None and obj.orcid_verified:
            fields.append("orcid")
        return fields


@admin.register(Institution)
class InstitutionAdmin(admin.ModelAdmin):
    list_display = ("name_ja", "name_en", "ror_id", "project_count")
    search_fields = ("name_ja", "name_en", "ror_id")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(project_count=Count("projects"))

    @admin.display(description=_("projects"), ordering="project_count")
    def project_count(self, obj: Institution) -> int:
        return obj.project_count


class ProjectMembershipInline(admin.TabularInline):
    model = Membership
    fk_name = "project"
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = (
        "japan_grant_number",
        "name",
        "funder",
        "funding_stream_code",
        "program_name",
        "research_field",
        "institution",
        "member_count",
        "created_at",
    )
    list_display_links = ("japan_grant_number", "name")
    list_filter = (
        "funder",
        "research_field",
        "funding_stream_code",
        ("institution", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("institution",)
    search_fields = (
        "japan_grant_number",
        "name_ja",
        "name_en",
        "program_name_ja",
        "program_name_en",
        "funding_stream_code",
        "institution__name_ja",
        "institution__name_en",
    )
    autocomplete_fields = ("institution",)
    readonly_fields = ("created_at",)
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ("institution", "name_ja", "name_en", "research_field")}),
        (
            _("Funding"),
            {
                "fields": (
                    "funder",
                    "funding_stream_code",
                    "program_name_ja",
                    "program_name_en",
                    "japan_grant_number",
                )
            },
        ),
        (None, {"fields": ("created_at",)}),
    )
    inlines = (ProjectMembershipInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("memberships"))

    @admin.display(description=_("project name"), ordering="name_en")
    def name(self, obj: Project) -> str:
        return obj.name

    @admin.display(description=_("program name"), ordering="program_name_en")
    def program_name(self, obj: Project) -> str:
        return obj.program_name

    @admin.display(description=_("members"), ordering="member_count")
    def member_count(self, obj: Project) -> int:
        return obj.member_count


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "user_name", "project", "role", "created_at")
    list_filter = ("role", ("project", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "project")
    search_fields = (
        "user__username",
        "user__name_ja",
        "user__name_en",
        "user__email",
        "project__japan_grant_number",
        "project__name_ja",
        "project__name_en",
    )
    autocomplete_fields = ("user", "project")
    readonly_fields = ("created_at",)

    @admin.display(description=_("name"), ordering="user__name_en")
    def user_name(self, obj: Membership) -> str:
        return obj.user.display_name


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Lets an administrator see and revoke tokens; the secret is never stored."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "user__username")
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at")
    fields = ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def has_add_permission(self, request):
        return False  # tokens are created by their owner, who alone sees the secret


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations, to look at: they are made, accepted and withdrawn on the members page
    (accounts/invitations.py), which audits each step; the token is never stored."""

    list_display = ("value", "kind", "role", "project", "invited_by", "expires_at", "state")
    list_filter = ("kind", "role")
    list_select_related = ("project", "invited_by")
    search_fields = ("value", "project__name_ja", "project__name_en", "invited_by__username")
    readonly_fields = (
        "project",
        "role",
        "kind",
        "value",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_by",
        "accepted_at",
        "revoked_at",
        "revoked_by",
    )
    fields = readonly_fields

    @admin.display(description=_("state"))
    def state(self, obj: Invitation) -> str:
        return obj.state()

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    """The GakuNin ePPNs and ORCID iDs linked to accounts. Deleting one unlinks it (what
    the refusal pages ask an administrator for, e.g. after an institution changed its
    IdP's entityID); nothing else is edited here: only signing in links an identity."""

    list_display = ("subject", "provider", "user", "issuer", "created_at", "last_used_at")
    list_filter = ("provider",)
    list_select_related = ("user",)
    search_fields = ("subject", "user__username", "user__email")
    readonly_fields = ("user", "provider", "subject", "issuer", "created_at", "last_used_at")
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a read-only page; delete unlinks

    def delete_model(self, request, obj):
        # The admin's own log (LogEntry) keeps who deleted what; the security log too.
        log.info(
            "identity unlinked by admin: by=%s user=%s provider=%s subject=%s",
            request.user.pk,
            obj.user_id,
            obj.provider,
            obj.subject,
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
