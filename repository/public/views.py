"""The public face of a dataset: its landing page and machine-readable exports."""

import json
import xml.etree.ElementTree as ET  # noqa: S405 - serialising our own tree only
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

from . import bagit, citation, datacite, facts, landing, schemaorg
from .cache import cached_for_visitors

DATACITE_JSON = "application/vnd.datacite.datacite+json"
EXPORTS = {
    # format: (content type, file extension)
    "datacite-json": (DATACITE_JSON, "json"),
    "datacite-xml": ("application/vnd.datacite.datacite+xml", "xml"),
    "jsonld": ("application/ld+json", "jsonld"),
    "jpcoar": ("application/xml", "xml"),
    "bibtex": ("application/x-bibtex; charset=utf-8", "bib"),
    "ris": ("application/x-research-info-systems; charset=utf-8", "ris"),
    "bagit": ("application/zip", "zip"),
}


def _landing_url(request, record: DmpRecord) -> str:
    return request.build_absolute_uri(reverse("dataset-landing", args=[record.pk]))


def _export_url(request, record: DmpRecord, fmt: str) -> str:
    return request.build_absolute_uri(reverse("dataset-export", args=[record.pk, fmt]))


def signposting_links(request, record: DmpRecord, files) -> list[tuple[str, str, str]]:
    """FAIR Signposting level 1: (target, rel, media type) for the landing page."""
    landing_url = _landing_url(request, record)
    links = [
        (facts.cite_as(record, landing_url), "cite-as", ""),
        (_export_url(request, record, "datacite-json"), "describedby", DATACITE_JSON),
        (_export_url(request, record, "jsonld"), "describedby", "application/ld+json"),
    ]
    links += [(f.url, "item", f.content_type) for f in files]
    licence = facts.licence(record)
    if licence and licence.uri:
        links.append((licence.uri, "license", ""))
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
    files = landing.public_files(record, request)
    landing_url = _landing_url(request, record)
    jsonld = schemaorg.dataset(
        record,
        landing_url=landing_url,
        catalog_url=request.build_absolute_uri(reverse("home")),
        files=files,
    )
    links = signposting_links(request, record, files)
    project = record.project
    field = facts.research_field(record)
    context = {
        "record": record,
        "project": project,
        "creators": facts.creators(record),
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
        "licence": facts.licence(record),
        "access_right": facts.access_right(record),
        "data_type": facts.data_type(record),
        "fee_policy": DATA_POLICY_FREE[record.data_policy_free]
        if record.data_policy_free in DATA_POLICY_FREE
        else None,
        "research_field": field,
        "funder": facts.funder(record),
        "keywords": facts.keywords(record),
        "doi": facts.doi_of(record),
        "cite_as": facts.cite_as(record, landing_url),
        "citation": citation.citation_text(record, landing_url=landing_url),
        "jsonld_script": schemaorg.script_tag(jsonld),
        "signposts": [link for link in links if link[1] != "item"],
        "access_request_mailto": _access_request_mailto(record),
        "exports": [
            ("datacite-json", "DataCite JSON"),
            ("datacite-xml", "DataCite XML"),
            ("jsonld", "JSON-LD (schema.org)"),
            ("jpcoar", "JPCOAR 2.0"),
            ("bibtex", "BibTeX"),
            ("ris", "RIS"),
        ],
        "has_public_files": bool(files),
        "Tier": Tier,
    }
    response = render(request, "repository/public/landing.html", context)
    response["Link"] = link_header(links)
    return response


def _jpcoar(record: DmpRecord, *, landing_url: str, files) -> bytes:
    from repository.oai.metadata import PublicFile, jpcoar_element

    element = jpcoar_element(
        record,
        landing_url=landing_url,
        files=[PublicFile(f.url, f.name, f.size, f.content_type) for f in files],
    )
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


@require_safe
@statement_timeout
def dataset_export(request, record_id: int, fmt: str):
    if fmt not in EXPORTS:
        raise Http404("No such export format.")
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    if record.withdrawn_at:
        return _tombstone(request, record)
    content_type, extension = EXPORTS[fmt]
    files = landing.public_files(record, request)
    landing_url = _landing_url(request, record)
    filename = f"kura-{record.pk}.{extension}"
    if fmt == "bagit":
        root = f"kura-{record.pk}"
        stream, _fetched = bagit.bag_stream(record, landing_url=landing_url, files=files, root=root)
        response = StreamingHttpResponse(stream, content_type=content_type)
    else:
        if fmt in {"datacite-json", "datacite-xml"}:
            data = datacite.datacite_json(record, landing_url=landing_url, files=files)
            body = (
                json.dumps(data, ensure_ascii=False, indent=2)
                if fmt == "datacite-json"
                else datacite.datacite_xml(data)
            )
        elif fmt == "jsonld":
            data = schemaorg.dataset(
                record,
                landing_url=landing_url,
                catalog_url=request.build_absolute_uri(reverse("home")),
                files=files,
            )
            body = json.dumps(data, ensure_ascii=False, indent=2)
        elif fmt == "jpcoar":
            body = _jpcoar(record, landing_url=landing_url, files=files)
        elif fmt == "bibtex":
            body = citation.bibtex(record, landing_url=landing_url)
        else:
            body = citation.ris(record, landing_url=landing_url)
        response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(
        fmt in {"bagit", "bibtex", "ris"}, filename
    )
    response["Link"] = link_header([(facts.cite_as(record, landing_url), "cite-as", "")])
    return response
