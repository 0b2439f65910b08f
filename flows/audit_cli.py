"""``revalign audit``: self-reported scores held against measured levels.

The command runs the same pipeline as ``revalign score``, so the files in
``--out`` (scorecard.json and report.md, which has an audit section) are written
as well. It prints the audit table and the red flags; ``--json`` prints only the
audit as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.errors import RevalignError
from scoring.audit import Audit, ClaimCheck, DimensionAudit
from scoring.survey import TEAMS

_MARKS = {"over-claim": " ▲", "under-claim": " ▼", "unverifiable": " ?"}
# Shorter verdict words that fit an 80-column terminal without truncation.
_VERDICT_LABELS = {
    "over-claim": "over",
    "under-claim": "under",
    "unverifiable": "unverified",
}
_TEAM_TITLES = {
    "sales": "Sales",
    "marketing": "Mktg",
    "leadership": "Lead.",
    "revops": "RevOps",
}


def _rating(check: ClaimCheck | None) -> str:
    if check is None or check.self_reported is None:
        return "—"
    return f"{check.self_reported:.2f}{_MARKS.get(check.verdict, '')}"


def _measured(item: DimensionAudit) -> str:
    if item.measured_level is None:
        return "—"
    # "+" marks a level where the data ran out of evidence rather than failing.
    ceiling = item.stop_reason in ("not_measurable", "survey_only")
    return f"{item.measured_level}{'+' if ceiling else ''}"


def _gap(item: DimensionAudit) -> str:
    if item.gap is None:
        return "—"
    return f"{item.gap:.2f}{' !' if item.perception_gap else ''}"


def render_audit(audit: Audit) -> Table:
    """Return the audit as a rich table: one row per dimension, one column per team.

    "Data" is the measured level and "Survey" the mean self-rating. Only teams
    that answered get a column. Marks: ▲ over-claim, ▼ under-claim, ?
    unverifiable; "+" after a measured level means the data ran out of evidence
    there rather than failing a criterion; "!" after the sales-marketing gap
    marks a perception gap.
    """
    teams = [
        team for team in TEAMS if any(item.team(team) for item in audit.dimensions)
    ]
    table = Table(
        title=f"Self-reported vs measured ({audit.respondents} respondents)",
        caption="Data: measured level (+ no evidence above it). Survey: mean rating. "
        "▲ over-claim ▼ under-claim ? unverifiable. Gap: sales vs marketing, "
        "! perception gap.",
    )
    # Numbers keep their full width; on a narrow terminal the names wrap instead.
    table.add_column("Dimension", ratio=2)
    table.add_column("Data", justify="right", min_width=4)
    table.add_column("Survey", justify="right", min_width=6)
    table.add_column("Verdict", min_width=10)
    for team in teams:
        table.add_column(_TEAM_TITLES[team], justify="right", min_width=6)
    table.add_column("Gap", justify="right", min_width=6)
    for item in audit.dimensions:
        cells = [_rating(item.team(team)) for team in teams]
        table.add_row(
            item.name,
            _measured(item),
            _rating(item.everyone),
            _VERDICT_LABELS.get(item.everyone.verdict, item.everyone.verdict),
            *cells,
            _gap(item),
        )
    return table


def render_red_flags(audit: Audit) -> Table | None:
    """Return the red flags as a rich table, or ``None`` when there are none."""
    if not audit.red_flags:
        return None
    names = {item.key: item.name for item in audit.dimensions}
    table = Table(title="Red flags")
    table.add_column("Dimension")
    table.add_column("Finding")
    for flag in audit.red_flags:
        table.add_row(names.get(flag.dimension, flag.dimension), flag.message)
    return table


def audit_command(
    demo: Annotated[
        bool, typer.Option("--demo", help="Audit the built-in demo company.")
    ] = False,
    source: Annotated[
        str, typer.Option(help="Where the data comes from, as for `revalign score`.")
    ] = "salesforce-export",
    path: Annotated[
        Path | None, typer.Option(help="Export folder (for salesforce-export).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Org config YAML.")] = None,
    survey: Annotated[
        Path | None, typer.Option(help="Survey answers, CSV or YAML.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="When the data was extracted, ISO 8601.")
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder for scorecard.json and report.md.")
    ] = Path("revalign-out"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the audit as JSON.")
    ] = False,
) -> None:
    """Compare each team's self-ratings with the levels the CRM data supports."""
    from flows.pipeline import GateFailed, ScoreRequest, parse_as_of, run_score

    errors = Console(stderr=True)
    try:
        if demo and path is not None:
            raise RevalignError(
                "--demo and --path cannot be combined; choose one source"
            )
        request = ScoreRequest(
            source=source,
            path=path,
            config_path=config,
            survey_path=survey,
            as_of=parse_as_of(as_of) if as_of else None,
            out=out,
            demo=demo,
        )
        result = run_score(request)
    except GateFailed as error:
        if error.report is not None:
            errors.print(error.report.render_table())
        errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=error.exit_code) from None
    except RevalignError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=error.exit_code) from None
    if as_json:
        typer.echo(json.dumps(result.document["audit"], indent=2))
        return
    audit = Audit.from_dict(result.document["audit"])
    console = Console()
    console.print(render_audit(audit))
    flags = render_red_flags(audit)
    if flags is not None:
        console.print(flags)
    console.print(f"\nWrote {', '.join(str(f) for f in result.files)}", highlight=False)
