"""Where the load goes, and the rule that keeps it on this machine unless asked otherwise."""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from pathlib import Path

from securechat.errors import ConfigError


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """A server to load: its address, the CA that signed it, and how to log in there."""

    host: str
    port: int
    ca_file: Path
    web_port: int | None = None  # HTTPS and WebSocket, for --transport ws
    user_prefix: str = "bench"
    password: str = "bench-password-1"  # the throwaway server's users; never a real one

    def user(self, index: int) -> str:
        """The name of the index-th bench user: ``bench0``, ``bench1``, ..."""
        return f"{self.user_prefix}{index}"


def require_loopback(host: str, port: int, *, allow_remote: bool) -> None:
    """Refuse a host that is not a loopback address, before any packet is sent to it.

    Only name resolution happens here. A host name must resolve to loopback addresses only.

    Raises:
        ConfigError: the host is not local and ``allow_remote`` is false, or does not resolve.
    """
    if allow_remote:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    addresses = {str(info[4][0]) for info in infos}
    remote = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if remote or not addresses:
        raise ConfigError(
            f"refusing to load {host} ({', '.join(remote) or 'no address'}): it is not a "
            "loopback address; pass --allow-remote to bench a server on another machine"
        )
