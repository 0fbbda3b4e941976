"""Serving previews: the thumbnail, the IIIF image service and its images.

Every request goes through :func:`repository.access.access_data_object` with
``Action.PREVIEW`` (404 for anyone who may not, as for the object's own pages) and is
cached by the browser alone (``private``): a tile never reaches a shared cache.
"""

from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from repository.access import Action, access_data_object
from repository.models import DataObject
from repository.preservation.object_store import NoSuchObject, object_store
from repository.previews import iiif
from repository.previews.keys import thumbnail_key, tile_key

# A stored preview image is never larger than this (a 512-pixel JPEG tile is ~100 KB).
IMAGE_MAX_BYTES = 8 * 1024**2
# Seconds a browser may keep a preview image or info.json without asking again.
PRIVATE_MAX_AGE = 300


def _image_preview(request, object_id: int) -> DataObject:
    data_object = access_data_object(request.user, object_id, Action.PREVIEW)
    preview = data_object.preview
    if data_object.preview_state != DataObject.PreviewState.READY or preview.get("kind") != "image":
        raise Http404("No preview.")
    return data_object


def _plane(data_object: DataObject, plane: int) -> dict:
    planes = data_object.preview.get("planes", [])
    if not 0 <= plane < len(planes):
        raise Http404("No such plane.")
    return planes[plane]


def _private(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, max_age=PRIVATE_MAX_AGE)
    response["Vary"] = "Cookie, Authorization"
    return response


def _stored_jpeg(key: str) -> HttpResponse:
    try:
        data = object_store().read_head_fast(key, IMAGE_MAX_BYTES)
    except NoSuchObject as exc:
        raise Http404("No such image.") from exc
    return _private(HttpResponse(data, content_type="image/jpeg"))


@require_safe
def object_thumbnail(request, object_id: int):
    data_object = _image_preview(request, object_id)
    return _stored_jpeg(thumbnail_key(data_object.storage_key))


@require_safe
def iiif_base(request, object_id: int, plane: int):
    """The image service's URI: to its ``info.json`` (303, as the API asks)."""
    _plane(_image_preview(request, object_id), plane)
    url = reverse("object-iiif-info", args=[object_id, plane])
    return HttpResponseRedirect(url, status=303)


@require_safe
def iiif_info(request, object_id: int, plane: int):
    data_object = _image_preview(request, object_id)
    service_id = request.build_absolute_uri(reverse("object-iiif", args=[object_id, plane]))
    body = iiif.info(_plane(data_object, plane), service_id)
    wants_ld = "application/ld+json" in request.headers.get("Accept", "")
    response = JsonResponse(body, content_type=iiif.MEDIA_TYPE if wants_ld else "application/json")
    response["Link"] = f'<{iiif.CONTEXT}>; rel="http://www.w3.org/ns/json-ld#context"'
    return _private(response)


@require_safe
def iiif_image(
    request, object_id: int, plane: int, region: str, size: str, rotation: str, image: str
):
    data_object = _image_preview(request, object_id)
    try:
        region, size = iiif.canonical(_plane(data_object, plane), region, size, rotation, image)
    except iiif.BadRequest as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    except iiif.NotOffered as exc:
        return HttpResponse(str(exc), status=501, content_type="text/plain; charset=utf-8")
    return _stored_jpeg(tile_key(data_object.storage_key, plane, region, size))
