"""The public face of a dataset: its landing page and machine-readable exports."""

from urllib.parse import quote

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from core import generations
from core.db import statement_timeout
from dmp.models import DmpRecord
from repository.discovery.public import exports, landing
from repository.discovery.public.cache import cached_for_visitors
from repository.discovery.public.presenters import landing_page, record_facts
from repository.presenters import page_context

# Everything RFC 3986 allows in a URI except what ends a header link: a target is
# percent-encoded to these, so no stored value can leave its <…> (or add a header line).
_LINK_TARGET_SAFE = "!#$%&()*+,-./:;=?@[]_~"


def link_target(url: str) -> str:
    """``url`` as it can stand between ``<`` and ``>`` in a ``Link`` header."""
    return quote(url, safe=_LINK_TARGET_SAFE)


def link_header(links) -> str:
    return ", ".join(
        f'<{link_target(target)}>; rel="{rel}"' + (f'; type="{media}"' if media else "")
        for target, rel, media in links
    )


def _not_offered(request, export: exports.ExportFormat):
    """404 for a format this record is not exported in, saying why (only ``needs_doi``
    withholds a format from a record its reader may see)."""
    message = _("%(format)s is offered only for datasets with a DOI.") % {"format": export.label}
    return render(request, "404.html", {"message": message}, status=404)


def _tombstone(request, record: DmpRecord):
    return render(request, "repository/public/tombstone.html", {"record": record}, status=410)


@require_safe
@cached_for_visitors(scoped=lambda record_id: [generations.RECORD_FILES.of(record_id)])
@statement_timeout
def dataset_landing(request, record_id: int):
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    if record.withdrawn_at:
        return _tombstone(request, record)
    page = landing_page(request, record)
    response = render(request, "repository/public/landing.html", page_context(page))
    response["Link"] = link_header(page.links)
    return response


@require_safe
@statement_timeout
def dataset_export(request, record_id: int, fmt: str):
    export = exports.served(fmt)
    if export is None:
        raise Http404("No such export format.")
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    if record.withdrawn_at:
        return _tombstone(request, record)
    facts = record_facts(request, record)
    if not export.offered(facts):
        return _not_offered(request, export)
    body = export.build(facts)
    response_class = StreamingHttpResponse if export.streamed else HttpResponse
    response = response_class(body, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(
        export.attachment, export.filename(facts)
    )
    response["Link"] = link_header([(facts.cite_as, "cite-as", "")])
    return response
