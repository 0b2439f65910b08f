"""The Prefect flow runs the pipeline steps as tasks and gives the CLI's scorecard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flows.pipeline import ScoreRequest, run_score


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Start one temporary Prefect server for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_score_flow_matches_cli_on_demo(prefect_harness: None, tmp_path: Path) -> None:
    from flows.nightly import score_flow

    state = score_flow(demo=True, demo_leads=600, out=str(tmp_path / "flow"), return_state=True)
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
