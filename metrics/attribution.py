"""Marketing attribution: coverage, sourced and influenced pipeline, model credit.

A marketing touch reaches an opportunity through the opportunity's leads (its
converted lead and its contacts, listed in ``opportunities.lead_ids``) or its
account: the touch's own account, or else the account of the lead it touched.
A touch counts for attribution when it happened at or before the opportunity was
created. It counts as influence when it happened at any time up to the close date,
or up to the as-of time for an open deal.

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
from metrics.coverage import (
    as_of_literal,
    history_gap,
    missing_reason,
    not_measurable,
    share,
)
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
    ``campaign_id``, in no particular order. A touch reaching an opportunity both
    ways appears once.
    """
    as_of_value = as_of_literal(as_of)
    opportunities = tables["opportunities"].filter(pl.col("created_at") <= as_of_value)
    opportunity_leads = (
        opportunities.select("opportunity_id", lead_id="lead_ids")
        .explode("lead_id")
        .drop_nulls()
    )
    opportunity_accounts = opportunities.select(
        "opportunity_id", "account_id"
    ).drop_nulls()
    touches = _candidate_touches(
        tables, opportunity_leads["lead_id"], opportunity_accounts["account_id"]
    ).filter(pl.col("touched_at") <= as_of_value)
    by_lead = opportunity_leads.join(touches, on="lead_id")
    by_account = opportunity_accounts.join(
        touches, left_on="account_id", right_on="touch_account"
    )
    columns = ["opportunity_id", "touch_id", "touched_at", "channel", "campaign_id"]
    return pl.concat([by_lead.select(columns), by_account.select(columns)]).unique(
        ["opportunity_id", "touch_id"], keep="first"
    )


def _candidate_touches(
    tables: CanonicalTables, lead_ids: pl.Series, account_ids: pl.Series
) -> pl.DataFrame:
    """Return the dated touches that can reach an opportunity, with their account.

    A touch can reach one when its lead is on an opportunity or its account (its
    own, else its lead's) is an opportunity's account. Filtering first keeps the
    joins small. Columns: ``touch_id``, ``lead_id``, ``touched_at``,
    ``campaign_id``, ``touch_account`` and ``channel`` (the touch's, else its
    campaign's).
    """
    accounts = account_ids.unique().implode()
    account_leads = (
        tables["leads"]
        .select("lead_id", lead_account="account_id")
        .filter(pl.col("lead_account").is_in(accounts))
    )
    reachable = (
        pl.col("lead_id").is_in(lead_ids.unique().implode())
        | pl.col("lead_id").is_in(account_leads["lead_id"].implode())
        | pl.col("account_id").is_in(accounts)
    )
    campaigns = tables["campaigns"].select("campaign_id", campaign_channel="channel")
    return (
        tables["touches"]
        .filter(pl.col("touched_at").is_not_null() & reachable)
        .join(account_leads, on="lead_id", how="left")
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
    roles: list[pl.Expr], role_touches: pl.Expr, role_share: float
) -> pl.Expr:
    """Return position-based weights: ``role_share`` per role, the rest spread.

    ``roles`` are booleans marking the first, lead-creation (and, for W-shaped,
    opportunity-creation) touch; ``role_touches`` is how many distinct touches
    hold a role in the row's opportunity.
    """
    spread = 1.0 - role_share * len(roles)
    has_role = pl.any_horizontal(roles)
    others = pl.col("_count") - role_touches
    role_part = pl.sum_horizontal(r.cast(pl.Float64) for r in roles) * role_share
    spread_part = (
        pl.when(~has_role)
        .then(spread / others)
        .when(others == 0)
        .then(spread / role_touches)
        .otherwise(0.0)
    )
    return role_part + spread_part


def _positions(pairs: pl.DataFrame) -> pl.DataFrame:
    """Add each touch's ``_position`` in its opportunity, ``_count``, ``_creation``.

    ``pairs`` must be sorted by opportunity and time. Group aggregates joined back
    stand in for window functions, which are slow with many small groups.
    """
    numbered = pairs.with_row_index("_row")
    before_lead = pl.col("touched_at") <= pl.col("lead_created_at")
    per_opportunity = numbered.group_by("opportunity_id").agg(
        _first_row=pl.col("_row").min(),
        _count=pl.len(),
        _creation=(before_lead.sum().cast(pl.Int64) - 1).clip(lower_bound=0),
        _latest=pl.col("touched_at").max(),
    )
    return numbered.join(per_opportunity, on="opportunity_id").with_columns(
        _position=(pl.col("_row") - pl.col("_first_row")).cast(pl.Int64)
    )


def _decay_weights(pairs: pl.DataFrame, half_life_days: float) -> pl.DataFrame:
    """Add ``time_decay``: weights halving every ``half_life_days``, summing to 1.

    Ages count back from the opportunity's latest touch, so the largest weight is
    1 and old touches cannot underflow every weight to 0.
    """
    age = (pl.col("_latest") - pl.col("touched_at")).dt.total_microseconds()
    decayed = pairs.with_columns(
        _decay=2.0 ** (-age / _MICROSECONDS_PER_DAY / half_life_days)
    )
    sums = decayed.group_by("opportunity_id").agg(_decay_sum=pl.col("_decay").sum())
    return decayed.join(sums, on="opportunity_id").with_columns(
        time_decay=pl.col("_decay") / pl.col("_decay_sum")
    )


def touch_credits(
    tables: CanonicalTables,
    as_of: dt.datetime,
    *,
    half_life_days: float,
    pairs: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Return one row per attributed touch with its weight and credit per model.

    Columns: ``opportunity_id``, ``touch_id``, ``touched_at``, ``channel``,
    ``campaign_id``, ``amount``, then ``<model>`` (weight, summing to 1 per
    opportunity) and ``<model>_credit`` (weight times amount) for each model.
    ``pairs`` is the output of :func:`reachable_touches`, computed when omitted.
    """
    if pairs is None:
        pairs = reachable_touches(tables, as_of)
    opportunities = tables["opportunities"].select(
        "opportunity_id", "created_at", amount=pl.col("amount").fill_null(0.0)
    )
    pairs = (
        pairs.join(opportunities, on="opportunity_id")
        .filter(pl.col("touched_at") <= pl.col("created_at"))
        .join(_lead_created(tables), on="opportunity_id", how="left")
        .sort("opportunity_id", "touched_at", "touch_id")
    )
    pairs = _decay_weights(_positions(pairs), half_life_days)

    last_position = pl.col("_count") - 1
    first = pl.col("_position") == 0
    creation = pl.col("_position") == pl.col("_creation")
    last = pl.col("_position") == last_position
    creation_apart = (pl.col("_creation") != 0).cast(pl.Int64)
    last_apart = ((last_position != 0) & (last_position != pl.col("_creation"))).cast(
        pl.Int64
    )
    pairs = pairs.with_columns(
        first_touch=first.cast(pl.Float64),
        last_touch=last.cast(pl.Float64),
        linear=1.0 / pl.col("_count"),
        u_shaped=_role_weights([first, creation], 1 + creation_apart, 0.4),
        w_shaped=_role_weights(
            [first, creation, last], 1 + creation_apart + last_apart, 0.3
        ),
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


def opportunity_coverage(
    tables: CanonicalTables, as_of: dt.datetime, *, pairs: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Return one row per opportunity created by the as-of time with its touch counts.

    Columns: ``opportunity_id``, ``amount`` (nulls as 0), ``amount_missing``,
    ``touches_before`` (at
    or before creation), ``influenced`` (any touch up to close or as-of) and
    ``sourced`` (a touch at or before its earliest lead's creation, plus a one-hour
    grace; false for an opportunity with no lead creation time). ``pairs`` is
    the output of :func:`reachable_touches`, computed when omitted.
    """
    if pairs is None:
        pairs = reachable_touches(tables, as_of)
    as_of_value = as_of_literal(as_of)
    opportunities = tables["opportunities"].filter(pl.col("created_at") <= as_of_value)
    pairs = pairs.join(
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
        opportunities.select(
            "opportunity_id",
            amount=pl.col("amount").fill_null(0.0),
            amount_missing=pl.col("amount").is_null(),
        )
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


def _coverage_note(tables: CanonicalTables, counts: dict, least: str) -> str:
    """Return the note of a coverage share: how many, missing amounts, history."""
    touches = (
        "two or more marketing touches"
        if least == "with_two_or_more"
        else "a marketing touch"
    )
    note = (
        f"{counts[least]} of {counts['opportunities']} opportunities have {touches} "
        f"at or before creation"
    )
    if counts["missing_amount"]:
        note += f"; {counts['missing_amount']} without an amount counted as 0"
    gap = history_gap(
        tables["touches"]["touched_at"],
        tables["opportunities"]["created_at"],
        source_name="marketing touches",
        subject_name="opportunities",
    )
    return f"{note}; {gap}" if gap else note


def attribution_metrics(context: MeasureContext) -> Metrics:
    """Compute attribution coverage, sourced and influenced pipeline, model credit."""
    tables, as_of = context.tables, context.as_of
    labels = {key: ("share", label) for key, label in _LABELS.items()}
    reason = missing_reason(tables, "opportunities", "touches")
    pairs = None if reason else reachable_touches(tables, as_of)
    coverage = None if reason else opportunity_coverage(tables, as_of, pairs=pairs)
    if coverage is not None and coverage.is_empty():
        reason = "no opportunity created by the as-of time"
    if reason:
        return not_measurable(labels, reason)

    total = coverage.height
    amount = float(coverage["amount"].sum())
    counts = {
        "opportunities": total,
        "with_touch": coverage.filter(pl.col("touches_before") >= 1).height,
        "with_two_or_more": coverage.filter(pl.col("touches_before") >= 2).height,
        "missing_amount": coverage.filter(pl.col("amount_missing")).height,
        "pipeline_amount": amount,
    }
    half_life = context.config.attribution.half_life_days
    credits = touch_credits(tables, as_of, half_life_days=half_life, pairs=pairs)
    credit = {"half_life_days": half_life, **_credit_tables(credits, tables)}
    metrics: Metrics = {
        "attribution_coverage_share": MetricValue(
            "attribution_coverage_share", counts["with_touch"] / total, total,
            "share", _LABELS["attribution_coverage_share"],
            _coverage_note(tables, counts, "with_touch"), {**counts, "credit": credit},
        ),
        "multi_touch_coverage_share": MetricValue(
            "multi_touch_coverage_share", counts["with_two_or_more"] / total, total,
            "share", _LABELS["multi_touch_coverage_share"],
            _coverage_note(tables, counts, "with_two_or_more"), counts,
        ),
    }  # fmt: skip
    metrics.update(_amount_shares(coverage, amount, counts))
    return metrics


# The opportunities each amount share counts, with the phrase that describes them
# in its note after "on the N of M opportunities".
_AMOUNT_CONDITIONS = {
    "attribution_amount_coverage_share": (
        pl.col("touches_before") >= 1,
        "with a marketing touch at or before creation",
    ),
    "influenced_pipeline_share": (
        pl.col("influenced"),
        "with a marketing touch by their close date, or by the as-of time while open",
    ),
    "sourced_pipeline_share": (
        pl.col("sourced"),
        f"with a marketing touch by their earliest lead's creation (plus "
        f"{SOURCING_GRACE.total_seconds() / 3600:g} h)",
    ),
}


def _amount_shares(coverage: pl.DataFrame, amount: float, counts: dict) -> Metrics:
    """Shares of pipeline amount: covered before creation, influenced, sourced."""
    if amount <= 0:
        reason = f"the {coverage.height} opportunities have no pipeline amount"
        labels = {k: ("share", _LABELS[k]) for k in _AMOUNT_CONDITIONS}
        return not_measurable(labels, reason)
    metrics: Metrics = {}
    for key, (condition, meaning) in _AMOUNT_CONDITIONS.items():
        matching = coverage.filter(condition)
        part = float(matching["amount"].sum())
        key_note = (
            f"{part:,.0f} of {amount:,.0f} pipeline amount on the {matching.height} "
            f"of {coverage.height} opportunities {meaning}"
        )
        if counts["missing_amount"]:
            key_note += f"; {counts['missing_amount']} without an amount counted as 0"
        details = {**counts, "amount": part, "matching": matching.height}
        metrics[key] = MetricValue(
            key, share(part, amount), coverage.height, "share", _LABELS[key],
            key_note, details,
        )  # fmt: skip
    return metrics
