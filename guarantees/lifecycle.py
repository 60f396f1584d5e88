"""The e-guarantee order's state machine (电子保函订单状态), DOMAIN.md §4. Pure: data in, decision out.

    draft → applied → approved → issued → bound_to_bid → verified_at_opening → released → closed
            │          │                                                     └→ claimed → paid → closed
            │          └→ cancelled                                                     └→ denied → released | closed
            ├→ cancelled
            └→ rejected

Transitions beyond the DOMAIN picture, and why:

* ``draft → cancelled``: the bidder gives up while the application still waits in the outbox (the
  issuer never heard of it, so nothing needs to be sent).
* ``draft → approved | rejected``: a ``Result`` can arrive before the platform recorded the issuer's
  ``202`` (the response was lost, or the issuer answered at once). The result proves the issuer got
  the order, so ``applied`` is implied.
* ``approved → cancelled``: cancelling before the letter is issued (the bank manual's
  ``OrderStatusUpdate``).
* ``issued | bound_to_bid → released``: withdrawal before the deadline, or the tender cancelled or
  failed before the opening (条例 §35: returned within 5 days).
* ``bound_to_bid → claimed``: a bid revoked after the deadline but before the opening check ran.
* ``denied → released``: a refused claim leaves the letter in force until it is released.
* ``released | paid | denied → closed``: the issuer confirmed the release, the claim was settled.
* ``issued | bound_to_bid | verified_at_opening → closed``: the letter expired in force, never released
  nor claimed; expiry ends the issuer's liability (:mod:`guarantees.closing` closes orders when due).
"""

from __future__ import annotations

import enum
from typing import Protocol

from flask_babel import lazy_gettext as _l

from core.errors import RuleViolation


class OrderState(enum.StrEnum):
    DRAFT = "draft"                              # created, waiting in the outbox (草稿/待发送)
    APPLIED = "applied"                          # pushed to the issuer (已申请)
    CANCELLED = "cancelled"                      # 已撤销
    APPROVED = "approved"                        # 已受理/审核通过
    REJECTED = "rejected"                        # 已拒绝
    ISSUED = "issued"                            # letter received (已出函)
    BOUND_TO_BID = "bound_to_bid"                # 已关联投标
    VERIFIED_AT_OPENING = "verified_at_opening"  # 开标验证通过
    RELEASED = "released"                        # 已退保/释放
    CLAIMED = "claimed"                          # 已索赔
    PAID = "paid"                                # 已赔付
    DENIED = "denied"                            # 拒赔
    CLOSED = "closed"                            # 已结束


S = OrderState

ALLOWED: dict[S, frozenset[S]] = {
    S.DRAFT: frozenset({S.APPLIED, S.CANCELLED, S.APPROVED, S.REJECTED}),
    S.APPLIED: frozenset({S.APPROVED, S.REJECTED, S.CANCELLED}),
    S.APPROVED: frozenset({S.ISSUED, S.CANCELLED}),
    S.ISSUED: frozenset({S.BOUND_TO_BID, S.RELEASED, S.CLOSED}),
    S.BOUND_TO_BID: frozenset({S.VERIFIED_AT_OPENING, S.RELEASED, S.CLAIMED, S.CLOSED}),
    S.VERIFIED_AT_OPENING: frozenset({S.RELEASED, S.CLAIMED, S.CLOSED}),
    S.CLAIMED: frozenset({S.PAID, S.DENIED}),
    S.DENIED: frozenset({S.RELEASED, S.CLOSED}),
    S.PAID: frozenset({S.CLOSED}),
    S.RELEASED: frozenset({S.CLOSED}),
    S.CANCELLED: frozenset(),
    S.REJECTED: frozenset(),
    S.CLOSED: frozenset(),
}

FINAL = frozenset(s for s, targets in ALLOWED.items() if not targets)
BEFORE_ISSUE = frozenset({S.DRAFT, S.APPLIED, S.APPROVED})
LETTER_IN_FORCE = frozenset({S.ISSUED, S.BOUND_TO_BID, S.VERIFIED_AT_OPENING, S.DENIED})
"""States in which an issued letter still binds its issuer (it can be released or, bound, claimed)."""
LIVE = BEFORE_ISSUE | LETTER_IN_FORCE | {S.CLAIMED}
"""States of an order still in play for its lot (a bidder has at most one live order per lot)."""

ISSUED_OR_LATER = frozenset({S.ISSUED, S.BOUND_TO_BID, S.VERIFIED_AT_OPENING, S.RELEASED, S.CLAIMED, S.PAID,
                             S.DENIED, S.CLOSED})
"""Every state an order can only reach through an issued letter."""


class TransitionRefused(RuleViolation):
    code = "guarantee_transition_refused"
    default_message = _l("This step is not possible in the guarantee order's current state.")


class HasState(Protocol):
    state: OrderState


def can_transition(current: S | str, target: S | str) -> bool:
    return S(target) in ALLOWED[S(current)]


def check_transition(current: S | str, target: S | str) -> None:
    """Raise :class:`TransitionRefused` saying why, unless ``current → target`` is allowed."""
    current, target = S(current), S(target)
    if can_transition(current, target):
        return
    if current in FINAL:
        raise TransitionRefused(_l("The guarantee order is %(current)s; nothing more can happen to it."),
                                current=current.value)
    allowed = ", ".join(sorted(s.value for s in ALLOWED[current]))
    raise TransitionRefused(_l("A %(current)s guarantee order cannot become %(target)s; from %(current)s it "
                               "can only become: %(allowed)s."),
                            current=current.value, target=target.value, allowed=allowed)


def transition(order: HasState, target: S | str) -> S:
    """Move ``order`` to ``target`` or raise :class:`TransitionRefused` saying why; return the old state."""
    current = S(order.state)
    check_transition(current, target)
    order.state = S(target)
    return current


def reached(current: S | str, step: S | str) -> bool:
    """True when an order in ``current`` has already passed ``step`` (approved or issued) on its path.

    A callback announcing a step the order has already passed is a duplicate: absorbed, not news.
    """
    current, step = S(current), S(step)
    if step == S.ISSUED:
        return current in ISSUED_OR_LATER
    if step == S.APPROVED:
        return current == S.APPROVED or current in ISSUED_OR_LATER
    return current == step
