"""Key pairs, CSRs and passphrase-encrypted private keys (EBIDKEY v1)."""

from __future__ import annotations

import base64

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from crypto import keys

FAST = keys.MIN_SCRYPT_LOG2_N


def _same_key(a, b) -> bool:
    return a.private_numbers() == b.private_numbers()


def test_generated_keys_are_p256():
    key = keys.generate_private_key()
    assert isinstance(key.curve, ec.SECP256R1)


def test_encrypt_then_decrypt_round_trip():
    key = keys.generate_private_key()
    blob = keys.encrypt_private_key(key, "horse battery 电池", log2_n=FAST)
    assert blob.startswith(b"-----BEGIN EBID ENCRYPTED PRIVATE KEY-----\n")
    assert _same_key(keys.decrypt_private_key(blob, "horse battery 电池"), key)
    assert _same_key(keys.decrypt_private_key(blob.decode(), "horse battery 电池"), key)


def test_the_file_holds_no_plaintext_key():
    key = keys.generate_private_key()
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    raw = base64.b64decode(b"".join(keys.encrypt_private_key(key, "pw", log2_n=FAST).splitlines()[1:-1]))
    assert secret not in raw


def test_wrong_passphrase_is_named():
    blob = keys.encrypt_private_key(keys.generate_private_key(), "right", log2_n=FAST)
    with pytest.raises(keys.WrongPassphrase, match="passphrase is wrong"):
        keys.decrypt_private_key(blob, "wrong")


def test_passphrase_is_unicode_normalised():
    blob = keys.encrypt_private_key(keys.generate_private_key(), "caf\u00e9", log2_n=FAST)
    keys.decrypt_private_key(blob, "cafe\u0301")  # the same text typed another way


def test_header_is_authenticated():
    blob = keys.encrypt_private_key(keys.generate_private_key(), "pw", log2_n=FAST)
    lines = blob.splitlines()
    raw = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    raw[20] ^= 1  # a salt byte
    armoured = b"\n".join([lines[0], base64.b64encode(bytes(raw)), lines[-1]])
    with pytest.raises(keys.WrongPassphrase):
        keys.decrypt_private_key(armoured, "pw")


def test_default_parameters_are_documented_in_the_file():
    info = keys.key_file_info(keys.encrypt_private_key(keys.generate_private_key(), "pw", log2_n=FAST))
    assert (info.version, info.kdf, info.log2_n, info.r, info.p) == (1, "scrypt", FAST, 8, 1)
    assert keys.DEFAULT_SCRYPT_LOG2_N == 17


@pytest.mark.parametrize(("data", "message"), [
    (b"not a key", "BEGIN/END"),
    (b"-----BEGIN EBID ENCRYPTED PRIVATE KEY-----\n!!!\n-----END EBID ENCRYPTED PRIVATE KEY-----", "base64"),
    (b"-----BEGIN EBID ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END EBID ENCRYPTED PRIVATE KEY-----", "truncated"),
])
def test_damaged_files_are_named(data, message):
    with pytest.raises(keys.KeyFileError, match=message):
        keys.decrypt_private_key(data, "pw")


def test_unsupported_version_and_excessive_cost_are_refused():
    blob = keys.encrypt_private_key(keys.generate_private_key(), "pw", log2_n=FAST)
    lines = blob.splitlines()
    raw = base64.b64decode(b"".join(lines[1:-1]))

    def armour(b: bytes) -> bytes:
        return b"\n".join([lines[0], base64.b64encode(b), lines[-1]])

    with pytest.raises(keys.KeyFileError, match="version 2"):
        keys.decrypt_private_key(armour(raw[:7] + b"\x02" + raw[8:]), "pw")
    with pytest.raises(keys.KeyFileError, match="outside the accepted range"):
        keys.decrypt_private_key(armour(raw[:9] + bytes([30]) + raw[10:]), "pw")


def test_empty_passphrase_is_refused():
    with pytest.raises(ValueError):
        keys.encrypt_private_key(keys.generate_private_key(), "")


def test_csr_carries_the_uscc_and_a_valid_signature():
    key = keys.generate_private_key()
    csr = x509.load_pem_x509_csr(keys.make_csr(key, "张伟", uscc="91350100M000100Y43",
                                               organisation_name="福州示例有限公司", email="zw@example.test"))
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == "91350100M000100Y43"
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "张伟"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["zw@example.test"]
    assert csr.public_key().public_numbers() == key.public_key().public_numbers()


def test_sign_and_verify():
    key = keys.generate_private_key()
    signature = keys.sign(key, b"nonce")
    assert keys.verify(key.public_key(), signature, b"nonce")
    assert not keys.verify(key.public_key(), signature, b"other")
    assert not keys.verify(keys.generate_private_key().public_key(), signature, b"nonce")
