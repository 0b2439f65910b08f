"""The Prefect flow runs the pipeline steps as tasks and gives the CLI's scorecard."""

from __future__ import annotations

import json
from pathlib import Path

from flows.pipeline import ScoreRequest, run_score


def test_score_flow_matches_cli_on_demo(prefect_harness: None, tmp_path: Path) -> None:
    from flows.nightly import score_flow

    state = score_flow(
        demo=True, demo_leads=600, out=str(tmp_path / "flow"), return_state=True
    )
    assert state.is_completed()
    flow_document = state.result()

    cli_document = run_score(ScoreRequest(demo=True, demo_leads=600)).document
    assert flow_document["scorecard"] == cli_document["scorecard"]
    assert flow_document["metrics"] == cli_document["metrics"]
    assert (tmp_path / "flow" / "scorecard.json").is_file()
    assert (tmp_path / "flow" / "report.md").is_file()


def test_score_flow_records_task_runs(prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.nightly import score_flow

    state = score_flow(demo=True, demo_leads=300, return_state=True)
    flow_run_id = state.state_details.flow_run_id

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    names = sorted(run.name.rsplit("-", 1)[0] for run in runs)
    assert names == ["audit", "extract", "gate", "load-inputs", "measure", "score"]
    assert all(run.state.is_completed() for run in runs)


def test_score_flow_stores_history(prefect_harness: None, tmp_path: Path) -> None:
    from flows.history import HistoryStore
    from flows.nightly import score_flow

    history = tmp_path / "history.duckdb"
    state = score_flow(
        demo=True,
        demo_leads=300,
        as_of="2025-11-01T00:00:00Z",
        history_path=str(history),
        return_state=True,
    )

    assert state.is_completed()
    with HistoryStore(history) as store:
        runs = store.completed_runs("demo")
    assert [run.day.isoformat() for run in runs] == ["2025-11-01"]
    assert runs[0].overall_score == state.result()["scorecard"]["overall"]["score"]
    assert (tmp_path / "extracts" / "demo" / "2025-11-01" / "leads.parquet").is_file()


def test_score_flow_stores_gate_failure(prefect_harness: None, tmp_path: Path) -> None:
    from flows.history import HistoryStore
    from flows.nightly import score_flow
    from tests.conftest import CASES_DIR

    case = CASES_DIR / "sf-export-business-hours"
    history = tmp_path / "history.duckdb"
    out = tmp_path / "out"
    state = score_flow(
        path=str(case),
        config_path=str(case / "revalign.yaml"),
        as_of="2025-07-01T00:00:00Z",
        history_path=str(history),
        out=str(out),
        return_state=True,
    )

    assert state.is_failed()
    assert sorted(p.name for p in out.iterdir()) == ["gate-failed.json"]
    saved = json.loads((out / "gate-failed.json").read_text(encoding="utf-8"))
    assert saved["previous_scorecard_kept"] is False
    assert saved["gate"]["passed"] is False
    with HistoryStore(history) as store:
        failures = store.failures("clock-rules")
        completed = store.completed_runs("clock-rules")
    assert [failure["day"].isoformat() for failure in failures] == ["2025-07-01"]
    assert failures[0]["gate_passed"] is False
    assert completed == []
