"""Small valid media files for requests whose body must pass before anything else is judged."""

from __future__ import annotations

import struct

# A 1x1 red PNG (what Pillow writes for Image.new("RGB", (1, 1), "red")).
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
    b"\x90wS\xde\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def wav(samples: int = 800) -> bytes:
    """A silent mono 8 kHz 16-bit WAV clip of `samples` samples."""
    data = b"\x00\x00" * samples
    header = struct.pack("<4sI4s", b"RIFF", 36 + len(data), b"WAVE")
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 8000, 16000, 2, 16)
    return header + fmt + struct.pack("<4sI", b"data", len(data)) + data


def gif_that_is_also_javascript(script: bytes) -> bytes:
    """A 1x1 GIF whose bytes are also a script: `GIF89a/*` opens a JavaScript comment (the
    screen width, 10799, is the bytes `/*`), a GIF comment block closes it and runs `script`."""
    out = b"GIF89a/*" + struct.pack("<HBBB", 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x0c\x05\x00"
    payload = b"*/=" + script + b";//"
    out += b"\x21\xfe" + bytes([len(payload)]) + payload + b"\x00"
    return out + b"\x3b"
