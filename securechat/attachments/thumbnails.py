"""Thumbnails of shared images, made by one background thread with Pillow.

Theory of operation. An image is hostile input for a decoder, so:

- only the PNG, JPEG, GIF and WebP decoders may run (``Image.open(formats=...)``), never
  the dozens of others Pillow has;
- the pixel count is read from the header and checked against ``max_pixels`` before any
  decoding; Pillow's own ``MAX_IMAGE_PIXELS`` stays as a second line (it refuses twice
  its default, 89 megapixels, and warns past it);
- a file that fails to decode, is truncated or exceeds the cap gets no thumbnail: the
  reason is logged and None returned, the file stays downloadable;
- the thumbnail is drawn anew: the EXIF orientation applied, then every piece of metadata
  (EXIF with GPS, XMP, ICC, text chunks) left behind; written to a temporary (mode 0600)
  and renamed, so a reader never sees half of one.

:class:`Thumbnailer` runs :func:`make_thumbnail` on its own thread, fed by a bounded queue:
a connection's thread only queues the file id, and a full queue means no thumbnail, never
a wait.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import queue
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps

from securechat.attachments import layout
from securechat.config import FilesConfig
from securechat.files import write_atomic

log = logging.getLogger("securechat.server")

__all__ = ["Thumbnail", "Thumbnailer", "make_thumbnail"]

#: The only decoders a shared file ever reaches.
DECODERS = ("PNG", "JPEG", "GIF", "WEBP")
THUMBNAIL_MODE = 0o600
_JPEG_QUALITY = 85
# EXIF orientations that turn the picture a quarter: width and height swap.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_ORIENTATION = 0x0112
# What a broken or hostile image raises from Pillow's decoders (UnidentifiedImageError and
# "image file is truncated" are OSErrors; some plugins raise SyntaxError or struct.error).
_DECODE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    SyntaxError,
    struct.error,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Thumbnail:
    """An image's size as people see it (EXIF orientation applied) and its thumbnail's."""

    width: int
    height: int
    thumbnail_width: int
    thumbnail_height: int
    content_type: str


def make_thumbnail(source: Path, dest: Path, *, max_pixels: int, size: int) -> Thumbnail | None:
    """Write a thumbnail of the image ``source`` to ``dest``, at most ``size`` pixels square.

    PNG when the image has transparency, else JPEG. None, and nothing written, for a file
    that is not a PNG/JPEG/GIF/WebP, fails to decode, or has more than ``max_pixels``.
    """
    try:
        drawn = _draw(source, max_pixels=max_pixels, size=size)
    except _DECODE_ERRORS as exc:
        log.info("no thumbnail for %s: %s", source.name, exc)
        return None
    if drawn is None:
        return None
    data, thumbnail = drawn
    try:
        write_atomic(dest, data, mode=THUMBNAIL_MODE)
    except OSError as exc:
        log.warning("could not write the thumbnail %s: %s", dest, exc)
        return None
    return thumbnail


def _draw(source: Path, *, max_pixels: int, size: int) -> tuple[bytes, Thumbnail] | None:
    with Image.open(source, formats=DECODERS) as image:
        width, height = image.size
        if width * height > max_pixels:
            log.info(
                "no thumbnail for %s: %dx%d is over %d pixels",
                source.name,
                width,
                height,
                max_pixels,
            )
            return None
        if image.getexif().get(_ORIENTATION) in _QUARTER_TURNS:
            width, height = height, width
        # Shrink first, in place (a JPEG decodes at 1/2 to 1/8 scale), then turn the small
        # image: no full-size copy is ever made. The box is square, so turning comes out even.
        image.thumbnail((size, size))
        upright = ImageOps.exif_transpose(image)
        has_alpha = upright.has_transparency_data
        picture = upright.convert("RGBA" if has_alpha else "RGB")
    picture.info.clear()  # no EXIF, GPS, XMP, ICC or text chunk is carried over
    out = io.BytesIO()
    if has_alpha:
        picture.save(out, "PNG", optimize=True)
    else:
        picture.save(out, "JPEG", quality=_JPEG_QUALITY, optimize=True)
    content_type = "image/png" if has_alpha else "image/jpeg"
    thumbnail = Thumbnail(width, height, picture.width, picture.height, content_type)
    return out.getvalue(), thumbnail


OnDone = Callable[[Thumbnail | None], None]


class Thumbnailer:
    """One thread that makes thumbnails for files under ``root``, in the order submitted.

    :meth:`submit` never blocks and never decodes: it queues the file id. ``on_done`` is
    called once per submission, on the thumbnail thread, with the :class:`Thumbnail` or
    None; when the queue is full, or the thumbnailer is not running, it is called at once,
    with None, on the caller's thread. Submissions still queued at :meth:`stop` are dropped
    without a call: their files simply have no thumbnail.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_pixels: int,
        size: int,
        queue_size: int = FilesConfig().thumbnail_queue,
    ) -> None:
        self._root = root
        self._max_pixels = max_pixels
        self._size = size
        self._jobs: queue.Queue[tuple[str, OnDone] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        # Guards _running: submit() and stop() may run on different threads.
        self._lock = threading.Lock()
        self._running = False

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the thumbnailer was started already")
            self._running = True
            self._thread = threading.Thread(target=self._run, name="thumbnails")
            self._thread.start()

    def stop(self) -> None:
        """Drop what is queued, let the image being drawn finish, join the thread."""
        with self._lock:
            self._running = False
            thread = self._thread
        if thread is None:
            return
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        self._jobs.put(None)  # room for it: the queue was just emptied, submit() refuses now
        thread.join()

    def submit(self, file_id: str, on_done: OnDone) -> None:
        """Queue a thumbnail of ``file_id``; see the class for when ``on_done`` is called.

        Raises:
            ValueError: ``file_id`` is not a file id (``layout.is_file_id``).
        """
        layout.file_path(self._root, file_id)
        with self._lock:
            accepted = self._running
            if accepted:
                try:
                    self._jobs.put_nowait((file_id, on_done))
                except queue.Full:
                    accepted = False
        if not accepted:
            log.warning("no thumbnail for %s: the thumbnail queue is full or stopped", file_id)
            on_done(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            file_id, on_done = job
            try:
                thumbnail = make_thumbnail(
                    layout.file_path(self._root, file_id),
                    layout.thumbnail_path(self._root, file_id),
                    max_pixels=self._max_pixels,
                    size=self._size,
                )
            except Exception:  # a bug, or MemoryError: this image has none, the next may
                log.exception("making the thumbnail of %s failed", file_id)
                thumbnail = None
            try:
                on_done(thumbnail)
            except Exception:  # a bug in the caller's callback must not end the thread
                log.exception("the thumbnail callback for %s failed", file_id)
