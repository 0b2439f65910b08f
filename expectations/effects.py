"""Carry the gate's warnings into the metrics whose input they concern.

A warning lets scoring go on, but the values built on the flawed rows are less
sure. :func:`flag_metrics` appends the warnings to the note of every measurable
metric that reads the flawed input, and lists their check names in the metric's
``details["data_quality_warnings"]``. :mod:`scoring.combine` then lowers the
confidence of a dimension whose level relies on such a metric.

Which metrics a finding concerns (each metric's inputs are in
:data:`metrics.measure.FAMILIES`):

- a finding on a column concerns the metrics that read that column or its
  whole table;
- a finding on a table's id column concerns every metric reading the table,
  because the metrics join and count rows by id;
- an unmapped status concerns every metric reading stage events, because the
  mapping turns statuses into stage events. Canonical files give their stage
  events as they are, so there it concerns no metric.
"""

from __future__ import annotations

import dataclasses

from expectations.catalogue import CATALOGUE, ID_COLUMNS
from expectations.report import Finding, GateReport
from metrics.result import WARNINGS_KEY, Metrics

_SPECS = {spec.name: spec for spec in CATALOGUE}


def affected_input(finding: Finding) -> tuple[str, str | None]:
    """Return the table and column a finding concerns; ``None`` is the whole table."""
    spec = _SPECS.get(finding.expectation)
    if spec is None:
        return finding.table, None
    if spec.rule == "mapped":
        return "stage_events", None
    if ID_COLUMNS.get(spec.table) == spec.column:
        return spec.table, None
    return spec.table, spec.column


def _is_mapping_check(finding: Finding) -> bool:
    spec = _SPECS.get(finding.expectation)
    return spec is not None and spec.rule == "mapped"


def reads_input(reads: frozenset[str], table: str, column: str | None) -> bool:
    """Return whether a metric with inputs ``reads`` reads ``table.column``."""
    if table in reads:
        return True
    if column is None:
        return any(item.startswith(f"{table}.") for item in reads)
    return f"{table}.{column}" in reads


def flag_metrics(
    metrics: Metrics, report: GateReport, *, stages_from_mapping: bool = True
) -> Metrics:
    """Return ``metrics`` with the report's warnings added to the affected metrics.

    Metrics without a value, and metrics no warning concerns, are returned as
    they are. A metric's warnings are listed in the order of the report.
    ``stages_from_mapping`` is false when the source gave stage events as they
    are (canonical files): an unmapped status then concerns no metric, because
    no status was turned into a stage event.
    """
    warnings = [
        (finding, affected_input(finding))
        for finding in report.warnings
        if stages_from_mapping or not _is_mapping_check(finding)
    ]
    if not warnings:
        return metrics

    flagged: Metrics = {}
    for key, metric in metrics.items():
        findings = [
            finding
            for finding, (table, column) in warnings
            if reads_input(metric.reads, table, column)
        ]
        if not findings or not metric.measurable:
            flagged[key] = metric
            continue
        flagged[key] = dataclasses.replace(
            metric,
            note=_join(metric.note, _describe(findings)),
            details={**metric.details, WARNINGS_KEY: [f.expectation for f in findings]},
        )
    return flagged


def _describe(findings: list[Finding]) -> str:
    parts = [
        f"{f.expectation} ({f.failed} of {f.total} {f.table} rows)" for f in findings
    ]
    noun = "warning" if len(parts) == 1 else "warnings"
    return f"data-quality {noun} on its input: {', '.join(parts)}"


def _join(note: str, addition: str) -> str:
    return f"{note}; {addition}" if note else addition
