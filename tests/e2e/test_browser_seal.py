"""Browser tests of sealing in the page (WebCrypto, ebid/static/seal/), with Debian's Chromium.

1. The JS modules reproduce the published vectors of tests/crypto/vectors byte for byte (envelopes with their
   RFC 6979 signatures, HPKE, Merkle proofs, receipts), read the key files the CLI writes, build a bid ZIP the
   CLI reads, and what they seal with real randomness opens with the Python library.
2. A bidder seals and submits a bid in the page: the server stores it, the receipt verifies with
   crypto.receipt.verify_receipt, and no request the page sent carries any of the bid's plaintext.
3. An upload cut off mid-way is resumed after the page is reloaded (the sealed envelope waits in IndexedDB).

Screenshots go to test-artifacts/e2e/.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from bidding.sealed_models import Bid
from core.clock import clock
from core.db import db
from core.storage import default_store
from crypto import envelope as E
from crypto import keys
from crypto.receipt import verify_receipt
from crypto.suites import P256_ORDER
from ebid.client.bidzip import read_bid
from ebid.client.verify import PlatformKeys, check_bundle
from tests.bidding.conftest import api_as, frozen  # noqa: F401  (fixtures of the kit)
from tests.bidding.sealed_support import (  # noqa: F401  (kit_fixture is the kit fixture)
    kit_fixture,
    lot_of,
    past_deadline,
    transparency_keys,
)
from tests.e2e.seal_scripts import JS_BID_ZIP, JS_KEYFILES, JS_RANDOM_SEALS, JS_VECTORS
from tests.e2e.test_publish_flow import (  # noqa: F401  (live_server and browser_context are fixtures)
    CHROMIUM,
    browser_context,
    live_server,
    shot,
)
from tests.factories import PASSWORD

VECTORS = Path(__file__).parents[1] / "crypto" / "vectors"
PASSPHRASE = "correct horse 投标 staple"
PRICE, MANAGER, CERT_NO, MARKER = "12345678.90", "张伟", "鲁1372020201234", "TECHNICAL-PROPOSAL-PLAINTEXT-7f3a9c"

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium (/usr/bin/chromium) is not "
                                                               "installed: apt-get install chromium")]

def _point(private_key) -> str:
    return private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint).hex()


@pytest.fixture
def server(request) -> str:
    """The app served from a thread on 127.0.0.1 with CSRF on (test_publish_flow's live_server)."""
    return request.getfixturevalue("live_server")


@pytest.fixture
def browser(request):
    """A function opening a fresh Chromium profile (test_publish_flow's browser_context)."""
    return request.getfixturevalue("browser_context")


@pytest.fixture
def blank_page(server, browser):
    page = browser("modules").new_page()
    page.goto(f"{server}/tenders")
    return page


def test_js_sealer_reproduces_the_published_vectors(blank_page):
    load = lambda name: json.loads((VECTORS / name).read_text())  # noqa: E731
    env, hpke_v, merkle_v, receipt_v = (load(n) for n in ("envelope.json", "hpke.json", "merkle.json",
                                                         "receipt.json"))
    out = blank_page.evaluate(JS_VECTORS, {"env": env, "hpke": hpke_v, "merkle": merkle_v, "receipt": receipt_v})

    for vector in env["vectors"]:  # byte for byte, signatures included (RFC 6979 nonces, low s)
        sealed = out["envelopes"][vector["name"]]
        assert sealed["bytes"] == vector["envelope"], vector["name"]
        assert (sealed["sha256"], sealed["size"]) == (vector["envelope_sha256"], len(vector["envelope"]) // 2)
    assert out["hpke"] == {k: hpke_v[k] for k in ("enc", "shared_secret", "key", "base_nonce", "exporter_secret", "pt")}
    assert out["leaves"] == merkle_v["leaf_hashes"]
    assert all(r == [True, "inclusion", "inclusion"] for r in out["inclusion"]), out["inclusion"]
    assert all(r[0] is True and r[1] == "consistency" and r[2] == "consistency" for r in out["consistency"]), \
        out["consistency"]
    assert out["receipt_ok"] is True and out["receipt_forged"] == "receipt_signature"
    assert out["head_with_receipt_key"] == "head_signature"


def test_js_sealed_envelopes_open_with_the_python_library(blank_page):
    signer, tender_key = keys.generate_private_key(), keys.generate_private_key()
    # a valid signature with a high s: the JS normaliser must turn it into the vector's low-s form
    vector = json.loads((VECTORS / "envelope.json").read_text())["vectors"][0]
    r, s = vector["signature"][:64], int(vector["signature"][64:], 16)
    high = r + (P256_ORDER - s).to_bytes(32, "big").hex()
    args = {"signer": signer.private_numbers().private_value.to_bytes(32, "big").hex(),
            "recipient": _point(tender_key), "plaintextSize": (2 << 20) + 12345, "count": 6, "highS": high}
    out = blank_page.evaluate(JS_RANDOM_SEALS, args)

    assert out["lowS"] == vector["signature"]
    plaintext = base64.b64decode(out["plaintext"])
    seen = set()
    for version, sealed in enumerate(out["envelopes"], start=1):
        data = base64.b64decode(sealed)
        opened = E.open_bytes(data, signer_public_key=signer.public_key(), private_keys=[tender_key],
                              expected_context=E.bid_context("T-1", "1", "91350100M000100Y43", version))
        assert opened == plaintext  # 3 segments of 1 MiB, each tag and the signature (low s) checked
        seen.add(E.read_header(io.BytesIO(data)).nonce_prefix)
    assert len(seen) == len(out["envelopes"])  # fresh randomness in every envelope


def test_js_reads_the_key_files_the_cli_and_openssl_write(blank_page):
    key = keys.generate_private_key()
    pkcs8 = serialization.PrivateFormat.PKCS8
    files = {
        "ebid": [keys.encrypt_private_key(key, PASSPHRASE, log2_n=keys.MIN_SCRYPT_LOG2_N).decode(), PASSPHRASE],
        "ebid-wrong": [keys.encrypt_private_key(key, PASSPHRASE, log2_n=keys.MIN_SCRYPT_LOG2_N).decode(), "nope"],
        "pkcs8": [key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption()).decode(), ""],
        "pbes2": [key.private_bytes(serialization.Encoding.PEM, pkcs8,
                                    serialization.BestAvailableEncryption(b"secret")).decode(), "secret"],
        "sec1": [key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption()).decode(), ""],
        "public": [keys.public_key_pem(key).decode(), ""],
        "no-passphrase": [keys.encrypt_private_key(key, PASSPHRASE, log2_n=keys.MIN_SCRYPT_LOG2_N).decode(), ""],
    }
    out = blank_page.evaluate(JS_KEYFILES, files)
    point = _point(key)
    assert out == {"ebid": point, "ebid-wrong": "error:wrong_passphrase", "pkcs8": point, "pbes2": point,
                   "sec1": point, "public": "error:not_private", "no-passphrase": "error:passphrase_needed"}


def test_js_bid_zip_is_read_by_the_cli(blank_page, tmp_path):
    docs = [["技术标.pdf", "technical " * 1000], ["commercial.pdf", "commercial"]]
    out = blank_page.evaluate(JS_BID_ZIP, {"docs": docs})
    assert out["errors"] == {}
    assert out["refused"] == {"price": "price_separators", "duration_days": "duration", "quality": "required",
                              "project_manager.name": "one_line"}
    assert (out["badName"], out["twice"]) == ("document_name", "document_twice")
    path = tmp_path / "bid.zip"
    path.write_bytes(base64.b64decode(out["zip"]))
    bid = read_bid(path)  # ebid client's own checks: schema, listing, every document's size and SHA-256
    assert (bid.offer.lot, f"{bid.offer.price:.2f}", bid.offer.duration_days, bid.offer.manager_name,
            bid.offer.alternatives) == ("L1", "12345678.90", 365, "张伟", True)
    assert [d.name for d in bid.documents] == ["commercial.pdf", "技术标.pdf"]
    with zipfile.ZipFile(path) as zf:
        assert zf.read("documents/技术标.pdf") == docs[0][1].encode()
        assert zf.testzip() is None  # every CRC-32 right


# --- the page --------------------------------------------------------------------------------------------

def _login(page, server, person) -> None:
    page.goto(f"{server}/login")
    page.fill("input[name=email]", person.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account"))


def _record_bodies(page) -> list[tuple[str, str, bytes]]:
    sent: list[tuple[str, str, bytes]] = []
    page.on("request", lambda request: sent.append((request.method, request.url, request.post_data_buffer or b"")))
    return sent


def _fill_bid(page, key_file: Path, documents: list[Path], passphrase: str) -> None:
    page.fill("#bid-price", PRICE)
    page.fill("#bid-duration", "365")
    page.fill("#bid-quality", "合格")
    page.fill("#bid-manager", MANAGER)
    page.fill("#bid-manager-cert", CERT_NO)
    page.set_input_files("#bid-documents", [str(p) for p in documents])
    page.set_input_files("#key-file", str(key_file))
    page.fill("#key-passphrase", passphrase)
    page.press("#key-passphrase", "Tab")  # the page unlocks the key when the passphrase is complete
    page.wait_for_selector("#key-status.ok", timeout=60_000)


def _bidder_files(tmp_path: Path, bidder) -> tuple[Path, list[Path]]:
    key_file = tmp_path / "bidder.key"
    key_file.write_bytes(keys.encrypt_private_key(bidder.signing_key, PASSPHRASE, log2_n=keys.MIN_SCRYPT_LOG2_N))
    proposal = tmp_path / "技术标.txt"
    proposal.write_text(f"{MARKER}\n" + "施工组织设计 construction plan.\n" * 2000, encoding="utf-8")
    drawings = tmp_path / "drawings.bin"
    drawings.write_bytes(hashlib.shake_256(b"drawings").digest(5 << 20))  # 5 MiB: several segments and chunks
    return key_file, [proposal, drawings]


def _stored(bid: Bid) -> bytes:
    with default_store().open(bid.envelope_sha256) as fh:
        return fh.read()


def test_bidder_seals_and_submits_in_the_browser_and_no_plaintext_leaves_the_page(kit, server, browser, tmp_path):
    tender = kit.tender(mode="bidder_then_custodians", title="胶州湾海底隧道照明改造工程")
    lot, bidder = lot_of(tender), kit.bidder()
    key_file, documents = _bidder_files(tmp_path, bidder)
    page = browser("bidder").new_page()
    _login(page, server, bidder.person)
    page.goto(f"{server}/tenders/{tender.id}")
    page.click(f"[data-seal-lot='{lot.id}']")
    page.wait_for_url(re.compile(rf"/tenders/{tender.id}/lots/{lot.id}/seal"))
    sent = _record_bodies(page)
    aborted: list[str] = []

    def cut_one_chunk(route):  # the connection drops once during the upload: the page resumes by itself
        offset = parse_qs(urlsplit(route.request.url).query).get("offset", ["0"])[0]
        if route.request.method == "PUT" and offset != "0" and not aborted:
            aborted.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route(re.compile(r"/api/uploads/[0-9a-f]+\?"), cut_one_chunk)

    page.set_input_files("#key-file", str(key_file))
    page.fill("#key-passphrase", "wrong passphrase")
    page.press("#key-passphrase", "Tab")
    page.wait_for_selector("#key-status.bad", timeout=60_000)
    page.fill("#bid-price", "1,000.00")
    page.click("#seal-button")
    page.wait_for_selector("[data-error-for=price]:not([hidden])")
    assert page.locator("#seal-error").is_visible()
    shot(page, "11-seal-form-refused")

    _fill_bid(page, key_file, documents, PASSPHRASE)
    shot(page, "12-seal-form-filled")
    page.click("#seal-button")
    page.wait_for_selector("#receipt-verified.ok", timeout=180_000)
    shot(page, "13-sealed-receipt-verified")
    assert aborted, "the test meant to cut one chunk off"

    # the server holds a verifiable envelope whose plaintext is the bid typed and chosen in the page
    bid = db.session.scalar(select(Bid).where(Bid.organisation_id == bidder.org.id))
    stored = _stored(bid)
    context = E.bid_context(tender.code, lot.code, bidder.org.uscc, 1)
    E.verify_bytes(stored, signer_public_key=bidder.signing_key.public_key(), expected_context=context,
                   required_recipients=[E.Recipient(E.ROLE_TENDER, serialization.load_pem_public_key(
                       tender.opening_public_key_pem.encode()))])
    plaintext = E.open_bytes(stored, signer_public_key=bidder.signing_key.public_key(),
                             private_keys=[bidder.signing_key], expected_context=context)
    assert E.open_bytes(stored, signer_public_key=bidder.signing_key.public_key(),
                        private_keys=[kit.opening_private_key(tender)]) == plaintext  # the custodians' fallback
    (tmp_path / "opened.zip").write_bytes(plaintext)
    opened = read_bid(tmp_path / "opened.zip")
    assert (f"{opened.offer.price:.2f}", opened.offer.manager_name, opened.offer.manager_certificate_no) == \
        (PRICE, MANAGER, CERT_NO)
    with zipfile.ZipFile(io.BytesIO(plaintext)) as zf:
        assert zf.read("documents/drawings.bin") == documents[1].read_bytes()

    # the receipt the page offers verifies offline
    with page.expect_download() as download:
        page.click("#download-receipt")
    bundle = json.loads(Path(download.value.path()).read_text())
    platform = transparency_keys(bidder.client)
    receipt = verify_receipt(bundle["receipt"], receipt_key=platform["receipt"], log_key=platform["log"],
                             envelope_sha256=hashlib.sha256(stored).digest(), envelope_size=len(stored),
                             log_entry_bytes=base64.b64decode(bundle["log_entry"]),
                             inclusion_proof=[bytes.fromhex(h) for h in bundle["inclusion_proof"]])
    assert (receipt.tender, receipt.lot, receipt.bid_version) == (tender.code, lot.code, 1)
    with page.expect_download() as sealed_copy:
        page.click("#download-envelope")
    assert Path(sealed_copy.value.path()).read_bytes() == stored  # the bidder's own copy of what it submitted
    lines: list[str] = []  # and `ebid client verify-receipt RECEIPT --envelope COPY` accepts both
    check_bundle(bundle, PlatformKeys(platform["log"], platform["receipt"], "test"),
                 envelope=Path(sealed_copy.value.path()), report=lines.append)
    assert any(bidder.org.uscc in line for line in lines)

    # what left the page: the envelope's ciphertext, its size and hash, nothing of the bid
    uploads = [body for method, url, body in sent if method == "PUT" and "/api/uploads/" in url]
    assert len(uploads) >= 2 and b"".join(sorted(set(uploads), key=stored.find)) == stored
    secrets = [PRICE, MANAGER, CERT_NO, MARKER, "ebid/bid/v1", "bid.json", "施工组织设计", PASSPHRASE,
               key_file.read_text().splitlines()[1][:40]]
    everything = b"\n".join(body for _m, _u, body in sent)
    for secret in secrets:
        assert secret.encode() not in everything, secret
    assert documents[1].read_bytes()[:4096] not in everything
    creates = [json.loads(body) for method, url, body in sent if method == "POST" and url.split("?")[0].endswith("/uploads")]
    assert creates == [{"size": len(stored), "sha256": hashlib.sha256(stored).hexdigest(),
                        "organisation_id": bidder.org.id}]

    # my bids: checked in the browser before the deadline, then against the final log after it
    page.goto(f"{server}/my/bids")
    page.wait_for_selector("[data-browser-check=ok]", timeout=60_000)
    shot(page, "14-my-bids-verified")
    past_deadline(tender, clock)
    page.goto(f"{server}/my/bids")
    page.wait_for_selector("[data-browser-check=ok]", timeout=60_000)
    assert "最终" in page.locator("[data-browser-check]").inner_text() or \
        "final" in page.locator("[data-browser-check]").inner_text()
    shot(page, "15-my-bids-final-log")
    page.goto(f"{server}/tenders/{tender.id}")
    page.locator("[data-section=transparency]").scroll_into_view_if_needed()
    assert page.locator("[data-tree-size]").inner_text().strip().isdigit()
    shot(page, "16-tender-transparency")


def test_an_interrupted_upload_resumes_after_a_reload(kit, server, browser, tmp_path):
    tender = kit.tender(mode="bidder", custodians=0)
    lot, bidder = lot_of(tender), kit.bidder()
    key_file, documents = _bidder_files(tmp_path, bidder)
    page = browser("resumer").new_page()
    _login(page, server, bidder.person)
    page.goto(f"{server}/tenders/{tender.id}/lots/{lot.id}/seal")
    sent = _record_bodies(page)
    cut = re.compile(r"/api/uploads/[0-9a-f]+(\?|$)")

    def network_down_after_first_chunk(route):
        if route.request.method == "PUT" and "offset=0" in route.request.url:
            return route.continue_()
        return route.abort()

    page.route(cut, network_down_after_first_chunk)
    _fill_bid(page, key_file, documents, PASSPHRASE)
    page.click("#seal-button")
    page.wait_for_function("document.getElementById('progress-text').textContent.length > 0 && "
                           "/%|…/.test(document.getElementById('progress-text').textContent) && "
                           "document.querySelector('[data-step=upload]').dataset.state === 'active'", timeout=120_000)
    page.wait_for_timeout(1500)  # the first chunk went through, the next ones fail and are retried
    first = [body for method, url, body in sent if method == "PUT"]
    assert first, "the first chunk should have been sent"
    page.unroute(cut)
    page.reload()
    page.wait_for_selector("#pending:not([hidden])")
    shot(page, "17-unfinished-upload-offered")
    page.click("#resume-button")
    page.wait_for_selector("#receipt-verified.ok", timeout=120_000)
    bid = db.session.scalar(select(Bid).where(Bid.organisation_id == bidder.org.id))
    stored = _stored(bid)
    assert hashlib.sha256(stored).hexdigest() == bid.envelope_sha256
    E.open_bytes(stored, signer_public_key=bidder.signing_key.public_key(), private_keys=[bidder.signing_key],
                 expected_context=E.bid_context(tender.code, lot.code, bidder.org.uscc, 1))
    puts = [(url, body) for method, url, body in sent if method == "PUT"]
    assert sum(1 for url, _b in puts if "offset=0" in url) == 1  # not sealed and sent again from the start
    assert page.evaluate("async () => (await import('/static/seal/upload.js')).pending.load("
                         f"'{tender.id}/{lot.id}/{bidder.org.id}')") is None


def _small_files(tmp_path: Path, bidder) -> tuple[Path, list[Path]]:
    key_file, (proposal, _drawings) = _bidder_files(tmp_path, bidder)
    return key_file, [proposal]  # well under one chunk: the page sends it in one request


@pytest.mark.parametrize("first_attempt", ["answered", "no_answer"])
def test_a_small_envelope_goes_in_one_request_and_falls_back_to_chunks_without_an_answer(kit, server, browser,
                                                                                        tmp_path, first_attempt):
    tender = kit.tender(mode="bidder", custodians=0)
    lot, bidder = lot_of(tender), kit.bidder()
    key_file, documents = _small_files(tmp_path, bidder)
    page = browser(f"single-{first_attempt}").new_page()
    _login(page, server, bidder.person)
    page.goto(f"{server}/tenders/{tender.id}/lots/{lot.id}/seal")
    sent = _record_bodies(page)
    single = re.compile(rf"/api/tenders/{tender.id}/lots/{lot.id}/bids\?")
    dropped: list[str] = []

    def no_answer_once(route):
        if first_attempt == "no_answer" and not dropped:
            dropped.append(route.request.url)
            return route.abort()
        return route.continue_()

    page.route(single, no_answer_once)
    _fill_bid(page, key_file, documents, PASSPHRASE)
    page.click("#seal-button")
    page.wait_for_selector("#receipt-verified.ok", timeout=120_000)
    bid = db.session.scalar(select(Bid).where(Bid.organisation_id == bidder.org.id))
    stored = _stored(bid)
    E.verify_bytes(stored, signer_public_key=bidder.signing_key.public_key(),
                   expected_context=E.bid_context(tender.code, lot.code, bidder.org.uscc, 1))
    posts = [(url, body) for method, url, body in sent if method == "POST" and single.search(url)]
    assert [body for _u, body in posts] == [stored]  # the ciphertext, once per attempt
    assert parse_qs(urlsplit(posts[0][0]).query)["sha256"] == [hashlib.sha256(stored).hexdigest()]
    puts = [body for method, url, body in sent if method == "PUT" and "/api/uploads/" in url]
    if first_attempt == "answered":
        assert puts == [] and not any("/uploads" in url for _m, url, _b in sent)
    else:  # the resumable path took over with the same envelope
        assert dropped and b"".join(puts) == stored
    everything = b"\n".join(body for _m, _u, body in sent)
    for secret in (PRICE, MANAGER, CERT_NO, MARKER, "bid.json", PASSPHRASE):
        assert secret.encode() not in everything, secret
