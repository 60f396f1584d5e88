"""A tender's complete file as one ZIP: exported after opening, evaluation and the signed report, then verified
offline; a changed byte in any member, a missing or extra member, a truncated or foreign file are reported."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core.audit import AuditEvent, event_hash
from core.db import db
from supervision import archive_verify
from supervision.archive import EXPORTED_ACTION, ZIP_DATE, export_archive
from supervision.archive_verify import MANIFEST, MANIFEST_SHA256, verify_archive
from supervision.cli import supervision_cli
from tests.evaluation.results_support import complete, sign_all
from tests.evaluation.room_support import *  # noqa: F403  (make_room and the fixtures it needs)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def exported(make_room, certify, tmp_path):
    """A tender through opening, evaluation and the report signed by every member, exported; committed."""
    r = make_room(experts=5, bidders=4)
    complete(r)
    sign_all(r, certify)
    path = tmp_path / "archive.zip"
    manifest = export_archive(r.tender_id, path)
    db.session.commit()
    return r, path, manifest


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _rezip(members: dict[str, bytes], path: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), data)
    return path


def _flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _reseal(members: dict[str, bytes]) -> dict[str, bytes]:
    """Rewrite the manifest (and its hash) so it lists the members as they now are: only content checks can tell."""
    manifest = json.loads(members[MANIFEST])
    for item in manifest["members"]:
        data = members[item["path"]]
        item["sha256"], item["size"] = hashlib.sha256(data).hexdigest(), len(data)
    raw = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=2).encode() + b"\n"
    return {**members, MANIFEST: raw, MANIFEST_SHA256: hashlib.sha256(raw).hexdigest().encode() + b"\n"}


def test_export_holds_the_whole_file_and_verifies(exported):
    r, path, manifest = exported
    members = _members(path)
    names = list(members)
    assert names[-2:] == [MANIFEST, MANIFEST_SHA256]
    assert names[:-2] == sorted(names[:-2])
    with zipfile.ZipFile(path) as archive:
        assert {info.date_time for info in archive.infolist()} == {ZIP_DATE}
    assert members[MANIFEST_SHA256] == (hashlib.sha256(members[MANIFEST]).hexdigest() + "\n").encode()
    assert manifest.sha256 == hashlib.sha256(members[MANIFEST]).hexdigest() and manifest.data == members[MANIFEST]
    listed = json.loads(members[MANIFEST])
    assert listed["tender"] == {"code": r.tender.code, "title": r.tender.title}
    assert listed["ebid_version"] and listed["exported_at"]
    assert [m["path"] for m in listed["members"]] == names[:-2]
    kinds = {m["kind"] for m in listed["members"]}
    assert {"tender", "envelope", "receipt", "log-entries", "log-heads", "log-proofs", "log-keys", "opening-record",
            "evaluation-report", "result", "audit-events", "ocds-release", "commitments"} <= kinds
    envelopes = [n for n in names if n.endswith(".ebe")]
    assert len(envelopes) == 4 and len([n for n in names if n.endswith(".receipt.json")]) == 4
    uscc = {b.org.uscc for b in r.bidders}
    assert {n.split("/")[-1].split("-v")[0] for n in envelopes} == uscc
    tender = json.loads(members["tender.json"])
    assert tender["evaluation_method"] == r.tender.evaluation_method and tender["code"] == r.tender.code
    entries = members["log/entries.jsonl"].decode().splitlines()
    heads = json.loads(members["log/heads.json"])
    assert heads["final"]["body"]["tree_size"] == len(entries)
    proofs = json.loads(members["log/proofs.json"])
    assert {p["receipt"] for p in proofs["inclusion"]} == {n for n in names if n.endswith(".receipt.json")}
    result = json.loads(members["records/result.json"])
    assert result["result_sha256"] == hashlib.sha256(json.dumps(result["lots"], sort_keys=True, ensure_ascii=False,
                                                                separators=(",", ":")).encode()).hexdigest()
    events = [json.loads(line) for line in members["audit/events.jsonl"].decode().splitlines()]
    assert any(e["action"] == "evaluation.result" for e in events)
    assert any(e["object_type"] == "tender" and e["object_id"] == str(r.tender_id) for e in events)
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})

    verdict = verify_archive(path)
    assert verdict.problems == ()
    assert verdict.ok and verdict.checked == len(names) - 2 and verdict.manifest_sha256 == manifest.sha256

    recorded = db.session.scalars(select(AuditEvent).where(AuditEvent.action == EXPORTED_ACTION)).all()
    assert len(recorded) == 1
    assert recorded[0].object_type == "tender" and recorded[0].object_id == str(r.tender_id)
    assert recorded[0].summary["manifest_sha256"] == manifest.sha256


def test_the_same_data_gives_the_same_bytes(exported):
    r, _, _ = exported
    outputs = []
    for _ in range(2):
        out = io.BytesIO()
        export_archive(r.tender_id, out)
        outputs.append(out.getvalue())
        db.session.rollback()  # the export's audit event goes: the next export sees the same trail
    assert outputs[0] == outputs[1]
    assert verify_archive(io.BytesIO(outputs[0])).ok


def test_a_changed_byte_in_any_member_is_reported(exported, tmp_path):
    _, path, _ = exported
    members = _members(path)
    assert len(members) > 15
    for name, data in members.items():
        flipped = _rezip({**members, name: _flip(data)}, tmp_path / "flipped.zip")
        verdict = verify_archive(flipped)
        assert not verdict.ok, name
        assert any(p.startswith(f"{name}:") or f" {name} " in p for p in verdict.problems), (name, verdict.problems)
    # the first and the last byte too, in the smallest and the largest members
    for name in (min(members, key=lambda n: len(members[n])), max(members, key=lambda n: len(members[n]))):
        for at in (0, len(members[name]) - 1):
            verdict = verify_archive(_rezip({**members, name: _flip(members[name], at)}, tmp_path / "edge.zip"))
            assert not verdict.ok and any(name in p for p in verdict.problems), (name, at)


def test_a_changed_byte_inside_the_zip_names_the_damaged_member(exported, tmp_path):
    _, path, _ = exported
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(".ebe"))
    # the local header is 30 bytes plus the name and the extra field; flip a byte of the stored data
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(_flip(raw, start + info.compress_size // 2))
    verdict = verify_archive(damaged)
    assert not verdict.ok and any(p.startswith(f"{info.filename}:") for p in verdict.problems), verdict.problems


def test_a_resealed_manifest_does_not_hide_changed_evidence(exported, tmp_path):
    _, path, _ = exported
    members = _members(path)
    envelope = next(n for n in members if n.endswith(".ebe"))
    verdict = verify_archive(_rezip(_reseal({**members, envelope: _flip(members[envelope])}), tmp_path / "a.zip"))
    assert not verdict.ok and any(p.startswith(f"{envelope}:") for p in verdict.problems), verdict.problems

    lines = members["audit/events.jsonl"].decode().splitlines()
    event = json.loads(lines[1])
    event["actor_name"] = "someone else"
    lines[1] = json.dumps(event, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    changed = {**members, "audit/events.jsonl": ("\n".join(lines) + "\n").encode()}
    verdict = verify_archive(_rezip(_reseal(changed), tmp_path / "b.zip"))
    assert not verdict.ok and any(p.startswith("audit/events.jsonl: line 2") for p in verdict.problems)

    rows = [json.loads(line) for line in members["log/entries.jsonl"].decode().splitlines()]
    body = json.loads(base64.b64decode(rows[-1]["entry"]))
    body["at_ms"] += 1
    entry = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    rows[-1]["entry"] = base64.b64encode(entry).decode()
    rows[-1]["leaf_hash"] = hashlib.sha256(b"\x00" + entry).hexdigest()
    log = "".join(json.dumps(row, sort_keys=True, separators=(",", ":")) + "\n" for row in rows).encode()
    verdict = verify_archive(_rezip(_reseal({**members, "log/entries.jsonl": log}), tmp_path / "c.zip"))
    assert not verdict.ok and any("Merkle root" in p for p in verdict.problems), verdict.problems

    result = json.loads(members["records/result.json"])
    result["lots"][0]["candidates"] = list(reversed(result["lots"][0]["candidates"]))
    result["lots"][0]["candidates"].append({"bid_opening_id": 0})
    changed = {**members, "records/result.json": json.dumps(result).encode()}
    verdict = verify_archive(_rezip(_reseal(changed), tmp_path / "d.zip"))
    assert not verdict.ok and any(p.startswith("records/result.json:") for p in verdict.problems)


def test_missing_and_extra_members_are_named(exported, tmp_path):
    _, path, _ = exported
    members = _members(path)
    receipt = next(n for n in members if n.endswith(".receipt.json"))
    verdict = verify_archive(_rezip({n: d for n, d in members.items() if n != receipt}, tmp_path / "m.zip"))
    assert not verdict.ok
    assert f"{receipt}: listed in the manifest but missing from the archive" in verdict.problems
    verdict = verify_archive(_rezip({**members, "notes.txt": b"added later"}, tmp_path / "x.zip"))
    assert verdict.problems == ("notes.txt: present in the archive but not listed in the manifest",)


def test_truncated_empty_and_foreign_files_are_problems_not_exceptions(exported, tmp_path):
    _, path, _ = exported
    raw = path.read_bytes()
    for name, data in (("truncated.zip", raw[:len(raw) // 2]), ("short.zip", raw[:-10]), ("empty.zip", b""),
                       ("text.zip", b"not an archive at all\n"), ("pdf.zip", b"%PDF-1.7\n" + bytes(200))):
        target = tmp_path / name
        target.write_bytes(data)
        verdict = verify_archive(target)
        assert not verdict.ok and verdict.checked == 0 and verdict.manifest_sha256 is None
        assert len(verdict.problems) == 1 and "not a readable ZIP archive" in verdict.problems[0]
    assert "cannot be read" in verify_archive(tmp_path / "absent.zip").problems[0]
    # a valid ZIP of something else: no manifest
    other = _rezip({"readme.txt": b"hello"}, tmp_path / "other.zip")
    problems = verify_archive(other).problems
    assert any(p.startswith("manifest.json: missing") for p in problems)


def test_trusted_keys_must_match(exported):
    _, path, _ = exported
    keys = json.loads(_members(path)["log/keys.json"])
    assert verify_archive(path, trusted_keys={u: k["key_id"] for u, k in keys.items()}).ok
    verdict = verify_archive(path, trusted_keys={"log": "ab" * 32})
    assert not verdict.ok and verdict.problems[0].startswith("log/keys.json: the log key")


def test_audit_hash_matches_the_platform(exported):
    ev = db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    from core.audit import hashed_fields

    fields = json.loads(json.dumps(hashed_fields(ev), default=str))
    assert archive_verify.audit_event_hash(ev.prev_hash, fields) == event_hash(ev.prev_hash, hashed_fields(ev))


def test_cli_verifies_without_an_app_or_a_database(exported, tmp_path):
    _, path, manifest = exported
    runner = CliRunner()
    result = runner.invoke(supervision_cli, ["verify-archive", str(path)])
    assert result.exit_code == 0, result.output
    assert f"archive verified: {len(manifest.members)} files" in result.output

    env = {k: v for k, v in os.environ.items() if not k.startswith("EBID_")}
    env["EBID_DATABASE_URL"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # would fail if it were used
    code = "import sys; from supervision.cli import supervision_cli; supervision_cli(sys.argv[1:])"
    done = subprocess.run([sys.executable, "-c", code, "verify-archive", str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "archive verified" in done.stdout

    members = _members(path)
    bad = _rezip({**members, "tender.json": _flip(members["tender.json"])}, tmp_path / "bad.zip")
    done = subprocess.run([sys.executable, "-c", code, "verify-archive", str(bad)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "tender.json: changed" in done.stderr and "archive verified" not in done.stdout


def test_cli_exports_by_tender_code(exported, app, tmp_path):
    r, _, _ = exported
    out = tmp_path / "cli.zip"
    result = app.test_cli_runner().invoke(supervision_cli, ["export-archive", "--tender", r.tender.code, "-o", str(out)])
    assert result.exit_code == 0, result.output
    sha = hashlib.sha256(_members(out)[MANIFEST]).hexdigest()
    assert f"manifest sha256 {sha}" in result.output
    assert verify_archive(out).ok
    db.session.expire_all()
    summaries = [e.summary for e in db.session.scalars(select(AuditEvent).where(AuditEvent.action == EXPORTED_ACTION))]
    assert sha in [s["manifest_sha256"] for s in summaries]
    missing = app.test_cli_runner().invoke(supervision_cli, ["export-archive", "--tender", "NO-SUCH", "-o", str(out)])
    assert missing.exit_code != 0 and "No tender has this code" in missing.output
