"""BagIt 1.0 (RFC 8493) zip of a record's public files, streamed from storage, with the
record's RO-Crate (``data/ro-crate-metadata.json``, ``ro_crate.py``): the payload directory
is the crate's root, as RO-Crate 1.1 suggests for a crate in a bag. A record without public
files gives a valid bag whose payload is the crate alone.

Bytes flow from ``default_storage.open`` through :mod:`zipstream` to the client one chunk
at a time; nothing holds a whole file. Above ``KURA_BAGIT_INLINE_MAX_BYTES`` (default
1 GiB) the bag is a "holey" bag: ``fetch.txt`` lists each file's download URL instead.
"""

import hashlib
import json
import logging
import re
from collections.abc import Iterator

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone
from zipstream import ZipStream

from repository.discovery.public import ro_crate
from repository.discovery.public.facts import RecordFacts
from repository.discovery.public.landing import PublicFile

logger = logging.getLogger(__name__)

DEFAULT_INLINE_MAX_BYTES = 1024**3
CHUNK_SIZE = 1024**2


def inline_max_bytes() -> int:
    return getattr(settings, "KURA_BAGIT_INLINE_MAX_BYTES", DEFAULT_INLINE_MAX_BYTES)


def _safe_name(name: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", name).strip() or "file"
    return "_" + name if name in {".", ".."} else name


def payload_paths(files: list[PublicFile]) -> list[str]:
    """``data/<file name>``, made unique (a clash, also with the crate's metadata file, gets
    the object id in front)."""
    seen: set[str] = {ro_crate.METADATA_FILE}
    paths = []
    for f in files:
        name = _safe_name(f.name)
        if name in seen:
            name = f"{f.pk}-{name}"
        seen.add(name)
        paths.append(f"data/{name}")
    return paths


def _encode_path(path: str) -> str:
    """RFC 8493 §2.1.3: percent-encode CR, LF and ``%`` in manifest paths."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _stream(storage_key: str, digest) -> Iterator[bytes]:
    """One payload file's bytes. If the store fails here, after the response began, the
    exception ends the response without the zip's central directory (and, over HTTP/1.1,
    without the last chunk): every zip and HTTP client reports the download incomplete,
    where closing the archive neatly would hand over a valid zip with a short file."""
    try:
        with default_storage.open(storage_key, "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                digest.update(chunk)
                yield chunk
    except Exception:
        logger.exception("BagIt export cut off: the store failed reading %s", storage_key)
        raise


def store_check(files: list[PublicFile]) -> None:
    """Ask the store for the first payload file before the first byte is sent, so an
    outage answers 503 with ``Retry-After`` instead of a 200 that breaks off."""
    from core.api import ServiceUnavailable
    from repository.preservation.object_store import NoSuchObject, StoreError, object_store

    if not files:
        return
    try:
        object_store().size(files[0].storage_key)
    except NoSuchObject:
        return  # a missing file is not an outage; the stream breaks off at that file
    except StoreError as exc:
        raise ServiceUnavailable(str(exc)) from exc


def _lazy(build) -> Iterator[bytes]:
    """An iterable whose bytes are computed only when the zip reaches it."""
    yield build().encode("utf-8")


def bag_info(facts: RecordFacts, crate: bytes = b"") -> str:
    """The bag's ``bag-info.txt``; ``crate`` is the RO-Crate metadata file in its payload."""
    files = facts.files
    count, size = len(files) + bool(crate), sum(f.size for f in files) + len(crate)
    lines = [
        ("Source-Organization", facts.publisher),
        ("External-Identifier", facts.cite_as),
        ("External-Description", facts.title),
        ("Internal-Sender-Identifier", facts.data_number),
        ("Bagging-Date", timezone.localdate().isoformat()),
        ("Payload-Oxum", f"{size}.{count}"),
    ]
    return "".join(f"{label}: {' '.join(value.split())}\n" for label, value in lines if value)


BAGIT_TXT = "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def bag_stream(facts: RecordFacts, *, root: str) -> tuple[ZipStream, bool]:
    """The zip stream of the bag of ``facts.files`` under the folder ``root``, and whether
    its payload is fetched (``fetch.txt``)."""
    files = facts.files
    fetched = sum(f.size for f in files) > inline_max_bytes()
    if not fetched:
        store_check(files)
    paths = payload_paths(files)
    crate = json.dumps(ro_crate.crate(facts, paths=paths), ensure_ascii=False, indent=2)
    crate_bytes = crate.encode("utf-8")
    crate_path = f"data/{ro_crate.METADATA_FILE}"
    zs = ZipStream(sized=False)
    # RFC 8493 §2.1.2: the payload directory is there whatever it holds; the zip lists it
    # explicitly.
    zs.mkdir(f"{root}/data")
    zs.add(crate_bytes, f"{root}/{crate_path}")
    digests: dict[str, object] = {}
    for f, path in zip(files, paths, strict=True):
        digests[path] = hashlib.sha256()
        if not fetched:
            zs.add(_stream(f.storage_key, digests[path]), f"{root}/{path}", size=f.size)

    def manifest() -> str:
        lines = [f"{hashlib.sha256(crate_bytes).hexdigest()}  {crate_path}\n"]
        for f, path in zip(files, paths, strict=True):
            checksum = f.sha256 or (digests[path].hexdigest() if not fetched else "")
            if checksum:
                lines.append(f"{checksum}  {_encode_path(path)}\n")
        return "".join(lines)

    info = bag_info(facts, crate_bytes)
    tags: dict[str, str] = {"bagit.txt": BAGIT_TXT, "bag-info.txt": info}
    zs.add(BAGIT_TXT, f"{root}/bagit.txt")
    zs.add(info, f"{root}/bag-info.txt")
    if fetched:
        fetch = "".join(
            f"{f.url} {f.size} {_encode_path(path)}\n" for f, path in zip(files, paths, strict=True)
        )
        tags["fetch.txt"] = fetch
        zs.add(fetch, f"{root}/fetch.txt")

    built: dict[str, str] = {}

    def manifest_text() -> str:
        built["manifest-sha256.txt"] = manifest()
        return built["manifest-sha256.txt"]

    def tagmanifest_text() -> str:
        contents = tags | built
        return "".join(
            f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}  {name}\n"
            for name, text in sorted(contents.items())
        )

    zs.add(_lazy(manifest_text), f"{root}/manifest-sha256.txt")
    zs.add(_lazy(tagmanifest_text), f"{root}/tagmanifest-sha256.txt")
    return zs, fetched
