"""Routes of the previews: the thumbnail and the IIIF Image API 3.0 service of each plane."""

from django.urls import path

from repository.previews import views

urlpatterns = [
    path(
        "objects/<int:object_id>/preview/thumbnail.jpg",
        views.object_thumbnail,
        name="object-thumbnail",
    ),
    path("objects/<int:object_id>/iiif/<int:plane>", views.iiif_base, name="object-iiif"),
    path(
        "objects/<int:object_id>/iiif/<int:plane>/info.json",
        views.iiif_info,
        name="object-iiif-info",
    ),
    path(
        "objects/<int:object_id>/iiif/<int:plane>/<str:region>/<str:size>/<str:rotation>/<str:image>",
        views.iiif_image,
        name="object-iiif-image",
    ),
]
