"""Thumbnails: upright, stripped of metadata, never from a bomb or a broken file, never blocking."""

from __future__ import annotations

import io
import stat
import struct
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from securechat.attachments import layout
from securechat.attachments.thumbnails import Thumbnail, Thumbnailer, make_thumbnail
from securechat.config import FilesConfig
from tests.conftest import TIMEOUT

CONFIG = FilesConfig()
LIMITS = {"max_pixels": CONFIG.thumbnail_max_pixels, "size": CONFIG.thumbnail_size}


def encoded(image: Image.Image, format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format, **options)
    return out.getvalue()


def two_halves(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: which way up a thumbnail is shows in its pixels."""
    image = Image.new(mode, (width, height), "blue")
    image.paste("red", (0, 0, width // 2, height))
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A real, valid PNG of ``width`` x ``height`` black 1-bit pixels, compressed to a few KB."""
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    compressor = zlib.compressobj(9)
    rows_at_once = 1000
    data = b"".join(
        compressor.compress(row * min(rows_at_once, height - done))
        for done in range(0, height, rows_at_once)
    )
    data += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            png_chunk(b"IHDR", header),
            png_chunk(b"IDAT", data),
            png_chunk(b"IEND", b""),
        )
    )


def photo_with_orientation_and_gps() -> bytes:
    """A JPEG stored on its side (EXIF orientation 6) and carrying where it was taken."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    return encoded(two_halves(600, 400), "JPEG", exif=exif, quality=95)


def written(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_photo_is_turned_upright_and_loses_its_exif_and_gps(tmp_path: Path) -> None:
    source = written(tmp_path, "photo", photo_with_orientation_and_gps())
    with Image.open(source) as original:
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # the test photo has GPS
    dest = tmp_path / "photo.thumb"

    thumbnail = make_thumbnail(source, dest, **LIMITS)

    assert thumbnail == Thumbnail(400, 600, 213, 320, "image/jpeg")
    data = dest.read_bytes()
    assert b"Exif" not in data
    assert b"PhoneCo" not in data
    with Image.open(dest) as image:
        assert image.format == "JPEG"
        assert image.size == (213, 320)
        assert not image.getexif()
        assert not image.info.get("exif")
        assert not image.info.get("icc_profile")
        top = image.getpixel((106, 20))
        bottom = image.getpixel((106, 300))
    # Orientation 6 turns the picture a quarter clockwise: its left half (red) is on top.
    assert isinstance(top, tuple)
    assert isinstance(bottom, tuple)
    assert top[0] > 200 > top[2]
    assert bottom[2] > 200 > bottom[0]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (encoded(two_halves(640, 480), "PNG"), "image/jpeg"),
        (encoded(two_halves(640, 480, "RGBA").resize((640, 480)), "WEBP"), "image/jpeg"),
        (encoded(Image.new("RGBA", (640, 480), (255, 0, 0, 128)), "PNG"), "image/png"),
        (encoded(two_halves(640, 480).convert("P"), "GIF"), "image/jpeg"),
        (encoded(two_halves(640, 480), "JPEG"), "image/jpeg"),
    ],
)
def test_each_raster_type_gets_a_thumbnail_in_the_box(
    tmp_path: Path, data: bytes, content_type: str
) -> None:
    dest = tmp_path / "x.thumb"
    thumbnail = make_thumbnail(written(tmp_path, "x", data), dest, **LIMITS)
    assert thumbnail == Thumbnail(640, 480, 320, 240, content_type)
    with Image.open(dest) as image:
        assert Image.MIME[image.format or ""] == content_type
        assert image.size == (320, 240)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x", "x.thumb"]  # no temporary left


def test_a_small_image_is_not_enlarged(tmp_path: Path) -> None:
    source = written(tmp_path, "icon", encoded(two_halves(40, 30), "PNG"))
    assert make_thumbnail(source, tmp_path / "t", **LIMITS) == Thumbnail(
        40, 30, 40, 30, "image/jpeg"
    )


def test_a_png_decompression_bomb_gets_no_thumbnail_and_raises_nothing(tmp_path: Path) -> None:
    bomb = png_bomb(20_000, 20_000)  # 400 megapixels in about 50 KB: Pillow's own limit
    assert len(bomb) < 100_000
    dest = tmp_path / "bomb.thumb"
    assert make_thumbnail(written(tmp_path, "bomb", bomb), dest, **LIMITS) is None
    assert not dest.exists()


def test_an_image_over_our_pixel_cap_is_refused_before_decoding(tmp_path: Path) -> None:
    # 81 megapixels: under Pillow's limit (89), over the configured cap (50).
    source = written(tmp_path, "big", png_bomb(9_000, 9_000))
    assert Image.MAX_IMAGE_PIXELS is not None
    assert CONFIG.thumbnail_max_pixels < 9_000 * 9_000 < Image.MAX_IMAGE_PIXELS
    dest = tmp_path / "big.thumb"
    assert make_thumbnail(source, dest, **LIMITS) is None
    assert not dest.exists()
    assert make_thumbnail(source, dest, max_pixels=9_000 * 9_000, size=64) is not None


def test_a_truncated_jpeg_gets_no_thumbnail_and_raises_nothing(tmp_path: Path) -> None:
    noise = Image.frombytes("RGB", (256, 256), bytes(range(256)) * 768)
    data = encoded(noise, "JPEG")
    dest = tmp_path / "cut.thumb"
    assert make_thumbnail(written(tmp_path, "cut", data[: len(data) // 2]), dest, **LIMITS) is None
    assert not dest.exists()


@pytest.mark.parametrize(
    "data",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"<!DOCTYPE html><html><script>alert(1)</script></html>",
        b"%PDF-1.7\n",
        encoded(two_halves(64, 64), "BMP"),  # an image, but not a decoder we run
        encoded(two_halves(64, 64), "TIFF"),
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"",
    ],
)
def test_anything_but_the_four_raster_types_gets_no_thumbnail(tmp_path: Path, data: bytes) -> None:
    dest = tmp_path / "f.thumb"
    assert make_thumbnail(written(tmp_path, "f", data), dest, **LIMITS) is None
    assert not dest.exists()


def test_a_missing_file_gets_no_thumbnail(tmp_path: Path) -> None:
    assert make_thumbnail(tmp_path / "gone", tmp_path / "gone.thumb", **LIMITS) is None


class Results:
    """What a thumbnailer handed back, and on which thread."""

    def __init__(self) -> None:
        self.done = threading.Condition()
        self.results: dict[str, tuple[Thumbnail | None, str]] = {}

    def callback(self, file_id: str) -> Callable[[Thumbnail | None], None]:
        def on_done(thumbnail: Thumbnail | None) -> None:
            with self.done:
                assert file_id not in self.results, "called twice"
                self.results[file_id] = (thumbnail, threading.current_thread().name)
                self.done.notify_all()

        return on_done

    def wait_for(self, count: int) -> None:
        with self.done:
            assert self.done.wait_for(lambda: len(self.results) >= count, timeout=TIMEOUT)


def stored(root: Path, data: bytes) -> str:
    """A file stored as the server stores it, under a fresh id; the id."""
    file_id = layout.new_file_id()
    path = layout.file_path(root, file_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return file_id


@pytest.fixture
def thumbnailer(tmp_path: Path) -> Thumbnailer:
    return Thumbnailer(tmp_path, max_pixels=CONFIG.thumbnail_max_pixels, size=64)


def test_the_thumbnailer_works_on_its_own_thread_beside_each_file(
    tmp_path: Path, thumbnailer: Thumbnailer
) -> None:
    good = stored(tmp_path, encoded(two_halves(200, 100), "PNG"))
    bomb = stored(tmp_path, png_bomb(20_000, 20_000))
    broken = stored(tmp_path, b"\xff\xd8\xff\xe0 not really a jpeg")
    results = Results()
    thumbnailer.start()
    try:
        for file_id in (good, bomb, broken):
            thumbnailer.submit(file_id, results.callback(file_id))
        results.wait_for(3)
    finally:
        thumbnailer.stop()
    assert results.results[good] == (Thumbnail(200, 100, 64, 32, "image/jpeg"), "thumbnails")
    assert results.results[bomb] == (None, "thumbnails")
    assert results.results[broken] == (None, "thumbnails")
    assert layout.thumbnail_path(tmp_path, good).is_file()
    assert not layout.thumbnail_path(tmp_path, bomb).exists()


def test_a_full_queue_means_no_thumbnail_not_a_waiting_caller(tmp_path: Path) -> None:
    thumbnailer = Thumbnailer(tmp_path, max_pixels=1_000_000, size=64, queue_size=1)
    ids = [stored(tmp_path, encoded(two_halves(100, 100), "PNG")) for _ in range(3)]
    busy, release = threading.Event(), threading.Event()
    results = Results()

    def first_done(thumbnail: Thumbnail | None) -> None:
        busy.set()
        assert release.wait(TIMEOUT)
        results.callback(ids[0])(thumbnail)

    thumbnailer.start()
    try:
        thumbnailer.submit(ids[0], first_done)
        assert busy.wait(TIMEOUT)  # the thread holds the first; the queue is empty
        thumbnailer.submit(ids[1], results.callback(ids[1]))  # fills the queue (1)
        thumbnailer.submit(ids[2], results.callback(ids[2]))  # refused at once
        assert results.results[ids[2]] == (None, threading.current_thread().name)
        release.set()
        results.wait_for(3)
    finally:
        release.set()
        thumbnailer.stop()
    assert results.results[ids[0]][0] is not None
    assert results.results[ids[1]][0] is not None


def test_a_failing_callback_does_not_stop_the_thread(
    tmp_path: Path, thumbnailer: Thumbnailer, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = (stored(tmp_path, encoded(two_halves(80, 80), "PNG")) for _ in range(2))
    results = Results()

    def failing(thumbnail: Thumbnail | None) -> None:
        raise RuntimeError("a bug in the caller")

    thumbnailer.start()
    try:
        thumbnailer.submit(first, failing)
        thumbnailer.submit(second, results.callback(second))
        results.wait_for(1)
    finally:
        thumbnailer.stop()
    assert results.results[second][0] is not None
    assert "the thumbnail callback for" in caplog.text


def test_a_stopped_thumbnailer_answers_none_at_once(
    tmp_path: Path, thumbnailer: Thumbnailer
) -> None:
    file_id = stored(tmp_path, encoded(two_halves(80, 80), "PNG"))
    results = Results()
    thumbnailer.submit(file_id, results.callback(file_id))  # never started
    thumbnailer.start()
    thumbnailer.stop()
    thumbnailer.submit(file_id, results.callback("after"))
    assert results.results[file_id] == (None, threading.current_thread().name)
    assert results.results["after"][0] is None
    with pytest.raises(RuntimeError, match="started already"):
        thumbnailer.start()


def test_a_string_that_is_not_a_file_id_is_refused(thumbnailer: Thumbnailer) -> None:
    with pytest.raises(ValueError, match="not a file id"):
        thumbnailer.submit("../../etc/passwd", lambda thumbnail: None)
