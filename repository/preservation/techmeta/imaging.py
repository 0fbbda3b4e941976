"""Image formats: TIFF and OME-TIFF (tifffile), DICOM (pydicom), PNG and JPEG (by hand).

Only headers are read, through a :class:`RangeFile`: never the pixels.
"""

import re
import struct

from repository.preservation.techmeta.base import (
    Extractor,
    RangeFile,
    ReadBudgetExceeded,
    TechnicalMetadata,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {
    0: "grayscale",
    2: "RGB",
    3: "palette",
    4: "grayscale + alpha",
    6: "RGBA",
}


class PngExtractor(Extractor):
    """PNG: the IHDR chunk right after the signature."""

    def __init__(self, file: RangeFile):
        self._file = file

    def finish(self) -> TechnicalMetadata:
        data = self._file.read(33)
        if len(data) < 33 or data[12:16] != b"IHDR":
            return TechnicalMetadata({"format": "PNG", "error": "no IHDR chunk"})
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
        return TechnicalMetadata(
            {
                "format": "PNG",
                "width": width,
                "height": height,
                "bit_depth": depth,
                "colour_type": PNG_COLOUR_TYPES.get(colour, str(colour)),
                "interlaced": interlace == 1,
            }
        )


# Start-of-frame markers; C4 (DHT), C8 (JPG) and CC (DAC) share the range but are not.
JPEG_SOF = {0xC0 + n for n in range(16)} - {0xC4, 0xC8, 0xCC}
JPEG_PROCESSES = {0xC0: "baseline", 0xC1: "extended", 0xC2: "progressive", 0xC3: "lossless"}
JPEG_SCAN_LIMIT = 16 * 1024**2


class JpegExtractor(Extractor):
    """JPEG: walk the marker segments from SOI to the first SOFn (skipping APPn, so an EXIF
    thumbnail's own frame header is never mistaken for the image's)."""

    def __init__(self, file: RangeFile):
        self._file = file

    def finish(self) -> TechnicalMetadata:
        file = self._file
        file.seek(2)
        while file.tell() < min(file.size, JPEG_SCAN_LIMIT):
            prefix = file.read(1)
            if prefix != b"\xff":
                break
            marker = file.read(1)
            while marker == b"\xff":  # fill bytes
                marker = file.read(1)
            if not marker:
                break
            code = marker[0]
            if code == 0x01 or 0xD0 <= code <= 0xD8:
                continue  # no length field
            if code in (0xD9, 0xDA):
                break  # end of image, or the scan started without a frame header
            (length,) = struct.unpack(">H", file.read(2))
            if code in JPEG_SOF:
                precision, height, width, components = struct.unpack(">BHHB", file.read(6))
                return TechnicalMetadata(
                    {
                        "format": "JPEG",
                        "width": width,
                        "height": height,
                        "bit_depth": precision,
                        "components": components,
                        "process": JPEG_PROCESSES.get(code, "other"),
                    }
                )
            file.seek(length - 2, 1)
        return TechnicalMetadata({"format": "JPEG", "error": "no frame header found"})


TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
OME_PIXELS = re.compile(r"<(?:\w+:)?Pixels\b([^>]*)>")
OME_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
OME_FIELDS = {
    "SizeZ": "size_z",
    "SizeC": "size_c",
    "SizeT": "size_t",
    "DimensionOrder": "dimension_order",
    "Type": "pixel_type",
}
# Counting pages means reading every IFD; past this many, say "at least".
TIFF_MAX_PAGES = 100_000


class TiffExtractor(Extractor):
    """TIFF, BigTIFF and OME-TIFF: the first IFD, the page count and OME's pixel sizes."""

    def __init__(self, file: RangeFile):
        self._file = file

    def finish(self) -> TechnicalMetadata:
        import tifffile

        with tifffile.TiffFile(self._file) as tif:
            page = tif.pages.first
            fields: dict = {
                "format": "OME-TIFF" if tif.is_ome else "TIFF",
                "width": int(page.imagewidth),
                "height": int(page.imagelength),
                "bit_depth": int(page.bitspersample),
                "samples_per_pixel": int(page.samplesperpixel),
                "compression": page.compression.name.lower(),
            }
            if tif.is_bigtiff:
                fields["bigtiff"] = True
            fields["pages"] = self._page_count(tif)
            if tif.is_ome:
                fields.update(self._ome_fields(tif.ome_metadata or ""))
        return TechnicalMetadata(fields)

    @staticmethod
    def _page_count(tif) -> int | str:
        count = 0
        try:
            tif.pages.cache = False
            tif.pages.useframes = True
            for _ in tif.pages:
                count += 1
                if count >= TIFF_MAX_PAGES:
                    return f">= {count}"
            return count
        except ReadBudgetExceeded:
            return f">= {count}"

    @staticmethod
    def _ome_fields(xml: str) -> dict:
        pixels = OME_PIXELS.search(xml)
        if not pixels:
            return {}
        attributes = dict(OME_ATTRIBUTE.findall(pixels.group(1)))
        fields: dict = {}
        for attribute, key in OME_FIELDS.items():
            if attribute in attributes:
                value = attributes[attribute]
                fields[key] = int(value) if value.isdigit() else value
        fields["ome_images"] = len(re.findall(r"<(?:\w+:)?Image\b", xml))
        return fields


DICOM_PERSONAL_TAGS = ("PatientName", "PatientID", "PatientBirthDate")
DICOM_TAGS = (
    "Modality",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "BitsAllocated",
    "SOPClassUID",
    *DICOM_PERSONAL_TAGS,
)


class DicomExtractor(Extractor):
    """DICOM: modality and dimensions; personal data when a patient identifier is filled in.

    Only the names of the identifying tags found are recorded, never their values.
    """

    def __init__(self, file: RangeFile):
        self._file = file

    def finish(self) -> TechnicalMetadata:
        import pydicom

        dataset = pydicom.dcmread(self._file, stop_before_pixels=True, specific_tags=DICOM_TAGS)
        fields: dict = {"format": "DICOM"}
        if modality := dataset.get("Modality"):
            fields["modality"] = str(modality)
        for keyword, key in (("Columns", "width"), ("Rows", "height")):
            if (value := dataset.get(keyword)) is not None:
                fields[key] = int(value)
        fields["frames"] = int(dataset.get("NumberOfFrames") or 1)
        if (bits := dataset.get("BitsAllocated")) is not None:
            fields["bit_depth"] = int(bits)
        if sop_class := dataset.get("SOPClassUID"):
            fields["sop_class"] = sop_class.name
        transfer_syntax = getattr(dataset.file_meta, "TransferSyntaxUID", None)
        if transfer_syntax:
            fields["transfer_syntax"] = transfer_syntax.name
        found = [tag for tag in DICOM_PERSONAL_TAGS if str(dataset.get(tag) or "").strip()]
        if found:
            fields["personal_data_tags"] = ", ".join(found)
        return TechnicalMetadata(fields, contains_personal_data=bool(found))
