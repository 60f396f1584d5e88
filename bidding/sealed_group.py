"""Group commit (成批受理) of envelopes sent in one request: those waiting for one tender's lock go in together.

Every accepted envelope must pass the tender's lock (:func:`bidding.sealed_checks.lock_tender`), where
the deadline is decided and the log grows, and the work under it is a dozen statements. When many
bidders submit at the same moment (the last minutes before a deadline), waiting for the lock one by one
would serialise those statements. Instead, within one web process, the envelopes that have been checked
and are waiting for the same tender form a queue; one of their request threads (the leader) takes the
lock once and accepts the whole queue in one transaction (:func:`bidding.submissions.accept_many`: one
read of the log, of the bidders' earlier bids and commitments, one flush, one audit append, one commit),
then hands each waiting thread its outcome. With a single bidder at a time the queue holds one envelope
and this is exactly the one-by-one path.

Nothing about the rules changes: the deadline is read under the lock for each group (an envelope is
accepted only if the group's time under the lock is before it); a group holds at most one envelope per
bidder and lot (a second one waits for the next group, where it replaces the first); an envelope's own
refusal does not stop the others. A failure of the group's transaction (the database, the deadline)
is the outcome of every envelope in it, and none of them is accepted.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field

from flask import current_app

from bidding.sealed_checks import lock_tender_and_log
from bidding.submissions import AcceptedBid, Incoming, accept_many
from core.db import commit_keeping_loaded, db

__all__ = ["Accepted", "MAX_GROUP", "accept_in_group", "groups_seen"]

MAX_GROUP = 64  # envelopes accepted in one transaction at most


@dataclass(frozen=True)
class Accepted:
    """What a waiting thread needs of its accepted bid, as plain values (no object of another session)."""

    bid_public_id: str
    entry: bytes
    previous_head_size: int | None
    frontier_before: list[bytes]


@dataclass(eq=False)
class _Waiting:
    incoming: Incoming
    done: bool = False
    outcome: Accepted | BaseException | None = None
    own: AcceptedBid | None = None  # the leader's own result, with its objects, when the leader is this thread


@dataclass(eq=False)
class _Queue:
    cond: threading.Condition = field(default_factory=threading.Condition)
    items: list[_Waiting] = field(default_factory=list)
    busy: bool = False


_queues: dict[tuple[int, int], _Queue] = {}  # by (application, tender)
_queues_lock = threading.Lock()
_sizes: list[int] = []  # sizes of the groups accepted in this process (bounded; for tests and benchmarks)


def groups_seen() -> list[int]:
    """The sizes of the latest groups accepted by this process (at most 1,000)."""
    return list(_sizes)


def _key(tender_id: int) -> tuple[int, int]:
    return id(current_app._get_current_object()), tender_id  # one process may serve several applications


def _queue(tender_id: int) -> _Queue:
    with _queues_lock:
        return _queues.setdefault(_key(tender_id), _Queue())


def _forget_if_idle(tender_id: int, queue: _Queue) -> None:
    """Drop an idle, empty queue (one per tender would otherwise stay for the process's life).

    A thread that took it just before still leads it alone: at worst two groups of one tender meet at
    the database lock, as groups of different processes do.
    """
    with _queues_lock, queue.cond:
        if not queue.busy and not queue.items and _queues.get(_key(tender_id)) is queue:
            del _queues[_key(tender_id)]


def _take(queue: _Queue) -> list[_Waiting]:
    """The next group, in arrival order: at most one envelope per bidder and lot, at most MAX_GROUP."""
    group, seen, rest = [], set(), []
    for waiting in queue.items:
        key = (waiting.incoming.upload.lot_id, waiting.incoming.upload.organisation_id)
        if key in seen or len(group) >= MAX_GROUP:
            rest.append(waiting)
        else:
            seen.add(key)
            group.append(waiting)
    queue.items = rest
    return group


def accept_in_group(tender_id: int, incoming: Incoming) -> tuple[Accepted, AcceptedBid | None]:
    """Accept ``incoming`` (this commits), alone or with the others waiting for the tender; raise its refusal.

    Returns its plain outcome and, when this thread accepted it itself, the ``AcceptedBid`` of
    :func:`bidding.submissions.accept_many` (its objects belong to this thread's session: no read needed).
    """
    queue = _queue(tender_id)
    me = _Waiting(incoming)
    with queue.cond:
        queue.items.append(me)
        while not me.done and queue.busy:
            queue.cond.wait()
        leader = not me.done
        queue.busy = queue.busy or leader
    if leader:
        try:
            while not me.done:
                with queue.cond:
                    group = _take(queue)
                _accept_group(tender_id, group, me)
                with queue.cond:
                    queue.cond.notify_all()
        finally:
            with queue.cond:
                queue.busy = False
                queue.cond.notify_all()
            _forget_if_idle(tender_id, queue)
    if isinstance(me.outcome, BaseException):
        raise me.outcome
    return me.outcome, me.own


def _accept_group(tender_id: int, group: list[_Waiting], leader: _Waiting) -> None:
    """One transaction under the tender lock for the whole group; every member gets its outcome (never raises)."""
    try:
        tender, log = lock_tender_and_log(tender_id)
        results = accept_many(tender, [w.incoming for w in group], log)
        commit_keeping_loaded()  # the leader answers from what was just written
    except BaseException as exc:  # the group's failure is each member's (each re-raises its own copy)
        db.session.rollback()
        outcomes = [exc if w is leader else copy.copy(exc) for w in group]
    else:
        outcomes = [r if isinstance(r, BaseException) else
                    Accepted(r.bid.public_id, r.entry, r.previous_head_size, r.frontier_before) for r in results]
        leader.own = next((r for w, r in zip(group, results, strict=True) if w is leader
                           and not isinstance(r, BaseException)), None)
        _sizes.append(len(group))
        del _sizes[:-1000]
    for waiting, outcome in zip(group, outcomes, strict=True):
        waiting.outcome, waiting.done = outcome, True
