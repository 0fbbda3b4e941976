from django.urls import path

from repository.api import members, requests, upload_batch, views
from repository.usage import api as usage

urlpatterns = [
    path("uploads/", views.UploadListView.as_view(), name="upload-list"),
    path("uploads/part", views.part_put, name="upload-part-put"),
    path("uploads/batch/", upload_batch.UploadBatchStartView.as_view(), name="upload-batch"),
    path(
        "uploads/batch/complete",
        upload_batch.UploadBatchCompleteView.as_view(),
        name="upload-batch-complete",
    ),
    path("uploads/<int:upload_id>", views.UploadDetailView.as_view(), name="upload-detail"),
    path("uploads/<int:upload_id>/parts", views.UploadPartsView.as_view(), name="upload-parts"),
    path(
        "uploads/<int:upload_id>/complete",
        views.UploadCompleteView.as_view(),
        name="upload-complete",
    ),
    path("projects/", views.ProjectListView.as_view(), name="api-project-list"),
    path(
        "projects/<int:project_id>/", views.ProjectDetailView.as_view(), name="api-project-detail"
    ),
    path(
        "projects/<int:project_id>/members/",
        members.MemberListView.as_view(),
        name="api-member-list",
    ),
    path(
        "projects/<int:project_id>/members/<int:membership_id>/",
        members.MemberDetailView.as_view(),
        name="api-member-detail",
    ),
    path(
        "projects/<int:project_id>/invitations/",
        members.InvitationListView.as_view(),
        name="api-invitation-list",
    ),
    path(
        "projects/<int:project_id>/invitations/<int:invitation_id>/",
        members.InvitationDetailView.as_view(),
        name="api-invitation-detail",
    ),
    path("objects/", views.DataObjectListView.as_view(), name="api-object-list"),
    path("tier-requests/", requests.TierRequestListView.as_view(), name="api-tier-request-list"),
    path(
        "tier-requests/<int:request_id>/",
        requests.TierRequestDetailView.as_view(),
        name="api-tier-request-detail",
    ),
    path(
        "access-requests/",
        requests.AccessRequestListView.as_view(),
        name="api-access-request-list",
    ),
    path(
        "access-requests/<int:request_id>/",
        requests.AccessRequestDetailView.as_view(),
        name="api-access-request-detail",
    ),
    path(
        "access-requests/<int:request_id>/decision",
        requests.AccessRequestDecisionView.as_view(),
        name="api-access-request-decision",
    ),
    path("audit-events/", requests.AuditEventListView.as_view(), name="api-audit-event-list"),
    path(
        "audit-events/<int:event_id>/",
        requests.AuditEventDetailView.as_view(),
        name="api-audit-event-detail",
    ),
    path(
        "tier-requests/<int:request_id>/decision",
        requests.TierRequestDecisionView.as_view(),
        name="api-tier-request-decision",
    ),
    path(
        "objects/<int:object_id>/", views.DataObjectDetailView.as_view(), name="api-object-detail"
    ),
    path(
        "records/<int:record_id>/usage",
        usage.RecordUsageView.as_view(),
        name="api-record-usage",
    ),
    path("reports/dsr", usage.DatasetReportView.as_view(), name="api-report-dsr"),
]
