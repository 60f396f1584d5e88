"""The bidder's whole path over HTTP: keygen -> csr -> certificate -> build -> seal -> upload -> receipt -> proofs."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bidding import Bid
from core.clock import clock
from core.db import db
from core.storage import default_store
from crypto.envelope import open_bytes, read_header
from crypto.errors import NotARecipient
from ebid.client.sealing import load_key
from tests.client.conftest import KEY_PASSPHRASE


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("mode", ["bidder_then_custodians", "double_envelope"])
def test_keygen_to_verified_receipt_and_final_log(app, live, world, bidder_keys, make_bid, seal, run, tmp_path, mode):
    w = world(mode)
    key, cert = bidder_keys(w)
    bid = make_bid(w.lots[0][1])

    result = seal(w, live.url, key, cert, bid)
    assert result.exit_code == 0, result.output
    envelope = tmp_path / "bid.ebe"
    assert f"tender {w.tender_code} lot {w.lots[0][1]}, bid version 1" in result.output
    with envelope.open("rb") as fh:
        header = read_header(fh)
    assert {r.role for r in header.recipients} == {1, 2}  # the tender's opening key and the bidder's own key
    assert header.key_mode == (2 if mode == "double_envelope" else 1)
    sidecar = json.loads((tmp_path / "bid.ebe.json").read_text())
    assert sidecar["bidder_uscc"] == w.org.uscc and sidecar["sha256"] == sha256(envelope)

    result = run("upload", str(envelope), "--token", w.token, "--chunk-kib", "1")  # the server comes from the seal
    assert result.exit_code == 0, result.output
    assert "receipt: " in result.output and "bidder commitment" in result.output
    bid_row = db.session.scalar(select(Bid).where(Bid.organisation_id == w.org.id))
    assert bid_row.envelope_sha256 == sha256(envelope) and bid_row.version == 1
    assert default_store().read_bytes(bid_row.envelope_sha256) == envelope.read_bytes()  # stored byte for byte
    receipt_file = tmp_path / "bid.ebe.receipt.json"
    bundle = json.loads(receipt_file.read_text())
    assert bundle["receipt"]["body"]["envelope_sha256"] == sha256(envelope)
    assert not (tmp_path / "bid.ebe.upload.json").exists()  # the session is done

    if mode == "bidder_then_custodians":  # the bidder can open its own envelope (single mode, its own key)
        plaintext = open_bytes(envelope.read_bytes(), signer_public_key=load_key(key, KEY_PASSPHRASE).public_key(),
                               private_keys=[load_key(key, KEY_PASSPHRASE)])
        assert plaintext == bid.read_bytes()

    result = run("verify-receipt", str(receipt_file), "--token", w.token, "--envelope", str(envelope))
    assert result.exit_code == 0, result.output
    assert "still holds your entry" in result.output and "published at the bid deadline" in result.output

    result = run("verify-receipt", str(receipt_file), "--offline")
    assert result.exit_code == 0 and "verified offline" in result.output

    clock.travel(timedelta(days=26))  # past the deadline: the server closes the tender on the next request
    result = run("verify-receipt", str(receipt_file), "--token", w.token)
    assert result.exit_code == 0, result.output
    assert "your entry" in result.output and "in the final log" in result.output
    assert "this envelope (version 1) is among the bids to open" in result.output
    assert "opening entry lists exactly the 1 bids" in result.output


def test_a_tampered_receipt_or_another_envelope_fails_verification(app, live, world, bidder_keys, make_bid, seal,
                                                                   run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1])).exit_code == 0
    envelope = tmp_path / "bid.ebe"
    assert run("upload", str(envelope), "--token", w.token).exit_code == 0
    receipt_file = tmp_path / "bid.ebe.receipt.json"
    bundle = json.loads(receipt_file.read_text())

    bundle["receipt"]["body"]["received_at_ms"] -= 60_000  # "backdated" by a minute
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(bundle))
    result = run("verify-receipt", str(forged), "--offline")
    assert result.exit_code == 1 and "Verification FAILED" in result.output and "signature" in result.output

    other = tmp_path / "other.bin"
    other.write_bytes(b"not my envelope")
    result = run("verify-receipt", str(receipt_file), "--offline", "--envelope", str(other))
    assert result.exit_code == 1 and "another envelope hash" in result.output


def test_pinned_keys_refuse_another_platform(app, live, world, bidder_keys, make_bid, seal, run, tmp_path, settings):
    w = world()
    key, cert = bidder_keys(w)
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1])).exit_code == 0
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token).exit_code == 0
    pinned = json.loads(next(run.home.glob("servers/*/keys.json")).read_text())
    assert set(pinned["keys"]) == {"log", "receipt"}
    # the platform's receipt key is replaced (a different server at the same address): its receipts fail
    (settings.keys_dir / "receipt.key.pem").unlink()
    live.restart()
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1], "11111111.00", name="v2.zip"),
                out="v2.ebe").exit_code == 0
    result = run("upload", str(tmp_path / "v2.ebe"), "--token", w.token)
    assert result.exit_code == 1 and "Verification FAILED" in result.output
    assert "not by the expected key" in result.output


def test_a_separate_decryption_key_and_a_person_without_a_certificate(app, live, world, bidder_keys, make_bid, seal,
                                                                      run, tmp_path, passphrase_file):
    """--own-key wraps the bidder's part for another key than the signing certificate's."""
    w = world()
    key, cert = bidder_keys(w)
    decrypt_dir = tmp_path / "decrypt"
    assert run("keygen", "--out", str(decrypt_dir), "--passphrase-file", str(passphrase_file),
               "--kdf-cost", "14").exit_code == 0
    result = seal(w, live.url, key, cert, make_bid(w.lots[0][1]), extra=("--own-key", str(decrypt_dir / "bidder.pub.pem")))
    assert result.exit_code == 0, result.output
    envelope = (tmp_path / "bid.ebe").read_bytes()
    signer = load_key(key, KEY_PASSPHRASE)
    own = load_key(decrypt_dir / "bidder.key", KEY_PASSPHRASE)
    assert open_bytes(envelope, signer_public_key=signer.public_key(), private_keys=[own]).startswith(b"PK")
    with pytest.raises(NotARecipient):
        open_bytes(envelope, signer_public_key=signer.public_key(), private_keys=[signer])
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token).exit_code == 0
