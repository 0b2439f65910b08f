"""Tests of staged levels, the combination with the survey and the scorecard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from config.models import OrgConfig
from metrics.result import Metrics, MetricValue
from scoring.combine import round_score
from scoring.levels import config_facts, measure_dimension
from scoring.rubric import load_rubric
from scoring.scorecard import build_scorecard
from scoring.survey import read_survey
from tests.conftest import CASES_DIR

RUBRIC = load_rubric()
VALID_SURVEY = CASES_DIR / "survey-errors" / "valid.csv"


def _metrics(population: int = 200, **values: float | None) -> Metrics:
    return {
        key: MetricValue(
            key=key, value=value, population=population, unit="share", label=key
        )
        for key, value in values.items()
    }


def _handoff(**values: float | None):  # noqa: ANN202
    return measure_dimension(
        "lead_handoff", RUBRIC.dimensions["lead_handoff"], _metrics(**values)
    )


HANDOFF_LEVEL3 = {
    "routing_failure_rate": 0.1,
    "speed_to_lead_median_business_hours": 3.0,
    "handoff_context_share": 0.9,
}
HANDOFF_LEVEL4 = {**HANDOFF_LEVEL3, "rejection_reason_share": 0.9, "recycle_rate": 0.1}


def test_sal_gap_held_at_2() -> None:
    result = _handoff(**HANDOFF_LEVEL3, sal_rate=0.55)
    assert result.level == 2
    assert result.stopped_at == 3
    assert result.stop_reason == "failed"
    assert [item.criterion.describe() for item in result.held_by] == ["sal_rate >= 0.6"]
    assert result.held_by[0].value == 0.55


@pytest.mark.parametrize(
    ("sal_rate", "level"),
    [
        pytest.param(0.50, 2, id="0.50"),
        pytest.param(0.5999, 2, id="0.5999"),
        pytest.param(0.60, 3, id="0.60"),
        pytest.param(0.7499, 3, id="0.7499"),
        pytest.param(0.75, 4, id="0.75"),
        pytest.param(0.85, 4, id="0.85-strict"),
        pytest.param(0.8501, 5, id="0.8501"),
    ],
)
def test_sal_rate_bands(sal_rate: float, level: int) -> None:
    metrics = {**HANDOFF_LEVEL4, "speed_to_lead_median_business_hours": 0.5}
    assert _handoff(**metrics, sal_rate=sal_rate).level == level


def test_speed_to_lead_4h_fails() -> None:
    metrics = {**HANDOFF_LEVEL3, "speed_to_lead_median_business_hours": 4.0}
    result = _handoff(**metrics, sal_rate=0.7)
    assert result.level == 2
    assert [item.criterion.metric for item in result.held_by] == [
        "speed_to_lead_median_business_hours"
    ]


def test_limited_by_data() -> None:
    metrics = {**HANDOFF_LEVEL3, "handoff_context_share": None}
    result = _handoff(**metrics, sal_rate=0.65)
    context = [
        item
        for item in result.criteria
        if item.criterion.metric == "handoff_context_share"
    ]
    assert result.level == 3
    assert result.limited_by_data is True
    assert context[0].status == "not_measurable"
    assert result.stop_reason == "failed"
    assert result.stopped_at == 4
    assert result.unmeasured == tuple(context)


def test_not_computed_note() -> None:
    result = _handoff(routing_failure_rate=0.1)
    sal = [item for item in result.criteria if item.criterion.metric == "sal_rate"]
    assert sal[0].note == "metric not computed"
    assert sal[0].population == 0


def test_nan_not_measurable() -> None:
    result = _handoff(routing_failure_rate=math.nan)
    assert result.level is None
    assert result.criteria[0].status == "not_measurable"


def test_level_without_measurable_criterion() -> None:
    metrics = _metrics(mql_volume_vs_target=0.6)
    planning = RUBRIC.dimensions["strategic_planning"]
    result = measure_dimension("strategic_planning", planning, metrics)
    assert result.level == 2
    assert result.stopped_at == 3
    assert result.stop_reason == "not_measurable"
    assert result.limited_by_data is True


def test_nothing_measurable() -> None:
    result = measure_dimension("attribution", RUBRIC.dimensions["attribution"], {})
    assert result.level is None
    assert result.stopped_at == 2


def test_failed_level2_is_level1() -> None:
    result = _handoff(routing_failure_rate=0.8)
    assert result.level == 1
    assert result.stop_reason == "failed"


def test_survey_only_ceiling() -> None:
    metrics = _metrics(
        unmapped_status_share=0.0,
        stage_order_violation_share=0.01,
        score_coverage_at_handoff=0.9,
    )
    result = measure_dimension(
        "shared_definitions", RUBRIC.dimensions["shared_definitions"], metrics
    )
    assert result.level == 4
    assert result.stopped_at == 5
    assert result.stop_reason == "survey_only"
    assert result.limited_by_data is False


def test_config_facts_default() -> None:
    facts = config_facts(OrgConfig())
    assert facts["sla_configured"].value == 0.0
    assert facts["sla_alerts_configured"].value == 0.0


def test_config_facts_set() -> None:
    config = OrgConfig.model_validate(
        {"sla": {"speed_to_lead_hours": 2}, "alerting": {"sla_breach_alerts": True}}
    )
    facts = config_facts(config)
    assert facts["sla_configured"].value == 1.0
    assert facts["sla_alerts_configured"].value == 1.0


def test_config_facts_own_sla_alert_rule() -> None:
    config = OrgConfig.model_validate(
        {
            "alerts": {
                "channels": [{"webhook_url_env": "REVOPS_WEBHOOK"}],
                "rules": [{"id": "breaches", "metric": "sla_breach_rate", "above": 0.2}],
            }
        }
    )
    assert config_facts(config)["sla_alerts_configured"].value == 1.0


def test_config_facts_alert_rule_without_channel() -> None:
    config = OrgConfig.model_validate(
        {"alerts": {"rules": [{"id": "breaches", "metric": "sla_breach_rate", "above": 0.2}]}}
    )
    assert config_facts(config)["sla_alerts_configured"].value == 0.0


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        pytest.param(2.525, 2.53, id="half-up"),
        pytest.param(2.445, 2.45, id="binary-half"),
        pytest.param(2.4450000000000003, 2.45, id="noise"),
        pytest.param(3.3333333, 3.33, id="third"),
    ],
)
def test_round_score(value: float, rounded: float) -> None:
    assert round_score(value) == rounded


def _config(**scoring: float) -> OrgConfig:
    return OrgConfig.model_validate(
        {"org": {"segment": "series_b_c"}, "scoring": scoring}
    )


def test_blended_arithmetic() -> None:
    # Measured level 2 (SAL 0.55); valid.csv has four lead_handoff answers 4, 4, 3, 4
    # with mean 3.75. 0.6 * 2 + 0.4 * 3.75 = 1.2 + 1.5 = 2.7.
    card = build_scorecard(
        _metrics(**HANDOFF_LEVEL3, sal_rate=0.55),
        survey=read_survey(VALID_SURVEY),
        config=_config(measured_weight=0.6, min_respondents=3),
        rubric=RUBRIC,
    )
    handoff = card.dimension("lead_handoff")
    assert handoff.combined.source == "blended"
    assert handoff.score == 2.7
    assert handoff.level == 2
    assert handoff.level_name == "Emerging"
    assert handoff.weak is True


def test_blended_default_weight() -> None:
    # 0.7 * 2 + 0.3 * 3.75 = 2.525, rounded half-up to 2.53.
    card = build_scorecard(
        _metrics(**HANDOFF_LEVEL3, sal_rate=0.55),
        survey=read_survey(VALID_SURVEY),
        config=_config(),
        rubric=RUBRIC,
    )
    assert card.dimension("lead_handoff").score == 2.53


def test_survey_below_min_respondents() -> None:
    card = build_scorecard(
        _metrics(**HANDOFF_LEVEL3, sal_rate=0.55),
        survey=read_survey(VALID_SURVEY),
        config=_config(min_respondents=5),
        rubric=RUBRIC,
    )
    handoff = card.dimension("lead_handoff")
    assert handoff.combined.source == "measured"
    assert handoff.score == 2.0
    assert handoff.survey.counted is False
    assert handoff.survey.answers == 4


@pytest.mark.parametrize(
    ("weight", "source", "score"),
    [
        pytest.param(1.0, "measured", 2.0, id="measured-only"),
        pytest.param(0.0, "self-reported", 3.75, id="survey-only"),
    ],
)
def test_extreme_weights(weight: float, source: str, score: float) -> None:
    card = build_scorecard(
        _metrics(**HANDOFF_LEVEL3, sal_rate=0.55),
        survey=read_survey(VALID_SURVEY),
        config=_config(measured_weight=weight),
        rubric=RUBRIC,
    )
    handoff = card.dimension("lead_handoff")
    assert handoff.combined.source == source
    assert handoff.score == score


def test_self_reported_low_confidence() -> None:
    card = build_scorecard(
        {}, survey=read_survey(VALID_SURVEY), config=_config(), rubric=RUBRIC
    )
    definitions = card.dimension("shared_definitions")
    assert definitions.combined.source == "self-reported"
    assert definitions.score == 3.0
    assert definitions.combined.confidence == "low"
    assert definitions.combined.reasons == ("5 survey answers",)


@pytest.mark.parametrize(
    ("population", "confidence"),
    [
        pytest.param(29, "low", id="29"),
        pytest.param(30, "medium", id="30"),
        pytest.param(99, "medium", id="99"),
        pytest.param(100, "high", id="100"),
    ],
)
def test_measured_confidence(population: int, confidence: str) -> None:
    metrics = _metrics(population, **HANDOFF_LEVEL3, sal_rate=0.55)
    card = build_scorecard(metrics, survey=None, config=_config(), rubric=RUBRIC)
    assert card.dimension("lead_handoff").combined.confidence == confidence


def test_limited_by_data_caps_confidence() -> None:
    metrics = _metrics(
        **{**HANDOFF_LEVEL3, "handoff_context_share": None}, sal_rate=0.65
    )
    card = build_scorecard(metrics, survey=None, config=_config(), rubric=RUBRIC)
    handoff = card.dimension("lead_handoff")
    assert handoff.combined.confidence == "medium"
    assert "limited by data: 1 criterion not measurable" in handoff.combined.reasons


def test_lacking_data() -> None:
    card = build_scorecard({}, survey=None, config=_config(), rubric=RUBRIC)
    assert card.overall is None
    assert card.band is None
    assert card.benchmark is None
    assert card.missing == (
        "shared_definitions",
        "lead_handoff",
        "sla_compliance",
        "attribution",
        "strategic_planning",
    )
    assert card.dimension("attribution").combined.source == "lacking data"


def _survey_file(tmp_path: Path, means: dict[str, tuple[int, ...]]) -> Path:
    """Write a survey where each dimension's four answers are given per dimension."""
    header = "respondent_id,team,answered_on," + ",".join(means)
    rows = [
        f"r{index},sales,2025-06-20,"
        + ",".join(str(means[key][index]) for key in means)
        for index in range(4)
    ]
    path = tmp_path / "survey.csv"
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


# Four answers per dimension: (2, 2, 1, 2) has mean 1.75, (5, 5, 5, 4) 4.75 and
# (5, 5, 4, 4) 4.5, so the five means add up to the overall scores below.
MEAN_175 = (2, 2, 1, 2)
MEAN_2 = (2, 2, 2, 2)
MEAN_45 = (5, 5, 4, 4)
MEAN_475 = (5, 5, 5, 4)


@pytest.mark.parametrize(
    ("answers", "overall", "band"),
    [
        pytest.param(
            (MEAN_175, MEAN_2, MEAN_2, MEAN_2, MEAN_2), 1.95, "Critical", id="1.95"
        ),
        pytest.param((MEAN_2,) * 5, 2.0, "Developing", id="2.0"),
        pytest.param((MEAN_45,) * 5, 4.5, "Advanced", id="4.5"),
        pytest.param((MEAN_475,) + (MEAN_45,) * 4, 4.55, "Advanced", id="4.55"),
        pytest.param((MEAN_475,) * 2 + (MEAN_45,) * 3, 4.6, "Best-in-class", id="4.6"),
    ],
)
def test_overall_band_boundaries(
    tmp_path: Path, answers: tuple[tuple[int, ...], ...], overall: float, band: str
) -> None:
    keys = tuple(RUBRIC.dimensions)
    survey = read_survey(_survey_file(tmp_path, dict(zip(keys, answers, strict=True))))
    card = build_scorecard({}, survey=survey, config=_config(), rubric=RUBRIC)
    assert card.overall == overall
    assert card.band is not None
    assert card.band.name == band


def test_overall_weak_and_benchmark() -> None:
    # Survey means: 3.0, 3.75, 3.2, 2.6, 3.0; lead handoff blends to 2.53, so the
    # overall is (3.0 + 2.53 + 3.2 + 2.6 + 3.0) / 5 = 2.866 -> 2.87.
    card = build_scorecard(
        _metrics(**HANDOFF_LEVEL3, sal_rate=0.55),
        survey=read_survey(VALID_SURVEY),
        config=_config(),
        rubric=RUBRIC,
    )
    assert card.overall == 2.87
    assert card.band is not None
    assert card.band.name == "Developing"
    assert card.benchmark is not None
    assert card.benchmark.verdict == "expected"
    assert [(item.key, item.card) for item in card.weak] == [
        ("lead_handoff", "Lead Handoff Process Playbook"),
        ("attribution", "Revenue Attribution Model Selection"),
    ]


def test_scorecard_without_segment() -> None:
    card = build_scorecard(
        {}, survey=read_survey(VALID_SURVEY), config=OrgConfig(), rubric=RUBRIC
    )
    assert card.benchmark is None
    assert card.benchmark_note.startswith("segment unknown: set org.segment")


def test_scorecard_to_dict_json() -> None:
    card = build_scorecard(
        _metrics(**HANDOFF_LEVEL3, sal_rate=0.55),
        survey=read_survey(VALID_SURVEY),
        config=_config(),
        rubric=RUBRIC,
    )
    document = json.loads(json.dumps(card.to_dict()))
    handoff = document["dimensions"][1]
    assert document["overall"]["band"]["name"] == "Developing"
    assert handoff["source"] == "blended"
    assert handoff["measured"]["held_by"] == ["sal_rate >= 0.6"]
    assert handoff["card"] == "Lead Handoff Process Playbook"
    assert document["weak_dimensions"][0]["key"] == "lead_handoff"
