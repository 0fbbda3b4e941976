from django.contrib.auth import authenticate, login
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from oauth2_provider import views as oauth


def sign_in(request):
    """The provider's own sign-in: username (an ORCID iD) and password."""
    next_url = request.GET.get("next") or request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return HttpResponseBadRequest("bad next")
    if request.method == "POST":
        user = authenticate(
            request, username=request.POST.get("username"), password=request.POST.get("password")
        )
        if user is None:
            return HttpResponse("wrong password", status=401)
        login(request, user)
        return HttpResponseRedirect(next_url)
    return HttpResponse("sign in with POST username, password, next")


urlpatterns = [
    path("login/", sign_in),
    path("oauth/authorize", oauth.AuthorizationView.as_view()),
    path("oauth/token", oauth.TokenView.as_view()),
    path("oauth/jwks", oauth.JwksInfoView.as_view()),
    path("oauth/userinfo", oauth.UserInfoView.as_view()),
]
