from django.urls import path

from repository.mine import views

urlpatterns = [
    path("me/", views.my_page, name="my-page"),
    path("me/signed-in/", views.signed_in, name="signed-in"),
]
