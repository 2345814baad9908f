"""Keeping the server certificate fresh without a restart.

Server certificates live 90 days (Mozilla's "modern" profile), so a long-running server
must renew its own. When fewer than ``renew_before`` days remain and the CA key is in the
certificate folder, the renewer issues a new server certificate for the same names and
loads it into the live ``SSLContext``: new handshakes get the new certificate, established
connections keep theirs and are not dropped. Without the CA key it can only warn, once a
day, naming the fix (``securechat init-certs --renew`` where the CA key is kept). A
certificate replaced on disk by hand (that fix, or ``init-certs --renew`` on this machine)
is noticed at the next check and loaded the same way.
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
from pathlib import Path

from securechat.certs import CA_KEY, SERVER_CERT, SERVER_KEY, init_certs, server_cert_info
from securechat.errors import SecureChatError

log = logging.getLogger("securechat.server")

WARN_EVERY = dt.timedelta(days=1)


class CertificateRenewer:
    def __init__(self, certs_dir: Path, tls: ssl.SSLContext, *, renew_before_days: int) -> None:
        self._dir = certs_dir
        self._tls = tls
        self._renew_before = dt.timedelta(days=renew_before_days)
        self._last_warning: dt.datetime | None = None
        self._loaded: str | None = None  # fingerprint of the certificate in the context

    def check(self, now: dt.datetime) -> None:
        """Load a certificate replaced on disk; renew (or warn) if it expires soon."""
        try:
            info = server_cert_info(self._dir / SERVER_CERT)
        except SecureChatError as exc:
            log.error("cannot read the server certificate to check its expiry: %s", exc.message)
            return
        if self._loaded is None:
            self._loaded = info.fingerprint  # the one the server started with
        elif info.fingerprint != self._loaded and self._load(info.fingerprint):
            log.info(
                "loaded the new server certificate from %s, valid until %s",
                self._dir / SERVER_CERT, f"{info.not_after:%Y-%m-%d %H:%M} UTC",
            )  # fmt: skip
        left = info.not_after - now
        if left > self._renew_before:
            return
        if not (self._dir / CA_KEY).exists():
            if self._last_warning is None or now - self._last_warning >= WARN_EVERY:
                self._last_warning = now
                log.warning(
                    "the server certificate expires %s (in %d days) and %s is not here to renew "
                    "it: run `securechat init-certs --renew` where the CA key is kept, copy "
                    "server.pem and server.key here; the server loads them without a restart",
                    f"{info.not_after:%Y-%m-%d %H:%M} UTC", max(left.days, 0), CA_KEY,
                )  # fmt: skip
            return
        try:
            report = init_certs(self._dir, hosts=info.sans, renew=True)
            renewed = server_cert_info(self._dir / SERVER_CERT)
        except SecureChatError as exc:
            log.error("renewing the server certificate failed: %s", exc.message)
            return
        if not self._load(renewed.fingerprint):
            return
        log.info(
            "renewed the server certificate for %s, valid until %s",
            ", ".join(report.sans), f"{report.server_not_after:%Y-%m-%d %H:%M} UTC",
        )  # fmt: skip

    def _load(self, fingerprint: str) -> bool:
        """Put the certificate and key on disk into the live context; False if unusable."""
        try:
            self._tls.load_cert_chain(self._dir / SERVER_CERT, self._dir / SERVER_KEY)
        except (ssl.SSLError, OSError) as exc:  # e.g. a key not (yet) matching, mid-copy
            log.error("cannot load the server certificate from %s: %s", self._dir, exc)
            return False
        self._loaded = fingerprint
        return True
