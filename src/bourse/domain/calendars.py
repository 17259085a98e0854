"""Trading calendars: when a market trades, in its own time zone.

Sessions are per day of week, overrides per local date; times are ``HH:MM:SS``
intervals ``[start, end)`` where an ``end`` of 00:00:00 means midnight at the end
of the day. The JSON shape is the front office's v4 ``calendar``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bourse.domain.errors import InvalidInput

MAX_ZONE_LENGTH = 64
MIDNIGHT = time(0, 0, 0)


class DayOfWeek(StrEnum):
    MONDAY = "Monday"
    TUESDAY = "Tuesday"
    WEDNESDAY = "Wednesday"
    THURSDAY = "Thursday"
    FRIDAY = "Friday"
    SATURDAY = "Saturday"
    SUNDAY = "Sunday"

    @property
    def weekday(self) -> int:
        """0 = Monday, as ``date.weekday()``."""
        return list(DayOfWeek).index(self)


@dataclass(frozen=True, slots=True)
class TimeInterval:
    """[start, end) in local time; an ``end`` of 00:00:00 means midnight at the end of the day."""

    start: time
    end: time

    def contains(self, t: time) -> bool:
        if self.end == MIDNIGHT:
            return t >= self.start
        return self.start <= t < self.end

    def _end_key(self) -> tuple[int, time]:
        return (1, MIDNIGHT) if self.end == MIDNIGHT else (0, self.end)


@dataclass(frozen=True, slots=True)
class TradingSession:
    day_of_week: DayOfWeek
    intervals: tuple[TimeInterval, ...]


@dataclass(frozen=True, slots=True)
class SessionOverride:
    """The hours of one local date, replacing its weekday's sessions; no intervals = closed."""

    date: date
    intervals: tuple[TimeInterval, ...]


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    time_zone: str
    sessions: tuple[TradingSession, ...] = ()
    overrides: tuple[SessionOverride, ...] = ()

    def __post_init__(self) -> None:
        _zone(self.time_zone)
        days = [s.day_of_week for s in self.sessions]
        if len(set(days)) != len(days):
            raise InvalidInput(
                "each dayOfWeek may appear once in tradingSessions", field="calendar.tradingSessions"
            )
        dates = [o.date for o in self.overrides]
        if len(set(dates)) != len(dates):
            raise InvalidInput(
                "each date may appear once in sessionOverrides", field="calendar.sessionOverrides"
            )
        for s in self.sessions:
            _check_intervals(s.intervals, "calendar.tradingSessions")
        for o in self.overrides:
            _check_intervals(o.intervals, "calendar.sessionOverrides")

    def is_open(self, at: datetime) -> bool:
        """Whether trading is allowed at ``at`` (timezone-aware). No sessions at all = always open,
        except on dates an override closes or limits."""
        if at.tzinfo is None:
            raise InvalidInput("is_open needs a timezone-aware time", field="at")
        local = at.astimezone(_zone(self.time_zone))
        now = local.time().replace(microsecond=0, tzinfo=None)
        for override in self.overrides:
            if override.date == local.date():
                return any(i.contains(now) for i in override.intervals)
        if not self.sessions:
            return True
        for session in self.sessions:
            if session.day_of_week.weekday == local.weekday():
                return any(i.contains(now) for i in session.intervals)
        return False


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_LENGTH:
        raise InvalidInput("timeZoneId must be an IANA time zone name", field="calendar.timeZoneId")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {name!r}", field="calendar.timeZoneId") from None


def _check_intervals(intervals: Sequence[TimeInterval], where: str) -> None:
    ordered = sorted(intervals, key=lambda i: i.start)
    for i in ordered:
        if i.end != MIDNIGHT and i.end <= i.start:
            raise InvalidInput("a time interval must end after it starts (00:00:00 = midnight)", field=where)
    for a, b in itertools.pairwise(ordered):
        if a.end == MIDNIGHT or a.end > b.start:
            raise InvalidInput("time intervals of one day must not overlap", field=where)


def parse_time(value: object, where: str) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"\d{2}:\d{2}:\d{2}", value):
        raise InvalidInput("times are HH:MM:SS", field=where)
    try:
        return time.fromisoformat(value)
    except ValueError:
        raise InvalidInput("times are HH:MM:SS", field=where) from None


def _parse_intervals(value: object, where: str) -> tuple[TimeInterval, ...]:
    if not isinstance(value, list):
        raise InvalidInput("timeIntervals must be a list", field=where)
    out = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"start", "end"}:
            raise InvalidInput("a time interval is {start, end}", field=where)
        out.append(TimeInterval(parse_time(item["start"], where), parse_time(item["end"], where)))
    return tuple(out)


def _fmt_time(t: time) -> str:
    return t.strftime("%H:%M:%S")


def calendar_from_json(value: object) -> TradingCalendar:
    """The front office's ``calendar`` shape: {timeZoneId, tradingSessions, sessionOverrides}."""
    where = "calendar"
    if not isinstance(value, Mapping):
        raise InvalidInput("calendar must be an object", field=where)
    unknown = set(value) - {"timeZoneId", "tradingSessions", "sessionOverrides"}
    if unknown:
        raise InvalidInput(f"unknown calendar fields: {', '.join(sorted(unknown))}", field=where)
    zone = value.get("timeZoneId")
    if not isinstance(zone, str):
        raise InvalidInput("timeZoneId must be an IANA time zone name", field="calendar.timeZoneId")
    sessions = []
    for item in value.get("tradingSessions") or []:
        w = "calendar.tradingSessions"
        if not isinstance(item, Mapping) or set(item) != {"dayOfWeek", "timeIntervals"}:
            raise InvalidInput("a trading session is {dayOfWeek, timeIntervals}", field=w)
        try:
            day = DayOfWeek(item["dayOfWeek"])
        except ValueError:
            raise InvalidInput(
                f"dayOfWeek must be one of {', '.join(d.value for d in DayOfWeek)}", field=w
            ) from None
        sessions.append(TradingSession(day, _parse_intervals(item["timeIntervals"], w)))
    overrides = []
    for item in value.get("sessionOverrides") or []:
        w = "calendar.sessionOverrides"
        if not isinstance(item, Mapping) or set(item) != {"date", "timeIntervals"}:
            raise InvalidInput("a session override is {date, timeIntervals}", field=w)
        raw = item["date"]
        try:
            if not isinstance(raw, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
                raise ValueError(raw)
            day_date = date.fromisoformat(raw)
        except ValueError:
            raise InvalidInput("dates are YYYY-MM-DD", field=w) from None
        overrides.append(SessionOverride(day_date, _parse_intervals(item["timeIntervals"], w)))
    return TradingCalendar(zone, tuple(sessions), tuple(overrides))


def calendar_to_json(calendar: TradingCalendar) -> dict[str, Any]:
    def intervals(items: Sequence[TimeInterval]) -> list[dict[str, str]]:
        return [{"start": _fmt_time(i.start), "end": _fmt_time(i.end)} for i in items]

    return {
        "timeZoneId": calendar.time_zone,
        "tradingSessions": [
            {"dayOfWeek": s.day_of_week.value, "timeIntervals": intervals(s.intervals)}
            for s in calendar.sessions
        ],
        "sessionOverrides": [
            {"date": o.date.isoformat(), "timeIntervals": intervals(o.intervals)} for o in calendar.overrides
        ],
    }
