from django.urls import path

from repository.discovery.public import views

urlpatterns = [
    path("datasets/<int:record_id>/", views.dataset_landing, name="dataset-landing"),
    path("datasets/<int:record_id>/export/<str:fmt>", views.dataset_export, name="dataset-export"),
    path("datasets/<int:record_id>/linkset", views.dataset_linkset, name="dataset-linkset"),
    path(
        "datasets/<int:record_id>/linkset.json",
        views.dataset_linkset_json,
        name="dataset-linkset-json",
    ),
]
