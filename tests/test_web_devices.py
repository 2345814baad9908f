"""Stay signed in on this device (#26), in a real Chromium: a reload and a new tab need no
password, page script cannot read the cookie, and ``passwd`` or "sign out everywhere"
ends it. Each test has its own browser context: fresh cookies and storage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from securechat.accounts import Accounts
from securechat.config import HashParams
from securechat.server.webdevices import COOKIE_NAME
from securechat.store.database import open_database
from tests.conftest import PASSWORD, TIMEOUT, RunningServer
from tests.eventually import eventually
from tests.sql import value
from tests.test_web_browser import (  # noqa: F401 (fixtures)
    _url,
    browser_home,
    playwright,
    web,
)
from tests.test_web_directory import fresh_browser  # noqa: F401 (fixture)


@pytest.fixture
def context(fresh_browser: Browser) -> Iterator[BrowserContext]:  # noqa: F811
    made = fresh_browser.new_context(viewport={"width": 1100, "height": 700})
    made.set_default_timeout(TIMEOUT * 1000)
    yield made
    made.close()


def _online(page: Page) -> None:
    expect(page.locator("#chat-view")).to_be_visible()
    expect(page.locator("#connection-status")).to_have_text("Online")


def _log_in(page: Page, running: RunningServer, *, remember: bool) -> None:
    page.goto(_url(running))
    expect(page.locator("#login-remember")).not_to_be_checked()  # off by default
    page.fill("#login-user", "alice")
    page.fill("#login-password", PASSWORD)
    if remember:
        page.check("#login-remember")
    page.press("#login-password", "Enter")
    _online(page)


def _device_cookie(context: BrowserContext) -> dict[str, object]:
    def found() -> dict[str, object] | None:
        cookies = [dict(c) for c in context.cookies() if c.get("name") == COOKIE_NAME]
        return cookies[0] if cookies and cookies[0]["value"] else None

    return eventually(found, "the device cookie was set")


def test_stay_signed_in_survives_a_reload_and_a_new_tab_without_the_password(
    context: BrowserContext,
    web: RunningServer,  # noqa: F811
) -> None:
    page = context.new_page()
    _log_in(page, web, remember=True)
    cookie = _device_cookie(context)
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["path"] == "/ws"
    assert COOKIE_NAME not in page.evaluate("document.cookie")
    assert str(cookie["value"]) not in page.evaluate("JSON.stringify(localStorage)")
    page.reload()
    _online(page)
    expect(page.locator("#whoami")).to_have_text("alice")
    tab = context.new_page()
    tab.goto(_url(web))
    _online(tab)
    page.click("#devices summary")
    expect(page.locator("#device-list li")).to_have_count(1)
    expect(page.locator("#device-list li")).to_contain_text("Chrome on Linux")


def test_without_stay_signed_in_a_reload_asks_for_the_password(
    context: BrowserContext,
    web: RunningServer,  # noqa: F811
) -> None:
    page = context.new_page()
    _log_in(page, web, remember=False)
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-user")).to_have_value("alice")
    assert not [c for c in context.cookies() if c.get("name") == COOKIE_NAME]


def test_stay_signed_in_is_refused_after_passwd(
    context: BrowserContext,
    web: RunningServer,  # noqa: F811
) -> None:
    page = context.new_page()
    _log_in(page, web, remember=True)
    _device_cookie(context)
    database = open_database(web.db_url)
    try:
        Accounts(database, hash_params=HashParams.for_tests()).set_password(
            "alice", "a brand new horse battery"
        )
    finally:
        database.dispose()
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text(
        "This device is no longer signed in. Enter your password."
    )
    expect(page.locator("#login-user")).to_have_value("alice")
    page.reload()  # the page forgot it: no second refused attempt
    expect(page.locator("#login-view")).to_be_visible()
    expect(page.locator("#login-error")).to_have_text("")


def test_sign_out_everywhere_ends_staying_signed_in(
    context: BrowserContext,
    web: RunningServer,  # noqa: F811
) -> None:
    page = context.new_page()
    _log_in(page, web, remember=True)
    _device_cookie(context)
    page.click("#devices summary")
    expect(page.locator("#device-list li")).to_have_count(1)
    page.click("#signout-everywhere")  # asks first; Escape, then Cancel, keep everything
    expect(page.locator("#signout-everywhere-no")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#signout-confirm")).to_be_hidden()
    expect(page.locator("#signout-everywhere")).to_be_focused()
    page.click("#signout-everywhere")
    page.click("#signout-everywhere-no")
    expect(page.locator("#signout-confirm")).to_be_hidden()
    expect(page.locator("#device-list li")).to_have_count(1)
    assert value(web.db_url, "SELECT count(*) FROM devices") == 1
    page.click("#signout-everywhere")
    page.click("#signout-everywhere-yes")
    expect(page.locator("#login-view")).to_be_visible()
    assert value(web.db_url, "SELECT count(*) FROM devices") == 0
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()


def test_log_out_forgets_the_device(
    context: BrowserContext,
    web: RunningServer,  # noqa: F811
) -> None:
    page = context.new_page()
    _log_in(page, web, remember=True)
    _device_cookie(context)
    page.click("#logout-button")
    expect(page.locator("#login-view")).to_be_visible()
    eventually(
        lambda: value(web.db_url, "SELECT count(*) FROM devices") == 0 or None,
        "the device was deleted",
    )
    page.reload()
    expect(page.locator("#login-view")).to_be_visible()
