"""Business calendar: elapsed business time and deadlines as polars joins.

The calendar is a table of opening periods, one row per working day that is not a
holiday, with each period's opening and closing instant in UTC (computed from the
local wall-clock hours in the org's time zone, so daylight-saving changes move the
UTC instants) and the business time accumulated before it. The business time
between two instants is then the difference of their positions on that cumulative
clock, found with an as-of join: no loop over rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_calendars
import polars as pl

from config.models import WEEKDAYS, CalendarConfig

logger = logging.getLogger(__name__)

MICROSECONDS_PER_HOUR = 3_600_000_000
_MARGIN_BEFORE = dt.timedelta(days=7)
_MARGIN_AFTER = dt.timedelta(days=120)
_ROW = "_calendar_row"


@dataclass(frozen=True)
class BusinessCalendar:
    """Working days, opening hours, holidays and time zone of one org."""

    config: CalendarConfig

    def holidays_between(self, first: dt.date, last: dt.date) -> set[dt.date]:
        """Return the public and extra holidays from ``first`` to ``last`` inclusive."""
        days = {d for d in self.config.extra_holidays if first <= d <= last}
        if self.config.holiday_country:
            years = range(first.year, last.year + 1)
            country = holiday_calendars.country_holidays(
                self.config.holiday_country,
                subdiv=self.config.holiday_subdivision,
                years=years,
            )
            days.update(d for d in country if first <= d <= last)
        return days

    def periods(self, first: dt.date, last: dt.date) -> pl.DataFrame:
        """Return the opening periods from ``first`` to ``last`` with cumulative time.

        Columns: ``opens_at`` and ``closes_at`` (UTC), ``length`` and
        ``elapsed_before`` (business microseconds before this period opens).
        """
        weekdays = [WEEKDAYS.index(day) + 1 for day in self.config.working_days]
        closed = sorted(self.holidays_between(first, last))
        zone = self.config.time_zone
        days = pl.DataFrame(
            {"day": pl.date_range(first, last, interval="1d", eager=True)}
        ).filter(
            pl.col("day").dt.weekday().is_in(weekdays)
            & ~pl.col("day").is_in(pl.Series(closed, dtype=pl.Date).implode())
        )

        def local(time: dt.time) -> pl.Expr:
            wall = pl.col("day").dt.combine(time)

            def instant(value: pl.Expr) -> pl.Expr:
                return value.dt.replace_time_zone(
                    zone, ambiguous="earliest", non_existent="null"
                ).dt.convert_time_zone("UTC")

            # A skipped wall time shifts by the hour the clocks jumped.
            return instant(wall).fill_null(instant(wall + pl.duration(hours=1)))

        periods = (
            days.select(
                opens_at=local(self.config.opens), closes_at=local(self.config.closes)
            )
            .drop_nulls()
            .with_columns(
                length=(
                    pl.col("closes_at") - pl.col("opens_at")
                ).dt.total_microseconds()
            )
        )
        return periods.with_columns(
            elapsed_before=pl.col("length").cum_sum() - pl.col("length")
        ).with_columns(elapsed_after=pl.col("elapsed_before") + pl.col("length"))

    def _periods_covering(
        self, instants: pl.Series, *, ahead_hours: float = 0.0
    ) -> pl.DataFrame:
        """Return the periods around ``instants``, far enough ahead for a deadline."""
        valid = instants.drop_nulls()
        if valid.is_empty():
            today = dt.date(2000, 1, 1)
            return self.periods(today, today)
        first = valid.min().astimezone(dt.UTC).date() - _MARGIN_BEFORE
        last = valid.max().astimezone(dt.UTC).date() + max(
            _MARGIN_AFTER, self._span_for(ahead_hours)
        )
        return self.periods(first, last)

    def _span_for(self, hours: float) -> dt.timedelta:
        """Return a calendar span long enough to contain ``hours`` of opening time.

        Estimated from the opening hours per week, doubled for holidays.
        """
        day = dt.datetime.combine(
            dt.date.min, self.config.closes
        ) - dt.datetime.combine(dt.date.min, self.config.opens)
        weekly_hours = day.total_seconds() / 3600 * len(self.config.working_days)
        if weekly_hours <= 0:
            return _MARGIN_AFTER
        weeks = math.ceil(2 * hours / weekly_hours) + 1
        return dt.timedelta(weeks=weeks)

    def _per_zone(
        self,
        frame: pl.DataFrame,
        zone: str,
        compute: Callable[[BusinessCalendar, pl.DataFrame], pl.DataFrame],
    ) -> pl.DataFrame:
        """Apply ``compute`` to the rows of each time zone with that zone's calendar.

        The loop runs once per distinct zone, not per row. Rows keep their order.
        A frame without the ``zone`` column uses the org's time zone throughout.
        """
        if frame.is_empty() or zone not in frame.columns:
            return compute(self, frame)
        zones = frame[zone].unique().drop_nulls().to_list()
        known = {z for z in zones if _is_known_zone(z)}
        if unknown := sorted(set(zones) - known):
            logger.warning(
                "%d unknown time zone value(s) in column %s, e.g. %r; the org's "
                "time zone %s applies to their rows",
                len(unknown), zone, unknown[0], self.config.time_zone,
            )  # fmt: skip
        numbered = frame.with_row_index(_ROW).with_columns(
            pl.when(pl.col(zone).is_in(sorted(known)))
            .then(pl.col(zone))
            .otherwise(pl.lit(self.config.time_zone))
            .alias("_calendar_zone")
        )
        parts = [
            compute(self.in_zone(key[0]), part.drop("_calendar_zone"))
            for key, part in numbered.partition_by(
                "_calendar_zone", as_dict=True
            ).items()
        ]
        return pl.concat(parts).sort(_ROW).drop(_ROW)

    def clock(self, instants: pl.Series, periods: pl.DataFrame) -> pl.DataFrame:
        """Map each distinct instant to the business microseconds before it.

        Returns columns ``instant`` and ``business_clock``. Instants outside opening
        hours map to the clock value of the last closing (or next opening) moment.
        """
        points = (
            pl.DataFrame({"instant": instants.cast(pl.Datetime("us", "UTC"))})
            .drop_nulls()
            .unique()
            .sort("instant")
        )
        joined = points.join_asof(
            periods, left_on="instant", right_on="opens_at", strategy="backward"
        )
        inside = (pl.col("instant") - pl.col("opens_at")).dt.total_microseconds()
        return joined.select(
            "instant",
            business_clock=pl.when(pl.col("opens_at").is_null())
            .then(pl.lit(0, pl.Int64))
            .otherwise(
                pl.col("elapsed_before") + pl.min_horizontal(inside, pl.col("length"))
            ),
        )

    def in_zone(self, time_zone: str) -> BusinessCalendar:
        """Return this calendar with its opening hours read in ``time_zone``."""
        if time_zone == self.config.time_zone:
            return self
        return BusinessCalendar(self.config.model_copy(update={"time_zone": time_zone}))

    def business_hours(
        self,
        frame: pl.DataFrame,
        start: str,
        end: str,
        *,
        name: str,
        zone: str | None = None,
    ) -> pl.DataFrame:
        """Add column ``name``: business hours from ``start`` to ``end``.

        Null when either end is null; negative when ``end`` is before ``start``.
        Time outside opening hours, on non-working days and on holidays does not
        count. ``zone`` names an optional column of IANA time zones that override
        the org's for their row; a null or unknown zone keeps the org's.
        """
        if zone is not None:
            return self._per_zone(
                frame,
                zone,
                lambda cal, part: cal.business_hours(part, start, end, name=name),
            )
        instants = pl.concat([frame[start], frame[end]])
        periods = self._periods_covering(instants)
        elapsed = _clock_values(frame[end], periods) - _clock_values(
            frame[start], periods
        )
        return frame.with_columns((elapsed / MICROSECONDS_PER_HOUR).alias(name))

    def deadline(
        self,
        frame: pl.DataFrame,
        start: str,
        hours: float,
        *,
        name: str,
        zone: str | None = None,
    ) -> pl.DataFrame:
        """Add column ``name``: the instant ``hours`` business hours after ``start``.

        A deadline that falls exactly on a closing time is that closing time, not the
        next opening. ``zone`` works as in :meth:`business_hours`.
        """
        if zone is not None:
            return self._per_zone(
                frame,
                zone,
                lambda cal, part: cal.deadline(part, start, hours, name=name),
            )
        periods = self._periods_covering(frame[start], ahead_hours=hours)
        budget = round(hours * MICROSECONDS_PER_HOUR)
        target = _clock_values(frame[start], periods) + budget
        if periods.is_empty():
            due = pl.Series(name, [None] * frame.height, pl.Datetime("us", "UTC"))
            return frame.with_columns(due)
        # The deadline lies in the first period that ends at or after the target.
        index = periods["elapsed_after"].search_sorted(target.fill_null(0), side="left")
        found = pl.DataFrame({"target": target, "index": index.cast(pl.Int64)})
        position = found["index"].clip(upper_bound=periods.height - 1)
        found = found.with_columns(
            opens_at=periods["opens_at"].gather(position),
            elapsed_before=periods["elapsed_before"].gather(position),
        )
        due = (
            pl.when(pl.col("target").is_null() | (pl.col("index") >= periods.height))
            .then(None)
            .otherwise(
                pl.col("opens_at")
                + pl.duration(microseconds=pl.col("target") - pl.col("elapsed_before"))
            )
        )
        return frame.with_columns(found.select(due.alias(name)).to_series())


def _clock_values(instants: pl.Series, periods: pl.DataFrame) -> pl.Series:
    """Return the business microseconds before each instant (null for null).

    Same values as :meth:`BusinessCalendar.clock`, found by binary search over
    the sorted opening times instead of a join, so row order is kept.
    """
    frame = pl.DataFrame({"instant": instants.cast(pl.Datetime("us", "UTC"))})
    if periods.is_empty():
        zero = pl.when(pl.col("instant").is_not_null()).then(pl.lit(0, pl.Int64))
        return frame.select(zero).to_series()
    opens = periods["opens_at"]
    index = opens.search_sorted(frame["instant"].fill_null(opens[0]), side="right")
    index = index.cast(pl.Int64) - 1
    position = index.clip(lower_bound=0)
    frame = frame.with_columns(
        index=index,
        opens_at=opens.gather(position),
        elapsed_before=periods["elapsed_before"].gather(position),
        length=periods["length"].gather(position),
    )
    inside = (pl.col("instant") - pl.col("opens_at")).dt.total_microseconds()
    clock = (
        pl.when(pl.col("instant").is_null())
        .then(None)
        .when(pl.col("index") < 0)
        .then(pl.lit(0, pl.Int64))
        .otherwise(pl.col("elapsed_before") + pl.min_horizontal(inside, "length"))
    )
    return frame.select(clock).to_series()


def _is_known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
