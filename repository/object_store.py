"""Multipart uploads and streamed reads on the configured storage.

Two implementations with one interface: S3 (through the boto3 client that django-storages
already configured, so no upload byte passes through Django) and the embedded profile's
filesystem (parts are PUT to a Django view that writes them under ``KURA_UPLOAD_DIR``).
"""

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.urls import reverse


class StoreError(Exception):
    """The storage refused or failed an operation (possibly transient)."""


class NoSuchUpload(StoreError):
    """The multipart upload is unknown to the storage (completed, aborted or expired)."""


class NoSuchObject(StoreError):
    """No object is stored under the key: not transient, unlike most ``StoreError``s."""


# A bare 404 is what HEAD answers (it has no body) for a missing key and a missing bucket.
BARE_NOT_FOUND = {"404", "NotFound"}


@dataclass(frozen=True)
class StoredPart:
    part_number: int
    size: int
    etag: str


def _etag(value: str) -> str:
    return value.strip('"')


class S3Store:
    """Presigned multipart uploads and ranged reads on an S3-compatible store."""

    def __init__(self):
        self.bucket = settings.AWS_STORAGE_BUCKET_NAME

    @property
    def client(self):
        return default_storage.connection.meta.client

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

    def create(self, key: str, content_type: str) -> str:
        response = self._call(
            "create_multipart_upload",
            Key=key,
            ContentType=content_type or "application/octet-stream",
        )
        return response["UploadId"]

    def part_url(self, key: str, upload_id: str, part_number: int, expires: int) -> str:
        return self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "UploadId": upload_id,
                "PartNumber": part_number,
            },
            ExpiresIn=expires,
            HttpMethod="PUT",
        )

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        parts: list[StoredPart] = []
        marker = 0
        while True:
            response = self._call(
                "list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker, MaxParts=1000
            )
            parts.extend(
                StoredPart(p["PartNumber"], p["Size"], _etag(p["ETag"]))
                for p in response.get("Parts", [])
            )
            if not response.get("IsTruncated"):
                return parts
            marker = int(response["NextPartNumberMarker"])

    def complete(self, key: str, upload_id: str, parts: list[StoredPart]) -> None:
        self._call(
            "complete_multipart_upload",
            Key=key,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": p.part_number, "ETag": f'"{p.etag}"'} for p in parts]
            },
        )

    def abort(self, key: str, upload_id: str) -> None:
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

    def delete(self, key: str) -> None:
        self._call("delete_object", Key=key)


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

    def create(self, key: str, content_type: str) -> str:
        upload_id = uuid.uuid4().hex
        self._parts_dir(upload_id).mkdir(parents=True)
        return upload_id

    def part_url(self, key: str, upload_id: str, part_number: int, expires: int) -> str:
        token = signing.dumps({"u": upload_id, "n": part_number}, salt=self.signing_salt)
        return f"{reverse('upload-part-put')}?token={token}"

    def part_token_read(self, token: str, expires: int) -> tuple[str, int]:
        """(upload id, part number) from a part URL's token; ``signing.BadSignature`` if not."""
        payload = signing.loads(token, salt=self.signing_salt, max_age=expires)
        return payload["u"], int(payload["n"])

    def part_write(self, upload_id: str, part_number: int, stream, max_size: int) -> str:
        """Write one part from a file-like ``stream``; answer its ETag (MD5, like S3)."""
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise NoSuchUpload(upload_id)
        digest = hashlib.md5(usedforsecurity=False)
        partial = directory / f"{part_number:05d}.partial"
        written = 0
        with partial.open("wb") as fh:
            while chunk := stream.read(1024 * 1024):
                written += len(chunk)
                if written > max_size:
                    partial.unlink()
                    raise StoreError(f"part {part_number} is larger than {max_size} bytes")
                digest.update(chunk)
                fh.write(chunk)
        etag = digest.hexdigest()
        (directory / f"{part_number:05d}.etag").write_text(etag)
        partial.rename(directory / f"{part_number:05d}.part")
        return etag

    def list_parts(self, key: str, upload_id: str) -> list[StoredPart]:
        directory = self._parts_dir(upload_id)
        if not directory.is_dir():
            raise NoSuchUpload(upload_id)
        parts = []
        for path in sorted(directory.glob("*.part")):
            etag = path.with_suffix(".etag").read_text()
            parts.append(StoredPart(int(path.stem), path.stat().st_size, etag))
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
                with (directory / f"{part.part_number:05d}.part").open("rb") as fh:
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

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def object_store() -> S3Store | FilesystemStore:
    """The store for the configured profile."""
    return S3Store() if settings.KURA_STORAGE == "s3" else FilesystemStore()
