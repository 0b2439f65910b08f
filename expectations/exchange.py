"""Records that the gate passes to great_expectations and receives back.

These records carry no great_expectations or polars types, so the gate can pass
them to :mod:`expectations.suites` in-process or, pickled, to the validation
worker in :mod:`expectations.worker`, and read the results without importing
great_expectations itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.errors import RevalignError


class GateError(RevalignError):
    """Raised when great_expectations cannot evaluate a check (a bug, not bad data)."""

    exit_code = 1


@dataclass(frozen=True)
class CheckInput:
    """One check: its name, the expectation class to run and its arguments."""

    name: str
    expectation: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class SuiteInput:
    """One table's frame and the checks to run on it.

    The gate builds it with a polars frame. great_expectations validates pandas
    frames, so each validator converts the frame before validating it.
    """

    table: str
    frame: Any
    checks: tuple[CheckInput, ...]


@dataclass(frozen=True)
class CheckResult:
    """The result of one check: counts and the positions of its first failing rows.

    ``evaluated`` excludes the rows whose column is null, which most checks skip.
    """

    name: str
    expectation_type: str
    success: bool
    rows: int
    failed: int
    evaluated: int
    positions: tuple[int, ...]
