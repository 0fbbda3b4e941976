"""Bringing the DOI provider in line with a record's versions (task ``kura.doi_sync``).

For each DOI of the record — every version's, then the concept's — :func:`doi_sync`
compares what the DOI should be (findable at the version's page; the concept at the
latest version's page with its metadata; after withdrawal, registered at the tombstone)
with its ``doi_state``, and makes the calls missing: draft, publish, update, hide. Each
outcome is written on the row and audited; a failure is kept in ``doi_error`` and
reported, so the task tries again (docs/architecture.md, "Published versions and DOIs").
"""

from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from core.audit import AuditAction
from dmp.models import DmpRecord
from repository.models import DatasetConcept, DatasetVersion, DoiState
from repository.publishing import doi
from repository.publishing.facts import absolute, version_path
from repository.services import audit_event_record


def _related(doi_name: str, relation: str) -> dict:
    return {
        "relatedIdentifier": doi_name,
        "relatedIdentifierType": "DOI",
        "relationType": relation,
    }


def version_metadata(version: DatasetVersion, concept: DatasetConcept | None, previous) -> dict:
    """The DataCite metadata of a version's DOI: the frozen metadata, its number, and
    its place among the versions."""
    data = dict(version.metadata) | {"version": str(version.number)}
    related = []
    if concept is not None and concept.doi:
        related.append(_related(concept.doi, "IsVersionOf"))
    if previous is not None and previous.doi:
        related.append(_related(previous.doi, "IsNewVersionOf"))
    if related:
        data["relatedIdentifiers"] = related
    return data


def concept_metadata(concept: DatasetConcept, versions: list[DatasetVersion]) -> dict:
    """The concept DOI's metadata: the latest version's, naming every version."""
    latest = versions[-1]
    # The concept is no version of its own: the latest version's number stays with it.
    data = {k: v for k, v in latest.metadata.items() if k not in ("doi", "version")}
    data["doi"] = concept.doi
    related = [_related(v.doi, "HasVersion") for v in versions if v.doi]
    if related:
        data["relatedIdentifiers"] = related
    return data


def _bring(row, provider, metadata: dict, url: str, *, withdrawn: bool, stale: bool) -> dict:
    """Make the calls that bring ``row``'s DOI where it should be; returns what changed
    (``{}`` when nothing did). Raises :class:`doi.DoiError`, with the state reached kept
    on ``row``."""
    state = row.doi_state
    if state == DoiState.LOCAL or not row.doi:
        return {}
    if state == DoiState.PENDING:
        provider.draft(row.doi, metadata)
        row.doi_state = DoiState.DRAFT
    if withdrawn:
        if row.doi_state != DoiState.REGISTERED:
            provider.hide(row.doi, metadata, url)
            row.doi_state = DoiState.REGISTERED
    elif row.doi_state in (DoiState.DRAFT, DoiState.REGISTERED):
        provider.publish(row.doi, metadata, url)
        row.doi_state = DoiState.FINDABLE
    elif stale:
        provider.update(row.doi, metadata, url)
    else:
        return {} if state == row.doi_state else {"doi_state": row.doi_state}
    return {"doi_state": row.doi_state, "url": url}


def _attempt(row, provider, metadata, url, *, record, withdrawn, stale, after=None) -> bool:
    """One DOI's calls, their outcome written on ``row`` and audited. False on failure."""
    before = row.doi_state
    error = ""
    try:
        changed = _bring(row, provider, metadata, url, withdrawn=withdrawn, stale=stale)
    except doi.DoiError as exc:
        changed, error = {}, str(exc)
    if not changed and not error and not row.doi_error:
        return True
    # The same failure again changes nothing a page shows: only the time of the call is
    # saved, a quiet field, so retries against an unreachable provider leave caches alone.
    same_failure = error and error == row.doi_error and row.doi_state == before
    row.doi_error = error
    row.doi_attempted_at = timezone.now()
    fields = (
        ["doi_attempted_at"] if same_failure else ["doi_state", "doi_error", "doi_attempted_at"]
    )
    if after is not None and not error:
        row.described_version = after
        fields.append("described_version")
    row.save(update_fields=fields)
    if error:
        audit_event_record(
            actor=None,
            action=AuditAction.DOI_FAILED,
            record=record,
            before={"doi": row.doi, "doi_state": before},
            after={"doi_state": row.doi_state},
            detail=error[:1000],
        )
        return False
    if changed:
        audit_event_record(
            actor=None,
            action=AuditAction.DOI_REGISTERED,
            record=record,
            before={"doi": row.doi, "doi_state": before},
            after={"doi": row.doi, **changed},
        )
    return True


def doi_sync(record_id: int) -> bool:
    """Make the provider's DOIs of record ``record_id`` what they should be. True when
    every DOI is in line (or the deployment registers none), False when a call failed."""
    provider = doi.provider()
    with transaction.atomic():
        concept = DatasetConcept.objects.select_for_update().filter(record_id=record_id).first()
        if concept is None:
            return True
        record = DmpRecord.objects.get(pk=record_id)
        versions = list(DatasetVersion.objects.filter(record=record).order_by("number"))
        if not versions or not provider.registers:
            return True
        withdrawn = record.withdrawn_at is not None
        tombstone = absolute(reverse("dataset-landing", args=[record.pk]))
        ok = True
        for previous, version in zip([None, *versions], versions, strict=False):
            url = tombstone if withdrawn else absolute(version_path(record.pk, version.number))
            metadata = version_metadata(version, concept, previous)
            ok &= _attempt(
                version, provider, metadata, url, record=record, withdrawn=withdrawn, stale=False
            )
        latest = versions[-1]
        url = tombstone if withdrawn else absolute(version_path(record.pk, latest.number))
        ok &= _attempt(
            concept,
            provider,
            concept_metadata(concept, versions),
            url,
            record=record,
            withdrawn=withdrawn,
            stale=concept.described_version != latest.number,
            after=latest.number,
        )
    return ok


def records_waiting() -> list[int]:
    """Records with a DOI not yet where it should be (for the hourly requeue)."""
    waiting = DatasetVersion.objects.filter(doi_state__in=(DoiState.PENDING, DoiState.DRAFT))
    failed = DatasetVersion.objects.exclude(doi_error="")
    concepts = DatasetConcept.objects.exclude(doi_state=DoiState.LOCAL).exclude(doi_error="")
    # A withdrawal whose sync was lost: its DOIs must still be hidden.
    unhidden = Q(record__withdrawn_at__isnull=False) & ~Q(
        doi_state__in=(DoiState.REGISTERED, DoiState.LOCAL)
    )
    ids = set(DatasetVersion.objects.filter(unhidden).values_list("record_id", flat=True))
    ids |= set(DatasetConcept.objects.filter(unhidden).values_list("record_id", flat=True))
    ids |= set(waiting.values_list("record_id", flat=True))
    ids |= set(failed.values_list("record_id", flat=True))
    ids |= set(concepts.values_list("record_id", flat=True))
    return sorted(ids)
