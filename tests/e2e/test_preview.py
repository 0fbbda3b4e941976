"""A large image's deep-zoom preview in Chromium: zoom in, see a tile; outsiders get 404
for the same tile; a public landing page shows the thumbnail, which opens the viewer there."""

import re

import pytest
import pyvips
from playwright.sync_api import expect

from accounts.models import Role
from core.vocabularies import MetadataAccess, Tier
from dmp.models import DmpRecord
from repository.models import DataObject
from repository.preservation.checksums import data_object_checksum_verify
from repository.previews.services import data_object_preview_make
from tests.factories import MembershipFactory, UserFactory
from tests.repository.stored_objects import store_object

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "preview-pass-1"


def large_image() -> bytes:
    """A 6,000 x 4,000 RGB tiled TIFF whose colours change across it, so every tile differs
    and none is blank: three pyramid levels of 512-pixel tiles."""
    x = pyvips.Image.xyz(6000, 4000)
    red = (x[0] * 255 / 6000).cast("uchar")
    green = (x[1] * 255 / 4000).cast("uchar")
    blue = ((x[0] // 37 + x[1] // 23) % 2 * 200).cast("uchar")
    image = red.bandjoin([green, blue]).copy(interpretation="srgb")
    return image.write_to_buffer(".tif", tile=True, compression="jpeg", Q=90)


@pytest.fixture
def previewed(monkeypatch):
    from repository.preservation import checksums

    monkeypatch.setattr(checksums, "preview_send", lambda pk: None)
    data_object = store_object(large_image(), filename="liver-section.tiff", tier=Tier.SHARED)
    data_object_checksum_verify(data_object_id=data_object.pk)
    made = data_object_preview_make(data_object_id=data_object.pk)
    assert made.preview_state == DataObject.PreviewState.READY
    return made


def log_in(page, user) -> None:
    user.set_password(PASSWORD)
    user.save()
    page.goto("/accounts/login/")
    page.locator("#id_username").fill(user.username)
    page.locator("#id_password").fill(PASSWORD)
    page.locator("#login-form button[type=submit]").click()
    expect(page.locator(".nav-user")).to_be_visible()


def canvas_is_not_blank(page) -> bool:
    return page.evaluate(
        """() => {
            const canvas = document.querySelector('#preview-viewer canvas');
            if (!canvas || !canvas.width) return false;
            const { data } = canvas.getContext('2d').getImageData(
                0, 0, canvas.width, canvas.height);
            let lit = 0;
            for (let i = 0; i < data.length; i += 4 * 97) {
                if (data[i] + data[i + 1] + data[i + 2] > 60) lit++;
            }
            return lit > 100;
        }"""
    )


def test_zoom_into_a_large_image_and_outsiders_get_404_for_the_tile(
    page, browser, live_server, previewed
):
    member = MembershipFactory(project=previewed.project, role=Role.COLLABORATOR).user
    log_in(page, member)
    full_tiles: list[str] = []
    page.on(
        "response",
        lambda response: (
            full_tiles.append(response.url)
            if re.search(r"/iiif/0/\d+,\d+,512,512/512,512/0/default\.jpg$", response.url)
            and response.status == 200
            else None
        ),
    )

    page.goto(f"/objects/{previewed.pk}/")
    viewer = page.locator("#preview-viewer")
    expect(viewer).to_have_attribute("data-state", "open")
    page.wait_for_function(
        "() => Number(document.getElementById('preview-viewer').dataset.tilesLoaded || 0) > 0"
    )

    # Zoom all the way in on the middle: full-resolution tiles (scale 1) are fetched.
    with page.expect_response(
        lambda r: re.search(r"/\d+,\d+,512,512/512,512/0/default\.jpg$", r.url) is not None and r.ok
    ):
        page.evaluate(
            """() => {
                const viewer = document.getElementById('preview-viewer').kuraViewer;
                viewer.viewport.zoomTo(viewer.viewport.getMaxZoom(), null, true);
            }"""
        )
    page.wait_for_function(
        """() => {
            const viewer = document.getElementById('preview-viewer').kuraViewer;
            return viewer.world.getItemAt(0).getFullyLoaded();
        }"""
    )
    assert full_tiles, "no full-resolution tile was fetched"
    assert canvas_is_not_blank(page)

    tile_url = full_tiles[0]
    assert page.request.get(tile_url).status == 200
    outsider_context = browser.new_context(base_url=live_server.url)
    try:
        outsider_page = outsider_context.new_page()
        log_in(outsider_page, UserFactory())
        assert outsider_page.request.get(tile_url).status == 404
        anonymous = browser.new_context(base_url=live_server.url)
        assert anonymous.request.get(tile_url).status == 404
        anonymous.close()
    finally:
        outsider_context.close()


def test_a_public_landing_page_shows_the_thumbnail_and_zooms_into_it(page, previewed):
    DmpRecord.objects.filter(pk=previewed.record_id).update(
        access_rights=Tier.PUBLIC, metadata_access=MetadataAccess.OPEN
    )
    DataObject.objects.filter(pk=previewed.pk).update(tier=Tier.PUBLIC)

    page.goto(f"/datasets/{previewed.record_id}/")
    thumbnail = page.locator("img.thumbnail")
    expect(thumbnail).to_be_visible()
    expect(thumbnail).to_have_attribute("src", f"/objects/{previewed.pk}/preview/thumbnail.jpg")
    page.wait_for_function("() => document.querySelector('img.thumbnail').complete")
    size = thumbnail.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert size == [256, 171]

    # The thumbnail opens the deep-zoom viewer on the landing page itself.
    thumbnail.click()
    dialog = page.locator("#preview-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#preview-dialog-title")).to_have_text("liver-section.tiff")
    expect(page.locator("#preview-viewer")).to_have_attribute("data-state", "open")
    with page.expect_response(
        lambda r: (
            re.search(r"/iiif/0/\d+,\d+,512,512/512,512/0/default\.jpg$", r.url) is not None
            and r.ok
        )
    ):
        page.evaluate(
            """() => {
                const viewer = document.getElementById('preview-viewer').kuraViewer;
                viewer.viewport.zoomTo(viewer.viewport.getMaxZoom(), null, true);
            }"""
        )
    page.wait_for_function(
        "() => document.getElementById('preview-viewer').kuraViewer.world.getItemAt(0)"
        ".getFullyLoaded()"
    )
    assert canvas_is_not_blank(page)
    page.locator("#preview-dialog-close").click()
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"/datasets/{previewed.record_id}/$"))
