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
    An org that cannot run (no export folder, unknown source) stops the dry run
    with exit 2, and stops serving when no org of the plan can run.
    """
    from config.models import ConfigError
    from flows.cli import console, errors, fail
    from flows.deploy import (
        build_deployment,
        check_server,
        describe_plan,
        invalid_orgs_message,
        load_plan,
        serve_plan,
    )

    try:
        plan = load_plan(config)
        invalid = invalid_orgs_message(plan)
        if dry_run:
            build_deployment(plan)
            typer.echo(json.dumps(describe_plan(plan), indent=2))
            if invalid is not None:
                raise ConfigError(invalid)
            return
        if invalid is not None and all(org.error for org in plan.orgs):
            raise ConfigError(invalid)
        if invalid is not None:
            errors.print(
                f"[bold yellow]warning:[/] {invalid}\nTheir nightly runs will fail "
                "until this is fixed; the other orgs are served.",
                highlight=False,
            )
        url = check_server()
        console.print(
            f"Serving [bold]revalign-nightly/{plan.deployment_name}[/] "
            f"({plan.cron!r} in {plan.time_zone}) for "
            f"{', '.join(org.org_id for org in plan.orgs)} on {url}; stop with "
            "Ctrl+C.",
            highlight=False,
        )
        serve_plan(plan)
    except RevalignError as error:
        raise fail(error) from None
