"""``revalign check hubspot``: a portal's contact stage values and their mapping.

Lists the options of ``lifecyclestage`` and ``hs_lead_status`` from the portal's
property definitions, and the canonical stage the org config maps each to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from config.models import OrgConfig, load_config
from connectors.errors import RevalignError

MAPPED_PROPERTIES = (
    ("lifecyclestage", "lifecycle stage"),
    ("hs_lead_status", "lead status"),
)


def mapping_rows(
    definitions: list[object], config: OrgConfig
) -> list[tuple[str, str, str, str]]:
    """Return (property, value, label, stage) for each option of the two properties.

    The stage reads ``not a stage`` for a value mapped to null and ``UNMAPPED``
    for a value neither mapping lists.
    """
    lifecycle, lead_status = config.hubspot.stages.resolved()
    mappings = {"lifecyclestage": lifecycle, "hs_lead_status": lead_status}
    by_name = {getattr(d, "name", None): d for d in definitions}
    rows = []
    for name, _ in MAPPED_PROPERTIES:
        definition = by_name.get(name)
        for option in getattr(definition, "options", None) or []:
            mapping = mappings[name]
            if option.value not in mapping:
                stage = "UNMAPPED"
            else:
                stage = mapping[option.value] or "not a stage"
            rows.append((name, option.value, option.label, stage))
    return rows


def check_hubspot_command(
    config: Annotated[
        Path,
        typer.Option(
            help="Org config YAML with a `hubspot` section (host, token_env)."
        ),
    ],
) -> None:
    """List the portal's lifecycle stages and lead statuses and their stages."""
    from connectors.hubspot_client import connect

    console = Console()
    errors = Console(stderr=True)
    try:
        settings = load_config(config)
        api = connect(settings.hubspot)
        definitions = api.property_definitions("contacts")
    except RevalignError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=getattr(error, "exit_code", 2)) from None

    rows = mapping_rows(definitions, settings)
    table = Table(title=f"HubSpot contact stages at {settings.hubspot.host}")
    table.add_column("property")
    table.add_column("value", overflow="fold")  # the exact text to map in the config
    table.add_column("label")
    table.add_column("canonical stage")
    for row in rows:
        style = "bold red" if row[3] == "UNMAPPED" else None
        table.add_row(*row, style=style)
    console.print(table)

    found = {name for name, *_ in rows}
    for name, description in MAPPED_PROPERTIES:
        if name not in found:
            console.print(f"The portal defines no options for {name} ({description}).")
    unmapped = sum(1 for row in rows if row[3] == "UNMAPPED")
    if unmapped:
        console.print(
            f"{unmapped} value(s) not mapped: add them under hubspot.stages.lifecycle "
            f"or hubspot.stages.lead_status in {config}, to a stage or to null."
        )
    else:
        console.print("Every lifecycle stage and lead status is mapped.")
