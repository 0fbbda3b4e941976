"""Multipart uploads and streamed reads on the configured storage.

Two implementations with one interface: S3 (through the boto3 client that django-storages
already configured, so no upload byte passes through Django) and the embedded profile's
filesystem (parts are PUT to a Django view that writes them under ``KURA_UPLOAD_DIR``).

A part URL can carry the sender's MD5 of the part (``content_md5``, base64 as in the
``Content-MD5`` header). It is bound into the signature: the sender must send that header,
and the store refuses a body whose MD5 differs (S3: 400 BadDigest; the filesystem store the
same), so a part corrupted between the researcher's disk and the store is never stored.

A file that fits in one part can skip the multipart upload on S3 (``single_put``): its
"upload id" is :data:`SINGLE_PUT_UPLOAD_ID`, its one "part" URL a presigned PutObject
signed with ``If-None-Match: *``, so the key is written once and no later PUT (a replay of
the URL after completion) can replace the bytes. Listing its parts answers the object
itself, so completion checks its size and ETag exactly as it checks a part's.
"""

import base64
import binascii
import fcntl
import hashlib
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils.functional import empty


class StoreError(Exception):
    """The storage refused or failed an operation (possibly transient)."""


class NoSuchUpload(StoreError):
    """The multipart upload is unknown to the storage (completed, aborted or expired)."""


class NoSuchObject(StoreError):
    """No object is stored under the key: not transient, unlike most ``StoreError``s."""


# A bare 404 is what HEAD answers (it has no body) for a missing key and a missing bucket.
BARE_NOT_FOUND = {"404", "NotFound"}


class BadDigest(StoreError):
    """A part's bytes do not match the MD5 (or length) its URL was signed for."""


@dataclass(frozen=True)
class ObjectHead:
    """What the store says of a stored object; ``etag`` is "" where the store keeps none."""

    size: int
    etag: str
    modified: float


@dataclass(frozen=True)
class ListedObject:
    key: str
    size: int
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class ListedUpload:
    """A multipart upload in flight; ``key`` is "" where the store does not know it."""

    key: str
    upload_id: str
    initiated: float  # seconds since the epoch


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    size: int
    etag: str
    modified: float = 0.0  # when the store received it (seconds since the epoch), if known


def content_md5_valid(value: str) -> bool:
    """Whether ``value`` is a base64 MD5 digest, as the ``Content-MD5`` header carries."""
    try:
        return len(base64.b64decode(value, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def md5_base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _etag(value: str) -> str:
    return value.strip('"')


# The upload id of an S3 upload sent as one PutObject instead of a multipart upload: the
# store keeps no upload for it, the key itself is the upload (see the module docstring).
SINGLE_PUT_UPLOAD_ID = "single-put"


class _KeySigner:
    """SigV4 for single requests on keys of one bucket, from botocore's own signer and the
    client's own endpoint, credentials, region and HTTP session, without the client's
    per-call machinery (parameter validation, serialisation, endpoint rules, event hooks):
    the same signature for a fraction of the CPU. The upload hot path uses it for the
    one-PUT URL of every small file and the HEAD that checks it at completion."""

    SENTINEL = "kura-key-signer-sentinel"

    def __init__(self, client, bucket: str):
        # The URL botocore builds for a key, whatever the addressing style and endpoint.
        url = client.generate_presigned_url(
            "head_object", Params={"Bucket": bucket, "Key": self.SENTINEL}, ExpiresIn=60
        )
        base = url.split("?", 1)[0]
        if not base.endswith("/" + self.SENTINEL):
            raise StoreError(f"unexpected presigned URL shape: {base}")
        self.prefix = base[: -len(self.SENTINEL)]
        self.client = client

    def url(self, key: str) -> str:
        return self.prefix + quote(key, safe="/~")

    def _credentials(self):
        return self.client._request_signer._credentials.get_frozen_credentials()

    def presign(self, method: str, key: str, headers: dict[str, str], expires: int) -> str:
        """A presigned URL for ``method`` on ``key`` that also signs ``headers`` (the
        request must carry exactly them)."""
        from botocore.auth import S3SigV4QueryAuth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=self.url(key), headers=dict(headers))
        S3SigV4QueryAuth(
            self._credentials(), "s3", self.client.meta.region_name, expires=expires
        ).add_auth(request)
        return request.url

    def head(self, key: str):
        """The store's answer to a HEAD of ``key`` (status and headers), over the client's
        own HTTP session (its pool, TLS and proxy settings, timeouts)."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="HEAD", url=self.url(key))
        S3SigV4Auth(self._credentials(), "s3", self.client.meta.region_name).add_auth(request)
        return self.client._endpoint.http_session.send(request.prepare())

    def get(self, key: str, headers: dict[str, str]):
        """The store's answer to a GET of ``key`` with ``headers`` (a ``Range``, say), its
        body read, over the client's own HTTP session."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="GET", url=self.url(key), headers=dict(headers))
        S3SigV4Auth(self._credentials(), "s3", self.client.meta.region_name).add_auth(request)
        return self.client._endpoint.http_session.send(request.prepare())


_client_lock = threading.Lock()
_client_of: dict = {}  # {"storage": the storage it was made from, "client": its client}


class S3Store:
    """Presigned multipart uploads and ranged reads on an S3-compatible store."""

    _signers: dict[tuple, _KeySigner] = {}

    def __init__(self):
        self.bucket = settings.AWS_STORAGE_BUCKET_NAME

    @property
    def client(self):
        """The boto3 client of the default storage, one per process and storage, shared by
        the process's threads (boto3's clients are thread-safe). django-storages makes a
        boto3 resource, and so a client, in every thread that uses it: 0.1-0.2 s of CPU
        each, paid again by each of gunicorn's threads."""
        if default_storage._wrapped is empty:  # made anew after a settings change
            default_storage._setup()
        storage = default_storage._wrapped
        with _client_lock:
            if _client_of.get("storage") is not storage:
                _client_of.update(storage=storage, client=storage.connection.meta.client)
            return _client_of["client"]

    @property
    def signer(self) -> _KeySigner:
        """The :class:`_KeySigner` of this client and bucket (made once per client)."""
        client = self.client
        key = (id(client), self.bucket)
        signer = self._signers.get(key)
        if signer is None or signer.client is not client:
            signer = self._signers[key] = _KeySigner(client, self.bucket)
        return signer

    def _call(self, method: str, **params):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "NoSuchUpload":
                raise NoSuchUpload(str(exc)) from exc
            if code == "NoSuchKey" or (code in BARE_NOT_FOUND and self._bucket_exists()):
                raise NoSuchObject(str(exc)) from exc
            raise StoreError(str(exc)) from exc
        except BotoCoreError as exc:
            raise StoreError(str(exc)) from exc

    def _bucket_exists(self) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError):
            return False
        return True

    def setup(self, *, cors_origins: list[str]) -> str:
        """Create the bucket if needed and let browsers PUT parts and read their ETags."""
        from botocore.exceptions import ClientError

        created = False
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call("create_bucket")
            created = True
        self._call(
            "put_bucket_cors",
            CORSConfiguration={
                "CORSRules": [
                    {
                        "AllowedOrigins": cors_origins,
                        "AllowedMethods": ["PUT", "GET", "HEAD"],
                        "AllowedHeaders": ["*"],
                        "ExposeHeaders": ["ETag"],
                        "MaxAgeSeconds": 3000,
                    }
                ]
            },
        )
        return f"bucket {self.bucket} {'created' if created else 'exists'}; CORS set"

    def create(self, key: str, content_type: str, *, single_put: bool = False) -> str:
        """Start a multipart upload; with ``single_put`` nothing is asked of the store (the
        one PUT creates the object)."""
        if single_put:
            return SINGLE_PUT_UPLOAD_ID
        response = self._call(
            "create_multipart_upload",
            Key=key,
            ContentType=content_type or "application/octet-stream",
        )
        return response["UploadId"]

    def part_url(
        self, key: str, upload_id: str, part_number: int, expires: int, content_md5: str = ""
    ) -> str:
        """A presigned UploadPart URL; with ``content_md5`` the header is a signed one.

        For a single-PUT upload: a PutObject URL for the key that also signs
        ``If-None-Match: *`` (the store refuses to replace an object already there)."""
        if upload_id == SINGLE_PUT_UPLOAD_ID:
            headers = {"If-None-Match": "*"}
            if content_md5:
                headers["Content-MD5"] = content_md5
            return self.signer.presign("PUT", key, headers, expires)
        params = {
            "Bucket": self.bucket,
            "Key": key,
            "UploadId": upload_id,
            "PartNumber": part_number,
        }
        if content_md5:
            params["ContentMD5"] = content_md5
        return self.client.generate_presigned_url(
            "upload_part", Params=params, ExpiresIn=expires, HttpMethod="PUT"
        )

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        if upload_id == SINGLE_PUT_UPLOAD_ID:
            # The object is the one part, once it has been PUT.
            try:
                head = self.head_fast(key)
            except NoSuchObject:
                return []
            return [StoredPart(1, head.size, head.etag, head.modified)]
        parts: list[StoredPart] = []
        marker = 0
        while True:
            response = self._call(
                "list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker, MaxParts=1000
            )
            parts.extend(
                StoredPart(
                    p["PartNumber"],
                    p["Size"],
                    _etag(p["ETag"]),
                    p["LastModified"].timestamp() if p.get("LastModified") else 0.0,
                )
                for p in response.get("Parts", [])
            )
            if not response.get("IsTruncated"):
                return parts
            marker = int(response["NextPartNumberMarker"])

    def complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        if upload_id == SINGLE_PUT_UPLOAD_ID:
            return  # the PUT stored the object; its size and ETag were checked as a part's
        self._call(
            "complete_multipart_upload",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p.part_number, "ETag": f'"{p.etag}"'} for p in parts]
            },
        )

    def abort(self, key: str, upload_id: str) -> None:
        if upload_id == SINGLE_PUT_UPLOAD_ID:
            self.delete(key)  # whatever the PUT stored is the upload
            return
        try:
            self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except NoSuchUpload:
            pass

    def size(self, key: str) -> int:
        return int(self._call("head_object", Key=key)["ContentLength"])

    def read_chunks(self, key: str, chunk_size: int, range_size: int) -> Iterator[bytes]:
        """Stream the object as ranged GETs of ``range_size``, yielded in ``chunk_size`` pieces."""
        total = self.size(key)
        start = 0
        while start < total:
            end = min(start + range_size, total) - 1
            body = self._call("get_object", Key=key, Range=f"bytes={start}-{end}")["Body"]
            try:
                yield from body.iter_chunks(chunk_size)
            finally:
                body.close()
            start = end + 1

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes from ``start`` (fewer at the end of the object)."""
        if length <= 0:
            return b""
        body = self._call("get_object", Key=key, Range=f"bytes={start}-{start + length - 1}")
        with body["Body"] as stream:
            return stream.read()

    def read_head_fast(self, key: str, length: int) -> bytes:
        """The first ``length`` bytes of the object (fewer if it is smaller) through
        :attr:`signer`: :meth:`read_range` for a fraction of its CPU, for the grouped
        verification of small objects. :class:`NoSuchObject` if there is none; an empty
        object (whose range the store refuses) and other failures raise :class:`StoreError`.
        A connection that fails, or a 5xx, is tried once more."""
        from botocore.exceptions import BotoCoreError

        for attempt in (1, 2):
            try:
                response = self.signer.get(key, {"Range": f"bytes=0-{length - 1}"})
                content = response.content
            except BotoCoreError as exc:
                if attempt == 2:
                    raise StoreError(str(exc)) from exc
                continue
            if response.status_code < 500 or attempt == 2:
                break
        status = response.status_code
        if status == 404:
            if self._bucket_exists():
                raise NoSuchObject(f"GET {key}: 404")
            raise StoreError(f"GET {key}: 404, and the bucket is not there")
        if status not in (200, 206):
            raise StoreError(f"GET {key}: {status}")
        return content[:length]

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=key)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` under ``key`` (derived files, such as previews, that Kura makes
        itself; uploads never come this way)."""
        self._call("put_object", Key=key, Body=data, ContentType=content_type)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``, a thousand per request;
        answers how many went. Deleting what is already gone succeeds."""
        deleted = 0
        batch: list[dict] = []
        for item in self.list_objects(prefix):
            batch.append({"Key": item.key})
            if len(batch) == 1000:
                self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
                deleted, batch = deleted + len(batch), []
        if batch:
            self._call("delete_objects", Delete={"Objects": batch, "Quiet": True})
            deleted += len(batch)
        return deleted

    def head(self, key: str) -> ObjectHead:
        """Size, ETag and time of the object; :class:`NoSuchObject` if there is none."""
        response = self._call("head_object", Key=key)
        modified = response.get("LastModified")
        return ObjectHead(
            int(response["ContentLength"]),
            _etag(response.get("ETag", "")),
            modified.timestamp() if modified else 0.0,
        )

    def head_fast(self, key: str) -> ObjectHead:
        """:meth:`head` through :attr:`signer` (a fraction of its CPU), for the check of
        every small file at completion; the same answers and errors. A connection that
        fails, or a 5xx, is tried once more."""
        from botocore.exceptions import BotoCoreError

        for attempt in (1, 2):
            try:
                response = self.signer.head(key)
            except BotoCoreError as exc:
                if attempt == 2:
                    raise StoreError(str(exc)) from exc
                continue
            if response.status_code < 500 or attempt == 2:
                break
        status, headers = response.status_code, response.headers
        if status == 404:
            if self._bucket_exists():
                raise NoSuchObject(f"HEAD {key}: 404")
            raise StoreError(f"HEAD {key}: 404, and the bucket is not there")
        if status != 200:
            raise StoreError(f"HEAD {key}: {status}")
        modified = headers.get("Last-Modified")
        return ObjectHead(
            int(headers["Content-Length"]),
            _etag(headers.get("ETag", "")),
            parsedate_to_datetime(modified).timestamp() if modified else 0.0,
        )

    def list_objects(self, prefix: str) -> Iterator[ListedObject]:
        """Every object whose key starts with ``prefix``, a page at a time."""
        token = None
        while True:
            params = {"Prefix": prefix, "MaxKeys": 1000}
            if token:
                params["ContinuationToken"] = token
            response = self._call("list_objects_v2", **params)
            for item in response.get("Contents", []):
                yield ListedObject(item["Key"], int(item["Size"]), item["LastModified"].timestamp())
            token = response.get("NextContinuationToken")
            if not response.get("IsTruncated") or not token:
                return

    def list_uploads(self, prefix: str) -> Iterator[ListedUpload]:
        """Every multipart upload in flight under ``prefix``, a page at a time."""
        markers: dict = {}
        while True:
            response = self._call(
                "list_multipart_uploads", Prefix=prefix, MaxUploads=1000, **markers
            )
            for item in response.get("Uploads", []):
                initiated = item.get("Initiated")
                yield ListedUpload(
                    item["Key"], item["UploadId"], initiated.timestamp() if initiated else 0.0
                )
            if not response.get("IsTruncated"):
                return
            markers = {
                "KeyMarker": response.get("NextKeyMarker", ""),
                "UploadIdMarker": response.get("NextUploadIdMarker", ""),
            }


class FilesystemStore:
    """The embedded profile: parts are written by :func:`repository.api.views.part_put`."""

    signing_salt = "kura.upload-part"

    @property
    def parts_root(self) -> Path:
        return Path(settings.KURA_UPLOAD_DIR)

    def _parts_dir(self, upload_id: str) -> Path:
        if not upload_id.isalnum():
            raise NoSuchUpload(upload_id)
        return self.parts_root / upload_id

    def _path(self, key: str) -> Path:
        return Path(default_storage.path(key))

    @staticmethod
    def _not_found(exc: FileNotFoundError) -> StoreError:
        """A missing file, unless the whole storage root is missing (a mount that failed)."""
        root_there = Path(default_storage.location).is_dir()
        return (NoSuchObject if root_there else StoreError)(str(exc))

    def setup(self, *, cors_origins: list[str]) -> str:
        """Create the media and upload folders (no CORS: parts go to Kura itself)."""
        Path(default_storage.path("")).mkdir(parents=True, exist_ok=True)
        self.parts_root.mkdir(parents=True, exist_ok=True)
        return f"folders {default_storage.path('')} and {self.parts_root} ready"

    def create(self, key: str, content_type: str, *, single_put: bool = False) -> str:
        """A folder for the parts; ``single_put`` changes nothing here (one part is PUT
        to Kura's part view, which is already one request)."""
        upload_id = uuid.uuid4().hex
        self._parts_dir(upload_id).mkdir(parents=True)
        return upload_id

    def part_url(
        self, key: str, upload_id: str, part_number: int, expires: int, content_md5: str = ""
    ) -> str:
        """A signed URL of Kura's ``part_put`` view; ``content_md5`` is signed into it."""
        payload = {"u": upload_id, "n": part_number}
        if content_md5:
            payload["m"] = content_md5
        token = signing.dumps(payload, salt=self.signing_salt)
        return f"{reverse('upload-part-put')}?token={token}"

    def part_token_read(self, token: str, expires: int) -> tuple[str, int, str]:
        """(upload id, part number, signed Content-MD5 or "") from a part URL's token;
        ``signing.BadSignature`` if it is not one of ours or has expired."""
        payload = signing.loads(token, salt=self.signing_salt, max_age=expires)
        return payload["u"], int(payload["n"]), str(payload.get("m", ""))

    def part_write(
        self,
        upload_id: str,
        part_number: int,
        stream,
        *,
        expected_size: int,
        content_md5: str = "",
    ) -> str:
        """Write one part from a file-like ``stream``; answer its ETag (MD5, like S3).

        The part is stored only whole: a body shorter or longer than ``expected_size`` (a
        request cut off by a reload, say) or whose MD5 is not ``content_md5`` raises
        :class:`BadDigest` and leaves any part stored earlier under that number as it was.
        """
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise NoSuchUpload(upload_id)
        digest = hashlib.md5(usedforsecurity=False)
        partial = directory / f"{part_number:05d}.{uuid.uuid4().hex}.partial"
        written = 0
        try:
            with partial.open("wb") as fh:
                while chunk := stream.read(1024 * 1024):
                    written += len(chunk)
                    if written > expected_size:
                        raise BadDigest(f"part {part_number} is larger than {expected_size} bytes")
                    digest.update(chunk)
                    fh.write(chunk)
            if written != expected_size:
                raise BadDigest(f"part {part_number} has {written} bytes, expected {expected_size}")
            if content_md5 and digest.digest() != base64.b64decode(content_md5):
                raise BadDigest(
                    f"part {part_number}: the bytes do not match the Content-MD5 they were"
                    " signed for"
                )
            etag = digest.hexdigest()
            # The ETag is part of the name, so one rename stores bytes and ETag together;
            # then earlier copies of the part number go (a resend replaces, as on AWS).
            stored = directory / f"{part_number:05d}-{etag}.part"
            # One writer of a part number at a time here: two sends of the same part with
            # different bytes must not each delete the other's copy.
            with (directory / f"{part_number:05d}.lock").open("w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                partial.rename(stored)
                for earlier in directory.glob(f"{part_number:05d}-*.part"):
                    if earlier != stored:
                        earlier.unlink(missing_ok=True)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return etag

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise NoSuchUpload(upload_id)
        parts = []
        for path in sorted(directory.glob("*-*.part")):
            number, _, etag = path.stem.partition("-")
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # replaced, aborted or completed while listing
            parts.append(StoredPart(int(number), stat.st_size, etag, stat.st_mtime))
        return parts

    def complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise NoSuchUpload(upload_id)
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        assembling = target.with_name(target.name + ".assembling")
        with assembling.open("wb") as out:
            for part in parts:
                with (directory / f"{part.part_number:05d}-{part.etag}.part").open("rb") as fh:
                    shutil.copyfileobj(fh, out, 8 * 1024 * 1024)
        assembling.rename(target)
        shutil.rmtree(directory, ignore_errors=True)

    def abort(self, key: str, upload_id: str) -> None:
        try:
            shutil.rmtree(self._parts_dir(upload_id), ignore_errors=True)
        except NoSuchUpload:
            pass

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise self._not_found(exc) from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc

    def read_chunks(self, key: str, chunk_size: int, range_size: int) -> Iterator[bytes]:
        try:
            fh = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise self._not_found(exc) from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc
        with fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def read_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with self._path(key).open("rb") as fh:
                fh.seek(start)
                return fh.read(max(length, 0))
        except FileNotFoundError as exc:
            raise self._not_found(exc) from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc

    def read_head_fast(self, key: str, length: int) -> bytes:
        """As :meth:`S3Store.read_head_fast`: the first ``length`` bytes."""
        return self.read_range(key, 0, length)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def write(self, key: str, data: bytes, content_type: str) -> None:
        """As :meth:`S3Store.write`: written whole under a temporary name, then renamed."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{uuid.uuid4().hex}.assembling")
            partial.write_bytes(data)
            partial.replace(path)
        except OSError as exc:
            raise StoreError(str(exc)) from exc

    def delete_prefix(self, prefix: str) -> int:
        """As :meth:`S3Store.delete_prefix` (a prefix ending in ``/`` is a folder here)."""
        keys = [item.key for item in self.list_objects(prefix)]
        for key in keys:
            self._path(key).unlink(missing_ok=True)
        if prefix.endswith("/"):
            shutil.rmtree(self._path(prefix.rstrip("/")), ignore_errors=True)
        return len(keys)

    def head(self, key: str) -> ObjectHead:
        """Size and time of the file; no ETag (the parts' boundaries are not kept)."""
        try:
            stat = self._path(key).stat()
        except FileNotFoundError as exc:
            raise self._not_found(exc) from exc
        except OSError as exc:
            raise StoreError(str(exc)) from exc
        return ObjectHead(stat.st_size, "", stat.st_mtime)

    def list_objects(self, prefix: str) -> Iterator[ListedObject]:
        """Every file whose key starts with ``prefix`` (files being assembled left out)."""
        root = Path(default_storage.location)
        if not root.is_dir():
            raise StoreError(f"the storage folder {root} is missing")
        start = root / prefix.rsplit("/", 1)[0] if "/" in prefix else root
        for path in sorted(start.rglob("*")):
            key = path.relative_to(root).as_posix()
            if not key.startswith(prefix) or path.name.endswith(".assembling"):
                continue
            try:
                if not path.is_file():
                    continue
                stat = path.stat()
            except FileNotFoundError:
                continue  # deleted while listing
            yield ListedObject(key, stat.st_size, stat.st_mtime)

    def list_uploads(self, prefix: str) -> Iterator[ListedUpload]:
        """Every upload folder in flight (their keys are not kept: ``key`` is "")."""
        if not self.parts_root.is_dir():
            return
        for path in sorted(self.parts_root.iterdir()):
            try:
                if path.is_dir() and path.name.isalnum():
                    yield ListedUpload("", path.name, path.stat().st_mtime)
            except FileNotFoundError:
                continue  # completed or aborted while listing


def object_store() -> S3Store | FilesystemStore:
    """The store for the configured profile."""
    return S3Store() if settings.KURA_STORAGE == "s3" else FilesystemStore()
