"""The audit: what teams say about themselves held against what the data shows.

Per dimension, the survey mean (all respondents, and each team on its own) is
compared with the measured level:

- "over-claim": self-reported >= measured + the rubric's ``claim_margin``, when the
  data ruled out the next level through a failed criterion;
- "unverifiable": the same gap, but the data stopped below the next level only for
  lack of evidence (nothing measurable, or a level only the survey can show), so
  the claim can be neither confirmed nor refuted;
- "under-claim": self-reported <= measured - ``claim_margin``;
- "consistent" otherwise; "not measured" without a measured level; "no answers"
  without survey answers.

A perception gap is sales and marketing mean ratings ``perception_gap`` or more
apart on one dimension. Red flags are the rubric's warning signs that the data can
show; a flag whose metrics are absent is skipped, except the one about missing
speed-to-lead data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import polars as pl

from config.models import OrgConfig
from metrics.result import Metrics, MetricValue
from scoring.levels import MeasuredLevel, config_facts, measure_levels
from scoring.rubric import Rubric
from scoring.survey import TEAMS, SurveyResult

ClaimVerdict = Literal[
    "over-claim",
    "under-claim",
    "consistent",
    "unverifiable",
    "not measured",
    "no answers",
]

# A trend needs this many months present in both series.
TREND_MIN_MONTHS = 4
# MQL volume is "up" when the later half's mean is 10% or more above the earlier one.
MQL_RISE = 0.10
# SAL rate is "falling" when the later half's mean is at least 5 points below.
SAL_FALL = 0.05
# An SLA is "breached most of the time" above this breach rate.
SLA_BREACH_MOST = 0.5


@dataclass(frozen=True)
class ClaimCheck:
    """One group's self-rating of a dimension against the measured level."""

    group: str
    self_reported: float | None
    answers: int
    verdict: ClaimVerdict


@dataclass(frozen=True)
class DimensionAudit:
    """The audit of one dimension: all respondents, each team, perception gap."""

    key: str
    name: str
    measured_level: int | None
    stop_reason: str | None
    everyone: ClaimCheck
    teams: tuple[ClaimCheck, ...]
    sales: float | None
    marketing: float | None
    gap: float | None
    perception_gap: bool

    def team(self, name: str) -> ClaimCheck | None:
        """Return one team's check, or ``None`` when the team gave no answer."""
        return next((check for check in self.teams if check.group == name), None)


@dataclass(frozen=True)
class RedFlag:
    """A warning sign seen in the data, with the values behind it."""

    key: str
    dimension: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Audit:
    """The audit of all five dimensions and the red flags."""

    dimensions: tuple[DimensionAudit, ...]
    red_flags: tuple[RedFlag, ...]
    respondents: int

    def dimension(self, key: str) -> DimensionAudit:
        """Return one dimension's audit; raises KeyError for an unknown key."""
        for item in self.dimensions:
            if item.key == key:
                return item
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :meth:`from_dict` reads it back."""
        return {
            "respondents": self.respondents,
            "dimensions": [asdict(item) for item in self.dimensions],
            "red_flags": [asdict(item) for item in self.red_flags],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Audit:
        """Rebuild an audit from :meth:`to_dict` output (a scorecard document's)."""
        dimensions = tuple(
            DimensionAudit(
                **{
                    **item,
                    "everyone": ClaimCheck(**item["everyone"]),
                    "teams": tuple(ClaimCheck(**team) for team in item["teams"]),
                }
            )
            for item in data["dimensions"]
        )
        flags = tuple(RedFlag(**flag) for flag in data["red_flags"])
        return cls(dimensions, flags, data["respondents"])


def build_audit(
    metrics: Metrics,
    *,
    survey: SurveyResult | None,
    config: OrgConfig,
    rubric: Rubric,
) -> Audit:
    """Audit self-ratings against measured levels and look for red flags."""
    facts = {**config_facts(config), **metrics}
    measured = measure_levels(facts, rubric)
    means = _group_means(survey)
    gaps = _gaps(survey, rubric)
    dimensions = tuple(
        _audit_dimension(key, rubric, measured[key], means, gaps.get(key, {}))
        for key in rubric.dimensions
    )
    respondents = 0 if survey is None else survey.respondents
    return Audit(dimensions, tuple(red_flags(facts)), respondents)


def claim_verdict(
    self_reported: float | None, measured: MeasuredLevel, margin: float
) -> ClaimVerdict:
    """Classify one self-rating against a measured level (rules in the docstring)."""
    if self_reported is None:
        return "no answers"
    if measured.level is None:
        return "not measured"
    rating = round(self_reported, 9)
    if rating >= measured.level + margin:
        return "over-claim" if measured.stop_reason == "failed" else "unverifiable"
    if rating <= measured.level - margin:
        return "under-claim"
    return "consistent"


def _group_means(
    survey: SurveyResult | None,
) -> dict[tuple[str, str], tuple[float, int]]:
    """Return (dimension, group) -> (mean, answers); group is "all" or a team."""
    if survey is None:
        return {}
    everyone = survey.dimension_means().filter(pl.col("answers") > 0)
    means = {
        (row["dimension"], "all"): (row["mean"], row["answers"])
        for row in everyone.iter_rows(named=True)
    }
    for row in survey.team_ratings().iter_rows(named=True):
        means[(row["dimension"], row["team"])] = (row["mean"], row["answers"])
    return means


def _gaps(survey: SurveyResult | None, rubric: Rubric) -> dict[str, dict[str, Any]]:
    if survey is None:
        return {}
    gaps = survey.perception_gaps(rubric.perception_gap)
    return {row["dimension"]: row for row in gaps.iter_rows(named=True)}


def _audit_dimension(
    key: str,
    rubric: Rubric,
    measured: MeasuredLevel,
    means: dict[tuple[str, str], tuple[float, int]],
    gap: dict[str, Any],
) -> DimensionAudit:
    def check(group: str) -> ClaimCheck:
        mean, answers = means.get((key, group), (None, 0))
        return ClaimCheck(
            group, mean, answers, claim_verdict(mean, measured, rubric.claim_margin)
        )

    teams = tuple(check(team) for team in TEAMS if (key, team) in means)
    return DimensionAudit(
        key=key,
        name=rubric.dimensions[key].name,
        measured_level=measured.level,
        stop_reason=measured.stop_reason,
        everyone=check("all"),
        teams=teams,
        sales=gap.get("sales"),
        marketing=gap.get("marketing"),
        gap=gap.get("gap"),
        perception_gap=bool(gap.get("flagged", False)),
    )


# Red flags


def red_flags(metrics: Metrics) -> list[RedFlag]:
    """Return the red flags the metrics show; config facts must be merged in."""
    flags = [
        _no_speed_to_lead(metrics),
        _sla_breached(metrics),
        _sla_unmeasured(metrics),
        _mql_up_sal_down(metrics),
    ]
    return [flag for flag in flags if flag is not None]


def _value(metrics: Metrics, key: str) -> float | None:
    metric = metrics.get(key)
    return None if metric is None else metric.value


def _no_speed_to_lead(metrics: Metrics) -> RedFlag | None:
    if _value(metrics, "speed_to_lead_median_business_hours") is not None:
        return None
    metric = metrics.get("speed_to_lead_median_business_hours")
    reason = "metric not computed" if metric is None else metric.note or "no value"
    return RedFlag(
        "no_speed_to_lead_data",
        "lead_handoff",
        f"No speed-to-lead data: the time from handoff to first sales touch is not "
        f"measurable ({reason}).",
        {"reason": reason},
    )


def _sla_breached(metrics: Metrics) -> RedFlag | None:
    breach = _value(metrics, "sla_breach_rate")
    if _value(metrics, "sla_configured") != 1.0 or breach is None:
        return None
    if breach <= SLA_BREACH_MOST:
        return None
    population = metrics["sla_breach_rate"].population
    return RedFlag(
        "sla_breached_most_of_the_time",
        "sla_compliance",
        f"The SLA is set but breached on {breach:.0%} of {population} due handoffs.",
        {"sla_breach_rate": breach, "population": population},
    )


def _sla_unmeasured(metrics: Metrics) -> RedFlag | None:
    if _value(metrics, "sla_configured") != 1.0:
        return None
    if (
        "sla_breach_rate" not in metrics
        or _value(metrics, "sla_breach_rate") is not None
    ):
        return None
    return RedFlag(
        "sla_not_measured",
        "sla_compliance",
        "The SLA is set but its breach rate cannot be measured from the data: "
        f"{metrics['sla_breach_rate'].note or 'no value'}.",
        {"reason": metrics["sla_breach_rate"].note},
    )


def monthly_series(metric: MetricValue | None, name: str) -> pl.DataFrame | None:
    """Return a metric's ``details["monthly"]`` as a (month, ``name``) frame.

    Accepted shapes: a mapping of ``"YYYY-MM"`` to value, or a list of
    ``{"month": ..., "value": ...}`` records. Returns ``None`` when absent.
    """
    if metric is None:
        return None
    monthly = metric.details.get("monthly")
    if isinstance(monthly, dict):
        monthly = [{"month": month, "value": value} for month, value in monthly.items()]
    if not isinstance(monthly, list) or not monthly:
        return None
    frame = pl.DataFrame(monthly, schema={"month": pl.String, "value": pl.Float64})
    return frame.rename({"value": name}).drop_nulls()


def _mql_up_sal_down(metrics: Metrics) -> RedFlag | None:
    mql = monthly_series(metrics.get("mql_volume_vs_target"), "mql")
    sal = monthly_series(metrics.get("sal_rate"), "sal")
    if mql is None or sal is None:
        return None
    both = mql.join(sal, on="month").sort("month")
    if both.height < TREND_MIN_MONTHS:
        return None
    half = both.height // 2
    earlier = both.head(half).select(pl.col("mql", "sal").mean()).row(0)
    later = both.tail(half).select(pl.col("mql", "sal").mean()).row(0)
    # Rounded to 9 decimals so that a change of exactly 10% or 5 points counts.
    rising = round(later[0] - earlier[0] * (1 + MQL_RISE), 9) >= 0
    falling = round(earlier[1] - later[1], 9) >= SAL_FALL
    if not (rising and falling):
        return None
    return RedFlag(
        "mql_up_sal_down",
        "lead_handoff",
        f"MQL volume rose ({earlier[0]:.3g} to {later[0]:.3g}) while the SAL rate "
        f"fell ({earlier[1]:.0%} to {later[1]:.0%}) over {both.height} months.",
        {
            "months": both.height,
            "mql": [earlier[0], later[0]],
            "sal_rate": [earlier[1], later[1]],
        },
    )
