"""The Markdown report and the shared formatting of scorecard values.

Everything here reads the ``scorecard.json`` document, so the report, the terminal
table and the Prefect artifacts show the same numbers.
"""

from __future__ import annotations

from typing import Any

SCORE_RULE = (
    "A dimension's score blends the level the data supports with the survey mean "
    "(the org config's `scoring.measured_weight` goes to the data); its level is the "
    "whole number below the score. Proxy criteria stand in for practices a CRM "
    "cannot record. p90: the value 90% of handoffs beat."
)

STATUS_MARKS = {"passed": "held", "failed": "failed", "not_measurable": "no data"}


def format_value(value: float | None, unit: str) -> str:
    """Format a metric value for people: shares as percentages, hours with ``h``."""
    if value is None:
        return "not measurable"
    if unit == "share":
        return f"{value * 100:.1f}%"
    if unit == "hours":
        return f"{value:.2f} h"
    if unit == "days":
        return f"{value:.1f} d"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "flag":
        return "yes" if value >= 1 else "no"
    return f"{value:.2f}"


def format_score(score: float | None) -> str:
    """Format a 1–5 score with two decimals, or a dash when there is none."""
    return "—" if score is None else f"{score:.2f}"


def metrics_by_dimension(document: dict[str, Any]) -> dict[str, list[str]]:
    """Group metric keys under the dimension whose criteria use them.

    A metric used by several dimensions is listed under each. Metrics no criterion
    uses go under ``other``.
    """
    groups: dict[str, list[str]] = {}
    used: set[str] = set()
    for dimension in document["scorecard"]["dimensions"]:
        keys = []
        for criterion in dimension["measured"]["criteria"]:
            key = criterion["metric"]
            if key in document["metrics"] and key not in keys:
                keys.append(key)
        groups[dimension["key"]] = keys
        used.update(keys)
    groups["other"] = [key for key in document["metrics"] if key not in used]
    return groups


def dimension_rows(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Return one plain row per dimension, for tables and Prefect artifacts."""
    rows = []
    for dimension in document["scorecard"]["dimensions"]:
        rows.append(
            {
                "dimension": dimension["name"],
                "score": dimension["score"],
                "level": dimension["level_name"] or "lacking data",
                "source": dimension["source"],
                "confidence": dimension["confidence"] or "—",
                "limited_by_data": dimension["measured"]["limited_by_data"],
            }
        )
    return rows


def held_by_text(dimension: dict[str, Any]) -> str:
    """Say what placed a dimension's measured level where it is.

    Criteria without data at the levels reached are named too, because such a
    level rests on fewer criteria than the rubric lists.
    """
    measured = dimension["measured"]
    reason = measured["stop_reason"]
    if measured["level"] is None:
        return "level 2 not measurable from the data, so no measured level"
    if reason is None:
        text = "every criterion held"
    elif reason == "failed":
        failed = [c for c in measured["criteria"] if c["status"] == "failed"]
        parts = [
            f"{c['condition']} ({format_value(c['value'], c['unit'])})"
            for c in failed
            if c["level"] == measured["stopped_at"]
        ]
        text = f"level {measured['stopped_at']} failed: " + "; ".join(parts)
    elif reason == "not_measurable":
        text = f"level {measured['stopped_at']} not measurable from the data"
    else:
        text = f"level {measured['stopped_at']} is shown only by the survey"
    unmeasured = [
        c
        for c in measured["criteria"]
        if c["status"] == "not_measurable" and c["level"] <= measured["level"]
    ]
    if unmeasured:
        text += f"; {_count(len(unmeasured), 'criterion', 'criteria')} below it had no data"
    return text


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number} {singular if number == 1 else plural}"


def evidence_cells(dimension: dict[str, Any]) -> tuple[str, str]:
    """Return the measured level and the survey mean behind a dimension's score."""
    level = dimension["measured"]["level"]
    survey = dimension["survey"]
    data = "—" if level is None else str(level)
    if survey["mean"] is None:
        self_rating = "—"
    else:
        self_rating = f"{survey['mean']:.2f}" + ("" if survey["counted"] else " (too few)")
    return data, self_rating


def _overall_lines(document: dict[str, Any]) -> list[str]:
    scorecard = document["scorecard"]
    overall = scorecard["overall"]
    lines = []
    if overall["score"] is None:
        lines.append(
            "**Overall:** not scored; dimensions lacking data: "
            + ", ".join(overall["missing"])
        )
    else:
        band = overall["band"]
        lines.append(f"**Overall:** {overall['score']:.2f} — {band['name']}. {band['meaning']}")
        lines.append(f"**Next step:** {band['next_step']}")
    benchmark = scorecard["benchmark"]
    if benchmark:
        lines.append(f"**Benchmark:** {benchmark_text(benchmark)}")
    elif scorecard["benchmark_note"]:
        lines.append(f"**Benchmark:** {scorecard['benchmark_note']}")
    return lines


def benchmark_text(benchmark: dict[str, Any]) -> str:
    """Describe a benchmark verdict in one line."""
    return (
        f"{benchmark.get('verdict_text') or benchmark.get('verdict')} for "
        f"{benchmark.get('segment_name') or benchmark.get('segment')} "
        f"(expected {benchmark.get('expected')}, good {benchmark.get('good')}, "
        f"alarm {benchmark.get('alarm')})"
    )


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return lines


def markdown_report(document: dict[str, Any]) -> str:
    """Render the whole scorecard document as a Markdown report."""
    lines = [
        f"# Sales–marketing alignment: {document['org']['id']}",
        "",
        f"As of {document['as_of']} ({document['as_of_basis']}); "
        f"source: {document['source']['name']}.",
        "",
        *_overall_lines(document),
        "",
    ]
    lines += _dimensions_section(document["scorecard"])
    lines += _criteria_section(document["scorecard"])
    lines += _metrics_section(document)
    lines += _audit_section(document)
    lines += _data_section(document)
    return "\n".join(lines).rstrip() + "\n"


def _dimensions_section(scorecard: dict[str, Any]) -> list[str]:
    rows = [
        [
            d["name"],
            format_score(d["score"]),
            d["level_name"] or "lacking data",
            *evidence_cells(d),
            d["source"],
            d["confidence"] or "—",
            held_by_text(d),
        ]
        for d in scorecard["dimensions"]
    ]
    header = ["Dimension", "Score", "Level", "Data level", "Survey mean", "Source"]
    lines = ["## Dimensions", ""]
    lines += _table([*header, "Confidence", "Measured level set by"], rows)
    lines += ["", SCORE_RULE]

    if scorecard["weak_dimensions"]:
        lines += ["", "## Next steps for weak dimensions", ""]
        lines += [
            f"- **{w['name']}** ({format_score(w['score'])}): {w['card']}"
            for w in scorecard["weak_dimensions"]
        ]
    return lines


def _criteria_section(scorecard: dict[str, Any]) -> list[str]:
    lines = ["", "## Criteria", ""]
    for dimension in scorecard["dimensions"]:
        rows = []
        for c in dimension["measured"]["criteria"]:
            measured = c["status"] != "not_measurable"
            rows.append(
                [
                    str(c["level"]),
                    c["condition"] + (" (proxy)" if c["proxy"] else ""),
                    STATUS_MARKS[c["status"]],
                    format_value(c["value"], c["unit"]) if measured else c["note"],
                    str(c["population"]),
                ]
            )
        lines += [f"### {dimension['name']}", ""]
        lines += _table(["Level", "Criterion", "Result", "Value", "Population"], rows)
        lines.append("")
    return lines


def _metrics_section(document: dict[str, Any]) -> list[str]:
    lines = ["## Metrics", ""]
    names = {d["key"]: d["name"] for d in document["scorecard"]["dimensions"]}
    names["other"] = "Other measures"
    for group, keys in metrics_by_dimension(document).items():
        if not keys:
            continue
        lines += [f"### {names[group]}", ""]
        rows = []
        for key in keys:
            metric = document["metrics"][key]
            rows.append(
                [
                    metric["label"],
                    format_value(metric["value"], metric["unit"]),
                    str(metric["population"]),
                    metric["note"],
                ]
            )
        lines += _table(["Metric", "Value", "Population", "Coverage note"], rows)
        lines.append("")
    return lines


def audit_rows(audit: dict[str, Any]) -> list[list[str]]:
    """Return one row per dimension: measured, self-reported, verdict, team gap."""
    rows = []
    for item in audit["dimensions"]:
        everyone = item["everyone"]
        measured = item["measured_level"]
        gap = "—" if item["gap"] is None else f"{item['gap']:.2f}"
        rows.append(
            [
                item["name"],
                "—" if measured is None else str(measured),
                format_score(everyone["self_reported"]),
                everyone["verdict"],
                format_score(item["sales"]),
                format_score(item["marketing"]),
                gap + (" perception gap" if item["perception_gap"] else ""),
            ]
        )
    return rows


AUDIT_HEADER = ["Dimension", "Measured", "Self-reported", "Verdict", "Sales", "Marketing", "Gap"]


def _audit_section(document: dict[str, Any]) -> list[str]:
    audit = document.get("audit")
    if not audit:
        return []
    lines = ["## Audit: self-reported against measured", ""]
    lines += _table(AUDIT_HEADER, audit_rows(audit))
    if audit["red_flags"]:
        lines += ["", "Red flags seen in the data:", ""]
        lines += [f"- {flag['message']}" for flag in audit["red_flags"]]
    return lines + [""]


def _data_section(document: dict[str, Any]) -> list[str]:
    source = document["source"]
    lines = ["## Data", ""]
    records = ", ".join(f"{name} {count:,}" for name, count in source["records"].items())
    lines.append(f"- Records read: {records or 'none'}")
    lines += [f"- Not available: {table}: {reason}" for table, reason in source["missing"].items()]
    lines += [f"- {note}" for note in source["notes"]]
    if source["unmapped_statuses"]:
        values = ", ".join(f"{value!r} ({count})" for value, count in source["unmapped_statuses"].items())
        lines.append(
            f"- Status values no mapping covers (records using each): {values}; "
            "add them under `stages.status`"
        )
    gate = document.get("gate")
    if gate:
        lines += ["", "## Data-quality gate", ""]
        lines += _gate_lines(gate)
    return lines


def _gate_lines(gate: dict[str, Any]) -> list[str]:
    findings = gate["findings"]
    verdict = "passed" if gate["passed"] else "failed"
    lines = [f"The gate {verdict} with {len(findings)} finding(s) from {gate['checks_run']} checks.", ""]
    if findings:
        rows = [
            [
                f["severity"],
                f"`{f['expectation']}`",
                f"{f['failed']} of {f['total']}",
                ", ".join(f["examples"]),
                f"{f['detail']} {f['fix']}".strip(),
            ]
            for f in findings
        ]
        lines += _table(["Severity", "Check", "Failed", "Examples", "What to fix"], rows)
    return lines
