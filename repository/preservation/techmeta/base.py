"""What every extractor shares: its result, its interface, and a file over ranged reads."""

import io
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

# (start, length) -> at most ``length`` bytes from ``start``: ``ObjectStore.read_range``.
ReadRange = Callable[[int, int], bytes]

# Values stay JSON-simple: the object page prints them as they are.
Value = str | int | float | bool


@dataclass
class TechnicalMetadata:
    """Facts about a file's format, and whether it carries personal data."""

    fields: dict[str, Value] = field(default_factory=dict)
    contains_personal_data: bool = False


class Extractor:
    """Sees every chunk of the object in order (``feed``), then answers (``finish``).

    Formats that need the whole file (FASTQ, SAM) count as the chunks go by, riding on the
    checksum pass; formats with a header (TIFF, DICOM, BAM, ...) ignore the chunks and read
    only the bytes they need through a :class:`RangeFile` when asked to finish.
    """

    def feed(self, chunk: bytes) -> None:
        """Look at the next chunk of the object."""

    def finish(self) -> TechnicalMetadata:
        raise NotImplementedError


class ReadBudgetExceeded(Exception):
    """An extractor wanted more of the object than a header can reasonably need."""


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over ranged reads of a stored object.

    Libraries that want a file (tifffile, pydicom) get one that fetches only the blocks they
    touch, keeps the last few, serves the beginning from the ``head`` already in hand, and
    refuses to fetch more than ``max_bytes`` in all.
    """

    block_size = 64 * 1024

    def __init__(
        self,
        read_range: ReadRange,
        size: int,
        *,
        head: bytes = b"",
        max_bytes: int = 64 * 1024**2,
        cached_blocks: int = 32,
    ):
        super().__init__()
        self._read_range = read_range
        self._size = size
        self._head = head[:size]
        self._max_bytes = max_bytes
        self._cached_blocks = cached_blocks
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._fetched = 0
        self._pos = 0

    @property
    def size(self) -> int:
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(self._size - self._pos, 0))
        done = 0
        while done < wanted:
            start = self._pos
            if start >= len(self._head) and wanted - done > 2 * self.block_size:
                piece = self._fetch(start, wanted - done)  # a long read: one request
            else:
                block_no, offset = divmod(start, self.block_size)
                piece = self._block(block_no)[offset : offset + wanted - done]
            if not piece:
                break
            view[done : done + len(piece)] = piece
            done += len(piece)
            self._pos += len(piece)
        return done

    def _block(self, block_no: int) -> bytes:
        start = block_no * self.block_size
        end = min(start + self.block_size, self._size)
        if end <= len(self._head):
            return self._head[start:end]
        block = self._cache.get(block_no)
        if block is None:
            block = self._fetch(start, end - start)
            self._cache[block_no] = block
            if len(self._cache) > self._cached_blocks:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(block_no)
        return block

    def _fetch(self, start: int, length: int) -> bytes:
        if self._fetched + length > self._max_bytes:
            raise ReadBudgetExceeded(f"more than {self._max_bytes} bytes of header")
        self._fetched += length
        return self._read_range(start, length)
