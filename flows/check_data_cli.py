"""``revalign check data``: extract one org's data and run the data-quality gate alone.

Exit status: 0 when no finding is critical, 3 when one is (as ``revalign score``
exits when the gate stops it), and the error's own status (2 for invalid input)
when the config, the source or the files are invalid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from connectors.errors import RevalignError

if TYPE_CHECKING:
    from expectations.report import GateReport

CRITICAL_EXIT = 3


def check_data_command(
    source: Annotated[
        str, typer.Option(help="Where the data comes from, such as salesforce-export.")
    ] = "salesforce-export",
    path: Annotated[
        Path | None, typer.Option(help="Export folder (for salesforce-export).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="Org config YAML; default: built-in defaults.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            help="When the data was extracted, ISO 8601; default: as `revalign score` "
            "picks it (the extraction time, or an export's newest timestamp)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the gate report as JSON.")
    ] = False,
) -> None:
    """Check the data behind a score: ids, timestamps, references and mappings."""
    from flows.entry import exit_cleanly_on_sigterm

    exit_cleanly_on_sigterm()
    from config.models import load_config
    from expectations.gate import run_gate, start_validator
    from flows.pipeline import ScoreRequest, parse_as_of, resolve_as_of
    from flows.sources import SourceRequest, extract

    console = Console()
    try:
        org_config = load_config(config)
        with start_validator() as validator:
            requested_as_of = parse_as_of(as_of) if as_of else None
            extracted = extract(source, SourceRequest(config=org_config, path=path))
            request = ScoreRequest(as_of=requested_as_of)
            moment, _ = resolve_as_of(request, extracted, None)
            report = run_gate(
                extracted.tables, org_config, as_of=moment, validator=validator
            )
    except RevalignError as error:
        Console(stderr=True).print(
            f"error: {error}", highlight=False, markup=False, soft_wrap=True
        )
        raise typer.Exit(code=error.exit_code) from None

    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(console, report)
    if not report.passed:
        raise typer.Exit(code=CRITICAL_EXIT)


def _print_report(console: Console, report: GateReport) -> None:
    if report.findings:
        console.print(report.render_table())
    else:
        console.print(report.summary(), highlight=False)
    for name, reason in report.skipped.items():
        console.print(
            f"not checked: {name}: {reason}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
