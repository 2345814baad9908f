"""Several nodes on the client's command line (#17): a comma list of hosts, the first one's
port, and a list remembered by ``connect``. Pure: no server, no network."""

from __future__ import annotations

import pytest

from securechat.client.destination import resolve
from securechat.client.link import with_port
from securechat.client.settings import ClientSettings
from securechat.errors import ConfigError


def test_a_comma_list_gives_the_first_node_and_the_others_with_their_ports() -> None:
    to = resolve("chat1.lan:5001, chat2.lan,[::1]:6000", None, "alice", None, ClientSettings(),
                 command="send")  # fmt: skip
    assert (to.host, to.port, to.also) == ("chat1.lan", 5001, ("chat2.lan", "[::1]:6000"))
    assert [with_port(a, to.port) for a in to.also] == [("chat2.lan", 5001), ("::1", 6000)]


def test_a_remembered_list_is_used_whole_with_the_remembered_port_and_user() -> None:
    remembered = ClientSettings(host="chat1.lan,chat2.lan", port=5055, user="alice")
    to = resolve(None, None, None, None, remembered, command="send")
    assert (to.host, to.port, to.user, to.also) == ("chat1.lan", 5055, "alice", ("chat2.lan",))


@pytest.mark.parametrize("hosts", ["chat1.lan:x,chat2.lan", "a,b:port", ",,"])
def test_a_bad_list_is_a_config_error(hosts: str) -> None:
    with pytest.raises(ConfigError):
        resolve(hosts, None, "alice", None, ClientSettings(), command="send")
