"""Demo org: a generated B2B company written as a Salesforce export folder.

:func:`generate_demo` writes one CSV per Salesforce object (API field names, ISO
8601 timestamps, TRUE/FALSE booleans, 18-character ids with the real key
prefixes), ``survey.csv`` and the org config, so a demo run goes through the
same reader as a real export. The files depend only on ``leads`` and ``seed``:
twelve months of data end just before the fixed :data:`DEMO_AS_OF`, whatever
today's date is.

Inside, times are float seconds since the Unix epoch in numpy arrays, with NaN
for an event that did not happen. Each funnel step happens only when the step
before it happened, and only before the as-of time. Names, e-mail addresses and
phone numbers are synthetic (``First00042``, ``lead00042@example.com``,
555-01xx numbers).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from config import CONFIG_DIR
from config.models import load_config
from connectors.errors import InputError
from metrics.calendar import MICROSECONDS_PER_HOUR, BusinessCalendar

logger = logging.getLogger(__name__)

DEMO_AS_OF = dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
DEMO_CONFIG = CONFIG_DIR / "demo-org.yaml"
SURVEY_COLUMNS = (
    "respondent_id",
    "team",
    "answered_on",
    "shared_definitions",
    "lead_handoff",
    "sla_compliance",
    "attribution",
    "strategic_planning",
    "evidence",
)

_AS_OF = DEMO_AS_OF.timestamp()
_FIRST_DAY = dt.date(2024, 11, 1)  # day 0 of the data, in the org's time zone
_DATA_DAYS = 365
_TABLE_DAYS = 800  # local days with a known midnight, to well after the as-of time
_HOUR = 3600.0
_DAY = 86400.0
_NAN = np.nan

# --- Salesforce ids ---------------------------------------------------------

_BASE62 = np.frombuffer(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8
)
_CHECKSUM = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345", np.uint8)
_COUNTER_DIGITS = 7


def salesforce_ids(prefix: str, count: int, *, first: int = 1) -> pl.Series:
    """Return ``count`` 18-character Salesforce ids with the 3-character key prefix.

    The 15-character part is the prefix, a fixed instance part and a base-62
    counter starting at ``first``, so ids sort in creation order. The last three
    characters are Salesforce's case-safe checksum: one character per block of
    five, whose bits mark the upper-case letters in that block.
    """
    numbers = np.arange(first, first + count, dtype=np.int64)
    chars = np.empty((count, 15), dtype=np.uint8)
    chars[:, :8] = np.frombuffer(f"{prefix}Dm000".encode(), np.uint8)
    for position in range(14, 14 - _COUNTER_DIGITS, -1):
        chars[:, position] = _BASE62[numbers % 62]
        numbers //= 62
    upper = (chars >= ord("A")) & (chars <= ord("Z"))
    flags = upper.reshape(count, 3, 5).astype(np.int64) @ (1 << np.arange(5))
    full = np.ascontiguousarray(np.concatenate([chars, _CHECKSUM[flags]], axis=1))
    return pl.Series(full.view("S18").ravel()).cast(pl.String)


def _gather(values: pl.Series, index: np.ndarray) -> pl.Series:
    """Return ``values`` at ``index``; a negative index gives null."""
    positions = pl.Series("i", index.astype(np.int64)).to_frame()
    positions = positions.select(pl.when(pl.col("i") >= 0).then("i")).to_series()
    return values.gather(positions)


# --- arrays of times and rows -----------------------------------------------


def _datetimes(seconds: np.ndarray) -> pl.Series:
    """Return UTC datetimes from epoch seconds, rounded to the second; NaN is null."""
    whole = pl.Series(np.round(seconds), nan_to_null=True).cast(pl.Int64)
    return pl.from_epoch(whole, time_unit="s").dt.replace_time_zone("UTC")


def _before_as_of(times: np.ndarray) -> np.ndarray:
    return np.where(times < _AS_OF, times, _NAN)


def _lognormal(
    rng: np.random.Generator, median: float, sigma: float, size: int
) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(size))


def _choose(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Draw one column index per row with probability proportional to its weight.

    Returns -1 for a row whose weights are all zero.
    """
    cumulative = weights.cumsum(axis=1)
    total = cumulative[:, -1]
    threshold = rng.random(weights.shape[0]) * total
    index = (cumulative <= threshold[:, None]).sum(axis=1)
    return np.where(total > 0, index, -1)


def _time_of_day(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return local seconds after midnight: mostly working hours, some at any hour."""
    working = rng.normal(13.0, 2.6, size)
    any_hour = rng.uniform(0.0, 24.0, size)
    hours = np.where(rng.random(size) < 0.78, working, any_hour)
    return np.clip(hours, 0.0, 23.99) * _HOUR


def _spread(
    rng: np.random.Generator, counts: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (row, time) pairs: ``counts[i]`` times from ``start[i]`` to ``end[i]``."""
    rows = np.repeat(np.arange(counts.size), counts)
    share = rng.uniform(0.02, 0.98, rows.size)
    return rows, start[rows] + share * (end - start)[rows]


def _part(mask: np.ndarray, /, **columns: object) -> pl.DataFrame:
    """Return a frame of the rows where ``mask`` holds; scalars fill whole columns."""
    arrays = {k: v[mask] for k, v in columns.items() if isinstance(v, np.ndarray)}
    scalars = [
        pl.lit(v).alias(k) for k, v in columns.items() if not isinstance(v, np.ndarray)
    ]
    return pl.DataFrame(arrays).with_columns(scalars).select(list(columns))


def _false(count: int) -> pl.Series:
    return pl.repeat(False, count, eager=True)


@dataclass(frozen=True)
class _Context:
    """Random generator, org calendar and local-day table shared by every step."""

    rng: np.random.Generator
    calendar: BusinessCalendar
    periods: pl.DataFrame
    zone: str
    day_starts: np.ndarray  # epoch seconds of local midnight, day 0 = _FIRST_DAY
    weekdays: np.ndarray  # 1 = Monday ... 7 = Sunday
    holidays: np.ndarray  # bool per day

    @classmethod
    def create(cls, seed: int) -> _Context:
        config = load_config(DEMO_CONFIG)
        calendar = BusinessCalendar(config.calendar)
        last_day = _FIRST_DAY + dt.timedelta(days=_TABLE_DAYS - 1)
        days = pl.date_range(_FIRST_DAY, last_day, interval="1d", eager=True)
        zone = config.calendar.time_zone
        starts = (
            days.dt.combine(dt.time(0))
            .dt.replace_time_zone(zone, ambiguous="earliest")
            .dt.epoch("s")
        )
        closed = pl.Series(sorted(calendar.holidays_between(_FIRST_DAY, last_day)))
        return cls(
            rng=np.random.default_rng(seed),
            calendar=calendar,
            periods=calendar.periods(_FIRST_DAY - dt.timedelta(days=40), last_day),
            zone=zone,
            day_starts=starts.to_numpy().astype(np.float64),
            weekdays=days.dt.weekday().to_numpy(),
            holidays=days.is_in(closed.cast(pl.Date).implode()).to_numpy(),
        )

    def new_ids(self, prefix: str, count: int) -> pl.Series:
        """Return ids for ``count`` new records, numbered from a random start."""
        return salesforce_ids(prefix, count, first=int(self.rng.integers(10**5, 10**8)))

    def moment(self, day: np.ndarray, seconds_of_day: np.ndarray) -> np.ndarray:
        """Return epoch seconds ``seconds_of_day`` after local midnight of ``day``."""
        inside = (day >= 0) & (day < self.day_starts.size)
        start = self.day_starts[np.clip(day, 0, self.day_starts.size - 1)]
        return np.where(inside, start + seconds_of_day, _NAN)

    def local_dates(self, seconds: np.ndarray) -> pl.Series:
        """Return the org-local calendar date of each instant (null for NaN)."""
        return _datetimes(seconds).dt.convert_time_zone(self.zone).dt.date()

    def business_later(self, starts: np.ndarray, hours: np.ndarray) -> np.ndarray:
        """Return the instant ``hours`` business hours after each start; NaN stays NaN.

        Uses the org calendar's opening periods, so nights, weekends, holidays
        and daylight-saving changes are skipped the way the SLA clock skips them.
        """
        result = np.full(starts.size, _NAN)
        valid = np.flatnonzero(~np.isnan(starts))
        if valid.size == 0:
            return result
        budget = np.round(np.maximum(hours[valid], 0.01) * MICROSECONDS_PER_HOUR)
        frame = pl.DataFrame(
            {"row": valid, "start": _datetimes(starts[valid]), "budget": budget}
        ).with_columns(pl.col("budget").cast(pl.Int64))
        clock = self.calendar.clock(frame["start"], self.periods)
        opening = self.periods.select("opens_at", "elapsed_before", "elapsed_after")
        ends = (
            frame.join(clock, left_on="start", right_on="instant", how="left")
            .with_columns(target=pl.col("business_clock") + pl.col("budget"))
            .sort("target")
            .join_asof(
                opening, left_on="target", right_on="elapsed_after", strategy="forward"
            )
            .sort("row")
            .select(
                end=pl.col("opens_at")
                + pl.duration(microseconds=pl.col("target") - pl.col("elapsed_before"))
            )
        )
        seconds = ends["end"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
        result[valid] = np.fmax(seconds, starts[valid])
        return result


# --- staff ------------------------------------------------------------------

_REP_COUNT = 12
_MARKETING = ("Marketing Ops 01", "Demand Gen 01", "Demand Gen 02")
_OTHERS = ("Integration User", "RevOps Admin")
_TITLES_BY_USER = (
    ("Account Executive",) * 8
    + ("Sales Development Rep",) * 4
    + ("Marketing Operations Manager", "Demand Generation Manager")
    + ("Demand Generation Manager", None, "Revenue Operations Admin")
)
_DEPARTMENTS = ("Sales",) * _REP_COUNT + ("Marketing",) * 3 + (None, "Operations")
# Reps hired during the year start taking leads on these dates.
_LATE_STARTS = {10: "2025-04-14T13:00:00", 11: "2025-08-18T13:00:00"}
# Rep index -> (deactivated at, routing rule still sending new leads until).
# Sales Rep 04 stayed in the routing rule for nine days after leaving, so those
# handoffs went to an inactive user: routing failures.
_DEACTIVATED = {
    3: ("2025-04-15T18:00:00", "2025-04-24T14:00:00"),
    8: ("2025-08-19T19:00:00", "2025-08-19T19:00:00"),
}
_TRANSFER_LEAD = 600.0  # seconds before deactivation that a rep's open leads move
# Per rep: share of routed leads (relative) and how slow their follow-up is
# (a factor on the business hours to the first touch). Fixed, not drawn from the
# seed, so that every seed gives a team of the same shape.
_REP_SHARE = (1.2, 1.0, 0.9, 1.1, 1.0, 0.8, 1.3, 1.0, 0.9, 1.1, 0.7, 1.0)
_REP_SPEED = (0.8, 1.0, 1.25, 1.1, 0.9, 1.0, 0.85, 1.15, 1.3, 0.95, 1.05, 1.0)


def _utc_seconds(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


@dataclass(frozen=True)
class _Staff:
    """Users and the lead queue, indexed by position: reps first, the queue last.

    ``transfer_at`` is when a departing rep's open leads moved to other reps
    (NaN while active) and ``keeps_until`` the same with infinity for active
    reps. ``routable_until`` is when the routing rule stopped sending them new
    leads.
    """

    ids: pl.Series
    labels: pl.Series
    starts: np.ndarray
    transfer_at: np.ndarray
    keeps_until: np.ndarray
    routable_until: np.ndarray
    weights: np.ndarray
    speed: np.ndarray
    marketing: np.ndarray
    integration: int
    admin: int
    queue: int
    frame: pl.DataFrame

    def pick(
        self, rng: np.random.Generator, times: np.ndarray, *, routing: bool
    ) -> np.ndarray:
        """Draw a rep for each time among those taking leads then (-1 for NaN).

        With ``routing``, a rep still in the routing rule counts even after
        leaving; without it, only reps who keep their leads at that time.
        """
        until = self.routable_until if routing else self.keeps_until
        at = times[:, None]
        available = (at >= self.starts) & (at < until)
        return _choose(rng, available * self.weights)


def _rep_windows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per rep: start of routing, deactivation and end of routing."""
    starts = np.full(_REP_COUNT, -np.inf)
    for rep, when in _LATE_STARTS.items():
        starts[rep] = _utc_seconds(when)
    deactivated = np.full(_REP_COUNT, np.inf)
    routable_until = np.full(_REP_COUNT, np.inf)
    for rep, (gone, routed_until) in _DEACTIVATED.items():
        deactivated[rep] = _utc_seconds(gone)
        routable_until[rep] = _utc_seconds(routed_until)
    return starts, deactivated, routable_until


def _user_frame(
    rng: np.random.Generator, ids: pl.Series, labels: list[str], starts, deactivated
) -> pl.DataFrame:
    count = len(labels)
    created = rng.uniform(
        _utc_seconds("2022-01-10T14:00:00"), _utc_seconds("2024-06-30T14:00:00"), count
    )
    late = np.isfinite(starts)
    created[:_REP_COUNT][late] = starts[late] - 7 * _DAY
    active = np.ones(count, bool)
    active[:_REP_COUNT] = np.isinf(deactivated)
    modified = created + 30 * _DAY
    modified[:_REP_COUNT] = np.where(
        active[:_REP_COUNT], modified[:_REP_COUNT], deactivated
    )
    handles = [label.lower().replace(" ", ".") for label in labels]
    return pl.DataFrame(
        {
            "Id": ids,
            "Username": [f"{h}@demo-org.example" for h in handles],
            "Name": labels,
            "Email": [f"{h}@example.com" for h in handles],
            "Title": list(_TITLES_BY_USER),
            "Department": list(_DEPARTMENTS),
            "IsActive": active,
            "UserType": ["Standard"] * count,
            "TimeZoneSidKey": ["America/New_York"] * count,
            "CreatedDate": _datetimes(created),
            "LastModifiedDate": _datetimes(modified),
            "SystemModstamp": _datetimes(modified),
        }
    )


def _staff(ctx: _Context) -> _Staff:
    rng = ctx.rng
    reps = [f"Sales Rep {n:02d}" for n in range(1, _REP_COUNT + 1)]
    labels = [*reps, *_MARKETING, *_OTHERS]
    ids = ctx.new_ids("005", len(labels))
    queue_id = ctx.new_ids("00G", 1)
    starts, deactivated, routable_until = _rep_windows()
    transfer_at = np.where(np.isinf(deactivated), _NAN, deactivated - _TRANSFER_LEAD)
    return _Staff(
        ids=pl.concat([ids, queue_id]),
        labels=pl.Series([*labels, "Marketing Nurture Queue"]),
        starts=starts,
        transfer_at=transfer_at,
        keeps_until=np.where(np.isnan(transfer_at), np.inf, transfer_at),
        routable_until=routable_until,
        weights=np.array(_REP_SHARE),
        speed=np.array(_REP_SPEED),
        marketing=np.arange(_REP_COUNT, _REP_COUNT + len(_MARKETING)),
        integration=len(labels) - 2,
        admin=len(labels) - 1,
        queue=len(labels),
        frame=_user_frame(rng, ids, labels, starts, deactivated),
    )


# --- accounts and campaigns -------------------------------------------------

_INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Media",
    "Logistics",
)
_COUNTRIES = ("United States",) * 3 + ("Canada", "United Kingdom")


@dataclass(frozen=True)
class _Accounts:
    ids: pl.Series
    names: pl.Series
    is_target: np.ndarray
    lead_weight: np.ndarray  # share of marketing's leads that come from each account
    industry: np.ndarray
    created: np.ndarray


def _accounts(ctx: _Context, leads: int) -> _Accounts:
    rng = ctx.rng
    count = max(10, round(leads * 0.16))
    is_target = rng.permutation(count) < round(0.2 * count)
    weight = np.exp(rng.normal(0.0, 0.6, count)) * np.where(is_target, 1.6, 1.0)
    width = max(4, len(str(count)))
    numbers = pl.Series(np.arange(1, count + 1)).cast(pl.String).str.zfill(width)
    created = rng.uniform(
        _utc_seconds("2021-02-01T15:00:00"), _utc_seconds("2024-10-15T15:00:00"), count
    )
    return _Accounts(
        ids=ctx.new_ids("001", count),
        names="Account " + numbers,
        is_target=is_target,
        lead_weight=weight / weight.sum(),
        industry=rng.integers(0, len(_INDUSTRIES), count),
        created=np.sort(created),
    )


@dataclass(frozen=True)
class _CampaignType:
    weight: float  # relative chance of being picked among the campaigns running
    response_rate: float
    lead_source: str  # LeadSource of the leads it creates
    quarterly_cost: float  # median, USD


_CAMPAIGN_TYPES = {
    "Webinar": _CampaignType(5.0, 0.7, "Webinar", 6_000),
    "Email": _CampaignType(2.5, 0.35, "Email", 1_500),
    "Paid Search": _CampaignType(3.0, 1.0, "Paid Search", 38_000),
    "Content Syndication": _CampaignType(2.0, 1.0, "Content Syndication", 24_000),
    "Trade Show": _CampaignType(6.0, 0.85, "Trade Show", 45_000),
    "Partner": _CampaignType(1.0, 0.9, "Partner Referral", 8_000),
}
# Five campaigns a quarter: (year, quarter, type, topic).
_CAMPAIGNS = (
    (2024, 4, "Webinar", "Attribution That Sales Trusts"),
    (2024, 4, "Email", "Year-End Planning Kit"),
    (2024, 4, "Paid Search", "Revenue Analytics"),
    (2024, 4, "Content Syndication", "State of RevOps Report"),
    (2024, 4, "Trade Show", "B2B Growth Expo"),
    (2025, 1, "Webinar", "Forecasting Without Guesswork"),
    (2025, 1, "Email", "Lead Scoring Guide"),
    (2025, 1, "Paid Search", "Funnel Benchmarks"),
    (2025, 1, "Content Syndication", "Handoff Playbook eBook"),
    (2025, 1, "Partner", "CRM Partner Referrals"),
    (2025, 2, "Webinar", "Pipeline Math"),
    (2025, 2, "Email", "SLA Template Pack"),
    (2025, 2, "Paid Search", "Speed to Lead"),
    (2025, 2, "Content Syndication", "Buyer Intent Study"),
    (2025, 2, "Trade Show", "SaaS Operations Forum"),
    (2025, 3, "Webinar", "Fixing the MQL"),
    (2025, 3, "Email", "Mid-Year Benchmarks"),
    (2025, 3, "Paid Search", "Pipeline Analytics"),
    (2025, 3, "Content Syndication", "Account-Based Playbook"),
    (2025, 3, "Partner", "Consulting Partner Referrals"),
    (2025, 4, "Webinar", "Planning 2026 Together"),
    (2025, 4, "Email", "Budget Season Toolkit"),
    (2025, 4, "Paid Search", "RevOps Software"),
    (2025, 4, "Content Syndication", "Attribution Field Guide"),
    (2025, 4, "Trade Show", "Revenue Leaders Expo"),
)


@dataclass(frozen=True)
class _PlannedCampaign:
    """One campaign: StartDate to EndDate, and the first day people join it."""

    name: str
    kind: str
    first_day: dt.date
    last_day: dt.date
    joins_from: dt.date
    event: dt.date | None
    quarter_start: dt.date


def _next_tuesday(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(1 - day.weekday()) % 7)


def _plan_campaign(year: int, quarter: int, kind: str, topic: str) -> _PlannedCampaign:
    """Place a campaign in its quarter; a webinar takes registrations for 3 weeks."""
    start = dt.date(year, 3 * quarter - 2, 1)
    end = dt.date(year + quarter // 4, 3 * quarter % 12 + 1, 1) - dt.timedelta(days=1)
    name = f"{year}-Q{quarter} {kind}: {topic}"
    if kind == "Webinar":
        day = _next_tuesday(start + dt.timedelta(days=40))
        joins = day - dt.timedelta(days=21)
        return _PlannedCampaign(name, kind, day, day, joins, day, start)
    if kind == "Trade Show":
        day = _next_tuesday(start + dt.timedelta(days=50))
        last = day + dt.timedelta(days=2)
        return _PlannedCampaign(name, kind, day, last, day, day, start)
    return _PlannedCampaign(name, kind, start, end, start, None, start)


@dataclass(frozen=True)
class _Campaigns:
    ids: pl.Series
    types: list[str]
    starts: np.ndarray  # when people start joining, epoch seconds
    ends: np.ndarray
    event_days: np.ndarray  # local day index of a webinar or trade show, -1 otherwise
    frame: pl.DataFrame


def _campaigns(ctx: _Context, staff: _Staff) -> _Campaigns:
    rng = ctx.rng
    plan = [_plan_campaign(*row) for row in _CAMPAIGNS]
    count = len(plan)
    # Days before day 0 (October 2024) are placed in whole days from day 0.
    starts = np.array([(c.joins_from - _FIRST_DAY).days for c in plan])
    ends = np.array([(c.last_day - _FIRST_DAY).days + 1 for c in plan])
    start_seconds = ctx.day_starts[np.maximum(starts, 0)] + np.minimum(starts, 0) * _DAY
    end_seconds = ctx.day_starts[ends]
    event_days = np.array(
        [(c.event - _FIRST_DAY).days if c.event else -1 for c in plan]
    )

    types = [c.kind for c in plan]
    planned = np.array([c.first_day >= DEMO_AS_OF.date() for c in plan])
    running = ~planned & (end_seconds > _AS_OF)
    status = np.where(planned, "Planned", np.where(running, "In Progress", "Completed"))
    # A running campaign has spent about a third of its quarter; a planned one nothing.
    spent = np.where(running, 0.35, np.where(planned, 0.0, 1.0))
    cost = np.array([_CAMPAIGN_TYPES[kind].quarterly_cost for kind in types])
    actual = cost * np.exp(rng.normal(0, 0.25, count)) * spent
    created = [
        dt.datetime.combine(c.quarter_start, dt.time(14), dt.UTC).timestamp()
        - 20 * _DAY
        for c in plan
    ]
    frame = pl.DataFrame(
        {
            "Id": ctx.new_ids("701", count),
            "Name": [c.name for c in plan],
            "Type": types,
            "Status": status,
            "StartDate": [c.first_day for c in plan],
            "EndDate": [c.last_day for c in plan],
            "IsActive": running | planned,
            "BudgetedCost": np.round(cost * 1.1, -2).astype(np.int64),
            "ActualCost": np.round(actual, -2).astype(np.int64),
            "OwnerId": _gather(staff.ids, rng.choice(staff.marketing, count)),
            "CreatedDate": _datetimes(np.array(created)),
        }
    )
    return _Campaigns(frame["Id"], types, start_seconds, end_seconds, event_days, frame)


# --- leads ------------------------------------------------------------------

# Handoffs pinned at moments where SLA clocks go wrong, so that even a small demo
# has them: weekends, nights, US holidays and both daylight-saving changes of
# 2024-25. One goes to a rep who had already left (rep index 3), and -1 lets the
# routing choose. A demo of N leads uses the first N // 20 of them.
_EDGE_HANDOFFS = (
    ("2025-03-07T22:30:00", -1),  # Friday 17:30 EST; the clock restarts after DST
    ("2024-11-03T06:30:00", -1),  # Sunday 01:30 EST, the repeated hour
    ("2025-07-04T14:00:00", -1),  # Independence Day
    ("2025-04-17T15:00:00", 3),  # routed to Sales Rep 04, deactivated two days before
    ("2025-06-14T02:00:00", -1),  # Friday 22:00 EDT
    ("2025-03-09T07:30:00", -1),  # Sunday 03:30 EDT, just after the skipped hour
    ("2024-11-28T19:00:00", -1),  # Thanksgiving
    (
        "2024-11-02T22:15:00",
        -1,
    ),  # Saturday 18:15 EDT, the night before clocks fall back
    ("2024-12-25T14:30:00", -1),  # Christmas Day
    ("2025-01-01T18:00:00", -1),  # New Year's Day
    ("2025-05-26T15:00:00", -1),  # Memorial Day
    ("2025-08-16T16:00:00", -1),  # Saturday noon
    ("2025-09-01T19:00:00", -1),  # Labor Day
    ("2025-10-15T06:10:00", -1),  # Wednesday 02:10 EDT
)


@dataclass(frozen=True)
class _Leads:
    """Leads in creation order."""

    count: int
    ids: pl.Series
    created: np.ndarray
    day: np.ndarray
    account: np.ndarray
    target: np.ndarray
    edge_handoff: np.ndarray  # a pinned handoff time from _EDGE_HANDOFFS, else NaN
    edge_rep: np.ndarray  # the rep that pinned handoff goes to, -1 to let routing pick
    outbound: np.ndarray  # created by a rep prospecting, not by marketing


def _arrival_weights(ctx: _Context, campaigns: _Campaigns) -> np.ndarray:
    """Return the chance of a lead arriving on each local day of the year."""
    day = np.arange(_DATA_DAYS)
    weights = 1.0 + 0.45 * day / _DATA_DAYS
    weights *= np.where(ctx.weekdays[:_DATA_DAYS] >= 6, 0.28, 1.0)
    weights *= np.where(ctx.holidays[:_DATA_DAYS], 0.4, 1.0)
    dates = [_FIRST_DAY + dt.timedelta(days=int(n)) for n in day]
    quiet = [(d.month, d.day) >= (12, 22) or (d.month, d.day) == (1, 1) for d in dates]
    weights *= np.where(quiet, 0.65, 1.0)
    for kind, days, boost in (("Webinar", 1, 2.5), ("Trade Show", 3, 3.0)):
        for first in campaigns.event_days[np.array(campaigns.types) == kind]:
            weights[max(first, 0) : max(first + days, 0)] *= boost
    return weights / weights.sum()


def _leads(
    ctx: _Context, count: int, accounts: _Accounts, campaigns: _Campaigns
) -> _Leads:
    rng = ctx.rng
    day = rng.choice(_DATA_DAYS, size=count, p=_arrival_weights(ctx, campaigns))
    created = ctx.moment(day, _time_of_day(rng, count))
    created = np.where(created >= _AS_OF, created - _DAY, created)

    edge = np.full(count, _NAN)
    edge_rep = np.full(count, -1)
    pinned = min(len(_EDGE_HANDOFFS), count // 20)
    edge[:pinned] = [_utc_seconds(text) for text, _rep in _EDGE_HANDOFFS[:pinned]]
    edge_rep[:pinned] = [rep for _text, rep in _EDGE_HANDOFFS[:pinned]]
    early = rng.exponential(900.0, count) + 60.0
    created = np.where(np.isnan(edge), created, edge - early)
    pinned_day = np.searchsorted(ctx.day_starts, created, "right") - 1
    day = np.where(np.isnan(edge), day, pinned_day)

    order = np.argsort(created, kind="stable")
    outbound = (rng.random(count) < 0.08) & np.isnan(edge[order])
    # Reps prospect target accounts far more than marketing reaches them.
    prospecting = accounts.lead_weight * np.where(accounts.is_target, 3.0, 1.0)
    prospecting = prospecting / prospecting.sum()
    size = accounts.is_target.size
    account = np.where(
        outbound,
        rng.choice(size, size=count, p=prospecting),
        rng.choice(size, size=count, p=accounts.lead_weight),
    )
    return _Leads(
        count=count,
        ids=ctx.new_ids("00Q", count),
        created=created[order],
        day=day[order],
        account=account,
        target=accounts.is_target[account],
        edge_handoff=edge[order],
        edge_rep=edge_rep[order],
        outbound=outbound,
    )


# --- the funnel: handoffs, routing, first touches and decisions --------------

_STATUSES = (
    "New",
    "Nurture",
    "Marketing Qualified",
    "Accepted",
    "Rejected",
    "Recycled",
    "Sales Qualified",
    "Converted",
    "Contacted - Waiting",
    "On Hold",
    "Working",
)
NEW, NURTURE, MQL, ACCEPTED, REJECTED, RECYCLED = range(6)
SQL, CONVERTED, WAITING, ON_HOLD, WORKING = range(6, 11)
_REASONS = ("No budget", "Not ICP", "Competitor", "Student", "Bad data", "No response")
_REASON_WEIGHTS = (0.24, 0.26, 0.12, 0.08, 0.16, 0.14)


def _first_handoffs(ctx: _Context, leads: _Leads) -> np.ndarray:
    """Return when each lead first became Marketing Qualified (NaN: not yet)."""
    rng, count = ctx.rng, leads.count
    qualifies = rng.random(count) < 0.44 + 0.14 * leads.target
    qualifies &= ~leads.outbound
    hot = rng.random(count) < 0.15
    hot_at = leads.created + rng.exponential(600.0, count) + 30.0

    # Most leads qualify days later, at a new time of day, mostly on a weekday.
    later_day = leads.day + np.round(_lognormal(rng, 6.0, 1.0, count)).astype(np.int64)
    weekday = ctx.weekdays[np.clip(later_day, 0, ctx.weekdays.size - 1)]
    to_monday = (weekday >= 6) & (rng.random(count) < 0.6)
    later_day = np.where(to_monday, later_day + 8 - weekday, later_day)
    later_at = ctx.moment(later_day, _time_of_day(rng, count))
    soonest = leads.created + 600.0 + rng.exponential(3 * _HOUR, count)
    later_at = np.fmax(later_at, soonest)

    handoff = np.where(qualifies, np.where(hot, hot_at, later_at), _NAN)
    handoff = np.where(np.isnan(leads.edge_handoff), handoff, leads.edge_handoff)
    return _before_as_of(handoff)


@dataclass(frozen=True)
class _Routing:
    """Routing of each lead: the rep it went to and any later move to another rep."""

    routed_at: np.ndarray
    owner: np.ndarray  # -1 when not routed
    stale: np.ndarray  # routed to a rep who had already left
    reassigned_at: np.ndarray
    new_owner: np.ndarray

    @property
    def ready_at(self) -> np.ndarray:
        """When a working rep first owned the lead."""
        return np.where(self.stale, self.reassigned_at, self.routed_at)

    def owner_at(self, times: np.ndarray, rows: np.ndarray | slice = slice(None)):
        """Return the owner at ``times`` of leads ``rows``."""
        later = times >= self.reassigned_at[rows]
        return np.where(later, self.new_owner[rows], self.owner[rows])


def _route(
    ctx: _Context,
    staff: _Staff,
    start: np.ndarray,
    *,
    immediate: bool = False,
    pinned: np.ndarray | None = None,
) -> _Routing:
    """Assign each lead to a rep at ``start``: mostly within seconds, some hours late.

    With ``immediate`` the rep owns the lead from ``start`` on (a lead the rep
    created). ``pinned`` names a rep for some leads (-1: routing picks). Leads of
    a rep who leaves move to another rep.
    """
    rng, count = ctx.rng, start.size
    slow = rng.random(count) < 0.05
    delay = np.where(
        slow, rng.uniform(1.2 * _HOUR, 6 * _HOUR, count), rng.uniform(5, 90, count)
    )
    routed_at = _before_as_of(start + delay * (not immediate))
    owner = staff.pick(rng, routed_at, routing=True)
    if pinned is not None:
        owner = np.where((owner >= 0) & (pinned >= 0), pinned, owner)

    rep = np.maximum(owner, 0)
    transfer = np.where(owner >= 0, staff.transfer_at[rep], _NAN)
    until = np.where(owner >= 0, staff.routable_until[rep], _NAN)
    stale = routed_at >= transfer
    fixed_at = np.fmax(until, transfer + _TRANSFER_LEAD)
    reassigned_at = np.where(routed_at < transfer, transfer, _NAN)
    reassigned_at = _before_as_of(np.where(stale, fixed_at, reassigned_at))
    new_owner = staff.pick(rng, reassigned_at, routing=False)
    return _Routing(routed_at, owner, stale, reassigned_at, new_owner)


@dataclass(frozen=True)
class _Cycle:
    """One handoff per lead (NaN where the lead had none) and what followed it."""

    handoff_at: np.ndarray
    routing: _Routing
    touched_at: np.ndarray
    decision: np.ndarray  # status code, -1 when undecided
    decided_at: np.ndarray
    reason: np.ndarray  # index into _REASONS, -1 when none
    qualified_at: np.ndarray
    converted_at: np.ndarray
    recycled_at: np.ndarray
    is_handoff: bool = True  # False for the leads reps created themselves

    def owner_at(self, times: np.ndarray, rows: np.ndarray | slice = slice(None)):
        return self.routing.owner_at(times, rows)

    @property
    def end_at(self) -> np.ndarray:
        """When the lead left this cycle's owner by recycling or converting."""
        return np.fmin(self.recycled_at, self.converted_at)


def _first_touch(
    ctx: _Context,
    staff: _Staff,
    routing: _Routing,
    touch_rate: float,
    median_hours: float,
) -> np.ndarray:
    """Return the first human sales touch: a lognormal delay in business hours."""
    rng, count = ctx.rng, routing.owner.size
    ready = routing.ready_at
    first_owner = routing.owner_at(ready)
    speed = staff.speed[np.maximum(first_owner, 0)]
    hours = _lognormal(rng, median_hours, 0.6, count) * speed
    touched_at = ctx.business_later(ready, np.maximum(hours, 0.02))
    after_hours = rng.random(count) < 0.08
    quick = ready + rng.exponential(40 * 60.0, count)
    touched_at = np.where(after_hours, quick, touched_at)
    touched = (rng.random(count) < touch_rate) & (first_owner >= 0)
    return _before_as_of(np.where(touched, touched_at, _NAN))


def _decide(
    ctx: _Context,
    leads: _Leads,
    routing: _Routing,
    touched_at: np.ndarray,
    accept_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the sales decision on each handoff, when it came and the reason code.

    A touched handoff is mostly accepted; an untouched one is rejected or left
    waiting. A few get a status no stage mapping covers.
    """
    rng, count = ctx.rng, leads.count
    touched = ~np.isnan(touched_at)
    accept = np.where(touched, accept_rate + 0.08 * leads.target, 0.0)
    reject = accept + np.where(touched, 0.24, 0.32)
    unmapped = reject + np.where(touched, 0.022, 0.04)
    draw = rng.random(count)
    decision = np.select(
        [draw < accept, draw < reject, draw < unmapped],
        [ACCEPTED, REJECTED, np.where(touched, WAITING, ON_HOLD)],
        default=-1,
    )
    hours = np.where(
        touched, _lognormal(rng, 4, 1.0, count), _lognormal(rng, 16, 0.7, count)
    )
    start = np.where(touched, touched_at, routing.ready_at)
    decided_at = ctx.business_later(np.where(decision >= 0, start, _NAN), hours)
    decided_at = _before_as_of(decided_at)
    decision = np.where(np.isnan(decided_at), -1, decision)

    has_reason = (decision == REJECTED) & (rng.random(count) < 0.6)
    reason = rng.choice(len(_REASONS), size=count, p=_REASON_WEIGHTS)
    return decision, decided_at, np.where(has_reason, reason, -1)


def _progress(
    ctx: _Context,
    leads: _Leads,
    decision: np.ndarray,
    decided_at: np.ndarray,
    *,
    worked: int = ACCEPTED,
    qualify_rate: float = 0.48,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return when worked leads became Sales Qualified and Converted, and recycles."""
    rng, count = ctx.rng, leads.count
    accepted = decision == worked
    will_qualify = accepted & (rng.random(count) < qualify_rate + 0.12 * leads.target)
    hours = _lognormal(rng, 40, 0.8, count)
    qualified_at = ctx.business_later(np.where(will_qualify, decided_at, _NAN), hours)
    qualified_at = _before_as_of(qualified_at)
    will_convert = rng.random(count) < 0.72
    hours = _lognormal(rng, 24, 0.8, count)
    converted_at = ctx.business_later(np.where(will_convert, qualified_at, _NAN), hours)
    converted_at = _before_as_of(converted_at)

    stalled = accepted & ~will_qualify & (rng.random(count) < 0.2)
    dropped = (decision == REJECTED) & (rng.random(count) < 0.5)
    delay = np.where(
        stalled,
        _lognormal(rng, 35 * _DAY, 0.5, count),
        _lognormal(rng, 12 * _DAY, 0.6, count),
    )
    recycled_at = np.where(stalled | dropped, decided_at + delay, _NAN)
    return qualified_at, converted_at, _before_as_of(recycled_at)


def _handoff_cycle(
    ctx: _Context,
    staff: _Staff,
    leads: _Leads,
    handoff_at: np.ndarray,
    *,
    touch_rate: float,
    accept_rate: float,
    pinned: np.ndarray | None = None,
) -> _Cycle:
    routing = _route(ctx, staff, handoff_at, pinned=pinned)
    touched_at = _first_touch(ctx, staff, routing, touch_rate, median_hours=3.4)
    decision, decided_at, reason = _decide(ctx, leads, routing, touched_at, accept_rate)
    later = _progress(ctx, leads, decision, decided_at)
    return _Cycle(handoff_at, routing, touched_at, decision, decided_at, reason, *later)


def _outbound_cycle(ctx: _Context, staff: _Staff, leads: _Leads) -> _Cycle:
    """Return the leads reps created: Working from the first call, never an MQL."""
    created = np.where(leads.outbound, leads.created, _NAN)
    routing = _route(ctx, staff, created, immediate=True)
    touched_at = _first_touch(ctx, staff, routing, 0.97, median_hours=1.0)
    decision = np.where(np.isnan(touched_at), -1, WORKING)
    later = _progress(
        ctx, leads, decision, touched_at, worked=WORKING, qualify_rate=0.2
    )
    no_reason = np.full(leads.count, -1)
    return _Cycle(
        created,
        routing,
        touched_at,
        decision,
        touched_at,
        no_reason,
        *later,
        is_handoff=False,
    )


@dataclass(frozen=True)
class _Funnel:
    """Every lead's cycles, and the statuses of inbound leads never handed off."""

    first: _Cycle
    second: _Cycle  # re-MQLs after a recycle
    outbound: _Cycle  # leads reps created
    idle_at: np.ndarray  # leads never handed off that moved to Nurture or On Hold
    idle_status: np.ndarray

    @property
    def cycles(self) -> tuple[_Cycle, _Cycle, _Cycle]:
        return (self.first, self.second, self.outbound)

    @property
    def converted_at(self) -> np.ndarray:
        return np.fmin.reduce([cycle.converted_at for cycle in self.cycles])

    def converting_owner_at(self, times: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Return the owner at ``times`` of converted leads ``rows``."""
        owner = np.full(rows.size, -1)
        for cycle in self.cycles:
            converted = ~np.isnan(cycle.converted_at[rows])
            owner = np.where(converted, cycle.owner_at(times, rows), owner)
        return owner


def _funnel(ctx: _Context, staff: _Staff, leads: _Leads) -> _Funnel:
    rng, count = ctx.rng, leads.count
    first = _handoff_cycle(
        ctx,
        staff,
        leads,
        _first_handoffs(ctx, leads),
        touch_rate=0.9,
        accept_rate=0.6,
        pinned=leads.edge_rep,
    )
    comeback = first.recycled_at + _lognormal(rng, 50 * _DAY, 0.5, count)
    again = _before_as_of(np.where(rng.random(count) < 0.45, comeback, _NAN))
    second = _handoff_cycle(ctx, staff, leads, again, touch_rate=0.86, accept_rate=0.52)
    outbound = _outbound_cycle(ctx, staff, leads)

    never = np.isnan(first.handoff_at) & ~leads.outbound
    draw = rng.random(count)
    idle_status = np.where(draw < 0.008, ON_HOLD, NURTURE)
    idle_at = leads.created + _lognormal(rng, 25 * _DAY, 0.6, count)
    idle_at = _before_as_of(np.where(never & (draw < 0.3), idle_at, _NAN))
    return _Funnel(first, second, outbound, idle_at, idle_status)


# --- LeadHistory ------------------------------------------------------------


def _status_rows(
    funnel: _Funnel, staff: _Staff, leads: _Leads
) -> tuple[list[pl.DataFrame], np.ndarray]:
    """Return the Status changes in the order they happened, and each final status."""
    lead = np.arange(leads.count)
    current = np.full(leads.count, NEW)
    parts: list[pl.DataFrame] = []

    def move(times: np.ndarray, status: np.ndarray | int, by: np.ndarray | int) -> None:
        happened = ~np.isnan(times)
        new = np.broadcast_to(status, times.shape).copy()
        author = np.broadcast_to(by, times.shape).copy()
        old = current.copy()
        parts.append(_part(happened, lead=lead, at=times, old=old, new=new, by=author))
        current[happened] = new[happened]

    move(funnel.idle_at, funnel.idle_status, staff.integration)
    for cycle in funnel.cycles:
        if cycle.is_handoff:
            move(cycle.handoff_at, MQL, staff.integration)
        move(cycle.decided_at, cycle.decision, cycle.owner_at(cycle.decided_at))
        move(cycle.qualified_at, SQL, cycle.owner_at(cycle.qualified_at))
        move(cycle.converted_at, CONVERTED, cycle.owner_at(cycle.converted_at))
        move(cycle.recycled_at, RECYCLED, staff.integration)
    statuses = pl.Series(_STATUSES)
    rows = [
        part.with_columns(
            field=pl.lit("Status"),
            data_type=pl.lit("DynamicEnum"),
            old=statuses.gather(part["old"]),
            new=statuses.gather(part["new"]),
        )
        for part in parts
    ]
    return rows, current


def _owner_changes(funnel: _Funnel, staff: _Staff, count: int) -> list[pl.DataFrame]:
    """Return owner changes as (lead, at, old, new, by) owner indexes."""
    lead = np.arange(count)
    changes = []
    for cycle in funnel.cycles:
        routing = cycle.routing
        routed = ~np.isnan(routing.routed_at) & cycle.is_handoff
        changes.append(
            _part(
                routed,
                lead=lead,
                at=routing.routed_at,
                old=staff.queue,
                new=routing.owner,
                by=staff.integration,
            )
        )
        # A move planned after the lead converted or recycled never happened.
        moved = ~np.isnan(routing.reassigned_at)
        moved &= ~(cycle.end_at <= routing.reassigned_at)
        changes.append(
            _part(
                moved,
                lead=lead,
                at=routing.reassigned_at,
                old=routing.owner,
                new=routing.new_owner,
                by=staff.admin,
            )
        )
        recycled = ~np.isnan(cycle.recycled_at)
        changes.append(
            _part(
                recycled,
                lead=lead,
                at=cycle.recycled_at,
                new=staff.queue,
                old=cycle.owner_at(cycle.recycled_at),
                by=staff.integration,
            )
        )
    return changes


def _owner_rows(funnel: _Funnel, staff: _Staff, count: int) -> list[pl.DataFrame]:
    """Return owner changes as Salesforce writes them: a names row and an ids row."""
    rows = []
    for change in _owner_changes(funnel, staff, count):
        old, new = change["old"].to_numpy(), change["new"].to_numpy()
        for data_type, values in (("Text", staff.labels), ("EntityId", staff.ids)):
            rows.append(
                change.with_columns(
                    field=pl.lit("Owner"),
                    data_type=pl.lit(data_type),
                    old=_gather(values, old),
                    new=_gather(values, new),
                )
            )
    return rows


def _creators(funnel: _Funnel, staff: _Staff, leads: _Leads) -> np.ndarray:
    """Return who created each lead: the rep who prospected it, else the integration."""
    return np.where(leads.outbound, funnel.outbound.routing.owner, staff.integration)


def _lead_history(
    ctx: _Context, funnel: _Funnel, staff: _Staff, leads: _Leads
) -> tuple[pl.DataFrame, np.ndarray]:
    """Return LeadHistory in creation order and each lead's final status code.

    The frame keeps helper columns ``_lead`` and ``_at``, which are not written.
    """
    lead = np.arange(leads.count)
    every = np.ones(leads.count, bool)
    status_rows, final_status = _status_rows(funnel, staff, leads)
    creator = _creators(funnel, staff, leads)
    created = _part(every, lead=lead, at=leads.created, by=creator, field="created")
    converted_at = funnel.converted_at
    converted = ~np.isnan(converted_at)
    by = np.full(leads.count, -1)
    by[converted] = funnel.converting_owner_at(converted_at[converted], lead[converted])
    conversion = _part(
        converted, lead=lead, at=converted_at, by=by, field="leadConverted"
    )

    parts = [
        created,
        *status_rows,
        *_owner_rows(funnel, staff, leads.count),
        conversion,
    ]
    history = (
        pl.concat(
            [part.with_columns(seq=pl.lit(n)) for n, part in enumerate(parts)],
            how="diagonal_relaxed",
        )
        .sort("at", "lead", "seq")
        .with_columns(pl.col("by").cast(pl.Int64))
    )
    frame = pl.DataFrame(
        {
            "Id": ctx.new_ids("017", history.height),
            "IsDeleted": _false(history.height),
            "LeadId": leads.ids.gather(history["lead"]),
            "CreatedById": _gather(staff.ids, history["by"].to_numpy()),
            "CreatedDate": _datetimes(history["at"].to_numpy()),
            "Field": history["field"],
            "DataType": history["data_type"],
            "OldValue": history["old"],
            "NewValue": history["new"],
            "_lead": history["lead"],
            "_at": history["at"],
        }
    )
    return frame, final_status


# --- deals: opportunities and the contacts that conversion creates ----------

_OPEN_STAGES = ("Qualification", "Discovery", "Proposal", "Negotiation")
_STAGE_FACTS = pl.DataFrame(
    {
        "stage": [*_OPEN_STAGES, "Closed Won", "Closed Lost"],
        "Probability": [10, 25, 50, 75, 100, 0],
        "ForecastCategory": [
            "Pipeline",
            "Pipeline",
            "Best Case",
            "Commit",
            "Closed",
            "Omitted",
        ],
    }
)


@dataclass(frozen=True)
class _Deals:
    """One opportunity and one contact per converted lead, in conversion order."""

    lead: np.ndarray
    created: np.ndarray
    close_at: np.ndarray  # actual close, or the expected one while open
    closed: np.ndarray
    won: np.ndarray
    stages: np.ndarray  # open stages reached, 1 to 4
    amount: np.ndarray
    opportunity_ids: pl.Series
    contact_ids: pl.Series
    of_lead: np.ndarray  # deal index per lead, -1 when the lead did not convert


def _deals(ctx: _Context, leads: _Leads, funnel: _Funnel) -> _Deals:
    rng = ctx.rng
    converted_at = funnel.converted_at
    converted = np.flatnonzero(~np.isnan(converted_at))
    lead = converted[np.argsort(converted_at[converted], kind="stable")]
    count = lead.size
    created = converted_at[lead]
    target = leads.target[lead]

    duration = _lognormal(rng, 55 * _DAY, 0.55, count)
    close_at = created + duration
    closed = close_at < _AS_OF
    won = closed & (rng.random(count) < 0.27 + 0.15 * target)
    lost_stages = rng.integers(1, 5, count)
    open_stages = np.clip(1 + np.floor(4 * (_AS_OF - created) / duration), 1, 4)
    stages = np.where(won, 4, np.where(closed, lost_stages, open_stages))
    amount = _lognormal(rng, 28_000, 0.6, count) * np.where(target, 1.8, 1.0)

    of_lead = np.full(leads.count, -1)
    of_lead[lead] = np.arange(count)
    return _Deals(
        lead=lead,
        created=created,
        close_at=close_at,
        closed=closed,
        won=won,
        stages=stages.astype(np.int64),
        amount=np.round(amount, -3),
        opportunity_ids=ctx.new_ids("006", count),
        contact_ids=ctx.new_ids("003", count),
        of_lead=of_lead,
    )


def _opportunity_history(
    ctx: _Context, deals: _Deals, staff: _Staff, owners: np.ndarray
) -> pl.DataFrame:
    """Return one row per stage each opportunity entered, stages evenly spaced."""
    deal = np.arange(deals.lead.size)
    span = deals.close_at - deals.created
    parts = [
        _part(
            deals.stages > step,
            deal=deal,
            at=deals.created + span * step / 4,
            stage=name,
        )
        for step, name in enumerate(_OPEN_STAGES)
    ]
    final = np.where(deals.won, "Closed Won", "Closed Lost")
    parts.append(_part(deals.closed, deal=deal, at=deals.close_at, stage=final))
    rows = (
        pl.concat(parts)
        .sort("at", "deal")
        .join(_STAGE_FACTS, on="stage", how="left", maintain_order="left")
    )
    index = rows["deal"].to_numpy()
    amount = deals.amount[index].astype(np.int64)
    probability = rows["Probability"].to_numpy()
    return pl.DataFrame(
        {
            "Id": ctx.new_ids("008", rows.height),
            "OpportunityId": deals.opportunity_ids.gather(index),
            "CreatedById": _gather(staff.ids, owners[index]),
            "CreatedDate": _datetimes(rows["at"].to_numpy()),
            "StageName": rows["stage"],
            "Amount": amount,
            "ExpectedRevenue": amount * probability // 100,
            "Probability": probability,
            "CloseDate": ctx.local_dates(deals.close_at[index]),
            "ForecastCategory": rows["ForecastCategory"],
            "IsDeleted": _false(rows.height),
        }
    )


# --- marketing touches: campaign members ------------------------------------


def _touch_times(
    ctx: _Context, leads: _Leads, funnel: _Funnel, from_campaign: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (lead, time) of every campaign response.

    The rows start with one response at creation for each lead a campaign
    created, in lead order. Most MQLs respond a few more times before the
    handoff, recycled leads respond again before they come back, and some leads
    keep responding after it, including some that reps created.
    """
    rng, count = ctx.rng, leads.count
    first, second = funnel.first, funnel.second
    created = leads.created
    handed = ~np.isnan(first.handoff_at)
    before = rng.poisson(2.6, count) * (first.handoff_at - created > _HOUR)
    nurtured = rng.poisson(0.9, count) * (~handed & ~leads.outbound)
    returning = (1 + rng.poisson(1.0, count)) * ~np.isnan(second.handoff_at)
    after = rng.poisson(0.4, count) * handed
    prospected = rng.poisson(0.35, count) * leads.outbound
    year_later = np.fmin(created + 150 * _DAY, _AS_OF)
    parts = [
        (np.flatnonzero(from_campaign), created[from_campaign]),
        _spread(rng, before, created, first.handoff_at),
        _spread(rng, nurtured, created, year_later),
        _spread(rng, returning, first.recycled_at, second.handoff_at),
        _spread(
            rng, after, first.handoff_at, np.fmin(first.handoff_at + 120 * _DAY, _AS_OF)
        ),
        _spread(rng, prospected, created, year_later),
    ]
    lead = np.concatenate([part[0] for part in parts])
    return lead, np.concatenate([part[1] for part in parts])


@dataclass(frozen=True)
class _Members:
    frame: pl.DataFrame
    lead_source: pl.Series  # per lead
    deal_campaign: pl.Series  # per deal, the last campaign before conversion


def _lead_sources(
    leads: _Leads, origin: np.ndarray, from_campaign: np.ndarray, creating: np.ndarray
) -> pl.Series:
    """Return LeadSource: the creating campaign's source, Web, Other or outbound."""
    sources = np.where(origin < 0.12, "Web", "Other").astype(object)
    sources[leads.outbound] = "Outbound Prospecting"
    by_type = np.array([t.lead_source for t in _CAMPAIGN_TYPES.values()], dtype=object)
    sources[from_campaign] = by_type[creating]
    return pl.Series(sources, dtype=pl.String)


def _members(
    ctx: _Context, leads: _Leads, funnel: _Funnel, campaigns: _Campaigns, deals: _Deals
) -> _Members:
    rng = ctx.rng
    # Web and Other are leads from the website or a bought list, with no campaign.
    origin = rng.random(leads.count)
    from_campaign = ~leads.outbound & (origin >= 0.15)
    lead, at = _touch_times(ctx, leads, funnel, from_campaign)
    kinds = [_CAMPAIGN_TYPES[kind] for kind in campaigns.types]
    weight = np.array([kind.weight for kind in kinds])
    running = (at[:, None] >= campaigns.starts) & (at[:, None] < campaigns.ends)
    campaign = _choose(rng, running * weight)
    response_rate = np.array([kind.response_rate for kind in kinds])
    responded = rng.random(at.size) < response_rate[campaign]
    responded_at = np.fmin(at + rng.uniform(0, _DAY, at.size), _AS_OF - 1)

    type_index = np.array([list(_CAMPAIGN_TYPES).index(k) for k in campaigns.types])
    creating = type_index[campaign[: int(from_campaign.sum())]]
    sources = _lead_sources(leads, origin, from_campaign, creating)

    # Salesforce keeps one member row per person and campaign: the first response.
    touches = (
        pl.DataFrame(
            {
                "lead": lead,
                "at": at,
                "campaign": campaign,
                "responded": responded,
                "responded_at": responded_at,
            }
        )
        .sort("at", "lead")
        .unique(["lead", "campaign"], keep="first", maintain_order=True)
    )
    frame = _member_frame(ctx, touches, leads, funnel, campaigns, deals)
    # Null, not NaN: polars orders NaN above every number, so `at < NaN` holds.
    converted_at = pl.Series(funnel.converted_at, nan_to_null=True)
    converted_at = converted_at.gather(touches["lead"])
    last = (
        touches.filter(pl.col("at") < converted_at)
        .group_by("lead")
        .agg(pl.col("campaign").last())
    )
    by_deal = np.full(deals.lead.size, -1)
    by_deal[deals.of_lead[last["lead"].to_numpy()]] = last["campaign"].to_numpy()
    by_deal = np.where(rng.random(by_deal.size) < 0.8, by_deal, -1)
    return _Members(frame, sources, _gather(campaigns.ids, by_deal))


def _member_frame(
    ctx: _Context,
    touches: pl.DataFrame,
    leads: _Leads,
    funnel: _Funnel,
    campaigns: _Campaigns,
    deals: _Deals,
) -> pl.DataFrame:
    """Return CampaignMember; after conversion a row names only the contact."""
    lead = touches["lead"].to_numpy()
    at = touches["at"].to_numpy()
    after_conversion = at >= funnel.converted_at[lead]
    responded = touches["responded"].to_numpy()
    responded_at = np.where(responded, touches["responded_at"].to_numpy(), _NAN)
    return pl.DataFrame(
        {
            "Id": ctx.new_ids("00v", touches.height),
            "CampaignId": campaigns.ids.gather(touches["campaign"]),
            "LeadId": _gather(leads.ids, np.where(after_conversion, -1, lead)),
            "ContactId": _gather(deals.contact_ids, deals.of_lead[lead]),
            "Status": np.where(responded, "Responded", "Sent"),
            "HasResponded": responded,
            "FirstRespondedDate": ctx.local_dates(responded_at),
            "CreatedDate": _datetimes(at),
            "LastModifiedDate": _datetimes(np.fmax(responded_at, at)),
            "IsDeleted": _false(touches.height),
        }
    )


# --- sales activities: Task and Event ---------------------------------------

_TASK_KINDS = pl.DataFrame(
    {
        "kind": ["list_email", "call", "email", "reminder"],
        "TaskSubtype": ["ListEmail", "Call", "Email", "Task"],
        "Type": ["Email", "Call", "Email", "Call"],
        "Subject": [
            "List Email: Thanks for your interest",
            "Call",
            "Email: Following up",
            "Follow up",
        ],
        "CallType": [None, "Outbound", None, None],
    }
)


def _call_or_email(rng: np.random.Generator, size: int, calls: float = 0.5):
    return np.where(rng.random(size) < calls, "call", "email")


def _automated_tasks(ctx: _Context, staff: _Staff, cycle: _Cycle) -> list[pl.DataFrame]:
    """Return the list e-mail minutes after a handoff and marketing's own follow-ups."""
    rng, count = ctx.rng, cycle.handoff_at.size
    lead = np.arange(count)
    routing = cycle.routing
    sent_at = _before_as_of(cycle.handoff_at + rng.uniform(60, 600, count))
    # Sent as the owner once a working rep has the lead, else as marketing.
    by_rep = (routing.routed_at <= sent_at) & ~routing.stale
    sender = np.where(by_rep, routing.owner_at(sent_at), staff.marketing[0])
    mailed = ~np.isnan(sent_at) & (rng.random(count) < 0.85) & cycle.is_handoff

    nudge_at = _before_as_of(cycle.handoff_at + rng.uniform(600, 4 * _HOUR, count))
    nudged = ~np.isnan(nudge_at) & (rng.random(count) < 0.06) & cycle.is_handoff
    marketer = rng.choice(staff.marketing, count)
    kind = _call_or_email(rng, count)
    return [
        _part(
            mailed, lead=lead, at=sent_at, owner=sender, kind="list_email", open=False
        ),
        _part(nudged, lead=lead, at=nudge_at, owner=marketer, kind=kind, open=False),
    ]


def _sales_tasks(ctx: _Context, cycle: _Cycle) -> list[pl.DataFrame]:
    """Return the first touch, follow-ups and open reminders of one cycle."""
    rng, count = ctx.rng, cycle.handoff_at.size
    lead = np.arange(count)
    routing = cycle.routing
    touched = ~np.isnan(cycle.touched_at)
    first_owner = cycle.owner_at(cycle.touched_at)
    first_kind = _call_or_email(rng, count, 0.55)

    plan_at = _before_as_of(routing.routed_at + rng.uniform(60, 1800, count))
    planned = ~np.isnan(plan_at) & (routing.owner >= 0) & (rng.random(count) < 0.2)

    per_lead = rng.poisson(np.where(cycle.decision == ACCEPTED, 2.4, 0.9)) * touched
    end = np.fmin(np.fmin(cycle.end_at, cycle.touched_at + 30 * _DAY), _AS_OF)
    rows, follow_at = _spread(rng, per_lead, cycle.touched_at, end)
    follow_ups = pl.DataFrame(
        {
            "lead": rows,
            "at": follow_at,
            "owner": cycle.owner_at(follow_at, rows),
            "kind": _call_or_email(rng, rows.size),
            "open": False,
        }
    )
    return [
        _part(
            touched,
            lead=lead,
            at=cycle.touched_at,
            owner=first_owner,
            kind=first_kind,
            open=False,
        ),
        _part(
            planned,
            lead=lead,
            at=plan_at,
            owner=routing.owner,
            kind="reminder",
            open=True,
        ),
        follow_ups,
    ]


def _deal_tasks(ctx: _Context, funnel: _Funnel, deals: _Deals) -> pl.DataFrame:
    rng = ctx.rng
    end = np.fmin(deals.close_at, _AS_OF)
    rows, at = _spread(rng, rng.poisson(3.0, deals.lead.size), deals.created, end)
    lead = deals.lead[rows]
    return pl.DataFrame(
        {
            "lead": lead,
            "at": at,
            "owner": funnel.converting_owner_at(at, lead),
            "kind": _call_or_email(rng, rows.size),
            "open": False,
        }
    )


@dataclass(frozen=True)
class _Links:
    """Record ids an activity of a lead names: after conversion, contact and deal.

    Lead conversion moves the lead's activities to its new contact, so the
    export shows them under the contact's id.
    """

    leads: _Leads
    deals: _Deals
    accounts: _Accounts
    converted_at: np.ndarray

    def who(self, lead: np.ndarray) -> pl.Series:
        contact = _gather(self.deals.contact_ids, self.deals.of_lead[lead])
        return contact.fill_null(self.leads.ids.gather(lead))

    def what(self, lead: np.ndarray, at: np.ndarray) -> pl.Series:
        deal = np.where(at >= self.converted_at[lead], self.deals.of_lead[lead], -1)
        return _gather(self.deals.opportunity_ids, deal)

    def account(self, lead: np.ndarray) -> pl.Series:
        converted = self.deals.of_lead[lead] >= 0
        account = np.where(converted, self.leads.account[lead], -1)
        return _gather(self.accounts.ids, account)


def _task_rows(
    ctx: _Context, staff: _Staff, funnel: _Funnel, deals: _Deals
) -> pl.DataFrame:
    """Return every task as (lead, at, owner, kind, open, logged), in logged order."""
    parts = []
    for cycle in funnel.cycles:
        parts += _automated_tasks(ctx, staff, cycle) + _sales_tasks(ctx, cycle)
    parts.append(_deal_tasks(ctx, funnel, deals))
    rows = pl.concat([p.with_columns(pl.col("owner").cast(pl.Int64)) for p in parts])

    # A completed task is logged a little after the call or e-mail it records.
    delay = ctx.rng.uniform(5, 90, rows.height)
    logged = rows["at"].to_numpy() + np.where(rows["open"].to_numpy(), 0.0, delay)
    return (
        rows.with_columns(logged=logged)
        .sort("logged", "lead")
        .join(_TASK_KINDS, on="kind", how="left", maintain_order="left")
    )


def _tasks(
    ctx: _Context, staff: _Staff, funnel: _Funnel, links: _Links
) -> pl.DataFrame:
    rows = _task_rows(ctx, staff, funnel, links.deals)
    lead, at = rows["lead"].to_numpy(), rows["at"].to_numpy()
    is_open = rows["open"].to_numpy()
    calls = (rows["kind"] == "call").to_numpy() & ~is_open
    duration = np.round(_lognormal(ctx.rng, 200, 0.7, rows.height))
    duration = pl.Series(np.where(calls, duration, _NAN), nan_to_null=True)
    owner = _gather(staff.ids, rows["owner"].to_numpy())
    logged_at = _datetimes(rows["logged"].to_numpy())

    return pl.DataFrame(
        {
            "Id": ctx.new_ids("00T", rows.height),
            "WhoId": links.who(lead),
            "WhatId": links.what(lead, at),
            "AccountId": links.account(lead),
            "OwnerId": owner,
            "Subject": rows["Subject"],
            "ActivityDate": ctx.local_dates(np.where(is_open, at + 2 * _DAY, at)),
            "Status": np.where(is_open, "Not Started", "Completed"),
            "Priority": pl.repeat("Normal", rows.height, eager=True),
            "IsClosed": ~is_open,
            "TaskSubtype": rows["TaskSubtype"],
            "Type": rows["Type"],
            "CallType": rows["CallType"],
            "CallDurationInSeconds": duration.cast(pl.Int64),
            "CompletedDateTime": _datetimes(np.where(is_open, _NAN, at)),
            "CreatedDate": logged_at,
            "CreatedById": owner,
            "LastModifiedDate": logged_at,
            "SystemModstamp": logged_at,
            "IsDeleted": _false(rows.height),
            "IsArchived": _false(rows.height),
        }
    )


def _meeting_starts(ctx: _Context, starts: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Return meeting starts: business hours after ``starts``, on the half hour."""
    later = ctx.business_later(starts, hours)
    return _before_as_of(np.floor(later / 1800) * 1800)


def _cycle_meetings(ctx: _Context, cycle: _Cycle) -> list[pl.DataFrame]:
    """Return discovery calls after a decision and demos after qualification."""
    rng, count = ctx.rng, cycle.handoff_at.size
    lead = np.arange(count)
    chance = np.select(
        [cycle.decision == ACCEPTED, cycle.decision == WORKING], [0.55, 0.25], 0.0
    )
    booked = np.where(rng.random(count) < chance, cycle.decided_at, _NAN)
    discovery = _meeting_starts(ctx, booked, rng.uniform(2, 20, count))
    demo_after = np.where(rng.random(count) < 0.8, cycle.qualified_at, _NAN)
    demo = _meeting_starts(ctx, demo_after, rng.uniform(1, 12, count))
    return [
        _part(
            ~np.isnan(discovery),
            lead=lead,
            start=discovery,
            booked=cycle.decided_at,
            owner=cycle.owner_at(discovery),
            subject="Discovery Call",
            minutes=30,
        ),
        _part(
            ~np.isnan(demo),
            lead=lead,
            start=demo,
            booked=cycle.qualified_at,
            owner=cycle.owner_at(demo),
            subject="Product Demo",
            minutes=60,
        ),
    ]


def _deal_meetings(ctx: _Context, funnel: _Funnel, deals: _Deals) -> pl.DataFrame:
    rng = ctx.rng
    end = np.fmin(deals.close_at, _AS_OF)
    rows, at = _spread(rng, rng.poisson(1.2, deals.lead.size), deals.created, end)
    start = _meeting_starts(ctx, at, rng.uniform(0.5, 4, rows.size))
    lead = deals.lead[rows]
    return _part(
        ~np.isnan(start),
        lead=lead,
        start=start,
        booked=deals.created[rows],
        owner=funnel.converting_owner_at(start, lead),
        subject="Proposal Review",
        minutes=60,
    )


def _events(
    ctx: _Context, staff: _Staff, funnel: _Funnel, links: _Links
) -> pl.DataFrame:
    parts = [part for cycle in funnel.cycles for part in _cycle_meetings(ctx, cycle)]
    parts.append(_deal_meetings(ctx, funnel, links.deals))
    rows = pl.concat([p.with_columns(pl.col("owner").cast(pl.Int64)) for p in parts])
    rows = rows.sort("start", "lead")
    lead, start = rows["lead"].to_numpy(), rows["start"].to_numpy()
    booked = rows["booked"].to_numpy()
    created = np.fmax(booked + 0.25 * (start - booked), start - 3 * _DAY)
    minutes = rows["minutes"].to_numpy()
    owner = _gather(staff.ids, rows["owner"].to_numpy())
    return pl.DataFrame(
        {
            "Id": ctx.new_ids("00U", rows.height),
            "WhoId": links.who(lead),
            "WhatId": links.what(lead, start),
            "AccountId": links.account(lead),
            "OwnerId": owner,
            "Subject": rows["subject"],
            "StartDateTime": _datetimes(start),
            "EndDateTime": _datetimes(start + minutes * 60.0),
            "ActivityDateTime": _datetimes(start),
            "ActivityDate": ctx.local_dates(start),
            "DurationInMinutes": minutes,
            "Type": pl.repeat("Meeting", rows.height, eager=True),
            "EventSubtype": pl.repeat("Event", rows.height, eager=True),
            "IsAllDayEvent": _false(rows.height),
            "CreatedDate": _datetimes(created),
            "CreatedById": owner,
            "SystemModstamp": _datetimes(created),
            "IsDeleted": _false(rows.height),
        }
    )


# --- record frames ----------------------------------------------------------

_JOB_TITLES = (
    "VP Marketing",
    "Director of Demand Generation",
    "Head of Revenue Operations",
    "Sales Operations Manager",
    "Chief Revenue Officer",
    "Marketing Operations Manager",
    "VP Sales",
    "Growth Lead",
    "Chief Financial Officer",
    "Business Analyst",
)


def _people(rng: np.random.Generator, count: int) -> pl.DataFrame:
    """Return obviously synthetic personal columns, one row per lead.

    Phone numbers use the 555-0100 to 555-0199 range reserved for fiction.
    """
    number = np.arange(1, count + 1)
    text = pl.Series(number).cast(pl.String).str.zfill(max(5, len(str(count))))
    area = pl.Series(200 + (number // 100) % 800).cast(pl.String)
    line = pl.Series(number % 100).cast(pl.String).str.zfill(2)
    return pl.DataFrame(
        {
            "FirstName": "First" + text,
            "LastName": "Last" + text,
            "Name": "First" + text + " Last" + text,
            "Title": np.array(_JOB_TITLES)[rng.integers(0, len(_JOB_TITLES), count)],
            "Email": "lead" + text + "@example.com",
            "Phone": "(" + area + ") 555-01" + line,
        }
    )


def _final_owner(funnel: _Funnel, staff: _Staff, count: int) -> np.ndarray:
    """Return each lead's owner at the as-of time (the queue when not with a rep)."""
    owner = np.full(count, staff.queue)
    as_of = np.full(count, _AS_OF)
    for cycle in funnel.cycles:
        open_owner = np.where(
            np.isnan(cycle.converted_at),
            cycle.owner_at(as_of),
            cycle.owner_at(cycle.converted_at),
        )
        current = np.where(np.isnan(cycle.recycled_at), open_owner, staff.queue)
        owner = np.where(cycle.routing.owner >= 0, current, owner)
    return owner


def _lead_scores(rng: np.random.Generator, leads: _Leads, funnel: _Funnel) -> pl.Series:
    """Return Lead_Score__c: high for MQLs, blank on some leads, most often outbound."""
    count = leads.count
    handed = ~np.isnan(funnel.first.handoff_at)
    score = np.where(handed, rng.normal(74, 10, count), rng.normal(36, 15, count))
    unscored = rng.random(count) < np.where(leads.outbound, 0.5, 0.12)
    score = np.where(unscored, _NAN, np.clip(np.round(score), 1, 99))
    return pl.Series(score, nan_to_null=True).cast(pl.Int64)


@dataclass(frozen=True)
class _LeadInputs:
    leads: _Leads
    funnel: _Funnel
    staff: _Staff
    links: _Links
    people: pl.DataFrame
    history: pl.DataFrame
    final_status: np.ndarray
    sources: pl.Series


def _lead_frame(ctx: _Context, inputs: _LeadInputs) -> pl.DataFrame:
    leads, funnel, links = inputs.leads, inputs.funnel, inputs.links
    count = leads.count
    first, second = funnel.first, funnel.second
    # The field keeps the reason of the latest rejection that had one.
    reason = np.where(second.reason >= 0, second.reason, first.reason)
    deal = links.deals.of_lead
    by_lead = inputs.history.group_by("_lead").agg(pl.col("_at").max()).sort("_lead")
    modified = _datetimes(by_lead["_at"].to_numpy())
    accounts = links.accounts
    people = inputs.people
    return pl.DataFrame(
        {
            "Id": leads.ids,
            "IsDeleted": _false(count),
            "MasterRecordId": pl.repeat(None, count, dtype=pl.String, eager=True),
            "FirstName": people["FirstName"],
            "LastName": people["LastName"],
            "Name": people["Name"],
            "Title": people["Title"],
            "Company": accounts.names.gather(leads.account),
            "Email": people["Email"],
            "Phone": people["Phone"],
            "LeadSource": inputs.sources,
            "Status": pl.Series(_STATUSES).gather(inputs.final_status),
            "Industry": np.array(_INDUSTRIES)[accounts.industry[leads.account]],
            "OwnerId": _gather(
                inputs.staff.ids, _final_owner(funnel, inputs.staff, count)
            ),
            "IsConverted": deal >= 0,
            "ConvertedDate": ctx.local_dates(funnel.converted_at),
            "ConvertedAccountId": links.account(np.arange(count)),
            "ConvertedContactId": _gather(links.deals.contact_ids, deal),
            "ConvertedOpportunityId": _gather(links.deals.opportunity_ids, deal),
            "CreatedDate": _datetimes(leads.created),
            "CreatedById": _gather(
                inputs.staff.ids, _creators(funnel, inputs.staff, leads)
            ),
            "LastModifiedDate": modified,
            "SystemModstamp": modified,
            "Lead_Score__c": _lead_scores(ctx.rng, leads, funnel),
            "Rejection_Reason__c": _gather(pl.Series(_REASONS), reason),
        }
    )


def _opportunity_frame(
    ctx: _Context, inputs: _LeadInputs, deal_campaign: pl.Series, last_change: pl.Series
) -> pl.DataFrame:
    deals, accounts, staff = inputs.links.deals, inputs.links.accounts, inputs.staff
    count = deals.lead.size
    as_of = np.full(count, _AS_OF)
    owner_now = inputs.funnel.converting_owner_at(as_of, deals.lead)
    converter = inputs.funnel.converting_owner_at(deals.created, deals.lead)
    open_stage = np.array(_OPEN_STAGES)[deals.stages - 1]
    closed_stage = np.where(deals.won, "Closed Won", "Closed Lost")
    stage = pl.DataFrame({"stage": np.where(deals.closed, closed_stage, open_stage)})
    facts = stage.join(_STAGE_FACTS, on="stage", how="left", maintain_order="left")
    account = inputs.leads.account[deals.lead]
    return pl.DataFrame(
        {
            "Id": deals.opportunity_ids,
            "IsDeleted": _false(count),
            "AccountId": accounts.ids.gather(account),
            "Name": accounts.names.gather(account) + " - New Business",
            "Type": pl.repeat("New Business", count, eager=True),
            "StageName": facts["stage"],
            "Amount": deals.amount.astype(np.int64),
            "Probability": facts["Probability"],
            "CloseDate": ctx.local_dates(deals.close_at),
            "IsClosed": deals.closed,
            "IsWon": deals.won,
            "ForecastCategoryName": facts["ForecastCategory"],
            "LeadSource": inputs.sources.gather(deals.lead),
            "CampaignId": deal_campaign,
            "OwnerId": _gather(staff.ids, owner_now),
            "CreatedDate": _datetimes(deals.created),
            "CreatedById": _gather(staff.ids, converter),
            "LastModifiedDate": last_change,
        }
    )


def _deal_frames(
    ctx: _Context, inputs: _LeadInputs, deal_campaign: pl.Series
) -> dict[str, pl.DataFrame]:
    """Return the Opportunity, OpportunityHistory, Contact and role frames."""
    deals, accounts, staff = inputs.links.deals, inputs.links.accounts, inputs.staff
    count = deals.lead.size
    converter = inputs.funnel.converting_owner_at(deals.created, deals.lead)
    history = _opportunity_history(ctx, deals, staff, converter)
    last_change = pl.DataFrame({"Id": deals.opportunity_ids}).join(
        history.group_by("OpportunityId").agg(pl.col("CreatedDate").max()),
        left_on="Id",
        right_on="OpportunityId",
        how="left",
        maintain_order="left",
    )["CreatedDate"]
    person = inputs.people[deals.lead]
    contacts = pl.DataFrame(
        {
            "Id": deals.contact_ids,
            "IsDeleted": _false(count),
            "AccountId": accounts.ids.gather(inputs.leads.account[deals.lead]),
            "FirstName": person["FirstName"],
            "LastName": person["LastName"],
            "Name": person["Name"],
            "Title": person["Title"],
            "Email": person["Email"],
            "Phone": person["Phone"],
            "LeadSource": inputs.sources.gather(deals.lead),
            "OwnerId": _gather(staff.ids, converter),
            "CreatedDate": _datetimes(deals.created),
            "SystemModstamp": _datetimes(deals.created),
        }
    )
    roles = np.array(["Decision Maker", "Economic Buyer", "Evaluator"])
    contact_roles = pl.DataFrame(
        {
            "Id": ctx.new_ids("00K", count),
            "OpportunityId": deals.opportunity_ids,
            "ContactId": deals.contact_ids,
            "Role": roles[ctx.rng.integers(0, roles.size, count)],
            "IsPrimary": pl.repeat(True, count, eager=True),
            "CreatedDate": _datetimes(deals.created),
            "IsDeleted": _false(count),
        }
    )
    return {
        "Opportunity": _opportunity_frame(ctx, inputs, deal_campaign, last_change),
        "OpportunityHistory": history,
        "Contact": contacts,
        "OpportunityContactRole": contact_roles,
    }


def _account_frame(
    ctx: _Context, staff: _Staff, accounts: _Accounts, links: _Links
) -> pl.DataFrame:
    rng = ctx.rng
    count = accounts.is_target.size
    deals = links.deals
    customer = np.zeros(count, bool)
    customer[links.leads.account[deals.lead[deals.won]]] = True
    size = _lognormal(rng, 300, 1.0, count) * np.where(accounts.is_target, 3, 1)
    employees = np.maximum(np.round(size), 5).astype(np.int64)
    owner = staff.pick(rng, np.full(count, _AS_OF), routing=False)
    modified = _datetimes(accounts.created + 30 * _DAY)
    return pl.DataFrame(
        {
            "Id": accounts.ids,
            "IsDeleted": _false(count),
            "Name": accounts.names,
            "Type": np.where(customer, "Customer", "Prospect"),
            "Industry": np.array(_INDUSTRIES)[accounts.industry],
            "NumberOfEmployees": employees,
            "AnnualRevenue": employees * 150_000,
            "BillingCountry": np.array(_COUNTRIES)[
                rng.integers(0, len(_COUNTRIES), count)
            ],
            "OwnerId": _gather(staff.ids, owner),
            "Target_Account__c": accounts.is_target,
            "CreatedDate": _datetimes(accounts.created),
            "LastModifiedDate": modified,
            "SystemModstamp": modified,
        }
    )


# --- survey -----------------------------------------------------------------

# Ratings in SURVEY_COLUMNS order; None is an unanswered question. Marketing
# rates attribution 1.6 points above sales, and every team rates the lead
# handoff well above what the demo's data shows (a SAL rate below 60%).
_SURVEY = (
    ("r01", "sales", "2025-10-20", 3, 4, 3, 2, 2),
    ("r02", "sales", "2025-10-20", 2, 3, 3, 2, 3),
    ("r03", "sales", "2025-10-21", 3, 4, None, 3, 2),
    ("r04", "sales", "2025-10-22", 3, 3, 3, 2, 2),
    ("r05", "sales", "2025-10-23", 2, 4, 2, 2, 3),
    ("r06", "marketing", "2025-10-20", 4, 4, 3, 4, 3),
    ("r07", "marketing", "2025-10-21", 3, 5, 4, 4, 3),
    ("r08", "marketing", "2025-10-21", 4, 4, 3, 3, 4),
    ("r09", "marketing", "2025-10-22", 3, 4, 3, 4, 3),
    ("r10", "marketing", "2025-10-24", 3, None, 3, 4, 3),
    ("r11", "leadership", "2025-10-27", 3, 4, 3, 3, 3),
    ("r12", "leadership", "2025-10-28", 2, 4, 2, 3, 2),
)
_EVIDENCE = {
    "r01": "New MQLs arrive with a score and a source.",
    "r03": "We try to call every new lead within the hour.",
    "r05": "Many MQLs are students or have bad contact data.",
    "r06": "The MQL definition is written in the team wiki.",
    "r08": "A monthly report shows sourced and influenced pipeline.",
    "r10": "Routing rules assign every MQL within minutes.",
    "r11": "Quarterly planning includes both teams.",
}


def survey_frame() -> pl.DataFrame:
    """Return the demo survey: twelve respondents from sales, marketing, leadership."""
    columns = list(zip(*_SURVEY, strict=True))
    data = dict(zip(SURVEY_COLUMNS, map(list, columns), strict=False))
    data["evidence"] = [_EVIDENCE.get(row[0]) for row in _SURVEY]
    ratings = {name: pl.Int64 for name in SURVEY_COLUMNS[3:8]}
    return pl.DataFrame(data, schema_overrides=ratings)


# --- writing ----------------------------------------------------------------

_TIMESTAMP = "%Y-%m-%dT%H:%M:%S%.3f+0000"


def _export_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Return ``frame`` as the text an export holds, without ``_`` helper columns."""
    columns = []
    for name, dtype in frame.schema.items():
        if name.startswith("_"):
            continue
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            column = column.dt.strftime(_TIMESTAMP)
        elif dtype == pl.Date:
            column = column.dt.strftime("%Y-%m-%d")
        elif dtype == pl.Boolean:
            column = pl.when(column).then(pl.lit("TRUE")).otherwise(pl.lit("FALSE"))
        columns.append(column.cast(pl.String).alias(name))
    return frame.select(columns)


@dataclass(frozen=True)
class DemoOrg:
    """A written demo export.

    ``paths`` and ``counts`` map each object API name, and ``survey``, to its
    file and number of rows. ``config_path`` is a copy of the demo org config
    beside the CSVs that also names the survey, so ``revalign score --source
    salesforce-export --path FOLDER --config FOLDER/revalign.yaml`` scores it.
    """

    folder: Path
    as_of: dt.datetime
    config_path: Path
    survey_path: Path
    paths: dict[str, Path]
    counts: dict[str, int]


def _write(folder: Path, frames: dict[str, pl.DataFrame]) -> DemoOrg:
    """Write the CSV files, the survey and the config; raise InputError on failure."""
    try:
        return _write_files(folder, frames)
    except OSError as exc:
        msg = (
            f"cannot write the demo export to {str(folder)!r}: {exc.strerror}; "
            f"choose a folder you can write to"
        )
        raise InputError(msg) from None


def _write_files(folder: Path, frames: dict[str, pl.DataFrame]) -> DemoOrg:
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    counts: dict[str, int] = {}
    for name, frame in frames.items():
        paths[name] = folder / f"{name}.csv"
        counts[name] = frame.height
        # Every field is quoted, empty ones too, so the reader meets quoted fields.
        _export_text(frame).write_csv(paths[name], quote_style="always")
    survey = survey_frame()
    paths["survey"] = folder / "survey.csv"
    counts["survey"] = survey.height
    survey.write_csv(paths["survey"])
    config_path = folder / "revalign.yaml"
    config_path.write_text(
        DEMO_CONFIG.read_text(encoding="utf-8")
        + "\n# Written by `revalign demo`: the survey beside this export.\n"
        + "survey: survey.csv\n",
        encoding="utf-8",
    )
    return DemoOrg(folder, DEMO_AS_OF, config_path, paths["survey"], paths, counts)


def generate_demo(folder: Path, *, leads: int = 5000, seed: int = 7) -> DemoOrg:
    """Write the demo company into ``folder`` as a Salesforce export and return it.

    ``leads`` sets the number of Lead records; accounts, campaign members,
    activities and deals scale with it. The same ``leads`` and ``seed`` write
    byte-identical files. Files of the same names in ``folder`` are replaced.
    Raises :class:`InputError` when ``leads`` is below 1 or the folder cannot be
    written.
    """
    if leads < 1:
        msg = f"invalid number of demo leads {leads!r}; pass 1 or more"
        raise InputError(msg)
    ctx = _Context.create(seed)
    staff = _staff(ctx)
    accounts = _accounts(ctx, leads)
    campaigns = _campaigns(ctx, staff)
    lead_table = _leads(ctx, leads, accounts, campaigns)
    funnel = _funnel(ctx, staff, lead_table)
    deals = _deals(ctx, lead_table, funnel)
    links = _Links(lead_table, deals, accounts, funnel.converted_at)

    history, final_status = _lead_history(ctx, funnel, staff, lead_table)
    members = _members(ctx, lead_table, funnel, campaigns, deals)
    inputs = _LeadInputs(
        lead_table,
        funnel,
        staff,
        links,
        _people(ctx.rng, leads),
        history,
        final_status,
        members.lead_source,
    )
    frames = {
        "User": staff.frame,
        "Account": _account_frame(ctx, staff, accounts, links),
        "Campaign": campaigns.frame,
        "Lead": _lead_frame(ctx, inputs),
        "LeadHistory": history,
        "CampaignMember": members.frame,
        "Task": _tasks(ctx, staff, funnel, links),
        "Event": _events(ctx, staff, funnel, links),
        **_deal_frames(ctx, inputs, members.deal_campaign),
    }
    demo = _write(folder, frames)
    logger.info("wrote the demo export to %s: %d leads, seed %d", folder, leads, seed)
    return demo
