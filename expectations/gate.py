"""The data-quality gate: validate the canonical tables before any metric runs.

:func:`run_gate` returns a :class:`GateReport`; a critical finding means the
scores would be wrong, so the caller stops before scoring. great_expectations
takes longer to import than to validate, so a one-off run calls
:func:`start_validator` before extraction: the import then overlaps with it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sys
import time
from typing import Protocol

from config.models import OrgConfig
from connectors.errors import InputError
from connectors.schema import CanonicalTables
from connectors.values import (
    EMAIL_PLACEHOLDER,
    PHONE_PLACEHOLDER,
    personal_placeholder,
)
from expectations.exchange import CheckInput, CheckResult, SuiteInput
from expectations.prepare import PlannedCheck, TableBatch, plan_gate
from expectations.report import Finding, GateReport

logger = logging.getLogger(__name__)

MAX_EXAMPLES = 5
MAX_LISTED_VALUES = 10
PLACEHOLDERS = (EMAIL_PLACEHOLDER, PHONE_PLACEHOLDER)


class Validator(Protocol):
    """A runner of the suites that also reports how long the import kept it waiting."""

    def validate(self, suites: list[SuiteInput]) -> tuple[list[CheckResult], float]:
        """Return one result per check, in order, and the import wait in seconds."""
        ...

    def close(self) -> None:
        """Release what the validator holds."""
        ...

    def __enter__(self) -> Validator: ...

    def __exit__(self, *exc_info: object) -> None: ...


class InProcessValidator:
    """Validate in this process, importing great_expectations on first use."""

    def validate(self, suites: list[SuiteInput]) -> tuple[list[CheckResult], float]:
        """Import :mod:`expectations.suites` if needed, then validate ``suites``."""
        started = time.perf_counter()
        from expectations import suites as gx_suites

        import_seconds = time.perf_counter() - started
        converted = [
            dataclasses.replace(suite, frame=suite.frame.to_pandas())
            for suite in suites
        ]
        return gx_suites.validate(converted), import_seconds

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> InProcessValidator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_validator() -> Validator:
    """Return the validator for a one-off run, started now so its import overlaps.

    A process that has already imported great_expectations validates in-process.
    Otherwise a :class:`~expectations.worker.ValidationWorker` child imports it
    on another core while this process extracts. Use the result as a context
    manager, so that a run which stops before the gate stops the child too.
    """
    if "great_expectations" in sys.modules:
        return InProcessValidator()
    from expectations.worker import ValidationWorker, take_prestarted

    prestarted = take_prestarted()
    if prestarted is not None:
        return prestarted
    try:
        return ValidationWorker()
    except OSError as error:
        logger.warning("validating in-process: no worker process (%s)", error)
        return InProcessValidator()


def run_gate(
    tables: CanonicalTables,
    config: OrgConfig,
    *,
    as_of: dt.datetime,
    validator: Validator | None = None,
) -> GateReport:
    """Validate ``tables`` against every applicable check.

    ``as_of`` is the extraction moment and must carry a time zone. Tables the
    source did not provide are skipped, not failed. Thresholds and severities
    come from ``config.gate``. Without ``validator`` the checks run in-process.

    Raises:
        InputError: ``as_of`` has no time zone.
        GateError: great_expectations could not evaluate a check.
    """
    if as_of.tzinfo is None:
        msg = f"as-of time {as_of.isoformat()!r} has no time zone; pass a UTC time"
        raise InputError(msg)
    started = time.perf_counter()
    plan = plan_gate(tables, config, as_of=as_of.astimezone(dt.UTC))
    suites = [_suite_input(batch) for batch in plan.batches]
    results, import_seconds = (validator or InProcessValidator()).validate(suites)

    planned = [(batch, check) for batch in plan.batches for check in batch.checks]
    findings = [
        _finding(result, check, batch, tables, config, as_of)
        for (batch, check), result in zip(planned, results, strict=True)
        if not result.success
    ]
    report = GateReport(
        findings=findings,
        checks_run=len(results),
        duration_seconds=time.perf_counter() - started,
        import_seconds=import_seconds,
        skipped=plan.skipped,
    )
    logger.info(
        "gate: %d checks, %d critical, %d warnings, %.2f s (import wait %.2f s)",
        report.checks_run,
        len(report.critical),
        len(report.warnings),
        report.duration_seconds,
        report.import_seconds,
    )
    return report


def _suite_input(batch: TableBatch) -> SuiteInput:
    checks = tuple(
        CheckInput(
            name=check.spec.name, expectation=check.expectation, kwargs=check.kwargs
        )
        for check in batch.checks
    )
    return SuiteInput(table=batch.table, frame=batch.frame, checks=checks)


def _finding(
    result: CheckResult,
    check: PlannedCheck,
    batch: TableBatch,
    tables: CanonicalTables,
    config: OrgConfig,
    as_of: dt.datetime,
) -> Finding:
    spec = check.spec
    severity = check.severity
    detail = ""
    if spec.rule == "mapped":
        share = result.failed / result.evaluated if result.evaluated else 0.0
        critical_share = config.gate.critical_unmapped_share
        if critical_share is not None and share > critical_share:
            severity = "critical"
        detail = _unmapped_detail(spec.column, share, result.evaluated, tables, config)
    elif spec.rule == "not_after_as_of":
        detail = f"Dated after the as-of time {as_of.isoformat()}."
    elif spec.rule == "not_before_floor":
        detail = f"Dated before {config.gate.earliest_date.isoformat()}."
    return Finding(
        table=spec.table,
        expectation=spec.name,
        severity=severity,
        failed=result.failed,
        total=result.rows,
        examples=_examples(batch, result.positions),
        fix=spec.fix(),
        detail=detail,
        expectation_type=result.expectation_type,
    )


def _examples(batch: TableBatch, positions: tuple[int, ...]) -> tuple[str, ...]:
    """Return the first distinct record ids at ``positions`` of the batch frame.

    An id cell that contains an e-mail address or a phone number (a column
    shifted in the export) is shown as a placeholder.
    """
    if not positions:
        return ()
    ids = batch.frame[batch.example_column].gather(list(positions))
    first = ids.drop_nulls().unique(maintain_order=True).head(MAX_EXAMPLES)
    return tuple(
        personal_placeholder(str(value), free_text=False) or str(value)
        for value in first
    )


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
    detail = (
        f"{share:.1%} of {evaluated} leads with a {column} value have one that the "
        f"mapping does not cover (limit {config.gate.max_unmapped_share:.1%}). "
        f"Unmapped values, counted over current values and history: {listed}."
    )
    if any(value in PLACEHOLDERS for value, _ in counts):
        detail += (
            " The placeholders stand for e-mail addresses or phone numbers typed "
            "into the field: correct those records in the CRM, do not map them."
        )
    return detail
