"""The tender's state machine (招标项目状态): which step may follow which.

draft → published → opening → evaluation → publicity → awarded, with failed (流标, e.g. fewer than
three bids, 条例 §44) and cancelled (终止) as the other ends. Pure: data in, decision out.
"""

from __future__ import annotations

from typing import Protocol

from flask_babel import lazy_gettext as _l

from bidding.errors import TransitionRefused
from bidding.models import TenderStatus as S

ALLOWED: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.PUBLISHED, S.CANCELLED}),
    S.PUBLISHED: frozenset({S.OPENING, S.FAILED, S.CANCELLED}),
    S.OPENING: frozenset({S.EVALUATION, S.FAILED, S.CANCELLED}),
    S.EVALUATION: frozenset({S.PUBLICITY, S.FAILED, S.CANCELLED}),
    # an upheld objection during publicity (条例 §54) sends the result back to the committee
    S.PUBLICITY: frozenset({S.AWARDED, S.EVALUATION, S.FAILED, S.CANCELLED}),
    S.AWARDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}

FINAL = frozenset(s for s, targets in ALLOWED.items() if not targets)

# Steps that cannot be taken while an objection (异议) is pending: the procedure is suspended (条例 §22).
BLOCKED_WHILE_SUSPENDED = frozenset({S.OPENING, S.EVALUATION, S.PUBLICITY, S.AWARDED})


class HasStatus(Protocol):
    status: S
    is_suspended: bool


def can_transition(current: S, target: S) -> bool:
    return S(target) in ALLOWED[S(current)]


def transition(tender: HasStatus, target: S) -> S:
    """Move ``tender`` to ``target`` or raise :class:`TransitionRefused` saying why; return the old status."""
    current, target = S(tender.status), S(target)
    if not can_transition(current, target):
        if current in FINAL:
            raise TransitionRefused(_l("The tender is %(current)s; nothing more can happen to it."),
                                    current=current.value)
        allowed = ", ".join(sorted(s.value for s in ALLOWED[current]))
        raise TransitionRefused(_l("A %(current)s tender cannot become %(target)s; from %(current)s it can "
                                   "only become: %(allowed)s."),
                                current=current.value, target=target.value, allowed=allowed)
    if target in BLOCKED_WHILE_SUSPENDED and getattr(tender, "is_suspended", False):
        raise TransitionRefused(_l("The procedure is suspended until every pending objection is answered; "
                                   "answer the objections first."), code="suspended")
    tender.status = target
    return current
