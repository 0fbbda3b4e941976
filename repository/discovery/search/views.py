"""Dataset browse/search and the crawler files (sitemap.xml, robots.txt)."""

import math
from functools import wraps

from django.contrib.sitemaps import Sitemap
from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from accounts.throttling import SearchRateThrottle
from core.db import statement_timeout
from repository.discovery.public.cache import cached_for_visitors
from repository.discovery.search import selectors


def _query_string(params: QueryDict, **changes) -> str:
    """``params`` with ``changes`` applied (``None`` removes a key), always without a page."""
    updated = params.copy()
    updated.pop("page", None)
    for key, value in changes.items():
        updated.pop(key, None)
        if value is not None:
            updated[key] = value
    encoded = updated.urlencode()
    return f"?{encoded}" if encoded else "?"


def searches_throttled(view):
    """Refuse (429, ``Retry-After``) an address past ``KURA_SEARCH_THROTTLE`` searches that
    reach the database; pages served from the cache are answered before this counts."""

    @wraps(view)
    def throttled(request, *args, **kwargs):
        throttle = SearchRateThrottle()
        if throttle.allow_request(request, None):
            return view(request, *args, **kwargs)
        wait = max(1, math.ceil(throttle.wait() or 1))
        response = render(request, "429.html", {"wait": wait}, status=429)
        response["Retry-After"] = str(wait)
        response["Cache-Control"] = "no-store"
        return response

    return throttled


@require_safe
@cached_for_visitors(params=frozenset({"q", "page", *selectors.FACET_PARAMS}))
@searches_throttled
@statement_timeout
def dataset_list(request):
    search = selectors.dataset_search(
        user=request.user,
        query=request.GET.get("q", ""),
        params=request.GET,
        page_number=request.GET.get("page", 1),
    )
    for facet in search.facets:
        facet.clear_url = _query_string(request.GET, **{facet.param: None})
        for value in facet.values:
            value.url = _query_string(
                request.GET, **{facet.param: None if value.selected else value.value}
            )
    context = {"search": search, "page_query": _query_string(request.GET)[1:]}
    return render(request, "search/datasets.html", context)


class DatasetSitemap(Sitemap):
    """Open landing pages, for crawlers."""

    def items(self):
        return selectors.sitemap_records()

    def location(self, item) -> str:
        return selectors.dataset_path(item.pk)

    def lastmod(self, item):
        return item.updated_at


SITEMAPS = {"datasets": DatasetSitemap}

DISALLOWED_PATHS = ("/admin/", "/api/", "/accounts/", "/review/", "/projects/*/upload/")


@require_safe
def robots_txt(request):
    lines = ["User-agent: *", "Allow: /"]
    lines += [f"Disallow: {path}" for path in DISALLOWED_PATHS]
    lines += ["", f"Sitemap: {request.build_absolute_uri(reverse('sitemap'))}", ""]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")
