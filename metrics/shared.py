"""Intermediate frames several metric families need, computed once per run.

:func:`spans` and :func:`touches` cache their value against the run's per-handoff
frame (``context.handoffs``), which every family of one measure run shares, and
drop it with that frame.
"""

from __future__ import annotations

import datetime as dt
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import polars as pl

from metrics.coverage import as_of_literal
from metrics.handoffs import sales_touches
from metrics.sorted_groups import next_in_group

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

T = TypeVar("T")
_CACHE: dict[tuple[object, ...], tuple[weakref.ref, object]] = {}


def handoff_spans(handoffs: pl.DataFrame, as_of: dt.datetime) -> pl.DataFrame:
    """Return ``lead_id``, ``handoff_at`` and ``window_end`` for each handoff.

    ``window_end`` is the lead's next handoff, or the as-of time for its last
    one, as in :func:`metrics.handoffs.handoff_windows`, but derived from the
    per-handoff frame so the stage events are not scanned again.
    """
    return (
        handoffs.select("lead_id", "handoff_at")
        .sort("lead_id", "handoff_at")
        .with_columns(
            window_end=next_in_group("handoff_at", "lead_id").fill_null(
                as_of_literal(as_of)
            )
        )
    )


def _cached(context: MeasureContext, name: str, compute: Callable[[], T]) -> T:
    anchor = context.handoffs
    # The other inputs are part of the key in case one frame is measured twice.
    key = (id(anchor), name, id(context.tables), id(context.config), context.as_of)
    hit = _CACHE.get(key)
    if hit is not None and hit[0]() is anchor:
        return hit[1]  # type: ignore[return-value]
    value = compute()
    _CACHE[key] = (weakref.ref(anchor, lambda _: _CACHE.pop(key, None)), value)
    return value


def spans(context: MeasureContext) -> pl.DataFrame:
    """Return :func:`handoff_spans` of the run's handoffs."""
    return _cached(
        context, "spans", lambda: handoff_spans(context.handoffs, context.as_of)
    )


def touches(context: MeasureContext) -> pl.DataFrame:
    """Return :func:`metrics.handoffs.sales_touches` for the run."""
    return _cached(
        context,
        "sales_touches",
        lambda: sales_touches(context.tables, context.config, context.as_of),
    )
