"""The terminal scorecard, drawn with rich from the ``scorecard.json`` document."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from flows.report import (
    audit_rows,
    evidence_cells,
    benchmark_text,
    format_score,
    format_value,
    held_by_text,
    metrics_by_dimension,
)

_STATUS_STYLE = {
    "passed": ("held", "green"),
    "failed": ("failed", "red"),
    "not_measurable": ("no data", "dim"),
}


def _score_style(score: float | None) -> str:
    if score is None:
        return "dim"
    if score < 2:
        return "bold red"
    if score < 3:
        return "yellow"
    return "green"


def dimensions_table(document: dict[str, Any]) -> Table:
    """Build the five-dimension table: score, level, source, confidence, evidence."""
    table = Table(title="Alignment by dimension", title_justify="left", expand=True)
    table.add_column("Dimension", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Level", no_wrap=True)
    table.add_column("Data", justify="right", no_wrap=True)
    table.add_column("Survey", justify="right", no_wrap=True)
    table.add_column("Source", no_wrap=True)
    table.add_column("Confidence", no_wrap=True)
    for dimension in document["scorecard"]["dimensions"]:
        score = dimension["score"]
        table.add_row(
            dimension["name"],
            Text(format_score(score), style=_score_style(score)),
            dimension["level_name"] or "no data",
            *evidence_cells(dimension),
            dimension["source"].replace("lacking data", "no data"),
            dimension["confidence"] or "—",
        )
    table.caption = (
        "Data: level the CRM data supports. Survey: mean self-rating. "
        "Score: their blend; level: the whole number below it."
    )
    table.caption_justify = "left"
    return table


def level_reasons(document: dict[str, Any]) -> Text:
    """Say, per dimension, what placed its measured level where it is."""
    text = Text()
    for dimension in document["scorecard"]["dimensions"]:
        text.append(f"{dimension['name']}: ", style="bold")
        text.append(held_by_text(dimension) + "\n")
    return text


def criteria_table(dimension: dict[str, Any]) -> Table:
    """Build one dimension's criteria table with the numbers behind each result."""
    table = Table(
        title=f"{dimension['name']}: criteria", title_justify="left", expand=True, box=None
    )
    table.add_column("L", justify="right", no_wrap=True)
    table.add_column("Criterion", ratio=2)
    table.add_column("Result", no_wrap=True)
    table.add_column("Value", justify="right", ratio=1)
    table.add_column("n", justify="right", no_wrap=True)
    for criterion in dimension["measured"]["criteria"]:
        label, style = _STATUS_STYLE[criterion["status"]]
        measured = criterion["status"] != "not_measurable"
        value = format_value(criterion["value"], criterion["unit"]) if measured else criterion["note"]
        table.add_row(
            str(criterion["level"]),
            criterion["condition"] + (" (proxy)" if criterion["proxy"] else ""),
            Text(label, style=style),
            value,
            f"{criterion['population']:,}" if measured else "—",
        )
    return table


def metrics_table(document: dict[str, Any]) -> Table:
    """Build the metrics table grouped by the dimension each metric informs."""
    table = Table(title="Metrics", title_justify="left", expand=True)
    table.add_column("Metric", ratio=2)
    table.add_column("Value", justify="right", no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    table.add_column("Coverage note", ratio=3)
    names = {d["key"]: d["name"] for d in document["scorecard"]["dimensions"]}
    names["other"] = "Other measures"
    shown: set[str] = set()
    for group, keys in metrics_by_dimension(document).items():
        keys = [key for key in keys if key not in shown]
        if not keys:
            continue
        table.add_row(Text(names[group], style="bold"), "", "", "")
        for key in keys:
            metric = document["metrics"][key]
            table.add_row(
                "  " + metric["label"],
                format_value(metric["value"], metric["unit"]),
                f"{metric['population']:,}",
                metric["note"],
            )
        shown.update(keys)
    return table


def _summary(document: dict[str, Any]) -> Panel:
    scorecard = document["scorecard"]
    overall = scorecard["overall"]
    lines = Text()
    if overall["score"] is None:
        lines.append("Overall: not scored", style="bold")
        lines.append(f" (lacking data: {', '.join(overall['missing'])})\n")
    else:
        band = overall["band"]
        lines.append(f"Overall {overall['score']:.2f}: {band['name']}", style=_score_style(overall["score"]))
        lines.append(f"\n{band['meaning']}\nNext step: {band['next_step']}\n")
    if scorecard["benchmark"]:
        lines.append(f"Benchmark: {benchmark_text(scorecard['benchmark'])}\n")
    elif scorecard["benchmark_note"]:
        lines.append(f"Benchmark: {scorecard['benchmark_note']}\n")
    for weak in scorecard["weak_dimensions"]:
        lines.append(
            f"Weak (below 3): {weak['name']} ({format_score(weak['score'])}) → "
            f"{weak['card']}\n"
        )
    title = f"revalign · {document['org']['id']} · as of {document['as_of'][:10]}"
    return Panel(lines, title=title, title_align="left")


def audit_table(audit: dict[str, Any]) -> Table:
    """Build the audit table: self-reported against measured, per dimension.

    Headers are shorter than the report's so the table fits 80 columns; a
    perception gap is marked with ``!`` and explained under the table.
    """
    headers = ["Dimension", "Data", "Self", "Verdict", "Sales", "Mktg", "Gap"]
    table = Table(
        title="Audit: self-reported (survey mean) against measured (data) level",
        title_justify="left",
        caption_justify="left",
    )
    if audit["respondents"]:
        table.caption = "! sales and marketing rate this dimension a level or more apart"
    for name in headers:
        justify = "left" if name in ("Dimension", "Verdict", "Gap") else "right"
        table.add_column(name, justify=justify, no_wrap=True)
    for row in audit_rows(audit):
        row[-1] = row[-1].replace(" perception gap", " !")
        style = "red" if row[3] == "over-claim" else None
        table.add_row(*row, style=style)
    return table


def data_notes(document: dict[str, Any]) -> Text:
    """List what the source lacked and how values were read."""
    source = document["source"]
    text = Text()
    records = ", ".join(f"{name} {count:,}" for name, count in source["records"].items())
    text.append(f"• source {source['name']}; records read: {records or 'none'}\n")
    for table, reason in source["missing"].items():
        text.append(f"• not available: {table}: {reason}\n", style="yellow")
    for note in source["notes"]:
        text.append(f"• {note}\n")
    if source["unmapped_statuses"]:
        values = ", ".join(f"{v!r} ({n})" for v, n in source["unmapped_statuses"].items())
        text.append(
            f"• status values no mapping covers (records using each): {values}; "
            "map them under stages.status in the org config\n",
            style="yellow",
        )
    gate = document.get("gate")
    if gate:
        findings = gate["findings"]
        text.append(f"• data-quality gate: {'passed' if gate['passed'] else 'failed'}, {len(findings)} warning(s)\n")
        for finding in findings:
            text.append(
                f"  – {finding['expectation']}: {finding['failed']} of "
                f"{finding['total']} rows failed; {finding['fix']}\n"
            )
    text.append(f"• as of {document['as_of']}: {document['as_of_basis']}\n")
    return text


def render_scorecard(document: dict[str, Any], console: Console, *, details: bool = True) -> None:
    """Print the scorecard: summary, dimensions, criteria, metrics, audit, data notes."""
    console.print(_summary(document))
    console.print(dimensions_table(document))
    console.print(Panel(level_reasons(document), title="Measured level set by", title_align="left"))
    if details:
        console.print(Group(*(criteria_table(d) for d in document["scorecard"]["dimensions"])))
        console.print(metrics_table(document))
    if document.get("audit"):
        console.print(audit_table(document["audit"]))
    console.print(Panel(data_notes(document), title="Data", title_align="left"))
