"""Run the planned checks with great_expectations, one suite per table.

Importing this module imports great_expectations 1.24, which also loads pandas,
scipy and sqlalchemy: 2.4 to 2.8 s measured on the 2-core development machine.
:mod:`expectations.gate` imports it only when the gate runs. Each run builds one ephemeral context (nothing is written to disk) with
one pandas data source, and validates each table as a whole-dataframe batch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.data_context.types.base import ProgressBarsConfig

from connectors.errors import RevalignError
from expectations.prepare import PlannedCheck, TableBatch

# great_expectations logs its context set-up at INFO on every run, and sets one
# of its loggers to INFO itself, which would bypass the CLI's WARNING level.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
logging.getLogger("great_expectations.data_context.types.base").setLevel(
    logging.WARNING
)

# SUMMARY without index columns returns the row positions of the first failing
# rows cheaply. Asking for index columns makes it walk every failing row in Python.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}


class GateError(RevalignError):
    """Raised when great_expectations cannot evaluate a check (a bug, not bad data)."""

    exit_code = 1


@dataclass(frozen=True)
class Outcome:
    """The result of one check: counts and the positions of its first failing rows."""

    check: PlannedCheck
    expectation_type: str
    success: bool
    rows: int
    failed: int
    evaluated: int
    positions: tuple[int, ...]


def validate(batches: list[TableBatch]) -> list[Outcome]:
    """Validate every batch in one ephemeral context; return one outcome per check.

    Outcomes come in the order of the batches and their checks.

    Raises:
        GateError: great_expectations raised while evaluating a check.
    """
    definition = _whole_frame_definition()
    outcomes: list[Outcome] = []
    for batch in batches:
        data = definition.get_batch(
            batch_parameters={"dataframe": batch.frame.to_pandas()}
        )
        suite = gx.ExpectationSuite(
            name=batch.table,
            expectations=[_expectation(check) for check in batch.checks],
        )
        result = data.validate(suite, result_format=RESULT_FORMAT)
        by_name = {check.spec.name: check for check in batch.checks}
        ran = {
            o.check.spec.name: o for o in (_outcome(by_name, r) for r in result.results)
        }
        outcomes.extend(ran[check.spec.name] for check in batch.checks)
    return outcomes


def _whole_frame_definition() -> Any:
    """Create an ephemeral context with one pandas asset; return its batch definition.

    Every table is validated through this one definition, because each asset or
    definition added to a context re-serialises the context's configuration.
    """
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("canonical").add_dataframe_asset("table")
    return asset.add_batch_definition_whole_dataframe("whole table")


def _expectation(check: PlannedCheck) -> gxe.Expectation:
    expectation_class = getattr(gxe, check.expectation)
    return expectation_class(**check.kwargs, meta={"check": check.spec.name})


def _outcome(
    by_name: dict[str, PlannedCheck], item: gx.core.ExpectationValidationResult
) -> Outcome:
    name = item.expectation_config.meta["check"]
    error = _error_message(item.exception_info or {})
    if error is not None:
        msg = (
            f"great_expectations could not evaluate check {name!r}: {error}. Set "
            f"gate.severity.{name}: off in the org config to skip it, and report "
            f"the bug"
        )
        raise GateError(msg)
    result = item.result
    rows = int(result.get("element_count", 0))
    missing = int(result.get("missing_count") or 0)
    return Outcome(
        check=by_name[name],
        expectation_type=item.expectation_config.type,
        success=bool(item.success),
        rows=rows,
        failed=int(result.get("unexpected_count") or 0),
        evaluated=rows - missing,
        positions=tuple(
            int(p) for p in result.get("partial_unexpected_index_list") or ()
        ),
    )


def _error_message(info: dict) -> str | None:
    """Return the message of an exception raised during validation, if any.

    A result contains the exception either directly or keyed by the metric
    that raised it.
    """
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            return str(candidate.get("exception_message"))
    return None
