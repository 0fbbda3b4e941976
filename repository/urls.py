"""The repository's routes: pages, the public and harvesting surfaces, and the API (its
schema and documentation are wired in ``config/urls.py``). The list is in the order
Django tries it; docs/architecture.md, "URL map", mirrors it."""

from django.urls import include, path

from repository import views
from repository.discovery.oai import views as oai_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("oai", oai_views.endpoint, name="oai"),
    path("projects/<int:project_id>/", views.project_detail, name="project-detail"),
    path(
        "projects/<int:project_id>/dashboard/",
        views.project_dashboard,
        name="project-dashboard",
    ),
    path("projects/<int:project_id>/upload/", views.upload_page, name="project-upload"),
    path("objects/<int:object_id>/", views.object_detail, name="object-detail"),
    path(
        "objects/<int:object_id>/tier",
        views.object_tier_change,
        name="object-tier-change",
    ),
    path(
        "objects/<int:object_id>/quarantine",
        views.object_quarantine_clear,
        name="object-quarantine-clear",
    ),
    path(
        "objects/<int:object_id>/download",
        views.object_download,
        name="object-download",
    ),
    path("", include("repository.previews.urls")),
    path("", include("repository.plans.urls")),
    path("", include("repository.discovery.public.urls")),
    path("", include("repository.publishing.urls")),
    path("", include("repository.discovery.search.urls")),
    path("", include("repository.governance.review.urls")),
    path("", include("repository.governance.stewardship.urls")),
    path("", include("repository.preservation.my_uploads.urls")),
    path("", include("repository.mine.urls")),
    path("api/v1/", include("repository.api.urls")),
    path("api/v1/", include("repository.plans.api.urls")),
    path("api/v1/", include("repository.publishing.api.urls")),
]
