"""``securechat doctor``'s certificate checks: the files, their modes, expiry, names, CA key."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator, Sequence

from cryptography import x509

from securechat import cert_files, certs
from securechat.doctor.findings import Check, Finding, Installation, Status
from securechat.errors import CertificateError

#: A server certificate closer than this to expiry is a warning.
EXPIRY_WARNING = dt.timedelta(days=30)
#: How a running server picks up new certificate files: said with every renewal's fix.
LOADS_IT = (
    "the server loads it within the hour, or at once with `systemctl reload securechat` "
    "(SIGHUP), no restart needed"
)


def _certificate_files(inst: Installation) -> Iterator[Finding]:
    name = "certificates"
    try:
        files = cert_files.check_server_files(inst.certs_dir)
    except CertificateError as error:
        fix = None
        if "securechat init-certs" not in error.message:
            fix = f"{_renew_command(inst)} (or put back the right files from a backup)"
        yield Finding(Status.FAIL, name, error.message, fix)
        return
    yield Finding(
        Status.OK,
        name,
        f"{files.cert_file} matches {files.key_file.name} and is signed by {files.ca_file.name}",
    )


def _key_modes(inst: Installation) -> Iterator[Finding]:
    keys = [inst.certs_dir / n for n in (certs.SERVER_KEY, certs.CA_KEY)]
    present = [key for key in keys if key.is_file()]
    try:
        exposed = cert_files.exposed_keys(inst.certs_dir)
    except CertificateError:
        return  # _certificate_files says why the folder cannot be read
    for key, mode in exposed:
        yield Finding(
            Status.FAIL,
            "key files",
            f"{key} can be read by other users (mode {mode:04o})",
            f"chmod 600 {key}",
        )
    if present and not exposed:
        names = " and ".join(key.name for key in present)
        yield Finding(Status.OK, "key files", f"{names} readable by their owner only")


def _expiry(inst: Installation) -> Iterator[Finding]:
    cert = server_cert(inst)
    if cert is None:
        return  # _certificate_files has said why
    not_after = cert.not_valid_after_utc
    left = not_after - dt.datetime.now(dt.UTC)
    when = f"{not_after:%Y-%m-%d %H:%M} UTC"
    name, fix = "expiry", f"{_renew_command(inst)}; {LOADS_IT}"
    if left <= dt.timedelta(0):
        yield Finding(Status.FAIL, name, f"the server certificate expired on {when}", fix)
    elif left < EXPIRY_WARNING:
        days = f"{left.days} days" if left.days != 1 else "1 day"
        yield Finding(Status.WARN, name, f"the server certificate expires in {days}, {when}", fix)
    else:
        yield Finding(Status.OK, name, f"the server certificate is valid until {when}")


def _host_names(inst: Installation) -> Iterator[Finding]:
    cert = server_cert(inst)
    if cert is None:
        return
    sans = certs.sans(cert)
    missing = [host for host in inst.hosts if _normalize(host) not in {_normalize(s) for s in sans}]
    named = ", ".join(sans) or "nothing"
    if missing:
        yield Finding(
            Status.FAIL,
            "host names",
            f"the server certificate does not name {', '.join(missing)} (it names {named}); "
            "clients using that name will refuse to connect",
            f"{_renew_command(inst, extra=missing)}; {LOADS_IT}",
        )
    elif inst.hosts:
        yield Finding(Status.OK, "host names", f"the certificate names {', '.join(inst.hosts)}")
    else:
        yield Finding(
            Status.OK, "host names", f"the certificate names {named} (check yours with --host)"
        )


def _ca_key(inst: Installation) -> Iterator[Finding]:
    ca_key = inst.certs_dir / certs.CA_KEY
    if not (inst.certs_dir / certs.CA_CERT).is_file():
        return
    if not ca_key.exists():
        yield Finding(
            Status.WARN,
            "CA key",
            f"{ca_key} not found, so the server certificate cannot be renewed here",
            f"put ca.key back in {inst.certs_dir} (mode 0600) before the certificate expires",
        )
        return
    try:
        certs.load_ca(inst.certs_dir)
    except CertificateError as error:
        fix = "put back the ca.key that belongs to ca.pem"
        yield Finding(Status.FAIL, "CA key", error.message, fix)
        return
    yield Finding(Status.OK, "CA key", f"{ca_key} present, so the certificate can be renewed")


def server_cert(inst: Installation) -> x509.Certificate | None:
    """The server certificate on disk, or None if it cannot be read."""
    try:
        return certs.read_certificate(inst.certs_dir / certs.SERVER_CERT)
    except CertificateError:
        return None  # reported by _certificate_files


def _normalize(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.strip()))
    except ValueError:
        return host.strip().rstrip(".").lower()


def _renew_command(inst: Installation, extra: Sequence[str] = ()) -> str:
    """``init-certs --renew`` keeping the certificate's current names (plus ``extra``)."""
    cert = server_cert(inst)
    hosts = dict.fromkeys([*(certs.sans(cert) if cert else []), *extra])
    names = "".join(f" --host {host}" for host in hosts)
    return f"run `securechat init-certs --renew --dir {inst.certs_dir}{names}`"


#: In the order an admin would fix things.
CHECKS: tuple[Check, ...] = (_certificate_files, _key_modes, _expiry, _host_names, _ca_key)
