"""Trust on first use: show a new server's CA to a person, and pin it only if they say yes.

The probe and the checks of the offer are trust.py's (:func:`~securechat.client.trust.fetch_ca`);
this is the conversation around them. Nothing the server chose is printed between the
fingerprint (computed here) and the question, and the subject it chose is escaped and
cut short. Without a person at hand (``ask`` None) it refuses: a fingerprint nobody
compared proves nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from securechat.client.destination import Destination, no_ca
from securechat.client.escaping import escape
from securechat.client.trust import fetch_ca, pin_ca
from securechat.errors import CertificateError

#: For the trust-on-first-use probe and the certificate check before a password prompt.
PROBE_TIMEOUT = 10.0
#: Characters of a CA's subject shown on first use; a real one is far shorter.
SUBJECT_SHOWN = 200


def trust_on_first_use(
    to: Destination,
    settings_path: Path,
    *,
    ask: Callable[[str], str] | None,
    say: Callable[[str], None],
) -> Destination:
    """Show the server's CA with ``say``, and pin it if ``ask`` gets "yes"; ``to`` with it.

    Raises:
        ConfigError: no person to ask. CertificateError: the offer is inconsistent or the
        user did not say yes. ConnectionLost: the server cannot be reached.
    """
    if ask is None:
        raise no_ca(to)  # trust on first use needs a person comparing fingerprints
    offered = fetch_ca(to.host, to.port, timeout=PROBE_TIMEOUT, also=to.also)
    subject = escape(offered.subject)  # the server chose it: no control character gets through
    if len(subject) > SUBJECT_SHOWN:
        subject = subject[: SUBJECT_SHOWN - 1] + "…"
    # The fingerprint, computed here, comes last, right above the question: nothing the
    # server chose is printed between them.
    say(
        f"{offered.source} is new to this computer: you have no CA certificate for it yet.\n"
        "It offers this certificate authority (CA), which signed the certificate it presented:\n"
        f"  Subject: {subject}\n"
        f"  Expires: {offered.not_after:%Y-%m-%d}\n"
        "Compare its fingerprint, computed here and shown just below, with the one your admin\n"
        "published (on the server, `securechat fingerprint` prints it). If they differ, do not\n"
        "trust it: someone may be intercepting the connection.\n"
        f"  SHA-256 fingerprint: {offered.fingerprint}"
    )
    answer = ask(f'Trust this CA for {to.service}? Type "yes" to continue: ')
    if answer.strip().lower() != "yes":
        raise CertificateError(
            f"the CA of {to.service} was not trusted and nothing was saved; get ca.pem from your "
            "admin and pass --ca FILE, or connect again to compare once more"
        )
    pin = pin_ca(settings_path, to.host, to.port, offered)
    say(
        f"Trusted; saved in {pin.ca_file}.\n"
        f"You will be warned if {to.service} ever presents a certificate from another CA."
    )
    return dataclasses.replace(to, ca_file=pin.ca_file, pin=pin, ca=offered)
