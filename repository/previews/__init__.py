"""Previews: look before you download.

After an object's checksum has succeeded (``preservation/checksums.py`` queues it), a worker
on the preview queue (``kura.preview``) derives what viewers need and stores it beside the
object (:mod:`.keys`): for images (TIFF/OME-TIFF, PNG, JPEG, DICOM) a thumbnail and a tiled
pyramid served through the IIIF Image API 3.0 (:mod:`.images`, :mod:`.iiif`); for
sequencing files a summary (:mod:`.sequencing`). :mod:`.services` runs it once per object,
:mod:`.views` serves it, every request through ``repository/access.py``'s preview rule.
"""
