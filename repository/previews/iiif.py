"""The IIIF Image API 3.0, level 0: ``info.json`` and the pre-made tiles and sizes.

Kura serves the images libvips laid out for IIIF 3 when the preview was made
(``images.plane_derive``): the tiles of every scale factor and a few whole-image sizes.
A request is brought to its canonical form (``full`` is the whole region, ``max`` the
region's size within ``maxWidth`` x ``maxHeight``: for the whole image, the largest size
made) and answered from storage; a syntactically wrong one gets 400,
one for an image not made (another size, a rotation, a quality or format) 501 — level 0
offers only what ``info.json`` lists.
"""

import re

CONTEXT = "http://iiif.io/api/image/3/context.json"
PROTOCOL = "http://iiif.io/api/image"
MEDIA_TYPE = f'application/ld+json;profile="{CONTEXT}"'

# Numbers of more than nine digits are no pixel counts of any image (and a number of
# thousands of digits is more than int() converts): the request is malformed (400).
N = r"[0-9]{1,9}"
D = r"[0-9.]{1,12}"
REGION = re.compile(rf"full|square|(?:pct:)?{D},{D},{D},{D}")
SIZE = re.compile(rf"\^?(?:max|pct:{D}|{N},|,{N}|!?{N},{N})")
ROTATION = re.compile(rf"!?{D}")
QUALITIES = {"default", "color", "gray", "bitonal"}
FORMATS = {"jpg", "tif", "png", "gif", "jp2", "pdf", "webp"}
BOX = re.compile(rf"({N}),({N}),({N}),({N})")
WH = re.compile(rf"({N}),({N})")


class BadRequest(ValueError):
    """Not an IIIF image request (400)."""


class NotOffered(ValueError):
    """A well-formed request for an image this level-0 service does not make (501)."""


def info(plane: dict, service_id: str) -> dict:
    """The ``info.json`` of one plane's image service, whose URI is ``service_id``: with
    ``maxWidth`` and ``maxHeight``, the square every pre-made image fits in, so that
    ``max`` (which level 0 requires) names an image that is made."""
    described = {
        "@context": CONTEXT,
        "id": service_id,
        "type": "ImageService3",
        "protocol": PROTOCOL,
        "profile": "level0",
        "width": plane["width"],
        "height": plane["height"],
        "sizes": [{"width": w, "height": h} for w, h in plane["sizes"]],
        "tiles": [
            {
                "width": plane["tile_size"],
                "height": plane["tile_size"],
                "scaleFactors": plane["scale_factors"],
            }
        ],
    }
    if "max_size" in plane:  # previews made before max sizes were offered have none
        described["maxWidth"] = described["maxHeight"] = plane["tile_size"]
    return described


def canonical(plane: dict, region: str, size: str, rotation: str, image: str) -> tuple[str, str]:
    """The canonical region and size (``x,y,w,h`` and ``w,h``) of an image request for
    ``plane``, or :class:`BadRequest` / :class:`NotOffered`."""
    quality, _, fmt = image.partition(".")
    if not (
        REGION.fullmatch(region)
        and SIZE.fullmatch(size)
        and ROTATION.fullmatch(rotation)
        and quality in QUALITIES
        and fmt in FORMATS
    ):
        raise BadRequest("Not an IIIF Image API 3.0 request.")
    if rotation not in ("0", "0.0") or quality not in ("default", "color") or fmt != "jpg":
        raise NotOffered("Only JPEG images in their default quality, unrotated, are made.")
    width, height = plane["width"], plane["height"]
    if region == "full":
        x, y, w, h = 0, 0, width, height
    elif match := BOX.fullmatch(region):
        x, y, w, h = (int(n) for n in match.groups())
        if w == 0 or h == 0 or x >= width or y >= height:
            raise BadRequest("The region is empty or outside the image.")
        w, h = min(w, width - x), min(h, height - y)
    else:
        raise NotOffered("Only whole-pixel regions are made.")
    if size == "max":
        sw, sh = _max(plane, x, y, w, h)
    elif match := WH.fullmatch(size):
        sw, sh = (int(n) for n in match.groups())
    elif size.endswith(",") and size[:-1].isdigit():
        sw = int(size[:-1])
        sh = max((h * sw + w // 2) // w, 1)  # integers: no float overflow
    else:
        raise NotOffered("Only the sizes listed in info.json are made.")
    if sw == 0 or sh == 0 or sw > w or sh > h:
        raise NotOffered("Only the sizes listed in info.json are made.")
    return f"{x},{y},{w},{h}", f"{sw},{sh}"


def _max(plane: dict, x: int, y: int, w: int, h: int) -> tuple[int, int]:
    """The ``max`` size of a region: itself within the square of ``maxWidth`` and
    ``maxHeight`` (the whole image's is the one made; a tile's region, the tile)."""
    if "max_size" not in plane:
        return w, h
    if (x, y, w, h) == (0, 0, plane["width"], plane["height"]):
        return tuple(plane["max_size"])
    limit = plane["tile_size"]
    if w <= limit and h <= limit:
        return w, h
    if w >= h:
        return limit, max(-(-h * limit // w), 1)
    return max(-(-w * limit // h), 1), limit
