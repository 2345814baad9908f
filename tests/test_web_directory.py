"""The page's people, conversations and rooms from the server, in a real Chromium.

A fresh browser profile sees its direct conversations; anyone, offline included, gets a
direct message from the people directory; the terminal's /msg, /who, /rooms, /join and
/leave work in the page; the room directory, the member list, room events after a reload,
"Create #name?" and invitations that show at once. The browser, its trusted CA and the
per-test server come from tests/test_web_browser.py.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, WebSocketRoute, expect

from tests.conftest import CHROMIUM, TIMEOUT, RunningServer
from tests.test_web_browser import (  # noqa: F401 (fixtures)
    CHROMIUM_ARGS,
    _create_from_the_join_form,
    _logged_in,
    _messages,
    _type,
    browser,
    browser_home,
    page,
    playwright,
    web,
)


@pytest.fixture(scope="module")
def fresh_browser(playwright: Playwright, browser_home: Path) -> Iterator[Browser]:  # noqa: F811
    """A second Chromium whose contexts start with an empty profile: a new device."""
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        env={**os.environ, "HOME": str(browser_home)},
    )
    yield launched
    launched.close()


@pytest.fixture
def device(fresh_browser: Browser) -> Iterator[Page]:
    """A page in a brand-new browser profile (no local storage, no cookies)."""
    context = fresh_browser.new_context(viewport={"width": 1100, "height": 700})
    context.set_default_timeout(TIMEOUT * 1000)
    yield context.new_page()
    context.close()


def test_a_fresh_browser_profile_sees_its_direct_conversations(
    page: Page,  # noqa: F811
    device: Page,
    web: RunningServer,  # noqa: F811
) -> None:
    bob = web.login("bob")
    _logged_in(page, web)
    _type(page, "/msg dave are you in today?")  # dave never logged in
    _type(page, "/msg Bob lunch?")
    expect(page.locator('#dm-list button[data-key="dm:dave"]')).to_have_count(1)
    bob.expect("message", body="lunch?")
    carol = web.login("carol")
    carol.send(type="send", to="alice", body="a DM alice has not read", ref="c1")
    carol.expect("ack", ref="c1")
    stored = page.evaluate("Object.keys(localStorage).sort()")
    assert stored == ["securechat.last.alice", "securechat.user"]  # no conversation list
    _logged_in(device, web)  # a new device: nothing stored there
    dms = device.locator("#dm-list button")
    expect(dms).to_have_count(3)
    assert [dms.nth(n).get_attribute("data-key") for n in range(3)] == [
        "dm:bob",
        "dm:carol",
        "dm:dave",
    ]
    carol_item = device.locator('#dm-list button[data-key="dm:carol"]')
    expect(carol_item.locator(".badge.unread")).to_have_text("1")
    expect(carol_item.locator(".activity")).not_to_have_text("")  # its last activity
    device.locator('#dm-list button[data-key="dm:dave"]').click()
    expect(_messages(device)).to_have_count(1)
    expect(_messages(device)).to_contain_text("are you in today?")
    # Kept up to date live: a new partner appears without a reload.
    dave = web.login("dave")
    dave.send(type="send", to="alice", body="hi from dave", ref="d1")
    dave.expect("ack", ref="d1")
    bob.send(type="send", to="alice", body="one more", ref="b2")
    expect(device.locator('#dm-list button[data-key="dm:bob"] .badge.unread')).to_have_text("1")
    # What the page remembers: the user name, for the login form.
    device.click("#logout-button")
    expect(device.locator("#login-user")).to_have_value("alice")


def _wait_until_last_seen(web: RunningServer, user: str) -> None:  # noqa: F811
    """The server writes login and logout times with its next commit: wait for it."""
    carol = web.login("carol")
    deadline = time.monotonic() + TIMEOUT
    while True:
        carol.send(type="people", ref="p")
        people = {p["name"]: p for p in carol.expect("people", ref="p")["people"]}
        if "last_seen" in people[user]:
            break
        assert time.monotonic() < deadline, f"{user} never got a last_seen"
        time.sleep(0.1)
    carol.close()


def test_an_offline_user_gets_a_direct_message_from_the_people_directory(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    web.login("bob").close()  # seen, now offline
    _wait_until_last_seen(web, "bob")
    _logged_in(page, web)
    page.locator("#people summary").click()
    people = page.locator("#people-list button")
    expect(people).to_have_count(3)  # everyone but alice, online or not
    expect(page.locator("#people-count")).to_have_text("(3)")
    expect(page.locator('#people-list button[data-user="bob"] .presence')).to_contain_text(
        "last seen"
    )
    expect(page.locator('#people-list button[data-user="dave"] .presence')).to_have_text(
        "never seen"
    )
    page.fill("#people-filter", "DA")
    expect(people).to_have_count(1)
    people.first.click()
    expect(page.locator("#conversation-title")).to_have_text("dave")
    _type(page, "welcome aboard, dave")
    expect(_messages(page).filter(has_text="welcome aboard")).to_have_attribute(
        "data-status", "sent"
    )
    dave = web.login("dave")
    dave.send(type="history", **{"with": "alice"}, ref="h")
    reply = dave.expect("history", ref="h")
    assert [m["body"] for m in reply["messages"]] == ["welcome aboard, dave"]
    # Presence moves the directory: dave is online now.
    expect(page.locator('#people-list button[data-user="dave"] .presence')).to_have_text(
        "online", timeout=(TIMEOUT + 65) * 1000
    )


def test_a_presence_batch_moves_the_online_list_and_the_people_directory(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    """bob and carol come online at once (on another node, as the heartbeat would say),
    then go: one presence_batch each way, shown by the online list and the directory."""
    for user in ("bob", "carol"):  # a first login: they join #general
        web.login(user).close()
    _logged_in(page, web)
    page.locator("#people summary").click()
    online = page.locator("#online-list button")
    expect(online).to_have_count(0)
    hub = web.server.parts.hub
    hub.set_elsewhere({"bob", "carol"})
    expect(online).to_have_count(2)
    expect(page.locator('#online-list button[data-user="carol"] .dot')).to_have_count(1)
    for user in ("bob", "carol"):
        expect(page.locator(f'#people-list button[data-user="{user}"] .presence')).to_have_text(
            "online"
        )
    hub.set_elsewhere(())
    expect(online).to_have_count(0)
    for user in ("bob", "carol"):
        expect(page.locator(f'#people-list button[data-user="{user}"] .presence')).to_contain_text(
            "last seen"
        )


def test_the_terminals_commands_work_in_the_page(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    bob = web.login("bob")
    bob.send(type="create", room="dev", topic="the build", ref="c")
    bob.expect("joined", ref="c")
    _logged_in(page, web)
    _type(page, "/who")
    expect(page.locator("#notice")).to_have_text("Online (2): alice, bob")
    _type(page, "/msg bob ping")
    bob.expect("message", body="ping")
    expect(page.locator("#conversation-title")).to_have_text("#general")  # /msg stays here
    _type(page, "/msg nobody-here hello")
    expect(page.locator("#composer-error")).to_have_text("There is no user nobody-here.")
    _type(page, "/join no way")
    expect(page.locator("#composer-error")).to_have_text("usage: /join ROOM")
    bob.send(type="create", room="closed", ref="c2")
    bob.expect("joined", ref="c2")
    bob.send(type="moderate", room="closed", action="ban", user="alice", ref="b")
    bob.expect("done", ref="b")
    _type(page, "/join closed")  # refused where it was typed
    expect(page.locator("#composer-error")).to_have_text("you are banned from #closed")
    _type(page, "/join #Dev")
    expect(page.locator("#conversation-title")).to_have_text("#dev")
    _type(page, "/rooms")
    directory = page.locator("#directory-list li")
    expect(directory).to_have_count(3)
    expect(page.locator('#directory-list li[data-room="dev"]')).to_contain_text("the build")
    page.keyboard.press("Escape")
    expect(page.locator("#directory-view")).to_be_hidden()
    _type(page, "/leave general")
    expect(page.locator('#room-list button[data-key="room:general"]')).to_have_count(0)
    _type(page, "/leave")
    bob.expect("member_left", room="dev", user="alice")
    expect(page.locator("#room-list button")).to_have_count(0)


def test_room_directory_member_list_and_room_events_after_a_reload(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    bob = web.login("bob")
    bob.send(type="create", room="ops", topic="on call", ref="c")
    bob.expect("joined", ref="c")
    carol = web.login("carol")
    carol.send(type="join", room="ops", ref="j")
    carol.expect("joined", ref="j")
    bob.send(type="moderate", room="ops", action="op", user="carol", ref="o")
    bob.expect("done", ref="o")
    _logged_in(page, web)
    page.get_by_role("button", name="Browse rooms").click()
    ops = page.locator('#directory-list li[data-room="ops"]')
    expect(ops).to_contain_text("on call")
    expect(ops).to_contain_text("2 members")
    ops.get_by_role("button", name="Join #ops").click()
    expect(page.locator("#conversation-title")).to_have_text("#ops")
    page.locator("#members summary").click()
    members = page.locator("#members-list li")
    expect(members).to_have_count(3)
    roles = [members.nth(n).get_attribute("data-role") for n in range(3)]
    names = [members.nth(n).get_attribute("data-user") for n in range(3)]
    assert list(zip(names, roles, strict=True)) == [
        ("bob", "owner"),
        ("carol", "moderator"),
        ("alice", "member"),
    ]
    bob.send(type="moderate", room="ops", action="topic", topic="deploys at 17:00", ref="t")
    bob.expect("done", ref="t")
    bob.send(type="moderate", room="ops", action="kick", user="carol", ref="k")
    bob.expect("done", ref="k")
    expect(members).to_have_count(2)
    expect(page.locator("#messages li.system").last).to_have_text("bob kicked carol")
    page.reload()  # the events come from the server's history now, not from memory
    _logged_in(page, web)
    page.locator('#room-list button[data-key="room:ops"]').click()
    lines = page.locator("#messages li.system")
    expect(lines.filter(has_text="topic changed to “deploys at 17:00” by bob")).to_have_count(1)
    expect(lines.filter(has_text="bob kicked carol")).to_have_count(1)
    expect(lines.filter(has_text="bob made carol a moderator")).to_have_count(1)


def test_joining_a_missing_room_asks_and_whoever_creates_it_owns_it(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    _logged_in(page, web)
    page.fill("#join-room", "Lab")
    page.press("#join-room", "Enter")
    expect(page.locator("#create-question-text")).to_contain_text("Create #lab?")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#create-question")).to_be_hidden()
    bob = web.login("bob")
    bob.send(type="rooms", ref="r")
    assert [room["name"] for room in bob.expect("rooms", ref="r")["rooms"]] == ["general"]
    page.fill("#join-room", "lab!")
    page.press("#join-room", "Enter")
    expect(page.locator("#join-error")).to_contain_text("Not a valid room name (2-32 characters")
    _create_from_the_join_form(page, "lab")
    _type(page, "/topic experiments")  # only an owner or moderator may
    expect(page.locator("#conversation-topic")).to_have_text("experiments")
    page.locator("#members summary").click()
    expect(page.locator('#members-list li[data-user="alice"]')).to_have_attribute(
        "data-role", "owner"
    )


def test_an_invitation_shows_at_once_in_every_session_of_the_invitee(
    browser: BrowserContext,  # noqa: F811
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    other = browser.new_page()  # a second tab
    try:
        _logged_in(page, web)
        _logged_in(other, web)
        bob = web.login("bob")
        bob.send(type="create", room="secret", private=True, ref="c")
        bob.expect("joined", ref="c")
        bob.send(type="moderate", room="secret", action="invite", user="alice", ref="i")
        bob.expect("done", ref="i")
        for tab in (page, other):
            invite = tab.locator('#invite-list li[data-room="secret"]')
            expect(invite).to_contain_text("from bob")
            expect(tab.locator("#invites-heading")).to_be_visible()
        page.get_by_role("button", name="Join #secret (invited by bob)").click()
        expect(page.locator("#conversation-title")).to_have_text("#secret")
        expect(page.locator("#conversation-private")).to_be_visible()
        for tab in (page, other):
            expect(tab.locator("#invite-list li")).to_have_count(0)
            expect(tab.locator('#room-list button[data-key="room:secret"]')).to_have_count(1)
    finally:
        other.close()


def test_against_a_server_without_conversations_the_page_lists_what_is_unread(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    """A server from before `conversations` answers `unknown_type`: played here by the
    route between page and server, which answers that request itself."""

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            request = json.loads(message) if isinstance(message, str) else {}
            if request.get("type") == "conversations":
                ws.send(json.dumps({"type": "error", "code": "unknown_type",
                                    "message": "unknown type", "ref": request["ref"]}))  # fmt: skip
            else:
                server.send(message)

        ws.on_message(from_page)

    page.route_web_socket("**/ws", route)
    bob = web.login("bob")
    bob.send(type="send", to="alice", body="still there?", ref="b1")
    bob.expect("ack", ref="b1")
    _logged_in(page, web)
    dm = page.locator('#dm-list button[data-key="dm:bob"]')
    expect(dm.locator(".badge.unread")).to_have_text("1")
    expect(page.locator("#conversation-title")).to_have_text("#general")
