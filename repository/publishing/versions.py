"""Publishing a record's version, and withdrawing a published record.

A steward publishes (:func:`dataset_version_publish`): the record's metadata as exported
and its file manifest are frozen into a new :class:`~repository.models.DatasetVersion`.
Only files a curator has already opened beyond the project are frozen, so publishing needs
no review of its own (docs/architecture.md, "Published versions and DOIs"). The DOI calls
are queued on commit (:mod:`repository.publishing.sync`); their outcome never undoes the
publication.
"""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.roles import ProjectAction, may
from core.audit import AuditAction
from core.tiers import beyond_project
from core.vocabularies import MetadataAccess
from dmp.history import record_items, record_revision_write
from dmp.models import DmpRecord, DmpRecordRevision
from dmp.services import required_item_errors
from repository.access import Action, visible_to
from repository.discovery.public.datacite import datacite_json
from repository.models import DataObject, DatasetConcept, DatasetVersion, DoiState
from repository.preservation import queue
from repository.publishing import doi
from repository.publishing.facts import (
    absolute,
    manifest_of,
    snapshot_of,
    version_facts,
    version_path,
)
from repository.services import audit_event_record

# What changes from one version to the next without the dataset changing.
_IDENTITY = ("doi", "url", "alternateIdentifiers", "version")


def concept_suffix(record_id: int) -> str:
    return f"kura.{record_id}"


def version_suffix(record_id: int, number: int) -> str:
    return f"kura.{record_id}.v{number}"


def _steward_record(actor, record_id) -> DmpRecord:
    """The record ``record_id``, locked, if ``actor`` is one of its stewards."""
    record = (
        DmpRecord.objects.select_for_update(of=("self",))
        .select_related("project", "project__institution")
        .get(pk=record_id)
    )
    if not may(actor, ProjectAction.EDIT_DMP, record.project):
        raise PermissionDenied(_("Only the project manager or a data manager may publish."))
    return record


def publishable_objects(actor, record: DmpRecord):
    """The record's files a version freezes, as its steward ``actor`` sees them (the access
    chokepoint): stored, verified, not quarantined, and on a tier beyond the project (which
    only a curator's approval puts them on)."""
    return (
        visible_to(actor, Action.VIEW_METADATA)
        .filter(
            record=record,
            status=DataObject.Status.STORED,
            checksum_state=DataObject.ChecksumState.VERIFIED,
            quarantined_at__isnull=True,
            tier__in=beyond_project(),
        )
        .order_by("original_filename", "pk")
    )


def _content(snapshot: list[dict], manifest: list[dict]) -> dict:
    """What a version says, without what names the version itself: equal for two versions
    that describe the same dataset."""
    facts = version_facts(
        snapshot,
        manifest,
        doi="",
        url="",
        public_ids={e["object_id"]: "" for e in manifest},
    )
    metadata = {k: v for k, v in datacite_json(facts).items() if k not in _IDENTITY}
    return {"metadata": metadata, "files": manifest}


def _refusals(record: DmpRecord, objects: list[DataObject]) -> list[str]:
    reasons = []
    if record.withdrawn_at is not None:
        reasons.append(_("The dataset has been withdrawn."))
    if record.metadata_access != MetadataAccess.OPEN:
        reasons.append(_("Only a record whose metadata is open can be published."))
    if required_item_errors(record):
        reasons.append(_("Required items of the record are missing."))
    if not objects:
        reasons.append(
            _(
                "No file of the record is open beyond the project yet: a curator must "
                "approve opening its files first."
            )
        )
    return reasons


def record_update_refusals(record: DmpRecord, before) -> dict[str, list[str]]:
    """Refuse to close the metadata of a record with published versions (a check lent to
    ``dmp.services.record_update``). Its versions were cited by their DOIs (or pages),
    which must keep resolving: withdrawing the dataset keeps them resolving to its
    tombstone, closing the metadata would make them lead nowhere (a 404). So the metadata
    of a published record stays open, withdrawn or not, and taking it down is withdrawal
    (docs/architecture.md, "Published versions and DOIs")."""
    closing = (
        before.get("metadata_access") == MetadataAccess.OPEN
        and record.metadata_access != MetadataAccess.OPEN
    )
    if not closing or not DatasetVersion.objects.filter(record_id=record.pk).exists():
        return {}
    return {
        "metadata_access": [
            _(
                "This dataset has published versions, whose DOIs and pages must keep "
                "resolving: its metadata stays open. To take it down, withdraw the dataset "
                "on its landing page; its versions and DOIs then lead to a tombstone page."
            )
        ]
    }


def dataset_version_publish(*, actor, record_id: int, ip_address: str | None = None):
    """Freeze the record ``record_id`` as its next version. ``DmpRecord.DoesNotExist``
    for a missing record, ``PermissionDenied`` for anyone but its stewards,
    ``ValidationError`` (with every reason) when it cannot be published."""
    provider = doi.provider()
    with transaction.atomic():
        record = _steward_record(actor, record_id)
        objects = list(publishable_objects(actor, record))
        if reasons := _refusals(record, objects):
            raise ValidationError(reasons)
        snapshot, manifest = snapshot_of(record), manifest_of(objects)
        previous = record.versions.order_by("-number").first()
        if previous is not None and _content(previous.snapshot, previous.manifest) == _content(
            snapshot, manifest
        ):
            raise ValidationError(
                _("Nothing has changed since version %(number)s.") % {"number": previous.number}
            )
        number = previous.number + 1 if previous else 1
        state = DoiState.PENDING if provider.registers else DoiState.LOCAL
        DatasetConcept.objects.get_or_create(
            record=record,
            defaults={"doi": provider.doi_for(concept_suffix(record.pk)), "doi_state": state},
        )
        version_doi = provider.doi_for(version_suffix(record.pk, number))
        facts = version_facts(
            snapshot,
            manifest,
            doi=version_doi,
            url=absolute(version_path(record.pk, number)),
            public_ids={o.pk: o.storage_key for o in objects},
            number=number,
        )
        version = DatasetVersion.objects.create(
            record=record,
            number=number,
            published_by=actor,
            snapshot=snapshot,
            metadata=datacite_json(facts),
            manifest=manifest,
            doi=version_doi,
            doi_state=state,
        )
        audit_event_record(
            actor=actor,
            action=AuditAction.VERSION_PUBLISHED,
            record=record,
            ip_address=ip_address,
            after={"version": number, "doi": version_doi, "files": len(manifest)},
        )
        if provider.registers:
            transaction.on_commit(lambda: queue.doi_sync_send(record.pk))
    return version


def dataset_withdraw(*, actor, record_id: int, reason: str, ip_address: str | None = None):
    """Withdraw the record: its landing page and every version become the tombstone, and
    its DOIs are hidden (registered, resolving to the tombstone). Stewards only."""
    reason = (reason or "").strip()
    with transaction.atomic():
        try:
            record = _steward_record(actor, record_id)
        except PermissionDenied as exc:
            raise PermissionDenied(
                _("Only the project manager or a data manager may withdraw a dataset.")
            ) from exc
        if record.withdrawn_at is not None:
            raise ValidationError(_("The dataset has been withdrawn."))
        if not reason:
            raise ValidationError(_("Give the reason for the withdrawal."))
        before = record_items(record)
        record.withdrawn_at = timezone.now()
        record.withdrawal_reason = reason
        record.save(update_fields=["withdrawn_at", "withdrawal_reason", "updated_at"])
        record_revision_write(
            record=record, actor=actor, kind=DmpRecordRevision.Kind.WITHDRAWN, before=before
        )
        audit_event_record(
            actor=actor,
            action=AuditAction.RECORD_WITHDRAWN,
            record=record,
            ip_address=ip_address,
            after={"reason": reason},
        )
        registered = record.versions.exclude(doi_state=DoiState.LOCAL).exists()
        if registered:
            transaction.on_commit(lambda: queue.doi_sync_send(record.pk))
    return record
