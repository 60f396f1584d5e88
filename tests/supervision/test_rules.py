"""Working days for complaint time limits (条例 §61), table-driven."""

from __future__ import annotations

from datetime import date

import pytest

from supervision.rules import add_working_days, is_working_day

NATIONAL_DAY = {date(2026, 10, d) for d in range(1, 8)}


@pytest.mark.parametrize(("start", "n", "holidays", "extra", "expected"), [
    (date(2026, 11, 23), 3, (), (), date(2026, 11, 26)),    # Monday + 3 -> Thursday
    (date(2026, 11, 26), 3, (), (), date(2026, 12, 1)),     # Thursday + 3 -> Tuesday (weekend skipped)
    (date(2026, 11, 28), 1, (), (), date(2026, 11, 30)),    # Saturday + 1 -> Monday
    (date(2026, 11, 27), 0, (), (), date(2026, 11, 27)),    # 0 days: the same day
    (date(2026, 9, 30), 3, NATIONAL_DAY, (), date(2026, 10, 12)),  # holiday week skipped: 8, 9, 12
    (date(2026, 9, 30), 3, NATIONAL_DAY, {date(2026, 10, 10)}, date(2026, 10, 10)),  # make-up Saturday works
    (date(2026, 11, 2), 30, (), (), date(2026, 12, 14)),    # six weeks of working days
])
def test_add_working_days(start, n, holidays, extra, expected):
    assert add_working_days(start, n, holidays, extra) == expected


def test_weekend_and_holiday():
    assert not is_working_day(date(2026, 11, 28)) and is_working_day(date(2026, 11, 27))
    assert not is_working_day(date(2026, 10, 1), NATIONAL_DAY)
    with pytest.raises(ValueError):
        add_working_days(date(2026, 11, 27), -1)
