"""``revalign audit``: self-reported scores held against measured levels.

The command runs the same pipeline as ``revalign score``, so the files in
``--out`` (scorecard.json, report.md with its audit section, and handoffs.csv) are
written as well. It prints the same audit table as ``revalign score``, then the
red flags; ``--json`` prints only the audit as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.errors import RevalignError
from flows.render import audit_table
from scoring.audit import Audit


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
        str | None,
        typer.Option(help="Where the data comes from, as for `revalign score`."),
    ] = None,
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
        Path,
        typer.Option(help="Folder for scorecard.json, report.md and handoffs.csv."),
    ] = Path("revalign-out"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the audit as JSON.")
    ] = False,
) -> None:
    """Compare each team's self-ratings with the levels the CRM data supports."""
    from flows.pipeline import GateFailed, build_request, run_score

    errors = Console(stderr=True)
    try:
        request = build_request(
            demo=demo, source=source, path=path, config=config, survey=survey,
            as_of=as_of, out=out,
        )  # fmt: skip
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
    console = Console()
    console.print(audit_table(result.document["audit"]))
    flags = render_red_flags(Audit.from_dict(result.document["audit"]))
    if flags is not None:
        console.print(flags)
    console.print(f"\nWrote {', '.join(str(f) for f in result.files)}", highlight=False)
