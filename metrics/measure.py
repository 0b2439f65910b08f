"""The measure step: every metric family over one org's canonical tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

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
    """A metric family and the canonical inputs that feed its values.

    An input is a table (``"activities"``: any of its columns) or one column
    (``"opportunities.amount"``). ``reads`` applies to every metric of the family
    unless ``reads_by_metric`` names the metric.
    """

    compute: MetricFamily
    reads: frozenset[str]
    reads_by_metric: dict[str, frozenset[str]] = field(default_factory=dict)

    def reads_of(self, key: str) -> frozenset[str]:
        """Return the inputs of the metric ``key``."""
        return self.reads_by_metric.get(key, self.reads)


# A lead's own columns are listed one by one: the gate checks some of them
# (created_at), and a warning on one concerns only the metrics whose values
# read it.
LEAD_IDS = frozenset({"leads.lead_id"})
# The per-handoff frame: stage events give the handoffs and sales decisions,
# owner events, users and the leads' owners and zones the routing and clocks,
# and activities the sales touches.
HANDOFF_TABLES = frozenset(
    {"leads.lead_id", "leads.owner_id", "leads.time_zone", "stage_events"}
    | {"owner_events", "activities", "users"}
)
STAGES = LEAD_IDS | {"stage_events"}
# Opportunities counted by when they were created; amounts and close dates are
# listed where a metric reads them.
OPPORTUNITIES = frozenset({"opportunities.opportunity_id", "opportunities.created_at"})
AMOUNT = frozenset({"opportunities.amount"})
CLOSE_DATE = frozenset({"opportunities.close_date"})
LEAD_OPPORTUNITIES = STAGES | {"leads.opportunity_id"} | OPPORTUNITIES
ATTRIBUTION = (
    frozenset({"leads.lead_id", "leads.account_id"}) | {"touches", "accounts"}
) | OPPORTUNITIES
# Sourced pipeline compares the first touch with the leads' creation.
LEAD_CREATED = frozenset({"leads.created_at"})
TARGET_ACCOUNTS = frozenset({"accounts"})

FAMILIES: list[Family] = [
    Family(
        _handoff_family,
        HANDOFF_TABLES,
        {
            **dict.fromkeys(
                (
                    "handoff_count",
                    "sal_rate",
                    "decided_share",
                    "undecided_share",
                    "rejection_reason_share",
                    "recycle_rate",
                ),
                STAGES,
            ),
            "untouched_share": STAGES | {"activities", "users"},
            "routing_failure_rate": STAGES
            | {"leads.owner_id", "owner_events", "users"},
        },
    ),
    Family(owner_response_metrics, HANDOFF_TABLES),
    Family(cadence_metrics, HANDOFF_TABLES),
    Family(
        funnel_metrics,
        STAGES,
        {
            "funnel_sql_to_opportunity": LEAD_OPPORTUNITIES,
            "stage_velocity_sql_to_opportunity": LEAD_OPPORTUNITIES,
            "funnel_opportunity_to_won": LEAD_OPPORTUNITIES | CLOSE_DATE,
            "stage_velocity_opportunity_to_won": LEAD_OPPORTUNITIES | CLOSE_DATE,
        },
    ),
    Family(volume_metrics, STAGES),
    Family(context_metrics, STAGES | {"leads.score", "touches"}),
    Family(
        attribution_metrics,
        ATTRIBUTION,
        {
            "attribution_amount_coverage_share": ATTRIBUTION | AMOUNT,
            "sourced_pipeline_share": ATTRIBUTION | AMOUNT | LEAD_CREATED,
            "influenced_pipeline_share": ATTRIBUTION | AMOUNT | CLOSE_DATE,
        },
    ),
    Family(
        hygiene_metrics,
        STAGES | {"leads.is_converted", "leads.converted_on", "leads.score"},
        {"unmapped_status_share": frozenset({"leads.lead_id", "leads.status_raw"})},
    ),
    Family(
        planning_metrics,
        TARGET_ACCOUNTS | STAGES | {"leads.account_id"},
        {
            "target_account_list_present": TARGET_ACCOUNTS,
            "target_account_opportunity_share": TARGET_ACCOUNTS | OPPORTUNITIES,
            "target_account_pipeline_share": TARGET_ACCOUNTS | OPPORTUNITIES | AMOUNT,
        },
    ),
]


def measure(
    tables: CanonicalTables, config: OrgConfig, as_of: dt.datetime
) -> tuple[Metrics, pl.DataFrame]:
    """Compute all metrics; returns them with the per-handoff frame behind them."""
    handoffs = build_handoffs(tables, config, as_of)
    context = MeasureContext(
        tables=tables, config=config, as_of=as_of, handoffs=handoffs
    )
    metrics: Metrics = {}
    for family in FAMILIES:
        for key, value in family.compute(context).items():
            metrics[key] = dataclasses.replace(value, reads=family.reads_of(key))
    return metrics, handoffs
