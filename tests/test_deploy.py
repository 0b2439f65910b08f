"""The nightly deployment: schedule from config, serving against a real Prefect server.

The server test starts `prefect server start` on a free 127.0.0.1 port with its
own PREFECT_HOME, serves the deployment with `revalign serve` in a subprocess,
triggers two runs of the same day and reads the stored history. Both
subprocesses are stopped when the module finishes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.deploy import (
    build_deployment,
    describe_plan,
    invalid_orgs_message,
    load_plan,
)
from flows.history import HistoryStore
from tests.conftest import CASES_DIR

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CLOCK_CASE = CASES_DIR / "sf-export-business-hours"
WEBHOOK_ENV = "REVALIGN_TEST_ALERT_WEBHOOK"
SERVER_START_SECONDS = 120
RUN_SECONDS = 180
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_org(folder: Path, org_id: str, **extra: Any) -> Path:
    """Write the business-hours export's config as ``org_id`` with extra sections."""
    data = yaml.safe_load((CLOCK_CASE / "revalign.yaml").read_text())
    data["org"] = {"id": org_id}
    data.update(extra)
    path = folder / f"{org_id}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_plan_schedule_from_org_config(tmp_path: Path) -> None:
    config = write_org(
        tmp_path,
        "acme",
        schedule={
            "cron": "30 5 * * 1-5",
            "source": "salesforce-export",
            "path": "export",
        },
        history={"path": "state/history.duckdb"},
    )

    plan = load_plan(config)
    deployment = build_deployment(plan)

    schedule = deployment.schedules[0].schedule
    assert schedule.cron == "30 5 * * 1-5"
    assert schedule.timezone == "America/New_York"
    assert deployment.name == "nightly"
    assert deployment.entrypoint == "flows.nightly.nightly_flow"
    assert deployment.parameters == {"config_path": str(config)}
    assert plan.history.path == tmp_path / "state" / "history.duckdb"
    assert plan.orgs[0].flow_parameters()["path"] == str(tmp_path / "export")


def test_plan_from_org_list(tmp_path: Path) -> None:
    write_org(tmp_path, "acme")
    (tmp_path / "broken.yaml").write_text("org: {id: 'not ok!'}\n")
    listing = tmp_path / "orgs.yaml"
    listing.write_text(
        yaml.safe_dump(
            {
                "schedule": {"cron": "0 2 * * *", "time_zone": "Europe/Berlin"},
                "history": {"path": "shared/history.duckdb"},
                "orgs": [
                    {"config": "acme.yaml", "path": "exports/acme"},
                    {"config": "broken.yaml"},
                ],
            }
        )
    )

    described = describe_plan(load_plan(listing))

    assert described["cron"] == "0 2 * * *"
    assert described["time_zone"] == "Europe/Berlin"
    assert described["history"] == str(tmp_path / "shared" / "history.duckdb")
    acme, broken = described["orgs"]
    assert acme["org"] == "acme"
    assert acme["path"] == str(tmp_path / "exports" / "acme")
    assert acme["error"] is None
    assert broken["org"] == "broken"
    assert "key `org.id`" in broken["error"]


def test_plan_rejects_repeated_org_ids(tmp_path: Path) -> None:
    write_org(tmp_path, "acme")
    listing = tmp_path / "orgs.yaml"
    listing.write_text(yaml.safe_dump({"orgs": [{"config": "acme.yaml"}] * 2}))

    result = runner.invoke(app, ["serve", "--config", str(listing), "--dry-run"])

    assert result.exit_code == 2
    assert "org id(s) 'acme' appear more than once" in result.stderr


def test_serve_dry_run_prints_schedule(tmp_path: Path) -> None:
    config = write_org(
        tmp_path,
        "acme",
        schedule={"cron": "15 6 * * *", "time_zone": "UTC", "path": "export"},
    )

    result = runner.invoke(app, ["serve", "--config", str(config), "--dry-run"])

    assert result.exit_code == 0, result.stderr
    described = json.loads(result.stdout)
    assert described["deployment"] == "revalign-nightly/nightly"
    assert described["cron"] == "15 6 * * *"
    assert described["time_zone"] == "UTC"


@pytest.mark.parametrize(
    ("source", "path", "error"),
    [
        pytest.param(
            "salesforce-export",
            None,
            "schedule.path is required for source salesforce-export; set it to "
            "the export folder (relative to the org config)",
            id="export-no-path",
        ),
        pytest.param(
            "canonical",
            None,
            "schedule.path is required for source canonical; set it to the folder "
            "of canonical files (relative to the org config)",
            id="canonical-no-path",
        ),
        pytest.param(
            "salesforce-exprot",
            "export",
            "schedule.source 'salesforce-exprot' is unknown; choose one of: "
            "canonical, hubspot, salesforce, salesforce-export",
            id="unknown-source",
        ),
        pytest.param("hubspot", None, None, id="api-no-path"),
        pytest.param("salesforce-export", "export", None, id="export-path"),
    ],
)
def test_serve_dry_run_checks_source(
    tmp_path: Path, source: str, path: str | None, error: str | None
) -> None:
    schedule = {"source": source} if path is None else {"source": source, "path": path}
    config = write_org(tmp_path, "acme", schedule=schedule)

    result = runner.invoke(app, ["serve", "--config", str(config), "--dry-run"])

    described = json.loads(result.stdout)
    assert described["orgs"][0]["error"] == error
    assert result.exit_code == (0 if error is None else 2)
    if error is not None:
        assert "1 of 1 org(s) cannot run: acme" in result.stderr


def test_plan_list_org_without_path(tmp_path: Path) -> None:
    write_org(tmp_path, "acme")
    write_org(tmp_path, "beta")
    listing = tmp_path / "orgs.yaml"
    orgs = [{"config": "acme.yaml", "path": "exports/acme"}, {"config": "beta.yaml"}]
    listing.write_text(yaml.safe_dump({"orgs": orgs}))

    plan = load_plan(listing)

    assert [org.error for org in plan.orgs] == [
        None,
        "schedule.path is required for source salesforce-export; set it, or `path` "
        "on the org's entry in the org list, to the export folder",
    ]
    assert invalid_orgs_message(plan) == (
        f"1 of 2 org(s) cannot run: beta\n  - beta: {plan.orgs[1].error}"
    )


def test_serve_rejects_org_without_path(tmp_path: Path) -> None:
    config = write_org(tmp_path, "acme")

    result = runner.invoke(app, ["serve", "--config", str(config)])

    assert result.exit_code == 2
    assert "schedule.path is required for source salesforce-export" in result.stderr
    assert "Serving" not in result.stdout


def test_serve_without_server_says_how(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = write_org(tmp_path, "acme", schedule={"path": "export"})
    closed = f"http://127.0.0.1:{free_port()}/api"

    with temporary_settings({PREFECT_API_URL: closed}):
        result = runner.invoke(app, ["serve", "--config", str(config)])

    assert result.exit_code == 4
    assert f"the Prefect server at {closed} is not reachable" in result.stderr
    assert "prefect server start" in result.stderr
    assert "This may succeed if you run the command again later." in result.stderr
    assert "Serving" not in result.stdout


def test_serve_warns_of_invalid_org(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    write_org(tmp_path, "acme")
    write_org(tmp_path, "beta")
    listing = tmp_path / "orgs.yaml"
    orgs = [{"config": "acme.yaml", "path": "exports/acme"}, {"config": "beta.yaml"}]
    listing.write_text(yaml.safe_dump({"orgs": orgs}))
    closed = f"http://127.0.0.1:{free_port()}/api"

    with temporary_settings({PREFECT_API_URL: closed}):
        result = runner.invoke(app, ["serve", "--config", str(listing)])

    assert result.exit_code == 4
    assert "warning: 1 of 2 org(s) cannot run: beta" in result.stderr
    assert "the other orgs are served" in result.stderr


def test_serve_without_api_url(tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    config = write_org(tmp_path, "acme", schedule={"path": "export"})

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = runner.invoke(app, ["serve", "--config", str(config)])

    message = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert message.startswith("error: PREFECT_API_URL is not set, so ")
    assert "prefect config set PREFECT_API_URL=http://127.0.0.1:4200/api" in message
    assert "This may succeed" not in message
    assert "Serving" not in result.stdout


def test_prefect_yaml_matches_config_schedule() -> None:
    declared = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"][0]
    plan = load_plan(REPO / declared["parameters"]["config_path"])

    assert declared["entrypoint"] == "flows/nightly.py:nightly_flow"
    assert declared["name"] == plan.deployment_name
    assert declared["schedules"] == [{"cron": plan.cron, "timezone": plan.time_zone}]


class Receiver:
    """A webhook on 127.0.0.1 that stores each request body as text."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(self.rfile.read(length).decode())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(
    command: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own process group, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process group started by :func:`start`: SIGINT, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for(check: Any, seconds: float, failure: str, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"{failure} within {seconds} s; log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    """Start a Prefect server on 127.0.0.1; yields the environment that points at it."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
    }
    log = home / "server.log"
    server = start(
        [
            str(BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-ui",
            "--analytics-off",
        ],
        env,
        log,
    )

    def healthy() -> bool:
        if server.poll() is not None:
            pytest.fail(f"the Prefect server exited; log:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, SERVER_START_SECONDS, "the Prefect server did not start", log)
        yield env
    finally:
        stop(server)


def test_served_deployment_stores_history(
    prefect_server: dict[str, str], tmp_path: Path
) -> None:
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    webhook, chat = Receiver(), Receiver()
    channels = [
        {"webhook_url_env": WEBHOOK_ENV},
        {"block": "custom-webhook/revops-test"},
    ]
    rules = [
        {"id": "sla-breaches", "metric": "sla_breach_rate", "above": 0.2},
        {"id": "failed", "when": "run_failed"},
    ]
    alerts = {"channels": channels, "rules": rules, "retry_seconds": 0}
    write_org(tmp_path, "clock-rules", alerts=alerts)
    write_org(tmp_path, "broken", alerts=alerts)
    listing = tmp_path / "orgs.yaml"
    listing.write_text(
        yaml.safe_dump(
            {
                "schedule": {"cron": "45 4 * * *", "time_zone": "Asia/Tokyo"},
                "history": {"path": "state/history.duckdb"},
                "orgs": [
                    {"config": "clock-rules.yaml", "path": str(CLOCK_CASE)},
                    {"config": "broken.yaml", "path": "no-such-export"},
                ],
            }
        )
    )
    env = {**prefect_server, WEBHOOK_ENV: webhook.url}
    log = tmp_path / "serve.log"
    serving = None
    try:
        with temporary_settings({PREFECT_API_URL: prefect_server["PREFECT_API_URL"]}):
            CustomWebhookNotificationBlock(
                name="revops", url=chat.url, json_data={"text": "{{subject}}\n{{body}}"}
            ).save("revops-test", overwrite=True)
            serving = start(
                [str(BIN / "revalign"), "serve", "--config", str(listing)], env, log
            )
            with get_client(sync_client=True) as client:

                def deployment() -> Any:
                    try:
                        return client.read_deployment_by_name(
                            "revalign-nightly/nightly"
                        )
                    except Exception:  # noqa: BLE001 - not registered yet
                        assert serving.poll() is None, log.read_text()
                        return None

                served = wait_for(
                    deployment, 90, "the deployment was not registered", log
                )
            runs = [
                run_deployment(
                    "revalign-nightly/nightly",
                    parameters={"as_of": as_of},
                    timeout=RUN_SECONDS,
                )
                for as_of in ("2025-07-16T06:00:00Z", "2025-07-16T18:00:00Z")
            ]
    finally:
        if serving is not None:
            stop(serving)
        webhook.close()
        chat.close()

    schedule = served.schedules[0].schedule
    assert schedule.cron == "45 4 * * *"
    assert schedule.timezone == "Asia/Tokyo"
    assert served.parameters == {"config_path": str(listing)}
    assert [run.state.type.value for run in runs] == ["FAILED", "FAILED"], (
        log.read_text()
    )
    assert "1 of 2 org(s) failed: broken" in runs[0].state.message

    with HistoryStore(tmp_path / "state" / "history.duckdb") as store:
        completed = store.completed_runs("clock-rules")
        failures = store.failures("broken")
        sent = store.alerts("clock-rules") + store.alerts("broken")
    assert [run.day.isoformat() for run in completed] == ["2025-07-16"]
    assert completed[0].as_of.isoformat() == "2025-07-16T18:00:00+00:00"
    assert completed[0].metrics["sla_breach_rate"] == pytest.approx(4 / 6)
    assert [failure["day"].isoformat() for failure in failures] == ["2025-07-16"] * 2
    assert "Lead.csv" in failures[0]["error"]
    assert sorted((row["rule_id"], row["channel"], row["status"]) for row in sent) == [
        ("failed", "block:custom-webhook/revops-test", "sent"),
        ("failed", f"webhook:{WEBHOOK_ENV}", "sent"),
        ("sla-breaches", "block:custom-webhook/revops-test", "sent"),
        ("sla-breaches", f"webhook:{WEBHOOK_ENV}", "sent"),
    ]
    bodies = [json.loads(body) for body in webhook.bodies]
    assert sorted((body["org"], body["rule"]) for body in bodies) == [
        ("broken", "failed"),
        ("clock-rules", "sla-breaches"),
    ]
    texts = sorted(json.loads(body)["text"] for body in chat.bodies)
    assert len(texts) == 2
    assert texts[0].startswith("broken: the nightly scoring failed\n")
    assert texts[1].startswith("clock-rules: SLA breach rate 0.667 is above 0.2\n")
