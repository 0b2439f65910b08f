"""The DuckDB history: replace-by-day, failure records, migrations, trends, CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from rich.console import Console
from typer.testing import CliRunner

from connectors.schema import CanonicalTables
from flows.cli import app
from flows.history import (
    SCHEMA_VERSION,
    HistoryError,
    HistoryStore,
    load_watermarks,
    migrate,
    save_watermarks,
    store_run,
    write_extract,
)
from flows.history_cli import build_trend, render_trend
from tests.conftest import CASES_DIR

runner = CliRunner()
CLOCK_CASE = CASES_DIR / "sf-export-business-hours"


def scorecard(
    day: str,
    *,
    overall: float | None,
    band: str | None,
    levels: dict[str, int],
    metrics: dict[str, tuple[float | None, int]],
    org: str = "acme",
) -> dict[str, Any]:
    """Build a minimal scorecard document with the fields the history reads."""
    return {
        "org": {"id": org, "segment": None},
        "as_of": f"{day}T06:00:00Z",
        "source": {"name": "salesforce-export"},
        "gate": {"passed": True, "checks_run": 3, "findings": []},
        "metrics": {
            key: {
                "label": key.replace("_", " "),
                "value": value,
                "population": n,
                "unit": "share",
                "measurable": value is not None,
                "note": "",
            }
            for key, (value, n) in metrics.items()
        },
        "scorecard": {
            "overall": {
                "score": overall,
                "band": None if band is None else {"name": band, "lower": 2.0},
            },
            "dimensions": [
                {
                    "key": key,
                    "name": key,
                    "score": float(level),
                    "level": level,
                    "source": "measured",
                    "confidence": "high",
                }
                for key, level in levels.items()
            ],
        },
        "audit": {
            "dimensions": [
                {
                    "key": "lead_handoff",
                    "measured_level": levels.get("lead_handoff"),
                    "everyone": {"self_reported": 4.0, "verdict": "over-claim"},
                    "perception_gap": True,
                }
            ],
            "red_flags": [
                {"key": "sla_breached", "dimension": "sla_compliance", "message": "m"}
            ],
        },
    }


DAY_ONE = scorecard(
    "2025-03-03",
    overall=2.4,
    band="Developing",
    levels={"lead_handoff": 3, "sla_compliance": 2},
    metrics={"sla_breach_rate": (0.25, 40), "sal_rate": (0.5, 30)},
)
DAY_TWO = scorecard(
    "2025-03-04",
    overall=2.8,
    band="Defined",
    levels={"lead_handoff": 2, "sla_compliance": 3},
    metrics={"sla_breach_rate": (0.1, 42), "sal_rate": (0.5, 30)},
)


def count(store: HistoryStore, table: str) -> int:
    return store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_store_rerun_replaces_day(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    store_run(DAY_ONE, None, path)
    rerun = scorecard(
        "2025-03-03",
        overall=3.0,
        band="Defined",
        levels={"lead_handoff": 3},
        metrics={"sla_breach_rate": (0.3, 44)},
    )
    store_run(rerun, None, path)

    with HistoryStore(path) as store:
        runs = store.completed_runs("acme")
        assert len(runs) == 1
        assert runs[0].overall_score == 3.0
        assert runs[0].metrics == {"sla_breach_rate": 0.3}
        assert count(store, "metrics") == 1
        assert count(store, "dimensions") == 1
        assert count(store, "audit") == 1
        assert count(store, "red_flags") == 1


def test_store_keeps_other_orgs_and_days(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    other = {**DAY_ONE, "org": {"id": "globex", "segment": None}}
    for document in (DAY_ONE, DAY_TWO, other, DAY_TWO):
        store_run(document, None, path)

    with HistoryStore(path) as store:
        assert [run.day for run in store.completed_runs("acme")] == [
            dt.date(2025, 3, 3),
            dt.date(2025, 3, 4),
        ]
        assert len(store.completed_runs("globex")) == 1
        assert count(store, "metrics") == 6


def test_store_failed_save_rolls_back(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    store_run(DAY_ONE, None, path)
    broken = scorecard(
        "2025-03-03",
        overall=1.0,
        band="Ad hoc",
        levels={"lead_handoff": 1},
        metrics={"sla_breach_rate": (0.9, 10)},
    )
    broken["metrics"]["sla_breach_rate"]["population"] = "many"

    with pytest.raises(duckdb.ConversionException):
        store_run(broken, None, path)
    with HistoryStore(path) as store:
        runs = store.completed_runs("acme")
        assert len(runs) == 1
        assert runs[0].overall_score == 2.4
        assert count(store, "metrics") == 2


def test_failure_record_leaves_day_scored(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    store_run(DAY_ONE, None, path)
    gate = {
        "passed": False,
        "findings": [
            {
                "expectation": "activities.occurred_at.not_after_as_of",
                "table": "activities",
                "severity": "critical",
                "failed": 3,
                "total": 7,
            }
        ],
    }
    with HistoryStore(path) as store:
        store.record_failure(
            org_id="acme",
            day=dt.date(2025, 3, 3),
            source="salesforce-export",
            error="the gate failed",
            gate=gate,
        )

        assert len(store.completed_runs("acme")) == 1
        failures = store.failures("acme")
        assert len(failures) == 1
        assert failures[0]["error"] == "the gate failed"
        assert failures[0]["gate_passed"] is False
        finding = store.db.execute(
            "SELECT expectation, failed, total FROM gate_findings"
        ).fetchall()
        assert finding == [("activities.occurred_at.not_after_as_of", 3, 7)]


def test_trend_deltas_across_days(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    store_run(DAY_ONE, None, path)
    store_run(DAY_TWO, None, path)

    with HistoryStore(path) as store:
        trend = build_trend(store, "acme")
    first, second = trend["runs"]
    assert first["overall"]["delta"] is None
    assert second["overall"]["delta"] == 0.4
    assert second["overall"]["band"] == "Defined"
    assert second["dimensions"]["lead_handoff"]["level_change"] == -1
    assert second["dimensions"]["sla_compliance"]["delta"] == 1.0
    changes = {row["key"]: row for row in trend["metric_changes"]["metrics"]}
    assert trend["metric_changes"]["from_day"] == "2025-03-03"
    assert changes["sla_breach_rate"]["delta"] == -0.15
    assert changes["sla_breach_rate"]["changed"] is True
    assert changes["sla_breach_rate"]["previous_population"] == 40
    assert changes["sal_rate"]["changed"] is False


def test_trend_renders_tables(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    store_run(DAY_ONE, None, path)
    store_run(DAY_TWO, None, path)
    console = Console(width=120, color_system=None, record=True)

    with HistoryStore(path) as store:
        render_trend(build_trend(store, "acme"), console)
    text = console.export_text()
    assert " 2025-03-03   2.40         Developing     3.00   2.00 " in text
    assert " 2025-03-04   2.80  +0.40  Defined       2.00▼  3.00▲ " in text
    assert "│ sla breach rate │    25.0% │   10.0% │ -15.00 pp │    40 → 42 │" in text
    assert "1 metric(s) unchanged" in text


def test_migrate_upgrades_version_one(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    with duckdb.connect(str(path)) as db:
        assert migrate(db, target=1) == 1
        db.execute(
            "INSERT INTO runs (run_id, org_id, as_of_day, status, recorded_at, "
            "overall_score) VALUES ('old', 'acme', DATE '2024-12-31', 'completed', "
            "TIMESTAMPTZ '2025-01-01 06:00:00+00', 2.5)"
        )

    with HistoryStore(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        runs = store.completed_runs("acme")
        assert [run.run_id for run in runs] == ["old"]
        assert runs[0].overall_score == 2.5
        row = store.db.execute("SELECT extract_path FROM runs").fetchone()
        assert row == (None,)
    save_watermarks(
        path, "acme", "salesforce", {"Lead": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}
    )
    assert load_watermarks(path, "acme", "salesforce") == {
        "Lead": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    }


def test_migrate_rejects_newer_file(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    with duckdb.connect(str(path)) as db:
        migrate(db)
        db.execute("INSERT INTO schema_version VALUES (99, 'future', NULL)")

    with pytest.raises(HistoryError, match="schema version 99, newer than"):
        HistoryStore(path).__enter__()


def test_watermarks_replace_per_object(tmp_path: Path) -> None:
    path = tmp_path / "history.duckdb"
    berlin = dt.timezone(dt.timedelta(hours=1))
    save_watermarks(
        path,
        "acme",
        "salesforce",
        {
            "Lead": dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            "Task": dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
        },
    )
    save_watermarks(
        path, "acme", "salesforce", {"Lead": dt.datetime(2025, 2, 1, 1, tzinfo=berlin)}
    )
    save_watermarks(
        path, "acme", "hubspot", {"contacts": dt.datetime(2025, 3, 1, tzinfo=dt.UTC)}
    )

    marks = load_watermarks(path, "acme", "salesforce")
    assert marks == {
        "Lead": dt.datetime(2025, 2, 1, tzinfo=dt.UTC),
        "Task": dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
    }
    assert load_watermarks(path, "globex", "salesforce") == {}
    assert load_watermarks(tmp_path / "none.duckdb", "acme", "salesforce") == {}


def test_watermarks_reject_naive_time(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="'Lead' has no time zone"):
        save_watermarks(
            tmp_path / "h.duckdb",
            "acme",
            "salesforce",
            {"Lead": dt.datetime(2025, 1, 1)},  # noqa: DTZ001 - naive on purpose
        )


def test_write_extract_replaces_day(tmp_path: Path) -> None:
    leads = pl.DataFrame({"lead_id": ["00Q1", "00Q2"], "score": [10.0, None]})
    first = CanonicalTables(tables={"leads": leads}, counts={"Lead": 2})
    second = CanonicalTables(tables={"leads": leads.head(1)}, counts={"Lead": 1})
    day = dt.date(2025, 3, 3)

    write_extract(first, tmp_path, "acme", day)
    folder = write_extract(second, tmp_path, "acme", day)

    assert folder == tmp_path / "extracts" / "acme" / "2025-03-03"
    assert_frame_equal(pl.read_parquet(folder / "leads.parquet"), leads.head(1))
    assert json.loads((folder / "meta.json").read_text())["counts"] == {"Lead": 1}
    assert sorted(p.name for p in folder.parent.iterdir()) == ["2025-03-03"]


def score_case(as_of: str, history: Path, out: Path) -> Any:
    return runner.invoke(
        app,
        [
            "score",
            "--path",
            str(CLOCK_CASE),
            "--config",
            str(CLOCK_CASE / "revalign.yaml"),
            "--as-of",
            as_of,
            "--out",
            str(out),
            "--history",
            str(history),
            "--json",
        ],
    )


def test_score_command_stores_runs(tmp_path: Path) -> None:
    history = tmp_path / "state" / "history.duckdb"
    for as_of in ("2025-07-15", "2025-07-16", "2025-07-16T12:00:00Z"):
        result = score_case(as_of, history, tmp_path / "out")
        assert result.exit_code == 0, result.stderr

    shown = runner.invoke(
        app, ["history", "--org", "clock-rules", "--db", str(history), "--json"]
    )
    assert shown.exit_code == 0, shown.stderr
    trend = json.loads(shown.stdout)
    assert [run["day"] for run in trend["runs"]] == ["2025-07-15", "2025-07-16"]
    changes = {row["key"]: row for row in trend["metric_changes"]["metrics"]}
    # One more handoff fell due on 16 July, and it was breached: 3 of 5 became 4 of 6.
    assert changes["sla_breach_rate"]["previous"] == 0.6
    assert changes["sla_breach_rate"]["current"] == pytest.approx(4 / 6)
    assert changes["sla_breach_rate"]["delta"] == pytest.approx(0.066667)
    assert changes["sla_breach_rate"]["population"] == 6
    extracts = history.parent / "extracts" / "clock-rules"
    assert sorted(p.name for p in extracts.iterdir()) == ["2025-07-15", "2025-07-16"]
    assert pl.read_parquet(extracts / "2025-07-16" / "leads.parquet").height == 6


def test_score_command_records_gate_failure(tmp_path: Path) -> None:
    history = tmp_path / "history.duckdb"
    result = score_case("2025-07-01", history, tmp_path / "out")
    assert result.exit_code == 3

    with HistoryStore(history) as store:
        failures = store.failures("clock-rules")
        assert len(failures) == 1
        assert failures[0]["day"] == dt.date(2025, 7, 1)
        assert failures[0]["gate_passed"] is False
        assert store.completed_runs("clock-rules") == []
        assert count(store, "gate_findings") == 4


def test_gate_failure_keeps_scorecard_and_saves_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    history = tmp_path / "history.duckdb"
    assert score_case("2025-07-15", history, out).exit_code == 0
    scorecard = (out / "scorecard.json").read_bytes()

    # On 1 July some of the case's activities are still in the future: critical.
    stopped = score_case("2025-07-01", history, out)
    assert stopped.exit_code == 3
    assert (out / "scorecard.json").read_bytes() == scorecard
    saved = out / "gate-failed.json"
    assert (
        f"Saved the gate report to {saved}; the previous scorecard there was kept."
        in " ".join(stopped.stderr.split())
    )
    report = json.loads(saved.read_text(encoding="utf-8"))
    assert report["org"] == "clock-rules"
    assert report["source"] == "salesforce-export"
    assert report["as_of"] == "2025-07-01T00:00:00Z"
    assert report["previous_scorecard_kept"] is True
    assert report["gate"]["passed"] is False
    assert len(report["gate"]["findings"]) == 4
    assert sorted(p.name for p in out.iterdir()) == [
        "gate-failed.json",
        "handoffs.csv",
        "report.md",
        "scorecard.json",
    ]

    # score_case passes --json, so the record is printed on standard output too.
    assert json.loads(stopped.stdout) == report

    assert score_case("2025-07-16", history, out).exit_code == 0
    assert not saved.exists()


def test_history_command_without_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.duckdb"
    result = runner.invoke(app, ["history", "--org", "acme", "--db", str(missing)])
    assert result.exit_code == 2
    assert "no history file at" in result.stderr
    assert not missing.exists()
