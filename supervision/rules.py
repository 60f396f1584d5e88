"""Pure rules of supervision: working days (工作日) for complaint time limits (条例 §61).

Working days are Monday to Friday minus the public holidays the centre configures (``holidays``);
make-up working weekends (调休上班) can be given as ``extra_workdays``. Counting starts the day after.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, timedelta

ACCEPT_WORKING_DAYS = 3   # accept or reject a complaint (条例 §61)
DECIDE_WORKING_DAYS = 30  # decide an accepted complaint (条例 §61)
COMPLAINT_WINDOW_DAYS = 10  # a complaint within 10 days of knowing (条例 §60); the objection answer counts as knowing


def is_working_day(day: date, holidays: Collection[date] = (), extra_workdays: Collection[date] = ()) -> bool:
    if day in extra_workdays:
        return True
    return day.weekday() < 5 and day not in holidays


def add_working_days(start: date, n: int, holidays: Collection[date] = (),
                     extra_workdays: Collection[date] = ()) -> date:
    """The ``n``-th working day after ``start`` (``start`` itself does not count)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    day, left = start, n
    while left:
        day += timedelta(days=1)
        if is_working_day(day, holidays, extra_workdays):
            left -= 1
    return day
