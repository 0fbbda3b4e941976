"""Technical metadata: what a stored file is, read while its checksum is computed.

:func:`extractor_for` sniffs the format from the first chunk of the object (magic bytes;
the file name only for FASTQ, which has none) and returns an :class:`Extractor`. The
checksum pass feeds it every chunk and then asks it to finish; no extractor ever holds a
whole file in memory. Keys are short snake_case words and values JSON-simple (strings,
numbers, booleans) because the object page prints them as they are.
"""

import logging

from repository.preservation.techmeta.base import Extractor, RangeFile, ReadRange, TechnicalMetadata
from repository.preservation.techmeta.imaging import (
    PNG_SIGNATURE,
    TIFF_MAGICS,
    DicomExtractor,
    JpegExtractor,
    PngExtractor,
    TiffExtractor,
)
from repository.preservation.techmeta.sequencing import (
    BamExtractor,
    CramExtractor,
    FastqExtractor,
    SamExtractor,
    gunzip_head,
    looks_like_sam,
)

__all__ = ["Extractor", "TechnicalMetadata", "extractor_for", "metadata_finish"]

logger = logging.getLogger(__name__)

FASTQ_SUFFIXES = (".fastq", ".fq")
GZIP_SUFFIXES = (".gz", ".bgz")


def _is_fastq_name(filename: str, *, gzipped: bool) -> bool:
    name = filename.lower()
    if gzipped:
        if not name.endswith(GZIP_SUFFIXES):
            return False
        name = name.rsplit(".", 1)[0]
    return name.endswith(FASTQ_SUFFIXES)


def extractor_for(
    *, head: bytes, filename: str, read_range: ReadRange, size: int
) -> Extractor | None:
    """The extractor for the object whose first bytes are ``head``, or ``None``."""

    def file() -> RangeFile:
        return RangeFile(read_range, size, head=head)

    if head.startswith(b"CRAM"):
        return CramExtractor(file())
    if head.startswith(b"\x1f\x8b"):
        inner = gunzip_head(head[: 1024**2], limit=64 * 1024)
        if inner.startswith(b"BAM\x01"):
            return BamExtractor(file())
        if _is_fastq_name(filename, gzipped=True) and inner.startswith(b"@"):
            return FastqExtractor(gzipped=True)
        return None
    if head.startswith(PNG_SIGNATURE):
        return PngExtractor(file())
    if head.startswith(b"\xff\xd8\xff"):
        return JpegExtractor(file())
    if head.startswith(TIFF_MAGICS):
        return TiffExtractor(file())
    if head[128:132] == b"DICM":
        return DicomExtractor(file())
    if _is_fastq_name(filename, gzipped=False) and head.startswith(b"@"):
        return FastqExtractor(gzipped=False)
    if looks_like_sam(head) or (filename.lower().endswith(".sam") and head[:1] == b"@"):
        return SamExtractor()
    return None


def metadata_finish(extractor: Extractor) -> TechnicalMetadata:
    """The extractor's answer; a file that does not parse yields an error note, not a crash."""
    try:
        return extractor.finish()
    except Exception as exc:  # a damaged or unusual file must not fail its checksum
        # The message stays in the log: it may quote the file's own bytes.
        logger.warning("technical metadata not extracted: %r", exc)
        name = type(extractor).__name__.removesuffix("Extractor").upper()
        return TechnicalMetadata({"format": name, "error": f"unreadable ({type(exc).__name__})"})
