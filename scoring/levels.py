"""Staged levels: which rubric level the CRM data supports for each dimension.

A dimension reaches level N only when every criterion of levels 2..N holds. Level 1
is the floor. A criterion whose metric is missing or has no value is
"not_measurable": it neither passes nor fails, and it marks the dimension as limited
by data. A level is claimed from data only when at least one of its criteria passed
and none failed, so a level without any measurable criterion stops the measured
level below it. When level 2 can neither be claimed nor ruled out, the data shows
nothing and the measured level is ``None``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from config.models import OrgConfig
from metrics.result import WARNINGS_KEY, Metrics, MetricValue
from scoring.rubric import LEVELS, Criterion, Dimension, Rubric

Status = Literal["passed", "failed", "not_measurable"]
StopReason = Literal["failed", "not_measurable", "survey_only"]


@dataclass(frozen=True)
class CriterionResult:
    """One criterion checked against the metric value behind it."""

    level: int
    criterion: Criterion
    status: Status
    value: float | None
    population: int
    unit: str
    note: str = ""
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "level": self.level,
            "metric": self.criterion.metric,
            "op": self.criterion.op,
            "threshold": self.criterion.threshold,
            "condition": self.criterion.describe(),
            "status": self.status,
            "value": self.value,
            "population": self.population,
            "unit": self.unit,
            "proxy": self.criterion.proxy,
            "rationale": self.criterion.rationale,
            "note": self.note,
            "data_quality_warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class MeasuredLevel:
    """The level that the data supports for one dimension, and why it stops there.

    ``stopped_at`` is the first level not reached (``None`` when level 5 is
    reached); ``stop_reason`` gives the reason: a failed criterion (listed in
    ``held_by``), no measurable criterion, or a level that only the survey can
    show. ``unmeasured`` lists the not-measurable criteria of the levels reached,
    plus those of the stopping level when it stopped for lack of data.
    """

    dimension: str
    level: int | None
    criteria: tuple[CriterionResult, ...]
    stopped_at: int | None
    stop_reason: StopReason | None
    held_by: tuple[CriterionResult, ...]
    unmeasured: tuple[CriterionResult, ...]

    @property
    def limited_by_data(self) -> bool:
        """Whether a not-measurable criterion limits what the data can show."""
        return bool(self.unmeasured)

    @property
    def measurable(self) -> tuple[CriterionResult, ...]:
        """Criteria with a metric value, passed or failed."""
        return tuple(item for item in self.criteria if item.status != "not_measurable")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "level": self.level,
            "stopped_at": self.stopped_at,
            "stop_reason": self.stop_reason,
            "held_by": [item.criterion.describe() for item in self.held_by],
            "limited_by_data": self.limited_by_data,
            "unmeasured": [item.criterion.describe() for item in self.unmeasured],
            "criteria": [item.to_dict() for item in self.criteria],
        }


SLA_ALERT_METRICS = frozenset(
    {"sla_breach_rate", "sla_on_time_share", "speed_to_lead_median_business_hours"}
)


def config_facts(config: OrgConfig) -> Metrics:
    """Return the org config facts that criteria read like metrics.

    ``sla_configured`` is 1.0 when the config file sets an ``sla`` section, and the
    built-in default does not count. ``sla_alerts_configured`` is 1.0 when the
    config states that breaches already alert someone (``alerting.sla_breach_alerts``),
    or when revalign's own alerts have a channel and a rule on an SLA metric.
    """
    sla_set = "sla" in config.model_fields_set
    own_alerts = bool(config.alerts.channels) and any(
        rule.metric in SLA_ALERT_METRICS for rule in config.alerts.rules
    )
    alerts = config.alerting.sla_breach_alerts or own_alerts
    return {
        "sla_configured": _flag("sla_configured", sla_set, "SLA set in the org config"),
        "sla_alerts_configured": _flag(
            "sla_alerts_configured", alerts, "SLA breach alerts switched on"
        ),
    }


def _flag(key: str, value: bool, label: str) -> MetricValue:
    return MetricValue(
        key=key, value=1.0 if value else 0.0, population=1, unit="flag", label=label
    )


def check_criterion(
    level: int, criterion: Criterion, metrics: Metrics
) -> CriterionResult:
    """Check one criterion; a missing metric or a None/NaN value is not measurable."""
    metric = metrics.get(criterion.metric)
    if metric is None:
        return CriterionResult(
            level, criterion, "not_measurable", None, 0, "", "metric not computed"
        )
    value = metric.value
    if value is None or math.isnan(value):
        note = metric.note or "no value"
        return CriterionResult(
            level,
            criterion,
            "not_measurable",
            None,
            metric.population,
            metric.unit,
            note,
        )
    status: Status = "passed" if criterion.holds(value) else "failed"
    warnings = tuple(metric.details.get(WARNINGS_KEY, ()))
    return CriterionResult(
        level,
        criterion,
        status,
        value,
        metric.population,
        metric.unit,
        metric.note,
        warnings,
    )


def measure_dimension(
    key: str, dimension: Dimension, metrics: Metrics
) -> MeasuredLevel:
    """Stage one dimension's levels against the metrics."""
    results = tuple(
        check_criterion(number, criterion, metrics)
        for number in LEVELS[1:]
        for criterion in dimension.levels[number].criteria
    )
    reached, stopped_at, reason, held_by = _stage(results)
    last = stopped_at if reason == "not_measurable" and stopped_at else reached
    unmeasured = tuple(
        item
        for item in results
        if item.status == "not_measurable" and item.level <= last
    )
    level: int | None = reached
    if stopped_at == 2 and reason != "failed":
        level = None
    return MeasuredLevel(key, level, results, stopped_at, reason, held_by, unmeasured)


def _stage(
    results: tuple[CriterionResult, ...],
) -> tuple[int, int | None, StopReason | None, tuple[CriterionResult, ...]]:
    reached = 1
    for number in LEVELS[1:]:
        at_level = [item for item in results if item.level == number]
        failed = tuple(item for item in at_level if item.status == "failed")
        if failed:
            return reached, number, "failed", failed
        if not any(item.status == "passed" for item in at_level):
            reason: StopReason = "not_measurable" if at_level else "survey_only"
            return reached, number, reason, ()
        reached = number
    return reached, None, None, ()


def measure_levels(metrics: Metrics, rubric: Rubric) -> dict[str, MeasuredLevel]:
    """Stage every dimension of the rubric; keys follow the rubric's order."""
    return {
        key: measure_dimension(key, dimension, metrics)
        for key, dimension in rubric.dimensions.items()
    }
