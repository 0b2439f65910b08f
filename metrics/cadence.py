"""Cadence compliance: did sales keep following up after a handoff?

The cadence of a handoff runs from the handoff for ``cadence.business_days``
business days (opening hours per day from the calendar), and stops early at the
handoff's decision (acceptance or rejection) or at the lead's next handoff. A
handoff complies when it received at least ``cadence.min_touches`` human sales
touches within its cadence, or when a decision ended the cadence early after at
least one touch (the lead was worked to an outcome). Touches are the ones speed
to lead counts: completed, not automated, by a sales user.

Only handoffs whose cadence has ended by the as-of time are in the population;
younger ones are counted as not yet due.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from metrics.calendar import BusinessCalendar
from metrics.coverage import (
    as_of_literal,
    handoff_spans,
    missing_reason,
    not_measurable,
)
from metrics.handoffs import sales_touches
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

_ONE_MICROSECOND = dt.timedelta(microseconds=1)


def business_day_hours(config: OrgConfig) -> float:
    """Return the opening hours of one business day."""
    calendar = config.calendar
    opens = dt.datetime.combine(dt.date.min, calendar.opens)
    closes = dt.datetime.combine(dt.date.min, calendar.closes)
    return (closes - opens).total_seconds() / 3600


def _running_counts(touches: pl.DataFrame) -> pl.DataFrame:
    """Return ``lead_id``, ``touched_at`` and the lead's touches up to that instant.

    Computed on the frame sorted by lead and time: a row's running count is its
    row number minus that of its lead's first row, which avoids a slow window
    function. Of several touches at one instant only the last row is kept, so
    its count includes them all.
    """
    row = pl.int_range(pl.len(), dtype=pl.Int64)
    first_of_lead = (pl.col("lead_id") != pl.col("lead_id").shift(1)).fill_null(True)
    same_as_next = (pl.col("lead_id") == pl.col("lead_id").shift(-1)) & (
        pl.col("touched_at") == pl.col("touched_at").shift(-1)
    )
    return (
        touches.select("lead_id", "touched_at")
        .sort("lead_id", "touched_at")
        .with_columns(
            _running=row + 1 - pl.when(first_of_lead).then(row).forward_fill()
        )
        .filter(~same_as_next.fill_null(False))
        .sort("touched_at")
    )


def touches_between(
    frame: pl.DataFrame, touches: pl.DataFrame, start: str, end: str, *, name: str
) -> pl.DataFrame:
    """Add column ``name``: the lead's touches with ``start <= touched_at <= end``.

    Counted with two as-of joins on each lead's running touch count, so no
    handoff is paired with every touch of its lead. ``start`` and ``end`` must
    not be null. Rows come back in a different order.
    """
    running = _running_counts(touches)

    def running_at(rows: pl.DataFrame, key: str, alias: str) -> pl.DataFrame:
        joined = rows.sort(key).join_asof(
            running.rename({"touched_at": "_touched_at"}),
            left_on=key,
            right_on="_touched_at",
            by="lead_id",
            strategy="backward",
            check_sortedness=False,
        )
        counted = joined.with_columns(pl.col("_running").fill_null(0).alias(alias))
        return counted.drop("_running", "_touched_at")

    before = frame.with_columns(_before=pl.col(start) - _ONE_MICROSECOND)
    counted = running_at(
        running_at(before, "_before", "_count_before"), end, "_count_end"
    )
    return counted.with_columns(
        (pl.col("_count_end") - pl.col("_count_before")).alias(name)
    ).drop("_before", "_count_before", "_count_end")


def cadence_frame(
    handoffs: pl.DataFrame,
    tables: CanonicalTables,
    config: OrgConfig,
    as_of: dt.datetime,
) -> pl.DataFrame:
    """Return one row per handoff with its cadence end, touches and status.

    ``status`` is ``complied``, ``ended_by_decision`` (complied through an early
    decision after a touch), ``missed`` or ``not_due``.
    """
    calendar = BusinessCalendar(config.calendar)
    hours = config.cadence.business_days * business_day_hours(config)
    windows = handoff_spans(handoffs, as_of)
    frame = handoffs.select("lead_id", "handoff_at", "decided_at").join(
        windows, on=["lead_id", "handoff_at"], how="left"
    )
    frame = calendar.deadline(frame, "handoff_at", hours, name="cadence_due")
    frame = frame.with_columns(
        cadence_end=pl.min_horizontal("cadence_due", "decided_at", "window_end"),
        decided_early=(pl.col("decided_at") < pl.col("cadence_due")).fill_null(False),
    )
    touches = sales_touches(tables, config, as_of)
    frame = touches_between(frame, touches, "handoff_at", "cadence_end", name="touches")
    enough = pl.col("touches") >= config.cadence.min_touches
    as_of_value = as_of_literal(as_of)
    ended = (
        (pl.col("cadence_due") <= as_of_value)
        | pl.col("decided_at").is_not_null()
        | (pl.col("window_end") < as_of_value)
    )
    return frame.with_columns(
        status=pl.when(enough)
        .then(pl.lit("complied"))
        .when(pl.col("decided_early") & (pl.col("touches") >= 1))
        .then(pl.lit("ended_by_decision"))
        .when(ended)
        .then(pl.lit("missed"))
        .otherwise(pl.lit("not_due"))
    )


def cadence_metrics(context: MeasureContext) -> Metrics:
    """Compute the share of due handoffs that got the configured cadence."""
    key, label = "cadence_compliance_share", "Handoffs that got the follow-up cadence"
    tables, config = context.tables, context.config
    reason = missing_reason(tables, "stage_events", "activities", "users")
    if reason is None and context.handoffs.is_empty():
        reason = "no handoffs in the data"
    if reason:
        return not_measurable({key: ("share", label)}, reason)

    frame = cadence_frame(context.handoffs, tables, config, context.as_of)
    counts = dict(frame.group_by("status").len().iter_rows())
    complied = counts.get("complied", 0) + counts.get("ended_by_decision", 0)
    due = complied + counts.get("missed", 0)
    cadence = config.cadence
    details = {
        "min_touches": cadence.min_touches,
        "business_days": cadence.business_days,
        "complied": counts.get("complied", 0),
        "ended_by_decision": counts.get("ended_by_decision", 0),
        "missed": counts.get("missed", 0),
        "not_due": counts.get("not_due", 0),
        "median_touches": frame.filter(pl.col("status") != "not_due")[
            "touches"
        ].median(),
    }
    if due == 0:
        reason = (
            f"no handoff's {cadence.business_days:g}-business-day cadence has ended"
        )
        return not_measurable({key: ("share", label)}, reason)
    note = (
        f"{cadence.min_touches} touches in {cadence.business_days:g} business days; "
        f"{due} due handoffs, {details['not_due']} not yet due"
    )
    return {key: MetricValue(key, complied / due, due, "share", label, note, details)}
