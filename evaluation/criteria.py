"""Evaluation criteria (评审因素) of a tender's method, value checks, progress and deviation warnings.

Pure functions: data in, decision out. A criterion is a dict
``{"code", "kind": "pass_fail" | "score", "title", "group", "min", "max"}``; ``group`` is one of
形式 / 资格 / 响应性 (preliminary review, 初步评审, pass/fail) or 技术 / 商务 (detailed review, 详细评审,
scored). Scores are decimal strings (``"7.5"``), compared as :class:`~decimal.Decimal`, never floats;
pass/fail items take ``"pass"`` or ``"fail"`` and have no range. Objective items (price, fixed-point
certificates) are computed by the system later and never scored by hand, so they are not criteria here.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask_babel import lazy_gettext as _l

from core.errors import ValidationFailed
from core.i18n import N_
from evaluation.methods.numbers import decimal_of

PASS_FAIL, SCORE = "pass_fail", "score"
KINDS = (PASS_FAIL, SCORE)
GROUPS = ("形式", "资格", "响应性", "技术", "商务")
PASS, FAIL = "pass", "fail"
DEFAULT_TECHNICAL_WEIGHT = Decimal("30")
DEFAULT_THRESHOLD = Decimal("0.3")
CENT = Decimal("0.01")

# the default preliminary review (初步评审): code, group, title
_PRELIMINARY = (
    ("F1", "形式", N_("Bid letter signed and sealed; bidder name matches the licence")),
    ("F2", "形式", N_("Bid format as required by the tender documents")),
    ("Q1", "资格", N_("Business licence and qualification certificates valid")),
    ("Q2", "资格", N_("Project manager qualified and not committed to another project")),
    ("R1", "响应性", N_("Duration within the required duration")),
    ("R2", "响应性", N_("Quality standard as required")),
    ("R3", "响应性", N_("Bid price not above the ceiling price (最高投标限价)")),
)
# the default technical review (详细评审 技术): code, share of the technical weight, title
_TECHNICAL = (
    ("T1", Decimal("0.4"), N_("Construction plan and technical measures")),
    ("T2", Decimal("0.2"), N_("Quality assurance measures")),
    ("T3", Decimal("0.2"), N_("Safety and environmental measures")),
    ("T4", Decimal("0.2"), N_("Schedule and resource plan")),
)


_dec = decimal_of  # one reading of a number for criteria and methods


def _text(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros (``"12"``, ``"6.6"``)."""
    text = format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def default_criteria(evaluation_method: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The default set: the pass/fail preliminary items, plus scored technical items summing to the
    technical weight (``weights["technical"]``, default 30) for methods that score (综合评估法); the lowest
    evaluated price method (经评审的最低投标价法, ``method == "lowest_price"``) has pass/fail items only."""
    items = [{"code": code, "kind": PASS_FAIL, "title": title, "group": group, "min": None, "max": None}
             for code, group, title in _PRELIMINARY]
    if evaluation_method.get("method") == "lowest_price":
        return items
    weight = _dec((evaluation_method.get("weights") or {}).get("technical", DEFAULT_TECHNICAL_WEIGHT))
    if weight is None or weight <= 0:
        return items
    maxima = [(share * weight).quantize(CENT, rounding=ROUND_HALF_UP) for _, share, _ in _TECHNICAL]
    maxima[0] += weight - sum(maxima)  # rounding remainder on the first item: the sum is the weight exactly
    items += [{"code": code, "kind": SCORE, "title": title, "group": "技术", "min": "0", "max": _text(top)}
              for (code, _, title), top in zip(_TECHNICAL, maxima, strict=True)]
    return items


def _normalised(item: Any, index: int) -> dict[str, Any]:
    where = f"criteria[{index}]"
    if not isinstance(item, Mapping):
        raise ValidationFailed(_l("Criterion %(where)s must be an object with code, kind, title and group."),
                               where=where)
    code, kind, group = str(item.get("code") or "").strip(), item.get("kind"), item.get("group")
    title = str(item.get("title") or "").strip()
    if not code or len(code) > 64 or not title:
        raise ValidationFailed(_l("Criterion %(where)s needs a code (at most 64 characters) and a title."),
                               where=where)
    if kind not in KINDS:
        raise ValidationFailed(_l("Criterion %(item)s has kind %(kind)s; use pass_fail or score."),
                               item=code, kind=str(kind))
    if group not in GROUPS:
        raise ValidationFailed(_l("Criterion %(item)s has group %(group)s; use one of %(groups)s."),
                               item=code, group=str(group), groups=" / ".join(GROUPS))
    if kind == PASS_FAIL:
        return {"code": code, "kind": kind, "title": title, "group": group, "min": None, "max": None}
    low, high = _dec(item.get("min", 0)), _dec(item.get("max"))
    if low is None or high is None or low < 0 or high <= low:
        raise ValidationFailed(_l("Criterion %(item)s needs a range: 0 <= min < max."), item=code)
    return {"code": code, "kind": kind, "title": title, "group": group, "min": _text(low), "max": _text(high)}


def criteria_for(evaluation_method: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The criteria of a method: ``evaluation_method["criteria"]`` when given (checked), else the default set.

    Items of kind ``"objective"`` in a given list are computed by the system and left out.
    """
    method = evaluation_method or {}
    given = method.get("criteria")
    if not given:
        return default_criteria(method)
    if not isinstance(given, list):
        raise ValidationFailed(_l("The method's criteria must be a list of criteria."))
    items = [_normalised(item, i) for i, item in enumerate(given)
             if not (isinstance(item, Mapping) and item.get("kind") == "objective")]
    codes = [item["code"] for item in items]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise ValidationFailed(_l("Criterion codes must be unique; repeated: %(codes)s."), codes=", ".join(duplicates))
    if not items:
        raise ValidationFailed(_l("The method has no criteria to score; add at least one."))
    return items


def threshold_for(evaluation_method: Mapping[str, Any] | None) -> Decimal:
    """The deviation warning threshold (share of an item's range): ``deviation_threshold``, default 0.3."""
    raw = (evaluation_method or {}).get("deviation_threshold", DEFAULT_THRESHOLD)
    value = _dec(raw)
    if value is None or not Decimal(0) < value <= Decimal(1):
        raise ValidationFailed(_l("The method's deviation threshold must be a share above 0 and at most 1 (e.g. "
                                  "0.3); it is %(value)s."), value=str(raw)[:20])
    return value


def by_code(criteria: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["code"]: c for c in criteria}


def check_value(criterion: Mapping[str, Any], value: Any) -> str:
    """The stored form of ``value`` for ``criterion``, or :class:`ValidationFailed` saying what is allowed."""
    code = criterion["code"]
    if criterion["kind"] == PASS_FAIL:
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text not in (PASS, FAIL):
            raise ValidationFailed(_l("%(item)s is a pass/fail item: enter pass or fail."), item=code,
                                   fields={code: _l("Enter pass or fail.")})
        return text
    number = _dec(value) if isinstance(value, str | int | float | Decimal) else None
    low, high = Decimal(criterion["min"]), Decimal(criterion["max"])
    if number is None or number < low or number > high or number != number.quantize(CENT):
        raise ValidationFailed(_l("%(item)s: %(value)s is not allowed; enter a number from %(min)s to %(max)s "
                                  "(at most 2 decimals)."),
                               item=code, value=str(value)[:20], min=criterion["min"], max=criterion["max"],
                               fields={code: _l("Enter a number from %(min)s to %(max)s.") % {
                                   "min": criterion["min"], "max": criterion["max"]}})
    return _text(number)


def progress(criteria: list[dict[str, Any]], values: Mapping[str, Any]) -> tuple[int, int]:
    """(filled, total): how many criteria hold a value the criterion accepts."""
    filled = 0
    for criterion in criteria:
        if criterion["code"] in values:
            try:
                check_value(criterion, values[criterion["code"]])
            except ValidationFailed:
                continue
            filled += 1
    return filled, len(criteria)


def missing_reasons(criteria: list[dict[str, Any]], values: Mapping[str, Any],
                    comments: Mapping[str, Any]) -> list[str]:
    """Codes of pass/fail items marked ``fail`` without a written reason (a fail must say why)."""
    return [c["code"] for c in criteria
            if c["kind"] == PASS_FAIL and values.get(c["code"]) == FAIL
            and not str(comments.get(c["code"]) or "").strip()]


def deviation_warnings(criteria: list[dict[str, Any]],
                       sheets_by_member: Mapping[int, Mapping[int, Mapping[str, Any]]],
                       threshold: Decimal | float | str) -> list[dict[str, Any]]:
    """Scores far from the other members' (畸高畸低): ``|value - mean of the others| > threshold × range``.

    ``sheets_by_member`` is ``{member_id: {bid_opening_id: values}}`` (submitted sheets). Only scored items
    with at least one other member's value are compared. A warning, never a block.
    """
    limit_share = Decimal(str(threshold))
    warnings: list[dict[str, Any]] = []
    bids = sorted({bid for sheets in sheets_by_member.values() for bid in sheets})
    for criterion in (c for c in criteria if c["kind"] == SCORE):
        code, span = criterion["code"], Decimal(criterion["max"]) - Decimal(criterion["min"])
        for bid in bids:
            scores = {member: _dec(sheets[bid].get(code)) for member, sheets in sheets_by_member.items()
                      if bid in sheets and _dec(sheets[bid].get(code)) is not None}
            for member in sorted(scores):
                others = [v for m, v in scores.items() if m != member]
                if not others:
                    continue
                mean = sum(others) / len(others)
                if abs(scores[member] - mean) > limit_share * span:
                    warnings.append({"member_id": member, "bid_opening_id": bid, "criterion": code,
                                     "value": _text(scores[member]), "others_mean": _text(mean),
                                     "range": [criterion["min"], criterion["max"]]})
    return warnings
