"""Business calendar: daylight-saving changes, holidays, zone overrides, properties."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.models import CalendarConfig
from metrics.calendar import BusinessCalendar

UTC = dt.UTC
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def _hours(calendar: BusinessCalendar, start: dt.datetime, end: dt.datetime) -> float:
    frame = pl.DataFrame(
        {"start": [start], "end": [end]},
        schema={"start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")},
    )
    return calendar.business_hours(frame, "start", "end", name="hours")["hours"][0]


def _calendar(**options: object) -> BusinessCalendar:
    return BusinessCalendar(CalendarConfig(**options))


@pytest.mark.parametrize(
    ("zone", "opens", "closes", "start", "end", "expected"),
    [
        # 01:00 EST is 06:00 UTC; 04:00 EDT is 08:00 UTC: the day opens for 2 hours.
        pytest.param(
            "America/New_York", dt.time(1), dt.time(4),
            _at(2024, 3, 10), _at(2024, 3, 11), 2.0, id="new-york-spring-forward",
        ),
        # 01:00 EDT (first occurrence) is 05:00 UTC; 04:00 EST is 09:00 UTC: 4 hours.
        pytest.param(
            "America/New_York", dt.time(1), dt.time(4),
            _at(2024, 11, 3), _at(2024, 11, 4), 4.0, id="new-york-fall-back",
        ),
        # 00:30 GMT is 00:30 UTC; 03:00 BST is 02:00 UTC: 1.5 hours.
        pytest.param(
            "Europe/London", dt.time(0, 30), dt.time(3),
            _at(2024, 3, 30, 12), _at(2024, 3, 31, 12), 1.5, id="london-spring-forward",
        ),
        # 00:30 BST is 23:30 UTC the day before; 03:00 GMT is 03:00 UTC: 3.5 hours.
        pytest.param(
            "Europe/London", dt.time(0, 30), dt.time(3),
            _at(2024, 10, 26, 12), _at(2024, 10, 27, 12), 3.5, id="london-fall-back",
        ),
        # 02:30 does not exist that night: it opens at 03:30 EDT (07:30 UTC) and
        # closes at 05:00 EDT (09:00 UTC).
        pytest.param(
            "America/New_York", dt.time(2, 30), dt.time(5),
            _at(2024, 3, 10), _at(2024, 3, 11), 1.5, id="new-york-skipped-opening",
        ),
    ],
)  # fmt: skip
def test_business_hours_dst_day(zone, opens, closes, start, end, expected):
    calendar = _calendar(
        time_zone=zone, working_days=ALL_DAYS, opens=opens, closes=closes
    )
    assert _hours(calendar, start, end) == expected


@pytest.mark.parametrize(
    ("zone", "start", "end", "expected"),
    [
        # Fri 16:00 EST to Mon 10:00 EDT: an hour on Friday, an hour on Monday.
        pytest.param(
            "America/New_York", _at(2024, 3, 8, 21), _at(2024, 3, 11, 14), 2.0,
            id="new-york-weekend-spring-forward",
        ),
        # Fri 16:00 BST to Mon 10:00 GMT: an hour on Friday, an hour on Monday.
        pytest.param(
            "Europe/London", _at(2024, 10, 25, 15), _at(2024, 10, 28, 10), 2.0,
            id="london-weekend-fall-back",
        ),
        # Fri 16:00 EDT to Mon 10:00 EST.
        pytest.param(
            "America/New_York", _at(2024, 11, 1, 20), _at(2024, 11, 4, 15), 2.0,
            id="new-york-weekend-fall-back",
        ),
        # Fri 16:00 GMT to Mon 10:00 BST.
        pytest.param(
            "Europe/London", _at(2024, 3, 29, 16), _at(2024, 4, 1, 9), 2.0,
            id="london-weekend-spring-forward",
        ),
    ],
)  # fmt: skip
def test_business_hours_dst_weekend(zone, start, end, expected):
    assert _hours(_calendar(time_zone=zone), start, end) == expected


def test_deadline_dst_spring_forward():
    # Fri 16:00 EST plus 4 business hours: 1 on Friday, 3 on Monday to 12:00 EDT.
    calendar = _calendar(time_zone="America/New_York")
    frame = pl.DataFrame({"start": [_at(2024, 3, 8, 21)]})
    result = calendar.deadline(frame, "start", 4, name="due")
    assert result["due"][0] == _at(2024, 3, 11, 16)


def test_deadline_long_sla_not_null():
    calendar = _calendar(time_zone="UTC")
    frame = pl.DataFrame({"start": [_at(2024, 1, 1, 9)]})
    # 1000 business hours of 8-hour days is 125 working days, 25 weeks.
    result = calendar.deadline(frame, "start", 1000, name="due")
    assert result["due"][0] == _at(2024, 6, 21, 17)


def test_business_hours_country_holiday():
    # Wed 3 July 16:00 EDT to Fri 5 July 10:00 EDT; 4 July is a US holiday.
    calendar = _calendar(time_zone="America/New_York", holiday_country="US")
    assert _hours(calendar, _at(2024, 7, 3, 20), _at(2024, 7, 5, 14)) == 2.0


def test_business_hours_extra_holiday():
    calendar = _calendar(
        time_zone="America/New_York",
        holiday_country="US",
        extra_holidays=(dt.date(2024, 7, 5),),
    )
    # Wed 16:00 to Mon 8 July 10:00 EDT: an hour on Wednesday, an hour on Monday.
    assert _hours(calendar, _at(2024, 7, 3, 20), _at(2024, 7, 8, 14)) == 2.0


def test_business_hours_zone_override():
    calendar = _calendar(time_zone="America/New_York")
    frame = pl.DataFrame(
        {
            "start": [_at(2024, 6, 3, 8), _at(2024, 6, 3, 8), _at(2024, 6, 3, 8)],
            "end": [_at(2024, 6, 3, 14), _at(2024, 6, 3, 14), _at(2024, 6, 3, 14)],
            "zone": ["Europe/London", None, "Mars/Olympus"],
        }
    )
    result = calendar.business_hours(frame, "start", "end", name="hours", zone="zone")
    # London opens 09:00 BST = 08:00 UTC; New York opens 09:00 EDT = 13:00 UTC.
    assert result["hours"].to_list() == [6.0, 1.0, 1.0]


def test_deadline_zone_override():
    calendar = _calendar(time_zone="America/New_York")
    frame = pl.DataFrame(
        {
            "start": [_at(2024, 6, 3, 8), _at(2024, 6, 3, 8)],
            "zone": ["Europe/London", None],
        }
    )
    result = calendar.deadline(frame, "start", 2, name="due", zone="zone")
    assert result["due"].to_list() == [_at(2024, 6, 3, 10), _at(2024, 6, 3, 15)]


def test_business_hours_null_end():
    calendar = _calendar()
    assert _hours(calendar, _at(2024, 6, 3, 8), None) is None


# Properties over random calendars and instants.

ZONES = (
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kathmandu",
    "UTC",
)
_START = dt.datetime(2024, 1, 1, tzinfo=UTC)
_SPAN_MINUTES = 2 * 366 * 24 * 60

calendars = st.builds(
    lambda zone, days, opens, length, holidays: CalendarConfig(
        time_zone=zone,
        working_days=tuple(sorted(days, key=ALL_DAYS.index)),
        opens=dt.time(opens),
        closes=dt.time(opens + length),
        extra_holidays=tuple(holidays),
    ),
    st.sampled_from(ZONES),
    st.sets(st.sampled_from(ALL_DAYS), min_size=1),
    st.integers(0, 12),
    st.integers(1, 11),
    st.lists(st.dates(dt.date(2024, 1, 1), dt.date(2025, 12, 31)), max_size=5),
)
instants = st.integers(0, _SPAN_MINUTES).map(lambda m: _START + dt.timedelta(minutes=m))


@settings(max_examples=60, deadline=None)
@given(config=calendars, first=instants, second=instants)
def test_business_hours_within_calendar_hours(config, first, second):
    start, end = sorted((first, second))
    hours = _hours(BusinessCalendar(config), start, end)
    assert hours >= 0
    assert hours <= (end - start).total_seconds() / 3600 + 1e-9


@settings(max_examples=60, deadline=None)
@given(config=calendars, points=st.lists(instants, min_size=3, max_size=3))
def test_business_hours_additive_over_split(config, points):
    a, b, c = sorted(points)
    calendar = BusinessCalendar(config)
    whole = _hours(calendar, a, c)
    assert whole == pytest.approx(
        _hours(calendar, a, b) + _hours(calendar, b, c), abs=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    config=calendars,
    day=st.integers(0, 700),
    fractions=st.lists(st.floats(0, 1), min_size=2, max_size=2),
)
def test_business_hours_zero_when_closed(config, day, fractions):
    calendar = BusinessCalendar(config)
    periods = calendar.periods(dt.date(2024, 1, 1), dt.date(2025, 12, 31))
    gaps = periods.select(
        closed_from=pl.col("closes_at"), closed_to=pl.col("opens_at").shift(-1)
    ).drop_nulls()
    gap = gaps.row(day % gaps.height, named=True)
    length = gap["closed_to"] - gap["closed_from"]
    start, end = sorted(gap["closed_from"] + length * f for f in fractions)
    assert _hours(calendar, start, end) == 0


@settings(max_examples=60, deadline=None)
@given(config=calendars, start=instants, hours=st.integers(0, 400))
def test_deadline_inverts_business_hours(config, start, hours):
    calendar = BusinessCalendar(config)
    frame = pl.DataFrame({"start": [start]}).cast({"start": pl.Datetime("us", "UTC")})
    due = calendar.deadline(frame, "start", hours / 4, name="due")["due"][0]
    assert _hours(calendar, start, due) == pytest.approx(hours / 4, abs=1e-9)


def test_business_hours_zone_column_absent():
    calendar = _calendar(time_zone="America/New_York")
    frame = pl.DataFrame({"start": [_at(2024, 6, 3, 8)], "end": [_at(2024, 6, 3, 14)]})
    result = calendar.business_hours(frame, "start", "end", name="hours", zone="zone")
    assert result["hours"].to_list() == [1.0]
