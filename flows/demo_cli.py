"""``revalign demo``: write the built-in demo company as a Salesforce export folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connectors.errors import InputError


def demo_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Folder to write the export into; created if missing. Files of the "
            "same names in it are replaced.",
        ),
    ] = Path("revalign-demo"),
    leads: Annotated[
        int,
        typer.Option(
            "--leads",
            min=1,
            help="Number of leads; accounts, activities and deals scale with it.",
        ),
    ] = 5000,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            help="Random seed; the same seed and --leads write the same files.",
        ),
    ] = 7,
) -> None:
    """Write the demo company as a Salesforce export, with its survey and org config."""
    from connectors.demo import generate_demo

    try:
        demo = generate_demo(out, leads=leads, seed=seed)
    except InputError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(code=error.exit_code) from None

    as_of = demo.as_of.isoformat().replace("+00:00", "Z")
    counts = demo.counts
    console = Console()
    console.print(
        f"Wrote the demo Salesforce export to {demo.folder}: {counts['Lead']:,} leads, "
        f"{counts['Task']:,} tasks, {counts['Event']:,} events, "
        f"{counts['Opportunity']:,} opportunities, a survey and revalign.yaml.",
        highlight=False,
    )
    console.print(
        f"As-of time: {as_of} (the data ends just before it).", highlight=False
    )
    console.print(
        "Score it: revalign score --source salesforce-export "
        f"--path {demo.folder} --config {demo.config_path} --as-of {as_of}",
        highlight=False,
        soft_wrap=True,
    )
