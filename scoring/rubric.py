"""The alignment rubric as data: loading, validation, bands and segment benchmarks.

``config/rubric.yaml`` contains the dimensions, the criteria of every level, the
overall bands and the segment benchmarks. :func:`load_rubric` validates it with
pydantic and returns a :class:`Rubric`; an invalid file raises
:class:`~config.models.ConfigError` naming the key and the value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config import CONFIG_DIR
from config.models import SEGMENTS, ConfigError, OrgConfig

RUBRIC_PATH = CONFIG_DIR / "rubric.yaml"
DIMENSIONS = (
    "shared_definitions",
    "lead_handoff",
    "sla_compliance",
    "attribution",
    "strategic_planning",
)
LEVELS = (1, 2, 3, 4, 5)
Operator = Literal[">=", ">", "<", "<=", "=="]
Verdict = Literal["above good", "expected", "below alarm"]

# Metric keys that criteria may reference: the handoff metrics, the metric library's
# keys and the config facts. A criterion naming any other key is a typo.
KNOWN_METRICS = frozenset(
    {
        "handoff_count",
        "speed_to_lead_median_business_hours",
        "speed_to_lead_p90_business_hours",
        "speed_to_lead_median_calendar_hours",
        "sla_breach_rate",
        "sla_on_time_share",
        "untouched_share",
        "sal_rate",
        "decided_share",
        "undecided_share",
        "rejection_reason_share",
        "recycle_rate",
        "routing_failure_rate",
        "handoff_context_share",
        "score_coverage_at_handoff",
        "unmapped_status_share",
        "stage_order_violation_share",
        "attribution_coverage_share",
        "multi_touch_coverage_share",
        "influenced_pipeline_share",
        "target_account_list_present",
        "target_account_mql_share",
        "target_account_pipeline_share",
        "cadence_compliance_share",
        "mql_volume_vs_target",
        "funnel_mql_to_sal",
        "sla_configured",
        "sla_alerts_configured",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    """One observable condition of a level: ``metric op threshold``."""

    metric: str
    op: Operator
    threshold: float
    rationale: str = Field(min_length=1)
    proxy: bool = False

    @model_validator(mode="after")
    def _known_metric(self) -> Criterion:
        if self.metric not in KNOWN_METRICS:
            allowed = ", ".join(sorted(KNOWN_METRICS))
            msg = f"unknown metric {self.metric!r}; use one of: {allowed}"
            raise ValueError(msg)
        return self

    def holds(self, value: float) -> bool:
        """Return whether ``value`` meets the threshold (no tolerance is applied)."""
        if self.op == ">=":
            return value >= self.threshold
        if self.op == ">":
            return value > self.threshold
        if self.op == "<":
            return value < self.threshold
        if self.op == "<=":
            return value <= self.threshold
        return value == self.threshold

    def describe(self) -> str:
        """Return the condition as text, such as ``sal_rate >= 0.6``."""
        return f"{self.metric} {self.op} {self.threshold:g}"


class Level(_Strict):
    """A maturity level of one dimension, with the criteria that show it in data."""

    description: str = Field(min_length=1)
    criteria: tuple[Criterion, ...] = ()
    left_to_survey: str | None = None


class Dimension(_Strict):
    """One of the five rubric dimensions."""

    name: str
    measures: str
    question: str
    card: str
    levels: dict[int, Level]

    @model_validator(mode="after")
    def _five_levels(self) -> Dimension:
        if tuple(sorted(self.levels)) != LEVELS:
            msg = f"levels must be exactly 1 to 5, got {sorted(self.levels)!r}"
            raise ValueError(msg)
        if self.levels[1].criteria:
            msg = "level 1 is the floor and must have no criteria"
            raise ValueError(msg)
        for number in LEVELS[1:]:
            level = self.levels[number]
            if not level.criteria and not level.left_to_survey:
                msg = f"level {number} needs criteria or a `left_to_survey` note"
                raise ValueError(msg)
        return self


class Band(_Strict):
    """An overall maturity band; it starts at ``lower`` and runs to the next band."""

    name: str
    lower: float = Field(ge=1.0, le=5.0)
    meaning: str
    next_step: str


class Segment(_Strict):
    """A company segment by ARR, with its benchmark scores.

    The ARR range is half-open, ``[arr_min_usd, arr_max_usd)``; ``arr_max_usd`` is
    ``None`` for the largest segment.
    """

    name: str
    arr_min_usd: float = Field(ge=0)
    arr_max_usd: float | None = None
    expected: float
    good: float
    alarm: float

    @model_validator(mode="after")
    def _ordered(self) -> Segment:
        if not self.alarm < self.expected < self.good:
            msg = (
                f"thresholds must satisfy alarm < expected < good, got alarm "
                f"{self.alarm}, expected {self.expected}, good {self.good}"
            )
            raise ValueError(msg)
        return self


class ConfidenceRule(_Strict):
    """Population and respondent counts that grade a dimension's confidence."""

    medium_population: int = Field(ge=1)
    high_population: int = Field(ge=1)
    medium_respondents: int = Field(ge=1)


class Rubric(_Strict):
    """The whole rubric as read from ``config/rubric.yaml``."""

    version: int
    level_names: dict[int, str]
    weak_below: float
    perception_gap: float = Field(gt=0)
    claim_margin: float = Field(gt=0)
    confidence: ConfidenceRule
    dimensions: dict[str, Dimension]
    bands: tuple[Band, ...]
    segments: dict[str, Segment]

    @model_validator(mode="after")
    def _complete(self) -> Rubric:
        if tuple(sorted(self.level_names)) != LEVELS:
            msg = (
                f"level_names must name levels 1 to 5, got {sorted(self.level_names)!r}"
            )
            raise ValueError(msg)
        if set(self.dimensions) != set(DIMENSIONS):
            msg = f"dimensions must be exactly {DIMENSIONS!r}"
            raise ValueError(msg)
        lowers = [band.lower for band in self.bands]
        if not lowers or lowers[0] != 1.0 or lowers != sorted(set(lowers)):
            msg = f"band lower bounds must start at 1.0 and increase, got {lowers!r}"
            raise ValueError(msg)
        _check_segments(self.segments)
        return self

    def band_for(self, score: float) -> Band:
        """Return the overall band whose half-open interval contains ``score``.

        Raises:
            ValueError: ``score`` is outside 1.0-5.0.
        """
        if not 1.0 <= score <= 5.0:
            msg = f"overall score {score!r} is outside the rubric's range 1.0-5.0"
            raise ValueError(msg)
        return [band for band in self.bands if band.lower <= score][-1]

    def level_name(self, level: int) -> str:
        """Return the name of level 1-5, such as ``Defined`` for 3."""
        return self.level_names[level]


def _check_segments(segments: dict[str, Segment]) -> None:
    if set(segments) != set(SEGMENTS):
        msg = f"segments must be exactly {SEGMENTS!r}"
        raise ValueError(msg)
    ordered = sorted(segments.values(), key=lambda segment: segment.arr_min_usd)
    if ordered[0].arr_min_usd != 0 or ordered[-1].arr_max_usd is not None:
        msg = "segment ARR ranges must start at 0 and the last must have no maximum"
        raise ValueError(msg)
    for lower, upper in zip(ordered, ordered[1:], strict=False):
        if lower.arr_max_usd != upper.arr_min_usd:
            msg = (
                f"segment ARR ranges must meet: {lower.name!r} ends at "
                f"{lower.arr_max_usd}, {upper.name!r} starts at {upper.arr_min_usd}"
            )
            raise ValueError(msg)


def _describe_error(path: Path, error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    value = error.get("input")
    printable = isinstance(value, (str, int, float, bool))
    value_text = value if printable else type(value).__name__
    return f"{path}: key `{key}`: value {value_text!r}: {error['msg']}"


def load_rubric(path: Path | None = None) -> Rubric:
    """Read and validate a rubric file; ``None`` reads the built-in one.

    Raises:
        ConfigError: the file is unreadable, not YAML, or breaks a rule above.
    """
    path = RUBRIC_PATH if path is None else path
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"cannot read rubric {str(path)!r}: {exc.strerror}; check the path"
        raise ConfigError(msg) from None
    except yaml.YAMLError as exc:
        msg = f"{path}: invalid YAML: {exc}"
        raise ConfigError(msg) from None
    try:
        return Rubric.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(path, error) for error in exc.errors()]
        raise ConfigError("invalid rubric:\n" + "\n".join(lines)) from None


# Benchmarks


class Benchmark(BaseModel):
    """The overall score held against the org's segment."""

    model_config = ConfigDict(frozen=True)

    segment: str
    segment_name: str
    segment_from: Literal["org.segment", "org.arr_usd"]
    expected: float
    good: float
    alarm: float
    verdict: Verdict
    difference_from_expected: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return self.model_dump()


def segment_for(rubric: Rubric, config: OrgConfig) -> tuple[str, str] | None:
    """Return the org's segment key and where it came from, or ``None`` if unknown.

    ``org.segment`` wins over ``org.arr_usd``. ARR ranges are half-open, so exactly
    $5M is ``series_b_c`` and exactly $200M is ``enterprise_public``.
    """
    if config.org.segment is not None:
        return config.org.segment, "org.segment"
    arr = config.org.arr_usd
    if arr is None:
        return None
    for key, segment in rubric.segments.items():
        upper = math.inf if segment.arr_max_usd is None else segment.arr_max_usd
        if segment.arr_min_usd <= arr < upper:
            return key, "org.arr_usd"
    return None


def verdict_for(segment: Segment, score: float) -> Verdict:
    """Return the benchmark verdict of an overall score.

    A score at or above ``good`` is "above good"; at or below ``alarm`` it is
    "below alarm"; anything strictly between is "expected".
    """
    if score >= segment.good:
        return "above good"
    if score <= segment.alarm:
        return "below alarm"
    return "expected"


def benchmark(rubric: Rubric, config: OrgConfig, score: float) -> Benchmark | None:
    """Compare an overall score with the org's segment; ``None`` without a segment."""
    found = segment_for(rubric, config)
    if found is None:
        return None
    key, origin = found
    segment = rubric.segments[key]
    return Benchmark(
        segment=key,
        segment_name=segment.name,
        segment_from=origin,
        expected=segment.expected,
        good=segment.good,
        alarm=segment.alarm,
        verdict=verdict_for(segment, score),
        difference_from_expected=round(score - segment.expected, 2),
    )
