"""The work of verifying an uploaded image is bounded, whatever the format's tricks.

Pixels are decoded once per scan of a progressive JPEG and once per frame of an animation,
over the whole image (or canvas) each time, so the limits count scans times pixels
(`max_scan_pixels`), frames times pixels (`max_frame_pixels`) and frames
(`max_image_frames`), and data cut into more pieces than any encoder writes is refused; all
of it before a pixel is decoded. How long each check
takes is measured outside the tests; here the work is counted: the calls to Pillow's
decoder (`ImageFile.load`, one per frame or image decoded).
"""

from __future__ import annotations

import dataclasses

import media_samples as samples
import pytest
from PIL import ImageFile

from conftest import Auth, empty_tables
from im_api.app import create_app

TOO_MANY_PIXELS = 4005
BROKEN_IMAGE = 4004


@pytest.fixture
def decodes(monkeypatch) -> list:
    """Every call to Pillow's decoder during the test, by image format."""
    calls: list[str] = []
    load = ImageFile.ImageFile.load

    def counting_load(image):
        calls.append(image.format)
        return load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return calls


@pytest.fixture
def alice(auth):
    return auth.new_user("alice")


@pytest.fixture
def group_id(client, alice):
    return client.post("/api/groups", json={"name": "Images"}, headers=alice).json()["group"]["id"]


def upload_image(client, headers, group_id, content, kind="image"):
    files = {kind: ("picture", content, "application/octet-stream")}
    return client.post(f"/api/groups/{group_id}/upload_{kind}", files=files, headers=headers)


def assert_refused(response, code: int) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"code", "info", "request_id"} and body["code"] == code, body
    return body["info"]


def test_a_progressive_jpeg_with_repeated_scans_is_refused_before_decoding(
    client, alice, group_id, decodes
):
    """500 repeats of one 80-byte scan of a 1024x1024 JPEG: 510 passes over a megapixel is
    over the default 400 million pixels decoded across scans. Refused, nothing decoded."""
    hostile = samples.progressive_jpeg((1024, 1024), repeat_scan=5, times=500)
    assert len(hostile) < 100_000

    info = assert_refused(upload_image(client, alice, group_id, hostile), TOO_MANY_PIXELS)

    assert "510 scans" in info, info
    assert decodes == []


def test_an_ordinary_progressive_jpeg_is_accepted_and_decoded(client, alice, group_id, decodes):
    """A progressive JPEG as libjpeg writes it (10 scans) is accepted, and decoded once."""
    response = upload_image(client, alice, group_id, samples.progressive_jpeg((1024, 1024)))

    assert response.status_code == 201, response.text
    assert decodes == ["JPEG"]


@pytest.fixture
def budget_of_ten_scans(settings):
    """A decoding budget of exactly 10 passes over a 256x256 image."""
    return dataclasses.replace(settings, max_scan_pixels=10 * 256 * 256)


@pytest.mark.parametrize(("extra_scans", "accepted"), [(0, True), (1, False)])
def test_the_budget_counts_scans_times_pixels(budget_of_ten_scans, extra_scans, accepted):
    app = create_app(budget_of_ten_scans)
    empty_tables()
    with app.test_client() as client:
        alice = Auth(client).new_user("alice")
        group = client.post("/api/groups", json={"name": "G"}, headers=alice).json()["group"]
        image = samples.progressive_jpeg((256, 256), repeat_scan=3, times=extra_scans)

        response = upload_image(client, alice, group["id"], image)

    if accepted:
        assert response.status_code == 201, response.text
    else:
        assert_refused(response, TOO_MANY_PIXELS)


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_of_more_frames_than_the_limit_is_refused_before_decoding(
    client, alice, group_id, decodes, fmt
):
    """1001 frames, one more than the default `max_image_frames`: refused, nothing decoded."""
    frames = 1001
    hostile = (
        samples.gif_with_frames(frames=frames) if fmt == "GIF" else samples.animated(fmt, frames)
    )

    info = assert_refused(upload_image(client, alice, group_id, hostile), TOO_MANY_PIXELS)

    assert f"{frames} frames" in info, info
    assert decodes == []


def test_an_animation_over_the_decoding_budget_is_refused_before_decoding(
    client, alice, group_id, decodes
):
    """200 frames, each a dot drawn on a 1000x1000 canvas (a 5 KB file): 200 million pixels
    to draw, over the default 100 million across frames. Refused, nothing decoded."""
    hostile = samples.gif_with_frames(canvas=(1000, 1000), frames=200)

    info = assert_refused(upload_image(client, alice, group_id, hostile), TOO_MANY_PIXELS)

    assert "200 frames" in info, info
    assert decodes == []


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_every_frame_of_an_animation_is_decoded(client, alice, group_id, decodes, fmt):
    """An animation within the limits is accepted after each of its frames decoded (Pillow
    loads an animated PNG's previous frame again to draw the next one on it)."""
    image = samples.gif_with_frames(frames=12) if fmt == "GIF" else samples.animated(fmt, 12)

    response = upload_image(client, alice, group_id, image)

    assert response.status_code == 201, response.text
    assert 12 <= decodes.count(fmt) <= 2 * 12, decodes


def test_an_animation_with_one_broken_frame_is_refused(client, alice, group_id):
    """A GIF whose 8th frame cannot be decoded is broken, though its first frame is fine."""
    broken = samples.gif_with_frames(frames=12, broken_frame=7)

    assert_refused(upload_image(client, alice, group_id, broken), BROKEN_IMAGE)


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(lambda: samples.gif_in_tiny_blocks(400_000), id="gif-200000-blocks"),
        pytest.param(lambda: samples.png_in_tiny_chunks(120_000), id="png-120000-chunks"),
        pytest.param(lambda: samples.jpeg_with_comments(120_000), id="jpeg-120000-segments"),
    ],
)
def test_data_cut_into_more_pieces_than_any_encoder_writes_is_refused(
    client, alice, group_id, decodes, hostile
):
    """Each piece (GIF sub-block, PNG chunk, JPEG segment) is a step for a parser in
    Python: more than 100 000 of them is refused, nothing decoded."""
    info = assert_refused(upload_image(client, alice, group_id, hostile()), TOO_MANY_PIXELS)

    assert "100000" in info, info
    assert decodes == []


def test_a_gif_frame_outside_its_canvas_counts_with_the_canvas_it_needs(
    client, alice, group_id, decodes
):
    """A GIF declaring a 64x64 screen whose one frame sits at (7000, 7000): Pillow widens the
    canvas to hold it (49 megapixels), so its pixels are over the 40 million limit."""
    image = bytearray(samples.gif_with_frames(canvas=(64, 64), frames=1))
    frame = image.index(b"\x2c")
    image[frame + 1 : frame + 5] = (7000).to_bytes(2, "little") * 2

    assert_refused(upload_image(client, alice, group_id, bytes(image)), TOO_MANY_PIXELS)
    assert decodes == []
