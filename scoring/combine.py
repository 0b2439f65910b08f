"""Combination of the measured level and the survey into one dimension score.

Rules, in order:

- The survey counts for a dimension only when at least
  ``config.scoring.min_respondents`` respondents answered it.
- Both measured level and counted survey: the score is
  ``w * measured + (1 - w) * survey mean`` with ``w = config.scoring.measured_weight``
  (source "blended"). A weight of 1 or 0 leaves only one source, named as such.
- Only one of them: that one is the score (source "measured" or "self-reported").
- Neither: no score (source "lacking data").

Confidence of measured evidence comes from the smallest population among the
measured criteria of levels 2 up to the stopping level (config flags have no
population). It is "low" below the rubric's ``medium_population``, "high" from
``high_population`` and "medium" in between or when only flags were checked. A
dimension limited by data is at most "medium". Survey evidence is "medium" with
at least ``medium_respondents`` answers and "low" below that. It is never "high",
because nobody checked it against data. A blended score takes the higher of the
two. Last, a data-quality gate warning on the input of a metric the measured
level relies on lowers the dimension's confidence one step ("high" to "medium",
"medium" to "low").

Scores are rounded half-up to two decimals, the precision the scorecard prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from config.models import ScoringConfig
from scoring.levels import CriterionResult, MeasuredLevel
from scoring.rubric import ConfidenceRule

Source = Literal["measured", "self-reported", "blended", "lacking data"]
Confidence = Literal["low", "medium", "high"]
_RANK: dict[Confidence, int] = {"low": 0, "medium": 1, "high": 2}


@dataclass(frozen=True)
class SurveyEvidence:
    """A dimension's survey mean, its answer count and whether it counts."""

    mean: float | None
    answers: int
    counted: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        mean = None if self.mean is None else round_score(self.mean)
        return {"mean": mean, "answers": self.answers, "counted": self.counted}


NO_SURVEY = SurveyEvidence(mean=None, answers=0, counted=False)


@dataclass(frozen=True)
class Combined:
    """A dimension's final score with where it came from and how sure it is."""

    score: float | None
    source: Source
    confidence: Confidence | None
    reasons: tuple[str, ...]


def round_score(value: float) -> float:
    """Round half-up to two decimals (2.445 -> 2.45), ignoring float noise."""
    exact = Decimal(repr(round(value, 9)))
    return float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def survey_evidence(
    mean: float | None, answers: int, min_respondents: int
) -> SurveyEvidence:
    """Wrap a dimension's survey summary; it counts with ``min_respondents`` answers."""
    counted = mean is not None and answers >= min_respondents
    return SurveyEvidence(mean=mean, answers=answers, counted=counted)


def combine(
    measured: MeasuredLevel,
    survey: SurveyEvidence,
    *,
    scoring: ScoringConfig,
    rule: ConfidenceRule,
) -> Combined:
    """Combine one dimension's measured level and survey evidence (rules above)."""
    weight = scoring.measured_weight
    use_measured = measured.level is not None and not (survey.counted and weight == 0)
    use_survey = survey.counted and not (measured.level is not None and weight == 1)
    if use_measured and use_survey:
        assert measured.level is not None and survey.mean is not None
        score = weight * measured.level + (1 - weight) * survey.mean
        level_conf, level_reasons = measured_confidence(measured, rule)
        survey_conf, survey_reasons = survey_confidence(survey, rule)
        confidence = max(level_conf, survey_conf, key=_RANK.__getitem__)
        confidence, warned = _lower_for_warnings(confidence, measured)
        reasons = (
            f"measured weight {weight:g}",
            *level_reasons,
            *warned,
            *survey_reasons,
        )
        return Combined(round_score(score), "blended", confidence, reasons)
    if use_measured:
        assert measured.level is not None
        confidence, reasons = measured_confidence(measured, rule)
        confidence, warned = _lower_for_warnings(confidence, measured)
        return Combined(
            float(measured.level), "measured", confidence, (*reasons, *warned)
        )
    if use_survey:
        assert survey.mean is not None
        confidence, reasons = survey_confidence(survey, rule)
        return Combined(round_score(survey.mean), "self-reported", confidence, reasons)
    return Combined(None, "lacking data", None, _lacking_reasons(survey, scoring))


def measured_confidence(
    measured: MeasuredLevel, rule: ConfidenceRule
) -> tuple[Confidence, tuple[str, ...]]:
    """Grade the measured evidence of one dimension (rule in the module docstring)."""
    relied_on = _relied_on(measured)
    populations = [item.population for item in relied_on if item.unit != "flag"]
    reasons: list[str] = []
    confidence: Confidence = "medium"
    if populations:
        smallest = min(populations)
        reasons.append(f"smallest population {smallest}")
        if smallest < rule.medium_population:
            confidence = "low"
        elif smallest >= rule.high_population:
            confidence = "high"
    else:
        reasons.append("only config flags checked")
    if measured.limited_by_data:
        count = len(measured.unmeasured)
        noun = "criterion" if count == 1 else "criteria"
        reasons.append(f"limited by data: {count} {noun} not measurable")
        if confidence == "high":
            confidence = "medium"
    return confidence, tuple(reasons)


def _relied_on(measured: MeasuredLevel) -> list[CriterionResult]:
    """Return the measured criteria of the levels up to the stopping level."""
    last = measured.stopped_at or 5
    return [item for item in measured.measurable if item.level <= last]


def _lower_for_warnings(
    confidence: Confidence, measured: MeasuredLevel
) -> tuple[Confidence, tuple[str, ...]]:
    """Lower ``confidence`` one step when gate warnings concern a relied-on metric."""
    warned = sorted(
        {item.criterion.metric for item in _relied_on(measured) if item.warnings}
    )
    if not warned:
        return confidence, ()
    lowered: Confidence = "medium" if confidence == "high" else "low"
    return lowered, (f"data-quality warnings on the input of {', '.join(warned)}",)


def survey_confidence(
    survey: SurveyEvidence, rule: ConfidenceRule
) -> tuple[Confidence, tuple[str, ...]]:
    """Grade survey evidence: medium with enough answers, else low; never high."""
    confidence: Confidence = (
        "medium" if survey.answers >= rule.medium_respondents else "low"
    )
    return confidence, (f"{survey.answers} survey answers",)


def _lacking_reasons(survey: SurveyEvidence, scoring: ScoringConfig) -> tuple[str, ...]:
    reasons = ["the CRM data neither reaches nor rules out level 2"]
    if survey.mean is None:
        reasons.append("no survey answers")
    else:
        reasons.append(
            f"only {survey.answers} survey answers, fewer than the "
            f"{scoring.min_respondents} required"
        )
    return tuple(reasons)
