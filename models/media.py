"""Stored media: what each kind of upload accepts, keeping an upload, and letting it go.

The type of an upload is decided from its bytes (puremagic), never from the client's name
or Content-Type. Images are decoded with Pillow under the pixel limit. Markup (HTML, SVG,
script) anywhere in an image or a voice clip refuses it, so no polyglot is served inline.
Any file is accepted as a `file`, always served as an attachment; one detected as a type a
browser would run (HTML, SVG, XML, script) is stored and served as `application/octet-stream`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import mmap
import re
import unicodedata
from pathlib import Path

import puremagic
from PIL import Image
from pony.orm import commit, rollback

from im_core import security
from im_core.config import current, now
from im_core.errors import ApiError, Error
from models import image_structure, storage
from models.entities import Media, User
from models.spool import Spool

logger = logging.getLogger(__name__)

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".jfif": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
STICKER_TYPES = {ext: kind for ext, kind in IMAGE_TYPES.items() if kind != "image/jpeg"}
VOICE_TYPES = {
    ".mp3": "audio/mpeg",
    ".koz": "audio/mpeg",  # puremagic's best match for an ID3v2.3 tag, which starts MP3s
    ".mpga": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/ogg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".f4a": "audio/mp4",
    ".aac": "audio/aac",
    ".webm": "audio/webm",
    ".amr": "audio/amr",
}
PILLOW_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
}
EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "audio/mpeg": ".mp3",
    "audio/ogg": ".ogg",
    "audio/wav": ".wav",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/webm": ".webm",
    "audio/amr": ".amr",
}
# Types a browser would run as a page or script: never served under their own name.
ACTIVE_TYPES = re.compile(r"html|svg|javascript|ecmascript|(?:^|[/+])xml$", re.IGNORECASE)
# Markup a browser would act on if it were shown the file as a page: elements that run
# script, load something or change what the page is, and event-handler attributes (onload=,
# onerror=, ...) in any tag. Searched with NUL bytes taken out (browsers skip them in tags).
MARKUP = re.compile(
    rb"<\s*/?\s*(?:!doctype|\?xml-stylesheet|html|head|body|script|svg|math|iframe|frame"
    rb"|frameset|object|embed|applet|style|link|meta|base|form|template|portal)[\s/>]"
    rb"|<[a-z][^\s/>]{0,30}[\s/][^<>]{0,300}?(?<![a-z0-9_-])on[a-z]{3,40}\s*=",
    re.IGNORECASE,
)
# A link that runs script, searched for with NUL, tab and line breaks taken out (browsers
# skip them inside a URL's scheme: `java\tscript:` works).
SCRIPT_LINK = re.compile(rb"(?:java|vb)script:")
# A GIF whose first bytes read as the start of a JavaScript expression (`GIF89a/*...`,
# `GIF89a=...`): its screen size written as printable characters after the signature.
GIF_AS_SCRIPT = re.compile(rb"GIF8[79]a(?:[/=;,+\-*%&|^<>?:(\[.!~]|[\s][/=;,])[\t-\r -~]")
OCTET_STREAM = "application/octet-stream"


@dataclasses.dataclass(frozen=True)
class Kind:
    """The rules of one kind of upload; `types` maps puremagic's extensions to ours."""

    types: dict[str, str] | None  # None: any type
    image: bool = False  # decoded with Pillow under the pixel limit
    inline: bool = False  # served inline (verified images and audio) instead of attachment


KINDS = {
    "image": Kind(IMAGE_TYPES, image=True, inline=True),
    "expression": Kind(STICKER_TYPES, image=True, inline=True),
    "avatar": Kind(IMAGE_TYPES, image=True, inline=True),
    "voice": Kind(VOICE_TYPES, inline=True),
    "file": Kind(None),
}


def limit(kind: str) -> int:
    """The byte limit of a kind (the `max_<kind>_bytes` setting)."""
    return getattr(current(), f"max_{kind}_bytes")


def inspect(spool: Spool, kind: str) -> str:
    """The content type of a received upload if it keeps the rules of `kind` (no database
    work: call it before taking locks).

    The part is named like the kind (`image`, `expression`, `voice`, `file`, `avatar`).
    Raises MEDIA_TOO_LARGE, WRONG_MEDIA_TYPE (a type the kind does not accept, or markup
    inside), BROKEN_IMAGE (an image that does not decode) or TOO_MANY_PIXELS (an image
    over the limits of pixels, or of the work of decoding it).
    """
    if spool.size > limit(kind):
        raise ApiError(Error.MEDIA_TOO_LARGE, part=kind, limit=limit(kind))
    content_type = _content_type(spool.path, kind)
    if KINDS[kind].image:
        _check_image(spool.path, kind, content_type)
    return content_type


def accept(spool: Spool, filename: str, kind: str, uploader: User, content_type: str) -> Media:
    """The new Media row of an upload `inspect` accepted as `content_type` (not flushed, its
    bytes not stored yet: `committing` does that)."""
    return Media(
        sha256=spool.sha256,
        size=spool.size,
        content_type=content_type,
        filename=clean_filename(filename, kind + EXTENSIONS.get(content_type, "")),
        kind=kind,
        created_at=now(),
        uploader=uploader,
    )


@contextlib.contextmanager
def committing(spool: Spool, filename: str, kind: str, uploader: User, content_type: str):
    """`accept` the upload `inspect` accepted and keep its bytes in the store, let the block
    use the new Media, then commit.

    If keeping, the block or the commit fails, the transaction rolls back and the object
    just stored goes again unless another row names it: no object is left that no row
    names. Raises MEDIA_STORE_UNAVAILABLE, and whatever the block or the commit raised.
    """
    media = accept(spool, filename, kind, uploader, content_type)
    sha256 = media.sha256
    kept = False
    try:
        storage.keep(spool)
        kept = True
        yield media
        commit()
    except BaseException as error:
        rollback()
        if not kept and _store_failed(error):
            # Nothing to take back: an upload the store failed was aborted (S3 shows only
            # whole objects), and a store that just failed would keep the client waiting
            # once more for a cleanup. Logged, in case it wrote the object and then failed.
            logger.warning("Upload of %s not kept: the media store failed", sha256)
        else:
            _forget_after_rollback(sha256)
        raise


def _store_failed(error: BaseException) -> bool:
    return isinstance(error, ApiError) and error.error is Error.MEDIA_STORE_UNAVAILABLE


def change_avatar(user: User, spool: Spool, filename: str, content_type: str) -> Media:
    """Make an upload `inspect` accepted the user's avatar and let the previous one go,
    committed. The caller holds the account's lock (`sessions.locked`).

    One transaction: if the store cannot delete the previous avatar's object, nothing
    changes. Raises what `committing` raises.
    """
    previous = user.avatar
    with committing(spool, filename, "avatar", user, content_type) as avatar:
        user.avatar = avatar
        if previous is not None:
            release(previous)
    return avatar


def release(media: Media) -> None:
    """Forget `media` unless a message shows it or it is an avatar; its object goes with the
    last row that names it. Raises MEDIA_STORE_UNAVAILABLE when the store cannot delete it."""
    if not media.messages.is_empty() or media.avatar_of is not None:
        return
    sha256 = media.sha256
    media.delete()
    storage.forget(sha256, lambda: Media.exists(sha256=sha256))


def _forget_after_rollback(sha256: str) -> None:
    try:
        storage.forget(sha256, lambda: Media.exists(sha256=sha256))
        commit()
    except Exception:  # the original failure matters more; the object is only garbage
        logger.exception("Could not remove media object %s after a failed upload", sha256)
        rollback()


def by_signed_link(media_id: int, signature: str) -> tuple[Media, int]:
    """The media a signed URL names, and the seconds the URL has left.

    Raises BAD_MEDIA_LINK for a signature that is wrong, expired or for another media, and
    MEDIA_NOT_FOUND when the media is gone. Whether its object is still in the store is
    found when it is read (`models.stores.Store.open`).
    """
    life = security.media_link_life(media_id, signature)
    if life is None:
        raise ApiError(Error.BAD_MEDIA_LINK)
    media = Media.get(id=media_id)
    if media is None:
        raise ApiError(Error.MEDIA_NOT_FOUND)
    return media, life


def clean_filename(name: str, fallback: str) -> str:
    """The client's file name made safe to keep and to send back in a header.

    No folder part, no control, format or surrogate characters, at most 255 characters
    (the extension kept); `fallback` when nothing is left.
    """
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _UNSAFE_CATEGORIES)
    name = name.strip()
    if name in ("", ".", ".."):
        return fallback
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 16:
            name = stem[: 254 - len(extension)] + "." + extension
        else:
            name = name[:255]
    return name


# Control, format (bidi overrides, zero-width), surrogate, private-use, unassigned, and
# line/paragraph separators.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _content_type(path: Path, kind: str) -> str:
    """The type of the bytes at `path` as `kind` accepts it; raises WRONG_MEDIA_TYPE.

    Only puremagic's best matches count (its confidence is the length of the signature
    matched): a WAV file also matches the 4-byte RIFF signature WebP shares, at a lower one.
    """
    candidates = _detect(path)
    accepted = KINDS[kind].types
    if accepted is None:
        detected = next((c.mime_type for c in candidates if c.mime_type), OCTET_STREAM)
        return OCTET_STREAM if ACTIVE_TYPES.search(detected) else detected[:128]
    best = [c for c in candidates if c.confidence == candidates[0].confidence] if candidates else []
    if any(ACTIVE_TYPES.search(c.mime_type) for c in best) or _has_markup(path):
        raise ApiError(Error.WRONG_MEDIA_TYPE, part=kind)
    for candidate in best:
        if candidate.extension.lower() in accepted:
            return accepted[candidate.extension.lower()]
    raise ApiError(Error.WRONG_MEDIA_TYPE, part=kind)


def _detect(path: Path) -> list:
    """puremagic's candidates for the file, most confident first ([] when none fits)."""
    try:
        return puremagic.magic_file(str(path))
    except (puremagic.PureError, ValueError):  # ValueError: an empty file
        return []


def _has_markup(path: Path, chunk_size: int = 1024 * 1024) -> bool:
    """Whether markup a browser would act on (`MARKUP`) appears anywhere in the file, or the
    file is a GIF that is also a script."""
    overlap = b""
    with open(path, "rb") as data:
        while chunk := data.read(chunk_size):
            if not overlap and GIF_AS_SCRIPT.match(chunk):
                return True
            # The chunks overlap by more than the longest match, which never spans them.
            window = (overlap + chunk).replace(b"\x00", b"")
            if MARKUP.search(window) or _has_script_link(window):
                return True
            overlap = chunk[-512:]
    return False


def _has_script_link(window: bytes) -> bool:
    # A literal search for the rare "script:" first: a case-insensitive regex over the whole
    # window costs ten times more.
    lowered = window.translate(None, b"\t\n\r").lower()
    return b"script:" in lowered and SCRIPT_LINK.search(lowered) is not None


def _check_image(path: Path, part: str, content_type: str) -> None:
    """Decode the image whole (every frame), within bounded work.

    Raises TOO_MANY_PIXELS (too many pixels, frames, or passes of decoding) or BROKEN_IMAGE.
    """
    settings = current()
    max_pixels = settings.max_image_pixels
    # Pillow raises DecompressionBombError past twice this and warns past it; our own
    # check below refuses anything past it, so the warning never lets an image through.
    Image.MAX_IMAGE_PIXELS = max_pixels
    work = _decoding_work(path, part, content_type)
    formats = [PILLOW_FORMATS[content_type]]
    try:
        with Image.open(path, formats=formats) as image:
            if image.width * image.height > max_pixels:
                raise ApiError(Error.TOO_MANY_PIXELS, part=part, limit=max_pixels)
            image.verify()
        with Image.open(path, formats=formats) as image:
            if image.format == "JPEG":
                # Decoded at 1/8 scale: every byte is still read (a truncated file fails),
                # in 1/64 of the memory. Only the first picture of a JPEG is shown.
                image.draft(image.mode, (image.width // 8 or 1, image.height // 8 or 1))
                image.load()
                return
            frames = getattr(image, "n_frames", 1)
            # An animated PNG may have a default image besides its frames; any more than
            # the structure showed is a file that lies about itself.
            if frames > work.passes + 1:
                raise ApiError(Error.BROKEN_IMAGE, part=part)
            for frame in range(frames):
                image.seek(frame)
                image.load()
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(Error.TOO_MANY_PIXELS, part=part, limit=max_pixels) from None
    except Exception as error:  # Pillow's decoders raise many kinds for broken bytes
        logger.debug("Broken %s: %r", part, error)
        raise ApiError(Error.BROKEN_IMAGE, part=part) from None


def _decoding_work(path: Path, part: str, content_type: str) -> image_structure.Work:
    """What decoding the image takes, read from its structure; raises TOO_MANY_PIXELS when
    that is over the limits, BROKEN_IMAGE when the structure does not hold together."""
    settings = current()
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            work = image_structure.measure(data, content_type)
        except image_structure.TooComplex as error:
            raise ApiError(
                Error.TOO_MANY_PIXELS, f"[{part}] is too complex to decode: {error}"
            ) from None
        except image_structure.Malformed as error:
            logger.debug("Broken %s: %s", part, error)
            raise ApiError(Error.BROKEN_IMAGE, part=part) from None
    if work.pixels > settings.max_image_pixels:
        raise ApiError(Error.TOO_MANY_PIXELS, part=part, limit=settings.max_image_pixels)
    if content_type == "image/jpeg":
        passes, limit = "scans", settings.max_scan_pixels
    else:
        passes, limit = "frames", settings.max_frame_pixels
        if work.passes > settings.max_image_frames:
            raise ApiError(
                Error.TOO_MANY_PIXELS,
                f"[{part}] has too many frames: {work.passes} frames, "
                f"the limit is {settings.max_image_frames}",
            )
    if work.decoded_pixels > limit:
        raise ApiError(
            Error.TOO_MANY_PIXELS,
            f"[{part}] needs too many pixels decoded: {work.passes} {passes} of "
            f"{work.width} x {work.height}, the limit is {limit}",
        )
    return work
