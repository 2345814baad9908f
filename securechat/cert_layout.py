"""The certificate folder's file names and the certificates' lifetimes.

Apart from :mod:`securechat.certs` so that naming them (``init-certs --help``, its report)
does not import ``cryptography``.
"""

from __future__ import annotations

CA_CERT, CA_KEY = "ca.pem", "ca.key"
CA_DER = "ca.crt"  # the CA certificate again, DER: double-click imports it on Windows and macOS
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"
CA_DAYS = 3650
SERVER_DAYS = 90
