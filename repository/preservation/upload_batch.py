"""Many small files, cheaply: one PUT per file, and many uploads started or completed at once.

A folder of thousands of small files spent most of its time on the round trips around each
file (start, sign, complete), not on the bytes. Two things remove them, and neither skips a
check:

* **One PUT.** A file that fits in one part (``size <= part size``, 8 MiB) may ask for its
  single URL in the start answer (``single_put``). On S3 that URL is a presigned PutObject
  signed with the sender's ``Content-MD5`` and ``If-None-Match: *`` (no multipart upload
  to create, list and complete; the key can be written once only, so a replayed URL never
  replaces bytes that were verified); on the embedded profile it is the one-part URL of
  Kura's own part view. Completion is :func:`repository.preservation.uploads.upload_complete` as for
  any upload: the stored size and ETag must be those the sender claims, and the worker's
  SHA-256 is compared with the one declared.
* **Batches.** :func:`uploads_start_many` and :func:`uploads_complete_many` apply every
  check of :func:`~repository.preservation.uploads.upload_start` and
  :func:`~repository.preservation.uploads.upload_complete` to each file and answer each
  file on its own: one bad file (a refused name, no permission, over quota) is refused
  alone, the others go on. The files that pass are written set-wise, in one transaction
  (:func:`~repository.preservation.uploads.uploads_start`,
  :func:`~repository.preservation.uploads.uploads_complete`): one insert or update per
  table, one audit insert, one generation bump per record and project, the checksums
  queued together; the web's cost per file is a fraction of a single upload's.

A start may also ask to skip files Kura already holds (``skip_identical``): a stored,
verified, unquarantined object the caller can see, in the same project and record, with the
same name, size and SHA-256 is answered instead of a new upload, so a rerun of
``kura-upload`` sends nothing twice.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils.translation import gettext as _

from core.api import ServiceUnavailable
from repository.access import Action, visible_to
from repository.models import DataObject, UploadSession
from repository.preservation.object_store import SINGLE_PUT_UPLOAD_ID, object_store
from repository.preservation.uploads import (
    Completion,
    SignedPart,
    UploadRequest,
    filename_normalize,
    upload_sessions_for,
    upload_target,
    uploads_complete,
    uploads_start,
)

# What a file of a batch may fail with, answered for that file alone; anything else (the
# database gone) fails the whole request as it would a single one.
ITEM_ERRORS = (ValidationError, PermissionDenied, Http404, ServiceUnavailable)


@dataclass(frozen=True)
class StartOutcome:
    """One file of a batch start: a new upload (with its PUT URL for a one-part file), a
    verified object that already holds these bytes, or why the file was refused."""

    session: UploadSession | None = None
    put: SignedPart | None = None
    existing: DataObject | None = None
    error: Exception | None = None


@dataclass(frozen=True)
class CompleteOutcome:
    data_object: DataObject | None = None
    error: Exception | None = None


def upload_put_url(*, session: UploadSession, md5: str = "") -> SignedPart | None:
    """The one URL to PUT a one-part upload's bytes to, with the headers the PUT must
    carry (``Content-MD5`` when ``md5`` is given, ``If-None-Match`` on S3); None for an
    upload of several parts. Renewable through the parts endpoint (part 1)."""
    if session.part_count != 1:
        return None
    url = object_store().part_url(
        session.data_object.storage_key,
        session.upload_id,
        1,
        settings.KURA_UPLOAD_PART_URL_EXPIRY,
        content_md5=md5,
    )
    headers = {"Content-MD5": md5} if md5 else {}
    if session.upload_id == SINGLE_PUT_UPLOAD_ID:
        headers["If-None-Match"] = "*"
    return SignedPart(1, url, headers)


def _batch_size_check(count: int) -> None:
    if not 1 <= count <= settings.KURA_UPLOAD_BATCH_MAX:
        raise ValidationError(
            {
                "uploads": _("Give between 1 and %(max)s uploads at once; got %(count)s.")
                % {"max": settings.KURA_UPLOAD_BATCH_MAX, "count": count}
            }
        )


def _identity(request: UploadRequest) -> tuple | None:
    """(project, record, name as kept, size, SHA-256), or None if it cannot match."""
    if not request.sha256:
        return None
    try:
        name = filename_normalize(request.filename)
    except ValidationError:
        return None  # its start refuses it
    return (request.project_id, request.record_id, name, request.size, request.sha256.lower())


def objects_identical(*, actor, requests: list[UploadRequest]) -> dict[int, DataObject]:
    """{index of a request: a stored object that already holds its bytes}: verified, not
    quarantined, visible to ``actor``, in the same project and record, with the same name,
    size and SHA-256 (a request without a SHA-256 never matches). One query."""
    wanted = {index: key for index, request in enumerate(requests) if (key := _identity(request))}
    if not wanted:
        return {}
    candidates = visible_to(actor, Action.VIEW_METADATA).filter(
        project_id__in={key[0] for key in wanted.values()},
        original_filename__in={key[2] for key in wanted.values()},
        sha256__in={key[4] for key in wanted.values()},
        status=DataObject.Status.STORED,
        checksum_state=DataObject.ChecksumState.VERIFIED,
        quarantined_at__isnull=True,
    )
    held: dict[tuple, DataObject] = {}
    for data_object in candidates.order_by("pk"):
        key = (
            data_object.project_id,
            data_object.record_id,
            data_object.original_filename,
            data_object.size,
            data_object.sha256,
        )
        held.setdefault(key, data_object)
    return {index: held[key] for index, key in wanted.items() if key in held}


def uploads_start_many(
    *,
    actor,
    requests: list[UploadRequest],
    md5s: list[str] | None = None,
    skip_identical: bool = False,
    ip_address: str | None = None,
) -> list[StartOutcome]:
    """Start an upload for each request, each on its own (every check of
    :func:`~repository.preservation.uploads.upload_start` applies to each file); answers one outcome
    per request, in order. The files for one project and record are started together
    (:func:`~repository.preservation.uploads.uploads_start`: one transaction, set-wise
    writes). ``md5s`` (base64, "" for none) are signed into the one-PUT URLs of one-part
    files that asked for ``single_put``. With ``skip_identical`` a file Kura already holds
    (:func:`objects_identical`) is answered with that object instead."""
    _batch_size_check(len(requests))
    md5s = md5s or [""] * len(requests)
    identical = objects_identical(actor=actor, requests=requests) if skip_identical else {}
    outcomes: list[StartOutcome | None] = [None] * len(requests)
    groups: dict[tuple, list[int]] = {}  # one target check per project and record
    for index, request in enumerate(requests):
        if index in identical:
            outcomes[index] = StartOutcome(existing=identical[index])
        else:
            groups.setdefault((request.project_id, request.record_id), []).append(index)
    for indexes in groups.values():
        try:
            target = upload_target(actor=actor, request=requests[indexes[0]])
        except ITEM_ERRORS as exc:
            for index in indexes:
                outcomes[index] = StartOutcome(error=exc)
            continue
        started = uploads_start(
            actor=actor,
            target=target,
            requests=[requests[index] for index in indexes],
            ip_address=ip_address,
        )
        for index, session in zip(indexes, started, strict=True):
            if isinstance(session, Exception):
                outcomes[index] = StartOutcome(error=session)
                continue
            put = None
            if requests[index].single_put:
                put = upload_put_url(session=session, md5=md5s[index])
            outcomes[index] = StartOutcome(session=session, put=put)
    return outcomes


def uploads_complete_many(
    *, actor, completions: list[Completion], ip_address: str | None = None
) -> list[CompleteOutcome]:
    """Complete each upload on its own (every check of
    :func:`~repository.preservation.uploads.upload_complete`: parts, size and declared
    SHA-256; checksum queued), all in one transaction with set-wise writes
    (:func:`~repository.preservation.uploads.uploads_complete`); one outcome per
    completion, in order. An upload that is not the caller's is answered as not found, as
    alone."""
    _batch_size_check(len(completions))
    sessions = upload_sessions_for(actor=actor, upload_pks={c.upload_pk for c in completions})
    mine = [c for c in completions if c.upload_pk in sessions]
    completed = iter(
        uploads_complete(
            completions=mine,
            ip_address=ip_address,
        )
        if mine
        else []
    )
    outcomes = []
    for completion in completions:
        if completion.upload_pk not in sessions:
            outcomes.append(CompleteOutcome(error=Http404("No such upload.")))
            continue
        result = next(completed)
        if isinstance(result, ITEM_ERRORS):
            outcomes.append(CompleteOutcome(error=result))
        else:
            outcomes.append(CompleteOutcome(data_object=result))
    return outcomes
