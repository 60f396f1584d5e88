"""Tampering as a database administrator could (guards dropped first): verification names the first broken link."""

from __future__ import annotations

from core.audit import GENESIS, Head, current_head, event_hash, hashed_fields
from core.audit_verify import (
    ANCHOR_MISMATCH,
    BAD_ANCHOR,
    DELETED,
    EDITED,
    RELINKED,
    REORDERED,
    TRUNCATED,
    WRONG_GENESIS,
    anchors_path,
    append_anchor,
    read_anchors,
    verify_chain,
    verify_with_anchors,
)
from tests.core.audit_fixtures import BOB, make_events, tamper_fixture  # noqa: F401  (fixture)


def test_intact_chain_verifies(app):
    make_events(5)
    result = verify_chain()
    assert result.ok and result.broken is None and result.count == 5


def test_empty_trail_verifies(app):
    result = verify_chain([Head(0, GENESIS)])
    assert result.ok and result.count == 0 and result.head == Head(0, GENESIS)


def test_edited_summary_is_named(app, tamper):
    events = make_events(6)
    tamper("UPDATE audit_events SET summary = :s WHERE seq = 4", s='{"step": 4, "note": "nothing happened"}')
    broken = verify_chain().broken
    assert (broken.reason, broken.seq, broken.id) == (EDITED, 4, events[3].id)
    assert "stored hash does not match" in broken.detail


def test_edited_actor_is_named(app, tamper):
    make_events(3)
    tamper("UPDATE audit_events SET actor_name = 'Mallory', actor_person_id = 99 WHERE seq = 2")
    result = verify_chain()
    assert (result.broken.reason, result.broken.seq) == (EDITED, 2)
    assert result.count == 1  # the events before the break are the verified ones


def test_edited_time_and_source_are_named(app, tamper):
    make_events(3)
    tamper("UPDATE audit_events SET source = '10.0.0.1' WHERE seq = 3")
    assert (verify_chain().broken.reason, verify_chain().broken.seq) == (EDITED, 3)


def test_deleted_middle_row_is_named(app, tamper):
    events = make_events(5)
    tamper("DELETE FROM audit_events WHERE seq = 3")
    broken = verify_chain().broken
    assert (broken.reason, broken.seq) == (DELETED, 3)
    assert "seq 3 missing" in broken.detail and f"id {events[3].id}" in broken.detail


def test_deleted_first_rows_are_named(app, tamper):
    make_events(4)
    tamper("DELETE FROM audit_events WHERE seq <= 2")
    broken = verify_chain().broken
    assert (broken.reason, broken.seq) == (DELETED, 1)
    assert "seq 1 to 2 missing" in broken.detail


def test_swapped_rows_are_named(app, tamper):
    events = make_events(6)
    tamper("UPDATE audit_events SET seq = -3 WHERE seq = 3")
    tamper("UPDATE audit_events SET seq = 3 WHERE seq = 5")
    tamper("UPDATE audit_events SET seq = 5 WHERE seq = -3")
    broken = verify_chain().broken
    assert (broken.reason, broken.seq, broken.id) == (REORDERED, 3, events[4].id)
    assert "now at seq 4" in broken.detail


def test_swapped_neighbours_are_named(app, tamper):
    make_events(4)
    tamper("UPDATE audit_events SET seq = -2 WHERE seq = 2")
    tamper("UPDATE audit_events SET seq = 2 WHERE seq = 3")
    tamper("UPDATE audit_events SET seq = 3 WHERE seq = -2")
    assert (verify_chain().broken.reason, verify_chain().broken.seq) == (REORDERED, 2)


def test_deleted_and_renumbered_rows_are_named(app, tamper):
    """Hiding a deletion by renumbering leaves the next event pointing at nothing."""
    make_events(5)
    tamper("DELETE FROM audit_events WHERE seq = 3")
    tamper("UPDATE audit_events SET seq = seq - 1 WHERE seq = 4")
    tamper("UPDATE audit_events SET seq = seq - 1 WHERE seq = 5")
    assert (verify_chain().broken.reason, verify_chain().broken.seq) == (RELINKED, 3)


def test_rewritten_row_with_recomputed_hash_is_caught_at_the_next_link(app, tamper):
    """A DBA who recomputes an edited row's hash still cannot fix the link from the row after it."""
    events = make_events(4)
    fields = {**hashed_fields(events[1]), "summary": {"step": 2, "note": "rewritten"}}
    forged = event_hash(events[1].prev_hash, fields)
    tamper("UPDATE audit_events SET summary = :s, hash = :h WHERE seq = 2",
           s='{"note": "rewritten", "step": 2}', h=forged)
    assert (verify_chain().broken.reason, verify_chain().broken.seq) == (RELINKED, 3)


def test_wrong_genesis_is_named(app, tamper):
    make_events(2)
    tamper("UPDATE audit_events SET prev_hash = :p WHERE seq = 1", p="f" * 64)
    assert (verify_chain().broken.reason, verify_chain().broken.seq) == (WRONG_GENESIS, 1)


def test_deleted_last_row_is_caught_by_an_anchor(app, tamper):
    make_events(4)
    anchor = current_head()
    tamper("DELETE FROM audit_events WHERE seq = 4")
    assert verify_chain().ok  # invisible from inside the chain...
    broken = verify_chain([anchor]).broken  # ...but not against a published head
    assert (broken.reason, broken.seq) == (TRUNCATED, 4)
    assert "trail ends at seq 3" in broken.detail


def test_rewritten_tail_is_caught_by_an_anchor(app, tamper):
    make_events(4)
    anchor = current_head()
    tamper("DELETE FROM audit_events WHERE seq >= 3")
    make_events(3, actor=BOB)  # new events reuse seq 3 and 4, chained correctly from seq 2
    assert verify_chain().ok
    broken = verify_chain([anchor]).broken
    assert (broken.reason, broken.seq) == (ANCHOR_MISMATCH, 4)


def test_anchors_file_round_trip(app, settings):
    path = anchors_path(settings.data_dir)
    make_events(2)
    first = current_head()
    append_anchor(path, first)
    make_events(1)
    append_anchor(path, current_head())
    with path.open("a") as f:
        f.write("\n# copied to the notice board on 2026-03-02\n")
    assert read_anchors(path).anchors == [first, current_head()]
    assert path.stat().st_mode & 0o777 == 0o600
    result = verify_with_anchors(path)
    assert result.ok and result.anchors_checked == 2


def test_unreadable_anchor_line_is_named(app, settings):
    path = anchors_path(settings.data_dir)
    make_events(1)
    append_anchor(path, current_head())
    with path.open("a") as f:
        f.write("3:not-a-hash\t2026-03-02T00:00:00+00:00\n")
    broken = verify_with_anchors(path).broken
    assert broken.reason == BAD_ANCHOR and "line 2" in broken.detail


def test_missing_anchors_file_means_no_anchors(app, settings):
    make_events(1)
    result = verify_with_anchors(anchors_path(settings.data_dir))
    assert result.ok and result.anchors_checked == 0
