from django.urls import path

from . import views

urlpatterns = [
    path("tokens/", views.api_tokens, name="api-tokens"),
    path("tokens/<int:token_id>/revoke", views.api_token_revoke_view, name="api-token-revoke"),
    path("orcid/", views.orcid_account, name="account-orcid"),
]
