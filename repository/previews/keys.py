"""Where an object's derived files live in storage, and which objects have any.

Derived files sit beside the object, under its key plus :data:`DERIVED_SUFFIX`, so that
deleting the object deletes them (``governance/deletion.py``), the storage reconciler knows
their owner (``preservation/reconcile.py``), and nothing counts them as the object's bytes
(``DataObject.size`` is the uploaded file's).
"""

DERIVED_SUFFIX = ".derived/"

# The technical-metadata formats (preservation/techmeta) a preview is made for.
IMAGE_FORMATS = frozenset({"TIFF", "OME-TIFF", "PNG", "JPEG", "DICOM"})
SEQUENCING_FORMATS = frozenset({"FASTQ", "BAM", "CRAM"})


def preview_kind(technical_metadata: dict) -> str:
    """``"image"``, ``"sequencing"`` or ``""`` (nothing to preview) for an object whose
    technical metadata is ``technical_metadata``; an unreadable file has none."""
    if technical_metadata.get("error"):
        return ""
    fmt = technical_metadata.get("format")
    if fmt in IMAGE_FORMATS:
        return "image"
    if fmt in SEQUENCING_FORMATS:
        return "sequencing"
    return ""


def derived_prefix(storage_key: str) -> str:
    """The prefix of every derived file of the object stored under ``storage_key``."""
    return storage_key + DERIVED_SUFFIX


def owner_key(key: str) -> str:
    """The object key a stored key belongs to: itself, or a derived file's object."""
    return key.split(DERIVED_SUFFIX, 1)[0]


def thumbnail_key(storage_key: str) -> str:
    return derived_prefix(storage_key) + "thumbnail.jpg"


def tile_key(storage_key: str, plane: int, region: str, size: str) -> str:
    """A pre-made IIIF image (``region``/``size`` in canonical form) of one plane."""
    return derived_prefix(storage_key) + f"iiif/{plane}/{region}/{size}/0/default.jpg"
