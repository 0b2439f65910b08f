"""Owner response time: how fast each owner touched a lead after getting it.

Speed to lead is the buyer's view: from the handoff to the first sales touch,
whoever made it. Owner response is the rep's view. Each handoff is split into
owner stints: the owner in place at the handoff holds the lead from the
handoff, and every reassignment within the handoff's window starts a new stint,
which lasts until the next assignment, the lead's next handoff or the as-of
time. A stint's response time runs from its start to the first human sales
touch by that stint's owner within it, in business hours. Reassignments are
kept: a lead passed between three reps gives three stints.

Stints held by someone who is not a sales user (a queue, a marketing user) are
not a rep's response and are counted apart. Unanswered stints stay in the
population as unanswered. The details also give the median over final stints
only: from the assignment to the owner who kept the lead to that owner's first
touch.
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
    plural,
)
from metrics.handoffs import sales_touches
from metrics.result import Metrics, MetricValue
from metrics.sorted_groups import next_in_group

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

_LABELS = {
    "owner_response_median_business_hours": (
        "hours",
        "Owner response, median (business hours)",
    ),
    "owner_response_p90_business_hours": (
        "hours",
        "Owner response, p90 (business hours)",
    ),
    "owner_unanswered_share": ("share", "Owner stints with no touch by the owner"),
}


def owner_stints(
    tables: CanonicalTables, windows: pl.DataFrame, as_of: dt.datetime
) -> pl.DataFrame:
    """Return one row per owner stint within a handoff's window.

    ``windows`` has one row per handoff: ``lead_id``, ``handoff_at`` and
    ``window_end`` (see :func:`metrics.shared.handoff_spans`).

    Columns: ``lead_id``, ``handoff_at``, ``owner_id``, ``stint_start``,
    ``stint_end``, ``reassigned`` (the stint began after the handoff) and
    ``final`` (the owner still held the lead at the window's end).
    """
    as_of_value = as_of_literal(as_of)
    assignments = tables["owner_events"].filter(pl.col("assigned_at") <= as_of_value)
    # Each handoff is paired with all its lead's assignments; sorting the pairs by
    # the handoff's row number (an integer) is cheaper than sorting by lead id.
    pairs = (
        windows.with_row_index("_row")
        .join(assignments, on="lead_id")
        .sort("_row", "assigned_at")
        .with_columns(next_assigned_at=next_in_group("assigned_at", "_row"))
    )
    stints = pairs.filter(
        (pl.col("assigned_at") < pl.col("window_end"))
        & (
            pl.col("next_assigned_at").is_null()
            | (pl.col("next_assigned_at") > pl.col("handoff_at"))
        )
    )
    return stints.select(
        "lead_id",
        "handoff_at",
        "owner_id",
        stint_start=pl.max_horizontal("assigned_at", "handoff_at"),
        stint_end=pl.min_horizontal("next_assigned_at", "window_end"),
        reassigned=pl.col("assigned_at") > pl.col("handoff_at"),
        final=pl.col("next_assigned_at").is_null()
        | (pl.col("next_assigned_at") >= pl.col("window_end")),
    )


def owner_responses(
    tables: CanonicalTables,
    windows: pl.DataFrame,
    config: OrgConfig,
    as_of: dt.datetime,
    *,
    touches: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return the owner stints with ``team``, ``responded_at`` and ``business_hours``.

    ``responded_at`` is the stint owner's first touch at or after the stint start
    and before its end (at or before the as-of time for a stint still open).
    ``touches`` is :func:`metrics.handoffs.sales_touches`, computed when omitted.
    """
    if touches is None:
        touches = sales_touches(tables, config, as_of)
    stints = owner_stints(tables, windows, as_of).with_row_index("_row")
    open_stint = pl.col("stint_end") == as_of_literal(as_of)
    inside = (pl.col("touched_at") >= pl.col("stint_start")) & (
        (pl.col("touched_at") < pl.col("stint_end"))
        | (open_stint & (pl.col("touched_at") <= pl.col("stint_end")))
    )
    first_response = (
        stints.select("_row", "lead_id", "owner_id", "stint_start", "stint_end")
        .join(
            touches.rename({"touch_owner_id": "owner_id"}),
            on=["lead_id", "owner_id"],
        )
        .filter(inside)
        .group_by("_row")
        .agg(responded_at=pl.col("touched_at").min())
    )
    teams = tables["users"].select("user_id", "team").unique("user_id")
    joined = (
        stints.join(first_response, on="_row", how="left")
        .drop("_row")
        .join(teams, left_on="owner_id", right_on="user_id", how="left")
    )
    calendar = BusinessCalendar(config.calendar)
    return calendar.business_hours(
        joined, "stint_start", "responded_at", name="business_hours"
    )


def _shared_caveats(
    tables: CanonicalTables, sales: pl.DataFrame, counts: dict[str, int]
) -> str:
    """Return the end of every owner-response note: stints left out, history gaps."""
    note = (
        f"{plural(counts['non_sales_stints'], 'stint')} held by queues or non-sales "
        "users left out"
    )
    gap = history_gap(
        tables["activities"]["occurred_at"],
        sales["stint_start"],
        source_name="sales activities",
        subject_name="owner stints",
    )
    return f"{note}; {gap}" if gap else note


def owner_response_metrics(context: MeasureContext) -> Metrics:
    """Compute the median and p90 owner response and the unanswered share."""
    tables = context.tables
    needed = ("stage_events", "owner_events", "activities", "users")
    if reason := missing_reason(tables, *needed):
        return not_measurable(_LABELS, reason)
    responses = owner_responses(
        tables,
        shared.spans(context),
        context.config,
        context.as_of,
        touches=shared.touches(context),
    )
    sales = responses.filter(pl.col("team") == "sales")
    if sales.is_empty():
        return not_measurable(_LABELS, "no handoff was held by a sales owner")

    answered = sales.filter(pl.col("responded_at").is_not_null())
    counts = {
        "stints": sales.height,
        "answered": answered.height,
        "unanswered": sales.height - answered.height,
        "reassigned_stints": int(sales["reassigned"].sum()),
        "non_sales_stints": responses.height - sales.height,
    }
    # The final owner's view: from the assignment to the owner who kept the lead.
    final = sales.filter(pl.col("final"))
    details = {
        **counts,
        "final_owner_stints": final.height,
        "final_owner_median_business_hours": final["business_hours"].median(),
    }
    caveats = _shared_caveats(tables, sales, counts)
    key = "owner_unanswered_share"
    unanswered_note = (
        f"{counts['unanswered']} of {counts['stints']} sales owner stints with no "
        f"touch by the owner; {caveats}"
    )
    metrics: Metrics = {
        key: MetricValue(
            key, counts["unanswered"] / sales.height, sales.height, "share",
            _LABELS[key][1], unanswered_note, details,
        )
    }  # fmt: skip
    note = (
        f"over {counts['answered']} answered of {counts['stints']} sales owner "
        f"stints; {caveats}"
    )

    hours = answered["business_hours"]
    stats = {
        "owner_response_median_business_hours": hours.median(),
        "owner_response_p90_business_hours": hours.quantile(0.9, "linear"),
    }
    for key, value in stats.items():
        unit, label = _LABELS[key]
        if value is None:
            reason = "no owner touched a lead during a stint"
            metrics[key] = MetricValue.not_measurable(key, unit, label, reason)
        else:
            metrics[key] = MetricValue(
                key, value, answered.height, unit, label, note, details
            )
    return metrics
