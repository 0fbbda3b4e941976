"""Routes of the members pages, invitations and project creation (wired at the site's
root by ``config/urls.py``, beside the repository's project pages)."""

from django.urls import path

from . import member_views as views

urlpatterns = [
    path("projects/new/", views.project_new, name="project-new"),
    path("projects/<int:project_id>/members/", views.project_members, name="project-members"),
    path(
        "projects/<int:project_id>/members/<int:membership_id>/role",
        views.member_role_change,
        name="member-role-change",
    ),
    path(
        "projects/<int:project_id>/members/<int:membership_id>/remove",
        views.member_remove,
        name="member-remove",
    ),
    path(
        "projects/<int:project_id>/invitations/<int:invitation_id>/revoke",
        views.invitation_revoke,
        name="invitation-revoke",
    ),
    path(
        "invitations/<int:invitation_id>/accept",
        views.invitation_accept_addressed,
        name="invitation-accept-addressed",
    ),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
]
