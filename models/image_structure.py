"""How much decoding an image takes, read from its structure before any pixel is decoded.

Neither an image's file size nor its pixel count bounds the work of decoding it: a
progressive JPEG is decoded scan by scan, each scan a pass over the whole image however
few bytes it takes (repeat a 40-byte scan thousands of times and a 300 KB file decodes for
seconds); an animation is decoded frame by frame, each drawn on the whole canvas; and data
can be cut into as many tiny pieces (GIF sub-blocks, PNG and WebP chunks, JPEG segments) as
the file has room for, each a step of a parser written in Python. So `measure` walks the
markers, blocks and chunks only (no pixels), with a bound on the pieces it walks, and says
how many passes decoding needs and over how many pixels; `models.media` refuses an image
whose passes times pixels are over the limit before decoding anything.
"""

from __future__ import annotations

import dataclasses
import re
import struct

# No encoder cuts an image into anywhere near this many pieces (segments, blocks, chunks):
# libpng writes 8 KB IDAT chunks, encoders 255-byte GIF sub-blocks, a JPEG has tens of
# segments. The walk stops there, so it costs at most a few tens of milliseconds.
MAX_PIECES = 100_000


class TooComplex(ValueError):
    """The image's structure alone is over a limit; `str()` says which, for the client."""


class Malformed(ValueError):
    """The structure does not hold together (Pillow would refuse it too)."""


@dataclasses.dataclass(frozen=True)
class Work:
    """What decoding an image takes."""

    passes: int  # scans of a JPEG, frames of an animation; 1 for a still PNG, GIF or WebP
    width: int  # of the canvas every pass covers
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_pixels(self) -> int:
        return self.passes * self.pixels


def measure(data, content_type: str) -> Work:
    """The work of decoding `data` (bytes or an mmap) of the given image type.

    Raises TooComplex when the data is cut into more than MAX_PIECES pieces, Malformed when
    its structure does not hold together.
    """
    try:
        return _MEASURES[content_type](data)
    except (IndexError, struct.error):
        raise Malformed("the image ends inside its own structure") from None


# -- JPEG ------------------------------------------------------------------------------------

# Markers with no length field: SOI, EOI, RST0-7, TEM.
_STANDALONE = {0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)}
# Start-of-frame markers (C0-CF but DHT C4, JPG C8, DAC CC): they carry the size.
_START_OF_FRAME = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# A marker, after any number of 0xFF fill bytes.
_MARKER = re.compile(rb"\xff+[^\xff]")
# The end of a scan's entropy-coded data: 0xFF followed by anything but a stuffed zero, a
# restart marker or a fill byte.
_END_OF_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg(data) -> Work:
    if data[:2] != b"\xff\xd8":
        raise Malformed("no JPEG start of image")
    position, scans, pieces = 2, 0, 0
    width = height = 0
    while True:
        pieces += 1
        if pieces > MAX_PIECES:
            raise TooComplex(f"more than {MAX_PIECES} JPEG segments")
        found = _MARKER.match(data, position)
        if found is None:
            raise Malformed("a JPEG segment does not start with a marker")
        position = found.end() - 2  # at the marker's last 0xFF (after any fill bytes)
        marker = data[position + 1]
        if marker == 0xD9:  # end of image: what follows (an MPO's next picture) is not shown
            break
        if marker in _STANDALONE:
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            raise Malformed("a JPEG segment shorter than its length field")
        if marker in _START_OF_FRAME:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
        position += 2 + length
        if marker == 0xDA:  # start of scan: its entropy-coded data follows
            scans += 1
            end = _END_OF_SCAN.search(data, position)
            if end is None:
                break  # cut short: Pillow says whether that decodes
            position = end.start()
    if not width or not height or not scans:
        raise Malformed("a JPEG without a frame or a scan")
    return Work(scans, width, height)


# -- GIF -------------------------------------------------------------------------------------


def _gif(data) -> Work:
    if data[:3] != b"GIF":
        raise Malformed("no GIF header")
    width, height, flags = struct.unpack("<HHB", data[6:11])
    position = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = pieces = 0
    while True:
        introducer = data[position]
        if introducer == 0x3B:  # trailer
            break
        if introducer == 0x21:  # extension: label, then sub-blocks
            position += 2
        elif introducer == 0x2C:  # a frame: descriptor, local colour table, LZW code size
            left, top, frame_width, frame_height, frame_flags = struct.unpack(
                "<HHHHB", data[position + 1 : position + 10]
            )
            # Pillow widens the canvas to hold a frame that lies outside it.
            width = max(width, left + frame_width)
            height = max(height, top + frame_height)
            frames += 1
            position += 10
            if frame_flags & 0x80:
                position += 3 << ((frame_flags & 7) + 1)
            position += 1
        else:
            raise Malformed("an unknown GIF block")
        while True:  # sub-blocks, each its length then its bytes, up to an empty one
            pieces += 1
            if pieces > MAX_PIECES:
                raise TooComplex(f"more than {MAX_PIECES} GIF blocks")
            size = data[position]
            position += 1 + size
            if size == 0:
                break
    if not frames:
        raise Malformed("a GIF without a frame")
    return Work(frames, width, height)


# -- PNG -------------------------------------------------------------------------------------


def _png(data) -> Work:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Malformed("no PNG signature")
    position, pieces, frames = 8, 0, 0
    width = height = 0
    while position < len(data):
        pieces += 1
        if pieces > MAX_PIECES:
            raise TooComplex(f"more than {MAX_PIECES} PNG chunks")
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        if kind == b"IHDR":
            width, height = struct.unpack(">II", data[position + 8 : position + 16])
        elif kind == b"fcTL":  # one frame of an animated PNG
            frames += 1
        elif kind == b"IEND":
            break
        position += 12 + length
    if not width or not height:
        raise Malformed("a PNG without a header")
    # A still PNG is one pass; in an animated one the default image may be a frame or not.
    return Work(max(frames, 1), width, height)


# -- WebP ------------------------------------------------------------------------------------


def _webp(data) -> Work:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise Malformed("no WebP header")
    position, pieces, frames = 12, 0, 0
    width = height = 0
    while position + 8 <= len(data):
        pieces += 1
        if pieces > MAX_PIECES:
            raise TooComplex(f"more than {MAX_PIECES} WebP chunks")
        kind, length = struct.unpack("<4sI", data[position : position + 8])
        body = position + 8
        if kind == b"VP8X":  # extended: the canvas size, 24 bits each, minus one
            width = int.from_bytes(data[body + 4 : body + 7], "little") + 1
            height = int.from_bytes(data[body + 7 : body + 10], "little") + 1
        elif kind == b"ANMF":
            frames += 1
        elif kind == b"VP8 " and not width:  # simple lossy: 14 bits each after the start code
            w, h = struct.unpack("<HH", data[body + 6 : body + 10])
            width, height = w & 0x3FFF, h & 0x3FFF
        elif kind == b"VP8L" and not width:  # simple lossless: 14 bits each, minus one
            (bits,) = struct.unpack("<I", data[body + 1 : body + 5])
            width, height = (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        position = body + length + (length & 1)  # chunks are padded to even sizes
    if not width or not height:
        raise Malformed("a WebP without a size")
    return Work(max(frames, 1), width, height)


_MEASURES = {"image/jpeg": _jpeg, "image/gif": _gif, "image/png": _png, "image/webp": _webp}
