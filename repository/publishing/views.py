"""Version pages, their exports, and the stewards' publish and withdraw forms."""

import datetime
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from core.db import statement_timeout
from core.http import client_ip
from core.tiers import dated_tiers
from core.vocabularies import Tier
from dmp.models import DmpRecord
from repository.access import Action, visible_to
from repository.discovery.public import citation, exports, landing, schemaorg, signposts
from repository.discovery.public.views import (
    export_not_offered,
    export_response,
    link_header,
    tombstone,
)
from repository.models import DataObject, DatasetConcept, DatasetVersion
from repository.publishing.facts import still_public, version_facts, version_path
from repository.publishing.versions import dataset_version_publish, dataset_withdraw


@dataclass(frozen=True)
class VersionFile:
    """One manifest entry as the version page shows it, with what became of it."""

    object_id: int
    name: str
    size: int
    sha256: str
    tier_label: str
    available: bool  # anyone may download the frozen bytes now
    opens_on: datetime.date | None  # still embargoed: the date it opens


def _version(request, record_id: int, number: int):
    """The record (live, as the visitor may see it) and its version ``number``; 404 if
    either is missing or hidden from the visitor."""
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    try:
        version = record.versions.get(number=number)
    except DatasetVersion.DoesNotExist as exc:
        raise Http404("No such version.") from exc
    return record, version


def _facts(request, version: DatasetVersion, public_ids: dict[int, str]):
    """The version's facts as ``request`` sees them, with the dataset it is a version of
    (the concept DOI once findable, else the live record's page) and its predecessor."""
    record_id = version.record_id
    concept = DatasetConcept.objects.filter(record_id=record_id).first()
    previous = DatasetVersion.objects.filter(record_id=record_id, number=version.number - 1)
    previous = previous.first()
    published = landing.Published(
        version_of=landing.Citable(
            landing.findable_doi(concept.doi, concept.doi_state) if concept else "",
            request.build_absolute_uri(reverse("dataset-landing", args=[record_id])),
        ),
        previous=landing.VersionRef(
            landing.findable_doi(previous.doi, previous.doi_state),
            request.build_absolute_uri(version_path(record_id, previous.number)),
            previous.number,
        )
        if previous
        else None,
    )
    return version_facts(
        version.snapshot,
        version.manifest,
        doi=landing.findable_doi(version.doi, version.doi_state),
        url=request.build_absolute_uri(version_path(record_id, version.number)),
        public_ids=public_ids,
        number=version.number,
        published=published,
    )


def _files(version: DatasetVersion, public_ids: dict[int, str]) -> list[VersionFile]:
    ids = [e["object_id"] for e in version.manifest]
    embargoed = dict(
        visible_to(AnonymousUser(), Action.VIEW_METADATA)
        .filter(
            pk__in=ids,
            status=DataObject.Status.STORED,
            quarantined_at__isnull=True,
            tier__in=dated_tiers(),
        )
        .values_list("pk", "available_date")
    )
    files = []
    for e in version.manifest:
        tier = e["tier"]
        available = e["object_id"] in public_ids
        files.append(
            VersionFile(
                e["object_id"],
                e["name"],
                e["size"],
                e["sha256"],
                Tier(tier).label if tier in Tier.values else tier,
                available,
                None if available else embargoed.get(e["object_id"]),
            )
        )
    return files


@require_safe
@statement_timeout
def dataset_version(request, record_id: int, number: int):
    record, version = _version(request, record_id, number)
    if record.withdrawn_at:
        return tombstone(request, record)
    public_ids = still_public(version.manifest)
    facts = _facts(request, version, public_ids)
    versions = list(record.versions.order_by("-number"))
    context = {
        "record": facts._record,
        "record_id": record.pk,
        "version": version,
        "versions": versions,
        "latest_number": versions[0].number,
        "is_latest": versions[0].number == version.number,
        "concept": DatasetConcept.objects.filter(record=record).first(),
        "files": _files(version, public_ids),
        "cite_as": signposts.cite_as(facts)[0],
        "citation": citation.citation_text(facts),
        "jsonld_script": schemaorg.script_tag(schemaorg.dataset(facts)),
        "exports": exports.menu(facts),
    }
    response = render(request, "repository/publishing/version.html", context)
    response["Link"] = link_header([signposts.cite_as(facts)])
    return response


@require_safe
@statement_timeout
def dataset_version_export(request, record_id: int, number: int, fmt: str):
    export = exports.served(fmt)
    if export is None:
        raise Http404("No such export format.")
    record, version = _version(request, record_id, number)
    if record.withdrawn_at:
        return tombstone(request, record)
    facts = _facts(request, version, still_public(version.manifest))
    if not export.offered(facts):
        return export_not_offered(request, export)
    filename = f"kura-{record.pk}-v{version.number}.{export.extension}"
    return export_response(request, export, facts, filename=filename)


def _refused(request, record_id: int, exc: ValidationError):
    record = landing.record_for_landing(user=request.user, record_id=record_id)
    context = {"record": record, "reasons": exc.messages}
    return render(request, "repository/publishing/refused.html", context, status=400)


@login_required
@require_POST
def dataset_publish(request, record_id: int):
    landing.record_for_landing(user=request.user, record_id=record_id)  # else 404
    try:
        version = dataset_version_publish(
            actor=request.user, record_id=record_id, ip_address=client_ip(request)
        )
    except DmpRecord.DoesNotExist as exc:
        raise Http404("No such dataset.") from exc
    except ValidationError as exc:
        return _refused(request, record_id, exc)
    messages.success(request, _("Version %(number)s was published.") % {"number": version.number})
    return redirect(reverse("dataset-version", args=[record_id, version.number]))


@login_required
@require_POST
def dataset_withdraw_view(request, record_id: int):
    landing.record_for_landing(user=request.user, record_id=record_id)  # else 404
    try:
        dataset_withdraw(
            actor=request.user,
            record_id=record_id,
            reason=request.POST.get("reason", ""),
            ip_address=client_ip(request),
        )
    except DmpRecord.DoesNotExist as exc:
        raise Http404("No such dataset.") from exc
    except ValidationError as exc:
        return _refused(request, record_id, exc)
    return redirect(reverse("dataset-landing", args=[record_id]))
