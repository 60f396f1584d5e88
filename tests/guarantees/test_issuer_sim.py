"""The reference issuer over real HTTP on 127.0.0.1, against a small fake platform in the test.

Both sides run werkzeug servers in threads; every message is signed and checked with
``guarantees.protocol`` exactly as the platform and a real issuer would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.clock import clock, now
from guarantees import protocol
from guarantees.issuer_sim import SimConfig, create_app
from guarantees.letters import letter_sha256
from tests.guarantees.sim_support import (
    BIDDER,
    PLATFORM_ID,
    TENDERER,
    FakePlatform,
    Sim,
    http,
    issued,
    order,
    pdf_text,
    registry,
    serve,
    stop,
    validate,
    wait_for,
)


@pytest.fixture
def platform_key():
    return protocol.generate_private_key()


@pytest.fixture
def fake_platform():
    platform = FakePlatform()
    platform.url, server, thread = serve(platform)
    yield platform
    stop(server, thread)


@pytest.fixture
def start_sim(tmp_path, platform_key, fake_platform):
    running: list[Sim] = []

    def start(**overrides) -> Sim:
        settings = dict(code="BANK1", name="示范银行股份有限公司", data_dir=tmp_path / "bank1",
                        platform_url=fake_platform.url, platform_id=PLATFORM_ID,
                        platform_public_key=platform_key.public_key(), locale="en", retry_base=0.1, retry_max=0.4,
                        poll_interval=0.05)
        settings.update(overrides)
        sim = Sim(create_app(SimConfig(**settings)), platform_key)
        fake_platform.issuer_key = sim.parts.keys.message_cert.public_key()
        running.append(sim)
        return sim

    clock.reset()
    yield start
    for sim in running:
        sim.stop()
    clock.reset()


# ------------------------------------------------------------------ orders


def test_an_order_is_approved_and_a_valid_sealed_letter_arrives(start_sim, fake_platform, tmp_path):
    sim = start_sim()
    result, pdf = issued(sim, fake_platform, "G1")
    data = result.data
    assert data["status"] == "approved" and data["reason"] == ""
    assert re.fullmatch(r"BANK1-\d{8}-000001", data["guarantee_no"])
    until = protocol.parse_timestamp(data["valid_until"])
    assert until >= protocol.parse_timestamp(order("G1")["bid_deadline"].strftime("%Y-%m-%dT%H:%M:%SZ")) + \
        timedelta(days=90)
    letter = fake_platform.got("G1", protocol.LETTER)[0].data
    assert letter["guarantee_no"] == data["guarantee_no"] and letter["filename"] == f"{data['guarantee_no']}.pdf"
    assert protocol.is_verification_code(letter["verification_code"])
    status = validate(pdf, sim.parts.keys.ca_cert)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    text = pdf_text(pdf, tmp_path)
    for expected in (data["guarantee_no"], BIDDER["name"], BIDDER["uscc"], TENDERER["uscc"], "E1100000001000123001001",
                     "壹拾贰万伍仟元整", letter["verification_code"], "示范银行股份有限公司"):
        assert expected in text, expected
    # the second order of the day gets the next number
    result2, _ = issued(sim, fake_platform, "G2")
    assert result2.data["guarantee_no"].endswith("-000002")


def test_above_the_limit_or_a_denied_bidder_is_rejected_with_a_reason(start_sim, fake_platform):
    sim = start_sim(amount_limit=Decimal("100000"), denied_usccs=frozenset({"91110000MA0000000X"}))
    assert sim.send(protocol.ORDER_APPLY, "BIG", order("BIG"))[0] == 202
    deny = order("DENY", amount=Decimal("5000.00"), principal={"name": "失信公司", "uscc": "91110000MA0000000X"})
    assert sim.send(protocol.ORDER_APPLY, "DENY", deny)[0] == 202
    big = wait_for(lambda: fake_platform.got("BIG", protocol.RESULT), what="BIG's result")[0].data
    assert big["status"] == "rejected" and big["guarantee_no"] is None
    assert "125,000.00" in big["reason"] and "100,000.00" in big["reason"] and "limit" in big["reason"]
    denied = wait_for(lambda: fake_platform.got("DENY", protocol.RESULT), what="DENY's result")[0].data
    assert denied["status"] == "rejected" and "91110000MA0000000X" in denied["reason"]
    time.sleep(0.3)
    assert not fake_platform.got("BIG", protocol.LETTER) and not fake_platform.got("DENY", protocol.LETTER)


def test_a_bid_deadline_already_passed_is_rejected(start_sim, fake_platform):
    sim = start_sim()
    sim.send(protocol.ORDER_APPLY, "LATE", order("LATE", bid_deadline=now() - timedelta(minutes=1)))
    result = wait_for(lambda: fake_platform.got("LATE", protocol.RESULT), what="the result")[0].data
    assert result["status"] == "rejected" and "deadline has passed" in result["reason"]


def test_bad_order_data_is_refused_naming_the_field(start_sim):
    sim = start_sim()
    status, body = sim.send(protocol.ORDER_APPLY, "BAD", order("BAD", guarantee_type="encrypted"))
    assert status == 400 and body["code"] == "malformed_message" and "guarantee_type" in body["message"]
    status, body = sim.send(protocol.ORDER_APPLY, "BAD", order("BAD", amount="12,5000"))
    assert status == 400 and "amount" in body["message"]
    assert sim.parts.store.order("BAD") is None


def test_the_same_order_twice_is_absorbed_and_a_different_one_refused(start_sim, fake_platform):
    sim = start_sim(delay=0.5)
    data = order("DUP")
    assert sim.send(protocol.ORDER_APPLY, "DUP", data) == (202, {"accepted": True})
    assert sim.send(protocol.ORDER_APPLY, "DUP", data) == (202, {"accepted": True, "duplicate": True})
    status, body = sim.send(protocol.ORDER_APPLY, "DUP", {**data, "amount": Decimal("1.00")})
    assert status == 409 and body["code"] == "state_conflict"
    wait_for(lambda: fake_platform.got("DUP", protocol.LETTER), what="the letter")
    time.sleep(0.3)
    assert len(fake_platform.got("DUP", protocol.RESULT)) == 1


def test_cancel_before_issue_stops_the_order_and_after_issue_is_refused(start_sim, fake_platform):
    sim = start_sim(delay=0.6)
    sim.send(protocol.ORDER_APPLY, "C1", order("C1"))
    assert sim.send(protocol.ORDER_CANCEL, "C1", {"reason": "changed my mind"}) == (200, {"cancelled": True})
    assert sim.send(protocol.ORDER_CANCEL, "C1", {})[1] == {"cancelled": True, "duplicate": True}
    time.sleep(1.2)
    assert not fake_platform.got("C1") and sim.parts.store.order("C1")["state"] == "cancelled"
    issued(sim, fake_platform, "C2")
    status, body = sim.send(protocol.ORDER_CANCEL, "C2", {})
    assert status == 409 and body["code"] == "state_conflict"


# ------------------------------------------------------------------ protocol checks


def test_forged_replayed_stale_and_unknown_messages_are_refused(start_sim):
    sim = start_sim(delay=600)  # no letter is issued while the test runs: "known order, no letter yet" stays so
    forged = protocol.sign_message(protocol.generate_private_key(), protocol.ORDER_APPLY, PLATFORM_ID, "F1",
                                   order("F1"), now=now())
    assert sim.post("/orders", forged)[0] == 401 and sim.post("/orders", forged)[1]["code"] == "bad_signature"
    tampered = protocol.sign_message(sim.platform_key, protocol.ORDER_APPLY, PLATFORM_ID, "F2", order("F2"), now=now())
    tampered["data"]["amount"] = "1.00"
    assert sim.post("/orders", tampered)[1]["code"] == "bad_signature"
    status, body = sim.send(protocol.ORDER_APPLY, "F3", order("F3"), sender="someone-else")
    assert (status, body["code"]) == (401, "unknown_sender")
    for skew in (-301, 301):
        status, body = sim.send(protocol.ORDER_APPLY, "F4", order("F4"), at=now() + timedelta(seconds=skew))
        assert (status, body["code"]) == (401, "stale_timestamp")
    msg = protocol.sign_message(sim.platform_key, protocol.ORDER_APPLY, PLATFORM_ID, "R1", order("R1"), now=now())
    assert sim.post("/orders", msg)[0] == 202
    status, body = sim.post("/orders", msg)
    assert (status, body["code"]) == (409, "replayed_nonce")
    status, body = sim.send(protocol.RELEASE, "NOPE", {"guarantee_no": "BANK1-20250101-000001", "reason": "x"})
    assert (status, body["code"]) == (400, "unknown_order")
    status, body = sim.send(protocol.RELEASE, "R1", {"guarantee_no": "x"}, )
    assert status == 409  # known order, but no letter yet
    status, body = http("POST", sim.url + "/orders", b"not json")
    assert (status, body["code"]) == (400, "malformed_message")
    wrong_place = protocol.sign_message(sim.platform_key, protocol.CLAIM, PLATFORM_ID, "R1", {}, now=now())
    assert sim.post("/orders", wrong_place)[0] == 400
    for order_no in ("F1", "F2", "F3", "F4"):
        assert sim.parts.store.order(order_no) is None


def test_failure_rate_one_answers_503_and_records_nothing(start_sim):
    sim = start_sim(failure_rate=1.0)
    status, body = sim.send(protocol.ORDER_APPLY, "X1", order("X1"))
    assert (status, body["code"]) == (503, "unavailable")
    assert sim.parts.store.order("X1") is None
    assert http("GET", sim.url + "/letters/BANK1-20250101-000001")[0] == 503


# ------------------------------------------------------------------ release, claims, registry


def test_release_sends_release_notify_once_and_a_later_claim_is_denied(start_sim, fake_platform):
    sim = start_sim()
    result, _ = issued(sim, fake_platform, "REL")
    number = result.data["guarantee_no"]
    assert sim.send(protocol.RELEASE, "REL", {"guarantee_no": number, "reason": "contract_signed"}) == \
        (202, {"accepted": True})
    notify = wait_for(lambda: fake_platform.got("REL", protocol.RELEASE_NOTIFY), what="ReleaseNotify")[0].data
    assert notify["guarantee_no"] == number and protocol.parse_timestamp(notify["released_at"])
    assert sim.send(protocol.RELEASE, "REL", {"guarantee_no": number, "reason": "again"})[1]["duplicate"] is True
    assert registry(sim, number)["status"] == "released"
    claim = {"guarantee_no": number, "claim_no": "CL-1", "amount": Decimal("125000.00"), "reason": "refused contract",
             "trigger": "winner_refuses_contract", "evidence": [hashlib.sha256(b"demand").hexdigest()]}
    assert sim.send(protocol.CLAIM, "REL", claim)[0] == 202
    answer = wait_for(lambda: fake_platform.got("REL", protocol.CLAIM_RESULT), what="ClaimResult")[0].data
    assert answer["status"] == "denied" and answer["amount_paid"] == "0.00" and "released" in answer["reason"]
    time.sleep(0.2)
    assert len(fake_platform.got("REL", protocol.RELEASE_NOTIFY)) == 1


def test_a_claim_is_paid_after_the_delay_and_the_registry_says_so(start_sim, fake_platform):
    sim = start_sim(delay=2.0)  # long enough for the checks below to see the claim still waiting, under load
    result, pdf = issued(sim, fake_platform, "CLM")
    number = result.data["guarantee_no"]
    entry = registry(sim, number)
    assert entry == {"guarantee_no": number, "sha256": letter_sha256(pdf), "status": "valid"}
    claim = {"guarantee_no": number, "claim_no": "CL-9", "amount": "50000.00", "reason": "bid withdrawn after deadline",
             "trigger": "bid_withdrawn_after_deadline", "evidence": []}
    assert sim.send(protocol.CLAIM, "CLM", claim) == (202, {"accepted": True})
    assert registry(sim, number)["status"] == "claimed"
    assert sim.send(protocol.CLAIM, "CLM", claim)[1]["duplicate"] is True
    assert sim.send(protocol.CLAIM, "CLM", {**claim, "claim_no": "CL-10"})[0] == 409  # one claim at a time
    answer = wait_for(lambda: fake_platform.got("CLM", protocol.CLAIM_RESULT), what="ClaimResult")[0].data
    assert answer == {"claim_no": "CL-9", "status": "paid", "amount_paid": "50000.00", "reason": "",
                      "decided_at": answer["decided_at"]}
    assert registry(sim, number)["status"] == "paid"
    status, body = sim.send(protocol.RELEASE, "CLM", {"guarantee_no": number, "reason": "late"})
    assert (status, body["code"]) == (409, "state_conflict")
    status, body = http("GET", f"{sim.url}/letters/BANK1-19990101-000001")
    assert (status, body["code"]) == (404, "unknown_guarantee")


def test_a_claim_after_expiry_is_denied(start_sim, fake_platform):
    sim = start_sim()
    result, _ = issued(sim, fake_platform, "EXP", validity_days=30)
    until = protocol.parse_timestamp(result.data["valid_until"])
    clock.travel(until - now() + timedelta(days=1))
    claim = {"guarantee_no": result.data["guarantee_no"], "claim_no": "CL-X", "amount": "1000.00",
             "reason": "late", "trigger": "other", "evidence": []}
    assert sim.send(protocol.CLAIM, "EXP", claim)[0] == 202
    answer = wait_for(lambda: fake_platform.got("EXP", protocol.CLAIM_RESULT), what="ClaimResult")[0].data
    assert answer["status"] == "denied" and "expired" in answer["reason"]
    assert registry(sim, result.data["guarantee_no"])["status"] == "valid"


def test_a_sealed_letter_is_revealed_as_a_second_signed_revision(start_sim, fake_platform, tmp_path):
    sim = start_sim()
    result, sealed_pdf = issued(sim, fake_platform, "SEAL", guarantee_type="sealed")
    number = result.data["guarantee_no"]
    text = pdf_text(sealed_pdf, tmp_path)
    assert "sealed until the opening" in text and BIDDER["name"] not in text and "E1100000001000123001" not in text
    assert registry(sim, number)["sha256"] == letter_sha256(sealed_pdf)
    notice = {"guarantee_no": number, "tender_code": "E1100000001000123001", "lot_code": "E1100000001000123001001"}
    assert sim.send(protocol.DECRYPTION_NOTICE, "SEAL", notice) == (202, {"accepted": True})
    letters = wait_for(lambda: len(fake_platform.got("SEAL", protocol.LETTER)) == 2 and
                       fake_platform.got("SEAL", protocol.LETTER), what="the revealed letter")
    second = letters[1].data
    assert second["revision"] == 2 and second["supersedes_sha256"] == letter_sha256(sealed_pdf)
    assert second["filename"] == f"{number}-r2.pdf"
    revealed_pdf = base64.b64decode(second["pdf_base64"])
    assert validate(revealed_pdf, sim.parts.keys.ca_cert).bottom_line
    text = pdf_text(revealed_pdf, tmp_path)
    assert BIDDER["name"] in text and "E1100000001000123001001" in text and "Revision 2" in text
    assert registry(sim, number)["sha256"] == second["sha256"]
    assert sim.send(protocol.DECRYPTION_NOTICE, "SEAL", notice)[1]["duplicate"] is True
    result, _ = issued(sim, fake_platform, "PLAIN")
    status, body = sim.send(protocol.DECRYPTION_NOTICE, "PLAIN", {"guarantee_no": result.data["guarantee_no"]})
    assert (status, body["code"]) == (409, "state_conflict")


# ------------------------------------------------------------------ callbacks when the platform is down


def callback_jobs(sim: Sim, order_no: str) -> list[dict]:
    """The order's callback jobs once the worker has recorded every answer (it does so after the reply)."""
    def settled():
        jobs = [j for j in sim.parts.store.jobs(order_no) if j["kind"] == "callback"]
        return jobs if jobs and all(j["state"] != "pending" for j in jobs) else None
    return wait_for(settled, what=f"the callback jobs of {order_no} to settle")


def test_callbacks_are_retried_until_the_platform_answers(start_sim, fake_platform):
    sim = start_sim()
    fake_platform.answer_next = [503, 503, 500]
    issued(sim, fake_platform, "RETRY")
    jobs = callback_jobs(sim, "RETRY")
    assert [j["state"] for j in jobs] == ["done", "done"]
    assert jobs[0]["attempts"] == 4 and "HTTP 500" in jobs[0]["last_error"]


def test_a_platform_409_is_not_retried(start_sim, fake_platform):
    sim = start_sim()
    fake_platform.answer_next = [409]
    sim.send(protocol.ORDER_APPLY, "REFUSED", order("REFUSED"))
    wait_for(lambda: fake_platform.got("REFUSED", protocol.LETTER), what="the letter")
    jobs = callback_jobs(sim, "REFUSED")
    assert [(j["state"], j["attempts"]) for j in jobs] == [("refused", 1), ("done", 1)]


def test_nothing_is_lost_across_a_restart_while_the_platform_is_down(start_sim, fake_platform):
    fake_platform.answer_always = 503
    sim = start_sim()
    sim.send(protocol.ORDER_APPLY, "KEEP", order("KEEP"))
    wait_for(lambda: any(j["attempts"] >= 2 for j in sim.parts.store.jobs("KEEP") if j["kind"] == "callback"),
             what="failed attempts")
    fingerprint = sim.parts.keys.ca_cert.fingerprint(sim.parts.keys.ca_cert.signature_hash_algorithm)
    sim.stop()
    fake_platform.answer_always = None
    again = start_sim()
    assert not again.parts.keys_created
    assert again.parts.keys.ca_cert.fingerprint(again.parts.keys.ca_cert.signature_hash_algorithm) == fingerprint
    result, pdf = (wait_for(lambda: len(fake_platform.got("KEEP")) == 2, what="the delivered callbacks")
                   and (fake_platform.got("KEEP")[0], base64.b64decode(fake_platform.got("KEEP")[1].data["pdf_base64"])))
    assert result.type == protocol.RESULT and validate(pdf, again.parts.keys.ca_cert).bottom_line


# ------------------------------------------------------------------ running it


def test_the_simulator_does_not_import_the_platform_shell():
    code = "import sys, guarantees.issuer_sim; print(sorted(m for m in sys.modules if m.split('.')[0] == 'ebid'))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.strip()
    assert out == "[]"


def test_keys_are_private_and_never_overwritten(start_sim, tmp_path):
    sim = start_sim()
    keys_dir = sim.parts.keys.directory
    for name in ("ca.key.pem", "message.key.pem", "letter.key.pem"):
        assert (keys_dir / name).stat().st_mode & 0o077 == 0
    status, about = http("GET", sim.url + "/")
    assert status == 200 and about["code"] == "BANK1"
    assert about["message_certificate"] == (keys_dir / "message.cert.pem").read_text()
    assert about["ca_certificate"] == (keys_dir / "ca.cert.pem").read_text()
    assert "PRIVATE" not in json.dumps(about)
