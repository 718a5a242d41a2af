"""Real media made on the fly for the upload tests (nothing binary is kept in the repo)."""

from __future__ import annotations

import io
import re
import struct
import wave
import zlib

from PIL import Image


def image(fmt: str = "PNG", size: tuple[int, int] = (32, 24), color=(200, 40, 40)) -> bytes:
    """A real image in `fmt` (PNG, JPEG, GIF, WEBP) made by Pillow."""
    out = io.BytesIO()
    picture = Image.new("RGB", size, color)
    for x in range(0, size[0], 4):  # some detail, so encoders have work to do
        picture.putpixel((x, x % size[1]), (0, 0, 0))
    picture.save(out, fmt)
    return out.getvalue()


def png(size=(32, 24), color=(200, 40, 40)) -> bytes:
    return image("PNG", size, color)


def gif(size=(16, 16)) -> bytes:
    return image("GIF", size, (40, 200, 40))


def jpeg(size=(64, 48)) -> bytes:
    return image("JPEG", size, (40, 40, 200))


def webp(size=(16, 16)) -> bytes:
    return image("WEBP", size, (90, 90, 20))


def wav(seconds: float = 0.1) -> bytes:
    """A silent mono 8 kHz WAV clip."""
    out = io.BytesIO()
    with wave.open(out, "wb") as clip:
        clip.setnchannels(1)
        clip.setsampwidth(2)
        clip.setframerate(8000)
        clip.writeframes(b"\x00\x00" * int(8000 * seconds))
    return out.getvalue()


def ogg_opus() -> bytes:
    """A valid Ogg Opus stream: OpusHead and OpusTags pages, then one silent 20 ms packet."""
    head = b"OpusHead" + bytes([1, 1]) + struct.pack("<HIhB", 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 6) + b"pytest" + struct.pack("<I", 0)
    return (
        _ogg_page(head, sequence=0, flags=0x02)
        + _ogg_page(tags, sequence=1)
        + _ogg_page(b"\xf8\xff\xfe", sequence=2, flags=0x04, granule=960)
    )


def pdf() -> bytes:
    """A minimal one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b"<script>alert(document.domain)</script><rect width='10' height='10'/></svg>\n"
)
HTML = b"<!DOCTYPE html>\n<html><body><script>alert(document.domain)</script></body></html>\n"


def truncated_jpeg() -> bytes:
    whole = image("JPEG", (256, 256))
    return whole[: len(whole) // 2]


def png_polyglot() -> bytes:
    """A PNG that decodes, with an HTML page appended."""
    return png() + HTML


def png_header_only(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A grey PNG of any size, its rows all zero: tiny on disk, huge once decoded."""
    row = b"\x00" + b"\x00" * ((width * bit_depth + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def decompression_bomb() -> bytes:
    """10000 x 10000 pixels (100 megapixels) in a few kilobytes."""
    return png_header_only(10_000, 10_000)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _ogg_page(payload: bytes, *, sequence: int, flags: int = 0, granule: int = 0) -> bytes:
    segments = [255] * (len(payload) // 255) + [len(payload) % 255]
    header = (
        b"OggS"
        + bytes([0, flags])
        + struct.pack("<qIIi", granule, 0x1D2C3B4A, sequence, 0)
        + bytes([len(segments)])
        + bytes(segments)
    )
    page = header + payload
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32 (polynomial 0x04C11DB7, no reflection, zero start)."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else (crc << 1)
            crc &= 0xFFFFFFFF
    return crc


def multipart(
    parts: list[tuple[bytes, bytes]], boundary: bytes = b"pytest-boundary-7d3a"
) -> tuple[bytes, str]:
    """A multipart body from raw (headers, content) pairs, for bytes httpx would not send.

    Returns the body and its Content-Type.
    """
    body = bytearray()
    for headers, content in parts:
        body += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    body += b"--" + boundary + b"--\r\n"
    return bytes(body), f"multipart/form-data; boundary={boundary.decode()}"


def file_part(name: str, filename: bytes, content: bytes) -> tuple[bytes, bytes]:
    disposition = b'Content-Disposition: form-data; name="%s"; filename="%s"' % (
        name.encode(),
        filename,
    )
    return disposition + b"\r\nContent-Type: application/octet-stream", content


# -- Images whose decoding costs far more than their size says ----------------------------


def _jpeg_units(data: bytes) -> tuple[bytes, list[bytes]]:
    """A progressive JPEG made by libjpeg cut into its head (up to its frame header) and its
    scans, each with the tables (DHT) written just before it."""
    position, head_end, units, start = 2, 0, [], 0
    while data[position + 1] != 0xD9:
        marker = data[position + 1]
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xC2:  # start of frame, progressive: the scans come after it
            head_end = start = end
        if marker == 0xDA:  # a scan: its entropy-coded data runs to the next marker
            end = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end).start()
            units.append(data[start:end])
            start = end
        position = end
    return data[:head_end], units


def progressive_jpeg(size=(256, 256), repeat_scan: int = 0, times: int = 0) -> bytes:
    """A progressive JPEG of one flat colour (its AC scans take a few dozen bytes each), with
    scan number `repeat_scan` repeated `times` more times: each repeat is one more pass over
    every block of the image."""
    out = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(out, "JPEG", progressive=True, quality=90)
    head, units = _jpeg_units(out.getvalue())
    scans = units[: repeat_scan + 1] + [units[repeat_scan]] * times + units[repeat_scan + 1 :]
    return head + b"".join(scans) + b"\xff\xd9"


def jpeg_with_comments(count: int) -> bytes:
    """A small JPEG with `count` empty comment segments before its image."""
    whole = jpeg((16, 16))
    return whole[:2] + b"\xff\xfe\x00\x02" * count + whole[2:]


def gif_with_frames(canvas=(64, 64), frames: int = 10, broken_frame: int | None = None) -> bytes:
    """An animated GIF of `frames` frames, each a 1x1 dot on the canvas: a few bytes per frame,
    a whole canvas to draw per frame. Frame `broken_frame` holds LZW codes that cannot be."""
    width, height = canvas
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0))
    out += b"\x00\x00\x00\xff\xff\xff"  # a global colour table of two colours
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
    for index in range(frames):
        out += b"\x21\xf9\x04\x00\x01\x00\x00\x00"  # graphic control: 10 ms
        out += b"\x2c" + struct.pack("<HHHHB", index % width, 0, 1, 1, 0)
        # LZW, minimum code size 2: clear (4), colour 1, end (5), packed in 3-bit codes.
        data = b"\x0c\x05" if index != broken_frame else b"\x3f\x3f"
        out += b"\x02" + bytes([len(data)]) + data + b"\x00"
    return bytes(out + b"\x3b")


def gif_in_tiny_blocks(size: int) -> bytes:
    """A one-frame GIF whose image data is cut into 1-byte sub-blocks, `size` bytes long."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", 8, 8, 0x80, 0, 0) + b"\x00" * 3 + b"\xff" * 3)
    out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 8, 8, 0) + b"\x02"
    out += b"\x01\x00" * ((size - len(out)) // 2)
    return bytes(out + b"\x00\x3b")


def animated(fmt: str, frames: int, size=(16, 16)) -> bytes:
    """An animated PNG or WebP of `frames` frames made by Pillow, each of another colour."""
    pictures = [
        Image.new("RGB", size, (index % 256, index // 256 % 256, 90)) for index in range(frames)
    ]
    out = io.BytesIO()
    options = {"lossless": True} if fmt == "WEBP" else {}
    pictures[0].save(out, fmt, save_all=True, append_images=pictures[1:], duration=20, **options)
    return out.getvalue()


def png_in_tiny_chunks(count: int) -> bytes:
    """A small PNG with `count` empty private chunks before its image data."""
    whole = png((4, 4))
    end_of_header = 8 + 25
    junk = _png_chunk(b"prIv", b"") * count
    return whole[:end_of_header] + junk + whole[end_of_header:]
