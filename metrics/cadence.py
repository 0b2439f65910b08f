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
from metrics import shared
from metrics.calendar import BusinessCalendar
from metrics.coverage import (
    as_of_literal,
    history_gap,
    missing_reason,
    not_measurable,
)
from metrics.handoffs import sales_touches
from metrics.result import Metrics, MetricValue
from metrics.shared import handoff_spans

if TYPE_CHECKING:
    from metrics.measure import MeasureContext


def business_day_hours(config: OrgConfig) -> float:
    """Return the opening hours of one business day."""
    calendar = config.calendar
    opens = dt.datetime.combine(dt.date.min, calendar.opens)
    closes = dt.datetime.combine(dt.date.min, calendar.closes)
    return (closes - opens).total_seconds() / 3600


def touches_between(
    frame: pl.DataFrame, touches: pl.DataFrame, start: str, end: str, *, name: str
) -> pl.DataFrame:
    """Add column ``name``: the lead's touches with ``start <= touched_at <= end``.

    Each row is paired with its lead's touches and the pairs in range counted:
    cheap because a lead has few handoffs, and faster at scale than as-of joins
    on running counts.
    """
    numbered = frame.with_row_index("_row")
    in_range = (pl.col("touched_at") >= pl.col(start)) & (
        pl.col("touched_at") <= pl.col(end)
    )
    counts = (
        numbered.select("_row", "lead_id", start, end)
        .join(touches.select("lead_id", "touched_at"), on="lead_id")
        .filter(in_range)
        .group_by("_row")
        .len()
    )
    return (
        numbered.join(counts, on="_row", how="left")
        .with_columns(pl.col("len").fill_null(0).cast(pl.Int64).alias(name))
        .drop("_row", "len")
    )


def cadence_frame(
    handoffs: pl.DataFrame,
    tables: CanonicalTables,
    config: OrgConfig,
    as_of: dt.datetime,
    *,
    windows: pl.DataFrame | None = None,
    touches: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return one row per handoff with its cadence end, touches and status.

    ``status`` is ``complied``, ``ended_by_decision`` (complied through an early
    decision after a touch), ``missed`` or ``not_due``. ``windows`` and
    ``touches`` are :func:`metrics.shared.handoff_spans` and
    :func:`metrics.handoffs.sales_touches`, computed when omitted.
    """
    calendar = BusinessCalendar(config.calendar)
    hours = config.cadence.business_days * business_day_hours(config)
    if windows is None:
        windows = handoff_spans(handoffs, as_of)
    if touches is None:
        touches = sales_touches(tables, config, as_of)
    frame = handoffs.select("lead_id", "handoff_at", "decided_at").join(
        windows, on=["lead_id", "handoff_at"], how="left"
    )
    frame = calendar.deadline(frame, "handoff_at", hours, name="cadence_due")
    frame = frame.with_columns(
        cadence_end=pl.min_horizontal("cadence_due", "decided_at", "window_end"),
        decided_early=(pl.col("decided_at") < pl.col("cadence_due")).fill_null(False),
    )
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

    frame = cadence_frame(
        context.handoffs,
        tables,
        config,
        context.as_of,
        windows=shared.spans(context),
        touches=shared.touches(context),
    )
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
        f"{complied} of {due} due handoffs got {cadence.min_touches} touches in "
        f"{cadence.business_days:g} business days or a decision after a touch; "
        f"{details['not_due']} not yet due"
    )
    gap = history_gap(
        tables["activities"]["occurred_at"],
        context.handoffs["handoff_at"],
        source_name="sales activities",
        subject_name="handoffs",
    )
    if gap:
        note += f"; {gap}"
    return {key: MetricValue(key, complied / due, due, "share", label, note, details)}
