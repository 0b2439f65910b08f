"""API records to raw object frames in the text form of a Salesforce export.

REST returns JSON (``true``, ``15000.0``, ``2025-03-10T14:00:00.000+0000``, null);
Bulk API 2.0 returns CSV (``true``, ``15000.0``, ``2025-03-10T14:00:00.000Z``,
empty string for null). Both are rewritten to what an export CSV holds
(``TRUE``, ``15000``, ``2025-03-10T14:00:00.000+0000``, null), so a record gives
the same raw row, and the same canonical row, whichever path read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

NUMBER_TYPES = {"double", "currency", "percent", "int", "long"}
EXPORT_DATETIME = "%Y-%m-%dT%H:%M:%S%.3f+0000"


def frame_from_records(
    records: list[dict[str, Any]], types: Mapping[str, str]
) -> pl.DataFrame:
    """Build a string frame with one column per field in ``types`` from REST records."""
    schema = {name: _json_dtype(kind) for name, kind in types.items()}
    frame = pl.from_dicts(records, schema=schema, strict=False)
    return frame.cast(dict.fromkeys(types, pl.String))


def _json_dtype(kind: str) -> pl.DataType:
    if kind == "boolean":
        return pl.Boolean()
    if kind in NUMBER_TYPES:
        return pl.Float64()
    return pl.String()


def export_text(frame: pl.DataFrame, types: Mapping[str, str]) -> pl.DataFrame:
    """Rewrite a string frame's values to the export's text forms; blanks become null.

    ``types`` maps each field to its describe type (``boolean``, ``datetime``,
    ``currency`` and so on).
    """
    expressions = [
        _export_expression(name, types.get(name, "string")) for name in frame.columns
    ]
    return frame.with_columns(expressions)


def _export_expression(name: str, kind: str) -> pl.Expr:
    text = pl.col(name).cast(pl.String).replace("", None)
    if kind == "boolean":
        return text.str.to_uppercase().alias(name)
    if kind in NUMBER_TYPES:
        number = text.cast(pl.Float64, strict=False)
        whole = (
            number.is_not_null() & (number == number.floor()) & (number.abs() < 2**53)
        )
        return (
            pl.when(whole)
            .then(number.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(text)
            .alias(name)
        )
    if kind == "datetime":
        parsed = text.str.replace(r"Z$", "+0000").str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%.f%z", strict=False, time_unit="ms", time_zone="UTC"
        )
        return pl.coalesce(parsed.dt.strftime(EXPORT_DATETIME), text).alias(name)
    return text.alias(name)
