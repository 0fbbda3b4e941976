"""Multipart uploads straight into storage: start, sign parts, list, complete, abort.

The browser (or the command-line client) sends bytes to presigned part URLs; Kura only
creates, checks and completes the multipart upload. Completion checks every part's ETag
and size against what the storage holds, then the stored size, and queues the checksum.

End to end: a sender that gives each part's MD5 when it asks for the part's URL gets a URL
the store honours only with exactly those bytes, and a sender that gives the whole file's
SHA-256 (at the start or at completion) has it cross-checked by the checksum worker — the
object is then verified from the researcher's disk to the store, not only at rest.
"""

import logging
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Sum
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Project
from accounts.roles import ProjectAction, may
from core.api import ServiceUnavailable
from core.machine_text import Message
from core.tiers import beyond_project, dated_tiers, most_open_within_project
from dmp.models import DmpRecord
from repository.access import records_visible_to
from repository.governance.tiers import (
    REASON_NEEDED,
    record_personal_data_blocker,
    tier_request_create,
)
from repository.models import AuditEvent, DataObject, UploadSession, new_storage_key
from repository.preservation.object_store import (
    SINGLE_PUT_UPLOAD_ID,
    NoSuchUpload,
    StoredPart,
    StoreError,
    object_store,
)
from repository.preservation.queue import checksums_send
from repository.services import audit_event_record, audit_events_record

log = logging.getLogger(__name__)

MIB = 1024 * 1024
MAX_FILENAME_BYTES = 255
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Format characters (bidi overrides and isolates such as U+202E, zero-width spaces and
# joiners, the BOM), line and paragraph separators (U+2028, U+2029) and lone surrogates:
# invisible, they let "gpj.exe" show as "exe.jpg" or two names look the same.
HIDDEN_CATEGORIES = frozenset({"Cf", "Zl", "Zp", "Cs"})


class UploadUnavailable(ServiceUnavailable):
    """The storage could not be reached; nothing was changed (answer 503, try again)."""


class UploadGone(ValidationError):
    """The storage no longer knows the multipart upload: completed (by a completion whose
    commit was lost), aborted or expired. A 400 unless the completion can adopt it."""


def filename_normalize(filename: str) -> str:
    """The name as Kura keeps it: NFC, trimmed; refuses paths, control characters,
    invisible and direction-changing characters and names over 255 UTF-8 bytes (it never
    becomes a storage key)."""
    name = unicodedata.normalize("NFC", filename or "").strip()
    if not name:
        raise ValidationError({"filename": _("The file name is empty.")})
    if "/" in name or "\\" in name or name in {".", ".."}:
        raise ValidationError({"filename": _("The file name must not contain a path.")})
    if CONTROL_CHARACTERS.search(name):
        raise ValidationError({"filename": _("The file name contains control characters.")})
    hidden = next((c for c in name if unicodedata.category(c) in HIDDEN_CATEGORIES), None)
    if hidden is not None:
        raise ValidationError(
            {
                "filename": _(
                    "The file name contains an invisible or direction-changing character"
                    " (U+%(code)04X), which could make it look like another name."
                )
                % {"code": ord(hidden)}
            }
        )
    if len(name.encode("utf-8")) > MAX_FILENAME_BYTES:
        raise ValidationError({"filename": _("The file name is longer than 255 bytes in UTF-8.")})
    return name


def part_size_for(size: int) -> int:
    """The part size of a file of ``size`` bytes, in whole MiB: at least 8 MiB; a large
    file gets about 64 parts (``KURA_UPLOAD_PARTS_PER_FILE``) of up to 32 MiB
    (``KURA_UPLOAD_LARGE_PART_SIZE``), then more parts, never more than 10,000.

    Every part costs the sender a signed URL, a request and its bookkeeping whatever its
    size; measured with bench/upload.py on a 1.5 GiB file, parts of 16-32 MiB instead of
    8 MiB took the browser from 76 to 80 MB/s and kura-upload from 108 to 119-124 MB/s,
    while boto3 straight to the store stayed at 130. Larger parts are not taken: a part
    is what a reload sends again and what the browser's hashing worker holds in memory
    (two at a time). static/js/uploader.js partSizeFor follows the same rule.
    """
    grown = min(settings.KURA_UPLOAD_LARGE_PART_SIZE, size / settings.KURA_UPLOAD_PARTS_PER_FILE)
    needed = size / settings.KURA_UPLOAD_MAX_PARTS
    return max(settings.KURA_UPLOAD_MIN_PART_SIZE, math.ceil(max(grown, needed) / MIB) * MIB)


def project_quota_bytes(project: Project) -> int:
    """The project's quota; 0 means no limit."""
    if project.quota_bytes is not None:
        return project.quota_bytes
    return settings.KURA_PROJECT_QUOTA_BYTES


def _quota_used(project: Project) -> int:
    """The bytes ``project`` holds and is receiving, its row locked for the rest of the
    transaction (so that two uploads cannot both take the last bytes)."""
    Project.objects.select_for_update().get(pk=project.pk)
    return (
        DataObject.objects.filter(
            project=project, status__in=[DataObject.Status.UPLOADING, DataObject.Status.STORED]
        ).aggregate(total=Sum("size"))["total"]
        or 0
    )


def _quota_exceeded(used: int, quota: int, size: int) -> ValidationError:
    return ValidationError(
        {
            "size": _(
                "This upload would exceed the project's quota: %(used)s of %(quota)s bytes"
                " used, %(size)s more requested."
            )
            % {"used": used, "quota": quota, "size": size}
        }
    )


@dataclass(frozen=True)
class UploadRequest:
    project_id: int
    record_id: int | None
    filename: str
    size: int
    content_type: str
    tier: str
    available_date: date | None = None
    sha256: str = ""
    # Why the file should be opened: needed for a tier a curator reviews.
    reason: str = ""
    # A file of one part may be sent as one PUT (S3 PutObject): see upload_batch.py.
    single_put: bool = False


@dataclass(frozen=True)
class UploadTarget:
    """Where an upload goes: a project its starter may upload to, and a record of it that
    they can see (or none)."""

    project: Project
    record: DmpRecord | None

    def matches(self, request: UploadRequest) -> bool:
        record_id = self.record.pk if self.record is not None else None
        return self.project.pk == request.project_id and record_id == request.record_id


def upload_target(*, actor, request: UploadRequest) -> UploadTarget:
    """The project and record of ``request`` if ``actor`` may upload there; else
    ``PermissionDenied`` (the project) or ``ValidationError`` (the record)."""
    project = Project.objects.filter(pk=request.project_id).first()
    if project is None or not may(actor, ProjectAction.UPLOAD, project):
        raise PermissionDenied(_("You cannot upload to this project."))
    record = None
    if request.record_id is not None:
        record = records_visible_to(actor).filter(pk=request.record_id, project=project).first()
        if record is None:
            raise ValidationError({"record": _("Choose a DMP record of this project.")})
    return UploadTarget(project, record)


def upload_start(
    *,
    actor,
    request: UploadRequest,
    ip_address: str | None = None,
    target: UploadTarget | None = None,
) -> UploadSession:
    """Validate an upload, create its DataObject (``uploading``) and the multipart upload;
    audits ``upload_started``. ``target`` is :func:`upload_target` for this actor and
    request when the caller already has it. :func:`uploads_start` for one file.

    Opening tiers (``KURA_REVIEWED_TIERS``) are remembered and requested from a curator
    when the upload completes; until then the object is ``shared`` (the most open tier
    within the project).
    """
    if target is None or not target.matches(request):
        target = upload_target(actor=actor, request=request)
    (started,) = uploads_start(
        actor=actor, target=target, requests=[request], ip_address=ip_address
    )
    if isinstance(started, Exception):
        raise started
    return started


def _start_checked(request: UploadRequest) -> str:
    """The name as kept, once the request passes every check that needs no database."""
    filename = filename_normalize(request.filename)
    if request.size <= 0:
        raise ValidationError({"size": _("The file is empty.")})
    if request.size > settings.KURA_MAX_OBJECT_SIZE:
        raise ValidationError(
            {
                "size": _("The file is larger than the limit of %(limit)s bytes.")
                % {"limit": settings.KURA_MAX_OBJECT_SIZE}
            }
        )
    dated = request.tier in dated_tiers()
    if dated and request.available_date is None:
        raise ValidationError({"available_date": _("An embargo needs an available date.")})
    if dated and request.available_date <= timezone.localdate():
        raise ValidationError({"available_date": _("The available date must be in the future.")})
    if request.tier in settings.KURA_REVIEWED_TIERS and not request.reason.strip():
        raise ValidationError({"reason": _(REASON_NEEDED)})
    return filename


def _opening_checked(record: DmpRecord | None, tier: str, filename: str) -> None:
    """Refuse at once an upload asking for a tier beyond the project that its record's
    personal-data state (yes or unknown, not attested anonymised) would keep it from:
    the curator's approval would be refused anyway, after the bytes were sent."""
    if tier in beyond_project():
        if reason := record_personal_data_blocker(record, name=filename):
            raise ValidationError({"tier": [reason]})


def uploads_start(
    *,
    actor,
    target: UploadTarget,
    requests: list[UploadRequest],
    ip_address: str | None = None,
) -> list[UploadSession | Exception]:
    """Start an upload for each of ``requests`` into ``target`` (:func:`upload_target` for
    ``actor``; the requests' project and record): each is checked on its own, and answered
    with its session or the error it alone would have had (``ValidationError``, or
    :class:`UploadUnavailable` when the store refused). A refused file changes nothing.

    The files that pass are written together, in one transaction: the quota is read once
    (the project's row locked once) and taken file by file in order, as if they came one
    after the other; objects, sessions and ``upload_started`` events are inserted in one
    statement each. New uploads are on no cached page, so no generation moves."""
    results: list[UploadSession | Exception | None] = [None] * len(requests)
    checked = []
    for index, request in enumerate(requests):
        try:
            filename = _start_checked(request)
            _opening_checked(target.record, request.tier, filename)
            checked.append((index, request, filename))
        except ValidationError as exc:
            results[index] = exc
    if not checked:
        return results
    project, record = target.project, target.record
    reviewed_tiers = settings.KURA_REVIEWED_TIERS
    shared = most_open_within_project()
    store = object_store()
    with transaction.atomic():
        quota = project_quota_bytes(project)
        used = _quota_used(project) if quota else 0
        accepted = []
        for index, request, filename in checked:
            if quota and used + request.size > quota:
                results[index] = _quota_exceeded(used, quota, request.size)
                continue
            reviewed = request.tier in reviewed_tiers
            part_size = part_size_for(request.size)
            data_object = DataObject(
                project=project,
                record=record,
                uploaded_by=actor,
                original_filename=filename,
                size=request.size,
                content_type=request.content_type[:255],
                tier=shared if reviewed else request.tier,
                available_date=None if reviewed else request.available_date,
                client_sha256=request.sha256.lower(),
                storage_key=new_storage_key(),
            )
            try:
                upload_id = store.create(
                    data_object.storage_key,
                    data_object.content_type,
                    single_put=request.single_put and part_size >= request.size,
                )
            except Exception as exc:  # noqa: BLE001 - this file alone: the store refused it
                results[index] = UploadUnavailable(str(exc))
                continue
            used += request.size
            accepted.append((index, request, data_object, upload_id, part_size, reviewed))
        if not accepted:
            return results
        objects = [accepted_one[2] for accepted_one in accepted]
        DataObject.objects.bulk_create(objects)
        now = timezone.now()
        expires_at = now + timedelta(hours=settings.KURA_UPLOAD_ABANDON_AFTER_HOURS)
        sessions = UploadSession.objects.bulk_create(
            [
                UploadSession(
                    data_object=data_object,
                    upload_id=upload_id,
                    part_size=part_size,
                    part_count=math.ceil(request.size / part_size),
                    created_by=actor,
                    last_activity_at=now,
                    expires_at=expires_at,
                    requested_tier=request.tier if reviewed else "",
                    requested_available_date=request.available_date if reviewed else None,
                    requested_reason=request.reason.strip() if reviewed else "",
                )
                for _index, request, data_object, upload_id, part_size, reviewed in accepted
            ]
        )
        audit_events_record(
            actor_id=actor.pk,
            action=AuditEvent.Action.UPLOAD_STARTED,
            data_objects=objects,
            ip_address=ip_address,
            after=[_started_values(data_object) for data_object in objects],
        )
        for accepted_one, session in zip(accepted, sessions, strict=True):
            results[accepted_one[0]] = session
    return results


def _started_values(data_object: DataObject) -> dict:
    started = {"status": data_object.status, "size": data_object.size, "tier": data_object.tier}
    if data_object.available_date is not None:
        started["available_date"] = data_object.available_date.isoformat()
    return started


def upload_sessions_for(*, actor, upload_pks) -> dict[int, UploadSession]:
    """{id: upload} of the uploads among ``upload_pks`` that ``actor`` started and may still
    upload to (one query, and one role check per project)."""
    sessions = UploadSession.objects.select_related("data_object__project").filter(
        pk__in=upload_pks, created_by_id=getattr(actor, "pk", None)
    )
    allowed: dict[int, bool] = {}
    found = {}
    for session in sessions:
        project = session.data_object.project
        if project.pk not in allowed:
            allowed[project.pk] = may(actor, ProjectAction.UPLOAD, project)
        if allowed[project.pk]:
            found[session.pk] = session
    return found


def upload_session_for(*, actor, upload_pk) -> UploadSession:
    """The upload ``upload_pk`` if ``actor`` started it and may still upload, else 404."""
    session = upload_sessions_for(actor=actor, upload_pks=[upload_pk]).get(upload_pk)
    if session is None:
        raise Http404("No such upload.")
    return session


def _in_flight(session: UploadSession) -> None:
    if session.completed_at is not None:
        raise ValidationError({"upload": _("This upload is already complete.")})
    if session.data_object.status != DataObject.Status.UPLOADING:
        raise ValidationError({"upload": _("This upload was aborted.")})


def _touch(session: UploadSession) -> None:
    now = timezone.now()
    UploadSession.objects.filter(pk=session.pk).update(
        last_activity_at=now,
        expires_at=now + timedelta(hours=settings.KURA_UPLOAD_ABANDON_AFTER_HOURS),
    )


@dataclass(frozen=True)
class SignedPart:
    part_number: int
    url: str
    headers: dict[str, str]


def upload_part_urls(
    *, session: UploadSession, part_numbers: list[int], md5s: dict[int, str] | None = None
) -> list[SignedPart]:
    """Short-lived URLs to PUT the given parts to (renewable: ask again when they expire).

    ``md5s`` maps part numbers to the sender's base64 MD5 of the part: the URL is then
    valid only with that ``Content-MD5`` header, and the store refuses other bytes.
    """
    _in_flight(session)
    md5s = md5s or {}
    wrong = sorted({n for n in part_numbers if not 1 <= n <= session.part_count})
    if wrong:
        raise ValidationError(
            {
                "part_numbers": _("Part numbers must be between 1 and %(count)s; got %(wrong)s.")
                % {"count": session.part_count, "wrong": ", ".join(map(str, wrong[:10]))}
            }
        )
    store = object_store()
    key = session.data_object.storage_key
    expiry = settings.KURA_UPLOAD_PART_URL_EXPIRY
    _touch(session)
    signed = []
    for n in part_numbers:
        md5 = md5s.get(n, "")
        url = store.part_url(key, session.upload_id, n, expiry, content_md5=md5)
        headers = {"Content-MD5": md5} if md5 else {}
        if session.upload_id == SINGLE_PUT_UPLOAD_ID:
            headers["If-None-Match"] = "*"  # signed into a one-PUT URL (object_store.py)
        signed.append(SignedPart(n, url, headers))
    return signed


def _stored_copies(session: UploadSession) -> dict[int, list[StoredPart]]:
    """Every copy the storage lists of each part, newest first.

    A part number sent twice with different bytes is listed twice by some S3 servers
    (SeaweedFS), in any order; AWS keeps only the latest."""
    try:
        listed = object_store().list_parts(session.data_object.storage_key, session.upload_id)
    except NoSuchUpload as exc:
        raise UploadGone({"upload": _("The storage no longer knows this upload.")}) from exc
    except StoreError as exc:
        raise UploadUnavailable(str(exc)) from exc
    copies: dict[int, list[StoredPart]] = {}
    for part in sorted(listed, key=lambda p: p.modified, reverse=True):
        copies.setdefault(part.part_number, []).append(part)
    return copies


def upload_parts_list(*, session: UploadSession) -> list[StoredPart]:
    """Parts the storage already holds, each once (the newest copy), to resume an upload.

    A part whose newest copy does not have the part's expected size is left out, so the
    sender sends it again."""
    _in_flight(session)
    parts = []
    for number, copies in sorted(_stored_copies(session).items()):
        newest = copies[0]
        if 1 <= number <= session.part_count and newest.size == expected_part_size(session, number):
            parts.append(newest)
    return parts


def expected_part_size(session: UploadSession, part_number: int) -> int:
    if part_number < session.part_count:
        return session.part_size
    return session.data_object.size - session.part_size * (session.part_count - 1)


def _checked_parts(session: UploadSession, claimed: dict[int, str]) -> list[StoredPart]:
    """The stored parts, after checking the client's list against them, all or nothing."""
    missing = [n for n in range(1, session.part_count + 1) if n not in claimed]
    extra = sorted(n for n in claimed if not 1 <= n <= session.part_count)
    if missing or extra:
        raise ValidationError(
            {
                "parts": _("Parts missing: %(missing)s; unexpected: %(extra)s.")
                % {
                    "missing": ", ".join(map(str, missing[:20])) or "-",
                    "extra": ", ".join(map(str, extra[:20])) or "-",
                }
            }
        )
    copies = _stored_copies(session)
    problems = []
    chosen = []
    for number in range(1, session.part_count + 1):
        expected = expected_part_size(session, number)
        etag = claimed[number].strip('"')
        listed = copies.get(number, [])
        match = next((p for p in listed if p.etag == etag and p.size == expected), None)
        if match is not None:
            chosen.append(match)
        elif not listed:
            problems.append(_("part %(n)s was never stored") % {"n": number})
        elif not any(p.etag == etag for p in listed):
            problems.append(_("part %(n)s has a different ETag") % {"n": number})
        else:
            size = next(p.size for p in listed if p.etag == etag)
            problems.append(
                _("part %(n)s has %(size)s bytes, expected %(expected)s")
                % {"n": number, "size": size, "expected": expected}
            )
    if problems:
        raise ValidationError({"parts": problems[:20]})
    return chosen


@dataclass(frozen=True)
class Completion:
    """What the sender claims for one upload: its id, each part's ETag, and its digest —
    the file's SHA-256, or the SHA-256 of its parts' SHA-256 digests
    (:class:`~repository.preservation.fixity.PartsSha256`, at the upload's part size) —
    or neither."""

    upload_pk: int
    parts: dict[int, str]
    sha256: str = ""
    parts_sha256: str = ""


def upload_complete(
    *,
    session: UploadSession,
    parts: dict[int, str],
    sha256: str = "",
    parts_sha256: str = "",
    ip_address: str | None = None,
) -> DataObject:
    """Complete the multipart upload, check the stored size, mark the object ``stored``,
    audit ``upload_completed`` (by the uploader) and queue its checksum. Safe to call again
    after success (returns the object, writes no second event). :func:`uploads_complete`
    for one upload.

    ``sha256`` is the uploader's digest when it was not known at the start (a client that
    hashes while it sends); it must agree with one given at the start. ``parts_sha256``:
    the SHA-256 of the parts' digests, what a browser sends instead.
    """
    (completed,) = uploads_complete(
        completions=[Completion(session.pk, parts, sha256, parts_sha256)],
        ip_address=ip_address,
    )
    if isinstance(completed, Exception):
        raise completed
    return completed


def _store_completed(session: UploadSession, parts: dict[int, str]) -> None:
    """Complete the upload in the store after checking the claimed parts against what it
    holds, and check the stored size; the upload's object is deleted from the store if its
    size is wrong. ``ValidationError`` or :class:`UploadUnavailable` if not."""
    data_object = session.data_object
    store = object_store()
    try:
        stored_parts = _checked_parts(session, parts)
        store.complete(data_object.storage_key, session.upload_id, stored_parts)
        if session.upload_id == SINGLE_PUT_UPLOAD_ID:
            stored_size = stored_parts[0].size  # its one part is the object, just read
        else:
            stored_size = store.size(data_object.storage_key)
    except (UploadGone, NoSuchUpload):
        # A completion whose commit was lost: the store finished the object, Kura did
        # not record it. Adopt it if it is exactly the claimed parts; else the truth.
        stored_size = _completed_size(session, parts)
    except ValidationError:
        raise
    except Exception as exc:
        raise UploadUnavailable(str(exc)) from exc
    if stored_size != data_object.size:
        store.delete(data_object.storage_key)
        raise ValidationError(
            {
                "size": _("The storage holds %(stored)s bytes, not %(size)s.")
                % {"stored": stored_size, "size": data_object.size}
            }
        )


def uploads_complete(
    *,
    completions: list[Completion],
    ip_address: str | None = None,
) -> list[DataObject | Exception]:
    """Complete each upload of ``completions``, as :func:`upload_complete` does, in one
    transaction: answers, in order, its object or the error it alone would have had
    (``ValidationError``, :class:`UploadUnavailable`, ``Http404`` for an upload that is
    gone). A refused upload changes nothing; an upload
    named twice is completed once (the second answer is the first's object).

    The uploads' rows and then their objects are locked in one statement each (ordered by
    id, the order :func:`upload_abort` and the abandon sweep take them in, one upload at a
    time); each upload is checked against the store on its own; the ones that pass are
    written together: one update of the objects and one of the sessions, the
    ``upload_completed`` events in one insert, so the generations of their records and
    projects move once per batch; their checksums are queued together after the commit
    (:func:`~repository.preservation.queue.checksums_send`)."""
    results: list[DataObject | Exception | None] = [None] * len(completions)
    with transaction.atomic():
        upload_pks = sorted({completion.upload_pk for completion in completions})
        sessions = {
            session.pk: session
            for session in UploadSession.objects.select_for_update()
            .filter(pk__in=upload_pks)
            .order_by("pk")
        }
        objects = {
            data_object.pk: data_object
            for data_object in DataObject.objects.select_for_update()
            .filter(pk__in=[session.data_object_id for session in sessions.values()])
            .order_by("pk")
        }
        finished: dict[int, DataObject] = {}
        passed = []
        for index, completion in enumerate(completions):
            upload_pk = completion.upload_pk
            session = sessions.get(upload_pk)
            if session is None:
                results[index] = Http404("No such upload.")
                continue
            data_object = objects[session.data_object_id]
            if upload_pk in finished or (
                session.completed_at is not None and data_object.status == DataObject.Status.STORED
            ):
                results[index] = data_object
                continue
            session.data_object = data_object
            sha256 = completion.sha256.lower()
            try:
                _in_flight(session)
                if sha256 and data_object.client_sha256 and sha256 != data_object.client_sha256:
                    raise ValidationError(
                        {
                            "sha256": _(
                                "This SHA-256 differs from the one given when the upload started."
                            )
                        }
                    )
                _store_completed(session, completion.parts)
            except (ValidationError, ServiceUnavailable) as exc:
                results[index] = exc
                continue
            finished[upload_pk] = data_object
            passed.append((index, session, data_object, completion))
        if passed:
            _completions_record(passed, ip_address)
        for index, _session, data_object, _completion in passed:
            results[index] = data_object
    return results


def _completions_record(passed: list, ip_address: str | None) -> None:
    """Mark the objects of the uploads that passed ``stored`` (checksum pending), their
    sessions complete; audit, request the tiers asked for at the start, and queue the
    checksums after the commit."""
    now = timezone.now()
    objects = [data_object for _index, _session, data_object, _completion in passed]
    DataObject.objects.filter(pk__in=[o.pk for o in objects]).update(
        status=DataObject.Status.STORED,
        stored_at=now,
        checksum_state=DataObject.ChecksumState.PENDING,
    )
    digests = []
    for _index, session, data_object, completion in passed:
        data_object.status = DataObject.Status.STORED
        data_object.stored_at = now
        data_object.checksum_state = DataObject.ChecksumState.PENDING
        sha256 = completion.sha256.lower()
        if sha256 and not data_object.client_sha256:
            data_object.client_sha256 = sha256
            digests.append(data_object)
        elif completion.parts_sha256 and not data_object.client_sha256:
            data_object.client_parts_sha256 = completion.parts_sha256.lower()
            data_object.client_part_size = session.part_size
            digests.append(data_object)
    if digests:
        DataObject.objects.bulk_update(
            digests, ["client_sha256", "client_parts_sha256", "client_part_size"]
        )
    UploadSession.objects.filter(
        pk__in=[session.pk for _index, session, _object, _completion in passed]
    ).update(completed_at=now, last_activity_at=now)
    by_uploader: dict[int, list[DataObject]] = {}
    for _index, session, data_object, _completion in passed:
        session.completed_at = session.last_activity_at = now
        by_uploader.setdefault(session.created_by_id, []).append(data_object)
    for uploader_id, uploaded in by_uploader.items():
        audit_events_record(
            actor_id=uploader_id,
            action=AuditEvent.Action.UPLOAD_COMPLETED,
            data_objects=uploaded,
            ip_address=ip_address,
            before={"status": DataObject.Status.UPLOADING},
            after={"status": DataObject.Status.STORED},
        )
    for _index, session, data_object, _completion in passed:
        if session.requested_tier:
            tier_request_create(
                actor=session.created_by,
                objects=[data_object],
                tier=session.requested_tier,
                available_date=session.requested_available_date,
                reason=session.requested_reason or Message("tier.requested_at_upload"),
            )
    # A broker that is away must not turn these committed completions into an error: the
    # objects are marked unsent and beat's requeue sends them once the broker is back.
    pks = [data_object.pk for data_object in objects]
    transaction.on_commit(lambda: checksums_send(pks), robust=True)


def _completed_size(session: UploadSession, claimed: dict[int, str]) -> int:
    """The size of the object the store completed for ``session`` from the ``claimed``
    part ETags, when the multipart upload is gone because a completion's commit was lost;
    :class:`UploadGone` if the store holds nothing (aborted or expired), a
    ``ValidationError`` if it holds something else."""
    from repository.preservation.reconcile import completed_object_find

    try:
        head = completed_object_find(
            session=session,
            part_etags=[claimed[n] for n in range(1, session.part_count + 1)],
        )
    except ValueError as exc:
        raise ValidationError(
            {"upload": _("The storage no longer knows this upload. %(why)s") % {"why": exc}}
        ) from exc
    except StoreError as exc:
        raise UploadUnavailable(str(exc)) from exc
    if head is None:
        raise UploadGone({"upload": _("The storage no longer knows this upload.")})
    return head.size


def upload_abort(
    *,
    session: UploadSession,
    ip_address: str | None = None,
    actor=None,
    failure_reason: str = UploadSession.FAILURE_ABORTED,
) -> None:
    """Abort the multipart upload and mark its object abandoned (nothing is kept); audits
    ``upload_aborted`` (by ``actor``, else the uploader), with ``failure_reason`` (one of
    the ``UploadSession.FAILURE_*`` sentences) stored on the upload.

    Serialised with :func:`upload_complete` on the upload's row: whichever comes first
    wins, and the other is told the truth (an upload already complete is not aborted).
    The object's key is deleted too: a completion whose commit was lost may have left the
    finished object there, and an abandoned row must not leave bytes behind."""
    with transaction.atomic():
        session = UploadSession.objects.select_for_update().get(pk=session.pk)
        session.data_object = DataObject.objects.select_for_update().get(pk=session.data_object_id)
        _in_flight(session)
        try:
            store = object_store()
            store.abort(session.data_object.storage_key, session.upload_id)
            store.delete(session.data_object.storage_key)
        except StoreError as exc:
            raise UploadUnavailable(str(exc)) from exc
        DataObject.objects.filter(pk=session.data_object_id).update(
            status=DataObject.Status.ABANDONED
        )
        UploadSession.objects.filter(pk=session.pk).update(failure_reason=failure_reason)
        audit_event_record(
            actor=actor or session.created_by,
            action=AuditEvent.Action.UPLOAD_ABORTED,
            data_object=session.data_object,
            ip_address=ip_address,
            before={"status": DataObject.Status.UPLOADING},
            after={"status": DataObject.Status.ABANDONED},
        )


def uploads_abort_of_leaver(*, project_id: int, user_id: int, actor=None) -> int:
    """Abort the unfinished uploads ``user_id`` started in ``project_id`` once they left it
    (``accounts.members.member_removed``, after the removal commits); answers how many.

    Deliberate: the bytes of someone who is no longer in the project are not kept waiting
    for the idle sweep, and their upload could not be completed anyway (completing needs
    the ``UPLOAD`` role). An upload completing meanwhile wins (it was complete before the
    removal) and is left alone; one the store cannot abort now stays for
    ``kura.abandoned_uploads_sweep``, which owns idle uploads."""
    sessions = UploadSession.objects.filter(
        created_by_id=user_id,
        data_object__project_id=project_id,
        data_object__status=DataObject.Status.UPLOADING,
        completed_at__isnull=True,
    ).select_related("created_by")
    aborted = 0
    for session in sessions:
        try:
            upload_abort(session=session, actor=actor, failure_reason=UploadSession.FAILURE_LEFT)
        except (ValidationError, UploadUnavailable):
            log.warning("upload %s of a removed member not aborted now", session.pk, exc_info=True)
            continue
        aborted += 1
    return aborted
