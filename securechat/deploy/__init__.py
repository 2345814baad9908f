"""Files for running securechat as a system service, shipped inside the package.

``securechat.service`` is a hardened systemd unit with ``${...}`` placeholders;
:func:`service_unit` fills them in (``$$`` stands for systemd's own ``$``, as in ``$MAINPID``). Values are checked rather than quoted: systemd gives
``%``, ``$``, quotes and spaces meanings of their own, and a path that needs none of them is
easier for an admin to read in the unit too.
"""

from __future__ import annotations

import re
import shutil
import string
import sys
from importlib import resources
from pathlib import Path, PurePosixPath

from securechat.errors import ConfigError

__all__ = ["MALLOC_TUNABLES", "default_executable", "hidden_from_service", "service_unit"]

#: glibc's allocator settings for a server of thousands of connection threads (#30): no
#: per-thread cache of freed blocks (each thread's tcache holds blocks no other thread can
#: use), and two arenas instead of eight per core. Measured in docs/performance.md (#30):
#: 1,000 idle sessions 198 -> 172 MiB. The unit sets them; the bench's server runs with them.
MALLOC_TUNABLES = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2"

_SAFE_PATH = re.compile(r"/[A-Za-z0-9_./+@:-]*")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
_STATE_ROOT = PurePosixPath("/var/lib")


def service_unit(
    *, executable: Path, user: str, state_dir: PurePosixPath, config: PurePosixPath
) -> str:
    """The systemd unit that runs ``executable serve --config config`` as ``user`` with its
    data in ``state_dir``.

    Raises:
        ConfigError: a path is relative or holds characters systemd would interpret, or
            ``user`` is not a valid system user name.
    """
    paths = (("--bin", str(executable)), ("--state-dir", str(state_dir)), ("--config", str(config)))
    for what, path in paths:
        if not _SAFE_PATH.fullmatch(path):
            raise ConfigError(
                f"{what} {path!r} must be an absolute path without spaces, quotes, % or $"
            )
    if not _USER_NAME.fullmatch(user):
        raise ConfigError(f"--user {user!r} is not a valid system user name (e.g. securechat)")
    if state_dir.is_relative_to(_STATE_ROOT) and state_dir != _STATE_ROOT:
        # systemd creates it, owned by the user, and it stays writable under ProtectSystem.
        state_directory = f"StateDirectory={state_dir.relative_to(_STATE_ROOT)}"
    else:
        state_directory = f"ReadWritePaths={state_dir}"
    template = resources.files(__name__).joinpath("securechat.service").read_text("utf-8")
    return string.Template(template).substitute(
        user=user,
        group=user,
        state_directory=state_directory,
        state_dir=str(state_dir).rstrip("/"),
        executable=executable,
        config=config,
        malloc_tunables=MALLOC_TUNABLES,
    )


def default_executable() -> Path:
    """The ``securechat`` program being run now, or failing that the one on PATH.

    Raises:
        ConfigError: none can be found.
    """
    invoked = Path(sys.argv[0])
    if invoked.name == "securechat" and invoked.is_file():
        return invoked.absolute()
    beside_python = Path(sys.executable).parent / "securechat"  # a venv's or pipx's bin/
    if beside_python.is_file():
        return beside_python
    found = shutil.which("securechat")
    if found is None:
        raise ConfigError("cannot find the securechat program; pass its path with --bin")
    return Path(found).absolute()


#: Folders the unit hides from the service, and the directive that hides them.
_HIDDEN = (
    (("/home", "/root", "/run/user"), "ProtectHome=yes hides /home and /root"),
    (("/tmp", "/var/tmp"), "PrivateTmp=yes gives it an empty /tmp and /var/tmp of its own"),
)


def hidden_from_service(executable: Path) -> str | None:
    """Why the unit's sandbox cannot see ``executable`` (or what it links to), if it cannot."""
    paths = (executable.absolute(), executable.resolve())
    for folders, why in _HIDDEN:
        if any(path.is_relative_to(folder) for path in paths for folder in folders):
            return why
    return None
