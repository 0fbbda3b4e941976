"""How stored bytes reach a browser: a presigned S3 URL, or a streamed file."""

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

from core.tiers import open_to_everyone
from repository.models import DataObject


def download_url_expiry(data_object: DataObject) -> int:
    """Seconds a presigned download link for ``data_object`` works.

    A link already handed out cannot be called back: it keeps working after a grant is
    revoked, a member leaves or the tier is closed, until it expires. So only public
    objects get the longer ``KURA_DOWNLOAD_URL_EXPIRY``; everything else (shared,
    non_shared, embargoed) the shorter ``KURA_RESTRICTED_DOWNLOAD_URL_EXPIRY``."""
    if open_to_everyone(data_object.tier):
        return settings.KURA_DOWNLOAD_URL_EXPIRY
    return settings.KURA_RESTRICTED_DOWNLOAD_URL_EXPIRY


def download_response(data_object: DataObject):
    """302 to a short-lived presigned GET on S3; the file itself, streamed, elsewhere.

    Either way the browser saves it under the original file name (RFC 5987 encoded).
    """
    disposition = content_disposition_header(True, data_object.original_filename)
    if settings.KURA_STORAGE == "s3":
        url = default_storage.url(
            data_object.storage_key,
            parameters={
                "ResponseContentDisposition": disposition,
                "ResponseContentType": data_object.content_type or "application/octet-stream",
            },
            expire=download_url_expiry(data_object),
        )
        return HttpResponseRedirect(url)
    response = FileResponse(
        default_storage.open(data_object.storage_key, "rb"),
        content_type=data_object.content_type or "application/octet-stream",
    )
    response["Content-Disposition"] = disposition
    response["Content-Length"] = str(data_object.size)
    return response
