"""Sequencing formats: FASTQ (plain or gzip), SAM, BAM and CRAM."""

import bz2
import lzma
import re
import struct
import zlib
from collections.abc import Iterator

from repository.preservation.techmeta.base import Extractor, RangeFile, TechnicalMetadata

GZIP_WBITS = 16 + zlib.MAX_WBITS
# A line kept unfinished from one chunk to the next is at most this long (a FASTQ line of
# the longest reads is a few megabytes); a longer one ends the extraction.
MAX_LINE = 16 * 1024**2
# Inflate at most this much at a time, so a highly compressed chunk cannot balloon memory.
INFLATE_LIMIT = 4 * 1024**2
# Headers of BAM and CRAM files are read from at most this many bytes of the object.
HEADER_READ = 1024**2


class GzipMembers:
    """Incremental gzip decompression across member boundaries (bgzip writes many)."""

    def __init__(self):
        self._inflater = zlib.decompressobj(GZIP_WBITS)
        self.seen_input = False

    def inflate(self, data: bytes) -> Iterator[bytes]:
        """Decompressed pieces of ``data``, each at most ``INFLATE_LIMIT`` bytes."""
        while data:
            self.seen_input = True
            if self._inflater.eof:
                self._inflater = zlib.decompressobj(GZIP_WBITS)
            out = self._inflater.decompress(data, INFLATE_LIMIT)
            if out:
                yield out
            data = (
                self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
            )

    @property
    def complete(self) -> bool:
        """Whether the last member ended properly (a truncated file ends mid-member)."""
        return not self.seen_input or self._inflater.eof


def gunzip_head(data: bytes, limit: int) -> bytes:
    """Up to ``limit`` decompressed bytes from the start of gzip ``data`` (b"" if corrupt)."""
    members = GzipMembers()
    out = bytearray()
    try:
        for piece in members.inflate(data):
            out += piece
            if len(out) >= limit:
                break
    except zlib.error:
        pass
    return bytes(out[:limit])


class FastqExtractor(Extractor):
    """Reads, bases and mean read length of a four-line-per-record FASTQ file.

    Counting rides on the checksum pass: one ``split`` per chunk, lengths summed in C.
    """

    def __init__(self, *, gzipped: bool):
        self._gzip = GzipMembers() if gzipped else None
        self._partial = b""
        self._lines = 0
        self._bases = 0
        self._crlf = False
        self._first_lines: list[bytes] = []  # of the first record, until it can be judged
        self._checked = False
        self._error = ""

    def feed(self, chunk: bytes) -> None:
        if self._error:
            return
        if self._gzip is None:
            self._count(chunk)
            return
        try:
            for piece in self._gzip.inflate(chunk):
                self._count(piece)
        except zlib.error as exc:
            self._error = f"corrupt gzip data ({exc})"

    def _count(self, block: bytes) -> None:
        lines = block.split(b"\n")
        lines[0] = self._partial + lines[0]
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            # No line of a FASTQ file is this long: counting stops, memory stays bounded.
            self._error = "a line is longer than 16 MiB"
            self._partial = b""
            return
        if not lines:
            return
        if not self._checked:
            self._check_first_record(lines)
            if self._error:
                return
        sequences = lines[(1 - self._lines) % 4 :: 4]
        self._bases += sum(map(len, sequences)) - (len(sequences) if self._crlf else 0)
        self._lines += len(lines)

    def _check_first_record(self, lines: list[bytes]) -> None:
        self._first_lines += lines[: 3 - len(self._first_lines)]
        if len(self._first_lines) < 3:
            return  # not enough to judge yet
        self._checked = True
        header, _, separator = self._first_lines
        self._crlf = header.endswith(b"\r")
        if not header.startswith(b"@"):
            self._error = "the first line is not a FASTQ record header"
        elif not separator.startswith(b"+"):
            self._error = "records are not four lines long"

    def finish(self) -> TechnicalMetadata:
        fields: dict = {"format": "FASTQ"}
        if self._gzip is not None:
            fields["compression"] = "gzip"
        if self._partial and not self._error:
            self._count(self._partial + b"\n")
        if self._error:
            fields["error"] = self._error
            return TechnicalMetadata(fields)
        reads = self._lines // 4
        fields["reads"] = reads
        fields["bases"] = self._bases
        fields["mean_read_length"] = round(self._bases / reads, 1) if reads else 0
        truncated = self._lines % 4 != 0 or (self._gzip is not None and not self._gzip.complete)
        if truncated:
            fields["truncated"] = True
        return TechnicalMetadata(fields)


SAM_HEADER_TAGS = (b"@HD\t", b"@SQ\t", b"@RG\t", b"@PG\t", b"@CO\t")
SORT_ORDER = re.compile(r"^@HD\t.*\bSO:(\S+)", re.MULTILINE)
VERSION = re.compile(r"^@HD\t.*\bVN:(\S+)", re.MULTILINE)


def sam_header_fields(text: str) -> dict:
    """What a SAM header text says about the file (BAM and CRAM carry the same text)."""
    fields: dict = {"header_present": bool(text.strip())}
    if match := VERSION.search(text):
        fields["sam_version"] = match.group(1)
    if match := SORT_ORDER.search(text):
        fields["sort_order"] = match.group(1)
    fields["reference_sequences"] = sum(1 for line in text.splitlines() if line.startswith("@SQ"))
    fields["read_groups"] = sum(1 for line in text.splitlines() if line.startswith("@RG"))
    return fields


class SamExtractor(Extractor):
    """A SAM text file: its header and the number of alignment lines, counted as it streams."""

    def __init__(self):
        self._in_header = True
        self._header = bytearray()
        self._partial = b""
        self._newlines = 0
        self._last_byte = b"\n"
        self._header_limit = 16 * 1024**2

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._newlines += chunk.count(b"\n")
        self._last_byte = chunk[-1:]
        if not self._in_header:
            return
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            self._in_header = False  # no header line is this long
            self._partial = b""
            return
        for line in lines:
            if not line.startswith(b"@") or len(self._header) > self._header_limit:
                self._in_header = False
                return
            self._header += line + b"\n"

    def finish(self) -> TechnicalMetadata:
        if self._in_header and self._partial.startswith(b"@"):
            self._header += self._partial + b"\n"
        header = self._header.decode("utf-8", "replace")
        lines = self._newlines + (0 if self._last_byte == b"\n" else 1)
        fields: dict = {"format": "SAM", **sam_header_fields(header)}
        fields["alignments"] = max(lines - header.count("\n"), 0)
        return TechnicalMetadata(fields)


def looks_like_sam(head: bytes) -> bool:
    """A SAM header line, or a first line with the eleven mandatory tab-separated fields."""
    if head.startswith(SAM_HEADER_TAGS):
        return True
    first_line = head.split(b"\n", 1)[0]
    return first_line.count(b"\t") >= 10 and not first_line.startswith(b"@")


class BamExtractor(Extractor):
    """BAM: BGZF-compressed; the first block holds b"BAM\\1" and the header text."""

    def __init__(self, file: RangeFile):
        self._file = file

    def finish(self) -> TechnicalMetadata:
        data = gunzip_head(self._file.read(HEADER_READ), limit=8 * 1024**2)
        fields: dict = {"format": "BAM", "compression": "BGZF"}
        if len(data) < 8 or not data.startswith(b"BAM\x01"):
            fields["error"] = "no BAM magic in the first block"
            return TechnicalMetadata(fields)
        (text_length,) = struct.unpack_from("<i", data, 4)
        text = data[8 : 8 + text_length].decode("utf-8", "replace").rstrip("\x00")
        fields.update(sam_header_fields(text))
        if text_length == 0:
            fields["header_present"] = False
        offset = 8 + text_length
        if len(data) >= offset + 4:
            (fields["reference_sequences"],) = struct.unpack_from("<i", data, offset)
        return TechnicalMetadata(fields)


def _itf8(data: bytes, pos: int) -> tuple[int, int]:
    """CRAM's variable-length int32: (value, next position)."""
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    if first < 0xC0:
        return ((first & 0x3F) << 8) | data[pos + 1], pos + 2
    if first < 0xE0:
        return ((first & 0x1F) << 16) | int.from_bytes(data[pos + 1 : pos + 3], "big"), pos + 3
    if first < 0xF0:
        return ((first & 0x0F) << 24) | int.from_bytes(data[pos + 1 : pos + 4], "big"), pos + 4
    value = (first & 0x0F) << 28 | int.from_bytes(data[pos + 1 : pos + 4], "big") << 4
    return value | (data[pos + 4] & 0x0F), pos + 5


def _ltf8(data: bytes, pos: int) -> tuple[int, int]:
    """CRAM's variable-length int64: as many leading one bits as bytes follow."""
    first = data[pos]
    extra = 0
    while extra < 8 and first & (0x80 >> extra):
        extra += 1
    value = first & (0xFF >> (extra + 1))
    value = (value << (8 * extra)) | int.from_bytes(data[pos + 1 : pos + 1 + extra], "big")
    return value, pos + 1 + extra


CRAM_BLOCK_DECOMPRESSORS = {
    0: lambda raw: raw,
    1: lambda raw: zlib.decompress(raw, GZIP_WBITS),
    2: bz2.decompress,
    3: lzma.decompress,
}


class CramExtractor(Extractor):
    """CRAM: the file definition gives the version; the first container holds the header."""

    def __init__(self, file: RangeFile):
        self._file = file

    def finish(self) -> TechnicalMetadata:
        data = self._file.read(HEADER_READ)
        major, minor = data[4], data[5]
        fields: dict = {"format": "CRAM", "cram_version": f"{major}.{minor}"}
        try:
            text = self._header_text(data, major)
        except (IndexError, struct.error, zlib.error, OSError, lzma.LZMAError, ValueError):
            text = None
        if text is None:
            fields["header_present"] = "unknown"
        else:
            fields.update(sam_header_fields(text))
        return TechnicalMetadata(fields)

    @staticmethod
    def _header_text(data: bytes, major: int) -> str | None:
        if major not in (2, 3):
            return None
        (length,), pos = struct.unpack_from("<i", data, 26), 30
        if length <= 0:
            return ""
        for _ in range(4):  # reference id, start, span, number of records
            _, pos = _itf8(data, pos)
        for _ in range(2):  # record counter, bases
            _, pos = _ltf8(data, pos)
        _, pos = _itf8(data, pos)  # number of blocks
        landmarks, pos = _itf8(data, pos)
        for _ in range(landmarks):
            _, pos = _itf8(data, pos)
        if major >= 3:
            pos += 4  # CRC32
        method, pos = data[pos], pos + 2  # compression method, content type
        _, pos = _itf8(data, pos)  # content id
        compressed_size, pos = _itf8(data, pos)
        _, pos = _itf8(data, pos)  # raw size
        decompress = CRAM_BLOCK_DECOMPRESSORS.get(method)
        if decompress is None:
            return None
        raw = decompress(data[pos : pos + compressed_size])
        (text_length,) = struct.unpack_from("<i", raw, 0)
        return raw[4 : 4 + text_length].decode("utf-8", "replace")
