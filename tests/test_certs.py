"""The private CA, the server certificate, their files, and `securechat init-certs`/`fingerprint`."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import re
import shutil
import stat
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from securechat import cert_files, certs
from securechat.errors import CertificateError, CertificatesMissing, ConfigError
from tests.conftest import CliRunner

FINGERPRINT = re.compile(r"([0-9A-F]{2}:){31}[0-9A-F]{2}")
ExtT = TypeVar("ExtT", bound=x509.ExtensionType)
FILES = (certs.CA_CERT, certs.CA_DER, certs.CA_KEY, certs.SERVER_CERT, certs.SERVER_KEY)


@pytest.fixture(scope="module")
def ca() -> certs.CertificateAuthority:
    return certs.CertificateAuthority.create()


def ext(cert: x509.Certificate, kind: type[ExtT]) -> x509.Extension[ExtT]:
    return cert.extensions.get_extension_for_class(kind)


def days_left(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - dt.datetime.now(dt.UTC)) / dt.timedelta(days=1)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILES}


def test_ca_is_a_p256_ca_for_ten_years_without_intermediates(
    ca: certs.CertificateAuthority,
) -> None:
    constraints = ext(ca.cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = ext(ca.cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = ext(ca.cert, x509.SubjectKeyIdentifier).value
    assert ext(ca.cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest
    assert isinstance(ca.key.curve, ec.SECP256R1)
    assert 3649 < days_left(ca.cert) <= 3650


def test_server_cert_is_a_p256_leaf_for_serverauth_signed_by_the_ca(
    ca: certs.CertificateAuthority,
) -> None:
    server = ca.issue_server_cert(["chat.example", "192.0.2.7", "fd00::7"])
    cert = server.cert
    assert cert.issuer == ca.cert.subject
    cert.verify_directly_issued_by(ca.cert)
    assert ext(cert, x509.BasicConstraints).value.ca is False
    assert ext(cert, x509.BasicConstraints).critical
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = ext(cert, x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    ca_ski = ext(ca.cert, x509.SubjectKeyIdentifier).value.digest
    assert ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski
    own_ski = x509.SubjectKeyIdentifier.from_public_key(server.key.public_key()).digest
    assert ext(cert, x509.SubjectKeyIdentifier).value.digest == own_ski
    sans = ext(cert, x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["chat.example"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("fd00::7"),
    ]
    assert isinstance(server.key.curve, ec.SECP256R1)
    assert 89 < days_left(cert) <= 90


def test_server_cert_days_can_be_changed_but_never_outlive_the_ca(
    ca: certs.CertificateAuthority,
) -> None:
    assert 29 < days_left(ca.issue_server_cert(["localhost"], days=30).cert) <= 30
    short_lived = certs.CertificateAuthority.create(days=10)
    capped = short_lived.issue_server_cert(["localhost"], days=30).cert
    assert capped.not_valid_after_utc == short_lived.cert.not_valid_after_utc


@pytest.mark.parametrize("host", ["", "bad name", "exa mple.com", "-x.example", "fe80::1%eth0"])
def test_issue_server_cert_rejects_what_is_neither_name_nor_address(
    ca: certs.CertificateAuthority, host: str
) -> None:
    with pytest.raises(ConfigError):
        ca.issue_server_cert([host])


def test_fingerprint_is_colon_separated_uppercase_sha256(ca: certs.CertificateAuthority) -> None:
    assert FINGERPRINT.fullmatch(ca.fingerprint())
    assert ca.fingerprint() == certs.fingerprint(ca.cert)


def test_init_certs_writes_its_files_with_private_keys_0600(tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    report = certs.init_certs(directory, hosts=["localhost"])
    assert sorted(p.name for p in report.written) == sorted(FILES)
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)  # no temp files left
    for name in (certs.CA_KEY, certs.SERVER_KEY):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert report.sans == ("localhost",)
    assert report.ca_fingerprint == certs.load_ca(directory).fingerprint()
    assert report.ca_file == directory / certs.CA_CERT


def test_init_certs_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=None)
    before = snapshot(tmp_path)
    with pytest.raises(CertificateError, match=r"ca\.pem already exists; .*--force"):
        certs.init_certs(tmp_path, hosts=None)
    assert snapshot(tmp_path) == before


def test_init_certs_refuses_even_when_only_a_key_exists(tmp_path: Path) -> None:
    (tmp_path / certs.SERVER_KEY).write_text("precious")
    with pytest.raises(CertificateError, match=r"server\.key already exists"):
        certs.init_certs(tmp_path, hosts=None)
    assert (tmp_path / certs.SERVER_KEY).read_text() == "precious"


def test_init_certs_force_replaces_ca_and_keys_with_fresh_0600_files(tmp_path: Path) -> None:
    first = certs.init_certs(tmp_path, hosts=None)
    os.chmod(tmp_path / certs.CA_KEY, 0o644)
    second = certs.init_certs(tmp_path, hosts=None, force=True)
    assert second.ca_fingerprint != first.ca_fingerprint
    assert stat.S_IMODE((tmp_path / certs.CA_KEY).stat().st_mode) == 0o600


def test_init_certs_renew_keeps_the_ca_and_replaces_server_cert_and_key(tmp_path: Path) -> None:
    first = certs.init_certs(tmp_path, hosts=["localhost"])
    before = snapshot(tmp_path)
    second = certs.init_certs(tmp_path, hosts=["chat.example"], days=30, renew=True)
    after = snapshot(tmp_path)
    assert second.ca_fingerprint == first.ca_fingerprint
    assert after[certs.CA_CERT] == before[certs.CA_CERT]
    assert after[certs.CA_KEY] == before[certs.CA_KEY]
    assert after[certs.SERVER_CERT] != before[certs.SERVER_CERT]
    assert after[certs.SERVER_KEY] != before[certs.SERVER_KEY]
    assert [p.name for p in second.written] == [certs.SERVER_KEY, certs.SERVER_CERT]
    assert second.sans == ("localhost", "chat.example")  # the old names stay
    assert (second.added, second.removed) == (("chat.example",), ())
    assert cert_files.check_server_files(tmp_path).cert_file == tmp_path / certs.SERVER_CERT


def test_init_certs_renew_without_ca_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"--renew needs the existing CA"):
        certs.init_certs(tmp_path, hosts=None, renew=True)
    assert list(tmp_path.iterdir()) == []


def test_init_certs_rejects_force_with_renew(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be combined"):
        certs.init_certs(tmp_path, hosts=None, force=True, renew=True)


def test_init_certs_writes_nothing_when_a_host_is_invalid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bad host"):
        certs.init_certs(tmp_path / "certs", hosts=["bad host"])
    assert not (tmp_path / "certs").exists()


def test_server_cert_info_reports_sans_expiry_and_fingerprint(tmp_path: Path) -> None:
    report = certs.init_certs(tmp_path, hosts=["localhost", "127.0.0.1"])
    info = cert_files.server_cert_info(tmp_path / certs.SERVER_CERT)
    assert info.sans == ["localhost", "127.0.0.1"]
    assert info.not_after == report.server_not_after
    assert FINGERPRINT.fullmatch(info.fingerprint)
    assert info.fingerprint != report.ca_fingerprint


def test_check_server_files_accepts_what_init_certs_made(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=None)
    files = cert_files.check_server_files(tmp_path)
    assert files == cert_files.ServerCertFiles(
        tmp_path / certs.SERVER_CERT, tmp_path / certs.SERVER_KEY, tmp_path / certs.CA_CERT
    )


def test_check_server_files_explains_missing_folder_and_files(tmp_path: Path) -> None:
    for empty in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(CertificatesMissing, match=rf"no certificates in {empty} \(the --certs"):
            cert_files.check_server_files(empty)
    certs.init_certs(tmp_path, hosts=None)
    (tmp_path / certs.SERVER_KEY).unlink()
    with pytest.raises(
        CertificateError, match=r"server\.key not found; run `securechat init-certs"
    ):
        cert_files.check_server_files(tmp_path)


def test_check_server_files_rejects_key_that_does_not_match(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=None)
    shutil.copy(tmp_path / certs.CA_KEY, tmp_path / certs.SERVER_KEY)
    with pytest.raises(CertificateError, match=r"server\.key does not match .*server\.pem"):
        cert_files.check_server_files(tmp_path)


def test_check_server_files_rejects_cert_from_another_ca(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=None)
    (tmp_path / certs.CA_CERT).write_bytes(certs.CertificateAuthority.create().cert_pem())
    with pytest.raises(CertificateError, match=r"was not issued by .*ca\.pem"):
        cert_files.check_server_files(tmp_path)


def test_check_server_files_rejects_garbage_and_unreadable_files(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=None)
    (tmp_path / certs.SERVER_CERT).write_text("not a certificate")
    with pytest.raises(CertificateError, match=r"server\.pem is not a PEM certificate"):
        cert_files.check_server_files(tmp_path)
    (tmp_path / certs.SERVER_CERT).unlink()
    (tmp_path / certs.SERVER_CERT).mkdir()
    with pytest.raises(CertificateError, match=r"cannot read .*server\.pem"):
        cert_files.check_server_files(tmp_path)


def test_load_ca_rejects_mismatched_key(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=None)
    shutil.copy(tmp_path / certs.SERVER_KEY, tmp_path / certs.CA_KEY)
    with pytest.raises(CertificateError, match=r"ca\.key does not match"):
        certs.load_ca(tmp_path)


# --- the command line, as a real subprocess -------------------------------------------------


def test_cli_init_certs_prints_files_sans_fingerprint_and_what_to_hand_out(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    result = run_cli("init-certs", "--host", "chat.example", "--host", "192.0.2.10")
    assert result.returncode == 0, result.stderr
    ca = certs.load_ca(tmp_path / "certs")
    for name in FILES:
        assert str(Path("certs") / name) in result.stdout
    assert "chat.example, 192.0.2.10" in result.stdout
    assert ca.fingerprint() in result.stdout
    assert (
        "Hand colleagues certs/ca.pem (terminal clients) and certs/ca.crt (browsers), the same CA"
        in result.stdout
    )
    assert "expires" in result.stdout


def test_cli_init_certs_uses_default_hosts_and_env_folder(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    result = run_cli("init-certs", env={"SECURECHAT_CERTS": "keys"})
    assert result.returncode == 0, result.stderr
    info = cert_files.server_cert_info(tmp_path / "keys" / certs.SERVER_CERT)
    assert info.sans[:3] == ["localhost", "127.0.0.1", "::1"]
    assert ", ".join(info.sans) in result.stdout


def test_cli_init_certs_refuses_second_run_with_one_line_error(run_cli: CliRunner) -> None:
    assert run_cli("init-certs").returncode == 0
    result = run_cli("init-certs")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("securechat: error: certs/ca.pem already exists")
    assert "--force" in lines[0]


def test_cli_init_certs_renew_keeps_the_ca_fingerprint(run_cli: CliRunner) -> None:
    first = run_cli("init-certs")
    renewed = run_cli("init-certs", "--renew", "--days", "30")
    assert renewed.returncode == 0, renewed.stderr
    assert "Renewed the server certificate" in renewed.stdout
    fingerprints = [FINGERPRINT.search(r.stdout) for r in (first, renewed)]
    assert fingerprints[0] is not None
    assert fingerprints[1] is not None
    assert fingerprints[0].group() == fingerprints[1].group()


def test_cli_init_certs_renew_without_ca_fails_cleanly(run_cli: CliRunner) -> None:
    result = run_cli("init-certs", "--renew", "--dir", "empty")
    assert result.returncode == 1
    assert result.stderr.startswith("securechat: error: --renew needs the existing CA")
    assert "Traceback" not in result.stderr


def test_cli_fingerprint_matches_init_certs(run_cli: CliRunner, tmp_path: Path) -> None:
    made = run_cli("init-certs", "--dir", "c")
    shown = run_cli("fingerprint", "--certs", "c")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == certs.load_ca(tmp_path / "c").fingerprint()
    assert shown.stdout.strip() in made.stdout


def test_cli_fingerprint_from_another_folder_points_at_certs_before_init_certs(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    """Run where there is no certs/, fingerprint must not send the admin to make a new CA."""
    result = run_cli("fingerprint")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        f"securechat: error: no certificates in {tmp_path / 'certs'} (the --certs folder, "
        f"relative to the current folder {tmp_path}): if they are elsewhere, pass --certs DIR "
        "or SECURECHAT_CERTS"
    )


def test_init_certs_writes_the_new_key_and_certificate_before_renaming_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certs.init_certs(tmp_path, hosts=["localhost"])
    waiting: list[list[str]] = []  # the temporaries present at each rename
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        temporaries = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
        waiting.append(sorted(".".join(name.split(".")[1:3]) for name in temporaries))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    certs.init_certs(tmp_path, hosts=["localhost"], renew=True)
    # Both files were on disk before the first rename: a reader can meet a new key with the
    # old certificate only between two renames, never across a write and an fsync.
    assert waiting == [["server.key", "server.pem"], ["server.pem"]]


def test_renew_as_the_client_hint_says_keeps_every_name_and_adds_the_new_one(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    """The hint a client prints for a missing name, run as written, cuts nobody off."""
    made = run_cli("init-certs", "--host", "chat.office.lan", "--host", "192.168.1.20")
    assert made.returncode == 0, made.stderr
    renewed = run_cli("init-certs", "--renew", "--host", "127.0.0.1")
    assert renewed.returncode == 0, renewed.stderr
    sans = cert_files.server_cert_info(tmp_path / "certs" / certs.SERVER_CERT).sans
    assert sans == ["chat.office.lan", "192.168.1.20", "127.0.0.1"]
    assert "Added: 127.0.0.1" in renewed.stdout
    assert "Removed" not in renewed.stdout


def test_renew_without_host_keeps_the_names_not_this_machines(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    assert run_cli("init-certs", "--host", "chat.office.lan").returncode == 0
    renewed = run_cli("init-certs", "--renew")
    assert renewed.returncode == 0, renewed.stderr
    assert cert_files.server_cert_info(tmp_path / "certs" / certs.SERVER_CERT).sans == [
        "chat.office.lan"
    ]
    assert "Added" not in renewed.stdout
    assert "Removed" not in renewed.stdout


def test_renew_removes_a_name_only_when_told_and_says_so(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    assert (
        run_cli("init-certs", "--host", "chat.office.lan", "--host", "old.office.lan").returncode
        == 0
    )
    renewed = run_cli("init-certs", "--renew", "--drop-host", "old.office.lan", "--host", "new.lan")
    assert renewed.returncode == 0, renewed.stderr
    sans = cert_files.server_cert_info(tmp_path / "certs" / certs.SERVER_CERT).sans
    assert sans == ["chat.office.lan", "new.lan"]
    assert "Added: new.lan" in renewed.stdout
    assert "Removed: old.office.lan (clients using it will be refused)" in renewed.stdout


def test_drop_host_refuses_a_name_the_certificate_lacks_or_a_new_ca(
    run_cli: CliRunner, tmp_path: Path
) -> None:
    assert run_cli("init-certs", "--host", "chat.office.lan").returncode == 0
    before = snapshot(tmp_path / "certs")
    for args, message in (
        (("--renew", "--drop-host", "other.lan"), "the certificate does not name 'other.lan'"),
        (("--renew", "--drop-host", "chat.office.lan"), "needs at least one host"),
        (("--force", "--drop-host", "chat.office.lan"), "--drop-host goes with --renew"),
    ):
        result = run_cli("init-certs", *args)
        assert result.returncode == 1, args
        assert message in result.stderr, result.stderr
    assert snapshot(tmp_path / "certs") == before


def test_renew_with_an_unreadable_certificate_needs_the_names(tmp_path: Path) -> None:
    certs.init_certs(tmp_path, hosts=["chat.office.lan"])
    (tmp_path / certs.SERVER_CERT).write_text("garbage")
    with pytest.raises(CertificateError, match=r"name every host with --host"):
        certs.init_certs(tmp_path, hosts=None, renew=True)
    report = certs.init_certs(tmp_path, hosts=["chat.office.lan"], renew=True)
    assert report.sans == ("chat.office.lan",)


def test_ca_crt_is_ca_pem_for_browsers_with_the_same_fingerprint(tmp_path: Path) -> None:
    """README and docs/deploy.md: the file hash of ca.crt is the fingerprint colleagues compare."""
    report = certs.init_certs(tmp_path, hosts=["localhost"])
    der = (tmp_path / certs.CA_DER).read_bytes()
    assert x509.load_der_x509_certificate(der) == certs.read_certificate(tmp_path / certs.CA_CERT)
    assert hashlib.sha256(der).hexdigest().upper() == report.ca_fingerprint.replace(":", "")
