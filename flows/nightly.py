"""The Prefect flow: the same pipeline steps as the CLI, run as tasks.

Extraction and writing are I/O and retry with exponential backoff when the error
is retryable (a timeout, a 5xx, a rate limit); the in-memory steps do not retry.
Task results are not cached or persisted, because they are data frames that
belong to one run.

:func:`score_flow` scores one org and, when a history file applies, stores the
run (or its failure) and sends its alerts. :func:`nightly_flow` is what the
nightly deployment runs: it scores each org of a config or org list as a subflow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from config.models import OrgConfig
from connectors.errors import RevalignError
from connectors.schema import CanonicalTables
from flows import alerts, history, pipeline
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
store_task = _io_task(history.store_run, name="store-history")
store_failure_task = _io_task(history.store_failure, name="store-failure")
alert_task = _step_task(alerts.alert_after_run, name="send-alerts")
failure_alert_task = _step_task(alerts.alert_after_failure, name="send-failure-alerts")


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
    history_path: str | None = None,
) -> dict[str, Any]:
    """Score one org: extract, gate, measure, score, write; returns the scorecard.

    With ``history_path``, or a ``history`` section in the org config, the run is
    stored and the alert rules are checked; a failed run stores its failure
    record, sends its failure alerts and then fails.
    """
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
    explicit_history = Path(history_path) if history_path else None
    config = None
    try:
        config, survey = load_inputs_task(request)
        document, tables = _score(request, config, survey)
    except Exception as error:
        _save_gate_failure(request, error)
        _store_failure(request, config, explicit_history, error)
        raise

    history_file = history.history_path_for(config, explicit_history)
    if history_file is not None:
        keep = config.history is None or config.history.keep_extracts
        run_id = store_task(
            document,
            tables,
            history_file,
            keep_extracts=keep,
            flow_run_id=_flow_run_id(),
        )
        alert_task(document, config, history_file, run_id)
    return document


def _score(
    request: ScoreRequest, config: OrgConfig, survey: Any
) -> tuple[dict[str, Any], CanonicalTables]:
    """Run the steps after loading the inputs; returns the scorecard and the tables."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="revalign-flow-") as work:
        extracted, demo_as_of, demo_survey = extract_task(request, config, Path(work))
        if survey is None and demo_survey is not None:
            from scoring.survey import read_survey

            survey = read_survey(demo_survey)
    tables = extracted.tables
    as_of_time, as_of_basis = pipeline.resolve_as_of(request, extracted, demo_as_of)

    gate = gate_task(tables, config, as_of_time)
    metrics, handoffs = measure_task(tables, config, as_of_time, gate)
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
    return document, tables


def _save_gate_failure(request: ScoreRequest, error: Exception) -> None:
    """Write the gate report of a run the gate stopped into its output folder.

    Any error here is logged and not raised, so the run's own error is the one
    the flow fails with.
    """
    if not isinstance(error, pipeline.GateFailed) or request.out is None:
        return
    try:
        pipeline.write_gate_failure(error, request.out, source=request.source_name)
    except Exception:  # noqa: BLE001 - the run's own error must surface
        get_run_logger().exception("the gate report was not saved in %s", request.out)


def _store_failure(
    request: ScoreRequest,
    config: OrgConfig | None,
    explicit_history: Path | None,
    error: Exception,
) -> None:
    """Store a failed run's record and send its alerts when a history applies.

    Errors here are logged, never raised, so the run's own error is the one the
    flow fails with.
    """
    history_file = history.history_path_for(config, explicit_history)
    if history_file is None:
        return
    report = getattr(error, "report", None)
    gate = None if report is None else report.to_dict()
    message = str(error) if isinstance(error, RevalignError) else repr(error)
    day = history.failure_day(request.as_of)
    org_id = "unknown" if config is None else config.org.id
    try:
        run_id = store_failure_task(
            history_file, org_id=org_id, day=day,
            source=request.source_name,
            error=message, gate=gate, flow_run_id=_flow_run_id(),
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - the run's own error must surface
        get_run_logger().exception("the failure of org %s was not stored", org_id)
        run_id = None
    if config is not None:
        failure_alert_task(
            config, history_file, day=day, error=message, gate=gate, run_id=run_id
        )


def _flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return None
    return str(context.flow_run.id)


@flow(name="revalign-nightly", log_prints=False)
def nightly_flow(config_path: str, as_of: str | None = None) -> dict[str, str]:
    """Score each org of a config or org list as its own subflow run.

    One org's failure does not stop the others: it is stored and alerted by its
    subflow. Returns ``{org id: "completed" or "failed"}``, or raises once every
    org has run when any of them failed, so the nightly run shows as failed.
    """
    from flows.deploy import load_plan

    plan = load_plan(Path(config_path))
    history_file = str(plan.history.path)
    outcomes: dict[str, str] = {}
    for org in plan.orgs:
        if org.config is None:
            _store_invalid_org(org.org_id, org.error or "invalid config", plan, as_of)
            outcomes[org.org_id] = "failed"
            continue
        scorer = score_flow.with_options(flow_run_name=f"score-{org.org_id}")
        state = scorer(
            **org.flow_parameters(), as_of=as_of, history_path=history_file,
            return_state=True,
        )  # fmt: skip
        outcomes[org.org_id] = "completed" if state.is_completed() else "failed"

    failed = sorted(
        org_id for org_id, outcome in outcomes.items() if outcome == "failed"
    )
    if failed:
        msg = (
            f"{len(failed)} of {len(outcomes)} org(s) failed: {', '.join(failed)}; see "
            f"their subflow runs and `revalign history --org ID`"
        )
        raise RevalignError(msg)
    return outcomes


def _store_invalid_org(org_id: str, error: str, plan: Any, as_of: str | None) -> None:
    """Store the failure of an org whose config is invalid; it has no alert rules."""
    day = history.failure_day(pipeline.parse_as_of(as_of) if as_of else None)
    get_run_logger().error("org %s was not scored: %s", org_id, error)
    store_failure_task(
        plan.history.path, org_id=org_id, day=day, source=None, error=error
    )
