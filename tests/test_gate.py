"""The data-quality gate: each fault's check, severity, count and examples, and the CLI.

great_expectations takes seconds to import, so the runs on the fault tables are
module-scoped fixtures shared by many tests.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console
from typer.testing import CliRunner

from config.models import (
    CalendarConfig,
    GateConfig,
    OrgConfig,
    StageMapping,
    load_config,
)
from connectors.errors import InputError
from connectors.salesforce_export import read_export
from connectors.schema import CanonicalTables, conform
from expectations.catalogue import CHECK_NAMES
from expectations.exchange import CheckInput, GateError, SuiteInput
from expectations.gate import InProcessValidator, run_gate, start_validator
from expectations.prepare import plan_gate
from expectations.report import Finding, GateReport
from expectations.worker import ValidationWorker
from flows.cli import app
from flows.entry import _runs_gate
from flows.pipeline import ScoreRequest, run_score
from tests.conftest import CASES_DIR

UTC = dt.UTC
AS_OF = dt.datetime(2025, 6, 30, tzinfo=UTC)
CONFIG = OrgConfig(stages=StageMapping(preset="salesforce_default"))
SFDC_EXPORT = CASES_DIR / "sfdc-demo-export"


def _at(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def _frame(
    table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> pl.DataFrame:
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    for name, values in data.items():
        if name.endswith(("_at",)):
            data[name] = [_at(value) for value in values]
    return conform(table, pl.DataFrame(data, strict=False))


def _clean_rows() -> dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
    """A small org with no fault: three leads, their events, a deal, a campaign."""
    return {
        "leads": (
            ("lead_id", "created_at", "status_raw"),
            [
                ("L1", "2025-01-01", "Open - Not Contacted"),
                ("L2", "2025-01-02", "Working - Contacted"),
                ("L3", "2025-01-03", "Closed - Converted"),
            ],
        ),
        "stage_events": (
            ("lead_id", "stage", "entered_at"),
            [
                ("L1", "mql", "2025-01-05"),
                ("L1", "sal", "2025-01-06"),
                ("L2", "mql", "2025-01-03"),
            ],
        ),
        "owner_events": (
            ("lead_id", "owner_id", "assigned_at"),
            [("L1", "U1", "2025-01-01"), ("L2", "U2", "2025-01-02")],
        ),
        "activities": (
            ("activity_id", "lead_id", "owner_id", "occurred_at"),
            [("A1", "L1", "U1", "2025-01-06"), ("A2", "L2", "U2", "2025-01-07")],
        ),
        "opportunities": (
            ("opportunity_id", "created_at", "close_date", "amount"),
            [("O1", "2025-02-01T10:00", dt.date(2025, 3, 1), 500.0)],
        ),
        "opportunity_history": (
            ("opportunity_id", "amount", "changed_at"),
            [("O1", 500.0, "2025-02-01T10:00")],
        ),
        "touches": (
            ("touch_id", "lead_id", "campaign_id", "touched_at"),
            [("T1", "L1", "C1", "2025-01-02")],
        ),
        "campaigns": (("campaign_id", "cost"), [("C1", 100.0)]),
        "accounts": (("account_id",), [("AC1",)]),
        "users": (("user_id", "team"), [("U1", "sales"), ("U2", "sales")]),
    }


def _tables(
    extra: dict[str, list[tuple[Any, ...]]] | None = None,
    unmapped: dict[str, int] | None = None,
    missing: dict[str, str] | None = None,
) -> CanonicalTables:
    """Build the clean org with ``extra`` rows appended to its tables."""
    frames = {}
    for table, (columns, rows) in _clean_rows().items():
        if missing and table in missing:
            continue
        frames[table] = _frame(table, columns, rows + (extra or {}).get(table, []))
    return CanonicalTables(
        tables=frames,
        missing=dict(missing or {}),
        unmapped_statuses=dict(unmapped or {}),
    )


# Each fault appended to the clean org, and the finding it must produce:
# (check, severity, failed rows, total rows, example ids).
FAULTS: dict[str, list[tuple[Any, ...]]] = {
    "leads": [
        ("L2", "2025-01-04", "Working - Contacted"),
        (None, "2025-01-04", "Open - Not Contacted"),
        ("L4", "1999-12-31", "Nurture"),
        ("L5", "2025-07-01", "Open - Not Contacted"),
        ("L6", None, "Open - Not Contacted"),
    ],
    "stage_events": [
        ("L1", "rejected", "2025-01-04"),
        ("L3", "mql", "2025-01-02"),
        ("L9", "mql", "2025-02-01"),
        ("L1", "sql", "2025-07-02"),
    ],
    "owner_events": [("L9", "U1", "2025-01-02")],
    "activities": [
        ("A3", "L1", "U9", "2025-01-08"),
        ("A4", "L2", "U1", "2025-07-15"),
        ("A4", "L2", "U1", "2025-01-09"),
        ("A5", "L9", "U1", "2025-01-09"),
        ("A6", "L1", None, None),
    ],
    "opportunities": [("O2", "2025-02-01T10:00", dt.date(2025, 1, 15), -100.0)],
    "opportunity_history": [("O2", -100.0, "1990-01-01")],
    "touches": [("T2", "L1", "C1", "2025-08-01"), ("T3", "L8", "C1", "2025-01-03")],
    "campaigns": [("C2", -5.0)],
    "accounts": [("AC1",)],
}

EXPECTED = [
    ("leads.lead_id.not_null", "critical", 1, 8, ()),
    ("leads.lead_id.unique", "critical", 2, 8, ("L2",)),
    ("leads.created_at.not_null", "warning", 1, 8, ("L6",)),
    ("leads.created_at.not_after_as_of", "warning", 1, 8, ("L5",)),
    ("leads.created_at.not_before_floor", "warning", 1, 8, ("L4",)),
    ("leads.status_raw.mapped", "warning", 1, 8, ("L4",)),
    ("activities.activity_id.unique", "warning", 2, 7, ("A4",)),
    ("activities.occurred_at.not_null", "warning", 1, 7, ("A6",)),
    ("activities.occurred_at.not_after_as_of", "critical", 1, 7, ("A4",)),
    ("activities.lead_id.known_lead", "warning", 1, 7, ("A5",)),
    ("activities.owner_id.known_user", "warning", 1, 7, ("A3",)),
    ("opportunities.close_date.not_before_created", "warning", 1, 2, ("O2",)),
    ("opportunities.amount.non_negative", "warning", 1, 2, ("O2",)),
    ("touches.touched_at.not_after_as_of", "critical", 1, 3, ("T2",)),
    ("touches.lead_id.known_lead", "warning", 1, 3, ("T3",)),
    ("campaigns.cost.non_negative", "warning", 1, 2, ("C2",)),
    ("accounts.account_id.unique", "warning", 2, 2, ("AC1",)),
    ("stage_events.entered_at.not_after_as_of", "critical", 1, 7, ("L1",)),
    ("stage_events.entered_at.in_time_order", "warning", 1, 7, ("L1",)),
    ("stage_events.entered_at.not_before_lead_created", "warning", 1, 7, ("L3",)),
    ("stage_events.lead_id.known_lead", "warning", 1, 7, ("L9",)),
    ("owner_events.lead_id.known_lead", "warning", 1, 3, ("L9",)),
    ("opportunity_history.changed_at.not_before_floor", "warning", 1, 2, ("O2",)),
    ("opportunity_history.amount.non_negative", "warning", 1, 2, ("O2",)),
]


@pytest.fixture(scope="module")
def faulty() -> GateReport:
    return run_gate(_tables(FAULTS, unmapped={"Nurture": 1}), CONFIG, as_of=AS_OF)


@pytest.fixture(scope="module")
def warnings_only() -> GateReport:
    extra = {
        "leads": [("L4", "2025-01-04", "Nurture")],
        "activities": [("A3", "L1", "U9", "2025-01-08")],
    }
    return run_gate(_tables(extra, unmapped={"Nurture": 1}), CONFIG, as_of=AS_OF)


@pytest.fixture(scope="module")
def clean() -> GateReport:
    return run_gate(_tables(), CONFIG, as_of=AS_OF)


def _by_name(report: GateReport) -> dict[str, Finding]:
    return {finding.expectation: finding for finding in report.findings}


def test_gate_faults_stop_the_run(faulty: GateReport) -> None:
    assert faulty.passed is False


def test_gate_faults_find_exactly_these(faulty: GateReport) -> None:
    assert [f.expectation for f in faulty.findings] == [row[0] for row in EXPECTED]


@pytest.mark.parametrize(
    ("name", "severity", "failed", "total", "examples"),
    [pytest.param(*row, id=row[0]) for row in EXPECTED],
)
def test_gate_fault_finding(
    faulty: GateReport,
    name: str,
    severity: str,
    failed: int,
    total: int,
    examples: tuple[str, ...],
) -> None:
    finding = _by_name(faulty)[name]
    assert finding.severity == severity
    assert finding.failed == failed
    assert finding.total == total
    assert finding.examples == examples


def test_gate_unmapped_detail_gives_share_and_values(faulty: GateReport) -> None:
    finding = _by_name(faulty)["leads.status_raw.mapped"]
    assert finding.detail.startswith("12.5% of 8 leads with a status_raw value")
    assert "(limit 2.0%)" in finding.detail
    assert finding.detail.endswith("history: 'Nurture' (1).")


def test_gate_finding_names_expectation_type(faulty: GateReport) -> None:
    finding = _by_name(faulty)["leads.lead_id.unique"]
    assert finding.expectation_type == "expect_column_values_to_be_unique"


def test_gate_warnings_only_pass(warnings_only: GateReport) -> None:
    assert warnings_only.passed is True
    assert [f.expectation for f in warnings_only.findings] == [
        "leads.status_raw.mapped",
        "activities.owner_id.known_user",
    ]
    assert [f.severity for f in warnings_only.findings] == ["warning", "warning"]


def test_gate_unknown_owner_counts(warnings_only: GateReport) -> None:
    finding = _by_name(warnings_only)["activities.owner_id.known_user"]
    assert finding.failed == 1
    assert finding.total == 3
    assert finding.examples == ("A3",)


def test_gate_clean_org_has_no_findings(clean: GateReport) -> None:
    assert clean.findings == []
    assert clean.passed is True
    assert clean.checks_run == len(CHECK_NAMES) - 1
    assert clean.skipped == {
        "leads.lifecycle_raw.mapped": "no lifecycle_raw values in the source"
    }


def test_gate_unmapped_share_above_critical() -> None:
    tables = _tables(
        {"leads": [("L4", "2025-01-04", "Nurture")]}, unmapped={"Nurture": 1}
    )
    config = CONFIG.model_copy(update={"gate": GateConfig(critical_unmapped_share=0.2)})
    report = run_gate(tables, config, as_of=AS_OF)
    assert report.passed is False
    assert [(f.expectation, f.severity) for f in report.findings] == [
        ("leads.status_raw.mapped", "critical")
    ]


def test_gate_unmapped_share_within_limit() -> None:
    tables = _tables(
        {"leads": [("L4", "2025-01-04", "Nurture")]}, unmapped={"Nurture": 1}
    )
    config = CONFIG.model_copy(update={"gate": GateConfig(max_unmapped_share=0.25)})
    report = run_gate(tables, config, as_of=AS_OF)
    assert report.findings == []


def test_gate_severity_override() -> None:
    tables = _tables({"leads": [("L1", "2025-01-04", "Open - Not Contacted")]})
    gate = GateConfig(
        severity={
            "leads.lead_id.unique": "warning",
            "accounts.account_id.unique": "off",
        }
    )
    report = run_gate(tables, CONFIG.model_copy(update={"gate": gate}), as_of=AS_OF)
    assert report.passed is True
    assert [(f.expectation, f.severity) for f in report.findings] == [
        ("leads.lead_id.unique", "warning")
    ]
    assert report.skipped["accounts.account_id.unique"] == "turned off in gate.severity"


@pytest.mark.parametrize(
    ("time_zone", "failed"),
    [
        pytest.param("UTC", 1, id="utc-next-day"),
        pytest.param("America/Los_Angeles", 0, id="pacific-same-day"),
    ],
)
def test_gate_close_date_in_org_time_zone(time_zone: str, failed: int) -> None:
    # Created at 03:00 UTC on 1 February, which is 31 January in Los Angeles.
    tables = _tables(
        {"opportunities": [("O2", "2025-02-01T03:00", dt.date(2025, 1, 31), 1.0)]}
    )
    config = CONFIG.model_copy(update={"calendar": CalendarConfig(time_zone=time_zone)})
    report = run_gate(tables, config, as_of=AS_OF)
    names = [f.expectation for f in report.findings]
    assert names.count("opportunities.close_date.not_before_created") == failed


def test_gate_module_defers_great_expectations() -> None:
    code = (
        "import sys, expectations.gate, flows.cli; "
        "print('great_expectations' in sys.modules)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.strip() == "False"


def test_gate_rejects_naive_as_of() -> None:
    with pytest.raises(InputError, match="has no time zone"):
        run_gate(_tables(), CONFIG, as_of=dt.datetime(2025, 6, 30))  # noqa: DTZ001


def test_plan_skips_missing_tables() -> None:
    tables = _tables(
        missing={"activities": "no Task or Event file", "users": "no User file"}
    )
    plan = plan_gate(tables, CONFIG, as_of=AS_OF)
    assert plan.skipped["activities"] == "no Task or Event file"
    assert plan.skipped["users"] == "no User file"
    assert "activities" not in [batch.table for batch in plan.batches]


def test_plan_skips_owner_check_without_users() -> None:
    tables = _tables(missing={"users": "no User file"})
    plan = plan_gate(tables, CONFIG, as_of=AS_OF)
    activities = next(batch for batch in plan.batches if batch.table == "activities")
    assert "activities.owner_id.known_user" not in [
        c.spec.name for c in activities.checks
    ]
    assert plan.skipped["activities.owner_id.known_user"] == "no User file"


def test_plan_skips_missing_column() -> None:
    tables = _tables()
    tables.missing["leads.created_at"] = "Lead has no CreatedDate column"
    plan = plan_gate(tables, CONFIG, as_of=AS_OF)
    assert plan.skipped["leads.created_at.not_null"] == "Lead has no CreatedDate column"
    assert plan.skipped["stage_events.entered_at.not_before_lead_created"] == (
        "Lead has no CreatedDate column"
    )


def test_plan_batch_keeps_only_checked_columns() -> None:
    plan = plan_gate(_tables(), CONFIG, as_of=AS_OF)
    campaigns = next(batch for batch in plan.batches if batch.table == "campaigns")
    assert campaigns.frame.columns == ["campaign_id", "cost"]


def test_gate_config_rejects_unknown_check() -> None:
    with pytest.raises(ValidationError, match="unknown check\\(s\\) 'leads.id.unique'"):
        GateConfig(severity={"leads.id.unique": "off"})


def test_gate_config_reads_unquoted_yaml_off() -> None:
    data = yaml.safe_load("severity: {leads.lead_id.unique: off}")
    assert GateConfig.model_validate(data).severity == {"leads.lead_id.unique": "off"}


def test_gate_config_rejects_critical_below_limit() -> None:
    with pytest.raises(
        ValidationError, match="must be at least max_unmapped_share 0.05"
    ):
        GateConfig(max_unmapped_share=0.05, critical_unmapped_share=0.01)


def _report() -> GateReport:
    finding = Finding(
        table="leads",
        expectation="leads.status_raw.mapped",
        severity="warning",
        failed=3,
        total=40,
        examples=("00Q1", "00Q2"),
        fix="Map each value.",
        detail="Values: 'A|B' (3).",
        expectation_type="expect_column_values_to_not_be_in_set",
    )
    critical = Finding(
        "leads", "leads.lead_id.unique", "critical", 2, 40, ("00Q9",), "Merge."
    )
    return GateReport(
        findings=[finding, critical],
        checks_run=30,
        duration_seconds=0.25,
        skipped={"users": "no User file"},
    )


def test_report_markdown_escapes_pipes() -> None:
    text = _report().markdown()
    assert "| warning | `leads.status_raw.mapped` | 3 of 40 | 00Q1, 00Q2 |" in text
    assert "Values: 'A\\|B' (3). Map each value. |" in text


def test_report_markdown_lists_critical_first() -> None:
    lines = _report().markdown().splitlines()
    assert lines[0] == (
        "Data-quality gate failed: 1 critical, 1 warning(s) from 30 checks in 0.25 s."
    )
    assert lines[4].startswith("| critical | `leads.lead_id.unique` |")
    assert lines[-1] == "- `users`: no User file"


def test_report_to_dict() -> None:
    data = _report().to_dict()
    assert data["passed"] is False
    assert data["checks_run"] == 30
    assert data["findings"][0]["examples"] == ["00Q1", "00Q2"]
    assert data["skipped"] == {"users": "no User file"}
    assert json.loads(json.dumps(data)) == data


def test_report_render_table_text() -> None:
    console = Console(width=100, color_system=None, record=True)
    console.print(_report().render_table())
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert lines[0] == (
        "Data-quality gate failed: 1 critical, 1 warning(s) from 30 checks in 0.25 s."
    )
    assert lines[4].split() == [
        "│", "critical", "│", "leads.", "│", "2", "of", "40", "│", "00Q9", "│",
        "Merge.", "│",
    ]  # fmt: skip
    assert lines[5].split() == ["│", "│", "lead_id.unique", "│", "│", "│", "│"]
    assert lines[8].split() == ["│", "│", "status_raw.mapped", "│", "│", "00Q2", "│",
                                "Map", "each", "value.", "│"]  # fmt: skip


@pytest.fixture(scope="module")
def sfdc_export() -> GateReport:
    config = load_config(SFDC_EXPORT / "revalign.yaml")
    tables = read_export(SFDC_EXPORT, config)
    return run_gate(tables, config, as_of=dt.datetime(2026, 6, 1, tzinfo=UTC))


def test_sfdc_export_passes_with_close_date_warning(sfdc_export: GateReport) -> None:
    assert sfdc_export.passed is True
    assert [(f.expectation, f.failed, f.total) for f in sfdc_export.findings] == [
        ("opportunities.close_date.not_before_created", 32, 36)
    ]


def test_sfdc_export_skips_what_it_lacks(sfdc_export: GateReport) -> None:
    assert (
        sfdc_export.skipped["leads.created_at.not_null"]
        == "Lead has no CreatedDate column"
    )
    assert (
        sfdc_export.skipped["activities"]
        == "no Task or Event file, so no sales activities"
    )
    assert "stage_events" in sfdc_export.skipped


def _run_cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["check", "data", *args])


def test_check_data_cli_passes_on_export() -> None:
    result = _run_cli(
        "--path", str(SFDC_EXPORT),
        "--config", str(SFDC_EXPORT / "revalign.yaml"),
        "--as-of", "2026-06-01",
    )  # fmt: skip
    assert result.exit_code == 0
    assert "32 of 36" in result.stdout
    assert "not checked: users: no User file" in result.stdout


def test_check_data_cli_critical_exit(tmp_path: Path) -> None:
    (tmp_path / "Lead.csv").write_text(
        "Id,Status,CreatedDate\n"
        "00Q000000000001AAA,Open - Not Contacted,2025-01-01T10:00:00Z\n"
        "00Q000000000001AAA,Open - Not Contacted,2025-01-02T10:00:00Z\n",
        encoding="utf-8",
    )
    result = _run_cli("--path", str(tmp_path), "--as-of", "2025-06-30", "--json")
    assert result.exit_code == 3
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert report["findings"][0]["expectation"] == "leads.lead_id.unique"
    assert report["findings"][0]["examples"] == ["00Q000000000001AAA"]


def test_check_data_cli_invalid_input(tmp_path: Path) -> None:
    result = _run_cli("--path", str(tmp_path / "absent"))
    assert result.exit_code == 2
    assert "not found" in result.stderr


# The validation worker: a child process that imports great_expectations while
# the parent extracts. It must give the same report as validating in-process.


@pytest.fixture(scope="module")
def faulty_in_worker() -> GateReport:
    tables = _tables(FAULTS, unmapped={"Nurture": 1})
    with ValidationWorker() as worker:
        return run_gate(tables, CONFIG, as_of=AS_OF, validator=worker)


def _without_timings(report: GateReport) -> dict[str, Any]:
    data = report.to_dict()
    del data["duration_seconds"], data["import_seconds"]
    return data


def test_worker_finds_every_fault(faulty_in_worker: GateReport) -> None:
    found = [
        (f.expectation, f.severity, f.failed, f.total, f.examples)
        for f in faulty_in_worker.findings
    ]
    assert found == EXPECTED


def test_worker_report_equals_in_process_report(
    faulty: GateReport, faulty_in_worker: GateReport
) -> None:
    assert _without_timings(faulty_in_worker) == _without_timings(faulty)


def _missing_column_suite() -> list[SuiteInput]:
    check = CheckInput(
        name="leads.score.not_null",
        expectation="ExpectColumnValuesToNotBeNull",
        kwargs={"column": "score"},
    )
    frame = pl.DataFrame({"lead_id": ["L1"]})
    return [SuiteInput(table="leads", frame=frame, checks=(check,))]


@pytest.mark.parametrize("where", ["in-process", "worker"])
def test_check_that_cannot_run_names_itself(where: str) -> None:
    validator = ValidationWorker() if where == "worker" else InProcessValidator()
    with validator, pytest.raises(GateError) as caught:
        validator.validate(_missing_column_suite())
    assert str(caught.value).startswith(
        "great_expectations could not evaluate check 'leads.score.not_null': "
    )
    assert "gate.severity.leads.score.not_null: off" in str(caught.value)


def test_worker_crash_becomes_gate_error() -> None:
    check = CheckInput(name="leads.x", expectation="ExpectNoSuchThing", kwargs={})
    frame = pl.DataFrame({"lead_id": ["L1"]})
    suite = SuiteInput(table="leads", frame=frame, checks=(check,))
    with ValidationWorker() as worker, pytest.raises(GateError) as caught:
        worker.validate([suite])
    message = str(caught.value)
    assert message.startswith(
        "the great_expectations validation process failed with status 1 before "
        "returning results ("
    )
    assert "-P -m expectations.worker < /dev/null" in message
    assert "AttributeError" in message
    assert "ExpectNoSuchThing" in message


def test_unused_worker_stops_on_close() -> None:
    worker = ValidationWorker()
    assert worker.returncode is None
    worker.close()
    assert worker.returncode == -9


def test_worker_exits_quietly_when_input_closes() -> None:
    child = subprocess.run(
        [sys.executable, "-P", "-m", "expectations.worker"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (child.returncode, child.stdout, child.stderr) == (0, b"", b"")


def test_loaded_process_validates_in_process() -> None:
    import expectations.suites  # noqa: F401

    with start_validator() as validator:
        assert isinstance(validator, InProcessValidator)


def test_fresh_process_starts_worker_without_loading_great_expectations() -> None:
    code = (
        "import sys\n"
        "from expectations.gate import start_validator\n"
        "with start_validator() as validator:\n"
        "    print(type(validator).__name__)\n"
        "print('great_expectations' in sys.modules)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert output.split() == ["ValidationWorker", "False"]


def test_check_data_subprocess_finds_close_dates() -> None:
    revalign = Path(sys.executable).parent / "revalign"
    command = [
        str(revalign), "check", "data", "--source", "salesforce-export",
        "--path", str(SFDC_EXPORT), "--config", str(SFDC_EXPORT / "revalign.yaml"),
        "--as-of", "2026-06-01T00:00:00Z", "--json",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    found = [(f["expectation"], f["failed"], f["total"]) for f in report["findings"]]
    assert found == [("opportunities.close_date.not_before_created", 32, 36)]
    assert report["passed"] is True


def test_demo_org_passes_gate_cleanly() -> None:
    # The generator's unmapped statuses (65 of 5,000 current leads, 1.3%) stay
    # under the 2% warning limit, so the demo org raises no finding.
    gate = run_score(ScoreRequest(demo=True)).document["gate"]
    assert gate["passed"] is True
    assert gate["findings"] == []
    assert gate["checks_run"] == 47
    assert gate["skipped"] == {
        "leads.lifecycle_raw.mapped": "no lifecycle_raw values in the source"
    }


def _workers_with_tmpdir(tmpdir: Path) -> list[int]:
    """Return the ids of running validation workers whose TMPDIR is ``tmpdir``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes()
            environment = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"expectations.worker" in command and (
            f"TMPDIR={tmpdir}".encode() in environment.split(b"\0")
        ):
            found.append(int(proc.name))
    return found


def _start_demo_run(tmpdir: Path, out: Path) -> subprocess.Popen[bytes]:
    """Start ``revalign score --demo`` and return once its worker is running."""
    revalign = Path(sys.executable).parent / "revalign"
    run = subprocess.Popen(
        [str(revalign), "score", "--demo", "--out", str(out)],
        env={**os.environ, "TMPDIR": str(tmpdir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not _workers_with_tmpdir(tmpdir) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _workers_with_tmpdir(tmpdir)
    return run


def test_sigterm_stops_worker_and_cleans_up(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    run = _start_demo_run(tmpdir, tmp_path / "out")

    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=60) == 143
    assert _workers_with_tmpdir(tmpdir) == []
    assert list(tmpdir.iterdir()) == []


@pytest.mark.parametrize(
    ("arguments", "gated"),
    [
        pytest.param(["score", "--demo"], True, id="score"),
        pytest.param(["-v", "score", "--demo"], True, id="verbose-score"),
        pytest.param(["check", "data", "--path", "x"], True, id="check-data"),
        pytest.param(["check", "salesforce"], False, id="check-salesforce"),
        pytest.param(["score", "--help"], False, id="help"),
        pytest.param(["history", "--org", "score"], False, id="history"),
        pytest.param([], False, id="nothing"),
    ],
)
def test_entry_runs_gate(arguments: list[str], gated: bool) -> None:
    assert _runs_gate(arguments) is gated


def test_entry_stops_untaken_worker_at_exit(tmp_path: Path) -> None:
    revalign = Path(sys.executable).parent / "revalign"
    finished = subprocess.run(
        [str(revalign), "score", "--no-such-option"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 2
    assert "No such option: --no-such-option" in finished.stderr
    assert _workers_with_tmpdir(tmp_path) == []


def test_sigkill_of_parent_ends_worker(tmp_path: Path) -> None:
    run = _start_demo_run(tmp_path, tmp_path / "out")

    run.kill()
    assert run.wait(timeout=60) == -signal.SIGKILL
    # The worker's import alone takes over a second, so a worker that outlived
    # its parent would still be listed after this wait.
    time.sleep(0.5)
    assert _workers_with_tmpdir(tmp_path) == []


def test_lifecycle_mapping_check_reads_prefixed_keys() -> None:
    leads = [("L7", "2025-01-04", "Working - Contacted")]
    unmapped = {"lifecyclestage=zombie": 3, "Paused": 1}
    tables = _tables({"leads": leads}, unmapped=unmapped)
    frame = tables.tables["leads"].with_columns(
        lifecycle_raw=pl.Series(["lead", "lead", "zombie", "zombie"])
    )
    tables.tables["leads"] = frame
    plan = plan_gate(tables, CONFIG, as_of=AS_OF)
    checks = {c.spec.name: c for batch in plan.batches for c in batch.checks}
    assert checks["leads.lifecycle_raw.mapped"].kwargs["value_set"] == ["zombie"]
    assert checks["leads.status_raw.mapped"].kwargs["value_set"] == ["Paused"]


def test_gate_examples_hide_personal_ids() -> None:
    extra = {
        "activities": [
            ("lisa@example.com", "L1", "U1", "2025-01-06"),
            ("lisa@example.com", "L1", "U1", "2025-01-07"),
            ("+1 415 555 0166", "L1", "U1", "2025-01-06"),
            ("+1 415 555 0166", "L1", "U1", "2025-01-07"),
        ]
    }
    report = run_gate(_tables(extra), CONFIG, as_of=AS_OF)
    finding = _by_name(report)["activities.activity_id.unique"]
    assert finding.examples == ("<e-mail address>", "<phone number>")


def test_unmapped_detail_explains_placeholders() -> None:
    extra = {"leads": [("L4", "2025-01-04", "<phone number>")]}
    tables = _tables(extra, unmapped={"<phone number>": 1})
    report = run_gate(tables, CONFIG, as_of=AS_OF)
    finding = _by_name(report)["leads.status_raw.mapped"]
    assert finding.detail.endswith(
        "history: '<phone number>' (1). The placeholders stand for e-mail addresses "
        "or phone numbers typed into the field: correct those records in the CRM, "
        "do not map them."
    )
