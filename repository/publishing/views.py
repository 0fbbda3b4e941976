"""Version pages, their exports, and the stewards' publish and withdraw forms."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from core.db import statement_timeout
from core.http import client_ip
from dmp.models import DmpRecord
from repository.discovery.public import citation, exports, landing, schemaorg, signposts
from repository.discovery.public.views import (
    export_not_offered,
    export_response,
    link_header,
    tombstone,
)
from repository.models import DatasetConcept, DatasetVersion
from repository.publishing.facts import still_public
from repository.publishing.selectors import version_facts_of, version_files, visible_version
from repository.publishing.versions import dataset_version_publish, dataset_withdraw


def _facts(request, version: DatasetVersion, public_ids: dict[int, str]):
    return version_facts_of(version, public_ids, absolute_uri=request.build_absolute_uri)


@require_safe
@statement_timeout
def dataset_version(request, record_id: int, number: int):
    record, version = visible_version(user=request.user, record_id=record_id, number=number)
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
        "files": version_files(version, public_ids),
        "cite_as": signposts.cite_as(facts)[0],
        "citation": citation.citation_text(facts),
        "citations": citation.citations(facts),
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
    record, version = visible_version(user=request.user, record_id=record_id, number=number)
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
