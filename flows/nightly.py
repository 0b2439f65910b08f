"""The Prefect flow: the same pipeline steps as the CLI, run as tasks.

Extraction and writing are I/O and retry with exponential backoff when the error
is retryable (a timeout, a 5xx, a rate limit); the in-memory steps do not retry.
Task results are not cached or persisted, because they are data frames that
belong to one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows import pipeline
from flows.pipeline import ScoreRequest, ScoreResult

IO_RETRIES = 3


def _retry_if_retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only errors that may succeed later, never invalid input."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - the state holds any task error
        return bool(getattr(error, "retryable", isinstance(error, OSError)))
    return False


_io_task = task(
    cache_policy=NO_CACHE,
    retries=IO_RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_jitter_factor=0.5,
    retry_condition_fn=_retry_if_retryable,
    persist_result=False,
)
_step_task = task(cache_policy=NO_CACHE, persist_result=False)

load_inputs_task = _step_task(pipeline.load_inputs, name="load-inputs")
extract_task = _io_task(pipeline.extract_step, name="extract")
gate_task = _step_task(pipeline.gate_step, name="gate")
measure_task = _step_task(pipeline.measure_step, name="measure")
score_task = _step_task(pipeline.score_step, name="score")
audit_task = _step_task(pipeline.audit_step, name="audit")
write_task = _io_task(pipeline.write_outputs, name="write-outputs")


def _publish_artifacts(document: dict[str, Any], org_id: str) -> None:
    from flows.report import dimension_rows, markdown_report

    key = f"revalign-{org_id}".lower().replace("_", "-").replace(".", "-")
    create_table_artifact(
        key=f"{key}-dimensions",
        table=dimension_rows(document),
        description=f"Alignment scorecard of {org_id} as of {document['as_of']}",
    )
    create_markdown_artifact(
        key=f"{key}-report",
        markdown=markdown_report(document),
        description=f"Alignment report of {org_id}",
    )


@flow(name="revalign-score", log_prints=False)
def score_flow(
    source: str = "salesforce-export",
    path: str | None = None,
    config_path: str | None = None,
    survey_path: str | None = None,
    as_of: str | None = None,
    out: str | None = None,
    demo: bool = False,
    demo_leads: int = 5000,
    state_dir: str | None = None,
) -> dict[str, Any]:
    """Score one org: extract, gate, measure, score, write; returns the scorecard."""
    request = ScoreRequest(
        source=source,
        path=Path(path) if path else None,
        config_path=Path(config_path) if config_path else None,
        survey_path=Path(survey_path) if survey_path else None,
        as_of=pipeline.parse_as_of(as_of) if as_of else None,
        out=Path(out) if out else None,
        demo=demo,
        demo_leads=demo_leads,
        state_dir=Path(state_dir) if state_dir else None,
    )
    config, survey = load_inputs_task(request)

    import tempfile

    with tempfile.TemporaryDirectory(prefix="revalign-flow-") as work:
        extracted, demo_as_of, demo_survey = extract_task(request, config, Path(work))
        if survey is None and demo_survey is not None:
            from scoring.survey import read_survey

            survey = read_survey(demo_survey)
    tables = extracted.tables
    as_of_time, as_of_basis = pipeline.resolve_as_of(request, extracted, demo_as_of)

    gate = gate_task(tables, config, as_of_time)
    metrics, handoffs = measure_task(tables, config, as_of_time)
    scorecard = score_task(metrics, survey, config)
    audit = audit_task(metrics, survey, config)

    document = pipeline.assemble(
        request=request, config=config, tables=tables, as_of=as_of_time,
        as_of_basis=as_of_basis, metrics=metrics, scorecard=scorecard,
        audit=audit, gate=gate, survey=survey,
    )  # fmt: skip
    result = ScoreResult(document=document, handoffs=handoffs)
    if request.out is not None:
        write_task(result, request.out)
    _publish_artifacts(document, config.org.id)
    return document

