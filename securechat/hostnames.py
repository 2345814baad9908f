"""This machine's own names and addresses: the SANs ``init-certs`` puts in by default.

Everything comes from this machine alone: its host name and the addresses of its
interfaces, read with ioctls and from /proc on Linux. Nothing is sent, not even a DNS
query (so no ``getfqdn``): other names, such as ``chat.office.lan``, are given with
``--host``.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
import sys
from collections.abc import Iterable
from pathlib import Path

from securechat.errors import CertificateError

_DNS_LABEL = r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_NAME = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}
_SIOCGIFADDR = 0x8915

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_dns_name(name: str) -> bool:
    """Whether ``name`` (lower case, no trailing dot) is a host name a certificate can carry."""
    return len(name) <= 253 and _DNS_NAME.fullmatch(name) is not None


def default_hosts() -> list[str]:
    """Names and addresses LAN clients may use to reach this machine, loopback first.

    Raises:
        CertificateError: an interface's address cannot be read (name hosts with --host).
    """
    hostname = socket.gethostname().lower()
    names = [hostname] if hostname not in _LOOPBACK_NAMES and is_dns_name(hostname) else []
    addresses = [
        str(a)
        for a in _local_addresses()
        if not (a.is_loopback or a.is_link_local or a.is_unspecified or a.is_multicast)
    ]
    return list(dict.fromkeys(["localhost", "127.0.0.1", "::1", *names, *addresses]))


def _local_addresses() -> Iterable[IPAddress]:
    """Interface addresses as the kernel reports them; only ioctls and /proc, nothing is sent."""
    if sys.platform != "linux":
        try:
            infos = socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            return []  # unresolvable host name: the printed SAN list shows what is covered
        return [ipaddress.ip_address(info[4][0]) for info in infos]
    return [*_ipv4_addresses(), *_ipv6_addresses()]


def _ipv4_addresses() -> list[ipaddress.IPv4Address]:
    """Each interface's IPv4 address (SIOCGIFADDR, Linux only)."""
    import fcntl
    import struct

    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, ifname in socket.if_nameindex():
            request = struct.pack("256s", ifname.encode()[:15])
            try:
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
            except OSError as exc:
                if exc.errno in (errno.EADDRNOTAVAIL, errno.ENODEV):
                    continue  # no IPv4 address, or the interface went away meanwhile
                raise CertificateError(
                    f"cannot read the address of {ifname} ({exc.strerror}); name hosts with --host"
                ) from exc
            found.append(ipaddress.IPv4Address(reply[20:24]))
    return found


def _ipv6_addresses() -> list[ipaddress.IPv6Address]:
    """Global-scope IPv6 addresses from /proc/net/if_inet6 (Linux only)."""
    try:
        lines = Path("/proc/net/if_inet6").read_text().splitlines()
    except FileNotFoundError:
        return []  # IPv6 is disabled on this machine
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[3] == "00":  # global scope only
            found.append(ipaddress.IPv6Address(bytes.fromhex(fields[0])))
    return found
