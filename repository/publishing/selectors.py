"""What the version pages and the versions API read: each manifest entry of a version with
what became of it, and the DOI a version is cited by. Who may see a version at all is the
record's rule (``landing.record_for_landing``)."""

import datetime
from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.http import Http404
from django.urls import reverse

from core.tiers import dated_tiers
from core.vocabularies import Tier
from dmp.models import DmpRecord
from repository.access import Action, visible_to
from repository.discovery.public import landing
from repository.models import DataObject, DatasetConcept, DatasetVersion
from repository.publishing.facts import version_facts, version_path


@dataclass(frozen=True)
class VersionFile:
    """One manifest entry as a version shows it, with what became of it."""

    object_id: int
    name: str
    size: int
    sha256: str
    content_type: str
    tier: str  # at publication
    tier_label: str
    available_date: datetime.date | None  # at publication
    available: bool  # anyone may download the frozen bytes now
    opens_on: datetime.date | None  # still embargoed: the date it opens


def visible_version(*, user, record_id, number) -> tuple[DmpRecord, DatasetVersion]:
    """The record (live, as ``user`` may see it) and its version ``number``; ``Http404``
    if either is missing or hidden from ``user``, alike."""
    record = landing.record_for_landing(user=user, record_id=record_id)
    try:
        version = record.versions.get(number=number)
    except (DatasetVersion.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such version.") from exc
    return record, version


def cited_doi(version: DatasetVersion) -> str:
    """The DOI a version is cited by: only a findable one resolves to it."""
    return landing.findable_doi(version.doi, version.doi_state)


def version_facts_of(version: DatasetVersion, public_ids: dict[int, str], *, absolute_uri):
    """The version's facts, with the dataset it is a version of (the concept DOI once
    findable, else the live record's page) and its predecessor; ``absolute_uri`` makes a
    path absolute (the request's, or the site's)."""
    record_id = version.record_id
    concept = DatasetConcept.objects.filter(record_id=record_id).first()
    previous = DatasetVersion.objects.filter(record_id=record_id, number=version.number - 1)
    previous = previous.first()
    published = landing.Published(
        version_of=landing.Citable(
            landing.findable_doi(concept.doi, concept.doi_state) if concept else "",
            absolute_uri(reverse("dataset-landing", args=[record_id])),
        ),
        previous=landing.VersionRef(
            landing.findable_doi(previous.doi, previous.doi_state),
            absolute_uri(version_path(record_id, previous.number)),
            previous.number,
        )
        if previous
        else None,
    )
    return version_facts(
        version.snapshot,
        version.manifest,
        doi=cited_doi(version),
        url=absolute_uri(version_path(record_id, version.number)),
        public_ids=public_ids,
        number=version.number,
        published=published,
    )


def version_files(version: DatasetVersion, public_ids: dict[int, str]) -> list[VersionFile]:
    """Every manifest entry of ``version``; ``public_ids`` are those anyone may still
    download (``facts.still_public``)."""
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
        frozen_date = e.get("available_date")
        files.append(
            VersionFile(
                object_id=e["object_id"],
                name=e["name"],
                size=e["size"],
                sha256=e["sha256"],
                content_type=e.get("content_type", ""),
                tier=tier,
                tier_label=Tier(tier).label if tier in Tier.values else tier,
                available_date=datetime.date.fromisoformat(frozen_date) if frozen_date else None,
                available=available,
                opens_on=None if available else embargoed.get(e["object_id"]),
            )
        )
    return files
