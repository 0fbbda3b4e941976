from django.urls import path

from repository.plans import views

urlpatterns = [
    path("projects/<int:project_id>/dmp/", views.dmp_page, name="project-dmp"),
    path("projects/<int:project_id>/dmp/edit/", views.plan_edit, name="project-dmp-edit"),
    path("projects/<int:project_id>/dmp/import/", views.dmp_import, name="project-dmp-import"),
    path("projects/<int:project_id>/dmp/records/new/", views.record_new, name="dmp-record-new"),
    path(
        "projects/<int:project_id>/dmp/records/<int:record_id>/",
        views.record_detail,
        name="dmp-record-detail",
    ),
    path(
        "projects/<int:project_id>/dmp/records/<int:record_id>/edit/",
        views.record_edit,
        name="dmp-record-edit",
    ),
    path("programs/", views.programs, name="programs"),
    path(
        "programs/<str:funder>/<str:funding_stream_code>/export",
        views.program_export,
        name="program-export",
    ),
]
