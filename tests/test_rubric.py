"""Tests of the rubric file, its overall bands and the segment benchmarks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.models import ConfigError, OrgConfig
from scoring.rubric import (
    DIMENSIONS,
    RUBRIC_PATH,
    benchmark,
    load_rubric,
    segment_for,
    verdict_for,
)

RUBRIC = load_rubric()


def _criteria(dimension: str, level: int) -> dict[str, tuple[str, float]]:
    criteria = RUBRIC.dimensions[dimension].levels[level].criteria
    return {item.metric: (item.op, item.threshold) for item in criteria}


def test_rubric_dimensions_in_order() -> None:
    assert tuple(RUBRIC.dimensions) == DIMENSIONS


def test_load_rubric_missing_dimension(tmp_path: Path) -> None:
    def drop(data: dict) -> None:
        del data["dimensions"]["attribution"]

    with pytest.raises(ConfigError, match="dimensions must be exactly"):
        load_rubric(_write_variant(tmp_path, drop))


def test_rubric_level_names() -> None:
    assert RUBRIC.level_names == {
        1: "Ad hoc",
        2: "Emerging",
        3: "Defined",
        4: "Managed",
        5: "Optimized",
    }


@pytest.mark.parametrize(
    ("dimension", "card"),
    [
        pytest.param(
            "shared_definitions", "Lead Scoring and Qualification Framework", id="defs"
        ),
        pytest.param("lead_handoff", "Lead Handoff Process Playbook", id="handoff"),
        pytest.param("sla_compliance", "Marketing-Sales SLA Design Playbook", id="sla"),
        pytest.param("attribution", "Revenue Attribution Model Selection", id="attr"),
        pytest.param(
            "strategic_planning", "GTM Planning Alignment Framework", id="plan"
        ),
    ],
)
def test_rubric_cards(dimension: str, card: str) -> None:
    assert RUBRIC.dimensions[dimension].card == card


@pytest.mark.parametrize(
    ("level", "op", "threshold"),
    [
        pytest.param(3, ">=", 0.60, id="level3"),
        pytest.param(4, ">=", 0.75, id="level4"),
        pytest.param(5, ">", 0.85, id="level5-strict"),
    ],
)
def test_rubric_sal_rate_bands(level: int, op: str, threshold: float) -> None:
    assert _criteria("lead_handoff", level)["sal_rate"] == (op, threshold)


def test_rubric_speed_to_lead_level3() -> None:
    criteria = _criteria("lead_handoff", 3)
    assert criteria["speed_to_lead_median_business_hours"] == ("<", 4.0)


def test_rubric_every_level_documented() -> None:
    for dimension in RUBRIC.dimensions.values():
        assert dimension.question
        for level in dimension.levels.values():
            assert level.description
            for criterion in level.criteria:
                assert criterion.rationale
                assert criterion.proxy == criterion.rationale.startswith("Proxy")


@pytest.mark.parametrize(
    ("score", "band"),
    [
        pytest.param(1.0, "Critical", id="1.0"),
        pytest.param(1.95, "Critical", id="1.95-gap"),
        pytest.param(2.0, "Developing", id="2.0"),
        pytest.param(2.99, "Developing", id="2.99"),
        pytest.param(3.0, "Competent", id="3.0"),
        pytest.param(4.0, "Advanced", id="4.0"),
        pytest.param(4.5, "Advanced", id="4.5"),
        pytest.param(4.55, "Advanced", id="4.55-gap"),
        pytest.param(4.6, "Best-in-class", id="4.6"),
        pytest.param(5.0, "Best-in-class", id="5.0"),
    ],
)
def test_band_for_boundaries(score: float, band: str) -> None:
    assert RUBRIC.band_for(score).name == band


def test_band_for_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"outside the rubric's range 1\.0-5\.0"):
        RUBRIC.band_for(0.9)


def test_band_next_step_present() -> None:
    assert [bool(band.next_step) for band in RUBRIC.bands] == [True] * 5


def _config(segment: str | None = None, arr: float | None = None) -> OrgConfig:
    return OrgConfig.model_validate({"org": {"segment": segment, "arr_usd": arr}})


@pytest.mark.parametrize(
    ("arr", "segment"),
    [
        pytest.param(0, "seed_series_a", id="zero"),
        pytest.param(4_999_999.99, "seed_series_a", id="below-5M"),
        pytest.param(5_000_000, "series_b_c", id="5M"),
        pytest.param(49_999_999, "series_b_c", id="below-50M"),
        pytest.param(50_000_000, "growth_scale", id="50M"),
        pytest.param(199_999_999, "growth_scale", id="below-200M"),
        pytest.param(200_000_000, "enterprise_public", id="200M"),
        pytest.param(3e9, "enterprise_public", id="3B"),
    ],
)
def test_segment_from_arr(arr: float, segment: str) -> None:
    assert segment_for(RUBRIC, _config(arr=arr)) == (segment, "org.arr_usd")


def test_segment_config_wins_over_arr() -> None:
    found = segment_for(RUBRIC, _config(segment="growth_scale", arr=1_000_000))
    assert found == ("growth_scale", "org.segment")


def test_segment_unknown() -> None:
    assert segment_for(RUBRIC, _config()) is None


VERDICT_CASES = [
    # (segment, score, verdict): at good, just below good, at expected, just above
    # alarm, at alarm.
    ("seed_series_a", 2.8, "above good"),
    ("seed_series_a", 2.79, "expected"),
    ("seed_series_a", 2.0, "expected"),
    ("seed_series_a", 1.31, "expected"),
    ("seed_series_a", 1.3, "below alarm"),
    ("series_b_c", 3.5, "above good"),
    ("series_b_c", 3.49, "expected"),
    ("series_b_c", 2.8, "expected"),
    ("series_b_c", 2.01, "expected"),
    ("series_b_c", 2.0, "below alarm"),
    ("growth_scale", 4.0, "above good"),
    ("growth_scale", 3.99, "expected"),
    ("growth_scale", 3.5, "expected"),
    ("growth_scale", 2.51, "expected"),
    ("growth_scale", 2.5, "below alarm"),
    ("enterprise_public", 4.3, "above good"),
    ("enterprise_public", 4.29, "expected"),
    ("enterprise_public", 3.8, "expected"),
    ("enterprise_public", 3.01, "expected"),
    ("enterprise_public", 3.0, "below alarm"),
]


@pytest.mark.parametrize(
    ("segment", "score", "verdict"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in VERDICT_CASES],
)
def test_verdict_boundaries(segment: str, score: float, verdict: str) -> None:
    assert verdict_for(RUBRIC.segments[segment], score) == verdict


@pytest.mark.parametrize(
    ("segment", "expected", "good", "alarm"),
    [
        pytest.param("seed_series_a", 2.0, 2.8, 1.3, id="seed"),
        pytest.param("series_b_c", 2.8, 3.5, 2.0, id="b-c"),
        pytest.param("growth_scale", 3.5, 4.0, 2.5, id="growth"),
        pytest.param("enterprise_public", 3.8, 4.3, 3.0, id="enterprise"),
    ],
)
def test_segment_thresholds(
    segment: str, expected: float, good: float, alarm: float
) -> None:
    values = RUBRIC.segments[segment]
    assert (values.expected, values.good, values.alarm) == (expected, good, alarm)


def test_benchmark_from_arr() -> None:
    result = benchmark(RUBRIC, _config(arr=12_000_000), 2.5)
    assert result is not None
    assert result.segment == "series_b_c"
    assert result.segment_from == "org.arr_usd"
    assert result.verdict == "expected"
    assert result.difference_from_expected == -0.3


def test_benchmark_without_segment() -> None:
    assert benchmark(RUBRIC, _config(), 2.5) is None


def _write_variant(tmp_path: Path, change) -> Path:  # noqa: ANN001
    data = yaml.safe_load(RUBRIC_PATH.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_load_rubric_unknown_metric(tmp_path: Path) -> None:
    def misspell(data: dict) -> None:
        data["dimensions"]["lead_handoff"]["levels"][3]["criteria"][1]["metric"] = (
            "sal_rat"
        )

    with pytest.raises(ConfigError, match=r"unknown metric 'sal_rat'"):
        load_rubric(_write_variant(tmp_path, misspell))


def test_load_rubric_unordered_bands(tmp_path: Path) -> None:
    def swap(data: dict) -> None:
        data["bands"][1]["lower"] = 3.5

    with pytest.raises(ConfigError, match=r"band lower bounds must start at 1\.0"):
        load_rubric(_write_variant(tmp_path, swap))


def test_load_rubric_level1_criteria(tmp_path: Path) -> None:
    def add(data: dict) -> None:
        level = data["dimensions"]["attribution"]["levels"][1]
        level["criteria"] = [
            {"metric": "sal_rate", "op": ">=", "threshold": 0.1, "rationale": "x"}
        ]

    with pytest.raises(ConfigError, match="level 1 is the floor"):
        load_rubric(_write_variant(tmp_path, add))


def test_load_rubric_segment_gap(tmp_path: Path) -> None:
    def gap(data: dict) -> None:
        data["segments"]["series_b_c"]["arr_min_usd"] = 6_000_000

    with pytest.raises(ConfigError, match="segment ARR ranges must meet"):
        load_rubric(_write_variant(tmp_path, gap))


def test_load_rubric_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rubric"):
        load_rubric(tmp_path / "absent.yaml")
