"""Keeping the server certificate fresh without a restart.

Server certificates live 90 days (Mozilla's "modern" profile), so a long-running server
must renew its own. When fewer than ``renew_before`` days remain and the CA key is in the
certificate folder, the renewer issues a new server certificate for the same names.
Without the CA key it can only warn, once a day, naming the fix (``securechat init-certs
--renew`` where the CA key is kept).

Whatever changed the files (a renewal, an admin's copy, ``init-certs --force`` with a new
CA), they reach the server the same way: :func:`load_credentials` builds a *fresh* context
from them and proves it with an in-memory handshake against ca.pem; only then is it handed
to the server, which gives it to new connections (established ones keep theirs). A pair
that fails, say a key copied before its certificate, is logged and the old pair keeps
serving; the renewer looks again after ``certificate_retry_interval`` rather than the hour.
Changes are noticed at each check (the certificate's fingerprint, ca.pem's text) or at
once when asked (:meth:`CertificateRenewer.check` with ``reload``, on SIGHUP). A
certificate from the company's own CA (``serve --cert/--key``) is watched and reloaded the
same way; only its renewal is the company CA's business, so the renewer warns instead.

Thread ownership: a renewer belongs to the server's renewal thread (a :class:`Periodic`
running :meth:`CertificateRenewer.scheduled_check`); only ``install``, the server's
callback, touches state other threads read, and :meth:`~CertificateRenewer.ask_reload`
(SIGHUP's) sets one flag under ``_asked_lock``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from securechat.cert_files import (
    ServerCertFiles,
    check_key_modes,
    check_server_files,
    check_server_pair,
    read_ca_pem,
    server_cert_info,
)
from securechat.certs import CA_CERT, CA_KEY, SERVER_CERT, fingerprint, init_certs
from securechat.errors import SecureChatError
from securechat.tls import check_server_context, server_context

log = logging.getLogger("securechat.server")

WARN_EVERY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True, slots=True)
class Credentials:
    """What a new connection is handed: the TLS context, and the CA its ``ca`` reply offers."""

    context: ssl.SSLContext
    ca_pem: str


class CurrentCredentials:
    """The credentials new connections get: replaced by the renewal thread, read by any."""

    def __init__(self, credentials: Credentials) -> None:
        self._lock = threading.Lock()
        self._credentials = credentials  # guarded by _lock, replaced whole

    def get(self) -> Credentials:
        """What a connection accepted now is handed (the acceptor, the web port's handshakes)."""
        with self._lock:
            return self._credentials

    def install(self, credentials: Credentials) -> None:
        """Hand ``credentials`` to every connection accepted from now on (renewal thread)."""
        with self._lock:
            self._credentials = credentials


@dataclasses.dataclass(frozen=True, slots=True)
class ServerFiles:
    """Where the server's certificate and key are: init-certs' folder, or a pair issued by
    the company's CA (``serve --cert/--key``). ca.pem is always in the folder."""

    certs_dir: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def cert(self) -> Path:
        return self.cert_file or self.certs_dir / SERVER_CERT

    @property
    def is_renewable_here(self) -> bool:
        """Made by init-certs, so ca.key (when present) can renew it."""
        return self.cert_file is None

    def check(self) -> ServerCertFiles:
        """What ``serve`` checks at start: present, readable, matching, issued by ca.pem.

        Raises:
            CertificateError: one line naming the problem and its fix.
        """
        if self.cert_file is not None and self.key_file is not None:
            return check_server_pair(self.cert_file, self.key_file, self.certs_dir / CA_CERT)
        return check_server_files(self.certs_dir)


def load_credentials(source: ServerFiles) -> tuple[Credentials, x509.Certificate]:
    """A fresh server context from ``source``'s files, checked by a handshake.

    Returns it with the certificate it serves.

    Raises:
        CertificateError: a file is missing or unreadable, a key can be read by others, the
            key does not match, the certificate is not from ca.pem or has expired (one line,
            with the fix).
    """
    files = source.check()  # readable messages for the usual mistakes
    check_key_modes(source.certs_dir, files.key_file)  # as serve does at start
    ca_pem = read_ca_pem(source.certs_dir)
    context = server_context(files.cert_file, files.key_file)
    served = x509.load_der_x509_certificate(check_server_context(context, ca_pem))
    return Credentials(context, ca_pem), served


class CertificateRenewer:
    """Watches the certificate folder for the server; hands good new credentials to ``install``."""

    def __init__(
        self,
        certs_dir: Path,
        install: Callable[[Credentials], None],
        *,
        renew_before_days: int,
        cert_file: Path | None = None,
        key_file: Path | None = None,
        check_interval: float = 3600.0,
        retry_interval: float = 60.0,
    ) -> None:
        """Check every ``check_interval`` s, or ``retry_interval`` s after a failure."""
        self._files = ServerFiles(certs_dir, cert_file, key_file)
        self._check_interval = check_interval
        self._retry_interval = retry_interval
        self._asked_lock = threading.Lock()
        self._reload_asked = False  # guarded by _asked_lock: ask_reload() since the last check
        self._dir = certs_dir
        self._install = install
        self._renew_before = dt.timedelta(days=renew_before_days)
        self._last_warning: dt.datetime | None = None
        # What the server serves: its certificate's fingerprint and the CA it offers. None
        # until the first check, which takes the files the server started with as served.
        self._served: tuple[str, str] | None = None
        self._reload_wanted = False  # asked for (SIGHUP) and not yet done
        self._last_failure: str | None = None  # logged once, not at every retry

    def ask_reload(self) -> None:
        """Have the next check load every file (SIGHUP). Any thread; the caller wakes it."""
        with self._asked_lock:
            self._reload_asked = True

    def scheduled_check(self) -> float:
        """One check, as the renewal thread runs it; the seconds until the next."""
        with self._asked_lock:
            reload, self._reload_asked = self._reload_asked, False
        healthy = self.check(dt.datetime.now(dt.UTC), reload=reload)
        if healthy:
            return self._check_interval
        return min(self._check_interval, self._retry_interval)

    def check(self, now: dt.datetime, *, reload: bool = False) -> bool:
        """Load changed (or, with ``reload``, all) files; renew or warn if expiry is near.

        Returns False when files were refused or a renewal failed: check again soon.
        """
        self._reload_wanted |= reload
        healthy = self._check(now)
        if healthy:
            self._last_failure = None  # a later failure is news again, even the same one
        return healthy

    def _check(self, now: dt.datetime) -> bool:
        try:
            info = server_cert_info(self._files.cert)
            on_disk = (info.fingerprint, read_ca_pem(self._dir))
        except SecureChatError as exc:
            return self._failed(f"cannot read the certificate files to check them: {exc.message}")
        if self._served is None and not self._reload_wanted:
            self._served = on_disk
        elif (self._reload_wanted or on_disk != self._served) and not self._load():
            return False
        left = info.not_after - now
        if left > self._renew_before:
            return True
        if not self._files.is_renewable_here:
            if self._last_warning is None or now - self._last_warning >= WARN_EVERY:
                self._last_warning = now
                log.warning(
                    "the server certificate %s expires %s (in %d days): have your company's CA "
                    "issue a new one and put it in place; the server loads it within the hour, "
                    "or at once on SIGHUP (`systemctl reload securechat`)",
                    self._files.cert, f"{info.not_after:%Y-%m-%d %H:%M} UTC", max(left.days, 0),
                )  # fmt: skip
            return True
        if not (self._dir / CA_KEY).exists():
            if self._last_warning is None or now - self._last_warning >= WARN_EVERY:
                self._last_warning = now
                log.warning(
                    "the server certificate expires %s (in %d days) and %s is not here to renew "
                    "it: run `securechat init-certs --renew` where the CA key is kept, copy "
                    "server.pem and server.key here; the server loads them within the hour, or "
                    "at once on SIGHUP (`systemctl reload securechat`)",
                    f"{info.not_after:%Y-%m-%d %H:%M} UTC", max(left.days, 0), CA_KEY,
                )  # fmt: skip
            return True
        try:
            report = init_certs(self._dir, hosts=info.sans, renew=True)
        except SecureChatError as exc:
            return self._failed(f"renewing the server certificate failed: {exc.message}")
        if not self._load():
            return False
        log.info(
            "renewed the server certificate for %s, valid until %s",
            ", ".join(report.sans), f"{report.server_not_after:%Y-%m-%d %H:%M} UTC",
        )  # fmt: skip
        return True

    def _load(self) -> bool:
        """Hand the server a context made from the files on disk; False if they are refused."""
        try:
            credentials, certificate = load_credentials(self._files)
        except SecureChatError as exc:
            return self._failed(
                f"refused the certificate files in {self._dir}, the old one keeps serving "
                f"new connections (trying again shortly): {exc.message}"
            )
        self._install(credentials)
        served = (fingerprint(certificate), credentials.ca_pem)
        new_ca = self._served is not None and served[1] != self._served[1]
        self._served, self._reload_wanted = served, False
        log.info(
            "loaded the server certificate from %s, valid until %s",
            self._files.cert, f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
        )  # fmt: skip
        if new_ca:
            log.info("the `ca` reply now offers the new %s", self._dir / CA_CERT)
        return True

    def _failed(self, message: str) -> bool:
        """Log ``message`` unless it is the one logged at the last try; return False."""
        if message != self._last_failure:
            self._last_failure = message
            log.error("%s", message)
        return False
