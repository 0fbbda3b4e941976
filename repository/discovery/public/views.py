"""The public face of a dataset: its landing page, its machine-readable exports and its
FAIR Signposting linkset."""

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from core import generations
from core.db import statement_timeout
from dmp.models import DmpRecord
from repository.discovery.public import exports, landing, signposts
from repository.discovery.public.cache import cached_for_visitors
from repository.discovery.public.exports import ExportFormat
from repository.discovery.public.facts import RecordFacts
from repository.discovery.public.presenters import landing_page, record_facts
from repository.discovery.public.signposts import link_header
from repository.presenters import page_context
from repository.usage.capture import counted_investigation, note_landing_reader


def export_not_offered(request, export: exports.ExportFormat):
    """404 for a format this record is not exported in, saying why (only ``needs_doi``
    withholds a format from a record its reader may see)."""
    message = _("%(format)s is offered only for datasets with a DOI.") % {"format": export.label}
    return render(request, "404.html", {"message": message}, status=404)


def tombstone(request, record: DmpRecord):
    return render(request, "repository/public/tombstone.html", {"record": record}, status=410)


def _record_files(record_id: int):
    return [generations.RECORD_FILES.of(record_id)]


def _negotiates(request) -> bool:
    """Whether the landing URL answers ``request`` with a metadata record, not the page:
    such answers bypass the page cache, which holds pages only."""
    return exports.negotiated(request) is not None


@require_safe
@counted_investigation
@cached_for_visitors(scoped=_record_files, bypass=_negotiates)
@statement_timeout
def dataset_landing(request, record_id: int):
    """The landing page, or the metadata record its ``Accept`` header prefers
    (content negotiation: ``exports.negotiated``); ``Vary: Accept`` either way. Each
    answer counts as a view, cached or not (``counted_investigation``)."""
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    note_landing_reader(request, record)
    export = facts = None
    if not record.withdrawn_at and exports.negotiated(request):
        facts = record_facts(request, record)
        export = exports.negotiated(request, facts)  # a format it lacks answers with the page
    if record.withdrawn_at:
        response = tombstone(request, record)
    elif export:
        response = export_response(request, export, facts)
        response["Content-Location"] = signposts.export_url(request, record.pk, export.key)
    else:
        page = landing_page(request, record, facts=facts)
        response = render(request, "repository/public/landing.html", page_context(page))
        response["Link"] = link_header(page.links)
    patch_vary_headers(response, ["Accept"])
    return response


def export_response(request, export: ExportFormat, facts: RecordFacts, *, filename: str = ""):
    """``facts`` in the format ``export``, with the links back to what it describes (a
    dataset's export, or a published version's under its own ``filename``)."""
    body = export.build(facts)
    response_class = StreamingHttpResponse if export.streamed else HttpResponse
    response = response_class(body, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(
        export.attachment, filename or export.filename(facts)
    )
    links = [signposts.cite_as(facts)]
    if export.describedby:
        links += signposts.describes(request, facts.pk)
    response["Link"] = link_header(links)
    return response


@require_safe
@counted_investigation
@statement_timeout
def dataset_export(request, record_id: int, fmt: str):
    export = exports.served(fmt)
    if export is None:
        raise Http404("No such export format.")
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    note_landing_reader(request, record)
    if record.withdrawn_at:
        return tombstone(request, record)
    facts = record_facts(request, record)
    if not export.offered(facts):
        return export_not_offered(request, export)
    return export_response(request, export, facts)


def _linkset(request, record_id: int, media_type: str, serialise):
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    if record.withdrawn_at:
        return tombstone(request, record)
    body = serialise(signposts.linkset(request, record_facts(request, record)))
    return HttpResponse(body, content_type=media_type)


@require_safe
@cached_for_visitors(scoped=_record_files)
@statement_timeout
def dataset_linkset(request, record_id: int):
    """FAIR Signposting level 2, as ``application/linkset`` (RFC 9264 text)."""
    return _linkset(request, record_id, signposts.LINKSET, signposts.linkset_text)


@require_safe
@cached_for_visitors(scoped=_record_files)
@statement_timeout
def dataset_linkset_json(request, record_id: int):
    """FAIR Signposting level 2, as ``application/linkset+json``."""
    return _linkset(request, record_id, signposts.LINKSET_JSON, signposts.linkset_json)
