from django.urls import path

from repository.publishing import views

urlpatterns = [
    path(
        "datasets/<int:record_id>/versions/<int:number>/",
        views.dataset_version,
        name="dataset-version",
    ),
    path(
        "datasets/<int:record_id>/versions/<int:number>/export/<str:fmt>",
        views.dataset_version_export,
        name="dataset-version-export",
    ),
    path("datasets/<int:record_id>/publish", views.dataset_publish, name="dataset-publish"),
    path("datasets/<int:record_id>/withdraw", views.dataset_withdraw_view, name="dataset-withdraw"),
]
