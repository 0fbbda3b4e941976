"""A published version's facts: the record frozen at publication, rebuilt for every export.

The snapshot is the record, its creators, project and institution as Django's serializer
writes them (:func:`snapshot_of`); :func:`frozen_record` rebuilds them as unsaved model
instances wired to each other, so :class:`~repository.discovery.public.facts.RecordFacts`
and every serialiser read a version exactly as they read a live record. Nothing here
queries the frozen rows' tables.
"""

import json
from urllib.parse import urljoin

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core import serializers
from django.urls import reverse

from dmp.models import DmpRecord, RecordCreator
from repository.access import Action, visible_to
from repository.discovery.public.facts import RecordFacts
from repository.discovery.public.landing import PublicFile, Published


def absolute(path: str) -> str:
    """``path`` on Kura's public address (``KURA_BASE_URL``): what DOIs resolve to."""
    return urljoin(settings.KURA_BASE_URL, path)


def version_path(record_id: int, number: int) -> str:
    return reverse("dataset-version", args=[record_id, number])


def snapshot_of(record: DmpRecord) -> list[dict]:
    """The record as it is now, ready to be stored as JSON."""
    project = record.project
    rows = [project.institution] if project.institution_id else []
    rows += [project, record, *record.creators.all()]
    return json.loads(serializers.serialize("json", rows))


def frozen_record(snapshot: list[dict]) -> DmpRecord:
    """The record of ``snapshot``, unsaved, with its project, institution and creators."""
    rows = [d.object for d in serializers.deserialize("python", snapshot, ignorenonexistent=True)]
    by_model: dict[str, list] = {}
    for row in rows:
        by_model.setdefault(row._meta.label_lower, []).append(row)
    record = by_model["dmp.dmprecord"][0]
    project = by_model["accounts.project"][0]
    institutions = by_model.get("accounts.institution", [])
    project.institution = institutions[0] if institutions else None
    record.project = project
    creators = RecordCreator.objects.none()
    creators._result_cache = by_model.get("dmp.recordcreator", [])
    creators._prefetch_done = True
    record._prefetched_objects_cache = {"creators": creators}
    return record


def manifest_of(objects) -> list[dict]:
    """The frozen file list of ``objects``: what a version says it holds."""
    return [
        {
            "object_id": o.pk,
            "name": o.original_filename,
            "size": o.size,
            "sha256": o.sha256,
            "content_type": o.content_type,
            "tier": o.tier,
            "available_date": o.available_date.isoformat() if o.available_date else None,
        }
        for o in sorted(objects, key=lambda o: (o.original_filename, o.pk))
    ]


def still_public(manifest: list[dict]) -> dict[int, str]:
    """The manifest's objects anyone may still download, with the frozen bytes: their
    storage keys by id."""
    wanted = {entry["object_id"]: entry["sha256"] for entry in manifest}
    rows = (
        visible_to(AnonymousUser(), Action.DOWNLOAD)
        .filter(pk__in=wanted)
        .values_list("pk", "sha256", "storage_key")
    )
    return {pk: key for pk, sha256, key in rows if wanted[pk] == sha256}


def version_facts(
    snapshot: list[dict],
    manifest: list[dict],
    *,
    doi: str,
    url: str,
    public_ids: dict[int, str],
    number: int | None = None,
    published: Published = Published(),  # noqa: B008 - frozen, shared safely
) -> RecordFacts:
    """The facts of version ``number`` at ``url``: its frozen record cited by ``doi`` (or
    by ``url`` when its DOI is not findable), with the manifest's files that are still
    public (``public_ids``) and its place among the versions (``published``)."""
    record = frozen_record(snapshot)
    record.repo_url_doi_link = f"https://doi.org/{doi}" if doi else ""
    files = [
        PublicFile(
            e["object_id"],
            e["name"],
            e["size"],
            e.get("content_type", ""),
            e["sha256"],
            public_ids[e["object_id"]],
            absolute(reverse("object-download", args=[e["object_id"]])),
        )
        for e in manifest
        if e["object_id"] in public_ids
    ]
    return RecordFacts(
        record,
        landing_url=url,
        files=files,
        catalog_url=absolute("/"),
        published=published,
        version=str(number) if number else "",
    )
