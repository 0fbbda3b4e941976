"""Reads behind the public landing page and its machine-readable faces.

Records come only from :func:`repository.access.records_visible_to`, objects only from
:func:`repository.access.visible_to` / :func:`~repository.access.with_permissions`.
"""

import re
from dataclasses import dataclass, field

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from dmp.models import DmpRecord
from dmp.validators import DOI_PATTERN
from repository.access import Action, records_visible_to, visible_to, with_permissions
from repository.models import DataObject

# The DOI pattern refuses whitespace, <, >, quotes and backslashes: a record stored before
# links were validated may hold them, and its "DOI" must not reach a header or citation.
DOI_RE = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:)(" + DOI_PATTERN + ")$", re.IGNORECASE)


def record_for_landing(*, user, record_id) -> DmpRecord:
    """The record ``record_id`` if ``user`` may read its metadata, else ``Http404``."""
    try:
        return (
            records_visible_to(user)
            .select_related("project", "project__institution")
            .prefetch_related("creators")
            .get(pk=record_id)
        )
    except (DmpRecord.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404("No such dataset.") from exc


def listed_objects(*, user, record: DmpRecord) -> QuerySet:
    """Objects of ``record`` whose metadata ``user`` may see, each with a ``can_download`` flag."""
    objects = visible_to(user, Action.VIEW_METADATA).filter(
        record=record, status=DataObject.Status.STORED
    )
    return with_permissions(objects, user, Action.DOWNLOAD).order_by("original_filename", "pk")


def public_objects(record: DmpRecord) -> QuerySet:
    """Objects of ``record`` anyone may download: what exports and harvesters may name."""
    return (
        visible_to(AnonymousUser(), Action.DOWNLOAD)
        .filter(record=record)
        .order_by("original_filename", "pk")
    )


def doi_of(record: DmpRecord) -> str:
    """The bare DOI (``10.x/y``) if the record's repository link is a DOI, else ``""``."""
    match = DOI_RE.match((record.repo_url_doi_link or "").strip())
    return match.group(1) if match else ""


def cite_as(record: DmpRecord, landing_url: str) -> str:
    """What to cite: the DOI if the record has one, else its landing page."""
    doi = doi_of(record)
    return f"https://doi.org/{doi}" if doi else landing_url


def keywords(record: DmpRecord) -> list[str]:
    return list(dict.fromkeys(record.keyword_list("ja") + record.keyword_list("en")))


@dataclass
class PublicFile:
    """What the exports say about one downloadable object."""

    pk: int
    name: str
    size: int
    content_type: str
    sha256: str
    storage_key: str
    url: str = ""
    extra: dict = field(default_factory=dict)


def public_files(record: DmpRecord, request) -> list[PublicFile]:
    from django.urls import reverse

    return [
        PublicFile(
            pk=o.pk,
            name=o.original_filename,
            size=o.size,
            content_type=o.content_type or "application/octet-stream",
            sha256=o.sha256,
            storage_key=o.storage_key,
            url=request.build_absolute_uri(reverse("object-download", args=[o.pk])),
        )
        for o in public_objects(record).only(
            "pk", "original_filename", "size", "content_type", "sha256", "storage_key"
        )
    ]
