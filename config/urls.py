from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import OrcidCallbackView, OrcidSignInView
from core import api

urlpatterns = [
    path("", include("repository.urls")),
    path("", include("accounts.member_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api.not_found),  # last under /api/: a JSON 404, never the HTML page
    path("accounts/", include("accounts.urls")),
    # ORCID sign-in (OpenID Connect); answers 404 unless KURA_ORCID_CLIENT_ID is set. The
    # callback's address is the redirect URI registered with ORCID (README).
    path("oidc/authenticate/", OrcidSignInView.as_view(), name="oidc_authentication_init"),
    path("oidc/callback/", OrcidCallbackView.as_view(), name="oidc_authentication_callback"),
    path("saml2/", include("accounts.saml.urls")),
    # Without a CSRF token, so that public pages carry no per-visitor token and can be
    # cached: the worst a forged request can do here is switch someone's UI language.
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
handler500 = "config.outages.server_error"
