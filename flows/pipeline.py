"""The scoring pipeline as plain functions, shared by the CLI and the Prefect flow.

Steps, in order: load the config and the survey, extract, pick the as-of time,
gate the data, measure, score, assemble the scorecard document, write the files.
The CLI calls :func:`run_score` in-process; :mod:`flows.nightly` runs the same
step functions as Prefect tasks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from config import CONFIG_DIR
from config.models import OrgConfig, load_config
from connectors.errors import InputError, RevalignError
from connectors.schema import CanonicalTables
from expectations.catalogue import EXAMPLE_COLUMNS, TIME_COLUMNS
from flows.sources import Extract, SourceRequest, extract
from metrics.measure import measure
from metrics.result import Metrics

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1.0"
DEMO_CONFIG = CONFIG_DIR / "demo-org.yaml"


class GateFailed(RevalignError):
    """Raised when the data-quality gate finds a critical problem; no scorecard follows.

    ``as_of`` is the as-of time the gate checked the data against, and ``org_id``
    the org whose data it was.
    """

    exit_code = 3

    def __init__(
        self,
        message: str,
        report: Any,
        as_of: dt.datetime | None = None,
        org_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.report = report
        self.as_of = as_of
        self.org_id = org_id


@dataclass
class ScoreRequest:
    """Inputs of one scoring run and where its files go."""

    source: str = "salesforce-export"
    path: Path | None = None
    config_path: Path | None = None
    survey_path: Path | None = None
    as_of: dt.datetime | None = None
    out: Path | None = None
    demo: bool = False
    demo_leads: int = 5000
    state_dir: Path | None = None
    full_refresh: bool = False
    run_gate: bool = True

    @property
    def source_name(self) -> str:
        """The source as reports name it: ``demo`` for the demo org."""
        return "demo" if self.demo else self.source


@dataclass
class ScoreResult:
    """The scorecard document and the files written for it."""

    document: dict[str, Any]
    handoffs: pl.DataFrame
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    tables: CanonicalTables | None = None


def build_request(
    *,
    demo: bool,
    source: str | None,
    path: Path | None,
    config: Path | None,
    survey: Path | None,
    as_of: str | None,
    out: Path | None,
    state_dir: Path | None = None,
    full_refresh: bool = False,
) -> ScoreRequest:
    """Build a request from command-line options; raises InputError on a bad mix."""
    if demo and (path is not None or source is not None):
        msg = "--demo cannot be combined with --path or --source; choose one source"
        raise InputError(msg)
    return ScoreRequest(
        source=source or "salesforce-export",
        path=path,
        config_path=config,
        survey_path=survey,
        as_of=parse_as_of(as_of) if as_of else None,
        out=out,
        demo=demo,
        state_dir=state_dir,
        full_refresh=full_refresh,
    )


def parse_as_of(text: str) -> dt.datetime:
    """Parse an ``--as-of`` value: an ISO date or datetime; no zone means UTC."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        msg = f"invalid --as-of {text!r}; use ISO 8601 such as 2025-07-15 or 2025-07-15T00:00:00Z"
        raise InputError(msg) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def load_inputs(request: ScoreRequest) -> tuple[OrgConfig, Any]:
    """Load and validate the org config and the survey before any data is read."""
    config_path = request.config_path
    if request.demo and config_path is None:
        config_path = DEMO_CONFIG
    config = load_config(config_path)
    survey_path = request.survey_path or config.survey
    survey = None
    if survey_path is not None:
        from scoring.survey import read_survey

        survey = read_survey(survey_path)
    return config, survey


def extract_step(
    request: ScoreRequest, config: OrgConfig, work_dir: Path
) -> tuple[Extract, dt.datetime | None, Path | None]:
    """Extract the canonical tables; for the demo, generate its export first.

    Returns the extract, the demo's as-of time (or ``None``) and the demo survey path.
    """
    if request.demo:
        from connectors.demo import generate_demo
        from connectors.salesforce_export import read_export

        demo = generate_demo(work_dir / "demo-export", leads=request.demo_leads)
        return Extract(read_export(demo.folder, config)), demo.as_of, demo.survey_path
    source_request = SourceRequest(
        config=config,
        path=request.path,
        state_dir=request.state_dir,
        full_refresh=request.full_refresh,
    )
    return extract(request.source, source_request), None, None


def newest_timestamp(tables: CanonicalTables) -> dt.datetime | None:
    """Return the newest timestamp in the canonical tables, or ``None`` if there is none."""
    newest = [tables[table][column].max() for table, column in TIME_COLUMNS.items()]
    newest = [value for value in newest if value is not None]
    return max(newest) if newest else None


def newest_record(tables: CanonicalTables, newest: dt.datetime) -> str:
    """Describe the row whose timestamp is ``newest``: its table, column and id."""
    for table, column in TIME_COLUMNS.items():
        frame = tables[table]
        if frame.is_empty() or frame[column].max() != newest:
            continue
        id_column = EXAMPLE_COLUMNS[table]
        record = frame.filter(pl.col(column) == newest)[id_column][0]
        return f"{table}.{column} of record {record!r}"
    return "no record"


# An as-of time later than this after the clock's now is a typo or a bad record.
FUTURE_TOLERANCE = dt.timedelta(days=1)


def resolve_as_of(
    request: ScoreRequest,
    extracted: Extract,
    demo_as_of: dt.datetime | None,
    *,
    now: dt.datetime | None = None,
) -> tuple[dt.datetime, str]:
    """Pick the as-of time and say where it came from.

    Raises InputError when the as-of time would lie in the future, because every
    untouched handoff would then look breached.
    """
    latest = (now or dt.datetime.now(dt.UTC)) + FUTURE_TOLERANCE
    if request.as_of is not None:
        if request.as_of > latest:
            msg = f"--as-of {request.as_of.isoformat()} is in the future; pass the extraction time"
            raise InputError(msg)
        return request.as_of, "given with --as-of"
    if demo_as_of is not None:
        return demo_as_of, "the demo org's extraction time"
    if extracted.extracted_at is not None:
        return extracted.extracted_at, "the extraction time"
    newest = newest_timestamp(extracted.tables)
    if newest is None:
        msg = "the data has no timestamps to take an as-of time from; pass --as-of"
        raise InputError(msg)
    if newest > latest:
        msg = (
            f"the newest timestamp in the data, {newest.isoformat()}, is in the future "
            f"({newest_record(extracted.tables, newest)}), so it cannot serve as the as-of "
            "time; fix that record in the CRM or pass --as-of"
        )
        raise InputError(msg)
    return newest, "the newest timestamp in the data (pass --as-of to set it)"


def gate_step(
    tables: CanonicalTables,
    config: OrgConfig,
    as_of: dt.datetime,
    validator: Any = None,
) -> Any:
    """Run the data-quality gate; raise :class:`GateFailed` on a critical finding.

    ``validator`` comes from :func:`expectations.gate.start_validator`; without
    one the checks run in this process.
    """
    from expectations.gate import run_gate

    report = run_gate(tables, config, as_of=as_of, validator=validator)
    if not report.passed:
        msg = "the data-quality gate found critical problems; no new scorecard was written"
        raise GateFailed(msg, report, as_of, config.org.id)
    return report


def measure_step(
    tables: CanonicalTables,
    config: OrgConfig,
    as_of: dt.datetime,
    gate: Any = None,
) -> tuple[Metrics, pl.DataFrame]:
    """Compute every metric and the per-handoff frame.

    With the ``gate`` report, each warning is added to the notes of the metrics
    whose input it concerns (see :mod:`expectations.effects`).
    """
    metrics, handoffs = measure(tables, config, as_of)
    if gate is not None:
        from expectations.effects import flag_metrics

        metrics = flag_metrics(
            metrics, gate, stages_from_mapping=tables.status_mapping is not None
        )
    return metrics, handoffs


def score_step(metrics: Metrics, survey: Any, config: OrgConfig) -> Any:
    """Turn metrics and survey answers into the scorecard."""
    from scoring.rubric import load_rubric
    from scoring.scorecard import build_scorecard

    return build_scorecard(metrics, survey=survey, config=config, rubric=load_rubric())


def audit_step(metrics: Metrics, survey: Any, config: OrgConfig) -> Any:
    """Hold self-ratings against measured levels and look for red flags."""
    from scoring.audit import build_audit
    from scoring.rubric import load_rubric

    return build_audit(metrics, survey=survey, config=config, rubric=load_rubric())


def assemble(
    *,
    request: ScoreRequest,
    config: OrgConfig,
    tables: CanonicalTables,
    as_of: dt.datetime,
    as_of_basis: str,
    metrics: Metrics,
    scorecard: Any,
    audit: Any,
    gate: Any,
    survey: Any,
) -> dict[str, Any]:
    """Build the versioned ``scorecard.json`` document."""
    source_name = request.source_name
    return {
        "schema_version": SCHEMA_VERSION,
        "org": {"id": config.org.id, "segment": config.org.segment},
        "as_of": _iso(as_of),
        "as_of_basis": as_of_basis,
        "source": {
            "name": source_name,
            "path": str(request.path) if request.path and not request.demo else None,
            "records": tables.counts,
            "missing": tables.missing,
            "notes": tables.notes,
            "unmapped_statuses": tables.unmapped_statuses,
        },
        "gate": gate.to_dict() if gate is not None else None,
        "metrics": {key: value.to_dict() for key, value in metrics.items()},
        "scorecard": scorecard.to_dict(),
        "audit": audit.to_dict(),
        "survey": _survey_summary(survey, request),
    }


def _survey_summary(survey: Any, request: ScoreRequest) -> dict[str, Any] | None:
    if survey is None:
        return None
    summary = survey.to_dict()
    if request.demo and request.survey_path is None and request.config_path is None:
        summary["path"] = "built-in demo survey"
    return summary


OUTPUT_NAMES = ("scorecard.json", "report.md", "handoffs.csv")
# The report of a run the gate stopped; a later scored run removes it.
GATE_FAILED_NAME = "gate-failed.json"


def _finite(value: Any) -> Any:
    """Replace NaN and infinite floats with ``None``, which JSON can represent."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def document_json(document: dict[str, Any]) -> str:
    """Serialise the scorecard document as strict JSON (no NaN or Infinity)."""
    return json.dumps(_finite(document), indent=2, default=str, allow_nan=False)


def check_output_folder(out: Path) -> None:
    """Make sure ``out`` is, or can become, a writable folder; raise InputError if not."""
    if out.exists() and not out.is_dir():
        msg = f"--out {str(out)!r} is a file; pass a folder for the scorecard files"
        raise InputError(msg)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        msg = f"cannot create output folder {str(out)!r}: {exc.strerror}; pass a writable --out"
        raise InputError(msg) from None
    if not os.access(out, os.W_OK | os.X_OK):
        msg = f"output folder {str(out)!r} is not writable; pass a writable --out"
        raise InputError(msg)
    for name in OUTPUT_NAMES:
        if (out / name).is_dir():
            msg = f"{out / name} is a folder; remove it so the scorecard file can be written"
            raise InputError(msg)


def stage_outputs(result: ScoreResult, out: Path) -> Path:
    """Write the output files into a new staging folder inside ``out``; return it."""
    from flows.report import markdown_report

    check_output_folder(out)
    staging = Path(tempfile.mkdtemp(prefix=".revalign-", dir=out))
    try:
        (staging / "scorecard.json").write_text(
            document_json(result.document) + "\n", encoding="utf-8"
        )
        (staging / "report.md").write_text(
            markdown_report(_finite(result.document)), encoding="utf-8"
        )
        result.handoffs.write_csv(staging / "handoffs.csv")
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        msg = f"cannot write the scorecard files into {str(out)!r}: {exc}"
        raise InputError(msg) from None
    return staging


def publish_outputs(staging: Path, out: Path) -> list[Path]:
    """Move staged files into ``out`` together; on failure restore the previous ones.

    The previous files are first moved aside inside the staging folder, so a failed
    move can put every one of them back. The staging folder is removed either way.
    """
    previous = staging / "previous"
    previous.mkdir()
    moved_aside: list[str] = []
    published: list[str] = []
    try:
        for name in OUTPUT_NAMES:
            if (out / name).exists():
                os.replace(out / name, previous / name)
                moved_aside.append(name)
        for name in OUTPUT_NAMES:
            os.replace(staging / name, out / name)
            published.append(name)
    except OSError as exc:
        for name in published:
            (out / name).unlink(missing_ok=True)
        for name in moved_aside:
            os.replace(previous / name, out / name)
        msg = f"cannot replace the scorecard files in {str(out)!r}: {exc}"
        raise InputError(msg) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    (out / GATE_FAILED_NAME).unlink(missing_ok=True)
    return [out / name for name in OUTPUT_NAMES]


def gate_failure_document(
    error: GateFailed, *, source: str, scorecard_kept: bool
) -> dict[str, Any]:
    """Return the JSON-ready record of a run the gate stopped."""
    return {
        "org": error.org_id,
        "source": source,
        "as_of": None if error.as_of is None else _iso(error.as_of),
        "stopped_at": _iso(dt.datetime.now(dt.UTC)),
        "error": str(error),
        "previous_scorecard_kept": scorecard_kept,
        "gate": error.report.to_dict(),
    }


def write_gate_failure(error: GateFailed, out: Path, *, source: str) -> Path:
    """Write the stopped run's gate report to ``out/gate-failed.json``; return its path.

    The scorecard files already in ``out`` are left as they are, so they remain
    those of the last scored run, and ``previous_scorecard_kept`` records whether
    there is one. The file is written to a temporary name and then renamed, so it
    is never half-written.

    Raises:
        InputError: ``out`` or the file could not be written.
    """
    check_output_folder(out)
    document = gate_failure_document(
        error, source=source, scorecard_kept=(out / "scorecard.json").is_file()
    )
    target = out / GATE_FAILED_NAME
    partial = out / f".{GATE_FAILED_NAME}.partial"
    try:
        partial.write_text(document_json(document) + "\n", encoding="utf-8")
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        msg = f"cannot write the gate report {str(target)!r}: {exc}"
        raise InputError(msg) from None
    return target


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def write_outputs(
    result: ScoreResult, out: Path, *, before_publish: Callable[[], Any] | None = None
) -> list[Path]:
    """Write scorecard.json, report.md and handoffs.csv into ``out`` all at once.

    ``before_publish`` runs once the files are staged and before they replace the
    previous ones (the CLI stores the run's history there), so if it raises, no new
    file is published. A failure leaves the previous files of ``out`` as they were.
    """
    staging = stage_outputs(result, out)
    if before_publish is not None:
        try:
            before_publish()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return publish_outputs(staging, out)


def run_score(request: ScoreRequest) -> ScoreResult:
    """Run every step in-process and write the outputs when ``request.out`` is set."""
    timings: dict[str, float] = {}

    with _timed(timings, "inputs"):
        config, survey = load_inputs(request)
        if request.out is not None:
            check_output_folder(request.out)
    with contextlib.ExitStack() as stack:
        validator = None
        if request.run_gate:
            from expectations.gate import start_validator

            validator = stack.enter_context(start_validator())
        with tempfile.TemporaryDirectory(prefix="revalign-") as work:
            with _timed(timings, "extract"):
                extracted, demo_as_of, demo_survey = extract_step(
                    request, config, Path(work)
                )
            if survey is None and demo_survey is not None:
                from scoring.survey import read_survey

                survey = read_survey(demo_survey)
        tables = extracted.tables
        as_of, as_of_basis = resolve_as_of(request, extracted, demo_as_of)

        gate = None
        if validator is not None:
            with _timed(timings, "gate"):
                gate = gate_step(tables, config, as_of, validator)
    with _timed(timings, "measure"):
        metrics, handoffs = measure_step(tables, config, as_of, gate)
    with _timed(timings, "score"):
        scorecard = score_step(metrics, survey, config)
        audit = audit_step(metrics, survey, config)

    document = assemble(
        request=request, config=config, tables=tables, as_of=as_of,
        as_of_basis=as_of_basis, metrics=metrics, scorecard=scorecard,
        audit=audit, gate=gate, survey=survey,
    )  # fmt: skip
    result = ScoreResult(
        document=document, handoffs=handoffs, timings=timings, tables=tables
    )
    if request.out is not None:
        with _timed(timings, "write"):
            result.files = write_outputs(result, request.out)
    return result


@contextlib.contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Record the wall time of ``step`` in seconds."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[step] = round(time.perf_counter() - start, 3)
        logger.debug("step %s took %.3f s", step, timings[step])
