"""A file's type comes from its bytes, through the server's own table; markup is never active."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from securechat.attachments.detect import (
    CONTENT_TYPES,
    HEAD_BYTES,
    INLINE_IMAGES,
    OCTET_STREAM,
    FileType,
    detect,
)

SVG_WITH_SCRIPT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10" onload="alert(1)">'
    b"<script>alert(document.domain)</script><rect width='10' height='10'/></svg>\n"
)
HTML_WITH_SCRIPT = (
    b"<!DOCTYPE html>\n<html><head><title>hi</title></head>"
    b"<body><script>fetch('/steal?c=' + document.cookie)</script></body></html>\n"
)


def image(format: str, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (32, 24), "red").save(out, format)
    return out.getvalue()


def zip_of(*names: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "content_type", "label"),
    [
        (image("PNG"), "image/png", "PNG image"),
        (image("JPEG"), "image/jpeg", "JPEG image"),
        (image("GIF", "P"), "image/gif", "GIF image"),
        (image("WEBP"), "image/webp", "WebP image"),
    ],
)
def test_the_four_raster_types_are_shown_inline(data: bytes, content_type: str, label: str) -> None:
    assert detect(data) == FileType(content_type, inline_image=True, label=label)


@pytest.mark.parametrize(
    ("data", "content_type", "label"),
    [
        (image("BMP"), "image/bmp", "BMP image"),
        (image("TIFF"), "image/tiff", "TIFF image"),
        (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            "application/pdf",
            "PDF document",
        ),
        (zip_of("notes.txt"), "application/zip", "ZIP archive"),
        (
            zip_of("[Content_Types].xml", "_rels/.rels", "word/document.xml"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "Word document",
        ),
        (
            zip_of("[Content_Types].xml", "_rels/.rels", "xl/workbook.xml"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "Excel workbook",
        ),
        (gzip.compress(b"a log\n" * 100, mtime=0), "application/gzip", "gzip archive"),
    ],
)
def test_other_known_types_are_named_but_never_inline(
    data: bytes, content_type: str, label: str
) -> None:
    assert detect(data) == FileType(content_type, inline_image=False, label=label)


@pytest.mark.parametrize(
    "data",
    [
        SVG_WITH_SCRIPT,
        HTML_WITH_SCRIPT,
        b"<script>alert(1)</script>",
        b"plain text, a log line\n",
        b"MZ\x90\x00" + bytes(60),  # a Windows program: known to filetype, not to our table
        b"\x7fELF\x02\x01\x01" + bytes(60),
        b"",
    ],
)
def test_markup_programs_and_unknown_bytes_are_opaque_downloads(data: bytes) -> None:
    assert detect(data) == FileType(OCTET_STREAM, inline_image=False, label="File")


def test_the_name_or_claim_plays_no_part_only_the_bytes() -> None:
    # HTML that a client called "cat.png" and claimed as image/png is still opaque.
    assert detect(HTML_WITH_SCRIPT).content_type == OCTET_STREAM
    assert detect(image("PNG")[:HEAD_BYTES]).inline_image


def test_the_table_never_serves_a_type_a_browser_would_run() -> None:
    served = {content_type for content_type, _ in CONTENT_TYPES.values()}
    for content_type in served:
        assert not content_type.startswith("text/"), content_type
        assert not content_type.endswith(("/xml", "+xml")), content_type
        assert not any(active in content_type for active in ("html", "svg", "javascript"))
    assert served >= INLINE_IMAGES
    assert all(t.startswith("image/") for t in INLINE_IMAGES)


def test_detection_needs_only_the_head() -> None:
    data = image("PNG") + bytes(HEAD_BYTES * 2)
    assert detect(data[:HEAD_BYTES]) == detect(data)


@given(st.binary(max_size=HEAD_BYTES + 16))
def test_detect_never_raises_on_any_bytes(data: bytes) -> None:
    found = detect(data)
    assert found.content_type in {OCTET_STREAM} | {c for c, _ in CONTENT_TYPES.values()}
    assert not found.inline_image or found.content_type in INLINE_IMAGES
