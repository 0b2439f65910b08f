"""The scorecard: five dimension scores, the overall score, band and benchmark.

:func:`build_scorecard` stages each dimension's levels from the metrics and
combines them with the survey. The overall score is the mean of the five dimension
scores, given only when all five are scored. The band, the segment verdict and the
next-step card of every weak dimension follow from it. A dimension's level is the
largest whole level its score reaches, so 2.7 is level 2 (Emerging).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from config.models import OrgConfig
from metrics.result import Metrics
from scoring.combine import (
    NO_SURVEY,
    Combined,
    SurveyEvidence,
    combine,
    round_score,
    survey_evidence,
)
from scoring.levels import MeasuredLevel, config_facts, measure_levels
from scoring.rubric import Band, Benchmark, Rubric, benchmark
from scoring.survey import SurveyResult


@dataclass(frozen=True)
class DimensionScore:
    """One dimension's final score with its evidence."""

    key: str
    name: str
    combined: Combined
    measured: MeasuredLevel
    survey: SurveyEvidence
    level: int | None
    level_name: str | None
    weak: bool
    card: str

    @property
    def score(self) -> float | None:
        """The final score, 1.0-5.0, or ``None`` when the dimension lacks data."""
        return self.combined.score

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "key": self.key,
            "name": self.name,
            "score": self.score,
            "level": self.level,
            "level_name": self.level_name,
            "source": self.combined.source,
            "confidence": self.combined.confidence,
            "confidence_reasons": list(self.combined.reasons),
            "weak": self.weak,
            "card": self.card if self.weak else None,
            "measured": self.measured.to_dict(),
            "survey": self.survey.to_dict(),
        }


@dataclass(frozen=True)
class Scorecard:
    """The whole scorecard; ``overall`` and ``band`` are ``None`` unless all five
    dimensions are scored, and ``missing`` then names the unscored ones."""

    dimensions: tuple[DimensionScore, ...]
    overall: float | None
    band: Band | None
    missing: tuple[str, ...]
    benchmark: Benchmark | None
    benchmark_note: str
    rubric_version: int

    @property
    def weak(self) -> tuple[DimensionScore, ...]:
        """Scored dimensions below the rubric's weak threshold."""
        return tuple(item for item in self.dimensions if item.weak)

    def dimension(self, key: str) -> DimensionScore:
        """Return one dimension by key; raises KeyError for an unknown key."""
        for item in self.dimensions:
            if item.key == key:
                return item
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        band = None
        if self.band is not None:
            band = {
                "name": self.band.name,
                "lower": self.band.lower,
                "meaning": self.band.meaning,
                "next_step": self.band.next_step,
            }
        return {
            "rubric_version": self.rubric_version,
            "overall": {
                "score": self.overall,
                "band": band,
                "missing": list(self.missing),
            },
            "benchmark": None if self.benchmark is None else self.benchmark.to_dict(),
            "benchmark_note": self.benchmark_note,
            "weak_dimensions": [
                {
                    "key": item.key,
                    "name": item.name,
                    "score": item.score,
                    "card": item.card,
                }
                for item in self.weak
            ],
            "dimensions": [item.to_dict() for item in self.dimensions],
        }


def build_scorecard(
    metrics: Metrics,
    *,
    survey: SurveyResult | None,
    config: OrgConfig,
    rubric: Rubric,
) -> Scorecard:
    """Score every dimension and the whole org.

    ``metrics`` are keyed by metric key; the config facts ``sla_configured`` and
    ``sla_alerts_configured`` are added from ``config`` unless ``metrics`` already
    contains them.
    """
    measured = measure_levels({**config_facts(config), **metrics}, rubric)
    evidence = _survey_evidence(survey, config.scoring.min_respondents)
    dimensions = tuple(
        _dimension_score(
            key, measured[key], evidence.get(key, NO_SURVEY), config, rubric
        )
        for key in rubric.dimensions
    )
    missing = tuple(item.key for item in dimensions if item.score is None)
    overall = None
    band = None
    if not missing:
        overall = round_score(
            sum(item.score or 0.0 for item in dimensions) / len(dimensions)
        )
        band = rubric.band_for(overall)
    verdict, note = _benchmark(rubric, config, overall)
    return Scorecard(dimensions, overall, band, missing, verdict, note, rubric.version)


def _survey_evidence(
    survey: SurveyResult | None, min_respondents: int
) -> dict[str, SurveyEvidence]:
    if survey is None:
        return {}
    return {
        row["dimension"]: survey_evidence(row["mean"], row["answers"], min_respondents)
        for row in survey.dimension_means().iter_rows(named=True)
    }


def _dimension_score(
    key: str,
    measured: MeasuredLevel,
    survey: SurveyEvidence,
    config: OrgConfig,
    rubric: Rubric,
) -> DimensionScore:
    dimension = rubric.dimensions[key]
    combined = combine(measured, survey, scoring=config.scoring, rule=rubric.confidence)
    level = None if combined.score is None else math.floor(combined.score)
    return DimensionScore(
        key=key,
        name=dimension.name,
        combined=combined,
        measured=measured,
        survey=survey,
        level=level,
        level_name=None if level is None else rubric.level_name(level),
        weak=combined.score is not None and combined.score < rubric.weak_below,
        card=dimension.card,
    )


def _benchmark(
    rubric: Rubric, config: OrgConfig, overall: float | None
) -> tuple[Benchmark | None, str]:
    if overall is None:
        return None, "no overall score, so no benchmark"
    result = benchmark(rubric, config, overall)
    if result is None:
        return None, "segment unknown: set org.segment or org.arr_usd in the org config"
    return result, ""
