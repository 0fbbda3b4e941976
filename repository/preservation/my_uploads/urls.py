from django.urls import path

from repository.preservation.my_uploads import views

urlpatterns = [
    path("uploads/", views.my_uploads, name="my-uploads"),
    path(
        "objects/<int:object_id>/keep-duplicate",
        views.object_duplicate_keep,
        name="object-duplicate-keep",
    ),
]
