"""Coverage helpers shared by the metric families.

Every metric value states what limited it: a table the source lacked, a population
too small or too young. These helpers build those notes and the not-measurable
values the same way in every family.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from connectors.schema import CanonicalTables
from metrics.result import Metrics, MetricValue, Unit


def share(numerator: float, denominator: float) -> float | None:
    """Return ``numerator / denominator``, or ``None`` when the denominator is zero."""
    return numerator / denominator if denominator else None


def plural(count: int, noun: str, *, plural_noun: str | None = None) -> str:
    """Return ``count`` with ``noun``, or with its plural unless the count is one.

    The plural is ``noun`` plus an s unless ``plural_noun`` is given.
    """
    return f"{count} {noun}" if count == 1 else f"{count} {plural_noun or noun + 's'}"


def missing_reason(tables: CanonicalTables, *needed: str) -> str | None:
    """Return why any of the ``needed`` tables is missing, or ``None`` if all exist."""
    reasons = [tables.missing[name] for name in needed if name in tables.missing]
    return "; ".join(reasons) if reasons else None


def not_measurable(labels: dict[str, tuple[Unit, str]], reason: str) -> Metrics:
    """Return every metric in ``labels`` (key to unit and label) as not measurable."""
    return {
        key: MetricValue.not_measurable(key, unit, label, reason)
        for key, (unit, label) in labels.items()
    }


def as_of_literal(as_of: dt.datetime) -> pl.Expr:
    """Return the as-of time as a UTC microsecond literal."""
    return pl.lit(as_of).cast(pl.Datetime("us", "UTC"))


def month_of(column: str, time_zone: str) -> pl.Expr:
    """Return the ``YYYY-MM`` month of a UTC instant column in the org's time zone."""
    return pl.col(column).dt.convert_time_zone(time_zone).dt.strftime("%Y-%m")


def history_gap(
    source: pl.Series, subjects: pl.Series, *, source_name: str, subject_name: str
) -> str:
    """Return a note when ``source`` records start after some ``subjects`` instants.

    For example marketing touches that start in March while opportunities go
    back to January: the earlier opportunities look untouched only because the
    touch history is shorter. Returns an empty string when there is no gap.
    """
    first = source.drop_nulls().min()
    if first is None:
        return ""
    earlier = int((subjects.drop_nulls() < first).sum())
    if earlier == 0:
        return ""
    # Subject names are given in the plural ("handoffs", "opportunities").
    singular = (
        subject_name.removesuffix("ies") + "y"
        if subject_name.endswith("ies")
        else subject_name.removesuffix("s")
    )
    verb = "comes" if earlier == 1 else "come"
    counted = plural(earlier, singular, plural_noun=subject_name)
    return (
        f"{source_name} start on {first:%Y-%m-%d}; {counted} {verb} "
        f"before that and may look untouched only because of it"
    )
