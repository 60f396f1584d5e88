"""Verifying the audit trail (审计日志校验): the chain itself, and anchors that catch tail truncation.

:func:`verify_chain` walks every event in ``seq`` order in one streaming pass and stops at the first
broken link, saying which row and why. An anchor is a published head (``SEQ:HASH``): anything that
later removes or rewrites the rows up to that head, including cutting off the end of the trail, is
caught when the anchor is checked. ``ebid audit head`` and the hourly ``audit.anchor`` task append
anchors to ``<data_dir>/audit-anchors.log``; copy that file (or the printed heads) somewhere the
database administrators cannot write, e.g. a WORM store or a signed notice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit import GENESIS, HASHED_FIELDS, AuditEvent, Head, current_head, event_hash
from core.clock import now
from core.db import db

ANCHORS_FILE = "audit-anchors.log"

# Reasons for a broken link, in the order a reader would look for them.
EDITED = "edited"                # the stored hash does not match the row's contents
DELETED = "deleted"              # a gap in seq: rows are missing
REORDERED = "reordered"          # the row links to an event that sits elsewhere in the chain
RELINKED = "relinked"            # the row links to an event that no longer exists (removed or rewritten)
WRONG_GENESIS = "wrong_genesis"  # the first event does not start from the genesis hash
TRUNCATED = "truncated"          # an anchor names a seq beyond the current head
ANCHOR_MISMATCH = "anchor_mismatch"  # the event at an anchor's seq is not the anchored one
BAD_ANCHOR = "bad_anchor"        # a line of the anchors file cannot be read


@dataclass(frozen=True)
class BrokenLink:
    """The first place where the trail stops being trustworthy."""

    reason: str
    seq: int
    id: int | None
    detail: str

    def __str__(self) -> str:
        where = f"seq {self.seq}" + (f" (id {self.id})" if self.id is not None else "")
        return f"{where}: {self.reason}: {self.detail}"


@dataclass(frozen=True)
class ChainVerification:
    """Outcome of :func:`verify_chain`."""

    count: int
    head: Head
    broken: BrokenLink | None = None
    anchors_checked: int = 0
    checked_at: datetime = field(default_factory=now, compare=False)

    @property
    def ok(self) -> bool:
        return self.broken is None


def verify_chain(anchors: Iterable[Head] = (), session: Session | None = None,
                 batch_size: int = 2000) -> ChainVerification:
    """Check every link of the trail, then each anchor; name the first broken link if any."""
    session = session or db.session
    anchors = list(anchors)
    wanted = {a.seq for a in anchors}
    hashes_at: dict[int, str] = {0: GENESIS}
    columns = [getattr(AuditEvent, name) for name in HASHED_FIELDS]
    rows = session.execute(select(*columns, AuditEvent.id, AuditEvent.prev_hash, AuditEvent.hash)
                           .order_by(AuditEvent.seq).execution_options(yield_per=batch_size))
    expected_seq, expected_prev, count = 1, GENESIS, 0
    for values in rows:
        row = _Row(dict(zip(HASHED_FIELDS, values, strict=False)), *values[-3:])
        broken = _check_row(session, row, expected_seq, expected_prev)
        if broken is not None:
            rows.close()
            return ChainVerification(count=count, head=Head(expected_seq - 1, expected_prev), broken=broken)
        if row.seq in wanted:
            hashes_at[row.seq] = row.hash
        count += 1
        expected_seq, expected_prev = row.seq + 1, row.hash
    head = Head(expected_seq - 1, expected_prev)
    for anchor in anchors:
        broken = _check_anchor(anchor, head, hashes_at)
        if broken is not None:
            return ChainVerification(count=count, head=head, broken=broken, anchors_checked=len(anchors))
    return ChainVerification(count=count, head=head, anchors_checked=len(anchors))


class _Row(NamedTuple):
    fields: dict[str, Any]
    id: int
    prev_hash: str
    hash: str

    @property
    def seq(self) -> int:
        return self.fields["seq"]


def _check_row(session: Session, row: _Row, expected_seq: int, expected_prev: str) -> BrokenLink | None:
    if row.seq > expected_seq:
        missing = (f"seq {expected_seq}" if row.seq == expected_seq + 1
                   else f"seq {expected_seq} to {row.seq - 1}")
        return BrokenLink(DELETED, expected_seq, None,
                          f"{missing} missing: the chain jumps from seq {expected_seq - 1} to {row.seq} "
                          f"(id {row.id})")
    if row.seq < expected_seq:  # only possible without the unique constraint on seq
        return BrokenLink(REORDERED, row.seq, row.id, f"seq {row.seq} appears twice")
    if row.prev_hash != expected_prev:
        if expected_prev == GENESIS:
            return BrokenLink(WRONG_GENESIS, row.seq, row.id,
                              "the first event does not link to the genesis hash (64 zeros)")
        elsewhere = session.execute(select(AuditEvent.seq).where(AuditEvent.hash == row.prev_hash)).scalar()
        if elsewhere is not None:
            return BrokenLink(REORDERED, row.seq, row.id,
                              f"it links to the event now at seq {elsewhere}, not to seq {expected_seq - 1}: "
                              f"rows were moved")
        return BrokenLink(RELINKED, row.seq, row.id,
                          f"it links to an event that is no longer in the trail: the event before it "
                          f"(seq {expected_seq - 1}) was removed or rewritten")
    fields = {**row.fields, "at": row.fields["at"].isoformat()}
    if event_hash(row.prev_hash, fields) != row.hash:
        return BrokenLink(EDITED, row.seq, row.id, "the stored hash does not match the row's contents")
    return None


def _check_anchor(anchor: Head, head: Head, hashes_at: dict[int, str]) -> BrokenLink | None:
    if anchor.seq > head.seq:
        return BrokenLink(TRUNCATED, anchor.seq, None,
                          f"anchor {anchor} names seq {anchor.seq} but the trail ends at seq {head.seq}: "
                          f"events after seq {head.seq} were removed")
    if hashes_at.get(anchor.seq) != anchor.hash:
        return BrokenLink(ANCHOR_MISMATCH, anchor.seq, None,
                          f"the event at seq {anchor.seq} is not the one anchored ({anchor.hash[:16]}...): "
                          f"the trail was rewritten up to there")
    return None


@dataclass(frozen=True)
class AnchorFile:
    """Anchors read from a file, plus the first line that could not be read (if any)."""

    anchors: list[Head]
    bad_line: tuple[int, str] | None = None

    def problem(self) -> BrokenLink | None:
        if self.bad_line is None:
            return None
        number, error = self.bad_line
        return BrokenLink(BAD_ANCHOR, 0, None, f"line {number} of the anchors file: {error}")


def anchors_path(data_dir: Path) -> Path:
    """Where the anchors of this installation are appended."""
    return Path(data_dir) / ANCHORS_FILE


def append_anchor(path: Path, head: Head) -> str:
    """Append ``head`` with the current time to the anchors file (created 0600); return the line."""
    line = f"{head}\t{now().isoformat()}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return line.rstrip("\n")


def read_anchors(path: Path) -> AnchorFile:
    """Read ``SEQ:HASH<TAB>time`` lines (blank lines and ``#`` comments skipped); a missing file is empty."""
    if not path.exists():
        return AnchorFile([])
    anchors: list[Head] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            anchors.append(Head.parse(line.split("\t", 1)[0]))
        except ValueError as exc:
            return AnchorFile(anchors, (number, str(exc)))
    return AnchorFile(anchors)


def anchor_now(data_dir: Path, session: Session | None = None) -> str:
    """Append the current head to the installation's anchors file; return the line written."""
    return append_anchor(anchors_path(data_dir), current_head(session))


def verify_with_anchors(anchors_file: Path, expect: Iterable[Head] = (),
                        session: Session | None = None) -> ChainVerification:
    """Verify the chain, then the anchors in ``anchors_file`` and any ``expect``-ed heads."""
    anchor_file = read_anchors(anchors_file)
    result = verify_chain([*anchor_file.anchors, *expect], session=session)
    problem = anchor_file.problem()
    if result.ok and problem is not None:
        return ChainVerification(count=result.count, head=result.head, broken=problem,
                                 anchors_checked=result.anchors_checked)
    return result
