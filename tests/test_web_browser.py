"""The browser client in a real Chromium against an in-process server on 127.0.0.1.

The browser trusts the test CA the way a colleague's would: it is imported into an NSS
database in a throwaway HOME, and certificate errors are never ignored. One browser
serves the whole module; each test gets its own server (so its own origin) and page.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    CHROMIUM,
    PASSWORD,
    TIMEOUT,
    WEB_OPENING_TIMEOUT,
    RunningServer,
    ServerFactory,
    browser_missing,
    skip_or_fail,
)
from tests.logs import logged
from tests.slapd import PASSWORDS, Slapd
from tests.sql import execute

if (missing := browser_missing()) is not None:
    skip_or_fail(missing)

from playwright.sync_api import (
    BrowserContext,
    Dialog,
    Locator,
    Page,
    Playwright,
    WebSocket,
    WebSocketRoute,
    expect,
    sync_playwright,
)

CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests run as root in a container
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Test-only instrumentation, injected by the test (the app calls nothing of it): counts
#: the notifications the page creates.
COUNT_NOTIFICATIONS = """
window.__notifications = [];
if (window.Notification) {
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notifications.push({ title, body: (options || {}).body });
    }
  };
  Object.defineProperty(window.Notification, "permission", { get: () => Real.permission });
  window.Notification.requestPermission = (...args) => Real.requestPermission(...args);
}
"""
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "web.png"
PHONE_SCREENSHOT = SCREENSHOT.with_name("web-phone.png")
#: The page's visibility as when another window covers it, and back (headless Chromium
#: shows every page): the test's stand-in for a user looking elsewhere.
HIDE_PAGE = """
Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
document.dispatchEvent(new Event("visibilitychange"));
"""
SHOW_PAGE = """
delete document.visibilityState;
document.dispatchEvent(new Event("visibilitychange"));
"""


@pytest.fixture(scope="module")
def browser_home(tmp_path_factory: pytest.TempPathFactory, certs_dir: Path) -> Path:
    """A HOME whose NSS database trusts the test CA, as `certutil` would set up a desktop."""
    home = tmp_path_factory.mktemp("browser-home")
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    database = f"sql:{nssdb}"
    subprocess.run(["certutil", "-d", database, "-N", "--empty-password"], check=True)
    subprocess.run(
        ["certutil", "-d", database, "-A", "-t", "C,,", "-n", "securechat-test",
         "-i", str(certs_dir / "ca.pem")],
        check=True,
    )  # fmt: skip
    return home


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(
    playwright: Playwright, browser_home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrowserContext]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        env={**os.environ, "HOME": str(browser_home)},
        viewport={"width": 1100, "height": 700},
    )
    context.add_init_script(COUNT_NOTIFICATIONS)
    context.set_default_timeout(TIMEOUT * 1000)
    # expect() has its own 5 s default, too short when two test workers fill both cores
    # (a search result list once took longer in a full run).
    expect.set_options(timeout=TIMEOUT * 1000)
    yield context
    context.close()


@pytest.fixture
def web(server_factory: ServerFactory) -> RunningServer:
    return server_factory(web_port=0)


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def dialogs(page: Page) -> list[str]:
    """The messages of the dialogs ``page`` opens, each dismissed."""
    opened: list[str] = []

    def dismiss(dialog: Dialog) -> None:
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    return opened


def _url(running: RunningServer) -> str:
    assert running.web_address is not None
    return f"https://localhost:{running.web_address[1]}/"


def _login(
    page: Page, running: RunningServer, user: str = "alice", password: str = PASSWORD
) -> None:
    page.goto(_url(running))
    page.fill("#login-user", user)
    page.fill("#login-password", password)
    page.press("#login-password", "Enter")


def _logged_in(page: Page, running: RunningServer, user: str = "alice") -> None:
    _login(page, running, user)
    expect(page.locator("#chat-view")).to_be_visible()
    expect(page.locator("#connection-status")).to_have_text("Online")


def _messages(page: Page) -> Locator:
    return page.locator("#messages li.message")


def _create_from_the_join_form(page: Page, room: str) -> None:
    """Join ``room`` by name; there is none, so the page asks, and the answer is yes."""
    page.fill("#join-room", room)
    page.press("#join-room", "Enter")
    page.get_by_role("button", name=f"Create #{room}").click()
    expect(page.locator("#conversation-title")).to_have_text(f"#{room}")


# --- tests ------------------------------------------------------------------------------


def test_browser_login_wrong_then_right_password(page: Page, web: RunningServer) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _login(page, web, password="not the password")
    expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
    expect(page.locator("#chat-view")).to_be_hidden()
    assert page.get_attribute("#login-user", "autocomplete") == "username"
    assert page.get_attribute("#login-password", "autocomplete") == "current-password"
    page.fill("#login-password", PASSWORD)
    page.press("#login-password", "Enter")
    expect(page.locator("#conversation-title")).to_have_text("#general")
    expect(page.locator("#whoami")).to_have_text("alice")
    assert errors == []


def test_browser_and_terminal_client_chat_both_ways(page: Page, web: RunningServer) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    composer = page.get_by_label("Message", exact=True)
    composer.fill("hello from the browser")
    composer.press("Enter")
    assert bob.expect("message", body="hello from the browser")["from"] == "alice"
    sent = _messages(page).filter(has_text="hello from the browser")
    expect(sent).to_have_attribute("data-status", "sent")
    composer.fill("two\nlines")  # Shift+Enter's result: a newline stays in the body
    composer.press("Shift+Enter")
    expect(composer).to_have_value("two\nlines\n")
    composer.press("Enter")
    assert bob.expect("message", room="general")["body"] == "two\nlines\n"
    bob.send(type="send", room="general", body="hello from the terminal", ref="t1")
    expect(_messages(page).filter(has_text="hello from the terminal")).to_have_count(1)
    other_session = web.login("alice")  # joins a room elsewhere: the page lists it too
    other_session.send(type="join", room="elsewhere", ref="j")
    other_session.expect("joined", ref="j")
    expect(page.locator('#room-list button[data-key="room:elsewhere"]')).to_have_count(1)
    page.locator('#online-list button[data-user="bob"]').click()  # a DM from the online list
    expect(page.locator("#conversation-title")).to_have_text("bob")
    composer.fill("just between us")
    composer.press("Enter")
    assert bob.expect("message", body="just between us")["to"] == "bob"


def test_browser_puts_a_message_refused_as_too_long_back_in_the_composer(
    page: Page, server_factory: ServerFactory
) -> None:
    web = server_factory(web_port=0, max_body=20)

    def older_server(socket: WebSocketRoute) -> None:  # a hello without max_body
        server = socket.connect_to_server()

        def from_server(message: str | bytes) -> None:
            if isinstance(message, str) and '"type":"hello"' in message:
                hello = json.loads(message)
                del hello["max_body"]
                message = json.dumps(hello)
            socket.send(message)

        server.on_message(from_server)

    page.route_web_socket("**/ws", older_server)
    _logged_in(page, web)
    composer = page.get_by_label("Message", exact=True)
    composer.fill("this message is longer than twenty characters")
    composer.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("longer than 20 characters")
    expect(composer).to_have_value("this message is longer than twenty characters")
    expect(_messages(page)).to_have_count(0)  # no failed copy under every newer message
    composer.fill("short one")
    composer.press("Enter")
    expect(_messages(page).filter(has_text="short one")).to_have_attribute("data-status", "sent")


def test_browser_keeps_a_10000_character_message_in_the_growing_composer(
    page: Page, web: RunningServer
) -> None:
    _logged_in(page, web)
    composer = page.get_by_label("Message", exact=True)
    before = composer.bounding_box()
    text = "\n".join("x" * 99 for _ in range(100)) + "!"
    assert len(text) == 10_000
    composer.fill(text)
    grown = composer.bounding_box()
    assert before is not None
    assert grown is not None
    assert grown["height"] > before["height"] * 3  # grows with its content...
    assert grown["height"] <= 700 * 0.4 + 4  # ...up to 40 % of the window, then scrolls
    composer.press("Enter")  # the hello's max_body: checked before anything is sent
    expect(page.locator("#composer-error")).to_contain_text("the limit is 4,000 characters")
    expect(composer).to_have_value(text)
    expect(_messages(page)).to_have_count(0)


def test_browser_checks_the_hellos_frame_limit_before_sending(
    page: Page, server_factory: ServerFactory
) -> None:
    web = server_factory(web_port=0, max_frame=16384, max_body=100_000)
    sent: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on(
            "framesent", lambda payload: sent.append(payload if isinstance(payload, str) else "")
        ),
    )
    _logged_in(page, web)
    composer = page.get_by_label("Message", exact=True)
    counter = page.locator("#composer-counter")
    expect(counter).to_be_hidden()
    composer.fill("x" * 15_000)
    expect(counter).to_be_visible()
    expect(counter).to_contain_text("bytes left")
    composer.fill("x" * 17_000)
    expect(counter).to_contain_text("bytes too long")
    composer.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("Too long to send")
    expect(composer).to_have_value("x" * 17_000)
    assert not [frame for frame in sent if '"type":"send"' in frame]
    composer.fill("fits")
    composer.press("Enter")
    expect(_messages(page).filter(has_text="fits")).to_have_attribute("data-status", "sent")
    expect(page.locator("#connection-status")).to_have_text("Online")


def test_browser_uses_max_body_when_the_hello_announces_it(
    page: Page, server_factory: ServerFactory
) -> None:
    """The server's hello says max_body: the composer checks it, in characters, before
    anything is sent."""
    web = server_factory(web_port=0, max_body=60)
    _logged_in(page, web)
    composer = page.get_by_label("Message", exact=True)
    counter = page.locator("#composer-counter")
    composer.fill("x" * 10)
    expect(counter).to_have_text("50 characters left")
    composer.fill("😀" * 61)  # characters as the server counts them, not UTF-16 units
    expect(counter).to_have_text("1 character too long")
    composer.press("Enter")
    expect(page.locator("#composer-error")).to_contain_text("the limit is 60 characters")
    expect(composer).to_have_value("😀" * 61)
    composer.fill("😀" * 60)
    composer.press("Enter")
    expect(_messages(page).filter(has_text="😀" * 60)).to_have_attribute("data-status", "sent")


def test_browser_failed_message_can_be_dismissed_edited_or_retried(
    page: Page, web: RunningServer
) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    bob.send(type="create", room="quiet", ref="c")
    bob.expect("joined", ref="c")
    bob.send(type="moderate", room="quiet", action="invite", user="alice", ref="i")
    bob.expect("done", ref="i")
    _type(page, "/join quiet")
    expect(page.locator("#conversation-title")).to_have_text("#quiet")
    bob.send(type="moderate", room="quiet", action="mute", user="alice", ref="m")
    bob.expect("done", ref="m")
    expect(page.locator("#messages li.system").last).to_have_text("bob muted you")
    composer = page.get_by_label("Message", exact=True)
    _type(page, "first try")
    first = _messages(page).filter(has_text="first try")
    expect(first).to_have_attribute("data-status", "failed")
    expect(first.locator(".reason")).to_have_text("you are muted in #quiet")
    first.get_by_role("button", name="Dismiss your failed message “first try”").click()
    expect(first).to_have_count(0)
    _type(page, "second try")
    second = _messages(page).filter(has_text="second try")
    second.get_by_role("button", name="Edit your failed message “second try”").click()
    expect(second).to_have_count(0)
    expect(composer).to_have_value("second try")
    expect(composer).to_be_focused()
    composer.press("Enter")
    expect(second).to_have_attribute("data-status", "failed")
    bob.send(type="moderate", room="quiet", action="unmute", user="alice", ref="u")
    bob.expect("done", ref="u")
    second.get_by_role("button", name="Retry your failed message “second try”").click()
    expect(second).to_have_attribute("data-status", "sent")
    expect(second).to_have_count(1)
    assert bob.expect("message", room="quiet")["body"] == "second try"


def test_browser_direct_message_notifies_and_counts_unread(
    page: Page, browser: BrowserContext, web: RunningServer
) -> None:
    browser.grant_permissions(["notifications"], origin=_url(web).rstrip("/"))
    _logged_in(page, web)
    bob = web.login("bob")
    expect(page.locator("#online-list")).to_contain_text("bob")
    bob.send(type="send", to="alice", body="psst, alice", ref="d1")
    bob.expect("ack", ref="d1")
    dm = page.locator('#dm-list button[data-key="dm:bob"]')
    expect(dm.locator(".badge")).to_have_text("1")
    page.wait_for_function("window.__notifications.length === 1")
    assert page.evaluate("window.__notifications") == [{"title": "bob", "body": "psst, alice"}]
    bob.send(type="send", room="general", body="no mention here", ref="g1")
    bob.send(type="send", room="general", body="hey @alice look", ref="g2")
    expect(_messages(page).filter(has_text="hey @alice look")).to_have_count(1)
    page.wait_for_timeout(200)
    # In view and visible: neither the room message nor the mention notifies.
    assert len(page.evaluate("window.__notifications")) == 1
    _create_from_the_join_form(page, "dev")
    bob.send(type="send", room="general", body="@alice lunch?", ref="g3")
    expect(_badge(page, "room:general", "mention")).to_have_text("@1")
    # Not in view: the mention notifies (the page notifies before it draws the badge).
    assert page.evaluate("window.__notifications")[1:] == [
        {"title": "bob in #general", "body": "@alice lunch?"}
    ]
    dm.click()
    expect(page.locator("#conversation-title")).to_have_text("bob")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    expect(dm.locator(".badge")).to_have_count(0)
    expect(_messages(page).filter(has_text="psst, alice")).to_have_count(1)
    page.get_by_label("Message", exact=True).fill("hi bob")
    page.get_by_label("Message", exact=True).press("Enter")
    assert bob.expect("message", body="hi bob")["to"] == "bob"


def test_browser_asks_notification_permission_only_on_a_click(
    page: Page, web: RunningServer
) -> None:
    page.add_init_script(
        "window.__asked = 0; const ask = Notification.requestPermission;"
        "Notification.requestPermission = (...a) => { window.__asked++; return ask(...a); };"
    )
    _logged_in(page, web)
    assert page.evaluate("window.__asked") == 0
    expect(page.locator("#notify-button")).to_be_visible()
    page.click("#notify-button")
    page.wait_for_function("window.__asked === 1")


def test_browser_history_loads_older_pages_on_scroll(page: Page, web: RunningServer) -> None:
    bob = web.login("bob")
    count = 130
    for n in range(count):
        bob.send(type="send", room="general", body=f"old message {n:03d}", ref=f"h{n}")
    bob.expect("ack", ref=f"h{count - 1}")
    _logged_in(page, web)
    expect(page.locator("#messages li.system").last).to_have_text("You joined #general")
    expect(_messages(page).last).to_contain_text("old message 129")
    # A page is 50 items: her join is the newest, then 49 messages.
    expect(_messages(page).last).to_have_attribute("aria-setsize", "50")
    for expected, oldest in ((100, 81), (132, 31)):  # 130 messages, bob's and her joins
        page.locator("#messages").evaluate("list => list.scrollTo(0, 0)")
        expect(_messages(page).last).to_have_attribute("aria-setsize", str(expected))
        # The page came in above the reader, who still reads what was at the top.
        expect(_messages(page).filter(has_text=f"old message {oldest:03d}")).to_be_in_viewport()
    page.locator("#messages").evaluate("list => list.scrollTo(0, 0)")
    expect(_messages(page).first).to_contain_text("old message 000")
    expect(_messages(page).first).to_be_in_viewport()
    expect(page.locator("#messages .older")).to_have_text("Start of the conversation")


def test_browser_opens_at_the_first_unread_and_loads_newer_pages_on_scroll(
    page: Page, web: RunningServer
) -> None:
    bob, alice = web.login("bob"), web.login("alice")  # joined (room events) before...
    alice.send(type="join", room="general", ref="j")  # ...the messages: pages of 50 of them
    alice.expect("joined", ref="j")
    count = 70
    for n in range(count):
        bob.send(type="send", room="general", body=f"unread {n:02d}", ref=f"u{n}")
    bob.expect("ack", ref=f"u{count - 1}")
    _logged_in(page, web)
    expect(page.locator("#messages li.divider + li")).to_contain_text("unread 00")
    expect(page.locator("#messages li.divider")).to_be_in_viewport()
    expect(_messages(page).first).to_have_attribute("aria-setsize", "52")  # and two joins
    # Read up to what came into view: not the 50 loaded, not nothing.
    page.wait_for_function(
        """() => {
          const badge = document.querySelector('#sidebar button[data-key="room:general"] .badge.unread');
          const left = badge === null ? 0 : Number(badge.textContent);
          return left > 20 && left < 70;
        }"""
    )
    page.locator("#messages").evaluate("list => list.scrollTo(0, list.scrollHeight)")
    expect(_messages(page).last).to_have_attribute("aria-setsize", str(count + 2))
    expect(_messages(page).last).to_contain_text("unread 69")
    expect(_badge(page, "room:general")).to_have_count(0)
    alice.send(type="unread", ref="u")
    assert alice.expect("unread", ref="u")["conversations"] == []


def test_browser_catches_up_once_after_a_server_restart(
    page: Page, web: RunningServer, server_factory: ServerFactory
) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    bob.send(type="send", room="general", body="before the restart", ref="r1")
    expect(_messages(page).filter(has_text="before the restart")).to_have_count(1)
    expect(page.locator('#online-list button[data-user="bob"]')).to_have_count(1)
    web.server.shutdown()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#online-list")).to_have_text("The server cannot be reached right now.")
    composer = page.get_by_label("Message", exact=True)
    composer.fill("typed while the server was down")
    composer.press("Enter")
    pending = _messages(page).filter(has_text="typed while the server was down")
    expect(pending).to_have_attribute("data-status", "sending")
    assert web.web_address is not None
    again = server_factory(port=web.address[1], web_port=web.web_address[1])
    carol = again.login("carol")
    carol.send(type="send", room="general", body="during the reconnect", ref="c1")
    expect(page.locator("#connection-status")).to_have_text("Online", timeout=30_000)
    expect(pending).to_have_attribute("data-status", "sent")
    expect(_messages(page).filter(has_text="during the reconnect")).to_have_count(1)
    expect(page.locator('#online-list button[data-user="carol"]')).to_have_count(1)
    carol.send(type="history", room="general", ref="h")
    stored = [m["body"] for m in carol.expect("history", ref="h")["messages"]]
    assert stored.count("typed while the server was down") == 1
    page.wait_for_timeout(300)  # any duplicate from the catch-up would be in by now
    for body in ("before the restart", "during the reconnect", "typed while the server was down"):
        expect(_messages(page).filter(has_text=body)).to_have_count(1)
    ids = _messages(page).evaluate_all("items => items.map(i => i.dataset.id)")
    assert len(ids) == len(set(ids))


def test_browser_shows_markup_from_the_wire_as_text(
    page: Page, web: RunningServer, dialogs: list[str]
) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    payloads = [
        "<img src=x onerror=alert(1)>",
        "<script>alert(2)</script>",
        '"><svg onload=alert(3)>',
    ]
    for n, body in enumerate(payloads):
        bob.send(type="send", room="general", body=body, ref=f"x{n}")
    for body in payloads:
        expect(_messages(page).locator(".body", has_text=body)).to_have_text(body)
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("#messages img, #messages script, #messages svg").count() == 0


def test_browser_renders_markdown_as_nodes_with_safe_links_only(
    page: Page, web: RunningServer, dialogs: list[str]
) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    body = (
        "**Deploy** at *five*, see [the runbook](https://example.org/runbook) or "
        "[this](javascript:alert(1)) and `make check`:\n"
        "```\nsecurechat serve --config /etc/securechat.toml\n```\n"
        "> quoted <b>not bold</b>\n\n- one\n- two"
    )
    bob.send(type="send", room="general", body=body, ref="md")
    item = page.locator(f'#messages li[data-id="{bob.expect("ack", ref="md")["id"]}"] .body')
    expect(item.locator("strong")).to_have_text("Deploy")
    expect(item.locator("em")).to_have_text("five")
    code = item.locator("pre > code")
    expect(code).to_have_text("securechat serve --config /etc/securechat.toml\n")
    assert "monospace" in code.evaluate("node => getComputedStyle(node).fontFamily")
    expect(item.locator("p > code")).to_have_text("make check")
    link = item.locator("a")
    expect(link).to_have_count(1)  # the javascript: one is no link
    expect(link).to_have_attribute("href", "https://example.org/runbook")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(item).to_contain_text("[this](javascript:alert(1))")
    expect(item.locator("blockquote")).to_have_text("quoted <b>not bold</b>")
    expect(item.locator("b")).to_have_count(0)
    expect(item.locator("ul > li")).to_have_text(["one", "two"])
    page.wait_for_timeout(300)
    assert dialogs == []


def test_browser_works_from_the_keyboard_at_360_px(
    browser: BrowserContext, web: RunningServer
) -> None:
    page = browser.new_page()
    try:
        page.set_viewport_size({"width": 360, "height": 640})
        page.goto(_url(web))
        page.keyboard.press("Tab")
        page.keyboard.type("alice")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#conversation-title")).to_have_text("#general")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        toggle = page.locator("#menu-toggle")
        expect(toggle).to_be_visible()
        toggle.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#sidebar")).to_be_visible()
        expect(page.locator('#room-list button[data-key="room:general"]')).to_be_focused()
        page.keyboard.press("Escape")
        expect(page.locator("#sidebar")).to_be_hidden()
        expect(toggle).to_be_focused()
        toggle.press("Enter")
        page.fill("#join-room", "dev")
        page.press("#join-room", "Enter")  # no #dev: the page asks, the answer is focused
        expect(page.locator("#create-yes")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#conversation-title")).to_have_text("#dev")
        expect(page.locator("#sidebar")).to_be_hidden()
        page.keyboard.type("a message of mine,")
        page.keyboard.press("Enter")  # on a phone, Enter is a new line...
        page.keyboard.type("with its Edit and Delete buttons")
        expect(page.locator("#composer-input")).to_have_value(
            "a message of mine,\nwith its Edit and Delete buttons"
        )
        page.keyboard.press("Tab")  # ...and the Send button sends
        expect(page.locator("#composer-send")).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("#composer-input")).to_have_value("")
        page.keyboard.press("Shift+Tab")
        edit = _messages(page).get_by_role("button", name=re.compile(r"^Edit your message from "))
        expect(edit).to_have_count(1)
        page.keyboard.press("ArrowUp")
        expect(page.locator("#edit-bar")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        page.close()


def test_browser_reopens_the_last_room_after_login(page: Page, web: RunningServer) -> None:
    _logged_in(page, web)
    _create_from_the_join_form(page, "dev")
    page.click("#logout-button")
    expect(page.locator("#login-view")).to_be_visible()
    _logged_in(page, web)
    expect(page.locator("#conversation-title")).to_have_text("#dev")


def test_browser_log_out_revokes_the_sessions_token(
    page: Page, web: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/security.md: "Log out" says bye, and the server revokes that session's token."""
    caplog.set_level(logging.INFO, logger="securechat.server")
    tokens: list[str] = []

    def watch(socket: WebSocket) -> None:
        def received(payload: str | bytes) -> None:
            if isinstance(payload, str) and '"type":"welcome"' in payload:
                tokens.append(str(json.loads(payload)["token"]))

        socket.on("framereceived", received)

    page.on("websocket", watch)
    _logged_in(page, web)
    assert len(tokens) == 1
    page.click("#logout-button")
    expect(page.locator("#login-view")).to_be_visible()
    # The revocation is the server's answer to bye, before it logs the session's end.
    ended = logged(caplog, r"^disconnect alice\b", timeout=WEB_OPENING_TIMEOUT)
    assert ended.getMessage().endswith(": client said bye"), ended.getMessage()
    assert len(tokens) == 1, "the page logged in again before logging out"
    peer = web.peer()
    peer.send(type="auth", user="alice", token=tokens[0])
    reply = peer.recv()
    if reply["type"] == "hello":
        reply = peer.recv()
    assert (reply["type"], reply.get("code")) == ("error", "auth_failed"), reply


def test_browser_page_runs_under_its_csp_without_violations(page: Page, web: RunningServer) -> None:
    page.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__violations.push(e.violatedDirective));"
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    _logged_in(page, web)
    assert page.evaluate("window.__violations") == []
    assert errors == []


def _badge(page: Page, key: str, kind: str = "unread") -> Locator:
    return page.locator(f'#sidebar button[data-key="{key}"] .badge.{kind}')


def _type(page: Page, text: str) -> None:
    composer = page.get_by_label("Message", exact=True)
    composer.fill(text)
    composer.press("Enter")


def test_browser_unread_kept_by_the_server_and_read_on_one_session_clears_another(
    page: Page, web: RunningServer
) -> None:
    carol = web.login("carol")
    carol.send(type="send", to="dave", body="welcome aboard, dave", ref="d1")
    carol.expect("ack", ref="d1")  # dave has never logged in
    elsewhere = web.login("dave")  # dave's terminal, in #dev before it gets busy
    for peer in (elsewhere, carol):
        peer.send(type="join", room="dev", ref="j")
        peer.expect("joined", ref="j")
    for n, body in enumerate(["first unread", "second", "@dave can you look?"]):
        carol.send(type="send", room="dev", body=body, ref=f"m{n}")
    newest = carol.expect("ack", ref="m2")["id"]
    _logged_in(page, web, "dave")
    expect(_badge(page, "dm:carol")).to_have_text("1")
    expect(_badge(page, "room:dev")).to_have_text("3")
    expect(_badge(page, "room:dev", "mention")).to_have_text("@1")
    expect(page.locator("#conversation-title")).to_have_text("#general")
    page.locator('#room-list button[data-key="room:dev"]').click()
    expect(page.locator("#messages li.divider")).to_have_text("New messages")
    expect(page.locator("#messages li.divider + li")).to_contain_text("first unread")
    expect(_badge(page, "room:dev")).to_have_count(0)
    expect(_badge(page, "room:dev", "mention")).to_have_count(0)
    assert elsewhere.expect("read", room="dev")["id"] == newest  # read here: read there
    carol.send(type="send", to="dave", body="still there?", ref="d2")
    latest = carol.expect("ack", ref="d2")["id"]
    expect(_badge(page, "dm:carol")).to_have_text("2")
    elsewhere.send(type="read", **{"with": "carol"}, id=latest, ref="r")
    elsewhere.expect("read", ref="r")
    expect(_badge(page, "dm:carol")).to_have_count(0)  # read there: read here
    expect(page).to_have_title("securechat")
    # Another window in front: what arrives in #dev is not read until the page is seen.
    page.evaluate(HIDE_PAGE)
    carol.send(type="send", room="dev", body="while you were away", ref="m3")
    away = carol.expect("ack", ref="m3")["id"]
    expect(_badge(page, "room:dev")).to_have_text("1")
    expect(page.locator("#messages li.divider + li")).to_contain_text("while you were away")
    page.evaluate(SHOW_PAGE)
    assert elsewhere.expect("read", room="dev")["id"] == away
    expect(_badge(page, "room:dev")).to_have_count(0)


def test_browser_edits_and_deletes_live_both_ways(page: Page, web: RunningServer) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    composer = page.get_by_label("Message", exact=True)
    _type(page, "a mesage with a typo")
    target = bob.expect("message", body="a mesage with a typo")["id"]
    composer.press("ArrowUp")  # in an empty composer: edit the last message of mine
    expect(page.locator("#edit-bar")).to_be_visible()
    expect(composer).to_have_value("a mesage with a typo")
    page.locator("#messages").focus()  # Escape elsewhere on the page ends the edit too
    page.keyboard.press("Escape")
    expect(page.locator("#edit-bar")).to_be_hidden()
    expect(composer).to_have_value("")
    expect(composer).to_be_focused()
    composer.press("ArrowUp")
    composer.fill("a message, fixed")
    composer.press("Enter")
    assert bob.expect("edited", target=target)["body"] == "a message, fixed"
    mine = page.locator(f'#messages li[data-id="{target}"]')
    expect(mine.locator(".body")).to_have_text("a message, fixed")
    expect(mine.locator(".edited")).to_have_text("(edited)")
    mine.get_by_role("button", name=re.compile(r"^Delete your message from .*fixed”$")).click()
    confirm = mine.get_by_role("button", name=re.compile(r"^Yes, delete your message"))
    expect(confirm).to_be_focused()
    page.keyboard.press("Enter")
    assert bob.expect("deleted", target=target)["by"] == "alice"
    expect(mine.locator(".body")).to_have_text("message deleted")
    expect(mine.get_by_role("button")).to_have_count(0)
    bob.send(type="send", room="general", body="bob says hi", ref="b1")
    theirs_id = bob.expect("ack", ref="b1")["id"]
    theirs = page.locator(f'#messages li[data-id="{theirs_id}"]')
    expect(theirs.locator(".body")).to_have_text("bob says hi")
    expect(theirs.get_by_role("button")).to_have_count(0)  # not ours, not our room to run
    bob.send(type="edit", id=theirs_id, body="bob says hello", ref="e1")
    expect(theirs.locator(".body")).to_have_text("bob says hello")
    expect(theirs.locator(".edited")).to_have_text("(edited)")
    bob.send(type="delete", id=theirs_id, ref="x1")
    expect(theirs.locator(".body")).to_have_text("message deleted")
    bob.send(type="send", to="alice", body="oops, not for you", ref="b2")
    unsent_id = bob.expect("ack", ref="b2")["id"]
    expect(_badge(page, "dm:bob")).to_have_text("1")
    bob.send(type="delete", id=unsent_id, ref="x2")
    expect(_badge(page, "dm:bob")).to_have_count(0)  # a deleted message is not unread
    page.reload()  # history shows them the same way
    _logged_in(page, web)
    expect(page.locator(f'#messages li[data-id="{theirs_id}"] .body')).to_have_text(
        "message deleted"
    )
    expect(page.locator(f'#messages li[data-id="{target}"] .body')).to_have_text("message deleted")


def test_browser_moderates_with_slash_commands_and_shows_room_events(
    page: Page, web: RunningServer
) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    _type(page, "/create ops private")
    expect(page.locator("#conversation-title")).to_have_text("#ops")
    expect(page.locator("#conversation-private")).to_be_visible()
    _type(page, "/invite bob")
    bob.expect("room_event", room="ops", action="invite", user="bob")
    expect(page.locator("#messages li.system").last).to_have_text("You invited bob")
    bob.send(type="join", room="ops", ref="j")
    bob.expect("joined", ref="j")
    _type(page, "/topic deploys at 17:00")
    expect(page.locator("#conversation-topic")).to_have_text("deploys at 17:00")
    expect(page.locator("#messages li.system").last).to_have_text(
        "topic changed to “deploys at 17:00” by you"
    )
    bob.send(type="send", room="ops", body="oops, wrong room", ref="w")
    wrong = page.locator(f'#messages li[data-id="{bob.expect("ack", ref="w")["id"]}"]')
    # The owner deletes others' messages.
    wrong.get_by_role("button", name=re.compile(r"^Delete bob's message from ")).click()
    wrong.get_by_role("button", name=re.compile(r"^Yes, delete bob's message")).click()
    expect(wrong.locator(".body")).to_have_text("message deleted")
    _type(page, "/kick bob")
    bob.expect("left", room="ops")
    expect(page.locator("#messages li.system").last).to_have_text("You kicked bob")
    page.fill("#join-room", "lounge")  # the sidebar's form creates rooms too, public unless ticked
    page.get_by_role("button", name="Create").click()
    expect(page.locator("#conversation-title")).to_have_text("#lounge")
    expect(page.locator("#conversation-private")).to_be_hidden()
    _type(page, "/kick")
    expect(page.locator("#composer-error")).to_have_text("usage: /kick USER")
    page.locator('#room-list button[data-key="room:general"]').click()
    _type(page, "/kick bob")  # #general has no owner: the server refuses
    expect(page.locator("#composer-error")).to_have_text("only moderators of #general can kick")
    bob.send(type="create", room="quiet", ref="c")
    bob.expect("joined", ref="c")
    bob.send(type="moderate", room="quiet", action="invite", user="alice", ref="i")
    bob.expect("done", ref="i")
    _type(page, "/join quiet")
    expect(page.locator("#conversation-title")).to_have_text("#quiet")
    bob.send(type="moderate", room="quiet", action="mute", user="alice", ref="m")
    bob.expect("done", ref="m")
    expect(page.locator("#messages li.system").last).to_have_text("bob muted you")
    _type(page, "may I speak?")
    expect(_messages(page).filter(has_text="may I speak?")).to_have_attribute(
        "data-status", "failed"
    )
    expect(page.locator("#composer-error")).to_have_text("Not sent: you are muted in #quiet")
    bob.send(type="moderate", room="quiet", action="ban", user="alice", ref="b")
    bob.expect("done", ref="b")
    expect(page.locator("#notice")).to_have_text("You are no longer in #quiet: bob banned you.")
    expect(page.locator('#room-list button[data-key="room:quiet"]')).to_have_count(0)
    expect(page.locator("#conversation-title")).to_have_text("#general")


def test_browser_marks_read_only_what_was_seen_and_jumps_down_with_the_pill(
    page: Page, web: RunningServer
) -> None:
    bob = web.login("bob")
    for n in range(40):
        bob.send(type="send", room="general", body=f"earlier {n:02d}", ref=f"e{n}")
    bob.expect("ack", ref="e39")
    _logged_in(page, web)
    expect(_messages(page).last).to_contain_text("earlier 39")
    expect(_messages(page).last).to_have_attribute("aria-setsize", "42")  # and two joins
    elsewhere = web.login("alice")  # alice's terminal: hears her read markers
    page.locator("#messages").evaluate("list => list.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # a read marker after scrolling would be on its way by now
    for n in range(3):
        bob.send(type="send", room="general", body=f"while scrolled up {n}", ref=f"s{n}")
    newest = bob.expect("ack", ref="s2")["id"]
    # Below the window (only a spacer stands for them): counted, not shown, not read.
    expect(_messages(page).first).to_have_attribute("aria-setsize", "45")
    expect(_messages(page).first).to_contain_text("earlier 00")
    expect(_messages(page).first).to_be_in_viewport()
    pill = page.locator("#new-pill")
    expect(pill).to_have_text("3 new messages ↓")
    expect(_badge(page, "room:general")).to_have_text("3")
    page.wait_for_timeout(500)
    elsewhere.send(type="unread", ref="u")
    (general,) = elsewhere.expect("unread", ref="u")["conversations"]
    assert (general["room"], general["count"]) == ("general", 3)  # nothing marked read
    pill.click()
    expect(_messages(page).last).to_be_in_viewport()
    expect(_messages(page).last).to_contain_text("while scrolled up 2")
    expect(page.locator("#messages li.divider + li")).to_contain_text("while scrolled up 0")
    assert elsewhere.expect("read", room="general")["id"] == newest
    expect(pill).to_be_hidden()
    expect(_badge(page, "room:general")).to_have_count(0)
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


def test_browser_message_buttons_have_unique_labels_and_escape_keeps_the_message(
    page: Page, web: RunningServer
) -> None:
    _logged_in(page, web)
    bob = web.login("bob")
    _type(page, "/create ops")
    expect(page.locator("#conversation-title")).to_have_text("#ops")
    bob.send(type="join", room="ops", ref="j")
    bob.expect("joined", ref="j")
    for n, body in enumerate(["same words", "same words", "other words"]):
        bob.send(type="send", room="ops", body=body, ref=f"b{n}")
    bob.expect("ack", ref="b2")
    _type(page, "mine, once")
    _type(page, "mine, twice")
    expect(_messages(page)).to_have_count(5)
    expect(_messages(page).last).to_have_attribute("data-status", "sent")
    labels = page.locator("#messages button").evaluate_all(
        "buttons => buttons.map(b => b.getAttribute('aria-label'))"
    )
    assert len(labels) == 7, labels  # delete on bob's three, edit and delete on two of mine
    assert len(set(labels)) == len(labels), labels
    assert any(
        re.fullmatch(r"Delete bob's message from \d\d:\d\d.*, “other words”", x) for x in labels
    )
    assert any(
        re.fullmatch(r"Delete bob's message from \d\d:\d\d.*, “same words” \(2\)", x)
        for x in labels
    )
    target = _messages(page).filter(has_text="other words")
    target.get_by_role("button", name=re.compile(r"^Delete bob's message")).click()
    keep = target.get_by_role("button", name=re.compile(r"^Keep bob's message"))
    expect(keep).to_be_visible()
    page.keyboard.press("Escape")  # the question closes, the message stays
    expect(keep).to_have_count(0)
    expect(target.locator(".body")).to_have_text("other words")
    expect(page.get_by_label("Message", exact=True)).to_be_focused()


def _day_label(day: datetime.date) -> str:
    """What timeline.js calls a day that is neither today nor yesterday (in English)."""
    label = f"{day:%a} {day.day} {day:%b}"
    return label if day.year == datetime.date.today().year else f"{label} {day.year}"


def test_browser_separates_days_and_groups_one_senders_messages(
    page: Page, web: RunningServer, db_url: str
) -> None:
    bob, carol = web.login("bob"), web.login("carol")
    ids: dict[str, int] = {}
    for peer, body in [
        (bob, "three days ago"), (bob, "and a minute later"), (bob, "yesterday"),
        (bob, "this morning"), (bob, "right after"), (carol, "carol's turn"),
    ]:  # fmt: skip
        peer.send(type="send", room="general", body=body, ref=body)
        ids[body] = peer.expect("ack", ref=body)["id"]
    carol.send(type="join", room="dev", ref="j")
    carol.expect("joined", ref="j")
    day_ms = 24 * 3600 * 1000
    execute(  # bob's and carol's joins (room events) came first
        db_url, "UPDATE messages SET ts_ms = ts_ms - :d WHERE kind = 'event'", d=3 * day_ms
    )
    for body, days in [("three days ago", 3), ("and a minute later", 3), ("yesterday", 1)]:
        execute(
            db_url,
            "UPDATE messages SET ts_ms = ts_ms - :d WHERE id = :id",
            d=days * day_ms,
            id=ids[body],
        )
    _logged_in(page, web)

    def item(body: str) -> Locator:
        return page.locator(f'#messages li[data-id="{ids[body]}"]')

    expect(item("carol's turn")).to_be_visible()
    three_days_ago = datetime.date.today() - datetime.timedelta(days=3)
    expect(page.locator("#messages li.day")).to_have_text(
        [_day_label(three_days_ago), "Yesterday", "Today"]
    )
    expect(page.locator("#messages li.day").first).to_have_attribute("role", "separator")
    expect(item("three days ago")).not_to_have_class(re.compile(r"\bcontinued\b"))
    expect(item("and a minute later")).to_have_class(re.compile(r"\bcontinued\b"))
    expect(item("yesterday")).not_to_have_class(re.compile(r"\bcontinued\b"))  # another day
    expect(item("right after")).to_have_class(re.compile(r"\bcontinued\b"))
    expect(item("carol's turn")).not_to_have_class(re.compile(r"\bcontinued\b"))
    title = item("three days ago").locator("time").get_attribute("title") or ""
    assert str(three_days_ago.year) in title, title
    assert re.search(r"\d{1,2}:\d{2}:\d{2}", title), title  # the time to the second
    _type(page, "my own")
    mine = _messages(page).filter(has_text="my own")
    expect(mine).to_have_attribute("data-status", "sent")
    expect(mine.locator(".status")).to_have_count(0)  # "sent" is not said; pending would be
    page.fill("#join-room", "dev")  # carol's: joined at once
    page.press("#join-room", "Enter")
    expect(page.locator("#conversation-title")).to_have_text("#dev")
    page.locator('#room-list button[data-key="room:general"]').click()
    carol.send(type="send", room="dev", body="unread in #dev", ref="dev2")
    dev = page.locator('#room-list button[data-key="room:dev"]')
    expect(dev).to_have_class(re.compile(r"\bhas-unread\b"))
    assert dev.evaluate("node => getComputedStyle(node).fontWeight") == "700"
    general = page.locator('#room-list button[data-key="room:general"]')
    assert general.evaluate("node => getComputedStyle(node).fontWeight") != "700"


class _HeldUnread:
    """Routes the page's WebSocket through Playwright and holds back the server's first
    ``conversations`` reply until :meth:`release`: the page's first view waits for it, so a test
    can act in between, as a user on a slow link or a busy server can."""

    def __init__(self, page: Page) -> None:
        self.held: list[str | bytes] = []
        self._page: WebSocketRoute | None = None
        self._holding = True
        page.route_web_socket("**/ws", self._route)

    def _route(self, route: WebSocketRoute) -> None:
        self._page = route
        server = route.connect_to_server()
        server.on_message(self._from_server)

    def _from_server(self, message: str | bytes) -> None:
        assert self._page is not None
        if self._holding and isinstance(message, str) and '"type":"conversations"' in message:
            self.held.append(message)
        else:
            self._page.send(message)

    def wait_until_held(self, page: Page) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not self.held:
            assert time.monotonic() < deadline, "the page never asked for its conversations"
            page.wait_for_timeout(50)  # Playwright dispatches the route's callbacks meanwhile

    def release(self) -> None:
        assert self._page is not None
        self._holding = False
        for message in self.held:
            self._page.send(message)


def test_a_search_started_before_the_first_view_stays_open(page: Page, web: RunningServer) -> None:
    bob = web.login("bob")
    for n in range(3):
        bob.send(type="send", room="general", body=f"needle {n}", ref=f"n{n}")
    bob.expect("ack", ref="n2")
    unread = _HeldUnread(page)
    _logged_in(page, web)
    unread.wait_until_held(page)
    page.get_by_label("Search", exact=True).fill("needle")
    page.get_by_label("Search", exact=True).press("Enter")
    results = page.locator("#search-results .result")
    expect(results).to_have_count(3)
    unread.release()  # the first view: #general, opened behind the search
    expect(page.locator("#conversation-title")).to_have_text("#general")
    expect(page.locator("#search-view")).to_be_visible()
    expect(results).to_have_count(3)
    page.locator("#search-close").click()
    expect(_messages(page)).to_have_count(3)
    expect(_messages(page).last).to_contain_text("needle 2")
    expect(_messages(page).last).to_be_in_viewport()


def test_a_conversation_opened_before_the_first_view_stays_open(
    page: Page, web: RunningServer
) -> None:
    alice = web.login("alice")
    alice.send(type="join", room="ops", ref="j")
    alice.expect("joined", ref="j")
    alice.close()
    unread = _HeldUnread(page)
    _logged_in(page, web)
    unread.wait_until_held(page)
    page.locator('#room-list button[data-key="room:ops"]').click()
    expect(page.locator("#conversation-title")).to_have_text("#ops")
    unread.release()  # the first view would open #general
    expect(page.locator("#connection-status")).to_have_text("Online")
    page.wait_for_timeout(300)  # time for the page to act on the released reply
    expect(page.locator("#conversation-title")).to_have_text("#ops")


def test_browser_searches_pages_and_opens_a_result(page: Page, web: RunningServer) -> None:
    bob, carol = web.login("bob"), web.login("carol")
    for n in range(25):
        bob.send(type="send", room="general", body=f"needle {n:02d}", ref=f"n{n}")
    bob.expect("ack", ref="n24")
    carol.send(type="send", to="alice", body="a needle in a DM", ref="d")
    carol.expect("ack", ref="d")
    bob.send(type="send", room="general", body="no match here", ref="x")
    bob.expect("ack", ref="x")
    _logged_in(page, web)
    page.get_by_label("Search", exact=True).fill("NEEDLE")
    page.get_by_label("Search", exact=True).press("Enter")
    results = page.locator("#search-results .result")
    expect(results).to_have_count(20)
    expect(results.first.locator(".body")).to_have_text("a needle in a DM")
    expect(results.first.locator(".where")).to_have_text("DM with carol")
    expect(results.nth(1).locator(".where")).to_have_text("#general")
    expect(results.first.locator("time")).to_have_count(1)
    page.get_by_role("button", name="More results").click()
    expect(results).to_have_count(26)
    expect(results.last.locator(".body")).to_have_text("needle 00")
    expect(page.get_by_role("button", name="More results")).to_be_hidden()
    page.keyboard.press("Escape")
    expect(page.locator("#search-view")).to_be_hidden()
    expect(page.get_by_label("Message", exact=True)).to_be_focused()
    page.get_by_label("Search", exact=True).press("Enter")  # the same search again
    expect(results).to_have_count(20)
    page.get_by_role("button", name="More results").click()
    expect(results).to_have_count(26)
    results.filter(has_text="needle 03").click()
    expect(page.locator("#search-view")).to_be_hidden()
    expect(page.locator("#conversation-title")).to_have_text("#general")
    expect(page.locator("#messages li.found .body")).to_have_text("needle 03")


def test_browser_screenshot_for_the_readme(page: Page, web: RunningServer, tmp_path: Path) -> None:
    """Screenshots for the README: docs/web.png (rooms, direct messages, the People list,
    a conversation with markdown: a link, inline code and a code block) and the same at a
    phone's width (360 px): docs/web-phone.png.

    Written there when missing or SECURECHAT_SCREENSHOT=1 is set, else to tmp_path, so
    that a test run does not leave the tree modified (the times shown always differ).
    """
    refresh = not SCREENSHOT.exists() or os.environ.get("SECURECHAT_SCREENSHOT") == "1"
    target = SCREENSHOT if refresh else tmp_path / "web.png"
    phone = PHONE_SCREENSHOT if refresh else tmp_path / "web-phone.png"
    page.set_viewport_size({"width": 1100, "height": 760})
    bob, carol, dave = web.login("bob"), web.login("carol"), web.login("dave")
    dave.close()  # one colleague offline: the People list says when he was last seen
    _logged_in(page, web)
    _type(page, "/create dev")
    expect(page.locator("#conversation-title")).to_have_text("#dev")
    _type(page, "/topic Release 1.4: certificates and docs")
    expect(page.locator("#conversation-topic")).to_have_text("Release 1.4: certificates and docs")
    for peer in (bob, carol):
        peer.send(type="join", room="dev", ref="j")
        peer.expect("joined", ref="j")
    carol.send(type="send", room="general", body="Lunch at 12:30?", ref="g")
    bob.send(type="send", to="alice", body="Do you have a minute after stand-up?", ref="dm")
    lines = [
        (bob, "Morning! The build on `main` is green again."),
        (bob, "Release notes draft: [docs/release-1.4](https://wiki.example.com/release-1.4), comments welcome."),
        (carol, "@alice the doctor says this on the test box:\n```\n$ securechat doctor\ncertificate: expires in 12 days\n```"),
        (bob, "**Renew** it before Friday, then."),
    ]  # fmt: skip
    for n, (peer, body) in enumerate(lines):
        peer.send(type="send", room="dev", body=body, ref=f"d{n}")
        shown = ("green again", "comments welcome", "expires in 12 days", "before Friday")[n]
        expect(_messages(page).last.locator(".body")).to_contain_text(shown)
    expect(page.locator("#messages pre code")).to_have_count(1)
    expect(page.locator("#messages a[href^='https://']")).to_have_count(1)
    composer = page.get_by_label("Message", exact=True)
    composer.fill("Sure, I'll renew it after lunch.")
    composer.press("Enter")
    expect(_messages(page).last).to_have_attribute("data-status", "sent")
    expect(page.locator('#room-list button[data-key="room:general"] .badge')).to_have_text("1")
    page.locator("#people summary").click()
    expect(page.locator("#people-list")).to_contain_text("dave")
    composer.blur()
    page.evaluate("document.getElementById('sidebar').scrollTop = 0")
    time.sleep(0.2)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000
    page.set_viewport_size({"width": 360, "height": 640})
    composer.fill("On my phone: Enter is a new line,\nthe button sends.")
    time.sleep(0.2)
    page.screenshot(path=str(phone))
    assert phone.stat().st_size > 5_000


def test_browser_directory_user_signs_in_and_finds_the_mapped_room(
    page: Page, server_factory: ServerFactory, slapd: Slapd
) -> None:
    """#28: a colleague signs in on the page with the office directory's password; the
    directory group's private room is in their sidebar; a wrong password is refused."""
    web = server_factory(web_port=0, directory=slapd.config())
    _login(page, web, "erin", "not erin's password")
    expect(page.locator("#login-error")).to_be_visible()
    _login(page, web, "erin", PASSWORDS["erin"])
    expect(page.locator("#chat-view")).to_be_visible()
    expect(page.locator("#connection-status")).to_have_text("Online")
    expect(page.locator("#sidebar")).to_contain_text("dev")
