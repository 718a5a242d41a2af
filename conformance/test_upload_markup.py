"""Images, stickers, avatars and voice clips are never also pages or scripts.

Spec: the descriptions of the upload operations and of components.responses.UploadWrongType
(markup inside an image or voice clip is refused: 415, 4002). A file a browser would run if
it were shown it as a page (HTML that runs script or loads something), or as a script (a
GIF whose bytes are also JavaScript), is refused however it is hidden: event-handler
attributes, `javascript:` links, style sheets, `<meta http-equiv>`, a NUL byte inside a tag.
"""

from __future__ import annotations

import pytest

from conformance import media
from conformance.expect import error
from conformance.target import bearer

MARKUP = [
    pytest.param(b"<img src=x onerror=alert(document.domain)>", id="event-handler"),
    pytest.param(b'<div class="x" onmouseover = "alert(1)">hi</div>', id="event-handler-div"),
    pytest.param(b'<a href="javascript:alert(1)">open</a>', id="javascript-link"),
    pytest.param(b'<a href="java\tscript:alert(1)">open</a>', id="javascript-link-with-tab"),
    pytest.param(b"<style>*{background:url(//evil.example/x)}</style>", id="style"),
    pytest.param(
        b'<meta http-equiv="refresh" content="0;url=https://evil.example/">', id="meta-refresh"
    ),
    pytest.param(b"<scr\x00ipt>alert(1)</scr\x00ipt>", id="nul-inside-script-tag"),
    pytest.param(b"<\x00svg onload=alert(1)>", id="nul-before-svg"),
    pytest.param(b"<svg/onload=alert(1)>", id="svg-slash"),
]


@pytest.fixture
def member(api, users):
    """A token and a group of its own."""
    token = users.token()
    group = api.post("/groups", json={"name": "Markup"}, headers=bearer(token)).json()["group"]
    return token, group["id"]


def upload(api, member, kind: str, content: bytes):
    token, group_id = member
    files = {kind: ("file.bin", content, "application/octet-stream")}
    return api.post(f"/groups/{group_id}/upload_{kind}", files=files, headers=bearer(token))


@pytest.mark.parametrize("markup", MARKUP)
@pytest.mark.parametrize("kind", ["image", "expression"])
def test_an_image_carrying_markup_is_refused(api, member, kind, markup):
    """POST /api/groups/{group_id}/upload_image and upload_expression: a valid PNG with
    markup that runs script or loads something after its end is 415, 4002."""
    response = upload(api, member, kind, media.PNG + markup)

    error(response, 415, 4002, f"Invalid type of [{kind}]")


@pytest.mark.parametrize("markup", MARKUP)
def test_a_voice_clip_carrying_markup_is_refused(api, member, markup):
    """POST /api/groups/{group_id}/upload_voice: a valid WAV with such markup is 415, 4002."""
    response = upload(api, member, "voice", media.wav() + markup)

    error(response, 415, 4002, "Invalid type of [voice]")


def test_an_avatar_carrying_markup_is_refused(api, users):
    """POST /api/user/change_image: a valid PNG with an event-handler attribute is 415, 4002."""
    files = {"avatar": ("me.png", media.PNG + MARKUP[0].values[0], "image/png")}

    response = api.post("/user/change_image", files=files, headers=bearer(users.token()))

    error(response, 415, 4002, "Invalid type of [avatar]")


def test_a_gif_that_is_also_javascript_is_refused(api, member):
    """POST /api/groups/{group_id}/upload_image: a GIF whose bytes parse as JavaScript
    (`GIF89a/*...*/=alert(1)`) is 415, 4002, though it decodes as an image."""
    response = upload(api, member, "image", media.gif_that_is_also_javascript(b"alert(1)"))

    error(response, 415, 4002, "Invalid type of [image]")


def test_plain_images_and_clips_are_still_accepted(api, member):
    """The same files without the markup are accepted (201)."""
    for kind, content in [("image", media.PNG), ("expression", media.PNG), ("voice", media.wav())]:
        assert upload(api, member, kind, content).status_code == 201, kind
