"""Files are served as downloads that never run; thumbnails inline; names survive the trip."""

from __future__ import annotations

import re
import urllib.parse

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from securechat.attachments.detect import FileType, detect
from securechat.attachments.names import clean_name
from securechat.attachments.serving import (
    ascii_fallback,
    content_disposition,
    download_headers,
    thumbnail_headers,
)
from securechat.server import webfiles

HTML = FileType("application/octet-stream", inline_image=False, label="File")
PNG = FileType("image/png", inline_image=True, label="PNG image")


def as_dict(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    names = [name.lower() for name, _ in headers]
    assert len(names) == len(set(names)), "a header appears twice"
    return {name.decode().lower(): value.decode() for name, value in headers}


def filename_of(disposition: str) -> str:
    """The name a browser saves under: RFC 6266 says ``filename*`` wins over ``filename``."""
    kind, *parameters = (part.strip() for part in disposition.split(";"))
    assert kind == "attachment"
    values = dict(parameter.split("=", 1) for parameter in parameters)
    assert values["filename"].startswith('"')
    assert values["filename"].endswith('"')
    charset, language, encoded = values["filename*"].split("'")
    assert (charset, language) == ("UTF-8", "")
    assert re.fullmatch(r"[A-Za-z0-9!#$&+\-.^_`|~%]+", encoded)
    return urllib.parse.unquote(encoded, encoding="utf-8", errors="strict")


def serialised(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The response head as h11 writes it: h11 refuses any header it deems unsafe."""
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
    connection.next_event()
    return connection.send(h11.Response(status_code=200, headers=headers)) or b""


def test_a_download_is_an_attachment_that_never_runs() -> None:
    headers = as_dict(download_headers("page.html", HTML, 1234))
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == "1234"
    assert headers["content-disposition"].startswith("attachment;")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert headers["cache-control"] == "private, no-store"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cross-origin-resource-policy"] == "same-origin"


def test_an_svg_with_a_script_and_an_html_page_are_served_opaque() -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
    for data, name in ((svg, "logo.svg"), (html, "index.html")):
        headers = as_dict(download_headers(name, detect(data), len(data)))
        assert headers["content-type"] == "application/octet-stream"
        assert headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in headers["content-security-policy"]


def test_even_an_image_downloads_as_an_attachment() -> None:
    headers = as_dict(download_headers("cat.png", PNG, 10))
    assert headers["content-type"] == "image/png"
    assert headers["content-disposition"].startswith("attachment;")


def test_a_thumbnail_is_inline_with_the_same_protections() -> None:
    headers = as_dict(thumbnail_headers(99, "image/webp"))
    assert headers["content-type"] == "image/webp"
    assert headers["content-length"] == "99"
    assert headers["content-disposition"] == "inline"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("content_type", ["image/svg+xml", "text/html", "application/pdf"])
def test_a_thumbnail_is_never_anything_but_a_raster_image(content_type: str) -> None:
    with pytest.raises(ValueError, match="not an inline image type"):
        thumbnail_headers(1, content_type)


@pytest.mark.parametrize(
    ("name", "disposition"),
    [
        ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
        (
            "Résumé 2026.pdf",
            "attachment; filename=\"Resume 2026.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%202026.pdf",
        ),
        (
            "日本語.pdf",
            "attachment; filename=\"file.pdf\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC%E8%AA%9E.pdf",
        ),
        (
            'say "hi" 100%;x.txt',
            "attachment; filename=\"say _hi_ 100__x.txt\"; filename*=UTF-8''say%20%22hi%22%20100%25%3Bx.txt",
        ),
    ],
)
def test_content_disposition_examples(name: str, disposition: str) -> None:
    assert content_disposition(name) == disposition


def test_a_hostile_name_arrives_cleaned_and_the_headers_stay_one_per_line() -> None:
    name = "../../\x1b]0;x\x07evil\r\nSet-Cookie: a=b\u202e.txt"
    disposition = as_dict(download_headers(name, HTML, 1))["content-disposition"]
    assert filename_of(disposition) == clean_name(name) == "]0;xevilSet-Cookie: a=b.txt"
    assert b"\r\nSet-Cookie" not in serialised(download_headers(name, HTML, 1))


@given(st.text())
def test_every_name_reads_back_cleaned_and_h11_accepts_the_headers(name: str) -> None:
    headers = download_headers(name, HTML, 5)
    assert filename_of(as_dict(headers)["content-disposition"]) == clean_name(name)
    assert serialised(headers).startswith(b"HTTP/1.1 200 ")
    fallback = ascii_fallback(name)
    assert fallback.isascii()
    assert fallback.isprintable()
    assert not set(fallback) & set('"\\%;')


def test_files_keep_the_web_ports_hsts_lifetime() -> None:
    page = dict(webfiles.security_headers())
    file = as_dict(thumbnail_headers(1, "image/png"))
    assert file["strict-transport-security"] == page["Strict-Transport-Security"]
