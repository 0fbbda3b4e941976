"""Reads for pages: every data object comes through :mod:`repository.access`."""

from django.db.models import Count, Q, QuerySet, Sum

from accounts.models import Membership, Project, Role
from dmp.vocabularies import Tier

from .access import (
    Action,
    permissions_for,
    project_role,
    records_visible_to,
    visible_to,
    with_permissions,
)
from .models import DataObject


def data_object_list(*, user, project: Project | None = None) -> QuerySet:
    """Objects ``user`` may see, newest first, with permission flags for the page."""
    objects = visible_to(user, Action.VIEW_METADATA)
    if project is not None:
        objects = objects.filter(project=project)
    objects = objects.select_related("record", "uploaded_by")
    return with_permissions(objects, user, Action.DOWNLOAD, Action.EDIT)


def recent_public_objects(*, user, limit: int = 10) -> list[DataObject]:
    """The newest objects anyone may download, for the home page."""
    anonymous_view = visible_to(user, Action.DOWNLOAD).filter(tier="public")
    return list(
        anonymous_view.select_related("project", "record").order_by("-stored_at", "-pk")[:limit]
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


def project_page_context(*, user, project: Project) -> dict:
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
    return {
        "project": project,
        "objects": objects,
        "totals": totals,
        "by_tier": by_tier,
        "tier_counts": [
            {"tier": tier.value, "label": tier.label, "count": by_tier[tier.value]}
            for tier in Tier
            if tier.value in by_tier
        ],
        "role": role,
        "role_label": Role(role).label if role else None,
        "members": members if role else Membership.objects.none(),
        "records": records,
        # Objects may be listed while their record's metadata is closed to this user.
        "readable_record_ids": {record.pk for record in records},
    }


def object_page_context(*, user, data_object: DataObject) -> dict:
    record = None
    if data_object.record_id:
        record = records_visible_to(user).filter(pk=data_object.record_id).first()
    return {
        "object": data_object,
        "record": record,
        "permissions": permissions_for(user, data_object),
        "fixity_checks": data_object.fixity_checks.all()[:10],
    }
