"""Alerts to RevOps: rules checked after each run, sent at most once a day.

:func:`evaluate_run` and :func:`evaluate_failure` turn the config's rules into
:class:`Alert` values with the numbers and what changed since the previous day's
run. :func:`send_alerts` delivers them through Prefect notification blocks or a
plain JSON webhook, skips a rule, org, day and channel already sent, retries a
failed send with backoff, and records every outcome in the history. Sending never
raises: a failed alert must not fail the scoring.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.models import AlertChannel, AlertRule, AlertsConfig, OrgConfig
from flows.history import HistoryStore, RunSummary, as_of_day, band_name

logger = logging.getLogger(__name__)

WEBHOOK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Alert:
    """One rule that fired for one org and day, with the facts behind it."""

    rule_id: str
    event: str
    org_id: str
    day: dt.date
    title: str
    message: str
    facts: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """Return the JSON body a webhook receives."""
        return {
            "rule": self.rule_id,
            "event": self.event,
            "org": self.org_id,
            "day": self.day.isoformat(),
            "title": self.title,
            "message": self.message,
            "run_id": self.run_id,
            **self.facts,
        }


@dataclass(frozen=True)
class SendOutcome:
    """The outcome of sending one alert to one channel."""

    rule_id: str
    channel: str
    status: str  # sent, failed or skipped (already sent that day)
    attempts: int = 0
    error: str | None = None


def evaluate_run(
    rules: tuple[AlertRule, ...],
    document: Mapping[str, Any],
    previous: RunSummary | None,
    *,
    sla_hours: float,
    run_id: str | None = None,
) -> list[Alert]:
    """Return the alerts that a completed run's scorecard fires.

    ``previous`` is the org's latest completed run before this run's day; level
    drops and band changes need it and fire nothing without it.
    """
    org_id = document["org"]["id"]
    day = as_of_day(document["as_of"])
    alerts = []
    for rule in rules:
        alert = None
        if rule.when == "metric":
            alert = _metric_alert(rule, document, previous, sla_hours)
        elif rule.when == "dimension_drop":
            alert = _drop_alert(rule, document, previous)
        elif rule.when == "band_change":
            alert = _band_alert(rule, document, previous)
        if alert is not None:
            title, message, facts = alert
            alerts.append(
                Alert(rule.id, rule.when, org_id, day, f"{org_id}: {title}", message,
                      {**facts, "as_of": document["as_of"]}, run_id)
            )  # fmt: skip
    return alerts


def evaluate_failure(
    rules: tuple[AlertRule, ...],
    *,
    org_id: str,
    day: dt.date,
    error: str,
    gate: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> list[Alert]:
    """Return the alerts of a failed run: ``gate_failed`` when the gate stopped it,
    ``run_failed`` otherwise."""
    event = (
        "gate_failed" if gate is not None and not gate.get("passed") else "run_failed"
    )
    facts: dict[str, Any] = {"error": error}
    if event == "gate_failed":
        facts["findings"] = [
            {"check": f["expectation"], "severity": str(f["severity"]),
             "failed": f["failed"], "total": f["total"]}
            for f in gate.get("findings", [])  # type: ignore[union-attr]
        ]  # fmt: skip
        title = "the data-quality gate stopped the nightly scoring"
    else:
        title = "the nightly scoring failed"
    return [
        Alert(rule.id, event, org_id, day, f"{org_id}: {title}", error, facts, run_id)
        for rule in rules
        if rule.when == event
    ]


def _metric_alert(
    rule: AlertRule,
    document: Mapping[str, Any],
    previous: RunSummary | None,
    sla_hours: float,
) -> tuple[str, str, dict[str, Any]] | None:
    metric = document["metrics"].get(rule.metric)
    value = None if metric is None else metric.get("value")
    if value is None:
        return None
    threshold = sla_hours if rule.above == "sla" else (rule.above or rule.below)
    direction = "above" if rule.above is not None else "below"
    fired = value > threshold if direction == "above" else value < threshold
    if not fired:
        return None
    before = None if previous is None else previous.metrics.get(rule.metric)
    label = metric.get("label") or rule.metric
    facts = {
        "metric": rule.metric,
        "label": label,
        "value": value,
        "threshold": threshold,
        "direction": direction,
        "previous": before,
        "change": None if before is None else value - before,
        "population": metric.get("population"),
        "unit": metric.get("unit"),
    }
    title = f"{label} {_number(value)} is {direction} {_number(threshold)}"
    since = (
        "no earlier run" if before is None else f"{_number(before)} in the previous run"
    )
    message = f"{title} (population {metric.get('population')}; {since})."
    return title, message, facts


def _drop_alert(
    rule: AlertRule, document: Mapping[str, Any], previous: RunSummary | None
) -> tuple[str, str, dict[str, Any]] | None:
    if previous is None:
        return None
    drops = []
    for dimension in document["scorecard"]["dimensions"]:
        key = dimension["key"]
        before, now = previous.levels.get(key), dimension.get("level")
        if rule.dimension not in (None, key) or before is None or now is None:
            continue
        if now < before:
            drops.append({"dimension": key, "name": dimension.get("name", key),
                          "from": before, "to": now})  # fmt: skip
    if not drops:
        return None
    parts = [f"{d['name']} {d['from']} → {d['to']}" for d in drops]
    title = "dimension level dropped: " + ", ".join(parts)
    message = f"Since the run of {previous.day.isoformat()}: {', '.join(parts)}."
    return title, message, {"changes": drops, "previous_day": previous.day.isoformat()}


def _band_alert(
    rule: AlertRule, document: Mapping[str, Any], previous: RunSummary | None
) -> tuple[str, str, dict[str, Any]] | None:
    overall = document["scorecard"]["overall"]
    band = band_name(overall.get("band"))
    if previous is None or previous.overall_band is None or band is None:
        return None
    if band == previous.overall_band:
        return None
    change = {
        "from": previous.overall_band,
        "to": band,
        "score_from": previous.overall_score,
        "score_to": overall.get("score"),
    }
    title = f"overall band changed from {change['from']} to {change['to']}"
    message = (
        f"The overall score moved from {_number(change['score_from'])} to "
        f"{_number(change['score_to'])} since the run of {previous.day.isoformat()}."
    )
    return title, message, {"band": change, "previous_day": previous.day.isoformat()}


def send_alerts(
    alerts: list[Alert],
    config: AlertsConfig,
    store: HistoryStore,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SendOutcome]:
    """Send each alert to every channel once per rule, org and day; never raises.

    A channel that already received the rule's alert for that org and day is
    skipped. Every attempt that ends (sent or failed) is recorded in ``store``.
    """
    outcomes = []
    for alert in alerts:
        for channel in config.channels:
            if store.alert_sent(alert.org_id, alert.rule_id, alert.day, channel.name):
                outcomes.append(SendOutcome(alert.rule_id, channel.name, "skipped"))
                continue
            outcome = _deliver(alert, channel, config, sleep)
            store.record_alert(
                org_id=alert.org_id, rule_id=alert.rule_id, day=alert.day,
                channel=channel.name, run_id=alert.run_id, status=outcome.status,
                attempts=outcome.attempts, payload=alert.payload(), error=outcome.error,
            )  # fmt: skip
            outcomes.append(outcome)
    if alerts and not config.channels:
        logger.warning(
            "%d alert(s) fired but no alert channel is configured", len(alerts)
        )
    return outcomes


def _deliver(
    alert: Alert,
    channel: AlertChannel,
    config: AlertsConfig,
    sleep: Callable[[float], None],
) -> SendOutcome:
    error = ""
    for attempt in range(1, config.send_attempts + 1):
        try:
            _send_once(alert, channel)
        except Exception as exc:  # noqa: BLE001 - a failed send is logged, not raised
            error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "alert %s of org %s to %s failed (attempt %d of %d): %s",
                alert.rule_id, alert.org_id, channel.name, attempt,
                config.send_attempts, error,
            )  # fmt: skip
            if attempt < config.send_attempts:
                sleep(config.retry_seconds * 2 ** (attempt - 1))
            continue
        logger.info(
            "sent alert %s of org %s to %s", alert.rule_id, alert.org_id, channel.name
        )
        return SendOutcome(alert.rule_id, channel.name, "sent", attempt)
    return SendOutcome(
        alert.rule_id, channel.name, "failed", config.send_attempts, error
    )


def _send_once(alert: Alert, channel: AlertChannel) -> None:
    if channel.block is not None:
        _notify_block(channel.block, alert)
    else:
        _post_webhook(str(channel.webhook_url_env), alert)


def _notify_block(block_name: str, alert: Alert) -> None:
    from prefect.blocks.core import Block

    block = Block.load(block_name)
    notify = getattr(block, "notify", None)
    if notify is None:
        kind = type(block).__name__
        msg = f"block {block_name!r} is a {kind}, not a notification block"
        raise TypeError(msg)
    notify(body=alert_text(alert), subject=alert.title)


def _post_webhook(env_name: str, alert: Alert) -> None:
    import httpx

    url = os.environ.get(env_name)
    if not url:
        msg = f"environment variable {env_name} with the alert webhook URL is not set"
        raise LookupError(msg)
    response = httpx.post(url, json=alert.payload(), timeout=WEBHOOK_TIMEOUT_SECONDS)
    if response.status_code >= 300:
        # The URL may carry a token, so the error names the variable, not the URL.
        msg = f"webhook from {env_name} returned HTTP {response.status_code}"
        raise ConnectionError(msg)


def alert_text(alert: Alert) -> str:
    """Return the alert as plain text for chat and e-mail blocks."""
    lines = [alert.message, f"Org {alert.org_id}, day {alert.day.isoformat()}."]
    for change in alert.facts.get("changes", []):
        lines.append(f"- {change['name']}: level {change['from']} → {change['to']}")
    for finding in alert.facts.get("findings", []):
        lines.append(
            f"- {finding['check']} ({finding['severity']}): "
            f"{finding['failed']} of {finding['total']} rows failed"
        )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def alert_after_run(
    document: Mapping[str, Any],
    config: OrgConfig,
    history: Path,
    run_id: str | None = None,
) -> list[SendOutcome]:
    """Check the rules against a stored run and send what fires; never raises."""
    if not config.alerts.rules:
        return []
    try:
        with HistoryStore(history) as store:
            day = as_of_day(document["as_of"])
            previous = store.previous_run(document["org"]["id"], day)
            alerts = evaluate_run(
                config.alerts.rules, document, previous,
                sla_hours=config.sla.speed_to_lead_hours, run_id=run_id,
            )  # fmt: skip
            return send_alerts(alerts, config.alerts, store)
    except Exception:  # noqa: BLE001 - a failed alert must not fail the scoring
        logger.exception("alerts of org %s were not checked", document["org"]["id"])
        return []


def alert_after_failure(
    config: OrgConfig,
    history: Path,
    *,
    day: dt.date,
    error: str,
    gate: Mapping[str, Any] | None = None,
    run_id: str | None = None,
) -> list[SendOutcome]:
    """Send the ``gate_failed`` or ``run_failed`` alerts of a failed run.

    Never raises, because a failed alert must not hide the run's own error.
    """
    alerts = evaluate_failure(
        config.alerts.rules, org_id=config.org.id, day=day, error=error, gate=gate,
        run_id=run_id,
    )  # fmt: skip
    if not alerts:
        return []
    try:
        with HistoryStore(history) as store:
            return send_alerts(alerts, config.alerts, store)
    except Exception:  # noqa: BLE001 - a failed alert must not fail the scoring
        logger.exception("failure alerts of org %s were not sent", config.org.id)
        return []
