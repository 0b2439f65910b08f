"""Turn canonical tables into the frames and expectation arguments the gate runs.

Everything here is polars and plain data: great_expectations is imported only by
:mod:`expectations.suites`. Checks that span tables or rows (a lead that exists,
the previous event of the same lead, the creation date in the org's time zone)
get a derived column here, so that each one becomes a single-frame expectation.
Derived column names start with an underscore.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from expectations.catalogue import CATALOGUE, EXAMPLE_COLUMNS, CheckSpec, Severity


@dataclass(frozen=True)
class PlannedCheck:
    """A check to run: its spec, its severity and the expectation that tests it."""

    spec: CheckSpec
    severity: Severity
    expectation: str
    kwargs: dict[str, Any]


@dataclass
class TableBatch:
    """One table's frame and its checks.

    The frame holds only the columns the checks read, because each column costs a
    conversion to pandas.
    """

    table: str
    frame: pl.DataFrame
    example_column: str
    checks: list[PlannedCheck]


@dataclass
class GatePlan:
    """The batches to validate and why other checks do not run (name to reason)."""

    batches: list[TableBatch] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def plan_gate(
    tables: CanonicalTables, config: OrgConfig, *, as_of: dt.datetime
) -> GatePlan:
    """Choose the checks that apply to ``tables`` and build their frames.

    A table the source did not provide is skipped with the source's reason, as is
    a check whose column or reference table is missing, or one switched ``off``
    in ``gate.severity``.
    """
    plan = GatePlan()
    for table in dict.fromkeys(spec.table for spec in CATALOGUE):
        if not tables.has(table):
            plan.skipped[table] = tables.missing.get(
                table, "not provided by the source"
            )
            continue
        checks: list[PlannedCheck] = []
        for spec in (spec for spec in CATALOGUE if spec.table == table):
            severity = config.gate.severity.get(spec.name, spec.severity)
            reason = _unavailable(spec, tables) or (
                "turned off in gate.severity" if severity == "off" else None
            )
            if reason:
                plan.skipped[spec.name] = reason
                continue
            expectation, kwargs = _expectation(spec, tables, config, as_of)
            checks.append(PlannedCheck(spec, severity, expectation, kwargs))
        if checks:
            plan.batches.append(_batch(table, tables, config, checks))
    return plan


def _unavailable(spec: CheckSpec, tables: CanonicalTables) -> str | None:
    column_key = f"{spec.table}.{spec.column}"
    if column_key in tables.missing:
        return tables.missing[column_key]
    if spec.rule == "known_user" and not tables.has("users"):
        return tables.missing.get("users", "no users table")
    if spec.rule == "not_before_lead_created" and "leads.created_at" in tables.missing:
        return tables.missing["leads.created_at"]
    if spec.rule == "mapped" and tables[spec.table][spec.column].is_null().all():
        return f"no {spec.column} values in the source"
    return None


def _expectation(
    spec: CheckSpec, tables: CanonicalTables, config: OrgConfig, as_of: dt.datetime
) -> tuple[str, dict[str, Any]]:
    """Return the great_expectations class name and arguments for ``spec``."""
    column = spec.column
    floor = dt.datetime.combine(config.gate.earliest_date, dt.time(), tzinfo=dt.UTC)
    pair = {"or_equal": True, "ignore_row_if": "either_value_is_missing"}
    match spec.rule:
        case "not_null":
            return "ExpectColumnValuesToNotBeNull", {"column": column}
        case "unique":
            return "ExpectColumnValuesToBeUnique", {"column": column}
        case "not_after_as_of":
            return "ExpectColumnValuesToBeBetween", {
                "column": column,
                "max_value": as_of,
            }
        case "not_before_floor":
            return "ExpectColumnValuesToBeBetween", {
                "column": column,
                "min_value": floor,
            }
        case "non_negative":
            return "ExpectColumnValuesToBeBetween", {"column": column, "min_value": 0}
        case "mapped":
            return "ExpectColumnValuesToNotBeInSet", {
                "column": column,
                "value_set": _unmapped_values(tables, column),
                "mostly": 1 - config.gate.max_unmapped_share,
            }
        case "known_lead" | "known_user":
            return "ExpectColumnValuesToBeInSet", {
                "column": _derived_name(spec),
                "value_set": [True],
            }
        case "in_time_order" | "not_before_lead_created" | "not_before_created":
            return "ExpectColumnPairValuesAToBeGreaterThanB", {
                "column_A": column,
                "column_B": _derived_name(spec),
                **pair,
            }
    msg = f"no expectation for rule {spec.rule!r}"
    raise ValueError(msg)


_DERIVED = {
    "known_lead": "_lead_known",
    "known_user": "_owner_known",
    "in_time_order": "_previous_entered_at",
    "not_before_lead_created": "_lead_created_at",
    "not_before_created": "_created_on",
}


def _derived_name(spec: CheckSpec) -> str:
    return _DERIVED[spec.rule]


def _batch(
    table: str, tables: CanonicalTables, config: OrgConfig, checks: list[PlannedCheck]
) -> TableBatch:
    frame = tables[table]
    example_column = EXAMPLE_COLUMNS[table]
    derived = {
        _DERIVED[check.spec.rule]: _derive(check.spec, frame, tables, config)
        for check in checks
        if check.spec.rule in _DERIVED
    }
    columns = dict.fromkeys([example_column, *(c.spec.column for c in checks)])
    selected = frame.select(list(columns)).with_columns(
        *(series.alias(name) for name, series in derived.items())
    )
    return TableBatch(table, selected, example_column, checks)


def _derive(
    spec: CheckSpec, frame: pl.DataFrame, tables: CanonicalTables, config: OrgConfig
) -> pl.Series:
    """Compute the derived column that ``spec`` compares against, row for row."""
    match spec.rule:
        case "known_lead":
            return _known(frame[spec.column], tables["leads"]["lead_id"])
        case "known_user":
            return _known(frame[spec.column], tables["users"]["user_id"])
        case "in_time_order":
            return frame.select(
                pl.col(spec.column).shift(1).over("lead_id")
            ).to_series()
        case "not_before_lead_created":
            created = tables["leads"].unique(
                "lead_id", keep="first", maintain_order=True
            )
            return frame.select("lead_id").join(
                created.select("lead_id", "created_at"),
                on="lead_id",
                how="left",
                maintain_order="left",
            )["created_at"]
        case "not_before_created":
            zone = config.calendar.time_zone
            return frame["created_at"].dt.convert_time_zone(zone).dt.date()
    msg = f"no derived column for rule {spec.rule!r}"
    raise ValueError(msg)


def _known(references: pl.Series, ids: pl.Series) -> pl.Series:
    """Flag each reference found among ``ids``; a null reference stays null."""
    found = references.is_in(ids.drop_nulls().unique().implode())
    return pl.select(pl.when(references.is_not_null()).then(found)).to_series()


# Connectors key an unmapped lifecycle stage as "lifecyclestage=<value>" and an
# unmapped lead status by its value alone.
LIFECYCLE_PREFIX = "lifecyclestage="


def _unmapped_values(tables: CanonicalTables, column: str) -> list[str]:
    """Return the unmapped raw values of ``column``: lifecycle stages or statuses."""
    keys = tables.unmapped_statuses
    if column == "lifecycle_raw":
        return sorted(
            key.removeprefix(LIFECYCLE_PREFIX)
            for key in keys
            if key.startswith(LIFECYCLE_PREFIX)
        )
    return sorted(key for key in keys if not key.startswith(LIFECYCLE_PREFIX))
