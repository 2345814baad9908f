"""What counts as one source address, for every count the server keeps per address.

The login throttle, the cap on connections waiting to log in and the cap on logged-in
sessions all key a peer by :func:`address_key`, so none of them can be walked around by
a host that owns many addresses: an IPv6 host is usually given a whole /64 and may use
any address in it.
"""

from __future__ import annotations

import ipaddress


def address_key(host: str, ipv6_prefix: int) -> str:
    """The key ``host`` is counted under: an IPv4 address, or the /``ipv6_prefix`` network
    of an IPv6 one (``2001:db8:1:2::/64``).

    An IPv4-mapped IPv6 address (``::ffff:10.0.0.5``, a dual-stack listener's IPv4 client)
    counts as the IPv4 address, and a zone (``fe80::1%eth0``) is dropped. Anything that is
    not an IP address (a Unix socket's empty name) is its own key.
    """
    try:
        ip = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)
