"""The measure step: every metric family over one org's canonical tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from metrics.handoff_metrics import handoff_metrics
from metrics.handoffs import build_handoffs
from metrics.result import Metrics


@dataclass(frozen=True)
class MeasureContext:
    """Inputs shared by all metric families."""

    tables: CanonicalTables
    config: OrgConfig
    as_of: dt.datetime
    handoffs: pl.DataFrame


MetricFamily = Callable[[MeasureContext], Metrics]


def _handoff_family(context: MeasureContext) -> Metrics:
    return handoff_metrics(context.handoffs, context.tables, context.config)


FAMILIES: list[MetricFamily] = [_handoff_family]


def measure(
    tables: CanonicalTables, config: OrgConfig, as_of: dt.datetime
) -> tuple[Metrics, pl.DataFrame]:
    """Compute all metrics; returns them with the per-handoff frame behind them."""
    handoffs = build_handoffs(tables, config, as_of)
    context = MeasureContext(tables=tables, config=config, as_of=as_of, handoffs=handoffs)
    metrics: Metrics = {}
    for family in FAMILIES:
        metrics.update(family(context))
    return metrics, handoffs
