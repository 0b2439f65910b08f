"""Handoff metrics: speed to lead, SLA breach rate, SAL rate, rejections, routing.

Each function takes the per-handoff frame of :func:`metrics.handoffs.build_handoffs`
and returns :class:`MetricValue` objects whose ``population`` is the number of
handoffs behind the value. A metric whose inputs the source lacks is returned as
not measurable with the reason, never as zero.
"""

from __future__ import annotations

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from metrics.coverage import plural
from metrics.result import MetricValue, Metrics


def _share(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _missing_reason(tables: CanonicalTables, *needed: str) -> str | None:
    reasons = [tables.missing[name] for name in needed if name in tables.missing]
    return "; ".join(reasons) if reasons else None


def handoff_count(handoffs: pl.DataFrame, tables: CanonicalTables) -> MetricValue:
    """Count handoffs (entries into ``mql``) up to the as-of time."""
    reason = _missing_reason(tables, "stage_events")
    if reason:
        return MetricValue.not_measurable("handoff_count", "count", "Handoffs", reason)
    return MetricValue(
        key="handoff_count",
        value=float(handoffs.height),
        population=handoffs.height,
        unit="count",
        label="Handoffs",
        details={"leads": handoffs["lead_id"].n_unique()},
    )


def speed_to_lead(
    handoffs: pl.DataFrame, tables: CanonicalTables, config: OrgConfig
) -> Metrics:
    """Median and p90 hours from handoff to the first human sales touch.

    Computed over touched handoffs, in business and in calendar hours. Untouched
    handoffs stay in the population: ``untouched_share`` reports them and the SLA
    breach rate counts those past their deadline as breached.
    """
    keys = {
        "speed_to_lead_median_business_hours": "Speed to lead, median (business hours)",
        "speed_to_lead_p90_business_hours": "Speed to lead, p90 (business hours)",
        "speed_to_lead_median_calendar_hours": "Speed to lead, median (calendar hours)",
        "speed_to_lead_p90_calendar_hours": "Speed to lead, p90 (calendar hours)",
        "untouched_share": "Handoffs never touched by sales",
    }
    reason = _missing_reason(tables, "stage_events", "activities", "users")
    if reason is None and handoffs.is_empty():
        reason = "no handoffs in the data"
    if reason:
        return {
            key: MetricValue.not_measurable(
                key, "share" if key == "untouched_share" else "hours", label, reason
            )
            for key, label in keys.items()
        }
    touched = handoffs.filter(pl.col("first_touch_at").is_not_null())
    stats = touched.select(
        median_b=pl.col("business_hours").median(),
        p90_b=pl.col("business_hours").quantile(0.9, interpolation="linear"),
        median_c=pl.col("calendar_hours").median(),
        p90_c=pl.col("calendar_hours").quantile(0.9, interpolation="linear"),
    ).row(0, named=True)
    counts = {
        "handoffs": handoffs.height,
        "touched": touched.height,
        "untouched": handoffs.height - touched.height,
    }
    note = (
        f"over {touched.height} touched of {plural(handoffs.height, 'handoff')}; "
        f"{counts['untouched']} untouched"
    )
    values = {
        "speed_to_lead_median_business_hours": stats["median_b"],
        "speed_to_lead_p90_business_hours": stats["p90_b"],
        "speed_to_lead_median_calendar_hours": stats["median_c"],
        "speed_to_lead_p90_calendar_hours": stats["p90_c"],
    }
    metrics = {
        key: MetricValue(key, value, touched.height, "hours", keys[key], note, counts)
        if value is not None
        else MetricValue.not_measurable(key, "hours", keys[key], "no handoff was touched")
        for key, value in values.items()
    }
    metrics["untouched_share"] = MetricValue(
        "untouched_share",
        _share(counts["untouched"], handoffs.height),
        handoffs.height,
        "share",
        keys["untouched_share"],
        f"{counts['untouched']} of {plural(handoffs.height, 'handoff')} "
        "with no human sales touch",
        details=counts,
    )
    return metrics


def sla_compliance(
    handoffs: pl.DataFrame, tables: CanonicalTables, config: OrgConfig
) -> Metrics:
    """SLA breach rate and on-time share over due handoffs.

    On time: the first touch came within the SLA's business hours (exactly at the
    limit counts as on time). Breached: the touch came later, or the handoff is
    untouched with more business time than the SLA elapsed by the as-of time. Not
    yet due otherwise, and left out of both rates.
    """
    labels = {
        "sla_breach_rate": "SLA breach rate",
        "sla_on_time_share": "Handoffs touched within the SLA",
    }
    reason = _missing_reason(tables, "stage_events", "activities", "users")
    if reason is None and handoffs.is_empty():
        reason = "no handoffs in the data"
    if reason:
        return {k: MetricValue.not_measurable(k, "share", v, reason) for k, v in labels.items()}
    counts = dict(handoffs.group_by("sla_status").len().iter_rows())
    on_time = counts.get("on_time", 0)
    breached = counts.get("breached", 0)
    not_due = counts.get("not_due", 0)
    due = on_time + breached
    details = {
        "sla_hours": config.sla.speed_to_lead_hours,
        "on_time": on_time,
        "breached": breached,
        "not_due": not_due,
        "due": due,
    }
    limit = f"{config.sla.speed_to_lead_hours:g}-business-hour SLA"
    due_text = f"of {plural(due, 'due handoff')}"
    breach_note = f"{breached} {due_text} breached the {limit}; {not_due} not yet due"
    on_time_note = f"{on_time} {due_text} touched within the {limit}; {not_due} not yet due"
    return {
        "sla_breach_rate": MetricValue(
            "sla_breach_rate", _share(breached, due), due, "share",
            labels["sla_breach_rate"], breach_note, details,
        ),
        "sla_on_time_share": MetricValue(
            "sla_on_time_share", _share(on_time, due), due, "share",
            labels["sla_on_time_share"], on_time_note, details,
        ),
    }  # fmt: skip


def sales_acceptance(
    handoffs: pl.DataFrame, tables: CanonicalTables, config: OrgConfig
) -> Metrics:
    """SAL rate with decided and undecided shares, over mature handoffs.

    Mature handoffs are older than the decision window. A handoff's decision is
    the first acceptance (``sal``, ``sql``, ``opportunity``, ``customer``) or
    rejection (``rejected``, ``recycled``) after it and before the next handoff.
    """
    labels = {
        "sal_rate": "SAL rate (accepted by sales)",
        "decided_share": "Handoffs decided by sales",
        "undecided_share": "Handoffs with no decision",
    }
    reason = _missing_reason(tables, "stage_events")
    mature = handoffs.filter(pl.col("mature"))
    if reason is None and mature.is_empty():
        reason = f"no handoff older than the {config.decision_window_days}-day decision window"
    if reason:
        return {k: MetricValue.not_measurable(k, "share", v, reason) for k, v in labels.items()}
    accepted = mature.filter(pl.col("decision") == "accepted").height
    rejected = mature.filter(pl.col("decision") == "rejected").height
    total = mature.height
    details = {
        "mature_handoffs": total,
        "accepted": accepted,
        "rejected": rejected,
        "undecided": total - accepted - rejected,
        "recent_handoffs": handoffs.height - total,
        "decision_window_days": config.decision_window_days,
    }
    mature_handoffs = (
        f"of {plural(total, 'handoff')} older than {config.decision_window_days} days"
    )
    recent = f"{details['recent_handoffs']} more recent left out"
    notes = {
        "sal_rate": f"{accepted} {mature_handoffs} accepted by sales; {recent}",
        "decided_share": (
            f"{accepted + rejected} {mature_handoffs} decided ({accepted} accepted, "
            f"{rejected} rejected); {recent}"
        ),
        "undecided_share": (
            f"{details['undecided']} {mature_handoffs} with no decision; {recent}"
        ),
    }
    values = {
        "sal_rate": _share(accepted, total),
        "decided_share": _share(accepted + rejected, total),
        "undecided_share": _share(total - accepted - rejected, total),
    }
    return {
        key: MetricValue(key, value, total, "share", labels[key], notes[key], details)
        for key, value in values.items()
    }


def rejection_quality(handoffs: pl.DataFrame, tables: CanonicalTables) -> Metrics:
    """Share of rejections with a reason code, top reasons, and the recycle rate.

    Population: handoffs whose first decision was a rejection. Recycled: the lead
    was later sent back to nurture (``recycled``) or re-entered ``mql``.
    """
    labels = {
        "rejection_reason_share": "Rejections with a reason",
        "recycle_rate": "Rejected leads recycled",
    }
    reason = _missing_reason(tables, "stage_events")
    rejected = handoffs.filter(pl.col("decision") == "rejected")
    if reason is None and rejected.is_empty():
        reason = "no rejected handoffs"
    if reason:
        return {k: MetricValue.not_measurable(k, "share", v, reason) for k, v in labels.items()}
    with_reason = int(rejected["has_reason"].sum())
    recycled = int(rejected["recycled"].sum())
    top = (
        rejected.filter(pl.col("reason").is_not_null())
        .group_by("reason")
        .len()
        .sort(["len", "reason"], descending=[True, False])
        .head(5)
    )
    top_reasons = [{"reason": r, "count": n} for r, n in top.iter_rows()]
    return {
        "rejection_reason_share": MetricValue(
            "rejection_reason_share",
            _share(with_reason, rejected.height),
            rejected.height,
            "share",
            labels["rejection_reason_share"],
            f"{with_reason} of {plural(rejected.height, 'rejection')} carry a reason "
            "(recent handoffs count too, unlike in the SAL rate)"
            + (
                "; most frequent: "
                + ", ".join(f"{r['reason']} ({r['count']})" for r in top_reasons[:3])
                if top_reasons
                else ""
            ),
            {"with_reason": with_reason, "rejected": rejected.height, "top_reasons": top_reasons},
        ),
        "recycle_rate": MetricValue(
            "recycle_rate",
            _share(recycled, rejected.height),
            rejected.height,
            "share",
            labels["recycle_rate"],
            f"{recycled} of {plural(rejected.height, 'rejected lead')} recycled",
            {"recycled": recycled, "rejected": rejected.height},
        ),
    }


def routing(handoffs: pl.DataFrame, tables: CanonicalTables, config: OrgConfig) -> MetricValue:
    """Share of handoffs not routed to an active sales owner in time.

    A handoff assigned to a deactivated user, a queue or a marketing user is a
    routing failure, not a rep's SLA miss.
    """
    label = "Routing failures"
    reason = _missing_reason(tables, "stage_events", "users")
    if reason is None and handoffs.is_empty():
        reason = "no handoffs in the data"
    if reason:
        return MetricValue.not_measurable("routing_failure_rate", "share", label, reason)
    failed = int(handoffs["routing_failed"].sum())
    note = (
        f"{failed} of {plural(handoffs.height, 'handoff')} not routed to an active "
        f"sales owner within {config.sla.routing_hours:g} h"
    )
    if "owner_events" in tables.missing:
        note += "; no owner history, so the current owner stands in for the owner at handoff"
    failed_owners = (
        handoffs.filter(pl.col("routing_failed"))
        .group_by("routed_owner_id")
        .len()
        .sort(["len", "routed_owner_id"], descending=[True, False])
        .head(5)
    )
    return MetricValue(
        "routing_failure_rate",
        _share(failed, handoffs.height),
        handoffs.height,
        "share",
        label,
        note,
        {
            "failed": failed,
            "routing_hours": config.sla.routing_hours,
            "failed_owner_ids": [
                {"owner_id": o, "handoffs": n} for o, n in failed_owners.iter_rows()
            ],
        },
    )


def handoff_metrics(
    handoffs: pl.DataFrame, tables: CanonicalTables, config: OrgConfig
) -> Metrics:
    """Compute every handoff metric."""
    metrics: Metrics = {"handoff_count": handoff_count(handoffs, tables)}
    metrics.update(speed_to_lead(handoffs, tables, config))
    metrics.update(sla_compliance(handoffs, tables, config))
    metrics.update(sales_acceptance(handoffs, tables, config))
    metrics.update(rejection_quality(handoffs, tables))
    metrics["routing_failure_rate"] = routing(handoffs, tables, config)
    return metrics
