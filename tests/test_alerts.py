"""Alert rules, once-a-day delivery to a local JSON webhook, retries and failures."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from config.models import AlertsConfig, ConfigError, load_config
from flows.alerts import (
    alert_after_failure,
    alert_after_run,
    evaluate_failure,
    evaluate_run,
)
from flows.history import HistoryStore, RunSummary, store_run
from flows.pipeline import ScoreRequest, parse_as_of, run_score
from tests.conftest import CASES_DIR

CLOCK_CASE = CASES_DIR / "sf-export-business-hours"
WEBHOOK_ENV = "REVALIGN_TEST_ALERT_WEBHOOK"
RULES = [
    {"id": "sla-breaches", "metric": "sla_breach_rate", "above": 0.2},
    {
        "id": "slow-first-touch",
        "metric": "speed_to_lead_median_business_hours",
        "above": "sla",
    },
    {"id": "routing", "metric": "routing_failure_rate", "above": 0.5},
    {"id": "level-drop", "when": "dimension_drop"},
    {"id": "gate", "when": "gate_failed"},
]


class Receiver:
    """A JSON webhook on 127.0.0.1 that stores each body and fails on request."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.failures_left = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                if receiver.failures_left > 0:
                    receiver.failures_left -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (
            f"http://127.0.0.1:{self.server.server_port}/hooks/revops?token=s3cret"
        )


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    hook = Receiver()
    thread = threading.Thread(target=hook.server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(WEBHOOK_ENV, hook.url)
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


def org_config(tmp_path: Path, **alerts: Any) -> Path:
    """Write the business-hours export's config with alerts; returns its path."""
    data = yaml.safe_load((CLOCK_CASE / "revalign.yaml").read_text())
    data["alerts"] = {
        "channels": [{"webhook_url_env": WEBHOOK_ENV}],
        "rules": RULES,
        "retry_seconds": 0,
        **alerts,
    }
    path = tmp_path / "revalign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def score_and_alert(config_path: Path, as_of: str, history: Path) -> list[Any]:
    """Score the business-hours export, store the run and alert, as the flow does."""
    request = ScoreRequest(
        path=CLOCK_CASE, config_path=config_path, as_of=parse_as_of(as_of)
    )
    result = run_score(request)
    run_id = store_run(result.document, result.tables, history)
    return alert_after_run(result.document, load_config(config_path), history, run_id)


def test_webhook_once_per_rule_and_day(tmp_path: Path, receiver: Receiver) -> None:
    config = org_config(tmp_path)
    history = tmp_path / "history.duckdb"

    first = score_and_alert(config, "2025-07-16T06:00:00Z", history)
    second = score_and_alert(config, "2025-07-16T18:00:00Z", history)

    assert [o.status for o in first] == ["sent", "sent"]
    assert [o.status for o in second] == ["skipped", "skipped"]
    assert [body["rule"] for body in receiver.bodies] == [
        "sla-breaches",
        "slow-first-touch",
    ]
    breaches = receiver.bodies[0]
    assert breaches["org"] == "clock-rules"
    assert breaches["day"] == "2025-07-16"
    assert breaches["event"] == "metric"
    assert breaches["value"] == pytest.approx(4 / 6)
    assert breaches["threshold"] == 0.2
    assert breaches["direction"] == "above"
    assert breaches["population"] == 6
    assert breaches["previous"] is None
    assert breaches["title"] == "clock-rules: SLA breach rate 0.667 is above 0.2"
    slow = receiver.bodies[1]
    assert slow["value"] == 4.75
    assert slow["threshold"] == 4.0
    assert slow["population"] == 4


def test_webhook_again_next_day(tmp_path: Path, receiver: Receiver) -> None:
    config = org_config(tmp_path)
    history = tmp_path / "history.duckdb"

    score_and_alert(config, "2025-07-15", history)
    score_and_alert(config, "2025-07-16", history)

    days = [(body["rule"], body["day"]) for body in receiver.bodies]
    assert days == [
        ("sla-breaches", "2025-07-15"),
        ("slow-first-touch", "2025-07-15"),
        ("sla-breaches", "2025-07-16"),
        ("slow-first-touch", "2025-07-16"),
    ]
    assert receiver.bodies[2]["previous"] == 0.6
    assert receiver.bodies[2]["change"] == pytest.approx(4 / 6 - 0.6)
    with HistoryStore(history) as store:
        assert [row["status"] for row in store.alerts("clock-rules")] == ["sent"] * 4


def test_send_retries_then_succeeds(tmp_path: Path, receiver: Receiver) -> None:
    config = org_config(tmp_path, rules=RULES[:1], send_attempts=3)
    receiver.failures_left = 2

    outcomes = score_and_alert(config, "2025-07-16", tmp_path / "history.duckdb")

    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 3)]
    assert len(receiver.bodies) == 1


def test_failed_send_is_recorded_and_retried_later(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    config = org_config(tmp_path, rules=RULES[:1], send_attempts=2)
    history = tmp_path / "history.duckdb"
    receiver.failures_left = 2

    with caplog.at_level(logging.WARNING, logger="flows.alerts"):
        failed = score_and_alert(config, "2025-07-16", history)
    retried = score_and_alert(config, "2025-07-16T12:00:00Z", history)

    assert [(o.status, o.attempts) for o in failed] == [("failed", 2)]
    assert (
        failed[0].error
        == f"ConnectionError: webhook from {WEBHOOK_ENV} returned HTTP 503"
    )
    assert [o.status for o in retried] == ["sent"]
    assert len(receiver.bodies) == 1
    assert "s3cret" not in caplog.text
    assert "attempt 2 of 2" in caplog.text
    with HistoryStore(history) as store:
        rows = store.alerts("clock-rules")
    assert [(row["status"], row["attempts"]) for row in rows] == [("sent", 1)]


def test_unset_webhook_variable_fails_send(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = org_config(tmp_path, rules=RULES[:1], send_attempts=1)
    monkeypatch.delenv(WEBHOOK_ENV)

    outcomes = score_and_alert(config, "2025-07-16", tmp_path / "history.duckdb")

    assert outcomes[0].status == "failed"
    assert outcomes[0].error == (
        f"LookupError: environment variable {WEBHOOK_ENV} with the alert webhook URL "
        f"is not set"
    )


def test_gate_failure_alert(tmp_path: Path, receiver: Receiver) -> None:
    config = load_config(org_config(tmp_path))
    gate = {
        "passed": False,
        "findings": [
            {
                "expectation": "activities.occurred_at.not_after_as_of",
                "severity": "critical",
                "failed": 3,
                "total": 7,
            }
        ],
    }
    history = tmp_path / "history.duckdb"
    day = dt.date(2025, 7, 1)

    sent = alert_after_failure(config, history, day=day, error="gate failed", gate=gate)
    again = alert_after_failure(
        config, history, day=day, error="gate failed", gate=gate
    )

    assert [o.status for o in sent] == ["sent"]
    assert [o.status for o in again] == ["skipped"]
    body = receiver.bodies[0]
    assert body["rule"] == "gate"
    assert body["event"] == "gate_failed"
    assert body["findings"] == [
        {
            "check": "activities.occurred_at.not_after_as_of",
            "severity": "critical",
            "failed": 3,
            "total": 7,
        }
    ]


def summary(
    levels: dict[str, int], band: str, score: float, **metrics: float
) -> RunSummary:
    return RunSummary(
        run_id="r0",
        org_id="acme",
        day=dt.date(2025, 3, 3),
        as_of=None,
        source=None,
        overall_score=score,
        overall_band=band,
        levels=levels,
        metrics=metrics,
    )


def document(levels: dict[str, int], band: str, score: float) -> dict[str, Any]:
    return {
        "org": {"id": "acme"},
        "as_of": "2025-03-04T06:00:00Z",
        "metrics": {
            "sal_rate": {
                "label": "SAL rate",
                "value": 0.4,
                "population": 50,
                "unit": "share",
            }
        },
        "scorecard": {
            "overall": {"score": score, "band": {"name": band, "lower": 2.0}},
            "dimensions": [
                {"key": key, "name": key.title(), "level": level}
                for key, level in levels.items()
            ],
        },
    }


def rules(*entries: dict[str, Any]) -> AlertsConfig:
    return AlertsConfig.model_validate({"rules": list(entries)})


def test_evaluate_level_drop_and_band() -> None:
    config = rules(
        {"id": "drop", "when": "dimension_drop"},
        {"id": "band", "when": "band_change"},
        {"id": "sal", "metric": "sal_rate", "below": 0.6},
    )
    previous = summary({"handoff": 3, "sla": 2}, "Developing", 2.6, sal_rate=0.55)
    current = document({"handoff": 2, "sla": 3}, "Emerging", 2.2)

    drop, band, sal = evaluate_run(config.rules, current, previous, sla_hours=4.0)

    assert drop.facts["changes"] == [
        {"dimension": "handoff", "name": "Handoff", "from": 3, "to": 2}
    ]
    assert drop.title == "acme: dimension level dropped: Handoff 3 → 2"
    assert band.facts["band"] == {
        "from": "Developing",
        "to": "Emerging",
        "score_from": 2.6,
        "score_to": 2.2,
    }
    assert sal.facts["direction"] == "below"
    assert sal.facts["change"] == pytest.approx(-0.15)


def test_evaluate_needs_previous_run() -> None:
    config = rules(
        {"id": "drop", "when": "dimension_drop"}, {"id": "band", "when": "band_change"}
    )
    current = document({"handoff": 2}, "Emerging", 2.2)

    assert evaluate_run(config.rules, current, None, sla_hours=4.0) == []


def test_evaluate_dimension_filter() -> None:
    config = rules({"id": "drop", "when": "dimension_drop", "dimension": "sla"})
    previous = summary({"handoff": 3, "sla": 2}, "Developing", 2.6)
    current = document({"handoff": 2, "sla": 2}, "Developing", 2.4)

    assert evaluate_run(config.rules, current, previous, sla_hours=4.0) == []


def test_evaluate_failure_picks_event() -> None:
    config = rules(
        {"id": "gate", "when": "gate_failed"}, {"id": "down", "when": "run_failed"}
    )
    day = dt.date(2025, 3, 4)

    crashed = evaluate_failure(config.rules, org_id="acme", day=day, error="timed out")
    gated = evaluate_failure(
        config.rules,
        org_id="acme",
        day=day,
        error="gate",
        gate={"passed": False, "findings": []},
    )

    assert [alert.rule_id for alert in crashed] == ["down"]
    assert crashed[0].message == "timed out"
    assert [alert.rule_id for alert in gated] == ["gate"]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        pytest.param(
            {"id": "a", "metric": "sal_rate"},
            "needs `metric` and one of",
            id="no-bound",
        ),
        pytest.param(
            {"id": "a", "metric": "x", "above": 1, "below": 0},
            "one of `above`",
            id="two-bounds",
        ),
        pytest.param(
            {"id": "a", "when": "band_change", "above": 1},
            "belong to metric",
            id="bound",
        ),
        pytest.param(
            {"id": "a", "when": "band_change", "dimension": "sla"},
            "dimension_drop",
            id="dimension",
        ),
        pytest.param({"id": "a", "when": "weekly"}, "not an allowed value", id="event"),
    ],
)
def test_rule_config_errors(tmp_path: Path, rule: dict[str, Any], message: str) -> None:
    path = tmp_path / "revalign.yaml"
    path.write_text(yaml.safe_dump({"alerts": {"rules": [rule]}}))

    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_channel_needs_one_target(tmp_path: Path) -> None:
    path = tmp_path / "revalign.yaml"
    channel = {"block": "slack-webhook/revops", "webhook_url_env": "HOOK"}
    path.write_text(yaml.safe_dump({"alerts": {"channels": [channel]}}))

    with pytest.raises(
        ConfigError, match="exactly one of `block` and `webhook_url_env`"
    ):
        load_config(path)


def test_rule_ids_unique(tmp_path: Path) -> None:
    path = tmp_path / "revalign.yaml"
    rule = {"id": "a", "when": "band_change"}
    path.write_text(yaml.safe_dump({"alerts": {"rules": [rule, rule]}}))

    with pytest.raises(ConfigError, match="'a' used more than once"):
        load_config(path)
