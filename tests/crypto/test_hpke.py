"""HPKE (RFC 9180): the published test vector, and cross-checks with Cryptodome's implementation."""

from __future__ import annotations

import os

import pytest
from Cryptodome.Protocol import HPKE as CryptodomeHPKE
from Cryptodome.PublicKey import ECC
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import hpke
from crypto.errors import HpkeError

H = bytes.fromhex

# RFC 9180, Appendix A.3.1: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, mode_base.
# Transcribed from the RFC text (draft-irtf-cfrg-hpke auth48, section B.3.1). The RFC has no
# P-256/AES-256-GCM vector; that combination is cross-checked against Cryptodome below.
A31 = {
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "ikmE": "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e",
    "pkEm": "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4b78e5b7f951c0900be"
            "863c403ce65c9bfcb9382657222d18c4",
    "skEm": "4995788ef4b9d6132b249ce59a77281493eb39af373d236a1fe415cb0c2d7beb",
    "ikmR": "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
    "pkRm": "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30a"
            "d6aa8f80e30f1d128aafd68a2ce72ea0",
    "skRm": "f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
    "shared_secret": "c0d26aeab536609a572b07695d933b589dcf363ff9d93c93adea537aeabb8cb8",
    "key_schedule_context": "00b88d4e6d91759e65e87c470e8b9141113e9ad5f0c8ceefc1e088c82e6980500798e486f9c9c09c9b"
                            "5c753ac72d6005de254c607d1b534ed11d493ae1c1d9ac85",
    "key": "868c066ef58aae6dc589b6cfdd18f97e",
    "base_nonce": "4e0bc5018beba4bf004cca59",
    "exporter_secret": "14ad94af484a7ad3ef40e9f3be99ecc6fa9036df9d4920548424df127ee0d99f",
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "encryptions": [
        (0, "436f756e742d30", "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434"),
        (1, "436f756e742d31", "fa6f037b47fc21826b610172ca9637e82d6e5801eb31cbd3748271affd4ecb06646e0329cbdf3c3cd655b28e82"),
        (2, "436f756e742d32", "895cabfac50ce6c6eb02ffe6c048bf53b7f7be9a91fc559402cbc5b8dcaeb52b2ccc93e466c28fb55fed7a7fec"),
        (4, "436f756e742d34", "8787491ee8df99bc99a246c4b3216d3d57ab5076e18fa27133f520703bc70ec999dd36ce042e44f0c3169a6a8f"),
        (255, "436f756e742d323535",
         "2ad71c85bf3f45c6eca301426289854b31448bcf8a8ccb1deef3ebd87f60848aa53c538c30a4dac71d619ee2cd"),
        (256, "436f756e742d323536",
         "10f179686aa2caec1758c8e554513f16472bd0a11e2a907dde0b212cbe87d74f367f8ffe5e41cd3e9962a6afb2"),
    ],
    "exports": [
        ("", "5e9bc3d236e1911d95e65b576a8a86d478fb827e8bdfe77b741b289890490d4d"),
        ("00", "6cff87658931bda83dc857e6353efe4987a201b849658d9b047aab4cf216e796"),
        ("54657374436f6e74657874", "d8f1ea7942adbba7412c6d431c62d01371ea476b823eb697e1f6e6cae1dab85a"),
    ],
}


def _scalar(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_numbers().private_value.to_bytes(32, "big").hex()


def test_rfc9180_a31_derive_key_pair():
    sk_r = hpke.derive_key_pair(H(A31["ikmR"]))
    sk_e = hpke.derive_key_pair(H(A31["ikmE"]))
    assert _scalar(sk_r) == A31["skRm"] and _scalar(sk_e) == A31["skEm"]
    assert hpke.serialize_public_key(sk_r.public_key()).hex() == A31["pkRm"]
    assert hpke.serialize_public_key(sk_e.public_key()).hex() == A31["pkEm"]


def test_rfc9180_a31_encap_decap_and_key_schedule():
    sk_r = hpke.derive_key_pair(H(A31["ikmR"]))
    shared, enc = hpke.encap(sk_r.public_key(), ikm_e=H(A31["ikmE"]))
    assert enc.hex() == A31["pkEm"] and shared.hex() == A31["shared_secret"]
    assert hpke.decap(enc, sk_r).hex() == A31["shared_secret"]
    ctx, ks_context = hpke.key_schedule(shared, H(A31["info"]), hpke.AEAD_AES_128_GCM)
    assert ks_context.hex() == A31["key_schedule_context"]
    assert (ctx.key.hex(), ctx.base_nonce.hex(), ctx.exporter_secret.hex()) == \
        (A31["key"], A31["base_nonce"], A31["exporter_secret"])


def test_rfc9180_a31_encryptions_and_exports():
    sk_r = hpke.derive_key_pair(H(A31["ikmR"]))
    enc, sender = hpke.setup_base_sender(sk_r.public_key(), H(A31["info"]), aead_id=hpke.AEAD_AES_128_GCM,
                                         ikm_e=H(A31["ikmE"]))
    receiver = hpke.setup_base_receiver(enc, sk_r, H(A31["info"]), aead_id=hpke.AEAD_AES_128_GCM)
    for seq, aad, ct in A31["encryptions"]:
        sender.seq = receiver.seq = seq
        assert sender.seal(H(aad), H(A31["pt"])).hex() == ct
        assert receiver.open(H(aad), H(ct)) == H(A31["pt"])
    for context, value in A31["exports"]:
        assert sender.export(H(context), 32).hex() == value


def _to_cryptodome(key):
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return ECC.import_key(key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return ECC.import_key(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


@pytest.mark.parametrize("aead_id", [hpke.AEAD_AES_256_GCM, hpke.AEAD_AES_128_GCM])
def test_cross_check_with_cryptodome_both_ways(aead_id):
    """Two independent implementations agree on P-256/SHA-256 with AES-256-GCM (and AES-128-GCM)."""
    receiver = ec.generate_private_key(ec.SECP256R1())
    info, aad, pt = b"ebid/envelope/v1 content-key\x01", os.urandom(32), os.urandom(32)
    dome_aead = {hpke.AEAD_AES_256_GCM: CryptodomeHPKE.AEAD.AES256_GCM,
                 hpke.AEAD_AES_128_GCM: CryptodomeHPKE.AEAD.AES128_GCM}[aead_id]
    enc, ct = hpke.seal(receiver.public_key(), pt, info=info, aad=aad, aead_id=aead_id)
    opener = CryptodomeHPKE.new(receiver_key=_to_cryptodome(receiver), aead_id=dome_aead, enc=enc, info=info)
    assert opener.unseal(ct, auth_data=aad) == pt
    sealer = CryptodomeHPKE.new(receiver_key=_to_cryptodome(receiver.public_key()), aead_id=dome_aead, info=info)
    ct2 = sealer.seal(pt, auth_data=aad)
    assert hpke.unseal(receiver, sealer.enc, ct2, info=info, aad=aad, aead_id=aead_id) == pt


def test_cross_check_with_cryptodome_on_a_fixed_ephemeral_key():
    """Same ephemeral key on both sides: byte-identical enc and ciphertext (Cryptodome's _encap hook)."""
    receiver = hpke.derive_key_pair(bytes(range(32)))
    ikm = bytes(range(32, 64))
    info, aad, pt = b"info", b"aad", b"content key 32 bytes long......."
    enc, ctx = hpke.setup_base_sender(receiver.public_key(), info, ikm_e=ikm)
    ours = ctx.seal(aad, pt)
    dome = CryptodomeHPKE.HPKE_Cipher.__new__(CryptodomeHPKE.HPKE_Cipher)
    eph = _to_cryptodome(hpke.derive_key_pair(ikm))
    shared, dome_enc = CryptodomeHPKE.HPKE_Cipher._encap(_to_cryptodome(receiver.public_key()), 0x0010,
                                                         CryptodomeHPKE.SHA256, eph_key=eph)
    assert dome_enc == enc and shared == hpke.decap(enc, receiver)
    dome._aead_id, dome._mode, dome._kem_id, dome._kdf_id = CryptodomeHPKE.AEAD.AES256_GCM, CryptodomeHPKE.MODE.BASE, 16, 1
    dome._hashmod, dome._Nk, dome._Nn, dome._Nh = CryptodomeHPKE.SHA256, 32, 12, 32
    key, base_nonce, exporter = dome._key_schedule(shared, info, b"", b"")
    assert (key, base_nonce, exporter) == (ctx.key, ctx.base_nonce, ctx.exporter_secret)
    assert ours == hpke.Context(hpke.AEAD_AES_256_GCM, key, base_nonce, exporter).seal(aad, pt)


def test_wrong_key_info_or_aad_fail():
    receiver, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    enc, ct = hpke.seal(receiver.public_key(), b"secret", info=b"i", aad=b"a")
    assert hpke.unseal(receiver, enc, ct, info=b"i", aad=b"a") == b"secret"
    for kwargs in ({"info": b"j", "aad": b"a"}, {"info": b"i", "aad": b"b"}):
        with pytest.raises(HpkeError, match="decryption failed"):
            hpke.unseal(receiver, enc, ct, **kwargs)
    with pytest.raises(HpkeError):
        hpke.unseal(other, enc, ct, info=b"i", aad=b"a")
    with pytest.raises(HpkeError):
        hpke.unseal(receiver, enc, ct[:-1] + bytes([ct[-1] ^ 1]), info=b"i", aad=b"a")


def test_malformed_encapsulations_are_refused():
    receiver = ec.generate_private_key(ec.SECP256R1())
    enc, ct = hpke.seal(receiver.public_key(), b"x", info=b"")
    compressed = receiver.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.CompressedPoint)
    for bad in (enc[:-1], compressed, b"\x04" + bytes(64), enc[:1] + bytes(reversed(enc[1:]))):
        with pytest.raises(HpkeError):
            hpke.unseal(receiver, bad, ct, info=b"")
    with pytest.raises(HpkeError, match="P-256"):
        hpke.seal(ec.generate_private_key(ec.SECP384R1()).public_key(), b"x", info=b"")
    with pytest.raises(HpkeError, match="AEAD"):
        hpke.seal(receiver.public_key(), b"x", info=b"", aead_id=3)
