"""The measure step: every metric family over one org's canonical tables."""

from __future__ import annotations

import dataclasses
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


@dataclass(frozen=True)
class Family:
    """A metric family and the canonical tables whose rows feed its values."""

    compute: MetricFamily
    reads: frozenset[str]


# The per-handoff frame comes from these tables, so every family built on it
# reads them all.
HANDOFF_TABLES = frozenset(
    {"leads", "stage_events", "owner_events", "activities", "users"}
)

FAMILIES: list[Family] = [
    Family(_handoff_family, HANDOFF_TABLES),
    Family(owner_response_metrics, HANDOFF_TABLES),
    Family(cadence_metrics, HANDOFF_TABLES),
    Family(funnel_metrics, frozenset({"leads", "stage_events", "opportunities"})),
    Family(volume_metrics, frozenset({"leads", "stage_events"})),
    Family(context_metrics, frozenset({"leads", "stage_events", "touches"})),
    Family(
        attribution_metrics,
        frozenset({"leads", "touches", "campaigns", "opportunities", "accounts"}),
    ),
    Family(hygiene_metrics, frozenset({"leads", "stage_events"})),
    Family(
        planning_metrics,
        frozenset({"leads", "stage_events", "opportunities", "accounts"}),
    ),
]


def measure(
    tables: CanonicalTables, config: OrgConfig, as_of: dt.datetime
) -> tuple[Metrics, pl.DataFrame]:
    """Compute all metrics; returns them with the per-handoff frame behind them."""
    handoffs = build_handoffs(tables, config, as_of)
    context = MeasureContext(tables=tables, config=config, as_of=as_of, handoffs=handoffs)
    metrics: Metrics = {}
    for family in FAMILIES:
        for key, value in family.compute(context).items():
            metrics[key] = dataclasses.replace(value, reads=family.reads)
    return metrics, handoffs
