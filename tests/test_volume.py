"""MQL volume against monthly targets from the config or a CSV file."""

from __future__ import annotations

import pytest

from config.models import (
    CalendarConfig,
    ConfigError,
    OrgConfig,
    TargetsConfig,
    load_config,
)
from connectors.demo import DEMO_CONFIG
from connectors.errors import InputError
from flows.pipeline import ScoreRequest, run_score
from metrics.volume import read_target_csv, volume_metrics
from tests.canonical import at, context, events, tables

AS_OF = at(2024, 4, 15)


def _data():
    handoffs = [
        at(2024, 1, 5), at(2024, 1, 10),
        at(2024, 2, 1, 3),  # 31 January, 22:00 in New York
        at(2024, 2, 10), at(2024, 4, 2),
    ]  # fmt: skip
    # The stage history starts at midnight on 1 January, New York time.
    start = ("L9", "recycled", at(2024, 1, 1, 5))
    rows = [(f"L{n}", "mql", t) for n, t in enumerate(handoffs)]
    return tables(stage_events=events(start, *rows))


def _config(tmp_path, inline):
    csv = tmp_path / "targets.csv"
    csv.write_text("month,target\n2024-01,4\n2024-02,2\n2024-03,5\n", encoding="utf-8")
    calendar = CalendarConfig(time_zone="America/New_York")
    return OrgConfig(
        calendar=calendar, targets=TargetsConfig(mql_monthly=inline, mql_csv=csv)
    )


def test_volume_against_target(tmp_path):
    config = _config(tmp_path, {"2024-02": 1})
    metric = volume_metrics(context(_data(), config, AS_OF))["mql_volume_vs_target"]
    # January 3 of 4, February 1 of 1 (inline overrides the file), March 0 of 5.
    assert metric.value == 4 / 10
    assert metric.population == 4
    assert metric.details["months_scored"] == 3


def test_volume_months_listed(tmp_path):
    config = _config(tmp_path, {"2024-02": 1})
    metric = volume_metrics(context(_data(), config, AS_OF))["mql_volume_vs_target"]
    assert metric.details["months"] == [
        {"month": "2024-01", "mql": 3, "target": 4.0, "ratio": 0.75, "complete": True},
        {"month": "2024-02", "mql": 1, "target": 1.0, "ratio": 1.0, "complete": True},
        {"month": "2024-03", "mql": 0, "target": 5.0, "ratio": 0.0, "complete": True},
        {
            "month": "2024-04",
            "mql": 1,
            "target": None,
            "ratio": None,
            "complete": False,
        },
    ]


def test_volume_without_targets():
    metric = volume_metrics(context(_data(), OrgConfig(), AS_OF))[
        "mql_volume_vs_target"
    ]
    assert metric.value is None
    assert "targets.mql_monthly" in metric.note
    assert len(metric.details["months"]) == 3


@pytest.mark.parametrize(
    ("text", "match"),
    [
        pytest.param("month,goal\n2024-01,4\n", "missing column", id="column"),
        pytest.param("month,target\n2024-1,4\n", "row 2: month '2024-1'", id="month"),
        pytest.param("month,target\n2024-01,4\n2024-02,lots\n", "row 3", id="target"),
        pytest.param("month,target\n2024-01,-1\n", "0 or more", id="negative"),
    ],
)
def test_target_csv_invalid(tmp_path, text, match):
    path = tmp_path / "targets.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        read_target_csv(path)


def test_target_csv_relative_to_config(tmp_path):
    (tmp_path / "revalign.yaml").write_text(
        "targets:\n  mql_csv: t.csv\n", encoding="utf-8"
    )
    config = load_config(tmp_path / "revalign.yaml")
    assert config.targets.mql_csv == tmp_path / "t.csv"


def test_target_month_invalid_in_config(tmp_path):
    path = tmp_path / "revalign.yaml"
    path.write_text("targets:\n  mql_monthly:\n    '2024-13': 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'2024-13' is not in YYYY-MM form"):
        load_config(path)


def test_volume_partial_first_month(tmp_path):
    data = tables(
        stage_events=events(
            ("L1", "mql", at(2024, 1, 5)), ("L2", "mql", at(2024, 2, 10))
        )
    )
    config = _config(tmp_path, {})
    metric = volume_metrics(context(data, config, AS_OF))["mql_volume_vs_target"]
    # History starts on 5 January, so January is partial: February and March count.
    assert metric.value == 1 / 7
    assert metric.details["months_scored"] == 2
    assert metric.note.endswith(
        "; left out: 2024-01 (months before the stage history's first full month, "
        "2024-02, or not yet complete)"
    )


def test_demo_config_targets_demo_year():
    targets = load_config(DEMO_CONFIG).targets.mql_monthly
    months = ["2024-11", "2024-12", *(f"2025-{m:02d}" for m in range(1, 11))]
    assert sorted(targets) == months
    assert min(targets.values()) > 0


def test_demo_volume_slightly_below_target():
    document = run_score(ScoreRequest(demo=True, run_gate=False)).document
    metric = document["metrics"]["mql_volume_vs_target"]
    # December to September: October is the as-of month in New York, and the
    # stage history starts after midnight on 1 November.
    assert metric["details"]["months_scored"] == 10
    assert 0.85 <= metric["value"] <= 0.95
