"""Reads behind the public landing page and its machine-readable faces.

Records come only from :func:`repository.access.records_visible_to`, objects only from
:func:`repository.access.visible_to` / :func:`~repository.access.with_permissions`.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse

from dmp.models import DmpRecord
from repository.access import Action, records_visible_to, visible_to, with_permissions
from repository.models import DataObject, DatasetVersion, DoiState


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
    """Objects of ``record`` whose metadata ``user`` may see, each with a ``can_download``
    and a ``can_preview`` flag (a thumbnail or a sequencing summary beside its name)."""
    objects = visible_to(user, Action.VIEW_METADATA).filter(
        record=record, status=DataObject.Status.STORED
    )
    return with_permissions(objects, user, Action.DOWNLOAD, Action.PREVIEW).order_by(
        "original_filename", "pk"
    )


def doi_url(doi: str) -> str:
    return f"https://doi.org/{doi}"


@dataclass(frozen=True)
class Citable:
    """A published resource: its DOI once findable (else ``""``) and its page."""

    doi: str
    url: str

    @property
    def identifier(self) -> str:
        """What identifies it: its DOI as a URL, else its page (a local identifier)."""
        return doi_url(self.doi) if self.doi else self.url


@dataclass(frozen=True)
class VersionRef(Citable):
    """A published version of the record, as the exports name it."""

    number: int = 0


@dataclass(frozen=True)
class Published:
    """What publication adds to a record's facts. For a live record: its concept DOI once
    findable (else ``""``) and its versions, oldest first. For a published version: the
    dataset it is a version of (the concept DOI, else the live record's page) and the
    version before it."""

    concept_doi: str = ""
    versions: tuple[VersionRef, ...] = ()
    version_of: Citable | None = None
    previous: VersionRef | None = None


def published(request, records: list[DmpRecord]) -> dict[int, Published]:
    """What the live exports of ``records`` say of their publication (one query for a
    record or an OAI-PMH page): the concept DOI once findable and every version, named by
    its DOI once findable (else by its page). A DOI still waiting for its provider is not
    named: it does not resolve yet."""
    ids = [r.pk for r in records if r.withdrawn_at is None]
    found: dict[int, Published] = {pk: Published() for pk in ids}
    if not ids:
        return found
    rows = (
        DatasetVersion.objects.filter(record_id__in=ids)
        .order_by("record_id", "number")
        .values_list(
            "record_id",
            "number",
            "doi",
            "doi_state",
            "record__concept__doi",
            "record__concept__doi_state",
        )
    )
    for record_id, number, doi, state, concept_doi, concept_state in rows:
        page = request.build_absolute_uri(reverse("dataset-version", args=[record_id, number]))
        version = VersionRef(findable_doi(doi, state), page, number)
        before = found[record_id]
        found[record_id] = Published(
            findable_doi(concept_doi or "", concept_state), (*before.versions, version)
        )
    return found


def findable_doi(doi: str, state: str) -> str:
    """``doi`` if it is findable at its provider, else ``""``: what may be cited."""
    return doi if doi and state == DoiState.FINDABLE else ""


@dataclass(frozen=True)
class PublicFile:
    """A file anyone may download: what exports, landing pages and harvesters may say
    about it. ``content_type`` is as stored (empty when unknown); ``media_type`` never is."""

    pk: int
    name: str
    size: int
    content_type: str
    sha256: str
    storage_key: str
    url: str

    @property
    def media_type(self) -> str:
        return self.content_type or "application/octet-stream"


def public_files(request, records: list[DmpRecord]) -> dict[int, list[PublicFile]]:
    """Files anyone may download, per record not withdrawn, in one query through the
    access rules (:func:`repository.access.visible_to` for an anonymous visitor)."""
    ids = [r.pk for r in records if r.withdrawn_at is None]
    files: dict[int, list[PublicFile]] = {pk: [] for pk in ids}
    if not ids:
        return files
    rows = (
        visible_to(AnonymousUser(), Action.DOWNLOAD)
        .filter(record_id__in=ids)
        .order_by("record_id", "original_filename", "pk")
        .values_list(
            "record_id", "pk", "original_filename", "size", "content_type", "sha256", "storage_key"
        )
    )
    for record_id, pk, *fields in rows:
        url = request.build_absolute_uri(reverse("object-download", args=[pk]))
        files[record_id].append(PublicFile(pk, *fields, url=url))
    return files
