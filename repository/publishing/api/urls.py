from django.urls import path

from repository.publishing.api import views

urlpatterns = [
    path(
        "records/<int:record_id>/versions/",
        views.VersionListView.as_view(),
        name="api-version-list",
    ),
    path(
        "records/<int:record_id>/versions/<int:number>/",
        views.VersionDetailView.as_view(),
        name="api-version-detail",
    ),
    path(
        "records/<int:record_id>/withdraw",
        views.WithdrawView.as_view(),
        name="api-record-withdraw",
    ),
]
