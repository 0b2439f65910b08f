"""The data-quality gate: validate the canonical tables before any metric runs.

:func:`run_gate` returns a :class:`GateReport`; a critical finding means the
scores would be wrong, so the caller stops before scoring. great_expectations is
imported on the first run only, which costs more than validating (see
:mod:`expectations.suites`). :func:`start_import` begins that import in a
background thread so that it can overlap with extraction.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import TYPE_CHECKING

from config.models import OrgConfig
from connectors.errors import InputError
from connectors.schema import CanonicalTables
from expectations.prepare import TableBatch, plan_gate
from expectations.report import Finding, GateReport

if TYPE_CHECKING:
    from expectations.suites import Outcome

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 5
MAX_LISTED_VALUES = 10

_import_lock = threading.Lock()
_import_thread: threading.Thread | None = None


def start_import() -> None:
    """Start importing great_expectations in a daemon thread, once per process.

    Call it before extraction; :func:`run_gate` then waits for the thread instead
    of importing. Calling it again does nothing.

    NOTE: on the 5,000-lead demo export read from files, the thread cut what the
    gate adds from 3.1 s to 2.7 s (``python -m expectations.benchmark`` on the
    2-core development machine), because extraction and the import compete for
    the interpreter lock. It should save more while extraction waits on a CRM's
    API, but that was not measured.
    """
    global _import_thread
    with _import_lock:
        if _import_thread is None:
            _import_thread = threading.Thread(
                target=_import_suites, name="revalign-gx-import", daemon=True
            )
            _import_thread.start()


def _import_suites() -> None:
    import expectations.suites  # noqa: F401


def run_gate(
    tables: CanonicalTables, config: OrgConfig, *, as_of: dt.datetime
) -> GateReport:
    """Validate ``tables`` against every applicable check.

    ``as_of`` is the extraction moment and must carry a time zone. Tables the
    source did not provide are skipped, not failed. Thresholds and severities
    come from ``config.gate``.

    Raises:
        InputError: ``as_of`` has no time zone.
        GateError: great_expectations could not evaluate a check.
    """
    if as_of.tzinfo is None:
        msg = f"as-of time {as_of.isoformat()!r} has no time zone; pass a UTC time"
        raise InputError(msg)
    started = time.perf_counter()
    plan = plan_gate(tables, config, as_of=as_of.astimezone(dt.UTC))

    import_started = time.perf_counter()
    if _import_thread is not None:
        _import_thread.join()
    from expectations import suites

    import_seconds = time.perf_counter() - import_started
    outcomes = suites.validate(plan.batches)

    batches = {batch.table: batch for batch in plan.batches}
    findings = [
        _finding(outcome, batches[outcome.check.spec.table], tables, config, as_of)
        for outcome in outcomes
        if not outcome.success
    ]
    report = GateReport(
        findings=findings,
        checks_run=len(outcomes),
        duration_seconds=time.perf_counter() - started,
        import_seconds=import_seconds,
        skipped=plan.skipped,
    )
    logger.info(
        "gate: %d checks, %d critical, %d warnings, %.2f s (import %.2f s)",
        report.checks_run,
        len(report.critical),
        len(report.warnings),
        report.duration_seconds,
        report.import_seconds,
    )
    return report


def _finding(
    outcome: Outcome,
    batch: TableBatch,
    tables: CanonicalTables,
    config: OrgConfig,
    as_of: dt.datetime,
) -> Finding:
    check = outcome.check
    spec = check.spec
    severity = check.severity
    detail = ""
    if spec.rule == "mapped":
        share = outcome.failed / outcome.evaluated if outcome.evaluated else 0.0
        critical_share = config.gate.critical_unmapped_share
        if critical_share is not None and share > critical_share:
            severity = "critical"
        detail = _unmapped_detail(spec.column, share, outcome.evaluated, tables, config)
    elif spec.rule == "not_after_as_of":
        detail = f"Dated after the as-of time {as_of.isoformat()}."
    elif spec.rule == "not_before_floor":
        detail = f"Dated before {config.gate.earliest_date.isoformat()}."
    return Finding(
        table=spec.table,
        expectation=spec.name,
        severity=severity,
        failed=outcome.failed,
        total=outcome.rows,
        examples=_examples(batch, outcome.positions),
        fix=spec.fix(),
        detail=detail,
        expectation_type=outcome.expectation_type,
    )


def _examples(batch: TableBatch, positions: tuple[int, ...]) -> tuple[str, ...]:
    """Return the first distinct record ids at ``positions`` of the batch frame."""
    if not positions:
        return ()
    ids = batch.frame[batch.example_column].gather(list(positions))
    return tuple(ids.drop_nulls().unique(maintain_order=True).head(MAX_EXAMPLES))


def _unmapped_detail(
    column: str,
    share: float,
    evaluated: int,
    tables: CanonicalTables,
    config: OrgConfig,
) -> str:
    counts = sorted(
        tables.unmapped_statuses.items(), key=lambda item: (-item[1], item[0])
    )
    listed = ", ".join(
        f"{value!r} ({count})" for value, count in counts[:MAX_LISTED_VALUES]
    )
    more = len(counts) - MAX_LISTED_VALUES
    if more > 0:
        listed += f" and {more} more"
    return (
        f"{share:.1%} of {evaluated} leads with a {column} value have one that the "
        f"mapping does not cover (limit {config.gate.max_unmapped_share:.1%}). "
        f"Unmapped values, counted over current values and history: {listed}."
    )
