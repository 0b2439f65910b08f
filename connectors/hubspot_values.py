"""Typed parsing of HubSpot property values, which the API sends as text.

Datetime properties come as ISO 8601 strings (``2024-03-05T14:22:10.123Z``),
older or imported values and some date properties as epoch milliseconds, and
date properties as ``2024-03-05``. All parse to UTC; a date-only value becomes
the start of that day in the portal's time zone, and is counted so the report
can mention it. A value that is none of these raises :class:`InputError` naming the
object type, property, record id and value.
"""

from __future__ import annotations

import polars as pl

from connectors.errors import InputError

UTC = pl.Datetime("us", "UTC")
_EPOCH_MS = r"^-?\d{10,14}$"
_DATE_ONLY = r"^\d{4}-\d{2}-\d{2}$"
MAX_EXAMPLES = 3


def blank_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Strip every text column; empty strings (cleared properties) become nulls."""
    return frame.with_columns(pl.col(pl.String).str.strip_chars().replace("", None))


def _instant(text: pl.Expr) -> pl.Expr:
    iso = text.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC"
    )
    epoch = pl.from_epoch(
        text.cast(pl.Int64, strict=False), time_unit="ms"
    ).dt.replace_time_zone("UTC")
    return pl.when(text.str.contains(_EPOCH_MS)).then(epoch).otherwise(iso)


def time_expr(column: str, time_zone: str) -> pl.Expr:
    """Return ``column`` (text) as UTC datetimes; bad values become null."""
    text = pl.col(column)
    local_midnight = (
        text.str.to_date("%Y-%m-%d", strict=False)
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return (
        pl.when(text.str.contains(_DATE_ONLY))
        .then(local_midnight)
        .otherwise(_instant(text))
    )


def date_expr(column: str, time_zone: str) -> pl.Expr:
    """Return ``column`` as the calendar date it falls on in the portal's time zone.

    A date-only value keeps its date; a timestamp is converted to the zone first.
    """
    text = pl.col(column)
    return (
        pl.when(text.str.contains(_DATE_ONLY))
        .then(text.str.to_date("%Y-%m-%d", strict=False))
        .otherwise(_instant(text).dt.convert_time_zone(time_zone).dt.date())
    )


def parse_times(
    frame: pl.DataFrame, columns: list[str], *, object_type: str, time_zone: str
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Replace text ``columns`` with UTC datetimes.

    Returns the frame and, per column, how many values were dates only.

    Raises:
        InputError: a value is neither ISO 8601, epoch milliseconds nor a date.
    """
    columns = [c for c in columns if c in frame.columns]
    parsed = frame.with_columns(time_expr(c, time_zone).alias(f"_{c}") for c in columns)
    for column in columns:
        _raise_invalid(
            parsed, column, f"_{column}", object_type, "an ISO 8601 time or epoch ms"
        )
    date_only = {
        column: int(
            frame.select(pl.col(column).str.contains(_DATE_ONLY).sum()).item() or 0
        )
        for column in columns
    }
    parsed = parsed.drop(columns).rename({f"_{c}": c for c in columns})
    return parsed, {c: n for c, n in date_only.items() if n}


def parse_numbers(
    frame: pl.DataFrame, columns: list[str], *, object_type: str
) -> pl.DataFrame:
    """Replace text ``columns`` with floats; raises InputError on a non-number."""
    columns = [c for c in columns if c in frame.columns]
    parsed = frame.with_columns(
        pl.col(c).cast(pl.Float64, strict=False).alias(f"_{c}") for c in columns
    )
    for column in columns:
        _raise_invalid(parsed, column, f"_{column}", object_type, "a number")
    return parsed.drop(columns).rename({f"_{c}": c for c in columns})


def bool_expr(column: str) -> pl.Expr:
    """Return a HubSpot boolean property (``true``/``false``, any case) as Boolean."""
    text = pl.col(column).str.to_lowercase()
    return pl.when(text == "true").then(True).when(text == "false").then(False)


def _raise_invalid(
    frame: pl.DataFrame, column: str, parsed: str, object_type: str, expected: str
) -> None:
    bad = frame.filter(pl.col(column).is_not_null() & pl.col(parsed).is_null())
    if bad.is_empty():
        return
    examples = "; ".join(
        f"record {record_id}: {value!r}"
        for record_id, value in bad.select("id", column).head(MAX_EXAMPLES).iter_rows()
    )
    msg = (
        f"HubSpot {object_type} property `{column}` has {bad.height} invalid value(s) "
        f"({examples}); expected {expected}. Correct the values in HubSpot or remove "
        f"the property from the org config."
    )
    raise InputError(msg)
