"""``securechat init-certs`` and ``securechat fingerprint``: thin wrappers over securechat.certs.

``cryptography`` is imported when a command runs; the help needs only cert_layout's names.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from securechat import cert_layout
from securechat.cli.app import app
from securechat.cli.options import CERTS_DEFAULT, CertsDir, ConfigPath

_DESCRIPTIONS = {
    cert_layout.CA_CERT: "CA certificate",
    cert_layout.CA_DER: "CA certificate (DER), for importing into browsers and the OS",
    cert_layout.CA_KEY: "CA private key (keep secret)",
    cert_layout.SERVER_CERT: "server certificate",
    cert_layout.SERVER_KEY: "server private key (keep secret)",
}


@app.command("init-certs")
def init_certs_command(
    config: ConfigPath = None,
    directory: CertsDir = CERTS_DEFAULT,
    hosts: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            metavar="NAME_OR_IP",
            help="A host name or IP address clients will connect to; repeat for several. "
            "Default: localhost, 127.0.0.1, ::1, this machine's names and LAN addresses. "
            "With --renew: a name to add to those the certificate already has.",
            show_default=False,
        ),
    ] = None,
    days: Annotated[
        int,
        typer.Option(
            min=1, max=825, metavar="DAYS", help="Days the server certificate stays valid."
        ),
    ] = cert_layout.SERVER_DAYS,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing CA and keys. Every client must then get the new ca.pem.",
        ),
    ] = False,
    renew: Annotated[
        bool,
        typer.Option(
            "--renew",
            help="Re-issue only the server certificate and key, signed by the existing CA, "
            "for every name the current one has (plus each --host, minus each --drop-host); "
            "clients keep trusting it.",
        ),
    ] = False,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop-host",
            metavar="NAME_OR_IP",
            help="With --renew: a name to remove from the certificate; clients using it are "
            "then refused. Repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a private CA and a server certificate signed by it.

    Terminal clients need ca.pem, browsers ca.crt (the same CA); the .key files never
    leave this machine.
    """
    from securechat import certs

    report = certs.init_certs(
        directory, hosts=hosts, days=days, force=force, renew=renew, drop=drop or ()
    )
    if report.renewed:
        typer.echo(f"Renewed the server certificate in {report.directory} (CA unchanged):")
    else:
        typer.echo(f"Created a private CA and a server certificate in {report.directory}:")
    width = max(len(str(path)) for path in report.written)
    for path in report.written:
        typer.echo(f"  {path!s:<{width}}  {_DESCRIPTIONS[path.name]}")
    typer.echo(f"Server names (SANs): {', '.join(report.sans)}")
    if report.added:
        typer.echo(f"Added: {', '.join(report.added)}")
    if report.removed:
        typer.echo(f"Removed: {', '.join(report.removed)} (clients using it will be refused)")
    typer.echo(f"Server certificate expires: {_date(report.server_not_after)}")
    typer.echo(f"CA certificate expires:     {_date(report.ca_not_after)}")
    typer.echo(f"CA fingerprint (SHA-256): {report.ca_fingerprint}")
    typer.echo(
        f"Hand colleagues {report.ca_file} (terminal clients) and {report.ca_der_file} "
        "(browsers), the same CA; never a .key file. They can compare the fingerprint above."
    )


@app.command("fingerprint")
def fingerprint_command(config: ConfigPath = None, directory: CertsDir = CERTS_DEFAULT) -> None:
    """Print the SHA-256 fingerprint of the CA certificate (ca.pem).

    Users compare it with what their client shows the first time it connects.
    """
    from securechat import cert_files

    typer.echo(cert_files.ca_fingerprint(Path(directory)))


def _date(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"
