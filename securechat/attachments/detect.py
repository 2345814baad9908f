"""What a file is, from its first bytes: never from the client's claim or the name.

``filetype`` (pure Python, no libmagic) reads signatures within the first
:data:`HEAD_BYTES` bytes, and tells a Word, Excel or OpenDocument file from a plain ZIP by
the names inside it. What it finds goes through the server's own :data:`CONTENT_TYPES`
table: a type missing from the table, or nothing found, is ``application/octet-stream``.
``filetype`` recognises no markup (HTML, SVG, XML), so active content can only ever be
served as an opaque download. Only the four raster types every browser decodes safely
(PNG, JPEG, GIF, WebP) are shown inline, and then only through the server's thumbnail.
"""

from __future__ import annotations

import dataclasses

import filetype

#: How many leading bytes :func:`detect` needs (``filetype`` looks no further).
HEAD_BYTES = 8192
OCTET_STREAM = "application/octet-stream"

_PNG = "image/png"
_JPEG = "image/jpeg"
_GIF = "image/gif"
_WEBP = "image/webp"
_OOXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"

#: What ``filetype`` found -> (the Content-Type we serve, a short name for people).
CONTENT_TYPES: dict[str, tuple[str, str]] = {
    _PNG: (_PNG, "PNG image"),
    "image/apng": (_PNG, "PNG image"),  # an animated PNG is a PNG to every decoder
    _JPEG: (_JPEG, "JPEG image"),
    _GIF: (_GIF, "GIF image"),
    _WEBP: (_WEBP, "WebP image"),
    "image/bmp": ("image/bmp", "BMP image"),
    "image/tiff": ("image/tiff", "TIFF image"),
    "image/heic": ("image/heic", "HEIC image"),
    "image/avif": ("image/avif", "AVIF image"),
    "image/vnd.adobe.photoshop": ("image/vnd.adobe.photoshop", "Photoshop image"),
    "application/pdf": ("application/pdf", "PDF document"),
    "application/rtf": ("application/rtf", "RTF document"),
    "application/msword": ("application/msword", "Word document"),
    f"{_OOXML}.wordprocessingml.document": (f"{_OOXML}.wordprocessingml.document", "Word document"),
    "application/vnd.ms-excel": ("application/vnd.ms-excel", "Excel workbook"),
    f"{_OOXML}.spreadsheetml.sheet": (f"{_OOXML}.spreadsheetml.sheet", "Excel workbook"),
    "application/vnd.ms-powerpoint": ("application/vnd.ms-powerpoint", "PowerPoint presentation"),
    f"{_OOXML}.presentationml.presentation": (
        f"{_OOXML}.presentationml.presentation",
        "PowerPoint presentation",
    ),
    f"{_ODF}.text": (f"{_ODF}.text", "OpenDocument text"),
    f"{_ODF}.spreadsheet": (f"{_ODF}.spreadsheet", "OpenDocument spreadsheet"),
    f"{_ODF}.presentation": (f"{_ODF}.presentation", "OpenDocument presentation"),
    "application/epub+zip": ("application/epub+zip", "EPUB book"),
    "application/zip": ("application/zip", "ZIP archive"),
    "application/gzip": ("application/gzip", "gzip archive"),
    "application/x-tar": ("application/x-tar", "tar archive"),
    "application/x-bzip2": ("application/x-bzip2", "bzip2 archive"),
    "application/x-xz": ("application/x-xz", "xz archive"),
    "application/zstd": ("application/zstd", "Zstandard archive"),
    "application/x-7z-compressed": ("application/x-7z-compressed", "7-Zip archive"),
    "application/x-rar-compressed": ("application/vnd.rar", "RAR archive"),
    "audio/mpeg": ("audio/mpeg", "MP3 audio"),
    "audio/mp4": ("audio/mp4", "M4A audio"),
    "audio/ogg": ("audio/ogg", "Ogg audio"),
    "audio/x-flac": ("audio/flac", "FLAC audio"),
    "audio/x-wav": ("audio/wav", "WAV audio"),
    "video/mp4": ("video/mp4", "MP4 video"),
    "video/quicktime": ("video/quicktime", "QuickTime video"),
    "video/webm": ("video/webm", "WebM video"),
    "video/x-matroska": ("video/x-matroska", "Matroska video"),
    "application/x-sqlite3": ("application/vnd.sqlite3", "SQLite database"),
}
#: The types shown inline (through a thumbnail): raster images, nothing that can run.
INLINE_IMAGES = frozenset({_PNG, _JPEG, _GIF, _WEBP})


@dataclasses.dataclass(frozen=True, slots=True)
class FileType:
    """What the server says a file is: how it is served and how it is named to people."""

    content_type: str
    inline_image: bool
    label: str


UNKNOWN = FileType(OCTET_STREAM, inline_image=False, label="File")


def detect(head: bytes) -> FileType:
    """The type of a file whose first bytes are ``head`` (:data:`HEAD_BYTES`, or all of it)."""
    found = filetype.guess_mime(head[:HEAD_BYTES]) if head else None
    entry = CONTENT_TYPES.get(found) if isinstance(found, str) else None
    if entry is None:
        return UNKNOWN
    content_type, label = entry
    return FileType(content_type, inline_image=content_type in INLINE_IMAGES, label=label)
