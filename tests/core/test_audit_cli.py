"""``ebid audit head`` and ``ebid audit verify`` as an operator runs them."""

from __future__ import annotations

from core.audit import current_head
from core.audit_verify import anchors_path, read_anchors
from tests.core.audit_fixtures import make_events, tamper_fixture  # noqa: F401  (fixture)


def test_head_prints_and_anchors_the_head(app, settings):
    make_events(3)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["audit", "head"])
    assert result.exit_code == 0, result.output
    head = current_head()
    assert result.stdout.strip() == str(head)
    assert read_anchors(anchors_path(settings.data_dir)).anchors == [head]
    runner.invoke(args=["audit", "head"])
    assert read_anchors(anchors_path(settings.data_dir)).anchors == [head, head]


def test_verify_reports_an_intact_trail(app):
    make_events(3)
    runner = app.test_cli_runner()
    runner.invoke(args=["audit", "head"])
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 3 events" in result.stdout and "1 anchors checked" in result.stdout


def test_verify_exits_non_zero_naming_the_first_broken_link(app, tamper):
    make_events(5)
    tamper("UPDATE audit_events SET summary = '{}' WHERE seq = 2")
    tamper("DELETE FROM audit_events WHERE seq = 4")
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at seq 2" in result.stderr and "edited" in result.stderr


def test_verify_catches_truncation_through_the_anchors_file(app, tamper):
    make_events(4)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "head"]).exit_code == 0
    tamper("DELETE FROM audit_events WHERE seq = 4")
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at seq 4: truncated" in result.stderr


def test_verify_checks_expected_heads(app, tamper):
    make_events(3)
    head = str(current_head())
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "verify", "--expect", head]).exit_code == 0
    tamper("DELETE FROM audit_events WHERE seq = 3")
    result = runner.invoke(args=["audit", "verify", "--expect", head])
    assert result.exit_code == 1 and "truncated" in result.stderr


def test_verify_uses_another_anchors_file_when_told(app, tmp_path):
    make_events(2)
    offsite = tmp_path / "offsite-anchors.log"
    offsite.write_text(f"{current_head()}\t2026-03-02T00:00:00+00:00\n2:{'e' * 64}\n")
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--anchors-file", str(offsite)])
    assert result.exit_code == 1 and "anchor_mismatch" in result.stderr


def test_verify_refuses_a_malformed_expectation(app):
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--expect", "3:abc"])
    assert result.exit_code == 2 and "SEQ:HASH" in result.output
