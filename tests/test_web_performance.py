"""The browser client under load, in a real Chromium: what one incoming message costs.

Bob sends 10,000 messages to #general while alice's page has it open at the bottom. The
test asserts what must hold on any machine: each message costs the page a constant amount
of DOM work (one item added; the list is never rebuilt), as many mutations for the 10,000th
as for the first; only a window of them is in the document (a few screens, each message
once), and scrolling up one screen at a time reaches the first message. It also measures,
and prints with ``-s``, the figures docs/performance.md quotes ("Browser client"): the
page's main-thread time (Chrome's TaskDuration) and the wall time to show the first 1,000
and the last 1,000, the page's JS heap (after a forced garbage collection) and DOM size
with 10,000 loaded, the time of each step of that scroll to the top, and the page's time
to lay itself out again when the window narrows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RunningServer, ServerFactory, browser_missing, skip_or_fail

if (missing := browser_missing()) is not None:
    skip_or_fail(missing)

from playwright.sync_api import BrowserContext, CDPSession, Page, expect

from tests.peer import Peer
from tests.test_web_browser import _logged_in, browser, browser_home, playwright  # noqa: F401

TOTAL = 10_000
BATCH = 250  # sends in flight at once: well inside the page's outbox on the server
#: Counts what each message adds to the list (childList records on #messages), by body.
OBSERVE = """
window.__perf = { added: 0, records: 0 };
new MutationObserver((records) => {
  for (const record of records) {
    window.__perf.records += 1;
    window.__perf.added += record.addedNodes.length;
  }
}).observe(document.getElementById("messages"), { childList: true });
"""


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:  # noqa: F811
    page = browser.new_page()
    yield page
    page.close()


def _metrics(cdp: CDPSession) -> dict[str, float]:
    reply: dict[str, Any] = cdp.send("Performance.getMetrics")
    return {m["name"]: float(m["value"]) for m in reply["metrics"]}


def _send_batch(bob: Peer, start: int, count: int) -> None:
    for n in range(start, start + count):
        bob.send(type="send", room="general", body=f"perf {n:05d}", ref=f"p{n}")
    bob.expect("ack", ref=f"p{start + count - 1}")


def _shown(page: Page, count: int) -> None:
    """Waits for message ``count - 1`` at the end of the list: an O(1) check per poll (the
    last item before the end marker and the spacer below the window), so that the polling
    does not cost the page what a query over 10,000 items would."""
    page.wait_for_function(
        """body => {
          let last = document.querySelector("#messages li.newer").previousElementSibling;
          while (last !== null && !last.classList.contains("message")) last = last.previousElementSibling;
          const text = last === null ? null : last.querySelector(".body");
          return text !== null && text.textContent === body;
        }""",
        arg=f"perf {count - 1:05d}",
        polling=100,
        timeout=120_000,
    )


def _burst(page: Page, cdp: CDPSession, bob: Peer, start: int, count: int) -> dict[str, float]:
    """Sends ``count`` messages and waits until shown: page time, wall time, DOM work."""
    before = _metrics(cdp)
    marks = page.evaluate("({...window.__perf})")
    began = time.perf_counter()
    for at in range(start, start + count, BATCH):
        _send_batch(bob, at, min(BATCH, start + count - at))
    _shown(page, start + count)
    wall = time.perf_counter() - began
    after = _metrics(cdp)
    now = page.evaluate("({...window.__perf})")
    return {
        "wall_s": wall,
        "task_s": after["TaskDuration"] - before["TaskDuration"],
        "script_s": after["ScriptDuration"] - before["ScriptDuration"],
        "layout_s": after["LayoutDuration"] + after["RecalcStyleDuration"]
        - before["LayoutDuration"] - before["RecalcStyleDuration"],
        "added_per_message": (now["added"] - marks["added"]) / count,
    }  # fmt: skip


#: Scrolls the list from the bottom to the top one screen at a time, as Page Up would, and
#: times each step from the scroll to the end of the second frame after it (the frame that
#: shows it, windowed items included): milliseconds, one per step.
SCROLL_TO_TOP = """
async () => {
  const list = document.getElementById("messages");
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  const steps = [];
  list.scrollTop = list.scrollHeight;
  await frame();
  await frame();
  while (list.scrollTop > 0) {
    const began = performance.now();
    list.scrollTop -= list.clientHeight;
    await frame();
    await frame();
    steps.push(performance.now() - began);
  }
  return steps;
}
"""


def _scroll_to_top(page: Page, cdp: CDPSession) -> dict[str, float]:
    """The scroll through the whole history, one screen a step: step times and page time."""
    before = _metrics(cdp)
    began = time.perf_counter()
    steps: list[float] = sorted(page.evaluate(SCROLL_TO_TOP))
    wall = time.perf_counter() - began
    after = _metrics(cdp)
    return {
        "steps": len(steps),
        "wall_s": wall,
        "step_median_ms": steps[len(steps) // 2],
        "step_p95_ms": steps[int(len(steps) * 0.95)],
        "step_max_ms": steps[-1],
        "task_s": after["TaskDuration"] - before["TaskDuration"],
        "layout_s": after["LayoutDuration"] + after["RecalcStyleDuration"]
        - before["LayoutDuration"] - before["RecalcStyleDuration"],
    }  # fmt: skip


def _relayout(page: Page, cdp: CDPSession) -> dict[str, float]:
    """A narrower window: every item in the document is laid out again."""
    before = _metrics(cdp)
    page.set_viewport_size({"width": 900, "height": 700})
    page.evaluate(
        "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
    )
    after = _metrics(cdp)
    return {
        "task_s": after["TaskDuration"] - before["TaskDuration"],
        "layout_s": after["LayoutDuration"] + after["RecalcStyleDuration"]
        - before["LayoutDuration"] - before["RecalcStyleDuration"],
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_browser_shows_10000_incoming_messages_with_constant_work_each(
    page: Page, server_factory: ServerFactory
) -> None:
    web: RunningServer = server_factory(web_port=0, rate_per_second=1e6, rate_burst=1_000_000)
    _logged_in(page, web)
    expect(page.locator("#conversation-title")).to_have_text("#general")
    page.evaluate(OBSERVE)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    bob = web.login("bob")
    first = _burst(page, cdp, bob, 0, 1_000)
    _burst(page, cdp, bob, 1_000, TOTAL - 2_000)
    last = _burst(page, cdp, bob, TOTAL - 1_000, 1_000)
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")
    metrics = _metrics(cdp)
    in_document = page.locator("#messages li.message").count()
    scroll = _scroll_to_top(page, cdp)
    relayout = _relayout(page, cdp)
    figures = {
        "first_1000": first,
        "last_1000": last,
        "heap_used_mb": heap["usedSize"] / 2**20,
        "dom_nodes": metrics["Nodes"],
        "messages_in_document": in_document,
        "scroll_to_top": scroll,
        "relayout_900px": relayout,
    }
    print("\nbrowser figures:", json.dumps(figures, indent=1))
    # The window: a screenful and its margins in the document, whatever the history's size,
    # each message once; the list says how long it is (aria-setsize).
    assert in_document < 200, in_document
    assert metrics["Nodes"] < 5_000, metrics["Nodes"]
    shown = page.locator("#messages li.message")
    assert (
        shown.evaluate_all("items => new Set(items.map(i => i.dataset.id)).size") == shown.count()
    )
    joins = 2  # alice's and bob's joins to #general come first (room events)
    expect(shown.first).to_have_attribute("aria-setsize", str(joins + TOTAL))
    # Scrolled to the top one screen at a time: the oldest message, where it belongs.
    expect(shown.first.locator(".body")).to_have_text("perf 00000")
    expect(shown.first).to_have_attribute("aria-posinset", str(joins + 1))
    expect(shown.first).to_be_in_viewport()
    # One message, one item added to the list (a day separator once): never a rebuild.
    assert first["added_per_message"] <= 1.1
    assert last["added_per_message"] <= 1.1
