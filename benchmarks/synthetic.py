"""Synthetic canonical tables at benchmark scale (a million leads and more).

Everything is drawn with numpy over whole arrays, so a million leads take
seconds. The shape follows a plausible B2B funnel: three leads in four become
MQLs, some come back after recycling, about half of the handoffs are accepted,
a fraction of those reach SQL and an opportunity, and reps touch leads with
calls, e-mails and meetings over the following days. Times are UTC; the org
calendar in :data:`BENCHMARK_CONFIG` is New York business hours with US
holidays, so the business-hours code does real time-zone work.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from config.models import CalendarConfig, OrgConfig, StageMapping
from connectors.schema import conform

AS_OF = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
BENCHMARK_CONFIG = OrgConfig(
    calendar=CalendarConfig(time_zone="America/New_York", holiday_country="US"),
    stages=StageMapping(preset="salesforce_custom"),
)
_START = dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp()
_END = AS_OF.timestamp()
_HOUR = 3600.0
_DAY = 86400.0
_SALES_REPS = 80
_MARKETING_USERS = 15
_CAMPAIGNS = 200
_CHANNELS = np.array(["Webinar", "Paid Search", "Email", "Event", "Content", "Social"])
_REASONS = np.array(["No budget", "Wrong contact", "Competitor", "No response"])
_KINDS = np.array(["call", "email", "meeting"])
_RAW = {
    "mql": "Marketing Qualified",
    "sal": "Sales Accepted",
    "sql": "Sales Qualified",
    "rejected": "Rejected",
    "recycled": "Recycled",
    "opportunity": "Converted",
}


def _names(prefix: str, numbers: np.ndarray) -> pl.Series:
    return prefix + pl.Series(numbers, dtype=pl.Int64).cast(pl.String).str.zfill(8)


def _times(seconds: np.ndarray) -> pl.Series:
    micros = pl.Series(np.round(seconds * 1e6), dtype=pl.Float64, nan_to_null=True)
    return micros.cast(pl.Int64).cast(pl.Datetime("us", "UTC"))


def _only(mask: np.ndarray, values: pl.Series) -> pl.Series:
    """Return ``values`` where ``mask`` is true and null elsewhere."""
    frame = pl.DataFrame({"mask": mask, "values": values})
    return frame.select(pl.when("mask").then("values")).to_series()


def _happened(when: np.ndarray) -> np.ndarray:
    return ~np.isnan(when) & (when <= _END)


def _maybe(rng: np.random.Generator, mask: np.ndarray, share: float) -> np.ndarray:
    return mask & (rng.random(mask.size) < share)


def _working_time(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """Move instants into Mon-Fri 09:00-17:00 New York time, as reps work.

    New York is taken as UTC-5 all year, which is close enough for a synthetic
    workload. An instant outside the hours moves to a random time in the first
    two working hours of the next working day.
    """
    offset = 5 * _HOUR
    local = seconds - offset
    day = np.floor(local / _DAY)
    clock = local - day * _DAY
    early = clock < 9 * _HOUR
    late = clock >= 17 * _HOUR
    day = day + late
    start = 9 * _HOUR + rng.random(seconds.size) * 2 * _HOUR
    clock = np.where(early | late, start, clock)
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    day = day + np.where(weekday == 5, 2, 0) + np.where(weekday == 6, 1, 0)
    moved = day * _DAY + np.where(weekday >= 5, start, clock) + offset
    return np.where(np.isnan(seconds), np.nan, moved)


def _users() -> pl.DataFrame:
    count = _SALES_REPS + _MARKETING_USERS
    numbers = np.arange(count)
    active = np.ones(count, dtype=bool)
    active[_SALES_REPS - 5 : _SALES_REPS] = False  # five reps left the company
    frame = pl.DataFrame(
        {
            "user_id": _names("U", numbers),
            "team": np.where(numbers < _SALES_REPS, "sales", "marketing"),
            "is_active": active,
        }
    )
    return conform("users", frame)


def _funnel(rng: np.random.Generator, count: int) -> dict[str, np.ndarray]:
    """Draw each lead's creation and stage times (NaN where a step never happened)."""
    created = _START + rng.random(count) * (_END - _START)
    mql = np.where(
        rng.random(count) < 0.75, created + rng.exponential(2 * _DAY, count), np.nan
    )
    decision = mql + rng.lognormal(np.log(20 * _HOUR), 1.0, count)
    fate = rng.random(count)
    accepted = _happened(decision) & (fate < 0.55)
    rejected = _happened(decision) & (fate >= 0.55) & (fate < 0.75)
    sql = np.where(
        _maybe(rng, accepted, 0.5), decision + rng.exponential(5 * _DAY, count), np.nan
    )
    opportunity = np.where(
        _maybe(rng, _happened(sql), 0.45),
        sql + rng.exponential(7 * _DAY, count),
        np.nan,
    )
    recycled = np.where(_maybe(rng, rejected, 0.5), decision + 30 * _DAY, np.nan)
    second_mql = np.where(
        _maybe(rng, _happened(recycled), 0.4), recycled + 60 * _DAY, np.nan
    )
    second_sal = np.where(
        _maybe(rng, _happened(second_mql), 0.5), second_mql + 2 * _DAY, np.nan
    )
    return {
        "created": created,
        "mql": mql,
        "sal": np.where(accepted, decision, np.nan),
        "rejected": np.where(rejected, decision, np.nan),
        "sql": sql,
        "opportunity": opportunity,
        "recycled": recycled,
        "second_mql": second_mql,
        "second_sal": second_sal,
    }


def _stage_events(funnel: dict[str, np.ndarray]) -> pl.DataFrame:
    numbers = np.arange(funnel["created"].size)
    frames = []
    for column, stage in (
        ("mql", "mql"), ("sal", "sal"), ("rejected", "rejected"), ("sql", "sql"),
        ("opportunity", "opportunity"), ("recycled", "recycled"),
        ("second_mql", "mql"), ("second_sal", "sal"),
    ):  # fmt: skip
        keep = _happened(funnel[column])
        reasons = _REASONS[numbers[keep] % 4] if stage == "rejected" else None
        frames.append(
            pl.DataFrame(
                {
                    "lead_id": _names("L", numbers[keep]),
                    "stage": stage,
                    "entered_at": _times(funnel[column][keep]),
                    "raw_value": _RAW[stage],
                    "reason": reasons,
                    "source_field": "LeadHistory.Status",
                },
                schema_overrides={"reason": pl.String},
            )
        )
    return conform("stage_events", pl.concat(frames, how="vertical_relaxed"))


def _last_status(funnel: dict[str, np.ndarray]) -> np.ndarray:
    status = np.full(funnel["created"].size, "Open", dtype=object)
    latest = np.full(funnel["created"].size, -np.inf)
    for column, stage in (
        ("mql", "mql"), ("sal", "sal"), ("rejected", "rejected"), ("sql", "sql"),
        ("opportunity", "opportunity"), ("recycled", "recycled"),
        ("second_mql", "mql"), ("second_sal", "sal"),
    ):  # fmt: skip
        when = np.where(_happened(funnel[column]), funnel[column], -np.inf)
        later = when > latest
        status[later] = _RAW[stage]
        latest = np.maximum(latest, when)
    return status


def _leads(
    rng: np.random.Generator,
    funnel: dict[str, np.ndarray],
    owner: np.ndarray,
    accounts: int,
) -> pl.DataFrame:
    count = owner.size
    numbers = np.arange(count)
    converted = _happened(funnel["opportunity"])
    status = _last_status(funnel)
    # A few statuses no mapping covers, and converted statuses without the flag.
    status[rng.random(count) < 0.01] = "Cold Lead"
    flag = converted & (rng.random(count) > 0.003)
    has_account = converted | (rng.random(count) < 0.3)
    score = pl.Series(rng.integers(1, 100, count), dtype=pl.Float64)
    frame = pl.DataFrame(
        {
            "lead_id": _names("L", numbers),
            "created_at": _times(funnel["created"]),
            "source": _CHANNELS[numbers % _CHANNELS.size],
            "owner_id": _names("U", owner),
            "status_raw": pl.Series(status, dtype=pl.String),
            "score": _only(rng.random(count) < 0.7, score),
            "account_id": _only(has_account, _names("A", numbers % accounts)),
            "is_converted": flag,
            "converted_on": _times(
                np.where(converted, funnel["opportunity"], np.nan)
            ).dt.date(),
            "opportunity_id": _only(converted, _names("O", numbers)),
        }
    )
    return conform("leads", frame)


def _owner_events(
    rng: np.random.Generator, funnel: dict[str, np.ndarray], owner: np.ndarray
) -> tuple[pl.DataFrame, np.ndarray]:
    """Assign each lead at creation; reassign a fifth of the handoffs soon after."""
    count = owner.size
    numbers = np.arange(count)
    moved = _maybe(rng, _happened(funnel["mql"]), 0.2)
    moved_at = funnel["mql"] + rng.exponential(6 * _HOUR, count)
    moved = moved & (moved_at <= _END)
    new_owner = rng.integers(0, _SALES_REPS, count)
    initial = pl.DataFrame(
        {
            "lead_id": _names("L", numbers),
            "owner_id": _names("U", owner),
            "assigned_at": _times(funnel["created"]),
        }
    )
    changes = pl.DataFrame(
        {
            "lead_id": _names("L", numbers[moved]),
            "owner_id": _names("U", new_owner[moved]),
            "assigned_at": _times(moved_at[moved]),
        }
    )
    current = np.where(moved, new_owner, owner)
    return conform("owner_events", pl.concat([initial, changes])), current


def _activities(
    rng: np.random.Generator, funnel: dict[str, np.ndarray], owner: np.ndarray
) -> pl.DataFrame:
    """Draw the sales touches after each handoff: a first response, then follow-ups."""
    handoffs = np.concatenate([funnel["mql"], funnel["second_mql"]])
    leads = np.concatenate([np.arange(owner.size)] * 2)
    keep = _happened(handoffs)
    handoffs, leads = handoffs[keep], leads[keep]
    touches = rng.poisson(3.5, handoffs.size)
    lead = np.repeat(leads, touches)
    start = np.repeat(handoffs, touches)
    first = np.repeat(rng.lognormal(np.log(3 * _HOUR), 1.5, handoffs.size), touches)
    order = np.arange(lead.size) - np.repeat(np.cumsum(touches) - touches, touches)
    when = start + first + order * rng.exponential(1.5 * _DAY, lead.size)
    when = _working_time(rng, when)
    keep = when <= _END
    size = int(keep.sum())
    by_owner = rng.random(size) < 0.9
    actor = np.where(by_owner, owner[lead[keep]], rng.integers(0, _SALES_REPS, size))
    frame = pl.DataFrame(
        {
            "activity_id": _names("T", np.arange(size)),
            "lead_id": _names("L", lead[keep]),
            "owner_id": _names("U", actor),
            "occurred_at": _times(when[keep]),
            "kind": _KINDS[rng.choice(3, size, p=[0.45, 0.45, 0.1])],
            "direction": "outbound",
            "is_automated": rng.random(size) < 0.1,
            "is_completed": rng.random(size) < 0.95,
        }
    )
    return conform("activities", frame)


def _opportunities(
    rng: np.random.Generator,
    funnel: dict[str, np.ndarray],
    owner: np.ndarray,
    accounts: int,
) -> pl.DataFrame:
    numbers = np.flatnonzero(_happened(funnel["opportunity"]))
    size = numbers.size
    created = funnel["opportunity"][numbers]
    closed = (created + 60 * _DAY <= _END) & (rng.random(size) < 0.8)
    won = closed & (rng.random(size) < 0.35)
    amount = np.round(rng.lognormal(np.log(20_000), 0.8, size), 2)
    amount[rng.random(size) < 0.08] = 0.0
    close = np.where(
        closed, created + rng.uniform(10, 60, size) * _DAY, created + 90 * _DAY
    )
    lead_ids = (
        _names("L", numbers).to_frame("lead_id").select(pl.concat_list("lead_id"))
    )
    frame = pl.DataFrame(
        {
            "opportunity_id": _names("O", numbers),
            "account_id": _names("A", numbers % accounts),
            "created_at": _times(created),
            "close_date": _times(close).dt.date(),
            "is_closed": closed,
            "is_won": won,
            "amount": _only(rng.random(size) > 0.03, pl.Series(amount)),
            "stage_raw": np.where(
                won, "Closed Won", np.where(closed, "Closed Lost", "Proposal")
            ),
            "owner_id": _names("U", owner[numbers]),
            "lead_ids": lead_ids.to_series(),
        }
    )
    return conform("opportunities", frame)


def _touches(
    rng: np.random.Generator, created: np.ndarray, accounts: int
) -> pl.DataFrame:
    """Draw marketing touches around each lead's creation, some on the account only."""
    count = created.size
    per_lead = rng.poisson(2.5, count)
    lead = np.repeat(np.arange(count), per_lead)
    when = np.repeat(created, per_lead) + rng.normal(5, 20, lead.size) * _DAY
    keep = when <= _END
    lead, when = lead[keep], when[keep]
    size = lead.size
    account_only = rng.random(size) < 0.05
    campaign = rng.integers(0, _CAMPAIGNS, size)
    frame = pl.DataFrame(
        {
            "touch_id": _names("M", np.arange(size)),
            "lead_id": _only(~account_only, _names("L", lead)),
            "account_id": _only(account_only, _names("A", lead % accounts)),
            "campaign_id": _names("C", campaign),
            "channel": _CHANNELS[campaign % _CHANNELS.size],
            "touched_at": _times(when),
            "responded": rng.random(size) < 0.3,
        }
    )
    return conform("touches", frame)


def _small_tables(rng: np.random.Generator, accounts: int) -> dict[str, pl.DataFrame]:
    numbers = np.arange(_CAMPAIGNS)
    campaigns = pl.DataFrame(
        {
            "campaign_id": _names("C", numbers),
            "name": _names("Campaign ", numbers),
            "channel": _CHANNELS[numbers % _CHANNELS.size],
            "cost": rng.uniform(1_000, 50_000, _CAMPAIGNS),
        }
    )
    account_frame = pl.DataFrame(
        {
            "account_id": _names("A", np.arange(accounts)),
            "is_target": rng.random(accounts) < 0.1,
            "segment": "mid_market",
        }
    )
    return {
        "campaigns": conform("campaigns", campaigns),
        "accounts": conform("accounts", account_frame),
        "users": _users(),
    }


def generate(leads: int, *, seed: int = 7) -> dict[str, pl.DataFrame]:
    """Return the canonical tables of a synthetic org with ``leads`` leads."""
    rng = np.random.default_rng(seed)
    accounts = max(leads // 7, 1)
    funnel = _funnel(rng, leads)
    owner = rng.integers(0, _SALES_REPS, leads)
    owner_events, current_owner = _owner_events(rng, funnel, owner)
    tables = {
        "leads": _leads(rng, funnel, current_owner, accounts),
        "stage_events": _stage_events(funnel),
        "owner_events": owner_events,
        "activities": _activities(rng, funnel, current_owner),
        "opportunities": _opportunities(rng, funnel, current_owner, accounts),
        "touches": _touches(rng, funnel["created"], accounts),
    }
    return tables | _small_tables(rng, accounts)


def write(tables: dict[str, pl.DataFrame], folder: Path) -> None:
    """Write each table as ``<table>.parquet`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
