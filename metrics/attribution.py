"""Marketing attribution: coverage, sourced and influenced pipeline, model credit.

A marketing touch reaches an opportunity through the opportunity's leads (its
converted lead and its contacts, listed in ``opportunities.lead_ids``) or its
account: the touch's own account, or else the account of the lead it touched.
A touch counts for attribution when it happened at or before the opportunity was
created; it counts as influence when it happened at any time up to the close date
(or the as-of time for an open deal).

Rule-based models split each opportunity's amount over its attributed touches,
ordered by time (ties by ``touch_id``):

- ``first_touch`` and ``last_touch``: all credit to the first or last touch.
- ``linear``: equal shares.
- ``u_shaped``: 40% to the first touch, 40% to the lead-creation touch, 20%
  spread over the others.
- ``w_shaped``: 30% each to the first, lead-creation and opportunity-creation
  touches, 10% spread over the others.
- ``time_decay``: a touch's weight halves every ``attribution.half_life_days``
  before the opportunity's creation.

The lead-creation touch is the last touch at or before the creation of the
opportunity's earliest lead, or its first touch when none came before (or the
opportunity has no lead). The opportunity-creation touch is the last touch
before creation. When two roles fall on one touch it takes both shares. The
spread share goes to the touches without a role, or evenly to the role touches
when every touch has one (two touches under U-shaped get 50% each). So the
credits of every opportunity add up to its amount; a missing amount counts as 0.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl

from connectors.schema import CanonicalTables
from metrics.coverage import as_of_literal, missing_reason, not_measurable, share
from metrics.result import Metrics, MetricValue

if TYPE_CHECKING:
    from metrics.measure import MeasureContext

MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay")
UNKNOWN_CHANNEL = "(unknown)"
# A campaign membership recorded shortly after a lead's creation is usually the
# form fill that created it, so it still makes the opportunity marketing-sourced.
SOURCING_GRACE = dt.timedelta(hours=1)
_MICROSECONDS_PER_DAY = 86_400_000_000
_TOP_CAMPAIGNS = 25


def reachable_touches(tables: CanonicalTables, as_of: dt.datetime) -> pl.DataFrame:
    """Return every (opportunity, touch) pair a touch reaches, up to the as-of time.

    Columns: ``opportunity_id``, ``touch_id``, ``touched_at``, ``channel``,
    ``campaign_id``. A touch reaching an opportunity both ways appears once.
    """
    as_of_value = as_of_literal(as_of)
    opportunities = tables["opportunities"].filter(pl.col("created_at") <= as_of_value)
    touches = _touches_with_accounts(tables).filter(pl.col("touched_at") <= as_of_value)
    by_lead = (
        opportunities.select("opportunity_id", lead_id="lead_ids")
        .explode("lead_id")
        .drop_nulls()
        .join(touches, on="lead_id")
    )
    by_account = (
        opportunities.select("opportunity_id", "account_id")
        .drop_nulls()
        .join(touches, left_on="account_id", right_on="touch_account")
    )
    columns = ["opportunity_id", "touch_id", "touched_at", "channel", "campaign_id"]
    return (
        pl.concat([by_lead.select(columns), by_account.select(columns)])
        .unique(["opportunity_id", "touch_id"], keep="first")
        .sort("opportunity_id", "touched_at", "touch_id")
    )


def _touches_with_accounts(tables: CanonicalTables) -> pl.DataFrame:
    """Return the dated touches with ``touch_account`` and a channel filled in."""
    lead_accounts = tables["leads"].select("lead_id", lead_account="account_id")
    campaigns = tables["campaigns"].select("campaign_id", campaign_channel="channel")
    return (
        tables["touches"]
        .filter(pl.col("touched_at").is_not_null())
        .join(lead_accounts.unique("lead_id"), on="lead_id", how="left")
        .join(campaigns.unique("campaign_id"), on="campaign_id", how="left")
        .select(
            "touch_id",
            "lead_id",
            "touched_at",
            "campaign_id",
            touch_account=pl.coalesce("account_id", "lead_account"),
            channel=pl.coalesce("channel", "campaign_channel", pl.lit(UNKNOWN_CHANNEL)),
        )
    )


def _lead_created(tables: CanonicalTables) -> pl.DataFrame:
    """Return each opportunity's earliest lead creation time, ``lead_created_at``."""
    created = tables["leads"].select("lead_id", "created_at")
    return (
        tables["opportunities"]
        .select("opportunity_id", lead_id="lead_ids")
        .explode("lead_id")
        .join(created, on="lead_id", how="inner")
        .group_by("opportunity_id")
        .agg(lead_created_at=pl.col("created_at").min())
    )


def _role_weights(
    first: pl.Expr, creation: pl.Expr, last: pl.Expr | None, role_share: float
) -> pl.Expr:
    """Return position-based weights: ``role_share`` per role, the rest spread.

    ``first``, ``creation`` and ``last`` are booleans marking the role touches.
    """
    roles = [first, creation] + ([last] if last is not None else [])
    spread = 1.0 - role_share * len(roles)
    has_role = pl.any_horizontal(roles)
    role_touches = has_role.cast(pl.Int64).sum().over("opportunity_id")
    others = pl.len().over("opportunity_id") - role_touches
    role_part = pl.sum_horizontal(r.cast(pl.Float64) for r in roles) * role_share
    spread_part = (
        pl.when(~has_role)
        .then(spread / others)
        .when(others == 0)
        .then(spread / role_touches)
        .otherwise(0.0)
    )
    return role_part + spread_part


def touch_credits(
    tables: CanonicalTables, as_of: dt.datetime, *, half_life_days: float
) -> pl.DataFrame:
    """Return one row per attributed touch with its weight and credit per model.

    Columns: ``opportunity_id``, ``touch_id``, ``touched_at``, ``channel``,
    ``campaign_id``, ``amount``, then ``<model>`` (weight, summing to 1 per
    opportunity) and ``<model>_credit`` (weight times amount) for each model.
    """
    opportunities = tables["opportunities"].select(
        "opportunity_id", "created_at", amount=pl.col("amount").fill_null(0.0)
    )
    pairs = (
        reachable_touches(tables, as_of)
        .join(opportunities, on="opportunity_id")
        .filter(pl.col("touched_at") <= pl.col("created_at"))
        .join(_lead_created(tables), on="opportunity_id", how="left")
        .sort("opportunity_id", "touched_at", "touch_id")
    )
    per_opportunity = "opportunity_id"
    position = pl.int_range(pl.len()).over(per_opportunity)
    count = pl.len().over(per_opportunity)
    before_lead = (
        (pl.col("touched_at") <= pl.col("lead_created_at")).sum().over(per_opportunity)
    )
    pairs = pairs.with_columns(
        _position=position,
        _count=count,
        _creation_position=(before_lead.cast(pl.Int64) - 1).clip(lower_bound=0),
    )
    first = pl.col("_position") == 0
    last = pl.col("_position") == pl.col("_count") - 1
    creation = pl.col("_position") == pl.col("_creation_position")
    age_days = (pl.col("created_at") - pl.col("touched_at")).dt.total_microseconds() / (
        _MICROSECONDS_PER_DAY
    )
    # Ages are taken relative to the opportunity's latest touch so that the
    # largest weight is 1 and old touches cannot underflow every weight to 0.
    relative_age = age_days - age_days.min().over(per_opportunity)
    decay = (2.0 ** (-relative_age / half_life_days)).alias("_decay")
    pairs = pairs.with_columns(
        first_touch=first.cast(pl.Float64),
        last_touch=last.cast(pl.Float64),
        linear=1.0 / pl.col("_count"),
        u_shaped=_role_weights(first, creation, None, 0.4),
        w_shaped=_role_weights(first, creation, last, 0.3),
        time_decay=decay / decay.sum().over(per_opportunity),
    )
    return pairs.select(
        "opportunity_id",
        "touch_id",
        "touched_at",
        "channel",
        "campaign_id",
        "amount",
        *MODELS,
        *[(pl.col(m) * pl.col("amount")).alias(f"{m}_credit") for m in MODELS],
    )


def opportunity_coverage(tables: CanonicalTables, as_of: dt.datetime) -> pl.DataFrame:
    """Return one row per opportunity created by the as-of time with its touch counts.

    Columns: ``opportunity_id``, ``amount`` (nulls as 0), ``touches_before`` (at
    or before creation), ``influenced`` (any touch up to close or as-of) and
    ``sourced`` (a touch at or before its earliest lead's creation, plus a one-hour
    grace; false for an opportunity with no lead creation time).
    """
    as_of_value = as_of_literal(as_of)
    opportunities = tables["opportunities"].filter(pl.col("created_at") <= as_of_value)
    pairs = reachable_touches(tables, as_of).join(
        opportunities.select("opportunity_id", "created_at", "close_date", "is_closed"),
        on="opportunity_id",
    )
    pairs = pairs.join(_lead_created(tables), on="opportunity_id", how="left")
    closed = pl.col("is_closed").fill_null(False) & pl.col("close_date").is_not_null()
    counts = pairs.group_by("opportunity_id").agg(
        touches_before=(pl.col("touched_at") <= pl.col("created_at")).sum(),
        influenced=(
            pl.when(closed)
            .then(pl.col("touched_at").dt.date() <= pl.col("close_date"))
            .otherwise(True)
        ).any(),
        sourced=(
            pl.col("touched_at") <= pl.col("lead_created_at") + SOURCING_GRACE
        ).any(),
    )
    return (
        opportunities.select("opportunity_id", amount=pl.col("amount").fill_null(0.0))
        .join(counts, on="opportunity_id", how="left")
        .with_columns(
            touches_before=pl.col("touches_before").fill_null(0),
            influenced=pl.col("influenced").fill_null(False),
            sourced=pl.col("sourced").fill_null(False),
        )
    )


_LABELS = {
    "attribution_coverage_share": "Opportunities with a marketing touch",
    "multi_touch_coverage_share": "Opportunities with two or more marketing touches",
    "attribution_amount_coverage_share": "Pipeline with a marketing touch",
    "influenced_pipeline_share": "Pipeline influenced by marketing",
    "sourced_pipeline_share": "Pipeline sourced by marketing",
}


def _credit_tables(credits: pl.DataFrame, tables: CanonicalTables) -> dict[str, list]:
    """Return credit by channel and by campaign (top campaigns) for every model."""
    credit_columns = [f"{m}_credit" for m in MODELS]

    def long(frame: pl.DataFrame, by: list[str]) -> pl.DataFrame:
        return frame.unpivot(
            index=by, on=credit_columns, variable_name="model", value_name="credit"
        ).with_columns(pl.col("model").str.strip_suffix("_credit"))

    by_channel = credits.group_by("channel").agg(pl.col(credit_columns).sum())
    channel = long(by_channel, ["channel"]).sort(
        ["model", "credit", "channel"], descending=[False, True, False]
    )
    names = tables["campaigns"].select("campaign_id", "name").unique("campaign_id")
    by_campaign = (
        credits.group_by("campaign_id")
        .agg(pl.col(credit_columns).sum())
        .join(names, on="campaign_id", how="left")
    )
    campaign = (
        long(by_campaign, ["campaign_id", "name"])
        .sort(
            ["model", "credit", "campaign_id"],
            descending=[False, True, False],
            nulls_last=True,
        )
        .group_by("model", maintain_order=True)
        .head(_TOP_CAMPAIGNS)
    )
    return {"by_channel": channel.to_dicts(), "by_campaign": campaign.to_dicts()}


def attribution_metrics(context: MeasureContext) -> Metrics:
    """Compute attribution coverage, sourced and influenced pipeline, model credit."""
    tables, as_of = context.tables, context.as_of
    labels = {key: ("share", label) for key, label in _LABELS.items()}
    reason = missing_reason(tables, "opportunities", "touches")
    coverage = None if reason else opportunity_coverage(tables, as_of)
    if coverage is not None and coverage.is_empty():
        reason = "no opportunity created by the as-of time"
    if reason:
        return not_measurable(labels, reason)

    total = coverage.height
    amount = float(coverage["amount"].sum())
    covered = coverage.filter(pl.col("touches_before") >= 1)
    multi = coverage.filter(pl.col("touches_before") >= 2)
    counts = {
        "opportunities": total,
        "with_touch": covered.height,
        "with_two_or_more": multi.height,
        "missing_amount": tables["opportunities"]
        .filter(pl.col("amount").is_null())
        .height,
        "pipeline_amount": amount,
    }
    note = (
        f"{covered.height} of {total} opportunities have a marketing touch at or "
        f"before creation"
    )
    if counts["missing_amount"]:
        note += (
            f"; {counts['missing_amount']} opportunities have no amount (counted as 0)"
        )

    half_life = context.config.attribution.half_life_days
    credits = touch_credits(tables, as_of, half_life_days=half_life)
    credit_details = {"half_life_days": half_life, **_credit_tables(credits, tables)}
    coverage_details = {**counts, "credit": credit_details}
    metrics: Metrics = {
        "attribution_coverage_share": MetricValue(
            "attribution_coverage_share", covered.height / total, total, "share",
            _LABELS["attribution_coverage_share"], note, coverage_details,
        ),
        "multi_touch_coverage_share": MetricValue(
            "multi_touch_coverage_share", multi.height / total, total, "share",
            _LABELS["multi_touch_coverage_share"], note, counts,
        ),
    }  # fmt: skip
    metrics.update(_amount_shares(coverage, amount, note, counts))
    return metrics


def _amount_shares(
    coverage: pl.DataFrame, amount: float, note: str, counts: dict
) -> Metrics:
    """Shares of pipeline amount: covered before creation, influenced, sourced."""
    keys = {
        "attribution_amount_coverage_share": pl.col("touches_before") >= 1,
        "influenced_pipeline_share": pl.col("influenced"),
        "sourced_pipeline_share": pl.col("sourced"),
    }
    if amount <= 0:
        reason = f"the {coverage.height} opportunities have no pipeline amount"
        return not_measurable({k: ("share", _LABELS[k]) for k in keys}, reason)
    metrics: Metrics = {}
    for key, condition in keys.items():
        part = float(coverage.filter(condition)["amount"].sum())
        metrics[key] = MetricValue(
            key, share(part, amount), coverage.height, "share", _LABELS[key], note,
            {**counts, "amount": part},
        )  # fmt: skip
    return metrics
