"""Shared files in the browser (#27): a real Chromium, a real server with its files folder.

Alice attaches a PNG and a PDF with the attach button, pastes a screenshot and drops a
file on the conversation; Bob's page shows the image previews (blob: URLs fetched with a
ticket) and the file card, and both files download byte for byte. A refused upload says
why and keeps the text (the server's refusal, or a hello's max_file_size before any
ticket); a broken one can be retried; a cancelled one sends nothing; an image without a
thumbnail is a card; a preview's blob: URL is let go when its message leaves the screen.
"""

from __future__ import annotations

import base64
import io
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import BrowserContext, Locator, Page, Route, WebSocketRoute, expect

from tests.conftest import ServerFactory
from tests.eventually import eventually
from tests.test_web_browser import (  # noqa: F401 (fixtures)
    _create_from_the_join_form,
    _logged_in,
    _messages,
    browser,
    browser_home,
    playwright,
)

KiB = 1024
BLOB = re.compile(r"^blob:https://localhost:\d+/")
#: Whether a blob: URL still loads as an image (a revoked one does not; the page's CSP
#: allows blob: for images only, so fetch() cannot be the probe).
READABLE = """(url) => new Promise((resolve) => {
  const probe = new Image();
  probe.onload = () => resolve(true);
  probe.onerror = () => resolve(false);
  probe.src = url;
})"""
#: A screenshot pasted from the clipboard, as Chromium hands it to the page: a File named
#: "image.png" in a DataTransfer on a paste event.
PASTE_PNG = """
([data]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "image.png", { type: "image/png" }));
  const paste = new ClipboardEvent("paste", { clipboardData: transfer, bubbles: true, cancelable: true });
  document.getElementById("composer-input").dispatchEvent(paste);
}
"""


def _png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def _pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n" + secrets.token_bytes(3000)


@pytest.fixture
def alice(browser: BrowserContext) -> Iterator[Page]:  # noqa: F811
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def bob(browser: BrowserContext) -> Iterator[Page]:  # noqa: F811
    page = browser.new_page()
    yield page
    page.close()


def _attach(page: Page, *paths: Path) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_label("Attach a file").click()
    chooser.value.set_files([str(path) for path in paths])


def _download(page: Page, button: Locator, tmp_path: Path) -> bytes:
    with page.expect_download() as info:
        button.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    return saved.read_bytes()


def _blob_image(page: Page, alt: str) -> Locator:
    image = page.get_by_role("img", name=alt, exact=True).first
    expect(image).to_have_attribute("src", BLOB)
    return image


def test_browser_shares_an_image_a_pdf_and_a_pasted_screenshot(
    alice: Page, bob: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    web = server_factory(web_port=0)
    chart, report = tmp_path / "chart.png", tmp_path / "report.pdf"
    chart.write_bytes(_png(640, 480, (200, 30, 30)))
    report.write_bytes(_pdf())
    _logged_in(alice, web, "alice")
    _logged_in(bob, web, "bob")
    errors: list[str] = []
    bob.on("pageerror", lambda error: errors.append(str(error)))

    _attach(alice, chart, report)
    tray = alice.locator("#upload-tray li")
    expect(tray).to_have_count(2)
    expect(alice.locator('#upload-tray li[data-status="done"]')).to_have_count(2)
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("the quarterly report")
    composer.press("Enter")
    expect(tray).to_have_count(0)
    expect(composer).to_have_value("")

    sent = _messages(bob).filter(has_text="the quarterly report")
    expect(sent).to_have_count(1)
    expect(sent.locator(".body")).to_have_text("the quarterly report")  # no [file: …] lines
    preview = _blob_image(bob, "chart.png")
    assert preview.evaluate("img => img.naturalWidth") > 0
    card = sent.locator(".attachment.file", has_text="report.pdf")
    expect(card).to_contain_text("application/pdf")
    expect(card).to_contain_text("KiB")
    assert (
        _download(bob, card.get_by_role("button", name="Download report.pdf"), tmp_path / "bob-pdf")
        == report.read_bytes()
    )

    bob.get_by_role("button", name="Open chart.png").click()  # the full image, over the page
    viewer = bob.locator("dialog.image-viewer")
    full = viewer.locator("img.full-image")
    expect(full).to_have_attribute("src", BLOB)
    assert full.evaluate("img => img.naturalWidth") == 640
    downloaded = _download(
        bob, viewer.get_by_role("button", name="Download chart.png"), tmp_path / "bob-png"
    )
    assert downloaded == chart.read_bytes()
    bob.keyboard.press("Escape")
    expect(viewer).to_have_count(0)

    # Alice's own copy (from the ack) shows the same, without waiting for the server's echo.
    mine = _messages(alice).filter(has_text="the quarterly report")
    expect(mine.locator(".attachment.file", has_text="report.pdf")).to_have_count(1)
    _blob_image(alice, "chart.png")

    screenshot = _png(300, 200, (20, 120, 220))
    alice.get_by_label("Message", exact=True).focus()
    alice.evaluate(PASTE_PNG, [base64.b64encode(screenshot).decode()])
    expect(alice.locator('#upload-tray li[data-status="done"]')).to_have_count(1)
    expect(alice.locator("#upload-tray")).to_contain_text("Screenshot ")
    alice.get_by_role("button", name="Send").click()  # no caption: files alone are a message
    pasted = bob.locator("img.preview[alt^='Screenshot ']")
    expect(pasted).to_have_attribute("src", BLOB)
    assert pasted.evaluate("img => img.naturalWidth") > 0
    assert errors == []


def test_browser_says_why_an_upload_is_refused_and_keeps_the_text(
    alice: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    web = server_factory(web_port=0, max_file_size=64 * KiB)
    bob = web.login("bob")
    big = tmp_path / "big.bin"
    big.write_bytes(secrets.token_bytes(100 * KiB))
    _logged_in(alice, web, "alice")
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("this text stays")
    _attach(alice, big)
    failed = alice.locator('#upload-tray li[data-status="failed"]')
    expect(failed).to_contain_text("Not uploaded: too large")
    expect(failed).to_contain_text("64.0 KiB")
    expect(failed.get_by_role("button", name="Retry big.bin")).to_have_count(0)  # it would not help
    expect(composer).to_have_value("this text stays")
    failed.get_by_role("button", name="Remove big.bin").click()
    expect(alice.locator("#upload-tray")).to_be_hidden()
    composer.press("Enter")
    message = bob.expect("message", body="this text stays")
    assert "files" not in message


def test_browser_cancels_an_upload_and_sends_nothing_of_it(
    alice: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    web = server_factory(web_port=0)
    bob = web.login("bob")
    held: list[Route] = []
    alice.route("**/files", lambda route: held.append(route))  # the upload never completes
    slow = tmp_path / "slow.pdf"
    slow.write_bytes(_pdf())
    _logged_in(alice, web, "alice")
    _attach(alice, slow)
    uploading = alice.locator('#upload-tray li[data-status="uploading"]')
    expect(uploading).to_have_count(1)
    expect(uploading.get_by_role("progressbar", name="Uploading slow.pdf")).to_have_count(1)
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("after the cancel")
    composer.press("Enter")  # a send waits for its uploads
    expect(alice.locator("#composer-error")).to_contain_text("Wait for the upload to finish")
    uploading.get_by_role("button", name="Cancel slow.pdf").click()
    expect(alice.locator("#upload-tray")).to_be_hidden()
    composer.press("Enter")
    message = bob.expect("message", body="after the cancel")
    assert "files" not in message
    expect(_messages(alice).locator(".attachment")).to_have_count(0)


#: A file dropped on the conversation from the desktop, as Chromium hands it to the page.
DROP_FILE = """
([name, text]) => {
  const transfer = new DataTransfer();
  transfer.items.add(new File([text], name, { type: "text/plain" }));
  const list = document.getElementById("messages");
  const over = new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true });
  list.dispatchEvent(over);
  const drop = new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true });
  list.dispatchEvent(drop);
  return [over.defaultPrevented, drop.defaultPrevented];
}
"""


def test_browser_uploads_a_file_dropped_on_the_conversation(
    alice: Page, server_factory: ServerFactory
) -> None:
    web = server_factory(web_port=0)
    bob = web.login("bob")
    _logged_in(alice, web, "alice")
    handled = alice.evaluate(DROP_FILE, ["notes.txt", "minutes of the meeting\n"])
    assert handled == [True, True]  # the page takes the drop; the browser does not open it
    expect(alice.locator('#upload-tray li[data-status="done"]')).to_have_count(1)
    alice.get_by_label("Message", exact=True).fill("notes from today")
    alice.get_by_label("Message", exact=True).press("Enter")
    message = bob.expect("message", room="general")
    assert message["files"][0]["name"] == "notes.txt"
    assert message["body"].startswith("notes from today\n[file: notes.txt, ")
    card = _messages(alice).locator(".attachment.file", has_text="notes.txt")
    expect(card).to_contain_text("23 B")


def test_browser_shows_an_image_without_a_thumbnail_as_a_card_to_download(
    alice: Page, bob: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """A PNG the server cannot decode gets no thumbnail: the page falls back to its card."""
    web = server_factory(web_port=0)
    broken = tmp_path / "broken.png"
    broken.write_bytes(_png(400, 300, (0, 0, 0))[:200])  # the header, then nothing
    _logged_in(alice, web, "alice")
    _logged_in(bob, web, "bob")
    _attach(alice, broken)
    expect(alice.locator('#upload-tray li[data-status="done"]')).to_have_count(1)
    alice.get_by_label("Message", exact=True).press("Enter")
    card = _messages(bob).locator(".attachment.file", has_text="broken.png")
    expect(card).to_be_visible()
    expect(card).to_contain_text("image/png")
    expect(bob.get_by_role("button", name="Open broken.png")).to_be_hidden()
    button = card.get_by_role("button", name="Download broken.png")
    assert _download(bob, button, tmp_path / "bob") == broken.read_bytes()


def test_browser_checks_a_hellos_max_file_size_before_asking_for_a_ticket(
    alice: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    """The server's hello announces max_file_size: a larger file is refused at once."""
    web = server_factory(web_port=0, max_file_size=64 * KiB)
    sent: list[str] = []
    hellos: list[dict[str, object]] = []

    def announcing(socket: WebSocketRoute) -> None:  # passes every frame on, as it came
        server = socket.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and '"type":"hello"' in message:
                hellos.append(json.loads(message))
            socket.send(message)

        def from_page(message: str | bytes) -> None:
            sent.append(message if isinstance(message, str) else "")
            server.send(message)

        server.on_message(from_server)
        socket.on_message(from_page)

    alice.route_web_socket("**/ws", announcing)
    big = tmp_path / "big.bin"
    big.write_bytes(secrets.token_bytes(100 * KiB))
    _logged_in(alice, web, "alice")
    _attach(alice, big)
    failed = alice.locator('#upload-tray li[data-status="failed"]')
    expect(failed).to_contain_text(
        "the file is 100.0 KiB; this server takes files of up to 64.0 KiB"
    )
    assert not [frame for frame in sent if '"file_ticket"' in frame]
    assert [hello.get("max_file_size") for hello in hellos] == [64 * KiB]


def test_browser_retries_an_upload_whose_connection_broke(
    alice: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    web = server_factory(web_port=0)
    bob = web.login("bob")
    alice.route("**/files", lambda route: route.abort("connectionreset"))
    report = tmp_path / "report.pdf"
    report.write_bytes(_pdf())
    _logged_in(alice, web, "alice")
    _attach(alice, report)
    failed = alice.locator('#upload-tray li[data-status="failed"]')
    expect(failed).to_contain_text("Not uploaded: the connection to the server broke")
    alice.unroute("**/files")
    failed.get_by_role("button", name="Retry report.pdf").click()  # a new ticket, the same file
    expect(alice.locator('#upload-tray li[data-status="done"]')).to_have_count(1)
    alice.get_by_label("Message", exact=True).press("Enter")
    message = bob.expect("message", room="general")
    assert [file["name"] for file in message["files"]] == ["report.pdf"]
    assert message["files"][0]["size"] == report.stat().st_size


def test_browser_lets_go_of_a_preview_when_its_message_leaves_the_screen(
    alice: Page, server_factory: ServerFactory, tmp_path: Path
) -> None:
    web = server_factory(web_port=0)
    chart = tmp_path / "chart.png"
    chart.write_bytes(_png(64, 64, (10, 200, 10)))
    _logged_in(alice, web, "alice")
    _attach(alice, chart)
    expect(alice.locator('#upload-tray li[data-status="done"]')).to_have_count(1)
    alice.get_by_label("Message", exact=True).press("Enter")
    first = _blob_image(alice, "chart.png").get_attribute("src")
    assert first is not None
    assert alice.evaluate(READABLE, first) is True
    _create_from_the_join_form(alice, "elsewhere")  # another conversation: the item leaves
    expect(alice.get_by_role("img", name="chart.png")).to_have_count(0)
    eventually(
        lambda: alice.evaluate(READABLE, first) is False or None, "the preview's URL was revoked"
    )
    alice.locator('#room-list button[data-key="room:general"]').click()
    again = _blob_image(alice, "chart.png").get_attribute("src")  # fetched anew
    assert again != first
