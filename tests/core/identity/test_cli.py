"""``ebid users ...`` and ``ebid ca ...`` end to end through the command line."""

from __future__ import annotations

import pytest
from cryptography import x509

from core.db import db
from core.identity import Role, organisation_by_uscc, person_by_email
from core.identity import ca as platform_ca
from core.identity.passwords import verify_password
from crypto import keys
from tests.core.identity.conftest import CA_PASSPHRASE, audit_dump

USCC = "91350100M000100Y43"


@pytest.fixture
def cli(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None, env: dict | None = None):
        result = runner.invoke(args=list(args), input=input, env=env)
        db.session.expire_all()
        return result
    return invoke


def test_create_org_and_person_with_password_from_stdin(cli):
    result = cli("users", "create-org", "--uscc", USCC.lower(), "--name", "福州示例有限公司", "--kind", "company")
    assert result.exit_code == 0, result.output
    assert organisation_by_uscc(USCC).name == "福州示例有限公司"
    result = cli("users", "create", "--email", "zw@example.test", "--name", "张伟", "--role", "bidder",
                 "--role", "expert", "--org", USCC, "--password-stdin", input="a long enough password\n")
    assert result.exit_code == 0, result.output
    person = person_by_email("zw@example.test")
    assert verify_password(person.password_hash, "a long enough password")
    assert person.has_role(Role.BIDDER, organisation_by_uscc(USCC).id) and person.has_role(Role.EXPERT)
    assert "a long enough password" not in audit_dump()


def test_password_prompt_asks_twice(cli):
    result = cli("users", "create", "--email", "p@example.test", "--name", "P", input="prompted secret 1\n" * 2)
    assert result.exit_code == 0, result.output
    assert verify_password(person_by_email("p@example.test").password_hash, "prompted secret 1")
    assert "prompted secret 1" not in result.output


def test_password_is_never_an_argv_value(cli):
    result = cli("users", "create", "--email", "x@example.test", "--name", "X", "--password", "secret")
    assert result.exit_code != 0 and "No such option" in result.output


def test_refusals_exit_1_with_the_reason(cli):
    result = cli("users", "create-org", "--uscc", "91350100M000100Y44", "--name", "X", "--kind", "company")
    assert result.exit_code == 1 and "should be '3'" in result.output
    result = cli("users", "create", "--email", "b@example.test", "--name", "B", "--role", "bidder",
                 "--password-stdin", input="a long enough password\n")
    assert result.exit_code == 1 and "on behalf of an organisation" in result.output
    assert person_by_email("b@example.test") is None  # nothing half-made


def test_ca_init_issue_revoke_crl(cli, app, settings, tmp_path):
    passphrase_file = tmp_path / "passphrase"
    passphrase_file.write_text(CA_PASSPHRASE + "\n")
    result = cli("ca", "init", "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 0, result.output
    assert (settings.keys_dir / platform_ca.CA_CERT_FILE).exists()
    again = cli("ca", "init", "--passphrase-file", str(passphrase_file))
    assert again.exit_code == 1 and "never overwritten" in again.output

    cli("users", "create-org", "--uscc", USCC, "--name", "Fuzhou Co.", "--kind", "company")
    cli("users", "create", "--email", "h@example.test", "--name", "Holder", "--role", "bidder", "--org", USCC,
        "--no-password")
    key = keys.generate_private_key()  # on the holder's machine
    (tmp_path / "req.csr").write_bytes(keys.make_csr(key, "Fuzhou Co.", uscc=USCC))
    env = {"EBID_CA_PASSPHRASE": CA_PASSPHRASE}
    result = cli("ca", "issue", "--csr", str(tmp_path / "req.csr"), "--org", USCC, "--person", "h@example.test",
                 "--out", str(tmp_path / "cert.pem"), "--days", "90", env=env)
    assert result.exit_code == 0, result.output
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()

    wrong = cli("ca", "issue", "--csr", str(tmp_path / "req.csr"), "--person", "h@example.test",
                "--out", str(tmp_path / "x.pem"), env=env)
    assert wrong.exit_code == 1 and "must not carry an organisation identifier" in wrong.output

    serial = format(cert.serial_number, "x")
    assert cli("ca", "revoke", serial, "--reason", "key_compromise").exit_code == 0
    result = cli("ca", "crl", "--out", str(tmp_path / "crl.pem"), env={"EBID_CA_PASSPHRASE": "wrong passphrase"})
    assert result.exit_code == 1 and "passphrase is wrong" in result.output
    result = cli("ca", "crl", "--out", str(tmp_path / "crl.pem"), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 0, result.output
    crl = x509.load_pem_x509_crl((tmp_path / "crl.pem").read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert CA_PASSPHRASE not in audit_dump()
    db.session.rollback()


def test_ca_issue_needs_a_subject(cli, tmp_path):
    (tmp_path / "req.csr").write_bytes(keys.make_csr(keys.generate_private_key(), "x"))
    result = cli("ca", "issue", "--csr", str(tmp_path / "req.csr"), "--out", str(tmp_path / "c.pem"))
    assert result.exit_code == 2 and "--person EMAIL or --org USCC" in result.output

