"""Technical metadata: sniffed from the first chunk, counted or read from headers only."""

import gzip
import io
import random
import struct
import zlib

import numpy
import pytest
import tifffile
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

from repository.models import DataObject
from repository.preservation import techmeta
from repository.preservation.checksums import data_object_checksum_verify

from .stored_objects import store_object

# --- Files made here, the way instruments and pipelines write them -----------------------


def fastq(reads: int, *, seed: int = 7) -> tuple[bytes, int]:
    """A four-line FASTQ of ``reads`` reads of 50..150 bases; answers (bytes, bases)."""
    rng = random.Random(seed)
    records, bases = [], 0
    for n in range(reads):
        length = rng.randint(50, 150)
        bases += length
        sequence = "".join(rng.choice("ACGT") for _ in range(length))
        records.append(f"@read{n} 1:N:0:ATCACG\n{sequence}\n+\n{'I' * length}\n")
    return "".join(records).encode(), bases


def tiff(shape=(3, 64, 48), dtype=numpy.uint16, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, numpy.zeros(shape, dtype), photometric="minisblack", **options)
    return buffer.getvalue()


def dicom(*, patient_name="", patient_id="", birth_date="", rows=32, columns=24) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = CTImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8, for Japanese names
    dataset.Modality = "CT"
    dataset.PatientName = patient_name
    dataset.PatientID = patient_id
    dataset.PatientBirthDate = birth_date
    dataset.Rows, dataset.Columns = rows, columns
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PixelData = bytes(rows * columns * 2)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def png(width=7, height=3) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    pixels = zlib.compress(bytes(height * (1 + 4 * width)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg(width=640, height=480) -> bytes:
    """SOI, an EXIF segment whose thumbnail has its own (smaller) frame header, then SOF2."""
    thumbnail = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10\x03" + bytes(9)
    exif = b"Exif\x00\x00" + thumbnail
    frame = struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return (
        b"\xff\xd8\xff\xe1"
        + struct.pack(">H", len(exif) + 2)
        + exif
        + b"\xff\xc2"
        + frame
        + b"\xff\xda\x00\x02\xff\xd9"
    )


SAM_HEADER = b"@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chr1\tLN:1000\n@RG\tID:lane1\n"
SAM_ALIGNMENT = b"r%d\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n"


def sam(alignments: int, *, header: bytes = SAM_HEADER) -> bytes:
    return header + b"".join(SAM_ALIGNMENT % n for n in range(alignments))


def bgzf_block(data: bytes) -> bytes:
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    header = b"\x1f\x8b\x08\x04" + bytes(4) + b"\x00\xff" + struct.pack("<H", 6)
    header += b"BC" + struct.pack("<HH", 2, len(body) + 25)
    return header + body + struct.pack("<II", zlib.crc32(data), len(data))


def bam(header: bytes = SAM_HEADER) -> bytes:
    references = struct.pack("<i", 5) + b"chr1\x00" + struct.pack("<i", 1000)
    payload = b"BAM\x01" + struct.pack("<i", len(header)) + header + struct.pack("<i", 1)
    return bgzf_block(payload + references) + bgzf_block(b"")  # and the EOF block


def cram(header: bytes = SAM_HEADER, *, gzip_block: bool = False) -> bytes:
    """CRAM 3.0: file definition, then the header container with one block (small values,
    so every ITF8 number is a single byte)."""
    text = struct.pack("<i", len(header)) + header
    data = gzip.compress(text) if gzip_block else text
    block = bytes([1 if gzip_block else 0, 0, 0, len(data), len(text)]) + data + bytes(4)
    container = bytes([0, 0, 0, 0]) + bytes([0, 0]) + bytes([1, 0]) + bytes(4)
    return b"CRAM\x03\x00" + bytes(20) + struct.pack("<i", len(block)) + container + block


def extract(data: bytes, filename: str, *, chunk_size: int = 4096, head: int = 1024**2):
    """Run extraction the way the checksum pass does: sniff, feed every chunk, finish."""
    extractor = techmeta.extractor_for(
        head=data[:head],
        filename=filename,
        read_range=lambda start, length: data[start : start + length],
        size=len(data),
    )
    if extractor is None:
        return None
    for start in range(0, len(data), chunk_size):
        extractor.feed(data[start : start + chunk_size])
    return techmeta.metadata_finish(extractor)


# --- Sequencing --------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 1 << 20])
def test_fastq_reads_bases_and_mean_length_whatever_the_chunking(chunk_size):
    data, bases = fastq(200)

    result = extract(data, "run1_R1.fastq", chunk_size=chunk_size)

    assert result.fields == {
        "format": "FASTQ",
        "reads": 200,
        "bases": bases,
        "mean_read_length": round(bases / 200, 1),
    }


def test_a_fastq_line_that_never_ends_stops_the_count_in_bounded_memory():
    """A damaged file with no line end after its first lines: the unfinished line is not
    kept past MAX_LINE, so memory does not grow with the file."""
    import tracemalloc

    from repository.preservation.techmeta.sequencing import MAX_LINE, FastqExtractor

    extractor = FastqExtractor(gzipped=False)
    piece = b"A" * (4 * 1024**2)
    tracemalloc.start()
    try:
        extractor.feed(b"@r1\nACGT\n+\nIIII\n@r2\n")
        for _ in range(48):  # 192 MiB of one line
            extractor.feed(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert "longer than 16 MiB" in techmeta.metadata_finish(extractor).fields["error"]
    assert peak < 4 * MAX_LINE, f"peak {peak / 1024**2:.0f} MiB"


def test_fastq_gz_is_counted_through_its_compression():
    data, bases = fastq(500)

    result = extract(gzip.compress(data), "run1_R2.fq.gz")

    assert result.fields["compression"] == "gzip"
    assert (result.fields["reads"], result.fields["bases"]) == (500, bases)
    assert "truncated" not in result.fields


def test_fastq_gz_in_many_members_counts_every_member():
    """bgzip and `cat a.gz b.gz` both write several gzip members into one file."""
    first, first_bases = fastq(100, seed=1)
    second, second_bases = fastq(150, seed=2)

    result = extract(gzip.compress(first) + gzip.compress(second), "lane.fastq.gz")

    assert result.fields["reads"] == 250
    assert result.fields["bases"] == first_bases + second_bases


def test_a_truncated_fastq_gz_is_reported_not_fatal():
    compressed = gzip.compress(fastq(2000)[0])

    result = extract(compressed[: len(compressed) // 2], "cut.fastq.gz")

    assert result.fields["format"] == "FASTQ"
    assert result.fields["truncated"] is True
    assert 0 < result.fields["reads"] < 2000


def test_fastq_with_windows_line_endings_counts_bases_not_carriage_returns():
    data, bases = fastq(20)

    result = extract(data.replace(b"\n", b"\r\n"), "reads.fastq")

    assert result.fields["bases"] == bases


def test_a_fastq_name_on_other_content_says_so():
    result = extract(b"@not really\nACGT\nIIII\n@x\n", "wrong.fastq")

    assert result.fields == {"format": "FASTQ", "error": "records are not four lines long"}


def test_sam_header_and_alignments():
    result = extract(sam(30), "aligned.sam", chunk_size=50)

    assert result.fields == {
        "format": "SAM",
        "header_present": True,
        "sam_version": "1.6",
        "sort_order": "coordinate",
        "reference_sequences": 1,
        "read_groups": 1,
        "alignments": 30,
    }


def test_sam_without_header_is_recognised_by_its_columns():
    result = extract(sam(3, header=b""), "aligned.txt")

    assert result.fields["format"] == "SAM"
    assert result.fields["header_present"] is False
    assert result.fields["alignments"] == 3


@pytest.mark.parametrize(
    ("header", "present"), [(SAM_HEADER, True), (b"", False)], ids=["header", "no-header"]
)
def test_bam_magic_and_header(header, present):
    result = extract(bam(header), "sample.bam")

    assert result.fields["format"] == "BAM"
    assert result.fields["header_present"] is present
    assert result.fields["reference_sequences"] == 1


@pytest.mark.parametrize("gzip_block", [False, True], ids=["raw", "gzip"])
def test_cram_version_and_header(gzip_block):
    result = extract(cram(gzip_block=gzip_block), "sample.cram")

    assert result.fields["format"] == "CRAM"
    assert result.fields["cram_version"] == "3.0"
    assert result.fields["header_present"] is True
    assert result.fields["sort_order"] == "coordinate"


# --- Images ------------------------------------------------------------------------------


def test_tiff_dimensions_pages_and_bit_depth():
    result = extract(tiff(shape=(3, 64, 48)), "stack.tif")

    assert result.fields == {
        "format": "TIFF",
        "width": 48,
        "height": 64,
        "bit_depth": 16,
        "samples_per_pixel": 1,
        "compression": "none",
        "pages": 3,
    }


def test_ome_tiff_adds_its_pixel_sizes():
    data = tiff(shape=(2, 3, 40, 30), dtype=numpy.uint8, ome=True, metadata={"axes": "ZCYX"})

    result = extract(data, "cells.ome.tif")

    assert result.fields["format"] == "OME-TIFF"
    assert (result.fields["size_z"], result.fields["size_c"], result.fields["size_t"]) == (2, 3, 1)
    assert result.fields["pages"] == 6
    assert result.fields["pixel_type"] == "uint8"


def test_bigtiff_is_noted():
    result = extract(tiff(shape=(20, 10), dtype=numpy.uint8, bigtiff=True), "big.tif")

    assert result.fields["bigtiff"] is True
    assert (result.fields["width"], result.fields["height"]) == (10, 20)


class CountingReads:
    def __init__(self, data: bytes):
        self.data = data
        self.fetched = 0

    def __call__(self, start: int, length: int) -> bytes:
        self.fetched += length
        return self.data[start : start + length]


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("large.tif", tiff(shape=(4, 1024, 1024), dtype=numpy.uint8)),
        ("large.dcm", dicom(rows=1024, columns=2048)),
    ],
    ids=["tiff", "dicom"],
)
def test_headers_are_read_without_reading_the_pixels(filename, data):
    reads = CountingReads(data)
    extractor = techmeta.extractor_for(
        head=data[:132], filename=filename, read_range=reads, size=len(data)
    )

    result = techmeta.metadata_finish(extractor)

    assert "error" not in result.fields
    assert reads.fetched < 300 * 1024 < len(data)


def test_dicom_modality_and_dimensions_without_personal_data():
    result = extract(dicom(rows=32, columns=24), "slice.dcm")

    assert result.fields == {
        "format": "DICOM",
        "modality": "CT",
        "width": 24,
        "height": 32,
        "frames": 1,
        "bit_depth": 16,
        "sop_class": "CT Image Storage",
        "transfer_syntax": "Explicit VR Little Endian",
    }
    assert result.contains_personal_data is False


@pytest.mark.parametrize(
    ("identifiers", "tags"),
    [
        ({"patient_name": "Yamada^Taro"}, "PatientName"),
        ({"patient_id": "P-0042"}, "PatientID"),
        ({"patient_name": "山田^太郎", "birth_date": "19700101"}, "PatientName, PatientBirthDate"),
    ],
    ids=["name", "id", "name-and-birth-date"],
)
def test_dicom_with_a_patient_identifier_is_flagged_by_tag_name_only(identifiers, tags):
    result = extract(dicom(**identifiers), "slice.dcm")

    assert result.contains_personal_data is True
    assert result.fields["personal_data_tags"] == tags
    for value in identifiers.values():
        assert value not in str(result.fields)


def test_png_header():
    assert extract(png(7, 3), "plot.png").fields == {
        "format": "PNG",
        "width": 7,
        "height": 3,
        "bit_depth": 8,
        "colour_type": "RGBA",
        "interlaced": False,
    }


def test_jpeg_frame_header_not_the_exif_thumbnails():
    fields = extract(jpeg(640, 480), "photo.jpg").fields

    assert (fields["width"], fields["height"], fields["process"]) == (640, 480, "progressive")


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"\x00\x01\x02" * 100, "data.bin"),
        (b"@HD looks like a header but the name says nothing", "notes.txt"),
        (gzip.compress(b"plain text"), "notes.txt.gz"),
        (b"", "empty.fastq"),
    ],
    ids=["binary", "text", "gzip", "empty"],
)
def test_unknown_content_has_no_technical_metadata(data, filename):
    assert extract(data, filename) is None


def test_a_damaged_header_is_noted_without_failing():
    data = tiff()
    broken = data[:8] + b"\xff" * 64

    result = extract(broken, "broken.tif")

    assert result.fields["format"] == "TIFF"
    assert result.fields["error"].startswith("unreadable")


# --- Through the checksum pass, from S3 ----------------------------------------------------


@pytest.mark.django_db
def test_fastq_gz_metadata_is_recorded_when_the_upload_is_verified(client):
    data, bases = fastq(300)
    data_object = store_object(gzip.compress(data), filename="S1_L001_R1_001.fastq.gz")

    data_object_checksum_verify(data_object_id=data_object.pk)

    data_object.refresh_from_db()
    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.technical_metadata == {
        "format": "FASTQ",
        "compression": "gzip",
        "reads": 300,
        "bases": bases,
        "mean_read_length": round(bases / 300, 1),
    }
    client.force_login(data_object.uploaded_by)
    page = client.get(f"/objects/{data_object.pk}/").content.decode()
    assert "mean_read_length" in page
    assert f"<dd>{bases}</dd>" in page


@pytest.mark.django_db
def test_tiff_metadata_is_recorded_when_the_upload_is_verified():
    data_object = store_object(tiff(shape=(5, 30, 20)), filename="section.tif")

    data_object_checksum_verify(data_object_id=data_object.pk)

    data_object.refresh_from_db()
    metadata = data_object.technical_metadata
    assert (metadata["width"], metadata["height"], metadata["pages"]) == (20, 30, 5)
    assert metadata["bit_depth"] == 16
    assert data_object.contains_personal_data is False


@pytest.mark.django_db
def test_a_dicom_with_a_patient_name_flags_the_object_as_personal_data():
    data_object = store_object(dicom(patient_name="Suzuki^Hanako"), filename="brain.dcm")

    data_object_checksum_verify(data_object_id=data_object.pk)

    data_object.refresh_from_db()
    assert data_object.contains_personal_data is True
    assert data_object.technical_metadata["modality"] == "CT"
    assert data_object.technical_metadata["personal_data_tags"] == "PatientName"
    assert "Suzuki" not in str(data_object.technical_metadata)


@pytest.mark.django_db
def test_an_anonymised_dicom_keeps_a_flag_set_by_people():
    data_object = store_object(dicom(), filename="anon.dcm", contains_personal_data=True)

    data_object_checksum_verify(data_object_id=data_object.pk)

    data_object.refresh_from_db()
    assert data_object.contains_personal_data is True
    assert "personal_data_tags" not in data_object.technical_metadata
