"""The page and room membership (#26), in a real Chromium: "bob joined #dev" lines live
and after a reload (a burst as one line), pending invitations after a reload, the member
list's roles from the server, and @here / @room. The browser, its trusted CA and the
per-test server come from tests/test_web_browser.py."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from tests.conftest import RunningServer, add_accounts
from tests.test_web_browser import (  # noqa: F401 (fixtures)
    _badge,
    _logged_in,
    _type,
    _url,
    browser,
    browser_home,
    page,
    playwright,
    web,
)


def test_joins_show_live_and_after_a_reload_a_burst_as_one_line(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    _logged_in(page, web)
    _type(page, "/create dev")
    expect(page.locator("#conversation-title")).to_have_text("#dev")
    lines = page.locator("#messages li.system:visible")
    bob = web.login("bob")
    bob.send(type="join", room="dev", ref="j")
    bob.expect("joined", ref="j")
    expect(lines.last).to_have_text("bob joined #dev")
    bob.send(type="leave", room="dev", ref="l")
    bob.expect("left", ref="l")
    expect(lines.last).to_have_text("bob left #dev")
    burst = ["carol", "dave", "erin", "frank", "gina"]
    add_accounts(web.db_url, *burst[2:])
    for name in burst:
        peer = web.login(name)
        peer.send(type="join", room="dev", ref="j")
        peer.expect("joined", ref="j")
    expect(lines.last).to_have_text("carol, dave, erin and 2 others joined #dev")
    expect(lines.filter(has_text="joined #dev")).to_have_count(2)  # bob's, then the burst's
    page.reload()  # the lines come from the server's history now
    _logged_in(page, web)
    page.locator('#room-list button[data-key="room:dev"]').click()
    expect(lines).to_have_text([
        "You created #dev", "bob joined #dev", "bob left #dev",
        "carol, dave, erin and 2 others joined #dev",
    ])  # fmt: skip


def test_a_pending_invitation_shows_after_a_reload_and_at_login(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    bob = web.login("bob")
    bob.send(type="create", room="secret", private=True, ref="c")
    bob.expect("joined", ref="c")
    bob.send(type="moderate", room="secret", action="invite", user="alice", ref="i")
    bob.expect("done", ref="i")  # alice has never logged in: no live event reached her
    _logged_in(page, web)
    invite = page.locator('#invite-list li[data-room="secret"]')
    expect(invite).to_contain_text("from bob")
    page.reload()
    _logged_in(page, web)
    expect(invite).to_contain_text("from bob")
    page.get_by_role("button", name="Join #secret (invited by bob)").click()
    expect(page.locator("#conversation-title")).to_have_text("#secret")
    expect(page.locator("#invite-list li")).to_have_count(0)
    page.reload()  # used: gone for good
    _logged_in(page, web)
    expect(page.locator('#room-list button[data-key="room:secret"]')).to_have_count(1)
    expect(page.locator("#invite-list li")).to_have_count(0)


def test_the_member_list_shows_roles_from_the_server_not_only_the_loaded_timeline(
    page: Page,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    bob, carol = web.login("bob"), web.login("carol")
    bob.send(type="create", room="ops", ref="c")
    bob.expect("joined", ref="c")
    for peer in (carol, web.login("dave")):
        peer.send(type="join", room="ops", ref="j")
        peer.expect("joined", ref="j")
    bob.send(type="moderate", room="ops", action="op", user="carol", ref="o")
    bob.expect("done", ref="o")
    bob.send(type="moderate", room="ops", action="mute", user="dave", ref="m")
    bob.expect("done", ref="m")
    for n in range(60):  # the op and the mute are older than the page the room opens with
        bob.send(type="send", room="ops", body=f"busy {n}", ref=f"b{n}")
    bob.expect("ack", ref="b59")
    _logged_in(page, web)
    _type(page, "/join ops")
    expect(page.locator("#conversation-title")).to_have_text("#ops")
    expect(page.locator("#messages li.message").last).to_contain_text("busy 59")
    page.locator("#members summary").click()
    members = page.locator("#members-list li")
    expect(members).to_have_count(4)
    rows = [
        (members.nth(n).get_attribute("data-user"), members.nth(n).get_attribute("data-role"))
        for n in range(4)
    ]
    assert rows == [
        ("bob", "owner"),
        ("carol", "moderator"),
        ("alice", "member"),
        ("dave", "member"),
    ]
    expect(page.locator('#members-list li[data-user="dave"]')).to_contain_text("muted")
    expect(page.locator('#members-list li[data-user="dave"]')).to_have_attribute(
        "data-online", "yes"
    )
    bob.send(type="moderate", room="ops", action="deop", user="carol", ref="d")  # live
    bob.expect("done", ref="d")
    expect(page.locator('#members-list li[data-user="carol"]')).to_have_attribute(
        "data-role", "member"
    )


def test_here_notifies_a_member_online_and_not_one_who_comes_online_later(
    page: Page,  # noqa: F811
    browser: BrowserContext,  # noqa: F811
    web: RunningServer,  # noqa: F811
) -> None:
    browser.grant_permissions(["notifications"], origin=_url(web).rstrip("/"))
    bob = web.login("bob")
    bob.send(type="create", room="ops", ref="c")
    bob.expect("joined", ref="c")
    for user in ("alice", "carol"):
        peer = web.login(user)
        peer.send(type="join", room="ops", ref="j")
        peer.expect("joined", ref="j")
        peer.close()
    _logged_in(page, web)  # alice, online in #general: #ops is not in view
    expect(page.locator("#conversation-title")).to_have_text("#general")
    bob.send(type="send", room="ops", body="@here deploy in 5", ref="h")
    bob.expect("ack", ref="h")
    expect(_badge(page, "room:ops", "mention")).to_have_text("@1")
    assert page.evaluate("window.__notifications") == [
        {"title": "bob in #ops", "body": "@here deploy in 5"}
    ]
    page.locator('#room-list button[data-key="room:ops"]').click()
    line = page.locator("#messages li.message").filter(has_text="deploy in 5")
    expect(line.locator("mark.at-me")).to_have_text("@here")  # the word is highlighted
    # carol was offline at the send: coming online later brings no mention of it...
    other = browser.new_page()
    try:
        _logged_in(other, web, "carol")
        expect(other.locator('#room-list button[data-key="room:ops"]')).to_have_count(1)
        expect(_badge(other, "room:ops", "mention")).to_have_count(0)
        assert other.evaluate("window.__notifications") == []
        # ...while @room reaches her wherever she is.
        bob.send(type="send", room="ops", body="@room release notes are out", ref="r")
        bob.expect("ack", ref="r")
        expect(_badge(other, "room:ops", "mention")).to_have_text("@1")
        other.wait_for_function("window.__notifications.length === 1")
    finally:
        other.close()
