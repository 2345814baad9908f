"""``securechat room``: the console's actions, as real subprocesses, reaching the live
sessions of a running server through the journal tail within a second."""

from __future__ import annotations

import pytest

from tests.conftest import TIMEOUT, CliRunner, RunningServer

pytestmark = pytest.mark.postgresql


def _ok(run_cli: CliRunner, db_url: str, *args: str) -> str:
    result = run_cli("room", *args, "--db", db_url)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.timeout(240)  # eleven CLI processes: over a minute on a loaded 2-core machine
def test_console_actions_reach_live_sessions(
    running_server: RunningServer, run_cli: CliRunner
) -> None:
    db_url = running_server.db_url
    alice, bob = running_server.login("alice"), running_server.login("bob")
    assert _ok(run_cli, db_url, "create", "ops", "--private", "--owner", "alice") == (
        "created private room #ops\n"
    )
    _ok(run_cli, db_url, "invite", "ops", "bob")
    event = bob.expect("room_event", timeout=TIMEOUT)
    assert (event["action"], event["actor"], event["user"]) == ("invite", "console", "bob")
    bob.send(type="join", room="ops", ref="j")
    assert bob.expect("joined", ref="j")["private"] is True
    _ok(run_cli, db_url, "mute", "ops", "bob")
    assert bob.expect("room_event", action="mute", timeout=TIMEOUT)["actor"] == "console"
    bob.send(type="send", room="ops", body="hi", ref="s")
    assert bob.expect("error", ref="s")["code"] == "forbidden"
    _ok(run_cli, db_url, "kick", "ops", "bob")
    assert bob.expect("left", timeout=TIMEOUT) == {"type": "left", "room": "ops"}
    assert alice.expect("room_event", action="kick", timeout=TIMEOUT)["user"] == "bob"
    _ok(run_cli, db_url, "topic", "ops", "deploys at five")
    assert alice.expect("room_event", action="topic", timeout=TIMEOUT)["topic"] == "deploys at five"
    listing = _ok(run_cli, db_url, "list")
    assert "#ops  private  owner=alice  members=1  topic='deploys at five'" in listing
    _ok(run_cli, db_url, "delete", "ops")
    assert alice.expect("left", timeout=TIMEOUT) == {"type": "left", "room": "ops"}
    audit = _ok(run_cli, db_url, "audit", "ops").splitlines()
    assert [line.split("  ")[1:3] for line in audit] == [
        ["console", "create"], ["console", "invite"], ["console", "mute"],
        ["console", "kick"], ["console", "topic"], ["console", "delete"],
    ]  # fmt: skip


def test_console_refusals_are_one_line(running_server: RunningServer, run_cli: CliRunner) -> None:
    db_url = running_server.db_url
    result = run_cli("room", "kick", "nothere", "bob", "--db", db_url)
    assert (result.returncode, result.stderr) == (1, "securechat: error: no room 'nothere'\n")
    _ok(run_cli, db_url, "create", "ops")
    result = run_cli("room", "kick", "ops", "nobody", "--db", db_url)
    assert (result.returncode, result.stderr) == (1, "securechat: error: no user 'nobody'\n")
    result = run_cli("room", "create", "ops", "--db", db_url)
    assert result.returncode == 1
    assert "exists already" in result.stderr
