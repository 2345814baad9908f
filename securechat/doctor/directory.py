"""``doctor``'s directory checks: each configured directory server answers over verified
TLS, its certificate is not about to expire, and the service account can search."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

from securechat.directory.client import DirectoryClient
from securechat.doctor.findings import Check, Finding, Installation, Status
from securechat.errors import CertificateError, DirectoryError

#: A directory certificate expiring sooner than this is a warning.
EXPIRY_WARNING = dt.timedelta(days=30)
_FIX_TLS = (
    "check that the server is up and that `ca` in [directory] is the CA that issued its "
    "certificate (for Active Directory: the domain's CA); `securechat directory test NAME` "
    "shows the same connection"
)


def _servers(inst: Installation) -> Iterator[Finding]:
    config = inst.directory
    if config is None:
        return
    for url in config.urls:
        try:
            probe = DirectoryClient(dataclasses.replace(config, urls=(url,))).probe()
        except CertificateError as exc:
            yield Finding(Status.FAIL, "directory", f"{config.ca_file}: {exc.message}",
                          "name the directory's CA certificate (PEM) in `ca`")  # fmt: skip
            return
        except DirectoryError as exc:
            yield Finding(Status.FAIL, "directory", exc.message, _FIX_TLS)
            continue
        left = probe.not_after - dt.datetime.now(dt.UTC)
        detail = (
            f"{url}: {probe.tls_version}, certificate from {probe.issuer} valid until "
            f"{probe.not_after:%Y-%m-%d}; the service account binds"
        )
        if left < EXPIRY_WARNING:
            yield Finding(Status.WARN, "directory", f"{detail}, but expires in {left.days} days",
                          "renew the directory server's certificate")  # fmt: skip
        else:
            yield Finding(Status.OK, "directory", detail)


def _search(inst: Installation) -> Iterator[Finding]:
    config = inst.directory
    if config is None:
        return
    try:
        DirectoryClient(config).find_user("securechat-doctor")
    except (CertificateError, DirectoryError) as exc:
        yield Finding(Status.FAIL, "directory users", f"cannot search {config.user_base}: "
                      f"{exc.message}", "give the service account read access to user_base")  # fmt: skip
        return
    yield Finding(
        Status.OK, "directory users", f"the service account can search {config.user_base}"
    )


CHECKS: tuple[Check, ...] = (_servers, _search)
