"""The nightly deployment: which orgs it scores, on what schedule, and serving it.

:func:`load_plan` reads either one org config or an org list (a file with an
``orgs`` key) into a :class:`NightlyPlan`. :func:`build_deployment` turns the plan
into a Prefect deployment of :func:`flows.nightly.nightly_flow` with the cron
schedule and time zone from the config; the deployment's only parameter is the
config path, so each run reads the current config. :func:`serve_plan` serves it
from this process and needs a reachable Prefect server.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.models import (
    ConfigError,
    HistoryConfig,
    OrgConfig,
    is_org_list,
    load_config,
    load_org_list,
)
from connectors.errors import RevalignError
from flows.sources import SOURCES

logger = logging.getLogger(__name__)

DEFAULT_HISTORY = Path("revalign-state/history.duckdb")
HEALTH_TIMEOUT_SECONDS = 5.0
START_SERVER_HINT = (
    "start one with `prefect server start` (it listens on http://127.0.0.1:4200), "
    "then `prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api`, or point "
    "PREFECT_API_URL at a running server or Prefect Cloud"
)


# Sources that read files, so each scheduled run needs the folder to read.
FOLDER_SOURCES = {
    "salesforce-export": "the export folder",
    "canonical": "the folder of canonical files",
}


class ServerUnreachable(RevalignError):
    """Raised when the configured Prefect server does not respond."""

    exit_code = 4
    retryable = True


class ServerNotConfigured(RevalignError):
    """Raised when PREFECT_API_URL is not set, so no server can be reached."""


@dataclass(frozen=True)
class OrgRun:
    """One org of the nightly plan and the parameters of its scoring run.

    When the org's config is invalid, ``config`` is ``None`` and ``error`` contains
    the reason. That org is then recorded as failed and the others still run.
    ``error`` is also set, with the config kept, when the run parameters cannot
    work (an unknown source, or no folder for a file source); such a run still
    starts each night, so it fails with the org's own alert rules.
    """

    org_id: str
    config_path: Path
    config: OrgConfig | None
    source: str
    path: Path | None = None
    out: Path | None = None
    error: str | None = None

    def flow_parameters(self) -> dict[str, Any]:
        """Return the parameters of :func:`flows.nightly.score_flow` for this org."""
        return {
            "source": self.source,
            "path": None if self.path is None else str(self.path),
            "config_path": str(self.config_path),
            "out": None if self.out is None else str(self.out),
        }


@dataclass(frozen=True)
class NightlyPlan:
    """The nightly deployment's orgs, schedule and history store."""

    config_path: Path
    cron: str
    time_zone: str
    deployment_name: str
    history: HistoryConfig
    orgs: tuple[OrgRun, ...] = field(default_factory=tuple)


def load_plan(config_path: Path) -> NightlyPlan:
    """Read an org config or an org list into a plan.

    Raises:
        ConfigError: the file itself is unreadable or invalid. An invalid org
            config named by an org list only marks that org as failed.
    """
    config_path = config_path.resolve()
    if is_org_list(config_path):
        return _plan_from_list(config_path)
    config = load_config(config_path)
    schedule = config.schedule
    history = config.history or HistoryConfig(path=config_path.parent / DEFAULT_HISTORY)
    org = OrgRun(
        org_id=config.org.id,
        config_path=config_path,
        config=config,
        source=schedule.source,
        path=schedule.path,
        out=schedule.out,
        error=_run_error(schedule.source, schedule.path, in_list=False),
    )
    return NightlyPlan(
        config_path=config_path,
        cron=schedule.cron,
        time_zone=schedule.time_zone or config.calendar.time_zone,
        deployment_name=schedule.deployment,
        history=history,
        orgs=(org,),
    )


def _plan_from_list(config_path: Path) -> NightlyPlan:
    listing = load_org_list(config_path)
    orgs = []
    for entry in listing.orgs:
        try:
            config = load_config(entry.config)
        except ConfigError as exc:
            logger.error("org config %s is invalid: %s", entry.config, exc)
            orgs.append(
                OrgRun(entry.config.stem, entry.config, None, "", error=str(exc))
            )
            continue
        source = entry.source or config.schedule.source
        path = entry.path or config.schedule.path
        orgs.append(
            OrgRun(
                org_id=config.org.id,
                config_path=entry.config,
                config=config,
                source=source,
                path=path,
                out=entry.out or config.schedule.out,
                error=_run_error(source, path, in_list=True),
            )
        )
    _check_unique_ids(config_path, orgs)
    return NightlyPlan(
        config_path=config_path,
        cron=listing.schedule.cron,
        time_zone=listing.schedule.time_zone or "UTC",
        deployment_name=listing.schedule.deployment,
        history=listing.history,
        orgs=tuple(orgs),
    )


def _run_error(source: str, path: Path | None, *, in_list: bool) -> str | None:
    """Return why a scheduled run of ``source`` cannot work, or ``None``."""
    if source not in SOURCES:
        return (
            f"schedule.source {source!r} is unknown; choose one of: "
            f"{', '.join(sorted(SOURCES))}"
        )
    if path is None and source in FOLDER_SOURCES:
        folder = FOLDER_SOURCES[source]
        fix = f"set it to {folder} (relative to the org config)"
        if in_list:
            fix = f"set it, or `path` on the org's entry in the org list, to {folder}"
        return f"schedule.path is required for source {source}; {fix}"
    return None


def invalid_orgs_message(plan: NightlyPlan) -> str | None:
    """Return a message naming each org that cannot run and why, or ``None``."""
    invalid = [org for org in plan.orgs if org.error is not None]
    if not invalid:
        return None
    names = ", ".join(org.org_id for org in invalid)
    reasons = "".join(f"\n  - {org.org_id}: {org.error}" for org in invalid)
    return f"{len(invalid)} of {len(plan.orgs)} org(s) cannot run: {names}{reasons}"


def _check_unique_ids(config_path: Path, orgs: list[OrgRun]) -> None:
    ids = [org.org_id for org in orgs]
    repeated = sorted({org_id for org_id in ids if ids.count(org_id) > 1})
    if repeated:
        msg = (
            f"{config_path}: org id(s) {', '.join(map(repr, repeated))} appear more "
            f"than once; give each org config its own org.id, because history rows "
            f"are keyed by it"
        )
        raise ConfigError(msg)


def build_deployment(plan: NightlyPlan) -> Any:
    """Return the Prefect deployment (a RunnerDeployment) of the nightly flow.

    Raises:
        ConfigError: Prefect rejects the cron expression.
    """
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.nightly import nightly_flow

    try:
        schedule = Cron(plan.cron, timezone=plan.time_zone)
    except ValueError as exc:
        msg = f"{plan.config_path}: schedule.cron {plan.cron!r} is invalid: {exc}"
        raise ConfigError(msg) from None
    orgs = ", ".join(org.org_id for org in plan.orgs)
    return nightly_flow.to_deployment(
        name=plan.deployment_name,
        schedules=[schedule],
        parameters={"config_path": str(plan.config_path)},
        description=f"Nightly alignment scoring of {orgs}",
        tags=["revalign", *(f"org:{org.org_id}" for org in plan.orgs)],
        entrypoint_type=EntrypointType.MODULE_PATH,
    )


def check_server() -> str:
    """Return the Prefect API URL after checking that the server responds.

    Raises:
        ServerNotConfigured: PREFECT_API_URL is not set.
        ServerUnreachable: the health check fails; retrying may succeed.
    """
    import httpx
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        msg = (
            "PREFECT_API_URL is not set, so there is no Prefect server to serve "
            "from; " + START_SERVER_HINT
        )
        raise ServerNotConfigured(msg)
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_SECONDS
        )
    except httpx.HTTPError as exc:
        msg = (
            f"the Prefect server at {url} is not reachable ({exc}); {START_SERVER_HINT}"
        )
        raise ServerUnreachable(msg) from None
    if response.status_code != 200:
        msg = (
            f"the Prefect server at {url} failed its health check (HTTP "
            f"{response.status_code}); {START_SERVER_HINT}"
        )
        raise ServerUnreachable(msg)
    return url


def serve_plan(plan: NightlyPlan) -> None:
    """Register the deployment and run its scheduled and triggered runs until stopped.

    Blocks until the process gets SIGINT or SIGTERM; Prefect pauses the schedule
    on the way out.
    """
    from prefect import serve

    check_server()
    deployment = build_deployment(plan)
    logger.info(
        "serving deployment %s with cron %r in %s", plan.deployment_name, plan.cron,
        plan.time_zone,
    )  # fmt: skip
    serve(deployment, print_starting_message=True)


def describe_plan(plan: NightlyPlan) -> dict[str, Any]:
    """Return the plan as JSON-ready data: deployment, schedule, history and orgs."""
    return {
        "deployment": f"revalign-nightly/{plan.deployment_name}",
        "cron": plan.cron,
        "time_zone": plan.time_zone,
        "parameters": {"config_path": str(plan.config_path)},
        "history": str(plan.history.path),
        "orgs": [
            {"org": org.org_id, **org.flow_parameters(), "error": org.error}
            for org in plan.orgs
        ],
    }
