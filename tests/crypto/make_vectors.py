"""Generate the crypto test vectors in tests/crypto/vectors/*.json.

    .venv/bin/python -m tests.crypto.make_vectors            # rewrite the deterministic files
    .venv/bin/python -m tests.crypto.make_vectors --refresh-sm   # also make a new SM (suite 2) vector

Everything random is drawn inside ``crypto._random.deterministic(seed)`` (an HMAC-SHA256 stream
instead of os.urandom, RFC 6979 ECDSA nonces), and every key is ``DeriveKeyPair(SHA-256(label))``
(RFC 9180 §7.1.3), so the files are reproduced byte for byte; ``test_vectors.py`` checks that. The
SM2 library draws its own randomness, so ``sm.json`` is a known-answer opening vector that is kept
unless ``--refresh-sm`` is given.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from crypto import envelope, hpke, merkle, receipt, shamir
from crypto._random import deterministic
from crypto.header import FIXED_SIZE, KEY_ID_SIZE, wrap_info

VECTORS = Path(__file__).parent / "vectors"
DETERMINISTIC_FILES = ("envelope.json", "hpke.json", "shamir.json", "merkle.json", "receipt.json")


def test_key(label: str) -> Any:
    """The fixed P-256 key of a test-vector role."""
    return hpke.derive_key_pair(hashlib.sha256(b"ebid test vector key: " + label.encode()).digest())


def _private_hex(key: Any) -> str:
    return key.private_numbers().private_value.to_bytes(32, "big").hex()


def _public_hex(key: Any) -> str:
    return key.public_key().public_bytes(serialization.Encoding.X962,
                                         serialization.PublicFormat.UncompressedPoint).hex()


def _keys(*labels: str) -> dict[str, Any]:
    return {label: {"private": _private_hex(test_key(label)), "public": _public_hex(test_key(label)),
                    "key_id": hpke_key_id(test_key(label))} for label in labels}


def hpke_key_id(key: Any) -> str:
    from crypto.suites import SUITE_P256

    return SUITE_P256.key_id(key.public_key()).hex()


CONTEXT = envelope.bid_context("T-2026-0001", "1", "91350100M000100Y43", 1)
PLAINTEXT = ("投标函 bid.json: {\"price\": \"12345678.90\", \"duration_days\": 180} " * 5).encode()

ENVELOPE_CASES = [
    {"name": "single-3.5-segments", "seed": "envelope vector 1", "key_mode": 1, "segment_size": 64,
     "plaintext": PLAINTEXT[:224], "recipients": ["tender", "bidder"], "length_stated": True},
    {"name": "empty", "seed": "envelope vector 2", "key_mode": 1, "segment_size": 64,
     "plaintext": b"", "recipients": ["tender"], "length_stated": True},
    {"name": "split-2-segments", "seed": "envelope vector 3", "key_mode": 2, "segment_size": 64,
     "plaintext": PLAINTEXT[:128], "recipients": ["tender", "bidder"], "length_stated": True},
    {"name": "length-not-stated", "seed": "envelope vector 4", "key_mode": 1, "segment_size": 64,
     "plaintext": PLAINTEXT[:100], "recipients": ["tender", "bidder"], "length_stated": False},
]


def envelope_case(case: dict[str, Any]) -> dict[str, Any]:
    signer = test_key("signer")
    roles = {"tender": envelope.ROLE_TENDER, "bidder": envelope.ROLE_BIDDER}
    recipients = [envelope.Recipient(roles[r], test_key(r).public_key()) for r in case["recipients"]]
    out = io.BytesIO()
    with deterministic(case["seed"].encode()):
        info = envelope.seal_stream(io.BytesIO(case["plaintext"]), out, signer=signer, recipients=recipients,
                                    context=CONTEXT, key_mode=case["key_mode"],
                                    segment_size=case["segment_size"],
                                    plaintext_length=len(case["plaintext"]) if case["length_stated"] else None)
    header = info.header
    parts = {name: envelope.unwrap_key_part(header, test_key(name))[1].hex() for name in case["recipients"]}
    content_key = envelope.content_key_from(header, [test_key(n) for n in case["recipients"]])
    return {
        "name": case["name"], "seed": case["seed"], "suite": 1, "key_mode": case["key_mode"],
        "segment_size": case["segment_size"], "length_stated": case["length_stated"],
        "context": CONTEXT.hex(), "plaintext": case["plaintext"].hex(), "recipients": case["recipients"],
        "content_key": content_key.hex(), "key_parts": parts, "nonce_prefix": header.nonce_prefix.hex(),
        "header": header.raw.hex(), "header_core_sha256": header.core_digest().hex(),
        "header_sha256": header.digest().hex(), "signed_digest": info.signed_digest.hex(),
        "signature": info.signature.hex(), "envelope_sha256": info.sha256.hex(), "envelope": out.getvalue().hex(),
    }


def build_envelopes() -> dict[str, Any]:
    return {"description": "ebid envelope format v1, suite 1 (P-256 / HPKE / AES-256-GCM / SHA-256). Keys are "
                           "DeriveKeyPair(SHA-256('ebid test vector key: ' + role)); randomness from the seed.",
            "keys": _keys("signer", "tender", "bidder"),
            "vectors": [envelope_case(c) for c in ENVELOPE_CASES]}


def build_hpke() -> dict[str, Any]:
    recipient = test_key("tender")
    ikm_e = hashlib.sha256(b"ebid hpke vector ephemeral").digest()
    info = wrap_info(envelope.ROLE_TENDER)
    aad = hashlib.sha256(b"header core").digest()
    shared, enc = hpke.encap(recipient.public_key(), ikm_e=ikm_e)
    ctx, ks_context = hpke.key_schedule(shared, info, hpke.AEAD_AES_256_GCM)
    content_key = bytes(range(32))
    return {"description": "HPKE mode_base, KEM 0x0010, KDF 0x0001, AEAD 0x0002 as used to wrap a content key",
            "mode": 0, "kem_id": 16, "kdf_id": 1, "aead_id": 2, "info": info.hex(), "aad": aad.hex(),
            "ikmE": ikm_e.hex(), "skEm": _private_hex(hpke.derive_key_pair(ikm_e)),
            "skRm": _private_hex(recipient), "pkRm": _public_hex(recipient), "enc": enc.hex(),
            "shared_secret": shared.hex(), "key_schedule_context": ks_context.hex(), "key": ctx.key.hex(),
            "base_nonce": ctx.base_nonce.hex(), "exporter_secret": ctx.exporter_secret.hex(),
            "pt": content_key.hex(), "ct": ctx.seal(aad, content_key).hex()}


def build_shamir() -> dict[str, Any]:
    key, custodian = test_key("tender"), test_key("custodian")
    with deterministic(b"shamir vector"):
        shares = shamir.split_private_key(key, 3, 5)
        sealed = shamir.encrypt_share(shares[0], custodian.public_key(), context=b"T-2026-0001")
    return {"description": "3-of-5 split of the tender key; share 1 encrypted to the custodian",
            "private_key": _private_hex(key), "public_key": _public_hex(key), "threshold": 3, "count": 5,
            "shares": [s.to_bytes().hex() for s in shares], "custodian": _keys("custodian")["custodian"],
            "context": b"T-2026-0001".hex(), "sealed_share_1": sealed.hex()}


def _log_entries() -> list[bytes]:
    base = {"tender": "T-2026-0001", "lot": "1"}
    sha = [hashlib.sha256(f"envelope {i}".encode()).hexdigest() for i in range(4)]
    return [
        receipt.log_entry("key-event", tender="T-2026-0001", event="opening-key-created",
                          key_id=hpke_key_id(test_key("tender")), at_ms=1_790_000_000_000),
        receipt.log_entry("submission", **base, bidder="91350100M000100Y43", bid_version=1, envelope_sha256=sha[0],
                          envelope_size=1_048_576, at_ms=1_790_000_100_000),
        receipt.log_entry("submission", **base, bidder="91110000600037341L", bid_version=1, envelope_sha256=sha[1],
                          envelope_size=2_000_000, at_ms=1_790_000_200_000),
        receipt.log_entry("replacement", **base, bidder="91350100M000100Y43", bid_version=2, envelope_sha256=sha[2],
                          envelope_size=1_048_600, replaces_sha256=sha[0], at_ms=1_790_000_300_000),
        receipt.log_entry("withdrawal", **base, bidder="91110000600037341L", bid_version=1,
                          at_ms=1_790_000_400_000, reason="bidder withdrew"),
        receipt.log_entry("key-event", tender="T-2026-0001", event="share-submitted", custodian="supervisor",
                          share_index=2, key_id=hpke_key_id(test_key("tender")), at_ms=1_790_001_000_000),
        receipt.log_entry("opening", tender="T-2026-0001", tree_size=6, at_ms=1_790_001_100_000,
                          bids=[{"lot": "1", "bidder": "91350100M000100Y43", "bid_version": 2,
                                 "envelope_sha256": sha[2]}]),
    ]


def build_merkle() -> dict[str, Any]:
    entries = _log_entries()
    tree = merkle.MerkleTree(entries)
    return {"description": "a tender log of 7 entries: leaf inputs, tree heads of every size, some proofs",
            "entries": [e.decode() for e in entries],
            "leaf_hashes": [tree.leaf_hash(i).hex() for i in range(tree.size)],
            "roots": [tree.root(n).hex() for n in range(tree.size + 1)],
            "inclusion": [{"index": i, "tree_size": n, "proof": [p.hex() for p in tree.inclusion_proof(i, n)]}
                          for i, n in ((0, 7), (3, 7), (6, 7), (2, 5))],
            "consistency": [{"old_size": m, "new_size": n, "proof": [p.hex() for p in tree.consistency_proof(m, n)]}
                            for m, n in ((1, 7), (3, 7), (4, 7), (6, 7), (2, 5))]}


def build_receipt() -> dict[str, Any]:
    entries = _log_entries()
    tree = merkle.MerkleTree(entries[:2])
    log_key, receipt_key = test_key("log"), test_key("receipt")
    with deterministic(b"receipt vector"):
        head = receipt.sign_tree_head(log_key, log_id="ebid/T-2026-0001", tree_size=2, root_hash=tree.root(),
                                      timestamp_ms=1_790_000_100_500)
        rec = receipt.sign_receipt(receipt_key, tender="T-2026-0001", lot="1", bidder="91350100M000100Y43",
                                   bid_version=1, envelope_sha256=hashlib.sha256(b"envelope 0").digest(),
                                   envelope_size=1_048_576, received_at_ms=1_790_000_100_000, log_index=1,
                                   tree_head=head)
    return {"description": "a signed tree head and a receipt for log entry 1 (signatures with RFC 6979 nonces)",
            "keys": _keys("log", "receipt"), "log_entry": entries[1].decode(),
            "inclusion_proof": [p.hex() for p in tree.inclusion_proof(1)],
            "tree_head_body": head.body_bytes().decode(), "tree_head": head.to_json().decode(),
            "receipt_body": rec.body_bytes().decode(), "receipt": rec.to_json().decode()}


def build() -> dict[str, str]:
    """Every deterministic file's exact text."""
    content = {"envelope.json": build_envelopes(), "hpke.json": build_hpke(), "shamir.json": build_shamir(),
               "merkle.json": build_merkle(), "receipt.json": build_receipt()}
    return {name: json.dumps(value, indent=1, ensure_ascii=False) + "\n" for name, value in content.items()}


def build_sm() -> str:
    from crypto.suite_sm import SM2PrivateKey

    def sm_key(label: str) -> SM2PrivateKey:
        return SM2PrivateKey.from_secret(hashlib.sha256(b"ebid sm test key: " + label.encode()).digest())

    signer, tender, bidder = sm_key("signer"), sm_key("tender"), sm_key("bidder")
    recipients = [envelope.Recipient(envelope.ROLE_TENDER, tender.public),
                  envelope.Recipient(envelope.ROLE_BIDDER, bidder.public)]
    data = envelope.seal_bytes(PLAINTEXT[:200], signer=signer, recipients=recipients, context=CONTEXT,
                               segment_size=64, suite=2)
    value = {"description": "suite 2 (SM2 / SM4-GCM / SM3) known-answer opening vector; SM2 randomness is "
                            "internal to GmSSL, so this file is not regenerated byte for byte",
             "keys": {name: {"private": k.secret.hex(), "public": k.public.point.hex()}
                      for name, k in (("signer", signer), ("tender", tender), ("bidder", bidder))},
             "context": CONTEXT.hex(), "plaintext": PLAINTEXT[:200].hex(), "envelope": data.hex()}
    return json.dumps(value, indent=1) + "\n"


def field_table(vector: dict[str, Any]) -> str:
    """The annotated header of an envelope vector, as the Markdown table in docs/envelope.md."""
    raw = bytes.fromhex(vector["header"])
    n = int.from_bytes(raw[67:69], "big")
    rows = [("magic", 0, 7), ("version", 7, 1), ("suite", 8, 2), ("header_length", 10, 4), ("key_mode", 14, 1),
            ("flags", 15, 1), ("segment_size", 16, 4), ("nonce_prefix", 20, 7), ("plaintext_length", 27, 8),
            ("signer_key_id", 35, 32), ("context_length", 67, 2), ("context", FIXED_SIZE, n),
            ("recipient_count", FIXED_SIZE + n, 1)]
    pos = FIXED_SIZE + n + 1
    for i in range(raw[FIXED_SIZE + n]):
        rows += [(f"recipient {i + 1} role", pos, 1), (f"recipient {i + 1} key_id", pos + 1, KEY_ID_SIZE),
                 (f"recipient {i + 1} enc_length", pos + 33, 2), (f"recipient {i + 1} enc", pos + 35, 65),
                 (f"recipient {i + 1} wrapped_length", pos + 100, 2), (f"recipient {i + 1} wrapped", pos + 102, 48)]
        pos += 150
    lines = ["| offset | field | bytes (hex) |", "|---:|---|---|"]
    lines += [f"| {off} | {name} | `{raw[off:off + size].hex()}` |" for name, off, size in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    VECTORS.mkdir(exist_ok=True)
    for name, text in build().items():
        (VECTORS / name).write_text(text, encoding="utf-8")
    sm = VECTORS / "sm.json"
    if "--refresh-sm" in argv or not sm.exists():
        sm.write_text(build_sm(), encoding="utf-8")
    if "--doc-table" in argv:
        print(field_table(build_envelopes()["vectors"][1]))


if __name__ == "__main__":
    main(sys.argv[1:])
