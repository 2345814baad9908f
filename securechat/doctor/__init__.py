"""``securechat doctor``: check a server installation and say how to fix what is wrong.

Each check yields :class:`Finding` values, OK, WARN or FAIL, and every problem carries the
command or step that fixes it. Checks only read: the database is never migrated and no file
is changed. The port checks connect to 127.0.0.1 only; the ``directory`` checks, with a
``[directory]`` table, to the directory servers it names. The checks are grouped by what
they look at: ``certificates``, ``database``, ``files`` (the shared files' folder),
``network`` (the port) and ``directory``;
:func:`examine` runs them all.
"""

from __future__ import annotations

from securechat.doctor import certificates, database, directory, files, network
from securechat.doctor.findings import Finding, Installation, Status

__all__ = ["Finding", "Installation", "Status", "examine"]


def examine(installation: Installation) -> list[Finding]:
    """Run every check, in the order an admin would fix things."""
    checks = (
        *certificates.CHECKS,
        *database.CHECKS,
        *files.CHECKS,
        *network.CHECKS,
        *directory.CHECKS,
    )
    return [finding for check in checks for finding in check(installation)]
