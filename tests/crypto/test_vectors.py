"""The published test vectors (tests/crypto/vectors/*.json) are what the code produces, byte for byte,
and they open, verify and combine through the public API; docs/envelope.md shows the same bytes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from crypto import envelope as E
from crypto import hpke, merkle, receipt, shamir
from tests.crypto import make_vectors

VECTORS = Path(__file__).parent / "vectors"
DOC = Path(__file__).resolve().parents[2] / "docs" / "envelope.md"


def load(name: str):
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def private(hex_scalar: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int(hex_scalar, 16), ec.SECP256R1())


@pytest.fixture(scope="module")
def regenerated():
    return make_vectors.build()


@pytest.mark.parametrize("name", make_vectors.DETERMINISTIC_FILES)
def test_files_are_reproduced_byte_for_byte(regenerated, name):
    assert (VECTORS / name).read_text(encoding="utf-8") == regenerated[name], \
        f"{name} differs from what the code produces: run python -m tests.crypto.make_vectors and review"


def test_envelope_vectors_open_and_verify():
    data = load("envelope.json")
    keys = {name: private(k["private"]) for name, k in data["keys"].items()}
    signer = keys["signer"].public_key()
    for v in data["vectors"]:
        env = bytes.fromhex(v["envelope"])
        info = E.verify_bytes(env, signer_public_key=signer, expected_context=bytes.fromhex(v["context"]))
        assert info.sha256.hex() == v["envelope_sha256"] and info.signature.hex() == v["signature"]
        assert info.header.raw.hex() == v["header"] and info.signed_digest.hex() == v["signed_digest"]
        holders = [keys[name] for name in v["recipients"]]
        assert E.open_bytes(env, signer_public_key=signer, private_keys=holders).hex() == v["plaintext"]
        assert E.open_bytes(env, signer_public_key=signer, content_key=bytes.fromhex(v["content_key"])).hex() \
            == v["plaintext"]
        assert E.read_header(io.BytesIO(env)).plaintext_length == \
            (len(v["plaintext"]) // 2 if v["length_stated"] else None)


def test_hpke_vector():
    v = load("hpke.json")
    recipient = private(v["skRm"])
    assert hpke.derive_key_pair(bytes.fromhex(v["ikmE"])).private_numbers().private_value == int(v["skEm"], 16)
    ctx = hpke.setup_base_receiver(bytes.fromhex(v["enc"]), recipient, bytes.fromhex(v["info"]))
    assert (ctx.key.hex(), ctx.base_nonce.hex()) == (v["key"], v["base_nonce"])
    assert ctx.open(bytes.fromhex(v["aad"]), bytes.fromhex(v["ct"])).hex() == v["pt"]


def test_shamir_vector():
    v = load("shamir.json")
    key = private(v["private_key"])
    shares = [bytes.fromhex(s) for s in v["shares"]]
    assert shamir.combine(shares[2:], key.public_key()).private_numbers() == key.private_numbers()
    custodian = private(v["custodian"]["private"])
    opened = shamir.decrypt_share(bytes.fromhex(v["sealed_share_1"]), custodian, context=bytes.fromhex(v["context"]))
    assert opened.to_bytes() == shares[0]


def test_merkle_vector():
    v = load("merkle.json")
    entries = [e.encode() for e in v["entries"]]
    for e in entries:
        receipt.parse_log_entry(e)
    assert [merkle.leaf_hash(e).hex() for e in entries] == v["leaf_hashes"]
    roots = [bytes.fromhex(r) for r in v["roots"]]
    assert merkle.root_hash(merkle.leaf_hash(e) for e in entries) == roots[-1]
    for p in v["inclusion"]:
        merkle.verify_inclusion(merkle.leaf_hash(entries[p["index"]]), p["index"], p["tree_size"],
                                [bytes.fromhex(x) for x in p["proof"]], roots[p["tree_size"]])
    for p in v["consistency"]:
        merkle.verify_consistency(p["old_size"], p["new_size"], roots[p["old_size"]], roots[p["new_size"]],
                                  [bytes.fromhex(x) for x in p["proof"]])


def test_receipt_vector():
    v = load("receipt.json")
    keys = {name: private(k["private"]) for name, k in v["keys"].items()}
    rec = receipt.verify_receipt(v["receipt"].encode(), receipt_key=keys["receipt"].public_key(),
                                 log_key=keys["log"].public_key(), log_entry_bytes=v["log_entry"].encode(),
                                 inclusion_proof=[bytes.fromhex(p) for p in v["inclusion_proof"]])
    assert rec.log_index == 1
    assert receipt.SignedDocument.from_json(v["receipt"]).body_bytes().decode() == v["receipt_body"]


def test_sm_known_answer_vector():
    pytest.importorskip("gmssl_pyx")
    from crypto.suite_sm import SM2PrivateKey, SM2PublicKey

    v = load("sm.json")
    signer = SM2PublicKey(bytes.fromhex(v["keys"]["signer"]["public"]))
    tender = SM2PrivateKey.from_secret(bytes.fromhex(v["keys"]["tender"]["private"]))
    env = bytes.fromhex(v["envelope"])
    assert E.open_bytes(env, signer_public_key=signer, private_keys=[tender],
                        expected_context=bytes.fromhex(v["context"])).hex() == v["plaintext"]


def test_the_format_document_shows_the_vector_bytes():
    doc = DOC.read_text(encoding="utf-8")
    vector = load("envelope.json")["vectors"][1]
    assert make_vectors.field_table(vector) in doc, "regenerate the header table in docs/envelope.md"
    assert vector["envelope"] in doc.replace("\n", "")
