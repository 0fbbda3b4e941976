"""Summaries of sequencing files: FASTQ(.gz) in one streamed pass, BAM/CRAM headers and
reads per reference.

A FASTQ summary reads the stored bytes once, in chunks, decompressing with ISA-L
(``isal``, two to three times zlib's speed) where it is installed and zlib otherwise, and
counts whole records a decompressed block at a time with ``bytes`` and numpy operations
(no Python loop per base): memory stays at a few blocks (:data:`BLOCK`) plus one counter
per read position, whatever the size of the file. Quality is Phred+33.

BAM and CRAM headers (references, read groups, programs) are read with pysam (htslib)
from the first bytes of the file; with a BAM index stored beside it in the same record
(``name.bai`` or ``name.csi``), the per-reference read counts come from the index alone,
without reading the alignments. A CRAM index (``name.crai``) holds no counts: a CRAM's
reads are counted in one streamed pass over the whole file (:func:`cram_count`, what
``samtools idxstats`` does for CRAM), decoding only each read's flag and reference, so no
sequence is rebuilt and no reference FASTA is needed; memory is htslib's one container at a
time plus two counters per reference, whatever the size of the file.
"""

import io
from collections.abc import Iterable, Iterator

import numpy as np

# Decompressed bytes handled at a time.
BLOCK = 8 * 1024**2
PHRED_OFFSET = 33
# At most this many points in the charts (positions and lengths are binned beyond).
CHART_POINTS = 150
# Headers list at most this many references, read groups and programs.
HEADER_ITEMS = 50
# An unfinished record kept from one block to the next is at most this long: the longest
# reads sequenced are a few megabases, and a file whose "record" runs past this (damaged,
# or no FASTQ at all) is counted no further, so memory stays bounded whatever it holds.
MAX_CARRY = 2 * BLOCK
# htslib's CRAM option naming the fields to decode: SAM_FLAG (0x2) and SAM_RNAME (0x4), as
# samtools idxstats asks for a CRAM. The sequence, which needs the reference, is not rebuilt.
CRAM_COUNT_FIELDS = 0x2 | 0x4


class FastqSummary:
    """Counts over whole FASTQ records, fed decompressed blocks in order."""

    def __init__(self):
        self._carry = b""
        self.reads = 0
        self.bases = 0
        self.gc = 0
        self._lengths = np.zeros(0, dtype=np.int64)  # reads per sequence length
        self._quality_lengths = np.zeros(0, dtype=np.int64)  # reads per quality length
        self._quality_sums = np.zeros(0, dtype=np.uint64)  # per position
        self.malformed = False
        self.stopped = False  # a record ran past MAX_CARRY: nothing more is counted

    def feed(self, block: bytes) -> None:
        if self.stopped:
            return
        data = self._carry + block if self._carry else block
        lines = data.split(b"\n")
        tail = lines.pop()
        whole = len(lines) // 4 * 4
        rest = lines[whole:]
        self._carry = b"\n".join([*rest, tail]) if rest else tail
        if whole:
            self._count(lines[:whole])
        if len(self._carry) > MAX_CARRY:
            self.malformed = self.stopped = True
            self._carry = b""

    def _count(self, lines: list[bytes]) -> None:
        if lines[0].endswith(b"\r"):
            lines = [line.rstrip(b"\r") for line in lines]
        if not lines[0].startswith(b"@") or not lines[2].startswith(b"+"):
            self.malformed = True
        sequences, qualities = lines[1::4], lines[3::4]
        self.reads += len(sequences)
        joined = b"".join(sequences)
        self.bases += len(joined)
        # x | 0x24 is 0x67 exactly for G, C, g and c: one numpy pass counts all four.
        self.gc += int(np.count_nonzero(np.frombuffer(joined, dtype=np.uint8) | 0x24 == 0x67))
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        self._lengths = _add_counts(self._lengths, np.bincount(lengths))
        self._quality_add(qualities)

    def _quality_add(self, qualities: list[bytes]) -> None:
        lengths = np.fromiter(map(len, qualities), dtype=np.int64, count=len(qualities))
        if not len(lengths):
            return
        self._quality_lengths = _add_counts(self._quality_lengths, np.bincount(lengths))
        longest = int(lengths.max())
        if len(self._quality_sums) < longest:
            grown = np.zeros(longest, dtype=np.uint64)
            grown[: len(self._quality_sums)] = self._quality_sums
            self._quality_sums = grown
        if int(lengths.min()) == longest:  # the usual case: every read the same length
            groups = [(longest, b"".join(qualities))]
        else:  # group equal lengths together, each group one 2-D array
            order = np.argsort(lengths, kind="stable")
            joined = b"".join([qualities[i] for i in order])
            values, counts = np.unique(lengths[order], return_counts=True)
            groups, start = [], 0
            for length, count in zip(values.tolist(), counts.tolist(), strict=True):
                end = start + length * count
                groups.append((length, joined[start:end]))
                start = end
        for length, data in groups:
            if length:
                matrix = np.frombuffer(data, dtype=np.uint8).reshape(-1, length)
                self._quality_sums[:length] += matrix.sum(axis=0, dtype=np.uint64)

    def finish(self) -> dict:
        if self._carry.strip():
            lines = self._carry.split(b"\n")
            if len(lines) >= 4:
                self._count(lines[:4])
            self.malformed = self.malformed or len([line for line in lines if line]) % 4 != 0
        lengths = self._lengths
        present = np.flatnonzero(lengths)
        summary: dict = {
            "format": "FASTQ",
            "reads": self.reads,
            "bases": self.bases,
            "gc_percent": round(100 * self.gc / self.bases, 2) if self.bases else 0.0,
        }
        if self.reads:
            summary["length_min"] = int(present[0])
            summary["length_max"] = int(present[-1])
            summary["length_mean"] = round(self.bases / self.reads, 1)
            summary["length_histogram"] = _binned_counts(lengths)
            summary["mean_quality"] = self._mean_quality()
        if self.malformed:
            summary["malformed"] = True
        return summary

    def mean_quality_by_position(self) -> list[float]:
        """The mean Phred quality at each read position (1-based position i at i-1)."""
        reads_at = np.cumsum(self._quality_lengths[::-1])[::-1][1:]  # reads longer than i
        reads_at = reads_at[: len(self._quality_sums)]
        sums = self._quality_sums[: len(reads_at)].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            means = np.where(reads_at > 0, sums / reads_at - PHRED_OFFSET, 0.0)
        return means.tolist()

    def _mean_quality(self) -> list[list]:
        """``[[first position, last position, mean quality], …]``, positions 1-based and
        binned to at most :data:`CHART_POINTS` points."""
        reads_at = np.cumsum(self._quality_lengths[::-1])[::-1][1:]
        positions = min(len(reads_at), len(self._quality_sums))
        if not positions:
            return []
        step = -(-positions // CHART_POINTS)
        points = []
        for start in range(0, positions, step):
            end = min(start + step, positions)
            reads = int(reads_at[start:end].sum())
            total = int(self._quality_sums[start:end].sum())
            if reads:
                mean = total / reads - PHRED_OFFSET
                points.append([start + 1, end, round(mean, 2)])
        return points


def _add_counts(total: np.ndarray, more: np.ndarray) -> np.ndarray:
    if len(more) > len(total):
        more = more.copy()
        more[: len(total)] += total
        return more
    total[: len(more)] += more
    return total


def _binned_counts(counts: np.ndarray) -> list[list[int]]:
    """``[[shortest, longest, reads], …]`` over the lengths present, at most
    :data:`CHART_POINTS` bins of equal width."""
    present = np.flatnonzero(counts)
    low, high = int(present[0]), int(present[-1])
    step = -(-(high - low + 1) // CHART_POINTS)
    bins = []
    for start in range(low, high + 1, step):
        end = min(start + step - 1, high)
        reads = int(counts[start : end + 1].sum())
        if reads:
            bins.append([start, end, reads])
    return bins


class _ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (the store's streamed read)."""

    def __init__(self, chunks: Iterable[bytes]):
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _gzip_open(raw: io.RawIOBase):
    try:
        from isal import igzip
    except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
        import gzip as igzip
    return igzip.GzipFile(fileobj=io.BufferedReader(raw, BLOCK), mode="rb")


def fastq_summarize(chunks: Iterable[bytes], *, gzipped: bool) -> dict:
    """The summary of the FASTQ file whose (possibly gzip-compressed, possibly
    multi-member, as bgzip writes) bytes are ``chunks``, in one pass."""
    summary = FastqSummary()
    raw = _ChunkReader(chunks)
    stream = _gzip_open(raw) if gzipped else io.BufferedReader(raw, BLOCK)
    with stream:
        while not summary.stopped and (block := stream.read(BLOCK)):
            summary.feed(block)
    return summary.finish()


def alignment_summarize(path: str, *, index_path: str | None) -> dict:
    """The header of a BAM or CRAM file at ``path`` (a local file holding at least its
    header), and with ``index_path`` the mapped and unmapped reads of each reference."""
    import pysam

    with pysam.AlignmentFile(
        path, "r", index_filename=index_path, check_sq=False, require_index=bool(index_path)
    ) as alignments:
        header = alignments.header.to_dict()
        summary: dict = {"format": "CRAM" if alignments.is_cram else "BAM"}
        references = header.get("SQ", [])
        summary["references"] = len(references)
        summary["reference_list"] = [
            {"name": sq.get("SN", ""), "length": sq.get("LN", 0)}
            for sq in references[:HEADER_ITEMS]
        ]
        summary["read_groups"] = [
            {key: str(group[key]) for key in ("ID", "SM", "PL", "LB", "CN") if key in group}
            for group in header.get("RG", [])[:HEADER_ITEMS]
        ]
        summary["programs"] = [
            {key: str(program[key]) for key in ("ID", "PN", "VN", "CL") if key in program}
            for program in header.get("PG", [])[:HEADER_ITEMS]
        ]
        if sort_order := header.get("HD", {}).get("SO"):
            summary["sort_order"] = sort_order
        if index_path and not alignments.is_cram:
            statistics = alignments.get_index_statistics()
            summary["reads_per_reference"] = [
                {"name": s.contig, "mapped": s.mapped, "unmapped": s.unmapped}
                for s in statistics[:HEADER_ITEMS]
            ]
            summary["mapped"] = sum(s.mapped for s in statistics)
            summary["unmapped"] = alignments.unmapped
    return summary


def cram_count(stream) -> dict:
    """The mapped and unmapped reads of each reference of the CRAM file read from
    ``stream`` (a file with a ``fileno``: a pipe will do, it is read once from start to
    end), counted as a BAM index counts them: every record, secondary and supplementary
    ones included; an unmapped read placed at its mate's position is an unmapped read of
    that reference, and ``unmapped`` also counts the reads with no reference at all.

    A CRAM index holds no counts (htslib answers 0 for every reference, which would read
    as "no reads"), so this reads the file itself. A file that cannot be read to its end
    raises (``OSError`` from htslib, mostly)."""
    import pysam

    # Opening a CRAM, htslib looks for an index, and says so when there is none; none is
    # needed here.
    verbosity = pysam.set_verbosity(0)
    try:
        alignments = pysam.AlignmentFile(
            stream,
            "rc",
            check_sq=False,
            format_options=[f"required_fields={CRAM_COUNT_FIELDS:#x}".encode()],
        )
    finally:
        pysam.set_verbosity(verbosity)
    with alignments:
        names = alignments.references
        mapped, unmapped = [0] * len(names), [0] * len(names)
        no_reference = 0
        for read in alignments.fetch(until_eof=True):
            reference = read.reference_id
            if reference < 0:
                no_reference += 1
            elif read.flag & 0x4:
                unmapped[reference] += 1
            else:
                mapped[reference] += 1
    return {
        "reads_per_reference": [
            {"name": name, "mapped": m, "unmapped": u}
            for name, m, u in zip(names[:HEADER_ITEMS], mapped, unmapped, strict=False)
        ],
        "mapped": sum(mapped),
        "unmapped": sum(unmapped) + no_reference,
        "counts_from": "reads",
    }
