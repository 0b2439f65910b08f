"""``revalign serve``: serve the nightly scoring deployment from this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from connectors.errors import RevalignError


def serve_command(
    config: Annotated[
        Path,
        typer.Option(
            help="Org config, or an org list (a YAML file with an `orgs` key)."
        ),
    ],
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the deployment (schedule, parameters, orgs) as JSON and exit.",
        ),
    ] = False,
) -> None:
    """Serve the nightly scoring with the config's cron schedule and time zone.

    Needs a running Prefect server (PREFECT_API_URL). Runs until interrupted.
    """
    from flows.cli import console, fail
    from flows.deploy import build_deployment, describe_plan, load_plan, serve_plan

    try:
        plan = load_plan(config)
        if dry_run:
            build_deployment(plan)
            typer.echo(json.dumps(describe_plan(plan), indent=2))
            return
        console.print(
            f"Serving [bold]revalign-nightly/{plan.deployment_name}[/] "
            f"({plan.cron!r} in {plan.time_zone}) for "
            f"{', '.join(org.org_id for org in plan.orgs)}; stop with Ctrl+C.",
            highlight=False,
        )
        serve_plan(plan)
    except RevalignError as error:
        raise fail(error) from None
