"""``revalign check salesforce``: connect to the org and check the config against it.

Exit status: 0 when every Lead Status value is mapped and every configured
custom field is readable, 1 when not, and the error's own status when the
config is invalid (2) or the org cannot be reached (4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from connectors.errors import RevalignError

PROBLEM_EXIT = 1


def check_salesforce_command(
    config: Annotated[
        Path, typer.Option(help="Org config YAML with a salesforce section.")
    ],
) -> None:
    """Connect to Salesforce and check the status mapping and custom fields."""
    from config.models import load_config
    from connectors.salesforce_check import check_salesforce

    console = Console()
    try:
        result = check_salesforce(load_config(config))
    except RevalignError as error:
        Console(stderr=True).print(f"error: {error}", highlight=False, markup=False)
        raise typer.Exit(code=error.exit_code) from None

    console.print(
        f"Connected to {result.instance_url}; daily API usage {result.api_usage}.",
        highlight=False,
        markup=False,
    )
    statuses = Table("Lead Status value", "stage", title="Lead Status picklist")
    for status in result.statuses:
        stage = (status.stage or "not a stage") if status.mapped else "unmapped"
        statuses.add_row(status.value, stage)
    console.print(statuses)
    if result.mapped_not_in_picklist:
        console.print(
            "mapped but not in the picklist: "
            + ", ".join(result.mapped_not_in_picklist),
            highlight=False,
            markup=False,
        )
    if result.fields:
        fields = Table("setting", "field", "status", title="Custom fields")
        for item in result.fields:
            state = "readable" if item.readable else "missing or not readable"
            fields.add_row(f"fields.{item.setting}", item.field, state)
        console.print(fields)
    if not result.passed:
        raise typer.Exit(code=PROBLEM_EXIT)
