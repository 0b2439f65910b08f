"""MQL volume against the monthly targets marketing committed to.

Each handoff (an entry into ``mql``) counts in the month it happened, in the
org's time zone. ``mql_volume_vs_target`` is the MQLs of the complete months
that have a target divided by the sum of those targets: 1.0 means on target.
The month of the as-of time is incomplete, and so are months before the stage
history fully starts: they are listed but left out of the value. Targets come
from ``targets.mql_monthly`` and ``targets.mql_csv``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl

from config.models import TargetsConfig
from connectors.errors import InputError
from metrics.coverage import missing_reason, month_of, not_measurable
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

KEY = "mql_volume_vs_target"
LABEL = "MQL volume against target"
_MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
_MAX_MONTHS = 24


def read_target_csv(path: Path) -> dict[str, float]:
    """Read monthly MQL targets from a CSV with columns ``month`` and ``target``.

    Raises:
        InputError: the file is unreadable, lacks a column, or has a month not in
            ``YYYY-MM`` form or a target that is not a number of 0 or more.
    """
    try:
        frame = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        msg = f"{path}: cannot read MQL targets ({exc}); check targets.mql_csv"
        raise InputError(msg) from None
    missing = [c for c in ("month", "target") if c not in frame.columns]
    if missing:
        msg = (
            f"{path}: missing column(s) {', '.join(missing)}; the MQL target file "
            f"needs the columns month (YYYY-MM) and target"
        )
        raise InputError(msg)
    frame = frame.with_row_index("row", offset=2).with_columns(
        month=pl.col("month").str.strip_chars(),
        value=pl.col("target").str.strip_chars().cast(pl.Float64, strict=False),
    )
    bad = frame.filter(
        ~pl.col("month").str.contains(_MONTH_PATTERN).fill_null(False)
        | pl.col("value").is_null()
        | (pl.col("value") < 0)
    )
    if not bad.is_empty():
        row = bad.row(0, named=True)
        msg = (
            f"{path}: row {row['row']}: month {row['month']!r}, target "
            f"{row['target']!r}: the month must be YYYY-MM and the target a number "
            f"of 0 or more"
        )
        raise InputError(msg)
    return dict(frame.select("month", "value").iter_rows())


def monthly_targets(targets: TargetsConfig) -> dict[str, float]:
    """Return the targets by month: the CSV's, overridden by the inline ones."""
    merged = read_target_csv(targets.mql_csv) if targets.mql_csv else {}
    return merged | dict(targets.mql_monthly)


def first_full_month(events: pl.Series, time_zone: str) -> str | None:
    """Return the first ``YYYY-MM`` month the stage history covers from its start.

    A history starting after the 1st of a month covers that month only in part,
    so the next month is the first full one. ``None`` when there is no history.
    """
    first = events.drop_nulls().min()
    if first is None:
        return None
    local = first.astimezone(ZoneInfo(time_zone))
    if local.day == 1 and local.time() == dt.time(0):
        return local.strftime("%Y-%m")
    year, month = (
        (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    )
    return f"{year:04d}-{month:02d}"


def monthly_volume(
    handoffs: pl.DataFrame,
    targets: dict[str, float],
    time_zone: str,
    as_of_month: str,
    *,
    history_from: str | None = None,
) -> pl.DataFrame:
    """Return per month: ``month``, ``mql``, ``target``, ``ratio``, ``complete``.

    ``complete`` is false for the as-of month and for months before
    ``history_from`` (the first month the stage history fully covers).
    """
    counts = handoffs.group_by(month=month_of("handoff_at", time_zone)).agg(
        mql=pl.len().cast(pl.Int64)
    )
    target_frame = pl.DataFrame(
        {"month": list(targets), "target": list(targets.values())},
        schema={"month": pl.String, "target": pl.Float64},
    ).filter(pl.col("month") <= as_of_month)
    return (
        counts.join(target_frame, on="month", how="full", coalesce=True)
        .with_columns(pl.col("mql").fill_null(0))
        .with_columns(
            ratio=pl.when(pl.col("target") > 0).then(pl.col("mql") / pl.col("target")),
            complete=(pl.col("month") < as_of_month)
            & (pl.col("month") >= (history_from or "")),
        )
        .sort("month")
    )


def volume_metrics(context: MeasureContext) -> Metrics:
    """Compute MQL volume against target over the complete months with a target."""
    if reason := missing_reason(context.tables, "stage_events"):
        return not_measurable({KEY: ("ratio", LABEL)}, reason)
    zone = context.config.calendar.time_zone
    as_of_month = context.as_of.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
    targets = monthly_targets(context.config.targets)
    history_from = first_full_month(context.tables["stage_events"]["entered_at"], zone)
    months = monthly_volume(
        context.handoffs, targets, zone, as_of_month, history_from=history_from
    )
    details = {"months": months.tail(_MAX_MONTHS).to_dicts()}

    scored = months.filter(pl.col("complete") & pl.col("target").is_not_null())
    reason = None
    if not targets:
        reason = (
            "no MQL targets in the config: set targets.mql_monthly or targets.mql_csv"
        )
    elif scored.is_empty():
        reason = "no complete month before the as-of month has an MQL target"
    elif scored["target"].sum() <= 0:
        reason = "every MQL target of the complete months is 0"
    if reason:
        return {KEY: MetricValue(KEY, None, 0, "ratio", LABEL, reason, details)}

    mqls, target = int(scored["mql"].sum()), float(scored["target"].sum())
    note = f"{mqls} MQLs against a target of {target:g} over {scored.height} months"
    left_out = months.filter(pl.col("target").is_not_null() & ~pl.col("complete"))
    if not left_out.is_empty():
        note += (
            f"; left out: {', '.join(left_out['month'].to_list())} (months before the "
            f"stage history's first full month, {history_from}, or not yet complete)"
        )
    details |= {"mql": mqls, "target": target, "months_scored": scored.height}
    return {KEY: MetricValue(KEY, mqls / target, mqls, "ratio", LABEL, note, details)}
