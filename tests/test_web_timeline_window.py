"""The browser client's windowed timeline (securechat/web/timelinewindow.js) in a real
Chromium: with hundreds of messages loaded only the rows near the view are in the
document, and everything a full list did still holds: shared headers whose group starts
above the window, a jump to a search result far from it, an edit made while a message was
outside it, following the bottom, and the list's size for screen readers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer, ServerFactory, browser_missing, skip_or_fail

if (missing := browser_missing()) is not None:
    skip_or_fail(missing)

from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.test_web_browser import _logged_in, browser, browser_home, playwright  # noqa: F401

COUNT = 400
#: Rows before the first message: alice's and bob's joins to #general (room events).
JOINS = 2


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:  # noqa: F811
    page = browser.new_page()
    yield page
    page.close()


def _messages(page: Page) -> Locator:
    return page.locator("#messages li.message")


def test_browser_keeps_a_window_of_a_long_conversation_and_jumps_to_a_far_result(
    page: Page, server_factory: ServerFactory
) -> None:
    web: RunningServer = server_factory(web_port=0, rate_per_second=1e6, rate_burst=1_000_000)
    _logged_in(page, web)
    expect(page.locator("#conversation-title")).to_have_text("#general")
    bob = web.login("bob")
    ids = []
    for n in range(COUNT):
        bob.send(type="send", room="general", body=f"long {n:03d}", ref=f"l{n}")
    for n in range(COUNT):
        ids.append(bob.expect("ack", ref=f"l{n}")["id"])
    last = _messages(page).last
    expect(last.locator(".body")).to_have_text(f"long {COUNT - 1:03d}")
    expect(last).to_be_in_viewport()  # followed to the bottom
    expect(last).to_have_attribute("aria-setsize", str(JOINS + COUNT))
    expect(last).to_have_attribute("aria-posinset", str(JOINS + COUNT))
    in_document = _messages(page).count()
    assert 10 < in_document < COUNT // 2, in_document
    # bob's messages of a minute share one header: the window's first row too, whose group
    # (and day: "Today") starts far above it.
    first = _messages(page).first
    expect(first).to_have_class(re.compile(r"\bcontinued\b"))
    expect(page.locator("#messages li.day")).to_have_count(0)
    # Changed while outside the window: shown changed when it comes back.
    bob.send(type="edit", id=ids[7], body="long 007, edited", ref="e")
    bob.expect("ack", ref="e")
    page.get_by_label("Search", exact=True).fill("long 007")
    page.get_by_label("Search", exact=True).press("Enter")
    page.locator("#search-results .result").first.click()
    found = page.locator("#messages li.found")
    expect(found.locator(".body")).to_have_text("long 007, edited")
    expect(found.locator(".edited")).to_have_text("(edited)")
    expect(found).to_be_in_viewport()
    expect(found).to_have_attribute("aria-posinset", str(JOINS + 8))
    expect(page.locator(f'#messages li[data-id="{ids[-1]}"]')).to_have_count(0)  # left the window
    expect(page.locator("#messages li.day")).to_have_text(["Today"])  # message 000's
    # Hidden behind the room directory (which loses the list's scroll position) and back:
    # the same place.
    page.locator("#directory-button").click()
    expect(page.locator("#messages")).to_be_hidden()
    page.locator("#directory-close").click()
    expect(found).to_be_in_viewport()
    # A message while scrolled up stays below the window; back at the bottom, new ones follow.
    bob.send(type="send", room="general", body="while away", ref="w")
    bob.expect("ack", ref="w")
    expect(page.locator("#new-pill")).to_have_text("1 new message ↓")
    page.locator("#new-pill").click()
    expect(_messages(page).last.locator(".body")).to_have_text("while away")
    expect(_messages(page).last).to_be_in_viewport()
    bob.send(type="send", room="general", body="and one more", ref="m")
    expect(_messages(page).last.locator(".body")).to_have_text("and one more")
    expect(_messages(page).last).to_be_in_viewport()
    labels = page.locator("#messages button").evaluate_all(
        "buttons => buttons.map(b => b.getAttribute('aria-label'))"
    )
    assert len(set(labels)) == len(labels), labels


def test_browser_scrolls_up_through_a_long_history_without_jumps(
    page: Page, server_factory: ServerFactory
) -> None:
    """One screen at a time from the bottom to the top: every step moves the view by what
    was scrolled (the window's changes above the reader never push it), and each message
    is met once, in order."""
    web: RunningServer = server_factory(web_port=0, rate_per_second=1e6, rate_burst=1_000_000)
    _logged_in(page, web)
    bob = web.login("bob")
    for n in range(COUNT):
        body = f"line {n:03d}" + (" with a longer tail that wraps" * (n % 4))
        bob.send(type="send", room="general", body=body, ref=f"l{n}")
    bob.expect("ack", ref=f"l{COUNT - 1}")
    expect(_messages(page).last).to_contain_text(f"line {COUNT - 1:03d}")
    seen, tops = page.evaluate(
        """async () => {
          const list = document.getElementById("messages");
          const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
          const seen = [];
          const tops = []; // the first message in view at each step
          const look = () => {
            const view = list.getBoundingClientRect();
            let top = Infinity;
            for (const item of list.querySelectorAll("li.message")) {
              const box = item.getBoundingClientRect();
              if (box.bottom <= view.top || box.top >= view.bottom) continue;
              const at = Number(item.getAttribute("aria-posinset"));
              seen.push(at);
              top = Math.min(top, at);
            }
            tops.push(top);
          };
          for (let step = 0; step < 2000 && list.scrollTop > 0; step += 1) {
            look();
            list.scrollTop -= list.clientHeight / 2;
            await frame();
            await frame();
          }
          look();
          return [seen, tops];
        }"""
    )
    # Half a screen a step: each step sees part of what the one before saw, never a gap.
    assert tops == sorted(tops, reverse=True), tops  # never pushed back down
    assert tops[-1] == JOINS + 1
    positions = sorted(set(seen))
    every = list(range(JOINS + 1, JOINS + COUNT + 1))
    assert positions == every, [p for p in every if p not in seen]
    expect(page.locator("#messages .older")).to_have_text("Start of the conversation")
