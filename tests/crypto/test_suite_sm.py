"""Suite 2: SM2 / SM3 / SM4-GCM (national algorithms) through the same envelope format."""

from __future__ import annotations

import io
import os

import pytest

gmssl_pyx = pytest.importorskip("gmssl_pyx")

from cryptography.hazmat.primitives.asymmetric import utils  # noqa: E402
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes  # noqa: E402

from crypto import envelope as E  # noqa: E402
from crypto import suites  # noqa: E402
from crypto.errors import EnvelopeTampered, NotARecipient, SignatureInvalid, UnwrapFailed, WrongSigner  # noqa: E402
from crypto.header import read_header  # noqa: E402
from crypto.suite_sm import SUITE_SM, SM2PrivateKey, SM2PublicKey  # noqa: E402


@pytest.fixture(scope="module")
def keys():
    return {name: SM2PrivateKey.generate() for name in ("signer", "tender", "bidder", "other")}


def recipients(keys):
    return [E.Recipient(E.ROLE_TENDER, keys["tender"].public), E.Recipient(E.ROLE_BIDDER, keys["bidder"].public)]


def test_primitives_known_answers():
    # GB/T 32905 (SM3) example 1 and GB/T 32907 (SM4) example 1.
    assert SUITE_SM.hash(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    block = Cipher(algorithms.SM4(key), modes.ECB()).encryptor().update(key)
    assert block.hex() == "681edf34d206965e86b3e94f536e4246"
    # SM4-GCM of cryptography (used for content) and of GmSSL agree.
    nonce, aad, pt = os.urandom(12), os.urandom(20), os.urandom(100)
    ct, tag = gmssl_pyx.sm4_gcm_encrypt(key, nonce, aad, pt)
    assert SUITE_SM.aead(key).encrypt(nonce, pt, aad) == ct + tag
    assert SUITE_SM.aead(key).decrypt(nonce, ct + tag, aad) == pt


def test_sm2_signature_over_z_prefixed_digest_matches_gmssl(keys):
    """Our streaming e = SM3(Z || M) is what GmSSL's message API signs (default signer id)."""
    signer = keys["signer"]
    message = b"header || segments"
    h = SUITE_SM.signed_hash(signer.public)
    h.update(message)
    raw = SUITE_SM.sign_digest(signer, h.digest())
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    assert gmssl_pyx.sm2_verify(signer.public.point, message, der)
    r, s = utils.decode_dss_signature(gmssl_pyx.sm2_sign(signer.secret, signer.public.point, message))
    assert SUITE_SM.verify_digest(signer.public, h.digest(), r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    assert not SUITE_SM.verify_digest(keys["other"].public, h.digest(), raw)


def test_keys_from_stored_bytes(keys):
    k = keys["tender"]
    assert SM2PrivateKey.from_secret(k.secret).public == k.public
    assert SM2PublicKey.from_bytes(b"\x04" + k.public.point) == k.public
    with pytest.raises(ValueError):
        SM2PublicKey(bytes(64))


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 900])
@pytest.mark.parametrize("key_mode", [E.KEY_MODE_SINGLE, E.KEY_MODE_SPLIT])
def test_round_trip(keys, size, key_mode):
    plaintext = os.urandom(size)
    data = E.seal_bytes(plaintext, signer=keys["signer"], recipients=recipients(keys), segment_size=256,
                        key_mode=key_mode, suite=2)
    header = read_header(io.BytesIO(data))
    assert header.suite_id == 2 and header.suite is SUITE_SM and suites.get(2) is SUITE_SM
    private = [keys["tender"], keys["bidder"]]
    assert E.open_bytes(data, signer_public_key=keys["signer"].public, private_keys=private) == plaintext
    info = E.verify_bytes(data, signer_public_key=keys["signer"].public)
    assert info.size == len(data)
    E.check_content_key(data, E.content_key_from(header, private))


def test_tampering_and_wrong_keys(keys):
    data = E.seal_bytes(os.urandom(700), signer=keys["signer"], recipients=recipients(keys), segment_size=256,
                        suite=2)
    header = read_header(io.BytesIO(data))
    opener = {"signer_public_key": keys["signer"].public, "private_keys": [keys["tender"]]}
    for pos, error in ((header.length + 3, EnvelopeTampered), (len(data) - 5, SignatureInvalid),
                       (25, UnwrapFailed)):
        bad = bytearray(data)
        bad[pos] ^= 1
        with pytest.raises(error):
            E.open_bytes(bytes(bad), **opener)
    with pytest.raises(NotARecipient):
        E.open_bytes(data, signer_public_key=keys["signer"].public, private_keys=[keys["other"]])
    with pytest.raises(WrongSigner):
        E.verify_bytes(data, signer_public_key=keys["other"].public)
    with pytest.raises(TypeError, match="P-256"):
        E.seal_bytes(b"x", signer=keys["signer"], recipients=recipients(keys), suite=1)
