"""Tests of the audit: claims against measured levels, perception gaps, red flags."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from config.models import OrgConfig
from flows.audit_cli import audit_command, render_red_flags
from flows.cli import app as revalign_app
from flows.render import audit_table
from metrics.result import Metrics, MetricValue
from scoring.audit import Audit, build_audit, claim_verdict, monthly_series, red_flags
from scoring.levels import measure_dimension
from scoring.rubric import load_rubric
from scoring.survey import read_survey
from tests.conftest import CASES_DIR

RUBRIC = load_rubric()
VALID_SURVEY = CASES_DIR / "survey-errors" / "valid.csv"
SLA_SET = OrgConfig.model_validate({"sla": {"speed_to_lead_hours": 4}})


def _metrics(**values: float | None) -> Metrics:
    return {
        key: MetricValue(key=key, value=value, population=120, unit="share", label=key)
        for key, value in values.items()
    }


# Lead handoff measured at level 2: level 3 fails on the SAL rate.
HANDOFF_LEVEL2 = _metrics(
    routing_failure_rate=0.1,
    speed_to_lead_median_business_hours=3.0,
    sal_rate=0.55,
)
# Lead handoff measured at level 4: level 5 fails on the SAL rate.
HANDOFF_LEVEL4 = _metrics(
    routing_failure_rate=0.1,
    speed_to_lead_median_business_hours=3.0,
    sal_rate=0.8,
    rejection_reason_share=0.9,
    recycle_rate=0.2,
)


def _handoff(metrics: Metrics):  # noqa: ANN202
    return measure_dimension("lead_handoff", RUBRIC.dimensions["lead_handoff"], metrics)


@pytest.mark.parametrize(
    ("rating", "verdict"),
    [
        pytest.param(3.0, "over-claim", id="3.0-over"),
        pytest.param(2.99, "consistent", id="2.99"),
        pytest.param(2.0, "consistent", id="2.0"),
        pytest.param(1.01, "consistent", id="1.01"),
        pytest.param(1.0, "under-claim", id="1.0-under"),
        pytest.param(None, "no answers", id="none"),
    ],
)
def test_claim_verdict_margins(rating: float | None, verdict: str) -> None:
    assert claim_verdict(rating, _handoff(HANDOFF_LEVEL2), 1.0) == verdict


def test_claim_not_measured() -> None:
    assert claim_verdict(4.0, _handoff({}), 1.0) == "not measured"


def test_claim_unverifiable() -> None:
    planning = RUBRIC.dimensions["strategic_planning"]
    measured = measure_dimension(
        "strategic_planning", planning, _metrics(mql_volume_vs_target=0.6)
    )
    assert measured.level == 2
    assert claim_verdict(3.5, measured, 1.0) == "unverifiable"


def test_audit_over_claim() -> None:
    # valid.csv rates lead handoff 3.75 overall, sales 3.5, marketing 4.0;
    # the data keeps it at level 2.
    audit = build_audit(
        HANDOFF_LEVEL2,
        survey=read_survey(VALID_SURVEY),
        config=OrgConfig(),
        rubric=RUBRIC,
    )
    handoff = audit.dimension("lead_handoff")
    sales = handoff.team("sales")
    marketing = handoff.team("marketing")
    assert handoff.measured_level == 2
    assert handoff.everyone.self_reported == 3.75
    assert handoff.everyone.verdict == "over-claim"
    assert sales is not None
    assert sales.verdict == "over-claim"
    assert marketing is not None
    assert marketing.verdict == "over-claim"
    assert handoff.team("leadership") is None


def test_audit_within_margin() -> None:
    survey = read_survey(VALID_SURVEY)
    audit = build_audit(
        HANDOFF_LEVEL4, survey=survey, config=OrgConfig(), rubric=RUBRIC
    )
    handoff = audit.dimension("lead_handoff")
    sales = handoff.team("sales")
    marketing = handoff.team("marketing")
    assert handoff.measured_level == 4
    assert handoff.everyone.verdict == "consistent"
    assert sales is not None
    assert sales.self_reported == 3.5
    assert sales.verdict == "consistent"
    assert marketing is not None
    assert marketing.verdict == "consistent"


def test_audit_under_claim_by_team(tmp_path: Path) -> None:
    path = tmp_path / "survey.csv"
    path.write_text(
        "respondent_id,team,answered_on,shared_definitions,lead_handoff,"
        "sla_compliance,attribution,strategic_planning\n"
        "r1,sales,2025-06-20,,3,,,\n"
        "r2,marketing,2025-06-20,,2,,,\n"
        "r3,marketing,2025-06-20,,3,,,\n",
        encoding="utf-8",
    )
    audit = build_audit(
        HANDOFF_LEVEL4, survey=read_survey(path), config=OrgConfig(), rubric=RUBRIC
    )
    handoff = audit.dimension("lead_handoff")
    sales = handoff.team("sales")
    marketing = handoff.team("marketing")
    assert handoff.everyone.self_reported == pytest.approx(8 / 3)
    assert handoff.everyone.verdict == "under-claim"
    assert sales is not None
    assert sales.verdict == "under-claim"
    assert marketing is not None
    assert marketing.self_reported == 2.5
    assert marketing.verdict == "under-claim"


def test_audit_perception_gaps() -> None:
    audit = build_audit(
        {}, survey=read_survey(VALID_SURVEY), config=OrgConfig(), rubric=RUBRIC
    )
    flagged = [item.key for item in audit.dimensions if item.perception_gap]
    attribution = audit.dimension("attribution")
    assert flagged == ["attribution"]
    assert attribution.sales == 2.0
    assert attribution.marketing == 3.0
    assert attribution.gap == 1.0


def test_audit_without_survey() -> None:
    audit = build_audit(HANDOFF_LEVEL2, survey=None, config=OrgConfig(), rubric=RUBRIC)
    handoff = audit.dimension("lead_handoff")
    assert audit.respondents == 0
    assert handoff.everyone.verdict == "no answers"
    assert handoff.teams == ()
    assert handoff.perception_gap is False


def _flag_keys(metrics: Metrics, config: OrgConfig = SLA_SET) -> list[str]:
    audit = build_audit(metrics, survey=None, config=config, rubric=RUBRIC)
    return [flag.key for flag in audit.red_flags]


def test_red_flag_no_speed_to_lead() -> None:
    metrics = _metrics(speed_to_lead_median_business_hours=None)
    metrics["speed_to_lead_median_business_hours"] = MetricValue.not_measurable(
        "speed_to_lead_median_business_hours",
        "hours",
        "Speed to lead",
        "Task.csv missing",
    )
    flags = red_flags(metrics)
    assert [flag.key for flag in flags] == ["no_speed_to_lead_data"]
    assert "(Task.csv missing)" in flags[0].message


@pytest.mark.parametrize(
    ("breach", "flagged"),
    [
        pytest.param(0.5, False, id="0.5-half"),
        pytest.param(0.51, True, id="0.51-most"),
    ],
)
def test_red_flag_sla_breached(breach: float, flagged: bool) -> None:
    metrics = _metrics(speed_to_lead_median_business_hours=3.0, sla_breach_rate=breach)
    keys = _flag_keys(metrics)
    assert ("sla_breached_most_of_the_time" in keys) is flagged


def test_red_flag_sla_not_configured() -> None:
    metrics = _metrics(speed_to_lead_median_business_hours=3.0, sla_breach_rate=0.9)
    assert _flag_keys(metrics, OrgConfig()) == []


def test_red_flag_sla_not_measured() -> None:
    metrics = _metrics(speed_to_lead_median_business_hours=3.0, sla_breach_rate=None)
    assert _flag_keys(metrics) == ["sla_not_measured"]


def _monthly(key: str, values: list[float], shape: str = "dict") -> MetricValue:
    months = [f"2025-{month:02d}" for month in range(1, len(values) + 1)]
    monthly: Any = dict(zip(months, values, strict=True))
    if shape == "records":
        monthly = [
            {"month": m, "value": v} for m, v in zip(months, values, strict=True)
        ]
    return MetricValue(key, values[-1], 100, "ratio", key, details={"monthly": monthly})


@pytest.mark.parametrize(
    ("mql", "sal", "flagged"),
    [
        # Earlier half vs later half: MQL 100 -> 110 (+10%), SAL 0.60 -> 0.55.
        pytest.param([100, 100, 110, 110], [0.6, 0.6, 0.55, 0.55], True, id="up-down"),
        pytest.param([100, 100, 109, 109], [0.6, 0.6, 0.5, 0.5], False, id="mql-flat"),
        pytest.param(
            [100, 100, 150, 150], [0.6, 0.6, 0.56, 0.56], False, id="sal-flat"
        ),
        pytest.param([100, 110, 120], [0.6, 0.5, 0.4], False, id="three-months"),
    ],
)
def test_red_flag_mql_up_sal_down(
    mql: list[float], sal: list[float], flagged: bool
) -> None:
    metrics = {
        "speed_to_lead_median_business_hours": _metrics(x=1.0)["x"],
        "mql_volume_vs_target": _monthly("mql_volume_vs_target", mql),
        "sal_rate": _monthly("sal_rate", sal, shape="records"),
    }
    keys = [flag.key for flag in red_flags(metrics)]
    assert ("mql_up_sal_down" in keys) is flagged


def test_monthly_series_absent() -> None:
    assert monthly_series(_metrics(sal_rate=0.5)["sal_rate"], "sal") is None


def _render(table: Any) -> str:
    console = Console(width=140, color_system=None, record=True)
    console.print(table)
    return console.export_text()


def test_render_red_flags() -> None:
    audit = build_audit({}, survey=None, config=OrgConfig(), rubric=RUBRIC)
    text = _render(render_red_flags(audit))
    assert "No speed-to-lead data" in text
    assert "Lead Handoff" in text


def test_render_red_flags_none() -> None:
    metrics = _metrics(speed_to_lead_median_business_hours=2.0)
    audit = build_audit(metrics, survey=None, config=OrgConfig(), rubric=RUBRIC)
    assert render_red_flags(audit) is None


def test_audit_to_dict() -> None:
    audit = build_audit(
        HANDOFF_LEVEL2,
        survey=read_survey(VALID_SURVEY),
        config=OrgConfig(),
        rubric=RUBRIC,
    )
    document = audit.to_dict()
    handoff = document["dimensions"][1]
    assert document["respondents"] == 5
    assert handoff["everyone"] == {
        "group": "all",
        "self_reported": 3.75,
        "answers": 4,
        "verdict": "over-claim",
    }
    assert document["red_flags"] == []


def test_audit_from_dict_roundtrip() -> None:
    audit = build_audit(
        HANDOFF_LEVEL2, survey=read_survey(VALID_SURVEY), config=SLA_SET, rubric=RUBRIC
    )
    assert Audit.from_dict(audit.to_dict()) == audit


def _audit_app() -> typer.Typer:
    app = typer.Typer()
    app.command("audit")(audit_command)
    app.command("unused")(lambda: None)
    return app


def test_audit_command_json(tmp_path: Path) -> None:
    case = CASES_DIR / "sf-export-sal-rate"
    arguments = [
        "audit",
        "--path", str(case),
        "--config", str(case / "revalign.yaml"),
        "--survey", str(VALID_SURVEY),
        "--out", str(tmp_path),
        "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(_audit_app(), arguments)
    document = json.loads(result.stdout)
    assert result.exit_code == 0
    assert document["respondents"] == 5
    assert [item["perception_gap"] for item in document["dimensions"]] == [
        False, False, False, True, False,
    ]  # fmt: skip
    assert (tmp_path / "report.md").exists()


def test_audit_command_bad_survey(tmp_path: Path) -> None:
    case = CASES_DIR / "sf-export-sal-rate"
    arguments = [
        "audit",
        "--path", str(case),
        "--config", str(case / "revalign.yaml"),
        "--survey", str(CASES_DIR / "survey-errors" / "invalid.csv"),
        "--out", str(tmp_path),
    ]  # fmt: skip
    result = CliRunner().invoke(_audit_app(), arguments)
    assert result.exit_code == 2
    assert "3 problems, so nothing was scored" in result.stderr
    assert not (tmp_path / "scorecard.json").exists()


def _table_text(table: Any) -> str:
    console = Console(file=io.StringIO(), color_system=None, record=True)
    console.print(table)
    return console.export_text()


def test_audit_command_table_matches_score(tmp_path: Path) -> None:
    case = CASES_DIR / "sf-export-sal-rate"
    common = [
        "--path", str(case),
        "--config", str(case / "revalign.yaml"),
        "--survey", str(VALID_SURVEY),
        "--as-of", "2025-07-01T00:00:00Z",
    ]  # fmt: skip
    runner = CliRunner()
    audited = runner.invoke(
        revalign_app, ["audit", *common, "--out", str(tmp_path / "audit")]
    )
    scored = runner.invoke(
        revalign_app, ["score", *common, "--out", str(tmp_path / "score")]
    )
    document = json.loads((tmp_path / "audit" / "scorecard.json").read_text())
    expected = _table_text(audit_table(document["audit"]))
    assert audited.exit_code == 0
    assert scored.exit_code == 0
    assert expected in audited.stdout
    assert expected in scored.stdout
    assert "over-claim" in expected
    assert "Red flags" in audited.stdout


def test_audit_help_lists_outputs() -> None:
    result = CliRunner().invoke(
        _audit_app(), ["audit", "--help"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0
    assert "Folder for scorecard.json, report.md and handoffs.csv." in result.stdout
