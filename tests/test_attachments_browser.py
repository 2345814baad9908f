"""A real Chromium never runs a shared SVG or HTML file served with our headers.

A small HTTP server on 127.0.0.1 answers with :func:`download_headers` exactly as the web
port will; the files hold scripts that would open a dialog and call home (``/pwned``).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from securechat.attachments.detect import FileType, detect
from securechat.attachments.serving import download_headers
from tests.conftest import CHROMIUM, TIMEOUT, browser_missing, skip_or_fail

if (missing := browser_missing()) is not None:
    skip_or_fail(missing)

from playwright.sync_api import Browser, Dialog, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CALL_HOME = "fetch('/pwned'); alert('pwned')"
FILES = {
    "/files/logo.svg": (
        "logo.svg",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="' + CALL_HOME.encode() + b'">'
        b"<script>" + CALL_HOME.encode() + b"</script></svg>",
    ),
    "/files/page.html": (
        "page.html",
        b"<!DOCTYPE html><html><body><script>" + CALL_HOME.encode() + b"</script></body></html>",
    ),
}
#: The worst case: a table that served markup under its own type, and a browser that
#: ignored Content-Disposition. The CSP sandbox alone must still stop the script.
ACTIVE_TYPES = {"/files/logo.svg": "image/svg+xml", "/files/page.html": "text/html"}


class FileServer(http.server.ThreadingHTTPServer):
    """Serves FILES with our download headers; records every path asked for."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requested: list[str] = []

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FileServer

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        self.server.requested.append(path)
        if path not in FILES:
            self.send_error(404)
            return
        name, data = FILES[path]
        headers = download_headers(name, detect(data), len(data))
        if query == "worst-case":
            worse = FileType(ACTIVE_TYPES[path], inline_image=False, label="")
            headers = [
                (n, v)
                for n, v in download_headers(name, worse, len(data))
                if n != b"Content-Disposition"
            ]
        self.send_response(200)
        for header, value in headers:
            self.send_header(header.decode(), value.decode())
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test reads FileServer.requested instead


@pytest.fixture(scope="module")
def file_server() -> Iterator[FileServer]:
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, name="file-server")
    thread.start()
    yield server
    server.shutdown()
    thread.join()
    server.server_close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(accept_downloads=True)
    context.set_default_timeout(TIMEOUT * 1000)
    yield context.new_page()
    context.close()


def watch_dialogs(page: Page) -> list[str]:
    dialogs: list[str] = []

    def dismissed(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismissed)
    return dialogs


@pytest.mark.parametrize("path", sorted(FILES))
def test_opening_a_shared_svg_or_html_file_downloads_it_and_runs_nothing(
    page: Page, file_server: FileServer, path: str, tmp_path: Path
) -> None:
    dialogs = watch_dialogs(page)
    with (
        page.expect_download() as started,
        pytest.raises(PlaywrightError, match="Download is starting"),  # not a page
    ):
        page.goto(file_server.origin + path)
    download = started.value
    saved = tmp_path / "saved"
    download.save_as(saved)
    name, data = FILES[path]
    assert download.suggested_filename == name
    assert saved.read_bytes() == data
    page.goto(file_server.origin + "/files/none")  # the page settles on a 404
    assert dialogs == []
    assert "/pwned" not in file_server.requested


@pytest.mark.parametrize("path", sorted(FILES))
def test_even_rendered_as_markup_the_sandbox_stops_the_script(
    page: Page, file_server: FileServer, path: str
) -> None:
    dialogs = watch_dialogs(page)
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(f"{file_server.origin}{path}?worst-case")
    page.wait_for_load_state("load")
    assert dialogs == []
    assert "/pwned" not in file_server.requested
    assert any(
        "sandboxed" in message or "Content Security Policy" in message for message in messages
    )
