"""Handoff context: what sales could see about a lead when marketing handed it over.

A handoff has context when, at the handoff, the lead had a score and at least one
marketing touch at or before it. The canonical tables hold only a lead's current
score, not its history, so the current score is used as the score at handoff,
and the coverage note states this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from connectors.schema import CanonicalTables
from metrics.coverage import history_gap, missing_reason, not_measurable
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

SCORE_NOTE = "the current lead score is used as the score at handoff"


def score_reason(tables: CanonicalTables) -> str | None:
    """Return why lead scores cannot be judged, or ``None`` when some lead has one."""
    if reason := missing_reason(tables, "leads.score"):
        return reason
    if tables["leads"]["score"].is_not_null().any():
        return None
    return (
        "no lead has a score value: the org does not score leads or its score "
        "field is not read (set fields.lead_score to the field's API name)"
    )


def handoff_context(handoffs: pl.DataFrame, tables: CanonicalTables) -> pl.DataFrame:
    """Return ``lead_id``, ``handoff_at``, ``has_score`` and ``has_touch`` per handoff.

    ``has_touch`` is true when the lead had a marketing touch at or before the
    handoff.
    """
    scored = tables["leads"].filter(pl.col("score").is_not_null())["lead_id"]
    numbered = handoffs.select("lead_id", "handoff_at").with_row_index("_row")
    # Pairing each handoff with its lead's touches is cheaper than a per-lead
    # aggregate at scale, because most leads have only a few touches.
    touched = (
        numbered.join(
            tables["touches"].select("lead_id", "touched_at").drop_nulls(), on="lead_id"
        )
        .filter(pl.col("touched_at") <= pl.col("handoff_at"))
        .select("_row")
        .unique()
    )
    return numbered.select(
        "lead_id",
        "handoff_at",
        has_score=pl.col("lead_id").is_in(scored.implode()),
        has_touch=pl.col("_row").is_in(touched["_row"].implode()),
    )


def context_metrics(context: MeasureContext) -> Metrics:
    """Compute the share of handoffs with a score and a prior marketing touch."""
    key, label = "handoff_context_share", "Handoffs with a score and a marketing touch"
    tables, handoffs = context.tables, context.handoffs
    reason = missing_reason(tables, "stage_events", "touches") or score_reason(tables)
    if reason is None and handoffs.is_empty():
        reason = "no handoffs in the data"
    if reason:
        return not_measurable({key: ("share", label)}, reason)

    flags = handoff_context(handoffs, tables)
    counts = flags.select(
        handoffs=pl.len(),
        with_score=pl.col("has_score").sum(),
        with_touch=pl.col("has_touch").sum(),
        with_both=(pl.col("has_score") & pl.col("has_touch")).sum(),
    ).row(0, named=True)
    note = (
        f"{counts['with_both']} of {counts['handoffs']} handoffs had both; {SCORE_NOTE}"
    )
    gap = history_gap(
        tables["touches"]["touched_at"],
        handoffs["handoff_at"],
        source_name="marketing touches",
        subject_name="handoffs",
    )
    if gap:
        note += f"; {gap}"
    value = counts["with_both"] / counts["handoffs"]
    return {
        key: MetricValue(key, value, counts["handoffs"], "share", label, note, counts)
    }
