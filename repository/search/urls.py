from django.contrib.sitemaps.views import sitemap
from django.urls import path

from . import views

urlpatterns = [
    path("datasets/", views.dataset_list, name="dataset-list"),
    path(
        "sitemap.xml",
        sitemap,
        {"sitemaps": views.SITEMAPS},
        name="sitemap",
    ),
    path("robots.txt", views.robots_txt, name="robots-txt"),
]
