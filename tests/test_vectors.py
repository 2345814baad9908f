"""The protocol's client rules as data (tests/vectors/*.json), run against the Python
side here; the page runs the same files under Node (tests/js/), so one rule cannot
drift between the two clients and the server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from securechat.client.terminal.commands import COMMANDS, HELP
from securechat.protocol.mentions import broadcast, mention_spans, mentioned_names, mentions
from securechat.protocol.names import normalize_name

VECTORS = Path(__file__).parent / "vectors"


def _cases(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())["cases"]
    return cases


@pytest.mark.parametrize("case", _cases("mentions.json"), ids=lambda c: str(c["why"]))
def test_mention_vectors(case: dict[str, Any]) -> None:
    body, names = case["body"], case["mentions"]
    assert sorted(mentioned_names(body)) == names
    assert [[start, end] for start, end, _ in mention_spans(body)] == case["spans"]
    assert broadcast(body) == case["broadcast"]
    for name in {*names, "alice", "bob"}:
        named = name in names
        assert mentions(body, name.upper()) == (named or case["broadcast"] == "room")
        assert mentions(body, name.upper(), online=True) == (named or case["broadcast"] is not None)


@pytest.mark.parametrize("case", _cases("names.json"), ids=lambda c: str(c["why"]))
def test_name_vectors(case: dict[str, Any]) -> None:
    assert normalize_name(case["raw"]) == case["name"]


def test_terminal_help_agrees_with_the_shared_command_table() -> None:
    shared = json.loads((VECTORS / "commands.json").read_text())
    terminal = dict(HELP)
    for command in shared["commands"]:
        assert terminal.get(command["usage"]) == command["help"], command["usage"]
    listed = {c["usage"].split()[0] for c in shared["commands"]} | set(shared["terminal_only"])
    assert set(COMMANDS) == listed, "a terminal command neither shared nor terminal_only"
