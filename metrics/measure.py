"""The measure step: every metric family over one org's canonical tables."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from metrics.attribution import attribution_metrics
from metrics.cadence import cadence_metrics
from metrics.context import context_metrics
from metrics.funnel import funnel_metrics
from metrics.handoff_metrics import handoff_metrics
from metrics.handoffs import build_handoffs
from metrics.hygiene import hygiene_metrics
from metrics.owner_response import owner_response_metrics
from metrics.planning import planning_metrics
from metrics.result import Metrics
from metrics.volume import volume_metrics


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


FAMILIES: list[MetricFamily] = [
    _handoff_family,
    owner_response_metrics,
    cadence_metrics,
    funnel_metrics,
    volume_metrics,
    context_metrics,
    attribution_metrics,
    hygiene_metrics,
    planning_metrics,
]


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
