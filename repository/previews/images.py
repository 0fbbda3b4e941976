"""Thumbnails and IIIF tile pyramids of stored images, with libvips (pyvips).

libvips streams: opened with ``access="sequential"`` it reads the image top to bottom once
and ``dzsave`` writes each tile as soon as its rows have gone by, so memory stays at a
few rows of tiles per pyramid level (about ``2 x tile size x width x bands`` bytes for the
full level, less for the others: under 150 MiB for a 20,000-pixel-wide RGB image),
whatever the height; the libvips operation cache is switched off in the worker so that no
decoded pixels are kept between images. ``tifffile`` + Pillow would decode whole pages;
Pillow refuses images past its decompression-bomb limit. DICOM pixels are decoded by pydicom
one frame at a time (a frame is bounded by DICOM itself: at most 65,535 x 65,535).

A TIFF or OME-TIFF is read from a copy on the worker's disk (it may be tiled, and libvips
then needs to seek); the copy and the tiles are removed when the preview is stored.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from core.machine_text import Message

# Tiles are 512 pixels square: a quarter as many stored files as 256-pixel tiles for the
# same image, each still small (~50-100 KB as JPEG).
TILE_SIZE = 512
THUMBNAIL_SIZE = 256
JPEG_OPTIONS = "[Q=85,strip]"
# Interpretations libvips can turn into sRGB for display.
CONVERTIBLE = {"cmyk", "lab", "labq", "labs", "lch", "xyz", "yxy", "hsv", "scrgb", "rgb16"}


class PreviewRefused(Exception):
    """The image cannot be previewed (too large, or not decodable); the reason, a
    :class:`~core.machine_text.Message`, is stored and read in the reader's language."""

    def __init__(self, reason: Message):
        super().__init__(reason)
        self.reason = reason


def too_many_pixels(width: int, height: int) -> Message:
    return Message("preview.too_many_pixels", {"width": width, "height": height})


@dataclass(frozen=True)
class PlaneRef:
    """One 2-D plane of an image: its page in the file, and its channel and z index."""

    page: int = 0
    channel: int | None = None
    z: int | None = None
    frame: int | None = None  # a DICOM frame


@dataclass
class DerivedPlane:
    """A plane's pyramid on the worker's disk: its size, the IIIF scale factors and the
    full-image sizes made, and every file to store, keyed below the plane's folder."""

    ref: PlaneRef
    width: int = 0
    height: int = 0
    scale_factors: list[int] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    thumbnail: bytes = b""

    def as_json(self) -> dict:
        described = {
            "page": self.ref.page,
            "width": self.width,
            "height": self.height,
            "tile_size": TILE_SIZE,
            "scale_factors": self.scale_factors,
            "sizes": [list(size) for size in self.sizes],
        }
        for name in ("channel", "z", "frame"):
            if getattr(self.ref, name) is not None:
                described[name] = getattr(self.ref, name)
        return described


def planes_of(technical_metadata: dict, *, max_planes: int) -> list[PlaneRef]:
    """The planes to preview, the default first: for an OME-TIFF with several channels or
    z planes, the first channel at the middle plane, then the other channels there, then
    the first channel's other planes (at most ``max_planes`` in all); for a DICOM file with
    several frames, the middle frame; else the first page."""
    fmt = technical_metadata.get("format")
    if fmt == "DICOM":
        frames = int(technical_metadata.get("frames") or 1)
        return [PlaneRef(frame=frames // 2)]
    if fmt != "OME-TIFF":
        return [PlaneRef()]
    sizes = {
        "C": int(technical_metadata.get("size_c") or 1),
        "Z": int(technical_metadata.get("size_z") or 1),
        "T": int(technical_metadata.get("size_t") or 1),
    }
    samples = int(technical_metadata.get("samples_per_pixel") or 1)
    if samples > 1 and sizes["C"] % samples == 0:
        sizes["C"] //= samples  # RGB samples are one page's bands, not pages
    order = str(technical_metadata.get("dimension_order") or "XYZCT")
    if sorted(order) != sorted("XYZCT"):
        order = "XYZCT"
    middle = sizes["Z"] // 2
    wanted = [(c, middle) for c in range(sizes["C"])]
    wanted += [(0, z) for z in range(sizes["Z"]) if z != middle]
    pages = technical_metadata.get("pages")
    planes = []
    for channel, z in wanted[: max(max_planes, 1)]:
        page = _page_of({"C": channel, "Z": z, "T": 0}, order, sizes)
        if isinstance(pages, int) and page >= pages:
            continue
        planes.append(PlaneRef(page=page, channel=channel, z=z))
    return planes or [PlaneRef()]


def _page_of(index: dict[str, int], order: str, sizes: dict[str, int]) -> int:
    """The IFD holding a plane: OME's DimensionOrder lists the axes fastest first."""
    page, stride = 0, 1
    for axis in order[2:]:
        page += index[axis] * stride
        stride *= sizes[axis]
    return page


def _vips():
    import pyvips

    pyvips.cache_set_max(0)  # keep no decoded pixels between images
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # libvips' progress notes
    return pyvips


def _open(path: Path, fmt: str, ref: PlaneRef):
    """The plane as a sequential libvips image, as stored (any band format)."""
    pyvips = _vips()
    if fmt == "DICOM":
        return _dicom_frame(path, ref.frame or 0)
    options = {"access": "sequential"}
    if fmt in ("TIFF", "OME-TIFF"):
        options["page"] = ref.page
    return pyvips.Image.new_from_file(str(path), **options)


def _dicom_frame(path: Path, frame: int):
    """One frame of a DICOM file as an 8-bit image: the file's VOI window (or its value
    range), MONOCHROME1 inverted so that it reads as on a viewing station."""
    import numpy as np
    import pydicom
    from pydicom.pixels import apply_voi_lut, pixel_array

    pyvips = _vips()
    dataset = pydicom.dcmread(str(path), stop_before_pixels=True)
    frames = int(dataset.get("NumberOfFrames") or 1)
    try:
        pixels = pixel_array(str(path), index=min(frame, frames - 1) if frames > 1 else None)
    except Exception as exc:  # an encoding without a decoder installed, a damaged file
        raise PreviewRefused(
            Message("preview.dicom_not_decodable", {"error": type(exc).__name__})
        ) from exc
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3
    if not colour and "WindowCenter" in dataset:
        pixels = apply_voi_lut(pixels, dataset)
    pixels = pixels.astype(np.float32)
    low, high = float(pixels.min()), float(pixels.max())
    scaled = (pixels - low) * (255.0 / (high - low if high > low else 1.0))
    scaled = np.clip(scaled, 0, 255).astype(np.uint8)
    if str(dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        scaled = 255 - scaled
    height, width = scaled.shape[:2]
    bands = 3 if colour else 1
    image = pyvips.Image.new_from_memory(
        np.ascontiguousarray(scaled).tobytes(), width, height, bands, "uchar"
    )
    return image.copy(interpretation="srgb" if colour else "b-w")


def _shape(image):
    """At most three bands, no alpha (flattened on white), in sRGB or grey."""
    if image.interpretation in CONVERTIBLE and image.interpretation != "rgb16":
        image = image.colourspace("srgb")
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.bands == 2:
        image = image.extract_band(0)
    elif image.bands > 3:
        image = image.extract_band(0, n=3)
    return image


def _display(path: Path, fmt: str, ref: PlaneRef):
    """The plane as an 8-bit image: 16-bit and float images are stretched linearly from
    their minimum to their 99.5th percentile (integers) or maximum (floats), measured in a
    first streamed pass, so a 12-bit microscope image is not shown nearly black."""
    image = _shape(_open(path, fmt, ref))
    if image.format == "uchar":
        return _interpreted(image)
    low = image.min()
    if image.format in ("ushort", "short"):
        high = _shape(_open(path, fmt, ref)).percent(99.5)
    else:
        high = _shape(_open(path, fmt, ref)).max()
    image = _shape(_open(path, fmt, ref))
    span = high - low if high > low else 1
    return _interpreted(((image - low) * (255.0 / span)).cast("uchar"))


def _interpreted(image):
    return image.copy(interpretation="b-w" if image.bands == 1 else "srgb")


def plane_derive(
    path: Path, fmt: str, ref: PlaneRef, work: Path, *, max_pixels: int
) -> DerivedPlane:
    """The plane's IIIF pyramid (level 0: the tiles ``dzsave`` lays out for IIIF 3) and
    its thumbnail, written under ``work``."""
    image = _display(path, fmt, ref)
    if image.width * image.height > max_pixels:
        raise PreviewRefused(too_many_pixels(image.width, image.height))
    work.mkdir(parents=True, exist_ok=True)
    out = work / "tiles"
    image.dzsave(
        str(out),
        layout="iiif3",
        tile_size=TILE_SIZE,
        overlap=0,
        suffix=".jpg" + JPEG_OPTIONS,
        id="kura",
    )
    info = json.loads((out / "info.json").read_text())
    plane = DerivedPlane(ref=ref, width=int(info["width"]), height=int(info["height"]))
    plane.scale_factors = sorted(int(f) for f in info["tiles"][0]["scaleFactors"])
    full_region = f"0,0,{plane.width},{plane.height}"
    for file in sorted(out.rglob("default.jpg")):
        relative = file.relative_to(out).as_posix()
        plane.files[relative] = file
        region, size = relative.split("/")[:2]
        if region == full_region:
            width, height = (int(n) for n in size.split(","))
            plane.sizes.append((width, height))
    if not plane.sizes:
        raise PreviewRefused(Message("preview.no_whole_image_level"))
    smallest = min(plane.sizes)
    source = out / full_region / f"{smallest[0]},{smallest[1]}" / "0" / "default.jpg"
    thumbnail = _vips().Image.thumbnail(str(source), THUMBNAIL_SIZE, size="down")
    plane.thumbnail = thumbnail.jpegsave_buffer(Q=85, strip=True)
    thumb_size = (thumbnail.width, thumbnail.height)
    if thumb_size not in plane.sizes:
        plane.sizes.append(thumb_size)
        thumb_file = work / "thumbnail.jpg"
        thumb_file.write_bytes(plane.thumbnail)
        plane.files[f"{full_region}/{thumb_size[0]},{thumb_size[1]}/0/default.jpg"] = thumb_file
    plane.sizes.sort()
    return plane
