from django.contrib.auth import urls as auth_urls
from django.urls import path

from . import views

urlpatterns = [
    # django.contrib.auth's pages, with Kura's own login and logout (its sign-in methods).
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("tokens/<int:token_id>/revoke", views.api_token_revoke_view, name="api-token-revoke"),
    path("orcid/", views.orcid_account, name="account-orcid"),
    *(route for route in auth_urls.urlpatterns if route.name not in {"login", "logout"}),
]
