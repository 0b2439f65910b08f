"""Funnel conversion and stage velocity from real stage moves.

The funnel is MQL, SAL, SQL, opportunity, won. Each handoff (an entry into
``mql``) is followed along it: its SAL is the first ``sal`` entry at or after the
handoff, its SQL the first ``sql`` entry at or after that SAL, and so on, all
before the lead's next handoff. A lead that skipped a stage (``mql`` straight to
``sql``) did not convert through it, so the chain stops there; skips are counted
in the details. A lead enters ``opportunity`` through an ``opportunity`` status
or the creation of the opportunity it was converted to, and ``won`` through a
``customer`` status or its converted opportunity being won (on the close date,
which is a date, so the last step is measured in whole days).

A stage no record ever entered (an org whose statuses have no SQL) is left out
of the chain: the conversions next to it are not measurable and one conversion
bridges the gap (``funnel_sal_to_opportunity``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from itertools import pairwise
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl

from connectors.schema import CanonicalTables
from metrics import shared
from metrics.coverage import (
    as_of_literal,
    missing_reason,
    month_of,
    not_measurable,
    plural,
)
from metrics.handoffs import handoff_windows
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

FUNNEL = ("mql", "sal", "sql", "opportunity", "won")
_TIMED = ("sal", "sql", "opportunity")
_MICROSECONDS_PER_DAY = 86_400_000_000
_MAX_MONTHS = 36


def stage_entries(tables: CanonicalTables, as_of: dt.datetime) -> pl.DataFrame:
    """Return the SAL, SQL, opportunity and customer entries of every lead.

    Opportunity entries include the creation of each lead's converted opportunity.
    Entries after the as-of time are dropped.
    """
    events = tables["stage_events"].filter(
        pl.col("stage").is_in(_TIMED + ("customer",))
    )
    events = events.select("lead_id", "stage", "entered_at")
    # Only the opportunity's columns are joined: the lead has a created_at too.
    opportunities = tables["opportunities"].select(
        "opportunity_id", entered_at="created_at"
    )
    created = (
        tables["leads"]
        .filter(pl.col("opportunity_id").is_not_null())
        .join(opportunities, on="opportunity_id", how="inner")
        .select("lead_id", stage=pl.lit("opportunity"), entered_at="entered_at")
    )
    return (
        pl.concat([events, created])
        .filter(pl.col("entered_at").is_not_null())
        .filter(pl.col("entered_at") <= as_of_literal(as_of))
        .unique()
    )


def _entries_in_windows(progress: pl.DataFrame, entries: pl.DataFrame) -> pl.DataFrame:
    """Pair each handoff (by ``_row``) with its lead's stage entries in its window.

    A lead has few handoffs and entries, so pairing them is cheap and avoids one
    as-of join per stage.
    """
    inside = (pl.col("entered_at") >= pl.col("handoff_at")) & (
        (pl.col("entered_at") < pl.col("window_end"))
        | (pl.col("_last") & (pl.col("entered_at") <= pl.col("window_end")))
    )
    return (
        progress.select("_row", "lead_id", "handoff_at", "window_end", "_last")
        .join(entries, on="lead_id")
        .filter(inside)
        .select("_row", "stage", "entered_at")
    )


def _first_entry(
    progress: pl.DataFrame, paired: pl.DataFrame, stage: str, after: str, name: str
) -> pl.DataFrame:
    """Add ``name``: the first ``stage`` entry at or after column ``after``."""
    first = (
        paired.filter(pl.col("stage") == stage)
        .join(progress.select("_row", after), on="_row")
        .filter(pl.col("entered_at") >= pl.col(after))
        .group_by("_row")
        .agg(pl.col("entered_at").min().alias(name))
    )
    return progress.join(first, on="_row", how="left")


def _won_on(tables: CanonicalTables, progress: pl.DataFrame) -> pl.DataFrame:
    """Add ``won_on`` (Date): when a handoff that reached an opportunity was won."""
    won_deals = (
        tables["leads"]
        .filter(pl.col("opportunity_id").is_not_null())
        .join(tables["opportunities"].filter(pl.col("is_won")), on="opportunity_id")
        .select("lead_id", deal_won_on="close_date")
    )
    progress = progress.join(won_deals.unique("lead_id"), on="lead_id", how="left")
    return (
        progress.with_columns(
            won_on=pl.min_horizontal(
                pl.col("customer_at").dt.date(),
                pl.when(
                    pl.col("deal_won_on") >= pl.col("opportunity_at").dt.date()
                ).then(pl.col("deal_won_on")),
            )
        )
        .with_columns(
            won_on=pl.when(pl.col("opportunity_at").is_not_null()).then(
                pl.col("won_on")
            )
        )
        .drop("deal_won_on")
    )


def present_stages(tables: CanonicalTables, entries: pl.DataFrame) -> tuple[str, ...]:
    """Return the funnel stages the data has entries for, in funnel order."""
    entered = set(entries["stage"].unique().to_list())
    won = "customer" in entered or (
        tables.has("opportunities") and bool(tables["opportunities"]["is_won"].any())
    )
    return tuple(
        s for s in FUNNEL if s == "mql" or s in entered or (s == "won" and won)
    )


def handoff_progress(
    tables: CanonicalTables,
    as_of: dt.datetime,
    stages: tuple[str, ...] | None = None,
    *,
    windows: pl.DataFrame | None = None,
    entries: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return one row per handoff with when it reached each funnel stage.

    Columns: ``lead_id``, ``handoff_at``, ``mql_at``, ``sal_at``, ``sql_at``,
    ``opportunity_at`` (UTC instants, null when not reached through the chain),
    ``won_on`` (Date), and ``direct_<stage>_at``: the first entry of each stage
    in the handoff's window whatever came before, for counting skips.
    ``windows`` is :func:`metrics.handoffs.handoff_windows` and ``entries`` is
    :func:`stage_entries`, each computed when omitted.
    """
    if entries is None:
        entries = stage_entries(tables, as_of)
    stages = stages or present_stages(tables, entries)
    if windows is None:
        windows = handoff_windows(tables, as_of)
    progress = windows.with_row_index("_row").with_columns(
        mql_at=pl.col("handoff_at"),
        _last=pl.col("window_end") == as_of_literal(as_of),
    )
    paired = _entries_in_windows(progress, entries)
    previous = "mql_at"
    for stage in _TIMED:
        direct = f"direct_{stage}_at"
        progress = _first_entry(progress, paired, stage, "handoff_at", direct)
        if stage in stages:
            progress = _first_entry(progress, paired, stage, previous, f"{stage}_at")
            previous = f"{stage}_at"
        else:
            progress = progress.with_columns(
                pl.lit(None, pl.Datetime("us", "UTC")).alias(f"{stage}_at")
            )
    progress = _first_entry(
        progress, paired, "customer", "opportunity_at", "customer_at"
    )
    progress = _won_on(tables, progress)
    return progress.drop("_row", "_last", "customer_at").sort("handoff_at", "lead_id")


def _month(instant: dt.datetime, time_zone: str) -> str:
    return instant.astimezone(ZoneInfo(time_zone)).strftime("%Y-%m")


def _reached(stage: str) -> pl.Expr:
    column = "won_on" if stage == "won" else f"{stage}_at"
    return pl.col(column).is_not_null()


def _days_between(first: str, second: str) -> pl.Expr:
    if second == "won":
        return (
            (pl.col("won_on") - pl.col(f"{first}_at").dt.date())
            .dt.total_days()
            .cast(pl.Float64)
        )
    gap = pl.col(f"{second}_at") - pl.col(f"{first}_at")
    return gap.dt.total_microseconds() / _MICROSECONDS_PER_DAY


def _skips(progress: pl.DataFrame) -> dict[str, int]:
    """Count handoffs that entered a later stage without entering ``stage`` first."""
    counts = {}
    for index, stage in enumerate(_TIMED):
        later = [f"direct_{s}_at" for s in _TIMED[index + 1 :]]
        if not later:
            continue
        skipped = progress.filter(
            pl.col(f"direct_{stage}_at").is_null()
            & pl.any_horizontal(pl.col(c).is_not_null() for c in later)
        )
        counts[stage] = skipped.height
    return counts


def _conversion_labels(stages: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Return conversion keys (adjacent funnel pairs, plus bridges over gaps)."""
    pairs = list(pairwise(FUNNEL))
    pairs += [p for p in pairwise(stages) if p not in pairs]
    return {f"funnel_{a}_to_{b}": (a, b) for a, b in pairs}


def _label(first: str, second: str) -> str:
    names = {"mql": "MQL", "sal": "SAL", "sql": "SQL", "opportunity": "opportunity"}
    return f"{names.get(first, first)} to {names.get(second, second)}"


def _conversion_note(first: str, second: str, converted: int, entered: int) -> str:
    """Return the counts behind a conversion, such as "3 of the 5 handoffs that..."."""
    names = {"mql": "MQL", "sal": "SAL", "sql": "SQL", "opportunity": "an opportunity"}
    won = "was won" if converted == 1 else "were won"
    outcome = won if second == "won" else f"reached {names[second]}"
    if first == "mql":
        return f"{converted} of {plural(entered, 'handoff')} {outcome}"
    entered_first = f"{plural(entered, 'handoff')} that reached {names[first]}"
    return f"{converted} of the {entered_first} {outcome}"


def _conversions(
    progress: pl.DataFrame, stages: tuple[str, ...], window_days: int, note: str
) -> Metrics:
    """Stage-to-stage conversion over handoffs older than the decision window."""
    metrics: Metrics = {}
    for key, (first, second) in _conversion_labels(stages).items():
        label = f"Funnel conversion, {_label(first, second)}"
        if first not in stages or second not in stages:
            absent = first if first not in stages else second
            reason = f"no record entered {absent!r}, so the funnel has no such stage"
            metrics[key] = MetricValue.not_measurable(key, "share", label, reason)
            continue
        entered = progress.filter(_reached(first)).height
        converted = progress.filter(_reached(first) & _reached(second)).height
        if entered == 0:
            reason = f"no handoff older than {window_days} days reached {first!r}"
            metrics[key] = MetricValue.not_measurable(key, "share", label, reason)
            continue
        details = {"entered": entered, "converted": converted}
        full_note = f"{_conversion_note(first, second, converted, entered)}; {note}"
        metrics[key] = MetricValue(
            key, converted / entered, entered, "share", label, full_note, details
        )
    return metrics


def _velocity(progress: pl.DataFrame, stages: tuple[str, ...]) -> Metrics:
    """Median days between consecutive stages, over handoffs that made the move."""
    metrics: Metrics = {}
    for first, second in pairwise(stages):
        key = f"stage_velocity_{first}_to_{second}"
        label = f"Stage velocity, {_label(first, second)} (median days)"
        days = progress.filter(_reached(first) & _reached(second)).select(
            days=_days_between(first, second)
        )["days"]
        if days.is_empty():
            reason = f"no handoff moved from {first!r} to {second!r}"
            metrics[key] = MetricValue.not_measurable(key, "days", label, reason)
            continue
        details = {"p90_days": days.quantile(0.9, interpolation="linear")}
        note = f"over {days.len()} handoffs that made the move"
        metrics[key] = MetricValue(
            key, days.median(), days.len(), "days", label, note, details
        )
    return metrics


def _rates(frame: pl.DataFrame, stages: tuple[str, ...]) -> pl.DataFrame:
    """Add the rate of each consecutive stage pair, null where the first is 0.

    A period view can have entries into a stage in a month with none into the
    stage before it (an MQL on 31 March accepted on 1 April): that month's rate
    is null, not infinite.
    """
    return frame.with_columns(
        pl.when(pl.col(a) > 0).then(pl.col(b) / pl.col(a)).alias(f"{a}_to_{b}")
        for a, b in pairwise(stages)
    )


def cohort_table(
    progress: pl.DataFrame,
    stages: tuple[str, ...],
    time_zone: str,
    *,
    settled_before: str | None = None,
) -> pl.DataFrame:
    """Count, per handoff month, the handoffs that reached each stage, with rates.

    ``settled`` marks the months before ``settled_before`` (a ``YYYY-MM`` month):
    cohorts whose handoffs are all older than the decision window. Later cohorts
    are still converting, so their rates will rise.
    """
    counts = (
        progress.with_columns(month=month_of("handoff_at", time_zone))
        .group_by("month")
        .agg(_reached(stage).sum().alias(stage) for stage in stages)
        .sort("month")
        .tail(_MAX_MONTHS)
    )
    settled = pl.col("month") < settled_before if settled_before else pl.lit(None)
    return _rates(counts, stages).with_columns(settled=settled)


def period_table(
    progress: pl.DataFrame, stages: tuple[str, ...], time_zone: str
) -> pl.DataFrame:
    """Count, per calendar month, the stage entries made through the chain, with rates.

    A month's rate compares the entries of two stages in that month, so it mixes
    cohorts, as period funnels do. Won deals count in the month of their close date.
    """
    frames = []
    for stage in stages:
        when = "won_on" if stage == "won" else f"{stage}_at"
        month = (
            pl.col(when).dt.strftime("%Y-%m")
            if stage == "won"
            else month_of(when, time_zone)
        )
        frames.append(
            progress.filter(_reached(stage)).select(month=month, stage=pl.lit(stage))
        )
    long = pl.concat(frames).group_by("month", "stage").len()
    wide = long.pivot("stage", index="month", values="len").fill_null(0)
    for stage in stages:
        if stage not in wide.columns:
            wide = wide.with_columns(pl.lit(0, pl.UInt32).alias(stage))
    table = wide.select("month", *stages).sort("month").tail(_MAX_MONTHS)
    return _rates(table, stages)


def funnel_metrics(context: MeasureContext) -> Metrics:
    """Compute funnel conversions, stage velocity and the cohort and period tables."""
    tables, config = context.tables, context.config
    window = config.decision_window_days
    entries = stage_entries(tables, context.as_of)
    stages = present_stages(tables, entries)
    keys = {
        k: ("share", f"Funnel conversion, {_label(a, b)}")
        for k, (a, b) in _conversion_labels(stages).items()
    }
    keys |= {
        f"stage_velocity_{a}_to_{b}": ("days", f"Stage velocity, {_label(a, b)}")
        for a, b in pairwise(FUNNEL)
    }
    reason = missing_reason(tables, "stage_events")
    if reason:
        return not_measurable(keys, reason)
    progress = handoff_progress(
        tables,
        context.as_of,
        stages,
        windows=shared.spans(context),
        entries=entries,
    )
    if progress.is_empty():
        return not_measurable(keys, "no handoffs in the data")

    cutoff = as_of_literal(context.as_of) - pl.duration(days=window)
    cutoff_instant = context.as_of - dt.timedelta(days=window)
    mature = progress.filter(pl.col("handoff_at") <= cutoff)
    note = (
        f"over handoffs older than {window} days ({mature.height} of "
        f"{progress.height}); stages in the data: {', '.join(stages)}"
    )
    if "opportunities" in tables.missing:
        note += "; no opportunity file, so wins are unknown"
    metrics = _conversions(mature, stages, window, note)
    metrics.update(_velocity(progress, stages))

    zone = config.calendar.time_zone
    headline = metrics["funnel_mql_to_sal"]
    details = {
        **headline.details,
        "skipped_stages": _skips(progress),
        "cohorts": cohort_table(
            progress, stages, zone, settled_before=_month(cutoff_instant, zone)
        ).to_dicts(),
        "periods": period_table(progress, stages, zone).to_dicts(),
    }
    metrics["funnel_mql_to_sal"] = replace(headline, details=details)
    return metrics
