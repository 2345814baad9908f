"""This machine's names and addresses, the default SANs of `securechat init-certs`."""

from __future__ import annotations

from securechat import certs, hostnames


def test_default_hosts_cover_loopback_and_skip_link_local() -> None:
    hosts = hostnames.default_hosts()
    assert hosts[:3] == ["localhost", "127.0.0.1", "::1"]
    assert len(hosts) == len(set(hosts))
    for host in hosts:
        assert not host.startswith("fe80:")
        assert host == "127.0.0.1" or not host.startswith("127.")
    certs.CertificateAuthority.create().issue_server_cert(hosts)  # every entry is a valid SAN


def test_is_dns_name_takes_labels_and_refuses_what_a_certificate_cannot_carry() -> None:
    assert hostnames.is_dns_name("chat.office.lan")
    assert hostnames.is_dns_name("host_1")
    assert not hostnames.is_dns_name("-chat.lan")
    assert not hostnames.is_dns_name("chat..lan")
    assert not hostnames.is_dns_name("a" * 64)  # one label is at most 63 characters
    assert not hostnames.is_dns_name(".".join(["a" * 63] * 4))  # 255 characters in all
