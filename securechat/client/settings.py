"""Remembered connection defaults, so that a plain ``securechat connect`` works next time.

One small JSON file, ``client.json`` in the user's config directory (``platformdirs``:
``~/.config/securechat`` on Linux, ``%APPDATA%`` on Windows, or ``$SECURECHAT_CONFIG_DIR``).
It holds the server, port, user and CA path, never a password. It is written atomically
(temporary file + rename) with mode 0600 so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import platformdirs

from securechat.errors import ConfigError

CONFIG_DIR_ENV = "SECURECHAT_CONFIG_DIR"
FILE_NAME = "client.json"


@dataclasses.dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the last successful ``connect`` used; every field may be missing."""

    host: str | None = None
    port: int | None = None
    user: str | None = None
    ca_file: Path | None = None


def settings_file(environ: Mapping[str, str] = os.environ) -> Path:
    directory = environ.get(CONFIG_DIR_ENV) or platformdirs.user_config_dir("securechat")
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
    return ClientSettings(host=host, port=port, user=user, ca_file=Path(ca) if ca else None)


def save_settings(path: Path, settings: ClientSettings) -> None:
    """Write ``settings`` atomically, readable only by this user.

    Raises:
        ConfigError: the directory or file cannot be written.
    """
    data = {
        "host": settings.host,
        "port": settings.port,
        "user": settings.user,
        "ca_file": str(settings.ca_file.resolve()) if settings.ca_file else None,
    }
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".client-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
                json.dump(data, out, indent=2)
                out.write("\n")
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):  # never created or already moved
                os.unlink(temp)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot save settings to {path}: {exc.strerror or exc}") from exc
