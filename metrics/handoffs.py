"""Handoffs from marketing to sales, and what happened to each.

A handoff is an entry into the ``mql`` stage; a lead re-entering ``mql`` after
recycling is a new handoff. What belongs to a handoff (its first touch, its
decision, its routing) happens at or after it and before the lead's next handoff,
and no later than the as-of time (the moment the data was extracted).

:func:`build_handoffs` returns one row per handoff with those facts; the metric
functions in :mod:`metrics.handoff_metrics` aggregate it.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from config.models import OrgConfig
from connectors.schema import CanonicalTables
from metrics.calendar import BusinessCalendar
from metrics.sorted_groups import next_in_group, position_in_group

ACCEPTED_STAGES = ("sal", "sql", "opportunity", "customer")
REJECTED_STAGES = ("rejected", "recycled")
_FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def _as_of_literal(as_of: dt.datetime) -> pl.Expr:
    return pl.lit(as_of).cast(pl.Datetime("us", "UTC"))


def handoff_windows(tables: CanonicalTables, as_of: dt.datetime) -> pl.DataFrame:
    """Return one row per handoff: ``lead_id``, ``handoff_at``, ``window_end``.

    ``window_end`` is the lead's next handoff, or the as-of time for its last one.
    ``handoff_number`` counts the lead's handoffs from 1. Entries after the as-of
    time are ignored. Rows are sorted by lead and time.
    """
    as_of_value = _as_of_literal(as_of)
    return (
        tables["stage_events"]
        .filter((pl.col("stage") == "mql") & (pl.col("entered_at") <= as_of_value))
        .select("lead_id", handoff_at="entered_at")
        .unique()
        .sort("lead_id", "handoff_at")
        .with_columns(
            handoff_number=(position_in_group("lead_id") + 1).cast(pl.UInt32),
            window_end=next_in_group("handoff_at", "lead_id").fill_null(as_of_value),
        )
    )


def sales_touches(tables: CanonicalTables, config: OrgConfig, as_of: dt.datetime) -> pl.DataFrame:
    """Return the human sales touches: completed, not automated, by a sales user.

    Which activity kinds count comes from ``sla.touch_kinds``; an open task is a
    plan, not a touch.
    """
    sales_users = tables["users"].filter(pl.col("team") == "sales").select("user_id")
    return (
        tables["activities"]
        .filter(
            pl.col("is_completed")
            & ~pl.col("is_automated")
            & pl.col("kind").is_in(list(config.sla.touch_kinds))
            & (pl.col("occurred_at") <= _as_of_literal(as_of))
            & pl.col("lead_id").is_not_null()
        )
        .join(sales_users, left_on="owner_id", right_on="user_id", how="semi")
        .select("lead_id", touched_at="occurred_at", touch_owner_id="owner_id")
    )


def _first_after(
    handoffs: pl.DataFrame, events: pl.DataFrame, at: str
) -> pl.DataFrame:
    """Join each handoff to the first event at or after it, within its window."""
    joined = handoffs.sort("handoff_at").join_asof(
        events.sort(at),
        left_on="handoff_at",
        right_on=at,
        by="lead_id",
        strategy="forward",
        check_sortedness=False,
    )
    in_window = pl.col(at) < pl.col("window_end")
    last_window = pl.col("window_end") == pl.col("_as_of")
    keep = in_window | (last_window & (pl.col(at) <= pl.col("window_end")))
    other_columns = [c for c in events.columns if c not in ("lead_id",)]
    return joined.with_columns(
        [pl.when(keep).then(pl.col(c)).otherwise(None).alias(c) for c in other_columns]
    )


def _decisions(tables: CanonicalTables) -> pl.DataFrame:
    return (
        tables["stage_events"]
        .filter(pl.col("stage").is_in(ACCEPTED_STAGES + REJECTED_STAGES))
        .select(
            "lead_id",
            decided_at="entered_at",
            decision=pl.when(pl.col("stage").is_in(ACCEPTED_STAGES))
            .then(pl.lit("accepted"))
            .otherwise(pl.lit("rejected")),
            decision_stage="stage",
        )
    )


def _rejection_follow_up(tables: CanonicalTables, handoffs: pl.DataFrame) -> pl.DataFrame:
    """Per handoff: whether a rejection in its window had a reason, and a recycle.

    Only ``rejected`` and ``recycled`` events set these columns, so only they are
    joined, and handoffs without one in their window get no row. ``reason`` is
    the reason of the earliest such event that has one.
    """
    events = (
        tables["stage_events"]
        .filter(pl.col("stage").is_in(REJECTED_STAGES))
        .select("lead_id", "stage", "entered_at", "reason")
    )
    in_window = handoffs.select("lead_id", "handoff_at", "window_end", "decided_at").join(
        events, on="lead_id"
    ).filter(
        (pl.col("entered_at") >= pl.col("handoff_at"))
        & (pl.col("entered_at") <= pl.col("window_end"))
    )
    # Aggregations keep the frame's order within a group, so first() is the earliest.
    return in_window.sort("entered_at").group_by("lead_id", "handoff_at").agg(
        has_reason=pl.col("reason").is_not_null().any(),
        reason=pl.col("reason").drop_nulls().first(),
        recycled=(
            (pl.col("stage") == "recycled") & (pl.col("entered_at") >= pl.col("decided_at"))
        ).any(),
    )


def _routing(
    tables: CanonicalTables, handoffs: pl.DataFrame, config: OrgConfig
) -> pl.DataFrame:
    """Per handoff: the owner it was routed to and whether that is a routing failure.

    The routed owner is the first assignment within ``sla.routing_hours`` after the
    handoff, else the owner in place at the handoff. Routing fails when that owner is
    not a sales user active at the handoff (a deactivated rep, a queue, a marketing
    user). A rep deactivated after the handoff was still active then; an inactive
    user with no deactivation time counts as inactive throughout.
    """
    window = dt.timedelta(hours=config.sla.routing_hours)
    owners = tables["owner_events"].select("lead_id", "owner_id", "assigned_at").sort("assigned_at")
    base = handoffs.select("lead_id", "handoff_at").sort("handoff_at")
    in_place = base.join_asof(
        owners.rename({"owner_id": "owner_at_handoff"}),
        left_on="handoff_at",
        right_on="assigned_at",
        by="lead_id",
        strategy="backward",
        check_sortedness=False,
    ).drop("assigned_at")
    assigned = base.join_asof(
        owners.rename({"owner_id": "owner_assigned"}),
        left_on="handoff_at",
        right_on="assigned_at",
        by="lead_id",
        strategy="forward",
        check_sortedness=False,
    ).with_columns(
        owner_assigned=pl.when(pl.col("assigned_at") <= pl.col("handoff_at") + window)
        .then("owner_assigned")
        .otherwise(None)
    ).drop("assigned_at")
    current = tables["leads"].select("lead_id", current_owner="owner_id")
    users = tables["users"].select("user_id", "team", "is_active", "deactivated_at")
    return (
        in_place.join(assigned, on=["lead_id", "handoff_at"])
        .join(current, on="lead_id", how="left")
        .with_columns(
            routed_owner_id=pl.coalesce("owner_assigned", "owner_at_handoff", "current_owner")
        )
        .join(users, left_on="routed_owner_id", right_on="user_id", how="left")
        .select(
            "lead_id",
            "handoff_at",
            "routed_owner_id",
            routing_failed=~(
                (pl.col("team") == "sales")
                & (
                    pl.col("is_active")
                    | (pl.col("deactivated_at") > pl.col("handoff_at")).fill_null(False)
                )
            ).fill_null(False),
        )
    )


def _with_clock_zone(tables: CanonicalTables, handoffs: pl.DataFrame) -> pl.DataFrame:
    """Add ``_zone``: the time zone whose business hours the handoff's clock runs in.

    The routed owner's zone comes first, because the rep's working day is what the
    SLA asks of them; then the lead's; null means the org's calendar zone.
    """
    owner_zones = tables["users"].select(
        routed_owner_id="user_id", _owner_zone="time_zone"
    ).unique("routed_owner_id", keep="first")
    lead_zones = tables["leads"].select("lead_id", _lead_zone="time_zone").unique(
        "lead_id", keep="first"
    )
    return (
        handoffs.join(owner_zones, on="routed_owner_id", how="left")
        .join(lead_zones, on="lead_id", how="left")
        .with_columns(_zone=pl.coalesce("_owner_zone", "_lead_zone"))
        .drop("_owner_zone", "_lead_zone")
    )


def build_handoffs(
    tables: CanonicalTables, config: OrgConfig, as_of: dt.datetime
) -> pl.DataFrame:
    """Return one row per handoff with its first touch, SLA status, decision and routing.

    Columns: ``lead_id``, ``handoff_at``, ``handoff_number``, ``first_touch_at``,
    ``business_hours`` and ``calendar_hours`` to the first touch, ``sla_deadline``,
    ``sla_status`` (``on_time``, ``breached``, ``not_due``), ``decision``
    (``accepted``, ``rejected`` or null), ``decided_at``, ``mature`` (older than the
    decision window), ``has_reason``, ``reason``, ``recycled``,
    ``routed_owner_id`` and ``routing_failed``. Business hours run in the routed
    owner's time zone, else the lead's, else the org's.
    """
    calendar = BusinessCalendar(config.calendar)
    as_of_value = _as_of_literal(as_of)
    handoffs = handoff_windows(tables, as_of).with_columns(_as_of=as_of_value)

    touches = sales_touches(tables, config, as_of)
    handoffs = _first_after(handoffs, touches, "touched_at")
    handoffs = _first_after(handoffs, _decisions(tables), "decided_at")
    handoffs = handoffs.join(
        _routing(tables, handoffs, config), on=["lead_id", "handoff_at"], how="left"
    )
    handoffs = _with_clock_zone(tables, handoffs)

    handoffs = calendar.business_hours(
        handoffs, "handoff_at", "touched_at", name="business_hours", zone="_zone"
    )
    handoffs = calendar.business_hours(
        handoffs, "handoff_at", "_as_of", name="_open_hours", zone="_zone"
    )
    handoffs = calendar.deadline(
        handoffs, "handoff_at", config.sla.speed_to_lead_hours, name="sla_deadline",
        zone="_zone",
    )  # fmt: skip
    sla = config.sla.speed_to_lead_hours
    tolerance = 1e-9
    handoffs = handoffs.with_columns(
        calendar_hours=(pl.col("touched_at") - pl.col("handoff_at")).dt.total_microseconds()
        / 3_600_000_000,
        sla_status=pl.when(pl.col("touched_at").is_not_null())
        .then(
            pl.when(pl.col("business_hours") <= sla + tolerance)
            .then(pl.lit("on_time"))
            .otherwise(pl.lit("breached"))
        )
        .when(pl.col("_open_hours") > sla + tolerance)
        .then(pl.lit("breached"))
        .otherwise(pl.lit("not_due")),
        mature=pl.col("handoff_at")
        <= as_of_value - pl.duration(days=config.decision_window_days),
    )

    if any(name in tables.missing for name in ("activities", "users")):
        handoffs = handoffs.with_columns(
            pl.lit(None, pl.String).alias("sla_status"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("touched_at"),
        )

    follow_up = _rejection_follow_up(tables, handoffs)
    handoffs = handoffs.join(follow_up, on=["lead_id", "handoff_at"], how="left").with_columns(
        has_reason=pl.col("has_reason").fill_null(False),
        recycled=pl.col("recycled").fill_null(False)
        | (
            (pl.col("decision") == "rejected")
            & (pl.col("window_end") < pl.col("_as_of"))
        ),
    )
    return handoffs.rename({"touched_at": "first_touch_at"}).select(
        "lead_id",
        "handoff_at",
        "handoff_number",
        "first_touch_at",
        "touch_owner_id",
        "business_hours",
        "calendar_hours",
        "sla_deadline",
        "sla_status",
        "decision",
        "decision_stage",
        "decided_at",
        "mature",
        "has_reason",
        "reason",
        "recycled",
        "routed_owner_id",
        "routing_failed",
    ).sort("handoff_at", "lead_id")
