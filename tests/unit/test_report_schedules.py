"""Report schedules (domain/reports.py): when Daily, Weekly and Monthly templates are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bourse.domain.errors import InvalidInput
from bourse.domain.reports import DayOfWeek, Frequency, Schedule, parse_schedule


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


BASE = at(2026, 1, 1, 6, 30)  # a Thursday


def test_daily_runs_at_the_base_time_of_day_from_the_base_date_on():
    s = Schedule(BASE, Frequency.DAILY)
    assert s.first_at_or_after(at(2025, 6, 1)) == BASE, "never before baseDate"
    assert s.first_at_or_after(BASE) == BASE
    assert s.first_at_or_after(at(2026, 3, 10, 6, 31)) == at(2026, 3, 11, 6, 30)
    assert s.next_after(BASE) == at(2026, 1, 2, 6, 30)


def test_daily_with_days_of_week_skips_the_other_days():
    s = Schedule(BASE, Frequency.DAILY, (DayOfWeek.MONDAY, DayOfWeek.FRIDAY))
    assert s.first_at_or_after(BASE) == at(2026, 1, 2, 6, 30)  # Friday
    assert s.next_after(at(2026, 1, 2, 6, 30)) == at(2026, 1, 5, 6, 30)  # Monday


def test_weekly_defaults_to_the_base_dates_weekday():
    s = Schedule(BASE, Frequency.WEEKLY)
    assert s.next_after(BASE) == at(2026, 1, 8, 6, 30)
    sunday = Schedule(BASE, Frequency.WEEKLY, (DayOfWeek.SUNDAY,))
    assert sunday.first_at_or_after(BASE) == at(2026, 1, 4, 6, 30)


def test_monthly_keeps_the_day_of_month_and_uses_the_last_day_of_short_months():
    s = Schedule(at(2026, 1, 31, 23, 0), Frequency.MONTHLY)
    assert s.next_after(at(2026, 1, 31, 23, 0)) == at(2026, 2, 28, 23, 0)
    assert s.next_after(at(2026, 2, 28, 23, 0)) == at(2026, 3, 31, 23, 0)
    assert s.next_after(at(2026, 12, 31, 23, 0)) == at(2027, 1, 31, 23, 0)
    leap = Schedule(at(2027, 11, 30, 0, 0), Frequency.MONTHLY)
    assert leap.next_after(at(2028, 1, 30)) == at(2028, 2, 29)


def test_missed_runs_collapse_into_the_latest():
    s = Schedule(BASE, Frequency.DAILY)
    assert s.latest_due(BASE, at(2026, 1, 5, 7)) == at(2026, 1, 5, 6, 30)
    assert s.latest_due(BASE, BASE) == BASE


@given(
    st.sampled_from(list(Frequency)),
    st.lists(st.sampled_from(list(DayOfWeek)), max_size=7, unique=True),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)),
)
def test_the_next_run_is_later_at_the_base_time_of_day_and_on_an_allowed_day(frequency, days, base, moment):
    days = () if frequency is Frequency.MONTHLY else tuple(days)
    base = base.replace(tzinfo=UTC, microsecond=0)
    moment = moment.replace(tzinfo=UTC)
    s = Schedule(base, frequency, days)
    run = s.next_after(moment)
    assert run > moment and run >= base
    assert run.time() == base.time()
    if frequency is not Frequency.MONTHLY:
        allowed = {d.weekday for d in days} or (
            {base.weekday()} if frequency is Frequency.WEEKLY else set(range(7))
        )
        assert run.weekday() in allowed
        assert run - max(moment, base) <= timedelta(days=8)
    else:
        assert run.day == min(base.day, 28) or run.day >= 28


def test_parse_schedule_refuses_what_it_cannot_run():
    with pytest.raises(InvalidInput):
        parse_schedule({"baseDate": "2026-01-01T00:00:00Z", "frequency": "Monthly", "daysOfWeek": ["Monday"]})
    with pytest.raises(InvalidInput):
        parse_schedule({"baseDate": "2026-01-01T00:00:00", "frequency": "Daily"})
    s = parse_schedule(
        {
            "baseDate": "2026-01-01T08:00:00+02:00",
            "frequency": "Weekly",
            "daysOfWeek": ["Sunday", "Monday", "Sunday"],
        }
    )
    assert s.base_date == at(2026, 1, 1, 6, 0)
    assert s.days_of_week == (DayOfWeek.MONDAY, DayOfWeek.SUNDAY)
