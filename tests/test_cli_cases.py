"""`revalign score` end to end on the reference exports, through the CLI."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import CASES_DIR

runner = CliRunner()


def score(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["score", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def score_case(name: str, as_of: str, out: Path, *extra: str) -> dict:
    folder = CASES_DIR / name
    code, stdout, stderr = score(
        "--source", "salesforce-export",
        "--path", str(folder),
        "--config", str(folder / "revalign.yaml"),
        "--as-of", as_of,
        "--out", str(out),
        "--json",
        *extra,
    )  # fmt: skip
    assert code == 0, stderr
    return json.loads(stdout)


@pytest.fixture(scope="module")
def clock_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("clock")
    return score_case("sf-export-business-hours", "2025-07-15T00:00:00Z", out), out


@pytest.fixture(scope="module")
def sal_case(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sal")
    return score_case("sf-export-sal-rate", "2025-07-01T00:00:00Z", out)


def test_clock_case_speed_to_lead(clock_case: tuple[dict, Path]) -> None:
    metrics = clock_case[0]["metrics"]
    assert metrics["handoff_count"]["value"] == 6
    assert metrics["speed_to_lead_median_business_hours"]["value"] == 4.75
    assert metrics["speed_to_lead_median_calendar_hours"]["value"] == 34.875
    assert metrics["speed_to_lead_median_business_hours"]["population"] == 4
    assert metrics["untouched_share"]["details"] == {"handoffs": 6, "touched": 4, "untouched": 2}


def test_clock_case_sla_breach_rate(clock_case: tuple[dict, Path]) -> None:
    sla = clock_case[0]["metrics"]["sla_breach_rate"]
    assert sla["value"] == 0.6
    assert sla["population"] == 5
    assert sla["details"]["on_time"] == 2
    assert sla["details"]["breached"] == 3
    assert sla["details"]["not_due"] == 1


def test_clock_case_routing_failure(clock_case: tuple[dict, Path]) -> None:
    routing = clock_case[0]["metrics"]["routing_failure_rate"]
    assert routing["details"]["failed"] == 1
    assert routing["population"] == 6
    assert routing["details"]["failed_owner_ids"] == [
        {"owner_id": "0055g00000RepS3AAA", "handoffs": 1}
    ]


def test_clock_case_per_lead_file(clock_case: tuple[dict, Path]) -> None:
    handoffs = pl.read_csv(clock_case[1] / "handoffs.csv", try_parse_dates=True)
    by_lead = {row["lead_id"][-4:-2]: row for row in handoffs.iter_rows(named=True)}
    expected = {
        "L1": (1.25, 64.25, "on_time"),
        "L2": (4.0, 92.0, "on_time"),
        "L3": (5.5, 5.5, "breached"),
        "L4": (None, None, "breached"),
        "L5": (None, None, "not_due"),
        "L6": (5.5, 5.5, "breached"),
    }
    for lead, (business, calendar, status) in expected.items():
        row = by_lead[lead]
        assert (row["business_hours"], row["calendar_hours"], row["sla_status"]) == (
            business,
            calendar,
            status,
        ), lead


def test_sal_case_rates(sal_case: dict) -> None:
    metrics = sal_case["metrics"]
    assert metrics["handoff_count"]["value"] == 22
    assert metrics["sal_rate"]["value"] == 0.55
    assert metrics["sal_rate"]["population"] == 20
    assert metrics["decided_share"]["value"] == 0.85
    assert metrics["undecided_share"]["value"] == 0.15
    assert metrics["sal_rate"]["details"]["accepted"] == 11
    assert metrics["sal_rate"]["details"]["rejected"] == 6
    assert metrics["sal_rate"]["details"]["undecided"] == 3


def test_sal_case_rejections(sal_case: dict) -> None:
    metrics = sal_case["metrics"]
    assert round(metrics["rejection_reason_share"]["value"], 3) == 0.667
    assert metrics["rejection_reason_share"]["details"]["top_reasons"][0] == {
        "reason": "No budget",
        "count": 2,
    }
    assert round(metrics["recycle_rate"]["value"], 3) == 0.167
    assert metrics["recycle_rate"]["details"] == {"recycled": 1, "rejected": 6}


def test_sal_case_handoff_held_at_two(sal_case: dict) -> None:
    handoff = next(
        d for d in sal_case["scorecard"]["dimensions"] if d["key"] == "lead_handoff"
    )
    assert handoff["measured"]["level"] == 2
    assert handoff["measured"]["stopped_at"] == 3
    assert handoff["measured"]["held_by"] == ["sal_rate >= 0.6"]


def test_sal_case_speed_not_measurable(sal_case: dict) -> None:
    metrics = sal_case["metrics"]
    for key in ("speed_to_lead_median_business_hours", "sla_breach_rate"):
        assert metrics[key]["measurable"] is False
        assert metrics[key]["note"] == "no Task or Event file, so no sales activities"
    sla = next(d for d in sal_case["scorecard"]["dimensions"] if d["key"] == "sla_compliance")
    assert sla["source"] == "lacking data"
    assert sla["score"] is None


def test_sfdc_sample_export_scores(tmp_path: Path) -> None:
    folder = CASES_DIR / "sfdc-demo-export"
    document = score_case("sfdc-demo-export", "2026-02-25T00:00:00Z", tmp_path)
    assert document["source"]["records"]["Lead"] == 22
    assert document["source"]["records"]["Opportunity"] == 36
    assert document["source"]["records"]["OpportunityHistory"] == 48
    missing = document["source"]["missing"]
    assert missing["leads.created_at"] == "Lead has no CreatedDate column"
    assert missing["stage_events"] == "no LeadHistory file, so no status history"
    assert missing["activities"] == "no Task or Event file, so no sales activities"
    assert missing["users"] == "no User file, so teams and active reps are unknown"
    assert document["metrics"]["speed_to_lead_median_business_hours"]["measurable"] is False
    assert (tmp_path / "scorecard.json").is_file()
    assert folder.is_dir()


def _personal_values(folder: Path) -> set[str]:
    raw = pl.read_csv(folder / "Lead.csv", infer_schema=False)
    columns = ["LastName", "FirstName", "Name", "Email", "Phone", "MobilePhone"]
    values = pl.concat([raw[c] for c in columns if c in raw.columns]).drop_nulls()
    return {value for value in values.to_list() if len(value) > 3}


def test_sfdc_sample_export_keeps_no_personal_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = CASES_DIR / "sfdc-demo-export"
    caplog.set_level(logging.DEBUG)
    result = runner.invoke(
        app,
        [
            "--verbose", "score",
            "--source", "salesforce-export",
            "--path", str(folder),
            "--config", str(folder / "revalign.yaml"),
            "--out", str(tmp_path),
        ],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    written = "".join(path.read_text(encoding="utf-8") for path in tmp_path.iterdir())
    printed = result.stdout + result.stderr + caplog.text
    personal = _personal_values(folder)
    assert len(personal) > 50
    leaked = sorted(value for value in personal if value in written or value in printed)
    assert leaked == []


def test_invalid_survey_stops_before_scoring(tmp_path: Path) -> None:
    survey = CASES_DIR / "survey-errors" / "invalid.csv"
    code, stdout, stderr = score("--demo", "--survey", str(survey), "--out", str(tmp_path))
    assert code == 2
    assert not (tmp_path / "scorecard.json").exists()
    message = " ".join(stderr.split())
    for part in ("row 4", "lead_handoff", "'6'", "row 5", "'finance'", "row 6", "'r02'"):
        assert part in message, part
    assert "respondent_id" in message
    assert "sales, marketing, leadership, revops" in message
    assert "invalid.csv" in message
    assert stdout == ""


def test_valid_survey_scores_demo(tmp_path: Path) -> None:
    survey = CASES_DIR / "survey-errors" / "valid.csv"
    code, stdout, stderr = score("--demo", "--survey", str(survey), "--out", str(tmp_path), "--json")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["survey"]["respondents"] == 5
    gaps = {d["key"]: d["perception_gap"] for d in document["audit"]["dimensions"]}
    assert gaps == {
        "shared_definitions": False,
        "lead_handoff": False,
        "sla_compliance": False,
        "attribution": True,
        "strategic_planning": False,
    }


def test_missing_export_folder_exit_code(tmp_path: Path) -> None:
    code, _, stderr = score("--path", str(tmp_path / "nowhere"), "--out", str(tmp_path))
    assert code == 2
    assert "export folder" in stderr
    assert "not found" in stderr


def test_failed_run_keeps_previous_scorecard(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(CASES_DIR / "sf-export-business-hours", folder)
    out = tmp_path / "out"
    score_case_args = ["--path", str(folder), "--config", str(folder / "revalign.yaml"), "--out", str(out)]
    assert score(*score_case_args, "--as-of", "2025-07-15T00:00:00Z")[0] == 0
    before = (out / "scorecard.json").read_text(encoding="utf-8")
    (folder / "Task.csv").write_text("Id,WhoId,OwnerId,CreatedDate\nT1,00Q1,0051,not-a-date\n")
    code, _, stderr = score(*score_case_args, "--as-of", "2025-07-16T00:00:00Z")
    assert code == 2
    assert "Task.csv: field `CreatedDate`" in stderr
    assert (out / "scorecard.json").read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--path", "somewhere"], id="path"),
        pytest.param(["--source", "hubspot"], id="source"),
    ],
)
def test_demo_rejects_other_source(tmp_path: Path, extra: list[str]) -> None:
    code, stdout, stderr = score("--demo", *extra, "--out", str(tmp_path))
    assert code == 2
    assert "--demo cannot be combined with --path or --source" in stderr
    assert stdout == ""


def test_bad_history_file_keeps_previous_outputs(tmp_path: Path) -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    out = tmp_path / "out"
    args = ["--path", str(folder), "--config", str(folder / "revalign.yaml"), "--out", str(out)]
    assert score(*args, "--as-of", "2025-07-15T00:00:00Z")[0] == 0
    before = {name: (out / name).read_bytes() for name in ("scorecard.json", "report.md", "handoffs.csv")}
    history = tmp_path / "notes.duckdb"
    history.write_text("not a database\n")
    code, _, stderr = score(*args, "--as-of", "2025-07-16T00:00:00Z", "--history", str(history))
    assert code == 2
    assert "is not a DuckDB database" in stderr
    after = {name: (out / name).read_bytes() for name in before}
    assert after == before


@pytest.mark.parametrize(
    ("make_out", "message"),
    [
        pytest.param(lambda p: p.write_text("x"), "is a file; pass a folder", id="out-is-file"),
        pytest.param(lambda p: (p / "report.md").mkdir(parents=True), "report.md is a folder", id="report-is-folder"),
    ],
)
def test_unusable_out_folder(tmp_path: Path, make_out, message: str) -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    out = tmp_path / "out"
    make_out(out)
    code, _, stderr = score(
        "--path", str(folder), "--config", str(folder / "revalign.yaml"),
        "--as-of", "2025-07-15T00:00:00Z", "--out", str(out),
    )  # fmt: skip
    assert code == 2
    assert message in " ".join(stderr.split())


def test_future_as_of_is_rejected(tmp_path: Path) -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    code, _, stderr = score(
        "--path", str(folder), "--config", str(folder / "revalign.yaml"),
        "--as-of", "9999-12-31", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 2
    assert "is in the future; pass the extraction time" in stderr


def test_future_record_cannot_set_as_of(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    shutil.copytree(CASES_DIR / "sf-export-business-hours", folder)
    lead = folder / "Lead.csv"
    lead.write_text(lead.read_text().replace("2025-03-07T21:00:00.000+0000", "2031-01-01T00:00:00Z", 1))
    code, _, stderr = score("--path", str(folder), "--config", str(folder / "revalign.yaml"), "--out", str(tmp_path / "out"))
    assert code == 2
    assert (
        "the newest timestamp in the data, 2031-01-01T00:00:00+00:00, is in the future "
        "(leads.created_at of record '00Q5g00000LeadL1AA')"
    ) in " ".join(stderr.split())


def test_reader_closing_pipe_early_exits_zero(tmp_path: Path) -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    revalign = Path(sys.executable).parent / "revalign"
    command = (
        f"'{revalign}' score --path '{folder}' --config '{folder / 'revalign.yaml'}' "
        f"--as-of 2025-07-15T00:00:00Z --out '{tmp_path}' | head -1; "
        "exit ${PIPESTATUS[0]}"
    )
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scorecard.json").is_file()


def test_ascii_terminal_still_prints_scorecard(tmp_path: Path) -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    revalign = Path(sys.executable).parent / "revalign"
    result = subprocess.run(
        [
            str(revalign), "score", "--path", str(folder),
            "--config", str(folder / "revalign.yaml"),
            "--as-of", "2025-07-15T00:00:00Z", "--out", str(tmp_path),
        ],  # fmt: skip
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii()
    assert b"Overall" in result.stdout
    assert (tmp_path / "scorecard.json").is_file()
