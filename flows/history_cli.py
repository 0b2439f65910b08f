"""``revalign history``: an org's scores over time and what changed in the last run.

Also the glue that lets ``revalign score`` store its run when a history file is
configured or given with ``--history``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from connectors.errors import RevalignError
from flows.report import format_score

if TYPE_CHECKING:
    from flows.history import HistoryStore, RunSummary

DEFAULT_HISTORY = Path("revalign-state/history.duckdb")
# Column headers of the trend table, in the rubric's order, short enough for 80
# columns.
SHORT_NAMES = {
    "shared_definitions": "defs",
    "lead_handoff": "handoff",
    "sla_compliance": "SLA",
    "attribution": "attrib",
    "strategic_planning": "plan",
}
_DELTA_DIGITS = 6


def build_trend(store: HistoryStore, org_id: str) -> dict[str, Any]:
    """Return the org's runs with deltas and the metric changes since the run before.

    Deltas are ``None`` where either value is missing. Metric changes compare the
    latest completed run with the one before it.
    """
    runs = store.completed_runs(org_id)
    rows = [
        _run_row(run, before) for before, run in zip([None, *runs], runs, strict=False)
    ]
    changes = None
    if runs:
        previous = runs[-2] if len(runs) > 1 else None
        changes = _metric_changes(store, runs[-1], previous)
    return {
        "org": org_id,
        "history": str(store.path),
        "runs": rows,
        "metric_changes": changes,
        "failures": [_failure_row(failure) for failure in store.failures(org_id)],
    }


def _run_row(run: RunSummary, before: RunSummary | None) -> dict[str, Any]:
    dimensions = {}
    for key, score in run.scores.items():
        level = run.levels.get(key)
        dimensions[key] = {
            "score": score,
            "level": level,
            "delta": _delta(score, None if before is None else before.scores.get(key)),
            "level_change": _delta(
                level, None if before is None else before.levels.get(key)
            ),
        }
    before_score = None if before is None else before.overall_score
    return {
        "day": run.day.isoformat(),
        "as_of": None if run.as_of is None else run.as_of.isoformat(),
        "source": run.source,
        "overall": {
            "score": run.overall_score,
            "band": run.overall_band,
            "delta": _delta(run.overall_score, before_score),
        },
        "dimensions": dimensions,
    }


def _metric_changes(
    store: HistoryStore, latest: RunSummary, previous: RunSummary | None
) -> dict[str, Any]:
    old = (
        {}
        if previous is None
        else {r["key"]: r for r in store.metric_rows(previous.run_id)}
    )
    rows = []
    for row in store.metric_rows(latest.run_id):
        before = old.get(row["key"], {}).get("value")
        delta = _delta(row["value"], before)
        rows.append(
            {
                "key": row["key"],
                "label": row["label"],
                "unit": row["unit"],
                "previous": before,
                "current": row["value"],
                "delta": delta,
                "changed": previous is not None and before != row["value"],
                "population": row["population"],
                "previous_population": old.get(row["key"], {}).get("population"),
            }
        )
    return {
        "from_day": None if previous is None else previous.day.isoformat(),
        "to_day": latest.day.isoformat(),
        "metrics": rows,
    }


def _failure_row(failure: dict[str, Any]) -> dict[str, Any]:
    return {
        "day": failure["day"].isoformat(),
        "recorded_at": failure["recorded_at"].isoformat(),
        "gate_passed": failure["gate_passed"],
        "error": failure["error"],
    }


def _delta(now: float | None, before: float | None) -> float | None:
    if now is None or before is None:
        return None
    return round(now - before, _DELTA_DIGITS)


def render_trend(trend: dict[str, Any], console: Console) -> None:
    """Print the trend table, the metric changes and any failed runs."""
    if not trend["runs"]:
        console.print(
            f"No completed runs of org {trend['org']!r} in {trend['history']}."
        )
    else:
        console.print(trend_table(trend))
        changes = trend["metric_changes"]
        if changes["from_day"] is None:
            console.print("One run so far, so there are no metric changes to show.")
        else:
            console.print(changes_table(changes))
    if trend["failures"]:
        console.print(failures_table(trend["failures"]))


def trend_table(trend: dict[str, Any]) -> Table:
    """Build the table of the overall score and each dimension, one row per day.

    A dimension cell is its score, with ▲ or ▼ when its level rose or fell.
    """
    stored = trend["runs"][-1]["dimensions"]
    keys = [key for key in SHORT_NAMES if key in stored]
    keys += [key for key in stored if key not in SHORT_NAMES]
    table = Table(
        title=f"Alignment of {trend['org']} over time",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for header in ("day", "score", "Δ", "band"):
        justify = "left" if header == "band" else "right"
        table.add_column(header, justify=justify, no_wrap=True)
    for key in keys:
        table.add_column(SHORT_NAMES.get(key, key), justify="right", no_wrap=True)
    for run in trend["runs"]:
        overall = run["overall"]
        cells = [
            run["day"],
            format_score(overall["score"]),
            _signed(overall["delta"], 2),
            overall["band"] or "—",
        ]
        cells += [_dimension_cell(run["dimensions"].get(key)) for key in keys]
        table.add_row(*cells)
    return table


def changes_table(changes: dict[str, Any]) -> Table:
    """Build the table of metrics whose value changed between the last two runs."""
    from flows.report import format_value

    title = f"Metric changes from {changes['from_day']} to {changes['to_day']}"
    table = Table(title=title, title_justify="left")
    for header in ("metric", "previous", "current", "Δ", "population"):
        table.add_column(header, justify="left" if header == "metric" else "right")
    changed = [row for row in changes["metrics"] if row["changed"]]
    for row in changed:
        unit = row["unit"] or ""
        table.add_row(
            row["label"] or row["key"],
            format_value(row["previous"], unit),
            format_value(row["current"], unit),
            _format_delta(row["delta"], unit),
            _population(row),
        )
    unchanged = len(changes["metrics"]) - len(changed)
    table.caption = f"{unchanged} metric(s) unchanged"
    return table


def failures_table(failures: list[dict[str, Any]]) -> Table:
    """Build the table of failed runs."""
    table = Table(title="Failed runs", title_justify="left")
    table.add_column("day")
    table.add_column("recorded at (UTC)")
    table.add_column("error", overflow="fold")
    for failure in failures:
        table.add_row(failure["day"], failure["recorded_at"][:19], failure["error"])
    return table


def _dimension_cell(cell: dict[str, Any] | None) -> str:
    if cell is None or cell["level"] is None:
        return "—"
    change = cell["level_change"]
    mark = " " if not change else ("▲" if change > 0 else "▼")
    return f"{format_score(cell['score'])}{mark}"


def _population(row: dict[str, Any]) -> str:
    now, before = row["population"], row["previous_population"]
    if before is None or before == now:
        return str(now)
    return f"{before} → {now}"


def _format_delta(delta: float | None, unit: str) -> str:
    if delta is None:
        return ""
    if unit == "share":
        return f"{delta * 100:+.2f} pp"
    if unit == "hours":
        return f"{delta:+.2f} h"
    if unit == "count":
        return f"{delta:+,.0f}"
    return f"{delta:+.3f}"




def _signed(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:+.{digits}f}"


def history_command(
    org: Annotated[
        str, typer.Option("--org", help="Org id, as in the config's org.id.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the trend as JSON instead of tables.")
    ] = False,
    db: Annotated[
        Path | None,
        typer.Option(
            "--db", help=f"History file; default: the config's or {DEFAULT_HISTORY}."
        ),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Org config whose history.path to read.")
    ] = None,
) -> None:
    """Show an org's scores over time and the metric changes since the previous run."""
    from flows.cli import console, fail
    from flows.history import HistoryStore

    try:
        path = resolve_history_file(db, config)
        with HistoryStore(path) as store:
            trend = build_trend(store, org)
    except RevalignError as error:
        raise fail(error) from None
    if as_json:
        typer.echo(json.dumps(trend, indent=2, default=str))
        return
    render_trend(trend, console)


def resolve_history_file(db: Path | None, config: Path | None) -> Path:
    """Return the history file to read; raises RevalignError when it does not exist."""
    from config.models import load_config

    path = db
    if path is None and config is not None:
        history = load_config(config).history
        path = None if history is None else history.path
    path = path or DEFAULT_HISTORY
    if not path.is_file():
        msg = (
            f"no history file at {str(path)!r}; score with `revalign score --history "
            f"{path}` first, or pass --db PATH"
        )
        raise RevalignError(msg)
    return path


def store_scored(result: Any, request: Any, history: Path | None) -> Path | None:
    """Store a ``revalign score`` run when a history file is given or configured.

    ``result`` and ``request`` are the pipeline's ScoreResult and ScoreRequest.
    Returns the history file written, or ``None`` when none applies. Alerts are
    not sent here; the nightly flow sends them.
    """
    from flows.history import history_path_for, store_run

    config = _config_of(request)
    path = history_path_for(config, history)
    if path is None:
        return None
    keep = config is None or config.history is None or config.history.keep_extracts
    store_run(result.document, result.tables, path, keep_extracts=keep)
    return path


def store_failed(request: Any, error: Exception, history: Path | None) -> None:
    """Add the failure record of a failed ``revalign score`` run, if history applies.

    A failure to store the record is printed as a warning, never raised, so the
    run's own error stays the one reported.
    """
    from flows.cli import errors
    from flows.history import failure_day, history_path_for, store_failure

    config = _config_of(request)
    path = history_path_for(config, history)
    if path is None:
        return
    report = getattr(error, "report", None)
    try:
        store_failure(
            path,
            org_id=config.org.id if config is not None else "unknown",
            day=failure_day(request.as_of),
            source=request.source_name,
            error=str(error),
            gate=None if report is None else report.to_dict(),
        )
    except Exception as exc:  # noqa: BLE001 - the run's own error must surface
        errors.print(f"warning: the failure was not recorded in the history: {exc}")


def _config_of(request: Any) -> Any:
    from config.models import load_config
    from flows.pipeline import DEMO_CONFIG

    config_path = request.config_path
    if request.demo and config_path is None:
        config_path = DEMO_CONFIG
    try:
        return load_config(config_path)
    except RevalignError:
        return None
