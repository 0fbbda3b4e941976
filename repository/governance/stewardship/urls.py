from django.urls import path

from repository.governance.stewardship import views

urlpatterns = [
    path(
        "datasets/<int:record_id>/request-access/",
        views.access_request_new,
        name="dataset-request-access",
    ),
    path(
        "projects/<int:project_id>/access-requests/",
        views.project_access_requests,
        name="project-access-requests",
    ),
    path(
        "projects/<int:project_id>/access-requests/<int:request_id>/approve",
        views.access_request_approve,
        name="access-request-approve",
    ),
    path(
        "projects/<int:project_id>/access-requests/<int:request_id>/reject",
        views.access_request_reject,
        name="access-request-reject",
    ),
    path(
        "projects/<int:project_id>/access-grants/<int:grant_id>/revoke",
        views.access_grant_revoke,
        name="access-grant-revoke",
    ),
    path("objects/<int:object_id>/delete", views.object_delete, name="object-delete"),
    path("projects/<int:project_id>/audit/", views.project_audit_trail, name="project-audit"),
    path("audit/", views.site_audit_trail, name="audit-trail"),
]
