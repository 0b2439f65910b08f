"""Carry the gate's warnings into the metrics whose input they concern.

A warning lets scoring go on, but the values built on the flawed rows are less
sure. :func:`flag_metrics` appends the warnings to the note of every measurable
metric whose family reads the affected table, and lists their check names in the
metric's ``details["data_quality_warnings"]``. :mod:`scoring.combine` then lowers
the confidence of a dimension whose level relies on such a metric.

A finding affects its own table, except an unmapped status: revalign turns the
status values into stage events through the mapping, so that finding affects
``stage_events``.
"""

from __future__ import annotations

import dataclasses

from expectations.catalogue import CATALOGUE
from expectations.report import Finding, GateReport
from metrics.result import WARNINGS_KEY, Metrics

_RULE_AFFECTS = {"mapped": "stage_events"}
_SPECS = {spec.name: spec for spec in CATALOGUE}


def affected_table(finding: Finding) -> str:
    """Return the canonical table whose metrics a finding weakens."""
    spec = _SPECS.get(finding.expectation)
    if spec is None:
        return finding.table
    return _RULE_AFFECTS.get(spec.rule, spec.table)


def flag_metrics(metrics: Metrics, report: GateReport) -> Metrics:
    """Return ``metrics`` with the report's warnings added to the affected metrics.

    Metrics without a value, and metrics no warning touches, are returned as
    they are.
    """
    by_table: dict[str, list[Finding]] = {}
    for finding in report.warnings:
        by_table.setdefault(affected_table(finding), []).append(finding)
    if not by_table:
        return metrics

    flagged: Metrics = {}
    for key, metric in metrics.items():
        findings = [
            f for table in sorted(metric.reads) for f in by_table.get(table, [])
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
