"""The public face of a dataset: its landing page and machine-readable exports."""

from urllib.parse import quote

from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from core import generations
from core.db import statement_timeout
from core.vocabularies import DATA_POLICY_FREE, Tier
from dmp.models import DmpRecord
from repository.access import projects_visible_to
from repository.discovery.public import citation, exports, landing, schemaorg
from repository.discovery.public.cache import cached_for_visitors
from repository.discovery.public.facts import RecordFacts


def _landing_url(request, record: DmpRecord) -> str:
    return request.build_absolute_uri(reverse("dataset-landing", args=[record.pk]))


def _export_url(request, record_id: int, fmt: str) -> str:
    return request.build_absolute_uri(reverse("dataset-export", args=[record_id, fmt]))


def record_facts(request, record: DmpRecord) -> RecordFacts:
    """The facts every export of ``record`` is built from, as seen through ``request``."""
    return RecordFacts(
        record,
        landing_url=_landing_url(request, record),
        files=landing.public_files(request, [record])[record.pk],
        catalog_url=request.build_absolute_uri(reverse("home")),
    )


def signposting_links(request, facts: RecordFacts) -> list[tuple[str, str, str]]:
    """FAIR Signposting level 1: (target, rel, media type) for the landing page."""
    links = [(facts.cite_as, "cite-as", "")]
    links += [
        (_export_url(request, facts.pk, entry.key), "describedby", entry.media_type)
        for entry in exports.described_by(facts)
    ]
    links += [(f.url, "item", f.media_type) for f in facts.files]
    if facts.licence and facts.licence.uri:
        links.append((facts.licence.uri, "license", ""))
    links += [
        ("https://schema.org/Dataset", "type", ""),
        ("https://schema.org/AboutPage", "type", ""),
    ]
    return links


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


def _tombstone(request, record: DmpRecord):
    return render(request, "repository/public/tombstone.html", {"record": record}, status=410)


def _access_request_mailto(record: DmpRecord) -> str:
    if not record.data_man_email:
        return ""
    subject = _("Access request: %(number)s %(title)s") % {
        "number": record.data_number,
        "title": record.title,
    }
    return f"mailto:{record.data_man_email}?subject={quote(subject)}"


@require_safe
@cached_for_visitors(scoped=lambda record_id: [generations.RECORD_FILES.of(record_id)])
@statement_timeout
def dataset_landing(request, record_id: int):
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    if record.withdrawn_at:
        return _tombstone(request, record)
    objects = list(landing.listed_objects(user=request.user, record=record))
    facts = record_facts(request, record)
    links = signposting_links(request, facts)
    project = record.project
    context = {
        "record": record,
        "project": project,
        "creators": list(record.creators.all()),
        "objects": objects,
        # Anyone who sees one of its objects may open the project page (access.project_rule).
        # For visitors without a session the page is cached under this record's files only
        # (public/cache.py), so it links the project when one of *these* files is listed,
        # never because of another record's files.
        "project_visible": bool(objects)
        or (
            request.user.is_authenticated
            and projects_visible_to(request.user).filter(pk=project.pk).exists()
        ),
        "licence": facts.licence,
        "access_right": facts.access_right,
        "data_type": facts.data_type,
        "fee_policy": DATA_POLICY_FREE[record.data_policy_free]
        if record.data_policy_free in DATA_POLICY_FREE
        else None,
        "research_field": facts.research_field,
        "funder": facts.funder,
        "keywords": facts.keywords,
        "doi": facts.doi,
        "cite_as": facts.cite_as,
        "citation": citation.citation_text(facts),
        "jsonld_script": schemaorg.script_tag(schemaorg.dataset(facts)),
        "signposts": [link for link in links if link[1] != "item"],
        "access_request_mailto": _access_request_mailto(record),
        "exports": exports.menu(facts),
        "has_public_files": bool(facts.files),
        "Tier": Tier,
    }
    response = render(request, "repository/public/landing.html", context)
    response["Link"] = link_header(links)
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
        raise Http404("This dataset is not exported in this format.")
    body = export.build(facts)
    response_class = StreamingHttpResponse if export.streamed else HttpResponse
    response = response_class(body, content_type=export.content_type)
    response["Content-Disposition"] = content_disposition_header(
        export.attachment, export.filename(facts)
    )
    response["Link"] = link_header([(facts.cite_as, "cite-as", "")])
    return response
