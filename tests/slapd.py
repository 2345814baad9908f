"""The tests' directory: a throwaway OpenLDAP (Debian's ``slapd``) in a temporary folder.

Each :class:`Slapd` has a slapd.conf of its own (core, cosine, inetorgperson schemas; an
mdb database for ``dc=office,dc=lan``; the ppolicy overlay, whose
``pwdAccountLockedTime`` is the openldap preset's "disabled"), TLS with a certificate for
localhost and 127.0.0.1 from a CA it is given, and listens on free loopback ports for
``ldap://`` (StartTLS) and ``ldaps://``. It runs in the foreground (``-d 0``) as a child
of the test run, so stopping it is a kill and a wait, and it is told to end with the run
even when the run is killed. It starts in well under a second,
so each test gets its own, with :data:`PEOPLE` loaded: tests rename, disable and stop it.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from securechat.certs import CertificateAuthority
from securechat.directory.settings import DirectoryConfig, GroupMapping

__all__ = ["ADMIN_GROUP", "BASE", "DEV_GROUP", "PASSWORDS", "SERVICE_DN", "Slapd", "missing"]

SLAPD = Path("/usr/sbin/slapd")
INSTALL_HINT = "apt-get install slapd ldap-utils (Debian's packages; the tests start their own)"
BASE = "dc=office,dc=lan"
PEOPLE_BASE = f"ou=people,{BASE}"
SERVICE_DN = f"cn=securechat,ou=service,{BASE}"
SERVICE_PASSWORD = "service-account-secret"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root-secret"
DEV_GROUP = f"cn=dev,ou=groups,{BASE}"
ADMIN_GROUP = f"cn=chat-admins,ou=groups,{BASE}"
#: The directory's people and their passwords.
PASSWORDS = {
    "erin": "erin directory pass",
    "frank": "frank directory pass",
    "grace": "grace directory pass",
    "heidi": "heidi directory pass",
    "ivan": "correct horse battery",  # conftest.PASSWORD: the terminal fixture types it
}
#: Who is in which group at the start.
GROUPS = {DEV_GROUP: ("erin", "frank"), ADMIN_GROUP: ("grace",)}
_READY_TIMEOUT = 30.0

_CONF = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload ppolicy
pidfile {root}/slapd.pid
TLSCACertificateFile {root}/ca.pem
TLSCertificateFile {root}/server.pem
TLSCertificateKeyFile {root}/server.key
database mdb
suffix "{base}"
rootdn "{root_dn}"
rootpw {root_password}
directory {root}/data
maxsize 10485760
overlay ppolicy
access to attrs=userPassword by anonymous auth by self =xw by * none
access to * by dn.exact="{service}" read by users read by * none
"""


def person(uid: str, password: str, cn: str | None = None) -> str:
    """The LDIF of one person under ou=people."""
    return (
        f"dn: uid={uid},{PEOPLE_BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
        f"cn: {cn or uid.title()}\nsn: {uid.title()}\nmail: {uid}@office.lan\n"
        f"userPassword: {password}\n"
    )


def _people_ldif() -> str:
    entries = [
        f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: office\ndc: office\n",
        *(f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}\n"
          for ou in ("people", "groups", "service")),
        f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: securechat\nuserPassword: {SERVICE_PASSWORD}\n",
        *(person(uid, password) for uid, password in PASSWORDS.items()),
    ]  # fmt: skip
    for group, members in GROUPS.items():
        lines = [f"dn: {group}", "objectClass: groupOfNames", f"cn: {group[3:].split(',')[0]}"]
        lines += [f"member: uid={uid},{PEOPLE_BASE}" for uid in members]
        entries.append("\n".join(lines) + "\n")
    return "\n".join(entries)


def _die_with_parent() -> None:
    """In the child, before slapd starts: SIGTERM it when the test run ends, even killed
    (Linux's PR_SET_PDEATHSIG), so no slapd outlives a run."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def missing() -> str | None:
    """Why the directory tests cannot run here (one loud line), or None when they can."""
    absent = [name for name in ("ldapadd", "ldapmodify") if shutil.which(name) is None]
    if not SLAPD.is_file():
        absent.insert(0, "slapd")
    if not absent:
        return None
    return f"DIRECTORY TESTS SKIPPED: {', '.join(absent)} not found; install with `{INSTALL_HINT}`"


class Slapd:
    """One throwaway OpenLDAP server; :meth:`start`, then :meth:`stop` (idempotent)."""

    def __init__(self, root: Path, ca: CertificateAuthority, *, ppolicy: bool = True) -> None:
        """``ppolicy``: load the overlay (without it, ``pwdAccountLockedTime`` is unknown)."""
        self.root = root
        self.ca = ca
        self.ppolicy = ppolicy
        self.ldap_port = _free_port()
        self.ldaps_port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.root / "ca.pem"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    @property
    def ldap_url(self) -> str:
        return f"ldap://127.0.0.1:{self.ldap_port}"

    def start(self, *, load: bool = True) -> None:
        """Write the files, start slapd, wait until it answers; load :data:`PEOPLE`."""
        root = self.root
        (root / "data").mkdir(parents=True, exist_ok=True)
        leaf = self.ca.issue_server_cert(["localhost", "127.0.0.1"])
        self.ca_file.write_bytes(self.ca.cert_pem())
        (root / "server.pem").write_bytes(leaf.cert_pem())
        (root / "server.key").write_bytes(leaf.key_pem())
        (root / "server.key").chmod(0o600)
        conf = _CONF.format(
            root=root, base=BASE, root_dn=ROOT_DN, root_password=ROOT_PASSWORD,
            service=SERVICE_DN,
        )  # fmt: skip
        if not self.ppolicy:
            conf = conf.replace("moduleload ppolicy\n", "").replace("overlay ppolicy\n", "")
        (root / "slapd.conf").write_text(conf)
        self.resume()
        if load:
            self.modify(_people_ldif(), add=True)

    def resume(self) -> None:
        """Start slapd on the same files and ports (after :meth:`stop`)."""
        urls = f"ldap://127.0.0.1:{self.ldap_port}/ ldaps://127.0.0.1:{self.ldaps_port}/"
        with (self.root / "slapd.log").open("ab") as log:
            self._process = subprocess.Popen(
                [str(SLAPD), "-d", "0", "-f", str(self.root / "slapd.conf"), "-h", urls],
                stdout=subprocess.DEVNULL, stderr=log, preexec_fn=_die_with_parent,
            )  # fmt: skip
        deadline = time.monotonic() + _READY_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None:
                said = (self.root / "slapd.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"slapd exited with {self._process.returncode}: {said}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("slapd did not answer in time")
            time.sleep(0.05)

    def _answers(self) -> bool:
        for port in (self.ldap_port, self.ldaps_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            except OSError:
                return False
        return True

    def stop(self) -> None:
        """Stop slapd (SIGTERM, then SIGKILL after a while); its files stay."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=_READY_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def modify(self, ldif: str, *, add: bool = False) -> None:
        """Apply ``ldif`` as the directory's admin (ldapadd, or ldapmodify)."""
        tool = "ldapadd" if add else "ldapmodify"
        env = {**os.environ, "LDAPTLS_CACERT": str(self.ca_file), "LDAPTLS_REQCERT": "demand"}
        done = subprocess.run(
            [tool, "-x", "-H", self.ldaps_url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(), env=env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stderr.decode(errors='replace')}")

    def lock(self, uid: str) -> None:
        """Disable ``uid`` as the openldap preset reads it (ppolicy's permanent lock)."""
        self.modify(
            f"dn: uid={uid},{PEOPLE_BASE}\nchangetype: modify\nadd: pwdAccountLockedTime\n"
            "pwdAccountLockedTime: 000001010000Z\n"
        )

    def rename(self, uid: str, new_uid: str) -> None:
        """Rename ``uid`` to ``new_uid`` (modrdn): same entry, same entryUUID."""
        self.modify(
            f"dn: uid={uid},{PEOPLE_BASE}\nchangetype: modrdn\nnewrdn: uid={new_uid}\n"
            "deleteoldrdn: 1\n"
        )
        # groupOfNames members name the old DN (no referential integrity overlay here)
        for group, members in GROUPS.items():
            if uid in members:
                self.modify(
                    f"dn: {group}\nchangetype: modify\ndelete: member\n"
                    f"member: uid={uid},{PEOPLE_BASE}\n-\nadd: member\n"
                    f"member: uid={new_uid},{PEOPLE_BASE}\n"
                )

    def unlock(self, uid: str) -> None:
        """Enable ``uid`` again (remove the ppolicy lock)."""
        self.modify(
            f"dn: uid={uid},{PEOPLE_BASE}\nchangetype: modify\ndelete: pwdAccountLockedTime\n"
        )

    def delete(self, uid: str) -> None:
        """Remove ``uid`` from the directory."""
        self.modify(f"dn: uid={uid},{PEOPLE_BASE}\nchangetype: delete\n")

    def remove_member(self, group: str, uid: str) -> None:
        self.modify(
            f"dn: {group}\nchangetype: modify\ndelete: member\nmember: uid={uid},{PEOPLE_BASE}\n"
        )

    def config(self, *, start_tls: bool = False, **changes: object) -> DirectoryConfig:
        """A directory configuration for this server (the openldap preset): ``dev`` maps
        to the private room ``dev``, ``chat-admins`` to admins."""
        config = DirectoryConfig(
            urls=(self.ldap_url if start_tls else self.ldaps_url,),
            ca_file=self.ca_file,
            bind_dn=SERVICE_DN,
            bind_password=SERVICE_PASSWORD,
            user_base=PEOPLE_BASE,
            start_tls=start_tls,
            user_filter="(objectClass=inetOrgPerson)",
            login_attribute="uid",
            display_name_attribute="cn",
            mail_attribute="mail",
            id_attribute="entryUUID",
            disabled_filter="(pwdAccountLockedTime=*)",
            groups=(
                GroupMapping(DEV_GROUP, rooms=("dev",)),
                GroupMapping(ADMIN_GROUP, admin=True),
            ),
            timeout=10.0,
        )
        return dataclasses.replace(config, **changes)  # type: ignore[arg-type]

    def config_file(self, folder: Path, extra: str = "") -> Path:
        """A configuration file whose [directory] is :meth:`config`'s (the service
        password in a file beside it); ``extra`` goes at the end of the table."""
        secret = folder / "directory.secret"
        secret.write_text(SERVICE_PASSWORD + "\n")
        secret.chmod(0o600)
        path = folder / "securechat.toml"
        path.write_text(
            f'[directory]\npreset = "openldap"\nurl = ["{self.ldaps_url}"]\n'
            f'ca = "{self.ca_file}"\nbind_dn = "{SERVICE_DN}"\n'
            f'bind_password_file = "{secret}"\nuser_base = "{PEOPLE_BASE}"\n'
            f'sync_interval = "off"\n{extra}\n'
            f'[[directory.group]]\ndn = "{DEV_GROUP}"\nrooms = ["dev"]\n\n'
            f'[[directory.group]]\ndn = "{ADMIN_GROUP}"\nadmin = true\n'
        )
        return path


@contextlib.contextmanager
def running(root: Path, ca: CertificateAuthority) -> Iterator[Slapd]:
    """A started :class:`Slapd`, stopped after."""
    server = Slapd(root, ca)
    try:
        server.start()
        yield server
    finally:
        server.stop()
