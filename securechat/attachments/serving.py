"""The HTTP headers a shared file and a thumbnail are served with: safe whatever the bytes.

A file's bytes are a colleague's, not ours, so every answer makes sure a browser never runs
them on our origin, whatever they hold (an SVG with a script, an HTML page, a polyglot):

- ``Content-Type`` is the server's own (``detect.CONTENT_TYPES``), never the client's;
- ``X-Content-Type-Options: nosniff``: the browser does not guess another type;
- ``Content-Disposition: attachment`` for every file: it is saved, never rendered. The page
  shows a full image by fetching it and displaying a ``blob:`` URL, which the page's CSP
  allows for images only. The name is given twice: ``filename*`` (RFC 6266/5987, UTF-8)
  and a plain ASCII ``filename`` for clients that do not read the first;
- ``Content-Security-Policy: default-src 'none'; sandbox``: opened anyway, it gets an opaque
  origin with no scripts, no plugins and nothing loaded;
- ``Cache-Control: private, no-store``: no shared or disk cache keeps another person's file.

The other headers every web-port answer carries (``server/webfiles.security_headers``:
HSTS, no referrer, no framing, same-origin only) are here too; a test keeps the HSTS
max-age the same. Pure: headers as ``(bytes, bytes)`` pairs, as h11 takes them.
"""

from __future__ import annotations

import unicodedata
import urllib.parse

from securechat.attachments.detect import INLINE_IMAGES, FileType
from securechat.attachments.names import FALLBACK_NAME, clean_name, split_extension

Headers = list[tuple[bytes, bytes]]

HSTS_SECONDS = 365 * 24 * 3600
FILE_CSP = "default-src 'none'; sandbox"
_COMMON: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", FILE_CSP),
    ("Cache-Control", "private, no-store"),
    ("Strict-Transport-Security", f"max-age={HSTS_SECONDS}"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
# RFC 5987 attr-char: what filename* may hold unencoded.
_ATTR_CHARS = "!#$&+-.^_`|~"


def download_headers(name: str, file_type: FileType, size: int) -> Headers:
    """The headers of a file's download: saved under ``name``, never shown or run."""
    return _encoded(
        ("Content-Type", file_type.content_type),
        ("Content-Length", str(size)),
        ("Content-Disposition", content_disposition(name)),
    )


def thumbnail_headers(size: int, content_type: str) -> Headers:
    """The headers of a thumbnail the server made (PNG, JPEG, GIF or WebP), shown inline.

    Raises:
        ValueError: ``content_type`` is not one of the inline image types.
    """
    if content_type not in INLINE_IMAGES:
        raise ValueError(f"not an inline image type: {content_type!r}")
    return _encoded(
        ("Content-Type", content_type),
        ("Content-Length", str(size)),
        ("Content-Disposition", "inline"),
    )


def content_disposition(name: str) -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''percent-encoded`` for ``name``."""
    cleaned = clean_name(name)
    encoded = urllib.parse.quote(cleaned, safe=_ATTR_CHARS, encoding="utf-8")
    return f"attachment; filename=\"{ascii_fallback(cleaned)}\"; filename*=UTF-8''{encoded}"


def ascii_fallback(name: str) -> str:
    """``name`` in printable ASCII for a quoted ``filename=``: accents dropped, the rest ``_``.

    ``"``, ``\\``, ``;`` and ``%`` become ``_`` too: quoting rules differ between parsers,
    some split at any ``;``, and some decode ``%XX`` in a plain ``filename``.
    """
    letters = unicodedata.normalize("NFKD", clean_name(name))
    text = "".join(
        ch if " " <= ch <= "~" and ch not in '"\\%;' else "_"
        for ch in letters
        if not unicodedata.combining(ch)
    )
    stem, extension = split_extension(text)
    return text if stem.strip("._ ") else FALLBACK_NAME + extension.replace("_", "")


def _encoded(*specific: tuple[str, str]) -> Headers:
    return [(n.encode("ascii"), v.encode("ascii")) for n, v in (*specific, *_COMMON)]
