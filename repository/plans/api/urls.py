from django.urls import path

from repository.plans.api import views

urlpatterns = [
    path("records/", views.RecordListView.as_view(), name="api-record-list"),
    path("records/<int:record_id>/", views.RecordDetailView.as_view(), name="api-record-detail"),
]
