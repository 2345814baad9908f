r"""Remembered connection defaults, so that a plain ``securechat connect`` works next time.

One small JSON file, ``client.json`` in the user's config directory (``platformdirs``:
``~/.config/securechat`` on Linux, ``~/Library/Application Support/securechat`` on macOS,
``%LOCALAPPDATA%\securechat`` on Windows, or ``$SECURECHAT_CONFIG_DIR``).
It holds the last server, port, user and CA path, never a password, and under ``trusted``
the CAs pinned (accepted on first use, or copied from ``--ca FILE``), one per server
(``host:port``), with when and which fingerprint: each read of a pinned file is checked
against it, and a later refusal can say what was trusted. It is written
atomically (temporary file + rename) with mode 0600 so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from securechat.errors import ConfigError
from securechat.files import write_atomic

CONFIG_DIR_ENV = "SECURECHAT_CONFIG_DIR"
FILE_NAME = "client.json"


@dataclasses.dataclass(frozen=True, slots=True)
class TrustedCA:
    """A CA the user accepted for one server after comparing its fingerprint."""

    ca_file: Path
    fingerprint: str
    trusted_on: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the last successful ``connect`` used (every field may be missing), and the pins.

    ``trusted`` maps :func:`server_key` to the CA pinned for that server.
    """

    host: str | None = None
    port: int | None = None
    user: str | None = None
    ca_file: Path | None = None
    trusted: Mapping[str, TrustedCA] = dataclasses.field(default_factory=dict)


def server_key(host: str, port: int) -> str:
    """How ``trusted`` names a server: host names are case-insensitive, ports are not."""
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def settings_file(environ: Mapping[str, str] = os.environ) -> Path:
    directory = environ.get(CONFIG_DIR_ENV) or platformdirs.user_config_dir(
        "securechat", appauthor=False
    )
    return Path(directory) / FILE_NAME


def load_settings(path: Path) -> ClientSettings:
    """The remembered settings; empty ones when the file does not exist yet.

    Raises:
        ConfigError: the file exists but cannot be read or is not what we wrote.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ClientSettings()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read remembered settings {path}: {exc}; delete it") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"remembered settings {path} are not a JSON object; delete the file")
    host, port, user, ca = (data.get(k) for k in ("host", "port", "user", "ca_file"))
    if not all(isinstance(v, str) or v is None for v in (host, user, ca)) or not (
        port is None or (isinstance(port, int) and not isinstance(port, bool))
    ):
        raise ConfigError(f"remembered settings {path} hold a bad value; delete the file")
    trusted = _load_trusted(data.get("trusted") or {}, path)
    return ClientSettings(
        host=host, port=port, user=user, ca_file=Path(ca) if ca else None, trusted=trusted
    )


def save_settings(path: Path, settings: ClientSettings) -> None:
    """Write ``settings`` atomically, readable only by this user.

    Raises:
        ConfigError: the directory or file cannot be written.
    """
    data: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "ca_file": str(settings.ca_file.resolve()) if settings.ca_file else None,
    }
    if settings.trusted:  # absent until the first pin, so older files read the same
        data["trusted"] = {
            key: {
                "ca_file": str(pin.ca_file.resolve()),
                "fingerprint": pin.fingerprint,
                "trusted_on": pin.trusted_on.isoformat(timespec="seconds"),
            }
            for key, pin in sorted(settings.trusted.items())
        }
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(path, (json.dumps(data, indent=2) + "\n").encode(), mode=0o600)
    except OSError as exc:
        raise ConfigError(f"cannot save settings to {path}: {exc.strerror or exc}") from exc


def _load_trusted(raw: object, path: Path) -> dict[str, TrustedCA]:
    bad = ConfigError(
        f"the trusted CAs in {path} hold a bad value; delete the file "
        "(you will be asked to compare fingerprints again)"
    )
    if not isinstance(raw, dict):
        raise bad
    trusted: dict[str, TrustedCA] = {}
    for key, entry in raw.items():
        if not isinstance(entry, dict):
            raise bad
        ca_file, fingerprint, when = (
            entry.get(k) for k in ("ca_file", "fingerprint", "trusted_on")
        )
        if not (
            isinstance(ca_file, str) and isinstance(fingerprint, str) and isinstance(when, str)
        ):
            raise bad
        try:
            trusted_on = dt.datetime.fromisoformat(when)
        except ValueError as exc:
            raise bad from exc
        trusted[key] = TrustedCA(Path(ca_file), fingerprint, trusted_on)
    return trusted
