from django.urls import path

from repository.discovery.public import views

urlpatterns = [
    path("datasets/<int:record_id>/", views.dataset_landing, name="dataset-landing"),
    path("datasets/<int:record_id>/export/<str:fmt>", views.dataset_export, name="dataset-export"),
]
