from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import api
from repository import views as repository_views
from repository.oai import views as oai_views

urlpatterns = [
    path("", repository_views.home, name="home"),
    path("healthz", repository_views.healthz, name="healthz"),
    path("readyz", repository_views.readyz, name="readyz"),
    path("oai", oai_views.endpoint, name="oai"),
    path("projects/<int:project_id>/", repository_views.project_detail, name="project-detail"),
    path(
        "projects/<int:project_id>/dashboard/",
        repository_views.project_dashboard,
        name="project-dashboard",
    ),
    path("projects/<int:project_id>/upload/", repository_views.upload_page, name="project-upload"),
    path("objects/<int:object_id>/", repository_views.object_detail, name="object-detail"),
    path(
        "objects/<int:object_id>/tier",
        repository_views.object_tier_change,
        name="object-tier-change",
    ),
    path(
        "objects/<int:object_id>/quarantine",
        repository_views.object_quarantine_clear,
        name="object-quarantine-clear",
    ),
    path(
        "objects/<int:object_id>/download",
        repository_views.object_download,
        name="object-download",
    ),
    path("", include("repository.plans.urls")),
    path("", include("repository.public.urls")),
    path("", include("repository.search.urls")),
    path("", include("repository.review.urls")),
    path("", include("repository.stewardship.urls")),
    path("", include("repository.my_uploads.urls")),
    path("api/v1/", include("repository.api.urls")),
    path("api/v1/", include("repository.plans.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api.not_found),  # last under /api/: a JSON 404, never the HTML page
    path("accounts/", include("accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    # Without a CSRF token, so that public pages carry no per-visitor token and can be
    # cached: the worst a forged request can do here is switch someone's UI language.
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
handler500 = "config.outages.server_error"
