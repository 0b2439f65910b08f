"""Gate warnings in the metrics' notes and the dimensions' confidence."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from config.models import OrgConfig, load_config
from connectors.demo import DEMO_AS_OF
from expectations.effects import affected_input, flag_metrics, reads_input
from expectations.report import Finding, GateReport
from flows.cli import app
from flows.pipeline import DEMO_CONFIG, ScoreRequest, run_score
from metrics.measure import measure
from metrics.result import MetricValue
from scoring.combine import SurveyEvidence, combine
from scoring.levels import measure_dimension
from scoring.rubric import load_rubric
from scoring.scorecard import build_scorecard

RUBRIC = load_rubric()


def _finding(name: str, severity: str = "warning", failed: int = 2) -> Finding:
    return Finding(
        table=name.split(".")[0],
        expectation=name,
        severity=severity,  # type: ignore[arg-type]
        failed=failed,
        total=40,
        examples=(),
        fix="",
    )


def _report(*findings: Finding) -> GateReport:
    return GateReport(findings=list(findings), checks_run=47, duration_seconds=0.0)


def _metric(
    key: str, reads: set[str], value: float | None = 0.5, note: str = ""
) -> MetricValue:
    return MetricValue(
        key=key,
        value=value,
        population=200,
        unit="share",
        label=key,
        note=note,
        reads=frozenset(reads),
    )


@pytest.mark.parametrize(
    ("name", "affected"),
    [
        pytest.param("leads.status_raw.mapped", ("stage_events", None), id="status"),
        pytest.param(
            "leads.lifecycle_raw.mapped", ("stage_events", None), id="lifecycle"
        ),
        pytest.param(
            "activities.owner_id.known_user", ("activities", "owner_id"), id="owner"
        ),
        pytest.param("leads.lead_id.unique", ("leads", None), id="lead-id"),
        pytest.param(
            "opportunities.close_date.not_before_created",
            ("opportunities", "close_date"),
            id="close-date",
        ),
    ],
)
def test_affected_input(name: str, affected: tuple[str, str | None]) -> None:
    assert affected_input(_finding(name)) == affected


@pytest.mark.parametrize(
    ("reads", "table", "column", "expected"),
    [
        pytest.param({"opportunities"}, "opportunities", "amount", True, id="table"),
        pytest.param(
            {"opportunities.amount"}, "opportunities", "amount", True, id="column"
        ),
        pytest.param(
            {"opportunities.created_at"}, "opportunities", "amount", False, id="other"
        ),
        pytest.param(
            {"opportunities.created_at"}, "opportunities", None, True, id="id-column"
        ),
        pytest.param({"leads"}, "opportunities", None, False, id="other-table"),
    ],
)
def test_reads_input(
    reads: set[str], table: str, column: str | None, expected: bool
) -> None:
    assert reads_input(frozenset(reads), table, column) is expected


def test_flag_metrics_notes_reading_metric() -> None:
    metrics = {"sla_breach_rate": _metric("sla_breach_rate", {"activities", "leads"})}
    report = _report(_finding("activities.owner_id.known_user"))
    flagged = flag_metrics(metrics, report)["sla_breach_rate"]
    assert flagged.note == (
        "data-quality warning on its input: activities.owner_id.known_user "
        "(2 of 40 activities rows)"
    )
    assert flagged.details == {
        "data_quality_warnings": ["activities.owner_id.known_user"]
    }
    assert flagged.value == 0.5


def test_flag_metrics_appends_to_note_in_report_order() -> None:
    metric = _metric("sal_rate", {"stage_events", "activities"}, note="5 of 9 leads")
    report = _report(
        _finding("leads.status_raw.mapped", failed=3),
        _finding("activities.owner_id.known_user"),
    )
    flagged = flag_metrics({"sal_rate": metric}, report)["sal_rate"]
    assert flagged.note == (
        "5 of 9 leads; data-quality warnings on its input: "
        "leads.status_raw.mapped (3 of 40 leads rows), "
        "activities.owner_id.known_user (2 of 40 activities rows)"
    )
    assert flagged.details["data_quality_warnings"] == [
        "leads.status_raw.mapped",
        "activities.owner_id.known_user",
    ]


def test_flag_metrics_leaves_others_alone() -> None:
    metrics = {
        "other_table": _metric("other_table", {"opportunities"}),
        "no_value": _metric("no_value", {"activities"}, value=None, note="no file"),
    }
    report = _report(
        _finding("activities.owner_id.known_user"),
        _finding("opportunities.opportunity_id.not_null", severity="critical"),
    )
    assert flag_metrics(metrics, report) == metrics
    assert flag_metrics(metrics, report)["no_value"].note == "no file"


# Lead handoff at level 3 on populations of 200, so its confidence is "high".
HANDOFF_LEVEL3 = {
    "routing_failure_rate": 0.1,
    "speed_to_lead_median_business_hours": 3.0,
    "handoff_context_share": 0.9,
    "sal_rate": 0.55,
}


def _handoff_card(report: GateReport) -> Any:
    metrics = {
        key: _metric(key, {"leads", "stage_events", "activities"}, value=value)
        for key, value in HANDOFF_LEVEL3.items()
    }
    metrics["handoff_context_share"] = _metric(
        "handoff_context_share", {"leads", "touches"}, value=0.9
    )
    flagged = flag_metrics(metrics, report)
    card = build_scorecard(flagged, survey=None, config=OrgConfig(), rubric=RUBRIC)
    return card.dimension("lead_handoff").combined


def test_warning_lowers_confidence_one_step() -> None:
    combined = _handoff_card(_report(_finding("activities.owner_id.known_user")))
    assert combined.confidence == "medium"
    assert combined.reasons == (
        "smallest population 200",
        "data-quality warnings on the input of routing_failure_rate, sal_rate, "
        "speed_to_lead_median_business_hours",
    )


def test_warning_lowers_blended_confidence_after_survey() -> None:
    # Populations of 50 make the measured evidence "medium", like the survey's.
    metrics = {
        key: dataclasses.replace(
            _metric(key, {"leads", "stage_events", "activities"}, value=value),
            population=50,
        )
        for key, value in HANDOFF_LEVEL3.items()
    }
    report = _report(_finding("activities.owner_id.known_user"))
    measured = measure_dimension(
        "lead_handoff", RUBRIC.dimensions["lead_handoff"], flag_metrics(metrics, report)
    )
    # The blend of two "medium" sources is "medium"; the warning lowers it.
    survey = SurveyEvidence(mean=3.0, answers=10, counted=True)
    combined = combine(
        measured, survey, scoring=OrgConfig().scoring, rule=RUBRIC.confidence
    )
    assert combined.source == "blended"
    assert combined.confidence == "low"
    assert combined.reasons[-2:] == (
        "data-quality warnings on the input of handoff_context_share, "
        "routing_failure_rate, sal_rate, speed_to_lead_median_business_hours",
        "10 survey answers",
    )


def test_unrelated_warning_keeps_confidence() -> None:
    combined = _handoff_card(_report(_finding("campaigns.cost.non_negative")))
    assert combined.confidence == "high"
    assert combined.reasons == ("smallest population 200",)


def _demo_with_unknown_owner(folder: Path) -> Path:
    """Write the demo export and add one task whose owner is not an exported user."""
    runner = CliRunner()
    written = runner.invoke(app, ["demo", "--out", str(folder)])
    assert written.exit_code == 0, written.output
    tasks = folder / "Task.csv"
    with tasks.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    extra = {**rows[-1], "Id": "00TDm0000009ZZZMAM", "OwnerId": "005Dm000009ZZZZIAW"}
    with tasks.open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(
            handle, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL
        ).writerow(extra)
    return folder


@pytest.fixture(scope="module")
def warned_demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = _demo_with_unknown_owner(tmp_path_factory.mktemp("demo") / "export")
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--source",
            "salesforce-export",
            "--path",
            str(folder),
            "--config",
            str(folder / "revalign.yaml"),
            "--survey",
            str(folder / "survey.csv"),
            "--as-of",
            "2025-11-01T00:00:00Z",
            "--json",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_warning_reaches_gate_report(warned_demo: dict[str, Any]) -> None:
    findings = warned_demo["gate"]["findings"]
    found = [
        (f["expectation"], f["severity"], f["failed"], f["total"]) for f in findings
    ]
    assert found == [("activities.owner_id.known_user", "warning", 1, 13162)]
    assert findings[0]["examples"] == ["00TDm0000009ZZZMAM"]


def test_cli_warning_in_metric_note(warned_demo: dict[str, Any]) -> None:
    metric = warned_demo["metrics"]["sla_breach_rate"]
    assert metric["note"] == (
        "1057 of 2309 due handoffs breached the 4-business-hour SLA; 3 not yet due; "
        "data-quality warning on its input: activities.owner_id.known_user "
        "(1 of 13162 activities rows)"
    )
    assert metric["details"]["data_quality_warnings"] == [
        "activities.owner_id.known_user"
    ]
    assert (
        "data_quality_warnings"
        not in warned_demo["metrics"]["attribution_coverage_share"]["details"]
    )


@pytest.fixture(scope="module")
def demo_metrics() -> dict[str, MetricValue]:
    tables = run_score(ScoreRequest(demo=True, run_gate=False)).tables
    assert tables is not None
    metrics, _ = measure(tables, load_config(DEMO_CONFIG), DEMO_AS_OF)
    return metrics


@pytest.mark.parametrize(
    ("check", "flagged"),
    [
        pytest.param(
            "opportunities.close_date.not_before_created",
            [
                "funnel_opportunity_to_won",
                "influenced_pipeline_share",
                "stage_velocity_opportunity_to_won",
            ],
            id="close-date",
        ),
        pytest.param(
            "leads.created_at.not_null",
            ["sourced_pipeline_share"],
            id="lead-created",
        ),
        pytest.param(
            "opportunities.amount.non_negative",
            [
                "attribution_amount_coverage_share",
                "influenced_pipeline_share",
                "sourced_pipeline_share",
                "target_account_pipeline_share",
            ],
            id="amount",
        ),
        pytest.param(
            "leads.status_raw.mapped",
            sorted(
                [
                    "handoff_count",
                    "speed_to_lead_median_business_hours",
                    "speed_to_lead_p90_business_hours",
                    "speed_to_lead_median_calendar_hours",
                    "speed_to_lead_p90_calendar_hours",
                    "untouched_share",
                    "sla_breach_rate",
                    "sla_on_time_share",
                    "sal_rate",
                    "decided_share",
                    "undecided_share",
                    "rejection_reason_share",
                    "recycle_rate",
                    "routing_failure_rate",
                    "owner_unanswered_share",
                    "owner_response_median_business_hours",
                    "owner_response_p90_business_hours",
                    "cadence_compliance_share",
                    "funnel_mql_to_sal",
                    "funnel_sal_to_sql",
                    "funnel_sql_to_opportunity",
                    "funnel_opportunity_to_won",
                        "stage_velocity_mql_to_sal",
                    "stage_velocity_sal_to_sql",
                    "stage_velocity_sql_to_opportunity",
                    "stage_velocity_opportunity_to_won",
                    "mql_volume_vs_target",
                    "handoff_context_share",
                    "stage_order_violation_share",
                    "converted_flag_mismatch_count",
                    "score_coverage_at_handoff",
                    "target_account_mql_share",
                ]
            ),  # fmt: skip
            id="status-mapping",
        ),
    ],
)
def test_demo_metrics_flagged_by_check(
    demo_metrics: dict[str, MetricValue], check: str, flagged: list[str]
) -> None:
    result = flag_metrics(demo_metrics, _report(_finding(check)))
    found = sorted(
        key
        for key, metric in result.items()
        if metric.details.get("data_quality_warnings")
    )
    assert found == flagged


def test_mapping_warning_flags_nothing_without_mapping(
    demo_metrics: dict[str, MetricValue],
) -> None:
    report = _report(_finding("leads.status_raw.mapped"))
    flagged = flag_metrics(demo_metrics, report, stages_from_mapping=False)
    assert flagged == demo_metrics
    assert not any(m.details.get("data_quality_warnings") for m in flagged.values())


def test_cli_warning_lowers_handoff_confidences(warned_demo: dict[str, Any]) -> None:
    confidence = {
        dimension["key"]: dimension["confidence"]
        for dimension in warned_demo["scorecard"]["dimensions"]
    }
    assert confidence == {
        "shared_definitions": "high",
        "lead_handoff": "medium",
        "sla_compliance": "medium",
        "attribution": "high",
        "strategic_planning": "high",
    }


def test_cli_warning_named_in_confidence_reasons(warned_demo: dict[str, Any]) -> None:
    handoff = warned_demo["scorecard"]["dimensions"][1]
    assert handoff["key"] == "lead_handoff"
    assert handoff["confidence_reasons"] == [
        "measured weight 0.7",
        "smallest population 2091",
        "data-quality warnings on the input of speed_to_lead_median_business_hours",
        "11 survey answers",
    ]
