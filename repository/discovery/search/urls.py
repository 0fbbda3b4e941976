from django.contrib.sitemaps.views import sitemap
from django.urls import path

from core.db import statement_timeout
from repository.discovery.search import views

urlpatterns = [
    path("datasets/", views.dataset_list, name="dataset-list"),
    path(
        "sitemap.xml",
        statement_timeout(sitemap),
        {"sitemaps": views.SITEMAPS},
        name="sitemap",
    ),
    path("robots.txt", views.robots_txt, name="robots-txt"),
]
