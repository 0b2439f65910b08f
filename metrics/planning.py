"""Planning signals: whether sales and marketing work from one target-account list.

- ``target_account_list_present``: 1.0 when any account is marked as a target,
  0.0 when accounts carry the flag but none is set.
- ``target_account_mql_share``: among handoffs whose lead has a known account,
  the share on a target account.
- ``target_account_opportunity_share`` and ``target_account_pipeline_share``:
  among opportunities with a known account, the share (of count, of amount) on
  a target account.

A lead's account is known once it is converted (or when the CRM links leads to
accounts), so the MQL share covers those handoffs only. Its note counts the
handoffs left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from connectors.schema import CanonicalTables
from metrics.coverage import missing_reason, not_measurable, plural, share
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

_LABELS = {
    "target_account_list_present": ("flag", "Target-account list present"),
    "target_account_mql_share": ("share", "MQLs from target accounts"),
    "target_account_opportunity_share": ("share", "Opportunities on target accounts"),
    "target_account_pipeline_share": ("share", "Pipeline on target accounts"),
}


def _list_reason(tables: CanonicalTables) -> str | None:
    if reason := missing_reason(tables, "accounts"):
        return reason
    if tables["accounts"]["is_target"].is_null().all():
        return (
            "no account carries a target flag: set fields.target_account to the "
            "account field that marks target accounts"
        )
    return None


def _targets(tables: CanonicalTables) -> pl.DataFrame:
    accounts = tables["accounts"].select("account_id", "is_target")
    return accounts.unique("account_id").with_columns(
        pl.col("is_target").fill_null(False)
    )


def _mql_share(handoffs: pl.DataFrame, tables: CanonicalTables) -> MetricValue:
    key = "target_account_mql_share"
    unit, label = _LABELS[key]
    if reason := missing_reason(tables, "stage_events"):
        return MetricValue.not_measurable(key, unit, label, reason)
    # Lead ids are unique: the data gate fails a run on a duplicate.
    lead_targets = (
        tables["leads"]
        .select("lead_id", "account_id")
        .drop_nulls("account_id")
        .join(_targets(tables), on="account_id")
        .select("lead_id", "is_target")
    )
    known = handoffs.select("lead_id").join(lead_targets, on="lead_id")
    if known.is_empty():
        reason = "no handed-off lead is linked to a known account"
        return MetricValue.not_measurable(key, unit, label, reason)
    on_target = int(known["is_target"].sum())
    note = (
        f"{on_target} of {known.height} handoffs with a known account are on a "
        f"target account; {plural(handoffs.height - known.height, 'handoff')} "
        "without one left out"
    )
    details = {
        "on_target": on_target,
        "unknown_account": handoffs.height - known.height,
    }
    return MetricValue(
        key, on_target / known.height, known.height, unit, label, note, details
    )


def _opportunity_counts(tables: CanonicalTables) -> dict[str, int | float]:
    """Count opportunities and amounts on known and on target accounts.

    An opportunity whose account is not in the accounts table is left out; a
    missing amount counts as 0.
    """
    opportunities = tables["opportunities"].select(
        "account_id", amount=pl.col("amount").fill_null(0.0)
    )
    known = opportunities.join(_targets(tables), on="account_id", how="inner")
    on_target = known.filter(pl.col("is_target"))
    return {
        "opportunities": known.height,
        "on_target": on_target.height,
        "amount": float(known["amount"].sum()),
        "target_amount": float(on_target["amount"].sum()),
        "unknown_account": opportunities.height - known.height,
    }


def _opportunity_shares(tables: CanonicalTables) -> Metrics:
    keys = ("target_account_opportunity_share", "target_account_pipeline_share")
    labels = {k: _LABELS[k] for k in keys}
    if reason := missing_reason(tables, "opportunities"):
        return not_measurable(labels, reason)
    details = _opportunity_counts(tables)
    known, on_target = details["opportunities"], details["on_target"]
    if known == 0:
        return not_measurable(labels, "no opportunity is on a known account")

    left_out = ""
    if details["unknown_account"]:
        unknown = plural(
            details["unknown_account"], "opportunity", plural_noun="opportunities"
        )
        left_out = f"; {unknown} without a known account left out"
    on_targets = f"{on_target} of {known} opportunities on target accounts{left_out}"
    metrics = {
        keys[0]: MetricValue(
            keys[0], on_target / known, known, "share", labels[keys[0]][1],
            on_targets, details,
        ),
    }  # fmt: skip

    amount, target_amount = details["amount"], details["target_amount"]
    if amount <= 0:
        reason = "the opportunities on known accounts have no amount"
        return metrics | not_measurable({keys[1]: labels[keys[1]]}, reason)
    amount_note = (
        f"{target_amount:,.0f} of {amount:,.0f} pipeline amount on the {on_targets}"
    )
    metrics[keys[1]] = MetricValue(
        keys[1], share(target_amount, amount), known, "share", labels[keys[1]][1],
        amount_note, details,
    )  # fmt: skip
    return metrics


def planning_metrics(context: MeasureContext) -> Metrics:
    """Compute the target-account list flag and the target-account shares."""
    tables = context.tables
    if reason := _list_reason(tables):
        return not_measurable(_LABELS, reason)
    targets = _targets(tables)
    count = int(targets["is_target"].sum())
    key = "target_account_list_present"
    note = f"{count} of {targets.height} accounts marked as targets"
    flag = MetricValue(
        key, 1.0 if count else 0.0, targets.height, "flag", _LABELS[key][1], note,
        {"target_accounts": count, "accounts": targets.height},
    )  # fmt: skip
    metrics: Metrics = {key: flag}
    if count == 0:
        reason = "no account is marked as a target"
        labels = {k: v for k, v in _LABELS.items() if k != key}
        return metrics | not_measurable(labels, reason)
    metrics["target_account_mql_share"] = _mql_share(context.handoffs, tables)
    metrics.update(_opportunity_shares(tables))
    return metrics
