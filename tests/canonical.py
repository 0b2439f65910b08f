"""Build small canonical tables by hand for metric tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables, conform, empty
from metrics.handoffs import build_handoffs
from metrics.measure import MeasureContext

AS_OF = dt.datetime(2024, 12, 31, tzinfo=dt.UTC)


def at(*parts: int) -> dt.datetime:
    """Return a UTC datetime."""
    return dt.datetime(*parts, tzinfo=dt.UTC)


def tables(
    missing: dict[str, str] | None = None, **rows: list[dict[str, Any]]
) -> CanonicalTables:
    """Return canonical tables from lists of row dicts, conformed to the schema."""
    frames = {
        name: conform(name, pl.DataFrame(records, infer_schema_length=None))
        if records
        else empty(name)
        for name, records in rows.items()
    }
    return CanonicalTables(tables=frames, missing=dict(missing or {}))


def context(
    data: CanonicalTables, config: OrgConfig | None = None, as_of: dt.datetime = AS_OF
) -> MeasureContext:
    """Return a measure context with the lead's per-handoff frame built."""
    config = config or OrgConfig()
    handoffs = build_handoffs(data, config, as_of)
    return MeasureContext(tables=data, config=config, as_of=as_of, handoffs=handoffs)


def events(*rows: tuple[str, str, dt.datetime]) -> list[dict[str, Any]]:
    """Return stage-event rows from ``(lead_id, stage, entered_at)`` tuples."""
    return [
        {"lead_id": lead, "stage": stage, "entered_at": when}
        for lead, stage, when in rows
    ]
