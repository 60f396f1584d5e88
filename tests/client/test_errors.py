"""Every refusal exits 1 with a message saying what to fix, and leaves nothing half-done behind."""

from __future__ import annotations

import socket
from datetime import timedelta

from sqlalchemy import func, select

from bidding import Bid, BidUpload, UploadStatus
from core.clock import clock
from core.db import db
from tests.client.conftest import FailAfter


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wrong_passphrase(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("not the passphrase\n")
    result = run("seal", "--tender", str(w.tender_id), "--lot", str(w.lots[0][0]), "--bid",
                 str(make_bid(w.lots[0][1])), "--key", str(key), "--cert", str(cert), "--server", live.url,
                 "--token", w.token, "--out", str(tmp_path / "bid.ebe"), "--passphrase-file", str(wrong))
    assert result.exit_code == 1
    assert "The passphrase does not open the key" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "bid.ebe").exists()
    result = run("csr", "--key", str(key), "--org-uscc", w.org.uscc, "--name", "x", "--out", str(tmp_path / "c.csr"),
                 env={"EBID_KEY_PASSPHRASE": "also wrong"})
    assert result.exit_code == 1 and "The passphrase does not open the key" in result.output


def test_closed_tender_refuses_sealing_and_uploading(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    bid = make_bid(w.lots[0][1])
    assert seal(w, live.url, key, cert, bid).exit_code == 0  # sealed in time, but not uploaded in time
    clock.travel(timedelta(days=26))

    result = seal(w, live.url, key, cert, bid, out="late.ebe")
    assert result.exit_code == 1 and "does not accept bids now" in result.output
    assert not (tmp_path / "late.ebe").exists()
    result = run("upload", str(tmp_path / "bid.ebe"), "--token", w.token)
    assert result.exit_code == 1 and "does not accept bids now" in result.output
    assert db.session.scalar(select(func.count()).select_from(Bid)) == 0


def test_deadline_passing_during_an_upload(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    """An upload started in time but not finished by the deadline counts as withdrawn (20号令 §27)."""
    w = world()
    key, cert = bidder_keys(w)
    assert seal(w, live.url, key, cert, make_bid(w.lots[0][1], doc_bytes=b"x" * 200_000)).exit_code == 0
    port = live.server.port
    live.server.stop()
    live.start(FailAfter(app, 1), port)
    assert run("upload", str(tmp_path / "bid.ebe"), "--token", w.token, "--chunk-kib", "64",
               "--retries", "0").exit_code == 1
    live.server.stop()
    live.start(app, port)
    clock.travel(timedelta(days=26))
    result = run("upload", str(tmp_path / "bid.ebe"), "--token", w.token)
    assert result.exit_code == 1
    assert "counts as withdrawn" in result.output or "bid deadline passed" in result.output
    assert db.session.scalar(select(BidUpload)).status == UploadStatus.WITHDRAWN


def test_wrong_lot_and_unknown_lot(app, live, world, bidder_keys, make_bid, seal, run):
    w = world()
    key, cert = bidder_keys(w)
    bid = make_bid(w.lots[0][1])
    result = seal(w, live.url, key, cert, bid, lot_index=1)
    assert result.exit_code == 1
    assert f"built for lot {w.lots[0][1]}" in result.output and f"--lot {w.lots[1][1]}" in result.output
    result = run("seal", "--tender", str(w.tender_id), "--lot", "999999", "--bid", str(bid), "--key", str(key),
                 "--cert", str(cert), "--server", live.url, "--token", w.token, "--out", "x.ebe",
                 env={"EBID_KEY_PASSPHRASE": "bidder key passphrase 1"})
    assert result.exit_code == 1 and "has no lot with id 999999" in result.output
    assert w.lots[0][1] in result.output  # the lots it does have are listed


def test_server_unreachable_and_missing_token(app, live, world, bidder_keys, make_bid, seal, run, tmp_path):
    w = world()
    key, cert = bidder_keys(w)
    bid = make_bid(w.lots[0][1])
    down = f"http://127.0.0.1:{_free_port()}"
    result = seal(w, down, key, cert, bid, extra=("--retries", "1"))
    assert result.exit_code == 1 and f"Cannot reach the platform at {down}" in result.output
    result = run("seal", "--tender", str(w.tender_id), "--lot", str(w.lots[0][0]), "--bid", str(bid), "--key",
                 str(key), "--cert", str(cert), "--server", live.url, "--out", str(tmp_path / "b.ebe"),
                 env={"EBID_KEY_PASSPHRASE": "bidder key passphrase 1"})
    assert result.exit_code == 1 and "give your API token with --token or the EBID_TOKEN" in result.output
    result = run("status", "--server", live.url, "--token", "ebid_" + "x" * 43)
    assert result.exit_code == 1 and "API token is not known" in result.output
    result = run("status", "--server", "ftp://example.cn", "--token", w.token)
    assert result.exit_code == 1 and "not an http:// or https:// address" in result.output


def test_certificate_of_another_key_and_person_certificate(app, live, world, bidder_keys, make_bid, seal, run,
                                                           tmp_path, passphrase_file):
    w = world()
    key, cert = bidder_keys(w)
    other = tmp_path / "other"
    assert run("keygen", "--out", str(other), "--passphrase-file", str(passphrase_file),
               "--kdf-cost", "14").exit_code == 0
    result = seal(w, live.url, other / "bidder.key", cert, make_bid(w.lots[0][1]))
    assert result.exit_code == 1 and "certificate is for another key" in result.output
    result = run("keygen", "--out", str(other), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 1 and "never overwritten" in result.output


def test_bad_input_to_keygen_csr_and_build(run, tmp_path, passphrase_file):
    short = tmp_path / "short.txt"
    short.write_text("short\n")
    result = run("keygen", "--out", str(tmp_path / "k"), "--passphrase-file", str(short))
    assert result.exit_code == 1 and "at least 12 characters" in result.output
    assert not (tmp_path / "k" / "bidder.key").exists()
    assert run("keygen", "--out", str(tmp_path / "k"), "--passphrase-file", str(passphrase_file),
               "--kdf-cost", "14").exit_code == 0
    result = run("csr", "--key", str(tmp_path / "k" / "bidder.key"), "--org-uscc", "91370200MA0000001X",
                 "--name", "x", "--out", str(tmp_path / "x.csr"), "--passphrase-file", str(passphrase_file))
    assert result.exit_code == 1 and "not a valid unified social credit code" in result.output
    doc = tmp_path / "d.pdf"
    doc.write_bytes(b"%PDF")
    base = ["build", "--lot", "01", "--duration", "365", "--quality", "合格", "--manager", "张伟",
            "--manager-cert", "C1", "--doc", str(doc), "--out", str(tmp_path / "b.zip")]
    for price, message in (("12,345,678.00", "without thousands separators"), ("1234.567", "at most two decimals"),
                           ("0", "more than zero"), ("abc", "at most two decimals")):
        result = run(*base, "--price", price)
        assert result.exit_code == 1 and message in result.output, (price, result.output)
    assert not (tmp_path / "b.zip").exists()
    result = run(*base, "--price", "1.00", "--doc", str(tmp_path / "missing.pdf"))
    assert result.exit_code == 1 and "does not exist" in result.output
