"""Previews: made after the checksum, stored beside the object, served through the access
rules; the IIIF info.json checked field by field against the Image API 3.0."""

import gzip
import html
import io
import random
import re
from datetime import timedelta

import pytest
import pyvips
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation

from accounts.models import Role
from config.celery import app
from core import machine_text
from core.machine_text import Message
from core.vocabularies import Tier
from repository.governance.deletion import data_object_delete
from repository.models import DataObject
from repository.preservation import checksums
from repository.preservation.checksums import data_object_checksum_verify
from repository.preservation.object_store import NoSuchObject, StoreError, object_store
from repository.preservation.reconcile import storage_reconcile
from repository.previews import sequencing, services
from repository.previews.keys import derived_prefix, thumbnail_key
from repository.previews.services import data_object_preview_make, previews_stalled
from repository.tasks import preview_task
from tests.factories import MembershipFactory, UserFactory

from .stored_objects import store_object

pytestmark = pytest.mark.django_db

IIIF_CONTEXT = "http://iiif.io/api/image/3/context.json"


def tiff_bytes(width: int, height: int, **options) -> bytes:
    """An RGB TIFF with a colour gradient (every tile different), made with libvips."""
    x = pyvips.Image.xyz(width, height)
    red = (x[0] * 255 / width).cast("uchar")
    green = (x[1] * 255 / height).cast("uchar")
    blue = ((x[0] + x[1]) % 256).cast("uchar")
    image = red.bandjoin([green, blue]).copy(interpretation="srgb")
    return image.write_to_buffer(".tif", **options)


@pytest.fixture
def image_object(monkeypatch, django_capture_on_commit_callbacks):
    sent: list[int] = []
    monkeypatch.setattr(checksums, "preview_send", sent.append)
    data_object = store_object(
        tiff_bytes(1300, 900, tile=True), filename="scan.tiff", tier=Tier.SHARED
    )
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    data_object.refresh_from_db()
    assert data_object.preview_state == DataObject.PreviewState.PENDING
    assert sent == [data_object.pk]  # queued once the verification committed
    return data_object


def make(data_object: DataObject) -> DataObject:
    made = data_object_preview_make(data_object_id=data_object.pk)
    assert made is not None
    return made


def member_of(data_object: DataObject, role=Role.COLLABORATOR):
    return MembershipFactory(project=data_object.project, role=role).user


# --- Queueing --------------------------------------------------------------------------


def test_the_preview_task_has_its_own_queue_apart_from_checksums():
    route = app.amqp.router.route({}, "kura.preview")
    checksum = app.amqp.router.route({}, "kura.checksum")

    assert route["queue"].name == settings.KURA_PREVIEW_QUEUE
    assert checksum["queue"].name == settings.CELERY_TASK_DEFAULT_QUEUE
    assert settings.KURA_PREVIEW_QUEUE != settings.CELERY_TASK_DEFAULT_QUEUE


def test_a_file_kura_does_not_preview_queues_nothing(
    monkeypatch, django_capture_on_commit_callbacks
):
    sent: list[int] = []
    monkeypatch.setattr(checksums, "preview_send", sent.append)
    data_object = store_object(b"plain text\n" * 100, filename="notes.txt")
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    data_object.refresh_from_db()

    assert data_object.checksum_state == DataObject.ChecksumState.VERIFIED
    assert data_object.preview_state == DataObject.PreviewState.NONE
    assert sent == []


def test_a_preview_left_pending_is_found_for_the_requeue(image_object):
    later = timezone.now() + timedelta(minutes=settings.KURA_PREVIEW_REQUEUE_AFTER_MINUTES + 1)
    assert previews_stalled(now=later) == [image_object.pk]
    assert previews_stalled(now=timezone.now()) == []
    make(image_object)
    assert previews_stalled(now=later) == []


# --- Images ----------------------------------------------------------------------------


def test_an_image_gets_a_thumbnail_and_tiles_beside_it_once(image_object):
    made = make(image_object)

    assert made.preview_state == DataObject.PreviewState.READY
    (plane,) = made.preview["planes"]
    assert (plane["width"], plane["height"]) == (1300, 900)
    assert plane["scale_factors"] == [1, 2]  # at 2, 650 x 450 pixels: two tiles
    store = object_store()
    thumbnail = pyvips.Image.new_from_buffer(
        store.read_range(thumbnail_key(made.storage_key), 0, 1 << 20), ""
    )
    assert max(thumbnail.width, thumbnail.height) == 256
    keys = [item.key for item in store.list_objects(derived_prefix(made.storage_key))]
    # 3 x 2 tiles at scale 1, 2 x 1 at 2, the whole image at 4 (a IIIF size), the
    # thumbnail twice (as a IIIF size and as the thumbnail), and the whole image within
    # 512 pixels (IIIF's "max").
    assert len(keys) == 6 + 2 + 1 + 2 + 1
    assert plane["sizes"] == [[256, 177], [325, 225], [512, 354]]
    assert plane["max_size"] == [512, 354]
    assert made.size == len(store.read_range(made.storage_key, 0, made.size + 1))

    before = (made.preview_state, made.preview, len(keys))
    assert data_object_preview_make(data_object_id=made.pk) is None  # a second run
    made.refresh_from_db()
    after = (
        made.preview_state,
        made.preview,
        len(list(store.list_objects(derived_prefix(made.storage_key)))),
    )
    assert after == before


def test_the_task_makes_the_preview_once(image_object):
    first = preview_task.apply(args=[image_object.pk]).get()
    second = preview_task.apply(args=[image_object.pk]).get()

    assert first == {"object_id": image_object.pk, "preview_state": "ready"}
    assert second == {"object_id": image_object.pk, "preview_state": None}  # nothing to do


def test_derived_files_go_with_the_object_and_the_reconciler_keeps_them(image_object):
    made = make(image_object)
    store = object_store()
    prefix = derived_prefix(made.storage_key)

    report = storage_reconcile(now=timezone.now() + timedelta(days=1), dry_run=True)
    assert not [key for key in report.orphan_objects if key.startswith(prefix)]

    steward = member_of(made, Role.PM)
    data_object_delete(actor=steward, data_object_id=made.pk)

    assert list(store.list_objects(prefix)) == []
    with pytest.raises(NoSuchObject):
        store.size(made.storage_key)

    # A derived file written after the deletion (a preview finishing late) is an orphan the
    # reconciler removes once past its grace period.
    store.write(thumbnail_key(made.storage_key), b"late", "image/jpeg")
    report = storage_reconcile(now=timezone.now() + timedelta(days=1), dry_run=False)
    assert thumbnail_key(made.storage_key) in report.orphan_objects
    assert list(store.list_objects(prefix)) == []


def test_an_image_past_the_pixel_limit_is_skipped_with_its_reason(client, image_object, settings):
    settings.KURA_PREVIEW_MAX_PIXELS = 1000 * 1000
    made = make(image_object)

    assert made.preview_state == DataObject.PreviewState.SKIPPED
    assert machine_text.parse(made.preview["reason"]).parts == (
        Message("preview.too_large", {"width": 1300, "height": 900}),
    )
    assert list(object_store().list_objects(derived_prefix(made.storage_key))) == []
    client.force_login(member_of(made))
    assert preview_notice(client, made) == (
        "Not previewed — The image is 1300 × 900 pixels, more than Kura previews."
    )


def preview_notice(client, data_object: DataObject, language: str = "en") -> str:
    """The object page's line saying why there is no preview, as a reader of ``language``
    sees it."""
    page = client.get(f"/objects/{data_object.pk}/", HTTP_ACCEPT_LANGUAGE=language)
    page = page.content.decode()
    notice = re.search(r'<p class="notice" id="preview-state">(.*?)</p>', page, re.S)
    assert notice, "no preview notice on the object page"
    return html.unescape(re.sub(r"<[^>]+>", "", notice.group(1))).strip()


def test_a_reason_reads_in_the_readers_language(client, image_object, settings):
    settings.KURA_PREVIEW_MAX_PIXELS = 1000 * 1000
    made = make(image_object)
    client.force_login(member_of(made))

    with translation.override("ja"):
        japanese = str(Message("preview.too_large", {"width": 1300, "height": 900}))
    assert japanese != "The image is 1300 × 900 pixels, more than Kura previews."
    assert japanese in preview_notice(client, made, "ja")


def test_a_file_that_does_not_parse_fails_with_a_reason_that_never_quotes_it(
    client, image_object, monkeypatch
):
    def damaged(data_object):
        raise ValueError("bytes the file itself holds")  # never shown: it may quote the file

    monkeypatch.setattr(services, "_image_preview", damaged)
    made = make(image_object)

    assert made.preview_state == DataObject.PreviewState.FAILED
    client.force_login(member_of(made))
    notice = preview_notice(client, made)
    assert "The file could not be read (ValueError)." in notice
    assert "bytes the file itself holds" not in notice


def test_a_reason_stored_as_words_before_codes_still_shows(client, image_object):
    DataObject.objects.filter(pk=image_object.pk).update(
        preview_state=DataObject.PreviewState.SKIPPED,
        preview={"kind": "image", "reason": "1300 x 900 pixels is more than the limit"},
    )
    client.force_login(member_of(image_object))

    assert "1300 x 900 pixels is more than the limit" in preview_notice(client, image_object)


@pytest.mark.parametrize(
    ("filename", "suffix", "fmt"),
    [
        ("section.png", ".png", "PNG"),
        ("section.jpg", ".jpg", "JPEG"),
        ("grey16.png", ".png", "PNG"),
    ],
)
def test_png_and_jpeg_images_get_a_preview(
    client, monkeypatch, django_capture_on_commit_callbacks, filename, suffix, fmt
):
    x = pyvips.Image.xyz(900, 700)
    if filename.startswith("grey16"):  # 16-bit grey, values 0..3,583: stretched to 8 bits
        image = (x[0] * 4).cast("ushort").copy(interpretation="grey16")
    else:
        image = pyvips.Image.new_from_buffer(tiff_bytes(900, 700), "")
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(image.write_to_buffer(suffix), filename=filename, tier=Tier.SHARED)
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    made = make(DataObject.objects.get(pk=data_object.pk))

    assert made.technical_metadata["format"] == fmt
    assert made.preview_state == DataObject.PreviewState.READY, made.preview
    (plane,) = made.preview["planes"]
    assert (plane["width"], plane["height"]) == (900, 700)
    client.force_login(member_of(made))
    thumbnail = pyvips.Image.new_from_buffer(
        client.get(f"/objects/{made.pk}/preview/thumbnail.jpg").content, ""
    )
    assert (thumbnail.width, thumbnail.height) == (256, 199)
    # Dark on the left, bright on the right, as the image runs.
    assert thumbnail.crop(0, 0, 20, 199).avg() + 60 < thumbnail.crop(236, 0, 20, 199).avg()


def test_a_16_bit_ome_tiff_offers_each_channel_and_plane(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    import numpy as np
    import tifffile

    channels, planes = 2, 3
    pixels = np.zeros((planes, channels, 64, 80), dtype=np.uint16)
    for z in range(planes):
        for c in range(channels):
            pixels[z, c] = (z + 1) * 1000 + c * 200 + np.arange(80, dtype=np.uint16)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, ome=True, metadata={"axes": "ZCYX"})
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(buffer.getvalue(), filename="stack.ome.tif")
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    made = make(DataObject.objects.get(pk=data_object.pk))

    assert made.preview_state == DataObject.PreviewState.READY
    described = [(p["channel"], p["z"]) for p in made.preview["planes"]]
    # The first channel at the middle plane first, then the other channel, then the planes.
    assert described == [(0, 1), (1, 1), (0, 0), (0, 2)]
    assert [p["page"] for p in made.preview["planes"]] == [2, 3, 0, 4]  # XYCZT pages

    steward = member_of(made, Role.PM)
    client.force_login(steward)
    page = client.get(f"/objects/{made.pk}/").content.decode()
    options = re.findall(r'<option value="(/objects/\d+/iiif/(\d)/info.json)"[^>]*>([^<]+)<', page)
    assert [(plane, label) for _, plane, label in options] == [
        ("0", "Channel 1, plane 2"),
        ("1", "Channel 2, plane 2"),
        ("2", "Channel 1, plane 1"),
        ("3", "Channel 1, plane 3"),
    ]
    assert client.get(options[1][0]).json()["width"] == 80


# --- IIIF ------------------------------------------------------------------------------


INFO_KEYS = {
    "@context", "id", "type", "protocol", "profile", "width", "height", "sizes", "tiles",
    "maxWidth", "maxHeight", "maxArea", "rights", "preferredFormats", "extraQualities",
    "extraFormats", "extraFeatures", "partOf", "seeAlso", "service",
}  # fmt: skip


def test_info_json_follows_the_image_api_3(client, image_object):
    made = make(image_object)
    client.force_login(member_of(made))
    url = f"/objects/{made.pk}/iiif/0/info.json"

    response = client.get(url, HTTP_ACCEPT="application/ld+json")
    assert response.status_code == 200
    assert response["Content-Type"] == f'application/ld+json;profile="{IIIF_CONTEXT}"'
    assert "private" in response["Cache-Control"]
    info = response.json()
    assert set(info) <= INFO_KEYS
    assert info["@context"] == IIIF_CONTEXT
    assert info["type"] == "ImageService3"
    assert info["protocol"] == "http://iiif.io/api/image"
    assert info["profile"] == "level0"
    assert info["id"] == f"http://testserver/objects/{made.pk}/iiif/0"
    base = client.get(info["id"])
    assert base.status_code == 303 and base["Location"].endswith(url)
    assert (info["width"], info["height"]) == (1300, 900)
    assert all(isinstance(info[k], int) and info[k] > 0 for k in ("width", "height"))
    assert client.get(url)["Content-Type"] == "application/json"

    # Every image made fits within maxWidth x maxHeight; "max" (level 0) is served.
    assert info["maxWidth"] == info["maxHeight"] == 512
    assert info["tiles"][0]["width"] <= info["maxWidth"]
    assert info["sizes"]
    for size in info["sizes"]:
        assert size["width"] <= info["maxWidth"] and size["height"] <= info["maxHeight"]
    for size in info["sizes"]:
        assert set(size) <= {"type", "width", "height"}
        assert 0 < size["width"] <= info["width"] and 0 < size["height"] <= info["height"]
        image = client.get(f"{info['id']}/full/{size['width']},{size['height']}/0/default.jpg")
        assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
        decoded = pyvips.Image.new_from_buffer(image.content, "")
        assert (decoded.width, decoded.height) == (size["width"], size["height"])

    (tiles,) = info["tiles"]
    assert set(tiles) <= {"type", "width", "height", "scaleFactors"}
    assert tiles["width"] == tiles["height"] == 512
    assert tiles["scaleFactors"] == sorted(set(tiles["scaleFactors"]))
    assert all(isinstance(f, int) and f >= 1 for f in tiles["scaleFactors"])
    for factor in tiles["scaleFactors"]:  # the last tile of each level, at its edge
        region = tiles["width"] * factor
        columns = -(-info["width"] // region)
        x = (columns - 1) * region
        w = info["width"] - x
        h = min(region, info["height"])
        expected = (-(-w // factor), -(-h // factor))
        tile = client.get(f"{info['id']}/{x},0,{w},{h}/{expected[0]},{expected[1]}/0/default.jpg")
        assert tile.status_code == 200, (factor, x, w, h)
        decoded = pyvips.Image.new_from_buffer(tile.content, "")
        assert (decoded.width, decoded.height) == expected


@pytest.mark.parametrize(("width", "height"), [(1300, 900), (700, 2100), (5000, 20), (300, 200)])
def test_full_max_is_the_whole_image_within_the_max_width(
    client, monkeypatch, django_capture_on_commit_callbacks, width, height
):
    """``full/max/0/default.jpg`` is the one request every level-0 service must answer:
    the whole image, at most maxWidth x maxHeight, its aspect kept, and listed in sizes."""
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(tiff_bytes(width, height), filename="wide.tif", tier=Tier.SHARED)
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    made = make(DataObject.objects.get(pk=data_object.pk))
    client.force_login(member_of(made))
    info = client.get(f"/objects/{made.pk}/iiif/0/info.json").json()

    response = client.get(f"{info['id']}/full/max/0/default.jpg")

    assert response.status_code == 200
    image = pyvips.Image.new_from_buffer(response.content, "")
    scale = min(1, info["maxWidth"] / width, info["maxHeight"] / height)
    assert abs(image.width - width * scale) <= 1 and abs(image.height - height * scale) <= 1
    assert max(image.width, image.height) == min(max(width, height), 512)
    assert {"width": image.width, "height": image.height} in info["sizes"]
    # The pixels are the image's: its colours run from red on the left to green at the bottom.
    red_left, red_right = image.crop(0, 0, 1, image.height)[0].avg(), image[0].avg()
    assert red_left < red_right


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("full/max/0/default.png", 501),
        ("full/max/90/default.jpg", 501),
        ("full/max/0/gray.jpg", 501),
        ("0,0,512,512/100,100/0/default.jpg", 404),  # a size not made
        ("nonsense/max/0/default.jpg", 400),
        ("full/max/0/default.exe", 400),
        ("9999,0,10,10/10,10/0/default.jpg", 400),
    ],
)
def test_image_requests_not_offered_are_refused_clearly(client, image_object, path, status):
    made = make(image_object)
    client.force_login(member_of(made))

    assert client.get(f"/objects/{made.pk}/iiif/0/{path}").status_code == status


# --- Access ----------------------------------------------------------------------------


def preview_urls(data_object: DataObject) -> list[str]:
    base = f"/objects/{data_object.pk}"
    return [
        f"{base}/preview/thumbnail.jpg",
        f"{base}/iiif/0/info.json",
        f"{base}/iiif/0/0,0,512,512/512,512/0/default.jpg",
    ]


def test_the_object_api_says_where_the_preview_stands(client, image_object, settings):
    client.force_login(member_of(image_object))
    url = f"/api/v1/objects/{image_object.pk}/"
    assert client.get(url).json()["preview_state"] == "pending"
    make(image_object)
    assert client.get(url).json()["preview_state"] == "ready"

    settings.KURA_PREVIEW_MAX_PIXELS = 1000 * 1000
    DataObject.objects.filter(pk=image_object.pk).update(preview_state="pending", preview={})
    make(image_object)
    assert client.get(url).json()["preview_state"] == "skipped"


def test_outsiders_get_404_and_members_the_preview(client, image_object):
    made = make(image_object)
    DataObject.objects.filter(pk=made.pk).update(tier=Tier.SHARED)

    client.force_login(UserFactory())
    assert [client.get(url).status_code for url in preview_urls(made)] == [404, 404, 404]
    client.logout()
    assert [client.get(url).status_code for url in preview_urls(made)] == [404, 404, 404]
    client.force_login(member_of(made))
    assert [client.get(url).status_code for url in preview_urls(made)] == [200, 200, 200]


def test_a_public_image_is_previewed_to_anyone_unless_personal_or_quarantined(client, image_object):
    made = make(image_object)
    DataObject.objects.filter(pk=made.pk).update(tier=Tier.PUBLIC)
    assert [client.get(url).status_code for url in preview_urls(made)] == [200, 200, 200]

    DataObject.objects.filter(pk=made.pk).update(contains_personal_data=True)
    assert [client.get(url).status_code for url in preview_urls(made)] == [404, 404, 404]

    DataObject.objects.filter(pk=made.pk).update(
        contains_personal_data=False, quarantined_at=timezone.now()
    )
    client.force_login(member_of(made, Role.PM))
    assert [client.get(url).status_code for url in preview_urls(made)] == [404, 404, 404]


def test_a_personal_dicom_image_is_previewed_to_stewards_only(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    data = dicom_bytes(patient_name="Yamada^Taro")
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(data, filename="slice.dcm", tier=Tier.SHARED)
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    made = make(DataObject.objects.get(pk=data_object.pk))
    assert made.contains_personal_data
    assert made.preview_state == DataObject.PreviewState.READY
    assert (made.preview["planes"][0]["width"], made.preview["planes"][0]["height"]) == (96, 64)

    client.force_login(member_of(made, Role.RESEARCHER))
    assert [client.get(url).status_code for url in preview_urls(made)[:2]] == [404, 404]
    page = client.get(f"/objects/{made.pk}/")
    assert page.status_code == 200 and b"preview-viewer" not in page.content
    client.force_login(member_of(made, Role.DATA_MANAGER))
    assert [client.get(url).status_code for url in preview_urls(made)[:2]] == [200, 200]
    assert b"preview-viewer" in client.get(f"/objects/{made.pk}/").content


def dicom_dataset(*, patient_name: str = "", rows: int = 64, columns: int = 96):
    """A secondary-capture DICOM dataset without pixels (the caller adds them)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = FileDataset("slice.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    if patient_name:
        dataset.PatientName = patient_name
    dataset.Modality = "MR"
    dataset.Rows, dataset.Columns = rows, columns
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    return dataset


def dicom_saved(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_bytes(*, patient_name: str) -> bytes:
    import numpy as np

    dataset = dicom_dataset(patient_name=patient_name)
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    pixels = (np.arange(64 * 96, dtype=np.uint16).reshape(64, 96) % 4096).astype(np.uint16)
    dataset.PixelData = pixels.tobytes()
    return dicom_saved(dataset)


def dicom_made(data: bytes, monkeypatch, capture) -> DataObject:
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(data, filename="slice.dcm", tier=Tier.SHARED)
    with capture(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    return make(DataObject.objects.get(pk=data_object.pk))


def whole_image(client, data_object: DataObject) -> "pyvips.Image":
    """The plane's largest whole-image size, as the IIIF service serves it."""
    info = client.get(f"/objects/{data_object.pk}/iiif/0/info.json").json()
    width, height = info["sizes"][-1]["width"], info["sizes"][-1]["height"]
    response = client.get(f"{info['id']}/full/{width},{height}/0/default.jpg")
    assert response.status_code == 200
    return pyvips.Image.new_from_buffer(response.content, "")


def test_a_jpeg_compressed_dicom_image_is_previewed(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    """JPEG baseline, the commonest compressed DICOM encoding, decoded through Pillow."""
    import numpy as np
    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    pixels = np.zeros((64, 96), dtype=np.uint8)
    pixels[:, 48:] = 220  # dark left half, bright right half
    jpeg = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(jpeg, format="JPEG", quality=95)
    dataset = dicom_dataset()
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 8, 8, 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = encapsulate([jpeg.getvalue()])
    dataset["PixelData"].VR = "OB"
    made = dicom_made(dicom_saved(dataset), monkeypatch, django_capture_on_commit_callbacks)

    assert made.technical_metadata["transfer_syntax"] == "JPEG Baseline (Process 1)"
    assert made.preview_state == DataObject.PreviewState.READY, made.preview
    client.force_login(member_of(made))
    image = whole_image(client, made)
    assert (image.width, image.height) == (96, 64)
    left, right = image.crop(0, 0, 40, 64).avg(), image.crop(56, 0, 40, 64).avg()
    assert left < 20 and right > 200, (left, right)


def test_a_ct_slice_is_windowed_in_hounsfield_units(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    """Air at -1000 HU is black and soft tissue at 40 HU mid-grey in a 40/400 window: the
    window applies to rescaled values, not to the stored ones."""
    import numpy as np

    dataset = dicom_dataset()
    dataset.Modality = "CT"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelRepresentation = 1
    dataset.RescaleIntercept, dataset.RescaleSlope = -1024, 1
    dataset.WindowCenter, dataset.WindowWidth = 40, 400
    pixels = np.full((64, 96), -1000 + 1024, dtype=np.int16)
    pixels[:, 48:] = 40 + 1024
    dataset.PixelData = pixels.tobytes()
    made = dicom_made(dicom_saved(dataset), monkeypatch, django_capture_on_commit_callbacks)

    assert made.preview_state == DataObject.PreviewState.READY, made.preview
    client.force_login(member_of(made))
    image = whole_image(client, made)
    air, tissue = image.crop(0, 0, 40, 64).avg(), image.crop(56, 0, 40, 64).avg()
    # 40 HU in a window from -160 to 239: (40 + 160) / 399 of the way up, about 128.
    assert air < 5 and 120 < tissue < 136, (air, tissue)


def test_a_dicom_encoding_without_a_decoder_says_so_on_the_object_page(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGLSLossless

    dataset = dicom_dataset()
    dataset.file_meta.TransferSyntaxUID = JPEGLSLossless
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 12, 11
    dataset.PixelRepresentation = 0
    dataset.PixelData = encapsulate([b"\xff\xd8\xff\xf7" + b"\0" * 64])
    dataset["PixelData"].VR = "OB"
    made = dicom_made(dicom_saved(dataset), monkeypatch, django_capture_on_commit_callbacks)

    assert made.preview_state == DataObject.PreviewState.SKIPPED
    client.force_login(member_of(made))
    assert preview_notice(client, made) == (
        "Not previewed — Kura has no decoder for this DICOM file's pixel encoding"
        " (JPEG-LS Lossless Image Compression); download the file to view it."
    )
    assert client.get(f"/objects/{made.pk}/preview/thumbnail.jpg").status_code == 404


def test_a_dicom_frame_past_the_decoding_limit_is_not_decoded(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    from pydicom import pixels as dicom_pixels

    from repository.previews import images

    monkeypatch.setattr(images, "DICOM_MAX_FRAME_PIXELS", 96 * 64 - 1)
    decoded: list = []
    real = dicom_pixels.pixel_array
    monkeypatch.setattr(
        dicom_pixels, "pixel_array", lambda *a, **k: decoded.append(a) or real(*a, **k)
    )
    made = dicom_made(dicom_bytes(patient_name=""), monkeypatch, django_capture_on_commit_callbacks)

    assert made.preview_state == DataObject.PreviewState.SKIPPED
    assert decoded == []
    client.force_login(member_of(made))
    assert preview_notice(client, made) == (
        "Not previewed — The DICOM frame is 96 × 64 pixels, more than Kura decodes for a preview."
    )


# --- Sequencing ------------------------------------------------------------------------


def fastq_records(count: int, seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    records = []
    for n in range(count):
        length = rng.choice([35, 75, 76, 100, 150, rng.randint(1, 160)])
        sequence = "".join(rng.choice("ACGTNacgt") for _ in range(length))
        quality = "".join(chr(33 + rng.randint(2, 41)) for _ in range(length))
        records.append((f"read{n} lane:1", sequence, quality))
    return records


def fastq_text(records) -> bytes:
    return "".join(f"@{name}\n{seq}\n+\n{qual}\n" for name, seq, qual in records).encode()


def independent_counts(records) -> dict:
    """The expected figures, counted record by record in plain Python."""
    reads = len(records)
    bases = sum(len(seq) for _, seq, _ in records)
    gc = sum(seq.upper().count("G") + seq.upper().count("C") for _, seq, _ in records)
    longest = max(len(q) for _, _, q in records)
    sums, counts = [0] * longest, [0] * longest
    for _, _, quality in records:
        for position, char in enumerate(quality):
            sums[position] += ord(char) - 33
            counts[position] += 1
    lengths: dict[int, int] = {}
    for _, seq, _ in records:
        lengths[len(seq)] = lengths.get(len(seq), 0) + 1
    return {
        "reads": reads,
        "bases": bases,
        "gc_percent": round(100 * gc / bases, 2),
        "length_min": min(lengths),
        "length_max": max(lengths),
        "length_mean": round(bases / reads, 1),
        "per_position": [s / c for s, c in zip(sums, counts, strict=True)],
        "lengths": lengths,
    }


@pytest.mark.parametrize("block", [997, 64 * 1024, sequencing.BLOCK])
def test_fastq_summary_matches_counts_made_independently(monkeypatch, block):
    monkeypatch.setattr(sequencing, "BLOCK", block)
    records = fastq_records(3000, seed=block)
    text = fastq_text(records)
    # Two gzip members, as bgzip and concatenated lanes give; split into uneven chunks.
    compressed = gzip.compress(text[: len(text) // 3]) + gzip.compress(text[len(text) // 3 :])
    chunks = [compressed[i : i + 4099] for i in range(0, len(compressed), 4099)]

    summary = sequencing.FastqSummary()
    stream = gzip.GzipFile(fileobj=io.BytesIO(compressed))
    while data := stream.read(block):
        summary.feed(data)
    result = summary.finish()
    expected = independent_counts(records)

    streamed = sequencing.fastq_summarize(chunks, gzipped=True)
    assert streamed == result
    for key in ("reads", "bases", "gc_percent", "length_min", "length_max", "length_mean"):
        assert result[key] == expected[key], key
    assert summary.mean_quality_by_position() == pytest.approx(expected["per_position"])
    histogram = result["length_histogram"]
    assert sum(reads for _, _, reads in histogram) == expected["reads"]
    for low, high, reads in histogram:
        assert reads == sum(n for length, n in expected["lengths"].items() if low <= length <= high)
    assert "malformed" not in result


def test_fastq_summary_of_a_stored_file_is_shown_on_the_object_page(
    client, monkeypatch, django_capture_on_commit_callbacks
):
    records = fastq_records(500, seed=7)
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(
        gzip.compress(fastq_text(records)), filename="lane1_R1.fastq.gz", tier=Tier.SHARED
    )
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=data_object.pk)
    made = make(DataObject.objects.get(pk=data_object.pk))
    expected = independent_counts(records)

    summary = made.preview["summary"]
    assert (summary["reads"], summary["gc_percent"]) == (500, expected["gc_percent"])
    client.force_login(member_of(made))
    page = client.get(f"/objects/{made.pk}/").content.decode()
    assert 'id="summary-reads">500<' in page
    assert 'id="quality-chart"' in page and "<polyline" in page
    client.force_login(UserFactory())
    assert client.get(f"/objects/{made.pk}/").status_code == 404


def test_bam_header_and_per_reference_counts_from_its_index(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    import pysam

    path = tmp_path / "aligned.bam"
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": "chr1", "LN": 5000}, {"SN": "chr2", "LN": 3000}],
        "RG": [{"ID": "lane1", "SM": "liver-7", "PL": "ILLUMINA"}],
        "PG": [{"ID": "bwa", "PN": "bwa", "VN": "0.7.17"}],
    }
    placed = {0: 0, 1: 0}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for n in range(60):
            segment = pysam.AlignedSegment(out.header)
            segment.query_name = f"r{n}"
            segment.query_sequence = "ACGT" * 10
            segment.flag = 0
            segment.reference_id = 0 if n < 45 else 1
            segment.reference_start = n * 10
            segment.mapping_quality = 60
            segment.cigarstring = "40M"
            segment.query_qualities = pysam.qualitystring_to_array("I" * 40)
            placed[segment.reference_id] += 1
            out.write(segment)
    pysam.index(str(path))
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    bam = store_object(path.read_bytes(), filename="aligned.bam")
    index = store_object(
        (tmp_path / "aligned.bam.bai").read_bytes(),
        filename="aligned.bam.bai",
        project=bam.project,
        record=bam.record,
        uploaded_by=bam.uploaded_by,
    )
    with django_capture_on_commit_callbacks(execute=True):
        data_object_checksum_verify(data_object_id=index.pk)
        data_object_checksum_verify(data_object_id=bam.pk)
    made = make(DataObject.objects.get(pk=bam.pk))

    summary = made.preview["summary"]
    assert summary["format"] == "BAM" and summary["sort_order"] == "coordinate"
    assert summary["references"] == 2
    assert summary["read_groups"] == [{"ID": "lane1", "SM": "liver-7", "PL": "ILLUMINA"}]
    assert summary["programs"][0]["PN"] == "bwa"
    assert summary["index"] == "aligned.bam.bai"
    assert summary["reads_per_reference"] == [
        {"name": "chr1", "mapped": placed[0], "unmapped": 0},
        {"name": "chr2", "mapped": placed[1], "unmapped": 0},
    ]


CRAM_REFERENCES = {"chr1": 3000, "chr2": 2000, "chr3": 1500}


def cram_write(directory, *, reads: int = 150, seed: int = 3) -> tuple:
    """A small CRAM (several containers: 20 reads a slice) of mapped, secondary, unmapped
    reads placed at a position and unmapped reads with no reference, written against a
    FASTA that is removed afterwards; with its index, and the counts expected, made from
    the reads as written."""
    import pysam

    rng = random.Random(seed)
    sequences = {
        name: "".join(rng.choice("ACGT") for _ in range(length))
        for name, length in CRAM_REFERENCES.items()
    }
    fasta = directory / "ref.fa"
    fasta.write_text("".join(f">{name}\n{sequence}\n" for name, sequence in sequences.items()))
    pysam.faidx(str(fasta))
    names = list(CRAM_REFERENCES)
    planned = []
    for n in range(reads):
        kind = rng.choice(["mapped", "mapped", "secondary", "placed-unmapped", "no-reference"])
        reference = -1 if kind == "no-reference" else rng.choice([0, 0, 1])  # chr3: none
        start = rng.randrange(0, 1000) if reference >= 0 else -1
        planned.append((reference if reference >= 0 else len(names), start, n, kind))
    planned.sort()
    expected = {"mapped": [0] * len(names), "unmapped": [0] * len(names), "no_reference": 0}
    path = directory / "aligned.cram"
    header = {
        "HD": {"VN": "1.6", "SO": "coordinate"},
        "SQ": [{"SN": name, "LN": length} for name, length in CRAM_REFERENCES.items()],
        "RG": [{"ID": "lane1", "SM": "liver-7"}],
    }
    with pysam.AlignmentFile(
        str(path),
        "wc",
        header=header,
        reference_filename=str(fasta),
        format_options=[b"seqs_per_slice=20"],
    ) as out:
        for reference, start, n, kind in planned:
            segment = pysam.AlignedSegment(out.header)
            segment.query_name = f"r{n}"
            if kind in ("mapped", "secondary"):
                segment.reference_id, segment.reference_start = reference, start
                segment.query_sequence = sequences[names[reference]][start : start + 40]
                segment.flag = 0x100 if kind == "secondary" else 0
                segment.mapping_quality, segment.cigarstring = 60, "40M"
                expected["mapped"][reference] += 1
            else:
                segment.query_sequence = "".join(rng.choice("ACGT") for _ in range(40))
                segment.flag = 0x4
                if kind == "placed-unmapped":
                    segment.reference_id, segment.reference_start = reference, start
                    expected["unmapped"][reference] += 1
                else:
                    segment.reference_id, segment.reference_start = -1, -1
                    expected["no_reference"] += 1
            segment.query_qualities = pysam.qualitystring_to_array("I" * 40)
            out.write(segment)
    pysam.index(str(path))
    for made in directory.glob("ref.fa*"):
        made.unlink()  # counting needs no reference
    return path, expected


def cram_store(path, monkeypatch, capture, *, with_index: bool = True) -> DataObject:
    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    cram = store_object(path.read_bytes(), filename="aligned.cram", tier=Tier.SHARED)
    objects = [cram]
    if with_index:
        index_path = path.with_name(path.name + ".crai")
        objects.insert(
            0,
            store_object(
                index_path.read_bytes(),
                filename="aligned.cram.crai",
                project=cram.project,
                record=cram.record,
                uploaded_by=cram.uploaded_by,
            ),
        )
    with capture(execute=True):
        for data_object in objects:
            data_object_checksum_verify(data_object_id=data_object.pk)
    return DataObject.objects.get(pk=cram.pk)


def test_cram_reads_per_reference_are_counted_from_the_file_without_its_reference(
    client, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    """A CRAM index holds no counts (htslib answers 0 for every reference): the reads are
    counted in one pass over the file, decoding only flags and references, so the FASTA
    it was written against is not needed (and htslib is given nowhere to look for it)."""
    import pysam

    monkeypatch.setenv("REF_PATH", str(tmp_path / "no-references"))
    monkeypatch.setenv("REF_CACHE", str(tmp_path / "no-cache"))
    path, expected = cram_write(tmp_path)
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks)

    made = make(cram)

    assert made.preview_state == DataObject.PreviewState.READY, made.preview
    summary = made.preview["summary"]
    assert summary["format"] == "CRAM" and summary["references"] == 3
    assert summary["read_groups"] == [{"ID": "lane1", "SM": "liver-7"}]
    assert summary["reads_per_reference"] == [
        {"name": name, "mapped": mapped, "unmapped": unmapped}
        for name, mapped, unmapped in zip(
            CRAM_REFERENCES, expected["mapped"], expected["unmapped"], strict=True
        )
    ]
    assert summary["mapped"] == sum(expected["mapped"])
    assert summary["unmapped"] == sum(expected["unmapped"]) + expected["no_reference"]
    assert expected["no_reference"] and all(expected["unmapped"][:2])  # every case is there
    assert "counts_reason" not in summary and "counts_from_index" not in summary
    # samtools' own count over the file (idxstats reads a CRAM whole) agrees.
    idxstats = [line.split("\t") for line in pysam.idxstats(str(path)).splitlines()]
    assert [[int(n) for n in row[2:]] for row in idxstats] == [
        *([m, u] for m, u in zip(expected["mapped"], expected["unmapped"], strict=True)),
        [0, expected["no_reference"]],
    ]
    client.force_login(member_of(made))
    page = client.get(f"/objects/{made.pk}/").content.decode()
    assert "Mapped reads" in page and 'id="reads-per-reference"' in page
    assert "counted over the whole file" in page
    assert 'id="summary-no-counts"' not in page


def test_a_cram_without_an_index_is_counted_too(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    path, expected = cram_write(tmp_path, reads=40, seed=5)
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks, with_index=False)

    summary = make(cram).preview["summary"]

    assert "index" not in summary
    assert [row["mapped"] for row in summary["reads_per_reference"]] == expected["mapped"]


def test_a_cram_past_the_counting_limit_keeps_its_header_and_the_page_says_why(
    client, tmp_path, monkeypatch, settings, django_capture_on_commit_callbacks
):
    path, _ = cram_write(tmp_path, reads=40)
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks)
    settings.KURA_PREVIEW_CRAM_COUNT_MAX_BYTES = 1024

    made = make(cram)

    assert made.preview_state == DataObject.PreviewState.READY
    summary = made.preview["summary"]
    assert summary["format"] == "CRAM" and summary["references"] == 3
    assert "reads_per_reference" not in summary and "mapped" not in summary
    assert summary["counts_reason"].startswith("kura:")  # a code, read in the reader's language
    assert "preview.cram_count_too_large" in summary["counts_reason"]
    client.force_login(member_of(made))
    page = client.get(f"/objects/{made.pk}/").content.decode()
    note = re.search(r'id="summary-no-counts">([^<]*)<', page).group(1)
    with translation.override("en"):
        limit, size = filesizeformat(1024), filesizeformat(made.size)
    assert html.unescape(note) == (
        f"Reads per reference are counted for CRAM files of up to {limit}; this file is {size}."
    )
    assert "Mapped reads" not in page


def test_cram_counting_switched_off_says_so(
    tmp_path, monkeypatch, settings, django_capture_on_commit_callbacks
):
    path, _ = cram_write(tmp_path, reads=20)
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks, with_index=False)
    settings.KURA_PREVIEW_CRAM_COUNT_MAX_BYTES = 0

    summary = make(cram).preview["summary"]

    assert "reads_per_reference" not in summary
    assert str(machine_text.parse(summary["counts_reason"])) == (
        "Reads per reference are not counted for CRAM files on this server."
    )


def test_a_cram_damaged_after_its_header_keeps_the_header_and_says_why(
    client, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    path, _ = cram_write(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # a container's bytes overwritten
    path.write_bytes(bytes(data))
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks, with_index=False)

    made = make(cram)

    assert made.preview_state == DataObject.PreviewState.READY, made.preview
    summary = made.preview["summary"]
    assert summary["references"] == 3 and "reads_per_reference" not in summary
    client.force_login(member_of(made))
    page = client.get(f"/objects/{made.pk}/").content.decode()
    assert "Reads per reference could not be counted" in page


def test_a_storage_error_while_counting_a_cram_leaves_the_preview_pending(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    """The reader sees a short file; what happened is the store's error, which the task
    retries: partial counts are never recorded."""
    path, _ = cram_write(tmp_path, reads=40)
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks, with_index=False)
    real = object_store()

    reads = []

    class Failing:
        """The store, failing on the second read of the CRAM (the first is its header)."""

        def __getattr__(self, name):
            return getattr(real, name)

        def read_chunks(self, key, chunk_size, range_size):
            reads.append(key)
            if key != cram.storage_key or reads.count(key) == 1:
                yield from real.read_chunks(key, chunk_size, range_size)
                return
            yield real.read_range(key, 0, 4096)
            raise StoreError("the store went away")

    monkeypatch.setattr(services, "object_store", lambda: Failing())

    with pytest.raises(StoreError):
        data_object_preview_make(data_object_id=cram.pk)

    cram.refresh_from_db()
    assert cram.preview_state == DataObject.PreviewState.PENDING


def test_a_cram_summary_made_before_counting_still_says_why_it_has_none(
    client, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    path, _ = cram_write(tmp_path, reads=20)
    cram = cram_store(path, monkeypatch, django_capture_on_commit_callbacks)
    summary = {"format": "CRAM", "references": 3, "index": "aligned.cram.crai"}
    DataObject.objects.filter(pk=cram.pk).update(
        preview_state=DataObject.PreviewState.READY,
        preview={"kind": "sequencing", "summary": {**summary, "counts_from_index": False}},
    )

    client.force_login(member_of(cram))
    page = client.get(f"/objects/{cram.pk}/").content.decode()

    assert 'id="summary-no-counts"' in page and "aligned.cram.crai" in page
    assert "Mapped reads" not in page


@pytest.mark.parametrize(
    "path",
    [
        "full/" + "9" * 400 + ",/0/default.jpg",  # h * sw / w would overflow a float
        "0,0,512,512/" + "1" * 330 + ",/0/default.jpg",
        "1" * 4301 + ",0,10,10/10,10/0/default.jpg",  # past int()'s digit limit
        "0,0,10,10/10,10/" + "9" * 400 + "/default.jpg",
    ],
    ids=["huge-width", "huge-width-of-region", "huge-region", "huge-rotation"],
)
def test_a_huge_number_in_an_image_request_is_refused_not_a_server_error(
    client, image_object, path
):
    made = make(image_object)
    client.raise_request_exception = False
    client.force_login(member_of(made))

    response = client.get(f"/objects/{made.pk}/iiif/0/{path}")

    assert response.status_code == 400, response.status_code


def test_a_fastq_whose_record_never_ends_is_summarised_in_bounded_memory():
    """A damaged file (or no FASTQ at all) with no line end after its first record: the
    unfinished record is not kept past MAX_CARRY, so memory does not grow with the file
    (before, a 128 MiB file of one line took 524 MiB)."""
    import tracemalloc

    def chunks(total: int):
        yield b"@r1\nACGT\n+\nIIII\n@r2\n"
        piece = b"A" * (4 * 1024**2)
        for _ in range(total // len(piece)):
            yield piece

    def peak_of(total: int) -> tuple[dict, int]:
        tracemalloc.start()
        try:
            summary = sequencing.fastq_summarize(chunks(total), gzipped=False)
            return summary, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_summary, small = peak_of(64 * 1024**2)
    large_summary, large = peak_of(512 * 1024**2)

    assert small_summary["reads"] == large_summary["reads"] == 1
    assert small_summary["malformed"] is large_summary["malformed"] is True
    assert large < small * 1.2, (small, large)
    assert large < 16 * sequencing.BLOCK, f"peak {large / 1024**2:.0f} MiB for 512 MiB"
