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
from dataclasses import dataclass

import holidays as holiday_calendars
import polars as pl

from config.models import WEEKDAYS, CalendarConfig

MICROSECONDS_PER_HOUR = 3_600_000_000
_MARGIN_BEFORE = dt.timedelta(days=7)
_MARGIN_AFTER = dt.timedelta(days=120)


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
            & ~pl.col("day").is_in(pl.Series(closed, dtype=pl.Date))
        )

        def local(time: dt.time) -> pl.Expr:
            return (
                pl.col("day")
                .dt.combine(time)
                .dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
                .dt.convert_time_zone("UTC")
            )

        periods = (
            days.select(opens_at=local(self.config.opens), closes_at=local(self.config.closes))
            .drop_nulls()
            .with_columns(
                length=(pl.col("closes_at") - pl.col("opens_at")).dt.total_microseconds()
            )
        )
        return periods.with_columns(
            elapsed_before=pl.col("length").cum_sum() - pl.col("length")
        ).with_columns(elapsed_after=pl.col("elapsed_before") + pl.col("length"))

    def _periods_covering(self, instants: pl.Series) -> pl.DataFrame:
        valid = instants.drop_nulls()
        if valid.is_empty():
            today = dt.date(2000, 1, 1)
            return self.periods(today, today)
        first = valid.min().astimezone(dt.UTC).date() - _MARGIN_BEFORE
        last = valid.max().astimezone(dt.UTC).date() + _MARGIN_AFTER
        return self.periods(first, last)

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

    def business_hours(
        self, frame: pl.DataFrame, start: str, end: str, *, name: str
    ) -> pl.DataFrame:
        """Add column ``name``: business hours from ``start`` to ``end``.

        Null when either end is null. Time outside opening hours, on non-working
        days and on holidays does not count.
        """
        instants = pl.concat([frame[start], frame[end]])
        periods = self._periods_covering(instants)
        clock = self.clock(instants, periods)
        start_clock = clock.rename({"instant": start, "business_clock": "_start_clock"})
        end_clock = clock.rename({"instant": end, "business_clock": "_end_clock"})
        return (
            frame.join(start_clock, on=start, how="left", nulls_equal=False)
            .join(end_clock, on=end, how="left", nulls_equal=False)
            .with_columns(
                ((pl.col("_end_clock") - pl.col("_start_clock")) / MICROSECONDS_PER_HOUR)
                .alias(name)
            )
            .drop("_start_clock", "_end_clock")
        )

    def deadline(
        self, frame: pl.DataFrame, start: str, hours: float, *, name: str
    ) -> pl.DataFrame:
        """Add column ``name``: the instant ``hours`` business hours after ``start``.

        A deadline that falls exactly on a closing time is that closing time, not the
        next opening.
        """
        periods = self._periods_covering(frame[start])
        clock = self.clock(frame[start], periods)
        budget = round(hours * MICROSECONDS_PER_HOUR)
        targets = (
            clock.with_columns(target=pl.col("business_clock") + budget)
            .sort("target")
            .join_asof(
                periods.select("opens_at", "elapsed_before", "elapsed_after"),
                left_on="target",
                right_on="elapsed_after",
                strategy="forward",
            )
            .select(
                pl.col("instant").alias(start),
                (
                    pl.col("opens_at")
                    + pl.duration(
                        microseconds=pl.col("target") - pl.col("elapsed_before")
                    )
                ).alias(name),
            )
        )
        return frame.join(targets, on=start, how="left", nulls_equal=False)
