"""``ebid evaluation``: import the pool, verify a draw from the database and offline, export it."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select

from core.db import db
from crypto import keys
from evaluation import drawing, experts, recusal
from evaluation.pool_models import DrawRound
from tests.evaluation.draw_support import (  # noqa: F401  (fixtures)
    committee_fixture,
    draw_tender_fixture,
    expert_actor,
    make_expert_fixture,
    make_request_fixture,
    open_bids_fixture,
    pool_fixture,
    staff_actor,
    start_room_fixture,
)
from tests.factories import make_uscc

HEADER = "code,name,email,specialties,region,employer_uscc,employer_name,title,avoidance_usccs,available\n"


def run(app, *args):
    return app.test_cli_runner().invoke(args=["evaluation", *args])


def drawn_tender(draw_tender, pool, make_request):
    pool(9)
    tender = draw_tender()
    make_request(tender)
    drawing.draw(staff_actor(tender), tender.id)
    db.session.commit()
    return tender


def test_import_experts(app, tmp_path):
    good = tmp_path / "pool.csv"
    good.write_text(HEADER + f"E001,张三,zhang@example.test,A010101,370202,{make_uscc(810001)},院,,,1\n",
                    encoding="utf-8")
    result = run(app, "import-experts", str(good))
    assert result.exit_code == 0, result.output
    assert "Imported 1 new and 0 updated experts; 1 new logins." in result.output
    assert experts.expert_by_code("E001").person.email == "zhang@example.test"


def test_import_experts_lists_bad_lines_and_imports_nothing(app, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "E001,张三,,A010101,370202,,,,,1\nE002,李四,,A010101,12,,,,,1\n", encoding="utf-8")
    result = run(app, "import-experts", str(bad))
    assert result.exit_code == 1
    assert "bad.csv:3: region must be a 6-digit administrative division code" in result.output
    assert "Nothing was imported: 1 problem(s)" in result.output
    assert experts.expert_by_code("E001") is None


def test_verify_draw_from_the_database(app, draw_tender, pool, make_request):
    tender = drawn_tender(draw_tender, pool, make_request)
    result = run(app, "verify-draw", "--tender", tender.code)
    assert result.exit_code == 0, result.output
    assert "round 1: OK" in result.output and f"VERIFIED: every expert draw round of tender {tender.code}" in \
        result.output
    rnd = db.session.scalar(select(DrawRound))
    rnd.candidates = {**rnd.candidates, "local": ["E99999"]}
    db.session.commit()
    result = run(app, "verify-draw", "--tender", tender.code)
    assert result.exit_code == 1
    assert "does not hash to the recorded SHA-256" in result.output and "FAILED" in result.output


def test_export_then_verify_offline_and_a_flipped_byte_fails(app, tmp_path, draw_tender, pool, make_request):
    tender = drawn_tender(draw_tender, pool, make_request)
    out = tmp_path / "draw.json"
    result = run(app, "export-draw", "--tender", tender.code, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_bytes())["tender"] == tender.code
    result = run(app, "verify-draw", "--file", str(out))
    assert result.exit_code == 0 and "VERIFIED" in result.output
    data = bytearray(out.read_bytes())
    position = data.index(b'"seed":"') + len(b'"seed":"') + 5
    data[position] ^= 0x01
    flipped = tmp_path / "flipped.json"
    flipped.write_bytes(bytes(data))
    result = run(app, "verify-draw", "--file", str(flipped))
    assert result.exit_code == 1
    assert "changed after the export" in result.output and "FAILED" in result.output


def test_verify_draw_needs_one_source(app):
    assert run(app, "verify-draw").exit_code == 2
    result = run(app, "verify-draw", "--tender", "NOPE")
    assert result.exit_code == 1 and "No tender has the code NOPE" in result.output


def test_sign_declaration_with_the_certificate_key(app, tmp_path, committee, start_room, certify):
    c = committee()
    start_room(c.tender)
    member = c.members[0]
    key, cert = certify(person=member.expert.person)
    db.session.commit()
    key_file = tmp_path / "expert.key"
    key_file.write_bytes(keys.encrypt_private_key(key, "expert passphrase", log2_n=keys.MIN_SCRYPT_LOG2_N))
    text_file = tmp_path / "declaration.txt"
    text = recusal.declaration_text(member)
    text_file.write_text(text, encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["evaluation", "sign-declaration", "--key", str(key_file),
                                                "--passphrase", "expert passphrase", str(text_file)])
    assert result.exit_code == 0, result.output
    signature = result.output.strip().splitlines()[-1]
    recusal.sign_in(expert_actor(member.expert), member.id, text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                    signature=signature)
    db.session.commit()
    assert member.declaration_method == "certificate" and member.declaration_certificate_id == cert.id
