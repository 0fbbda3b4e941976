from django.urls import path

from repository.governance.review import views

urlpatterns = [
    path("review/", views.queue, name="review-queue"),
    path("review/<int:request_id>/", views.detail, name="review-detail"),
    path(
        "review/records/<int:record_id>/decide",
        views.decide_record,
        name="review-decide-record",
    ),
]
