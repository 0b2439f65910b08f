"""Definition hygiene: whether CRM stages mean what the funnel assumes.

- ``unmapped_status_share``: share of leads whose current raw status no stage
  mapping covers (a value mapped to null is known, so it counts as mapped).
- ``stage_order_violation_share``: among leads that reached SQL or converted,
  the share with an SQL entry before any MQL entry, or a conversion with no
  acceptance (``sal`` or ``sql``) before it.
- ``converted_flag_mismatch_count``: leads whose status maps to a converted
  stage (``opportunity``, ``customer``) while the CRM's converted flag is false.
- ``score_coverage_at_handoff``: share of handoffs whose lead had a score.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from metrics.context import SCORE_NOTE, score_reason
from metrics.coverage import missing_reason, not_measurable, share
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

CONVERTED_STAGES = ("opportunity", "customer")
ACCEPTANCE_STAGES = ("sal", "sql")
_MAX_LISTED = 20


def status_mapping(tables: CanonicalTables, config: OrgConfig) -> dict[str, str | None]:
    """Return the status mapping the connector applied, else the config's own."""
    if tables.status_mapping is not None:
        return tables.status_mapping
    return config.stages.resolved()


def unmapped_statuses(tables: CanonicalTables, config: OrgConfig) -> Metrics:
    """Share of leads whose current status is unmapped, listing the values."""
    key, label = "unmapped_status_share", "Leads with an unmapped status"
    mapping = status_mapping(tables, config)
    statuses = tables["leads"].filter(pl.col("status_raw").is_not_null())
    if statuses.is_empty():
        return not_measurable({key: ("share", label)}, "no lead has a status value")
    unmapped = statuses.filter(~pl.col("status_raw").is_in(list(mapping)))
    current = dict(unmapped.group_by("status_raw").len().iter_rows())
    records = {**current, **tables.unmapped_statuses}
    values = [
        {"value": value, "leads": current.get(value, 0), "records": records[value]}
        for value in sorted(records, key=lambda v: (-records[v], v))
    ]
    note = (
        f"{unmapped.height} of {statuses.height} leads have an unmapped status; "
        f"{len(values)} unmapped values"
    )
    details = {"unmapped_values": values, "mapped_values": len(mapping)}
    value = unmapped.height / statuses.height
    return {
        key: MetricValue(key, value, statuses.height, "share", label, note, details)
    }


def _first_entries(events: pl.DataFrame) -> pl.DataFrame:
    """Return per lead its first MQL, SQL, acceptance and conversion entry."""
    stage = pl.col("stage")
    return events.group_by("lead_id").agg(
        first_mql=pl.col("entered_at").filter(stage == "mql").min(),
        first_sql=pl.col("entered_at").filter(stage == "sql").min(),
        first_acceptance=pl.col("entered_at")
        .filter(stage.is_in(ACCEPTANCE_STAGES))
        .min(),
        first_conversion=pl.col("entered_at")
        .filter(stage.is_in(CONVERTED_STAGES))
        .min(),
    )


def stage_order(tables: CanonicalTables) -> Metrics:
    """Share of leads past SQL or converted whose stage history is out of order.

    A lead the CRM flags as converted with no conversion status counts as
    converted on its conversion date, which is compared by day.
    """
    key, label = "stage_order_violation_share", "Leads with stages out of order"
    if reason := missing_reason(tables, "stage_events"):
        return not_measurable({key: ("share", label)}, reason)
    # Only leads that reached SQL or converted are checked, so only their events
    # are aggregated.
    events = tables["stage_events"]
    leads = tables["leads"].select("lead_id", "is_converted", "converted_on")
    past_sql = events.filter(pl.col("stage").is_in(("sql",) + CONVERTED_STAGES))
    candidates = pl.concat(
        [past_sql.select("lead_id"), leads.filter("is_converted").select("lead_id")]
    ).unique()
    checked_events = events.join(candidates, on="lead_id", how="semi")
    per_lead = leads.join(candidates, on="lead_id", how="semi").join(
        _first_entries(checked_events), on="lead_id", how="left"
    )
    acceptance = pl.col("first_acceptance")
    flagged_only = pl.col("first_conversion").is_null() & pl.col("is_converted")
    checked = per_lead.with_columns(
        converted=pl.col("first_conversion").is_not_null()
        | pl.col("is_converted").fill_null(False),
        sql_without_mql=pl.col("first_sql").is_not_null()
        & (pl.col("first_mql").is_null() | (pl.col("first_mql") > pl.col("first_sql"))),
        unaccepted=acceptance.is_null()
        | (acceptance > pl.col("first_conversion")).fill_null(False)
        | (flagged_only & (acceptance.dt.date() > pl.col("converted_on"))).fill_null(
            False
        ),
    ).with_columns(
        conversion_without_acceptance=pl.col("converted") & pl.col("unaccepted")
    )
    population = checked.filter(pl.col("first_sql").is_not_null() | pl.col("converted"))
    if population.is_empty():
        reason = "no lead reached SQL or converted"
        return not_measurable({key: ("share", label)}, reason)
    counts = population.select(
        sql_without_mql=pl.col("sql_without_mql").sum(),
        conversion_without_acceptance=pl.col("conversion_without_acceptance").sum(),
        violating=(
            pl.col("sql_without_mql") | pl.col("conversion_without_acceptance")
        ).sum(),
    ).row(0, named=True)
    note = (
        f"{counts['violating']} of {population.height} leads past SQL or converted "
        "have stages out of order"
    )
    value = counts["violating"] / population.height
    metric = MetricValue(key, value, population.height, "share", label, note, counts)
    return {key: metric}


def converted_flag_mismatch(tables: CanonicalTables, config: OrgConfig) -> Metrics:
    """Count leads whose status means converted while the converted flag is false."""
    key, label = "converted_flag_mismatch_count", "Converted status, flag not set"
    leads = tables["leads"]
    if leads["is_converted"].is_null().all():
        reason = "the source has no converted flag for leads"
        return not_measurable({key: ("count", label)}, reason)
    mapping = status_mapping(tables, config)
    converted_values = [
        raw for raw, stage in mapping.items() if stage in CONVERTED_STAGES
    ]
    status_converted = pl.col("status_raw").is_in(converted_values)
    population = leads.filter(status_converted)
    if population.is_empty():
        reason = "no lead has a status that maps to a converted stage"
        return not_measurable({key: ("count", label)}, reason)
    mismatched = population.filter(pl.col("is_converted") == False)  # noqa: E712
    reverse = leads.filter(pl.col("is_converted") & ~status_converted.fill_null(False))
    details = {
        "converted_status_values": converted_values,
        "lead_ids": mismatched["lead_id"].head(_MAX_LISTED).to_list(),
        "flag_without_converted_status": reverse.height,
    }
    note = (
        f"{mismatched.height} of {population.height} leads with a converted status "
        "have the converted flag unset"
    )
    value = float(mismatched.height)
    return {
        key: MetricValue(key, value, population.height, "count", label, note, details)
    }


def score_coverage(handoffs: pl.DataFrame, tables: CanonicalTables) -> Metrics:
    """Share of handoffs whose lead had a score."""
    key, label = "score_coverage_at_handoff", "Handoffs with a lead score"
    reason = missing_reason(tables, "stage_events") or score_reason(tables)
    if reason is None and handoffs.is_empty():
        reason = "no handoffs in the data"
    if reason:
        return not_measurable({key: ("share", label)}, reason)
    scored = tables["leads"].filter(pl.col("score").is_not_null()).select("lead_id")
    with_score = handoffs.join(scored.unique(), on="lead_id", how="semi").height
    note = f"{with_score} of {handoffs.height} handoffs had a lead score; {SCORE_NOTE}"
    value = share(with_score, handoffs.height)
    details = {"with_score": with_score, "handoffs": handoffs.height}
    return {
        key: MetricValue(key, value, handoffs.height, "share", label, note, details)
    }


def hygiene_metrics(context: MeasureContext) -> Metrics:
    """Compute every definition-hygiene metric."""
    tables, config = context.tables, context.config
    metrics = unmapped_statuses(tables, config)
    metrics.update(stage_order(tables))
    metrics.update(converted_flag_mismatch(tables, config))
    metrics.update(score_coverage(context.handoffs, tables))
    return metrics
