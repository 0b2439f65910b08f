"""Handoff facts and metrics on small hand-built tables and on the clock-rule case."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from config.models import CalendarConfig, OrgConfig, SlaConfig, load_config
from connectors.salesforce_export import read_export
from connectors.schema import CanonicalTables, conform
from metrics.handoff_metrics import handoff_metrics
from metrics.handoffs import build_handoffs
from tests.conftest import CASES_DIR

UTC = dt.UTC
CONFIG = OrgConfig(
    calendar=CalendarConfig(time_zone="America/New_York", holiday_country="US"),
    sla=SlaConfig(speed_to_lead_hours=4),
)


def at(day: int, hour: int, minute: int = 0, month: int = 7) -> dt.datetime:
    return dt.datetime(2025, month, day, hour, minute, tzinfo=UTC)


def tables(
    stages: list[tuple[str, str, dt.datetime]],
    activities: list[tuple[str, str, dt.datetime]] = (),
    *,
    kinds: dict[int, str] | None = None,
) -> CanonicalTables:
    """Build tables: stage events (lead, stage, at) and completed sales calls."""
    kinds = kinds or {}
    users = pl.DataFrame(
        {"user_id": ["S1", "S2", "M1"], "team": ["sales", "sales", "marketing"], "is_active": [True, True, True]}
    )
    return CanonicalTables(
        tables={
            "leads": conform("leads", pl.DataFrame({"lead_id": sorted({s[0] for s in stages}), "owner_id": "S1"})),
            "stage_events": conform(
                "stage_events",
                pl.DataFrame(stages, schema=["lead_id", "stage", "entered_at"], orient="row"),
            ),
            "activities": conform(
                "activities",
                pl.DataFrame(
                    [(f"T{i}", lead, owner, when, kinds.get(i, "call"), False, True) for i, (lead, owner, when) in enumerate(activities)],
                    schema=["activity_id", "lead_id", "owner_id", "occurred_at", "kind", "is_automated", "is_completed"],
                    orient="row",
                ),
            ),
            "users": conform("users", users),
        },
        missing={"owner_events": "not in this test"},
    )


def test_first_touch_belongs_to_window_before_next_handoff() -> None:
    data = tables(
        [("L1", "mql", at(7, 14)), ("L1", "recycled", at(8, 14)), ("L1", "mql", at(21, 14))],
        [("L1", "S1", at(22, 15))],
    )
    handoffs = build_handoffs(data, CONFIG, at(31, 0))
    assert handoffs["handoff_number"].to_list() == [1, 2]
    assert handoffs["first_touch_at"].to_list() == [None, at(22, 15)]
    # Monday 10:00 EDT to Tuesday 11:00 EDT: 7 hours Monday and 2 hours Tuesday.
    assert handoffs["business_hours"].to_list() == [None, 9.0]


def test_marketing_touch_is_not_sales_touch() -> None:
    data = tables([("L1", "mql", at(7, 14))], [("L1", "M1", at(7, 14, 30)), ("L1", "S2", at(7, 16))])
    handoffs = build_handoffs(data, CONFIG, at(31, 0))
    assert handoffs["first_touch_at"].to_list() == [at(7, 16)]
    assert handoffs["business_hours"].to_list() == [2.0]


def test_touch_kind_outside_config_is_ignored() -> None:
    data = tables(
        [("L1", "mql", at(7, 14))],
        [("L1", "S1", at(7, 14, 30)), ("L1", "S1", at(7, 15))],
        kinds={0: "task"},
    )
    handoffs = build_handoffs(data, CONFIG, at(31, 0))
    assert handoffs["first_touch_at"].to_list() == [at(7, 15)]


def test_touch_before_handoff_does_not_count() -> None:
    data = tables([("L1", "mql", at(7, 14))], [("L1", "S1", at(7, 13))])
    handoffs = build_handoffs(data, CONFIG, at(31, 0))
    assert handoffs["first_touch_at"].to_list() == [None]
    assert handoffs["sla_status"].to_list() == ["breached"]


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        pytest.param(at(7, 18), "not_due", id="inside-deadline"),
        pytest.param(at(8, 14), "breached", id="past-deadline"),
    ],
)
def test_untouched_handoff_sla_status(as_of: dt.datetime, status: str) -> None:
    # Handoff Monday 10:00 EDT; 4 business hours run out at 14:00 EDT (18:00 UTC).
    handoffs = build_handoffs(tables([("L1", "mql", at(7, 14))]), CONFIG, as_of)
    assert handoffs["sla_status"].to_list() == [status]
    assert handoffs["sla_deadline"].to_list() == [at(7, 18)]


def test_sal_rate_counts_only_mature_handoffs() -> None:
    stages = [
        ("A", "mql", at(1, 14)), ("A", "sal", at(2, 14)),
        ("B", "mql", at(1, 15)), ("B", "rejected", at(2, 15)),
        ("C", "mql", at(1, 16)), ("C", "opportunity", at(3, 16)),
        ("D", "mql", at(1, 17)),
        ("E", "mql", at(20, 14)), ("E", "sal", at(21, 14)),
    ]  # fmt: skip
    data = tables(stages)
    metrics = handoff_metrics(build_handoffs(data, CONFIG, at(25, 0)), data, CONFIG)
    assert metrics["sal_rate"].value == 0.5
    assert metrics["sal_rate"].population == 4
    assert metrics["decided_share"].value == 0.75
    assert metrics["undecided_share"].value == 0.25
    assert metrics["sal_rate"].details["recent_handoffs"] == 1


@pytest.mark.parametrize(
    ("key", "counts"),
    [
        pytest.param("sal_rate", "2 of 4 {} accepted by sales", id="sal"),
        pytest.param(
            "decided_share", "3 of 4 {} decided (2 accepted, 1 rejected)", id="decided"
        ),
        pytest.param("undecided_share", "1 of 4 {} with no decision", id="undecided"),
    ],
)
def test_sal_notes_count_decisions(key: str, counts: str) -> None:
    stages = [
        ("A", "mql", at(1, 14)), ("A", "sal", at(2, 14)),
        ("B", "mql", at(1, 15)), ("B", "rejected", at(2, 15)),
        ("C", "mql", at(1, 16)), ("C", "opportunity", at(3, 16)),
        ("D", "mql", at(1, 17)),
        ("E", "mql", at(20, 14)), ("E", "sal", at(21, 14)),
    ]  # fmt: skip
    data = tables(stages)
    metrics = handoff_metrics(build_handoffs(data, CONFIG, at(25, 0)), data, CONFIG)
    expected = counts.format("handoffs older than 14 days")
    assert metrics[key].note == f"{expected}; 1 more recent left out"


def test_untouched_and_routing_notes() -> None:
    data = tables(
        [("L1", "mql", at(7, 14)), ("L2", "mql", at(7, 15))], [("L1", "S1", at(7, 16))]
    )
    data.tables["leads"] = conform(
        "leads", pl.DataFrame({"lead_id": ["L1", "L2"], "owner_id": ["S1", "M1"]})
    )
    metrics = handoff_metrics(build_handoffs(data, CONFIG, at(31, 0)), data, CONFIG)
    assert metrics["untouched_share"].value == 0.5
    assert metrics["untouched_share"].note == (
        "1 of 2 handoffs with no human sales touch"
    )
    assert metrics["routing_failure_rate"].value == 0.5
    assert metrics["routing_failure_rate"].note == (
        "1 of 2 handoffs not routed to an active sales owner within 1 h; no owner "
        "history, so the current owner stands in for the owner at handoff"
    )


def test_speed_metrics_not_measurable_without_activities() -> None:
    data = tables([("L1", "mql", at(7, 14))])
    data.missing["activities"] = "no Task or Event file, so no sales activities"
    metrics = handoff_metrics(build_handoffs(data, CONFIG, at(31, 0)), data, CONFIG)
    for key in ("speed_to_lead_median_business_hours", "sla_breach_rate", "untouched_share"):
        assert metrics[key].value is None
        assert metrics[key].note == "no Task or Event file, so no sales activities"


def test_clock_rule_case_per_handoff() -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    config = load_config(folder / "revalign.yaml")
    handoffs = build_handoffs(read_export(folder, config), config, at(15, 0))
    rows = {row["lead_id"][-4:-2]: row for row in handoffs.iter_rows(named=True)}
    assert rows["L1"]["business_hours"] == 1.25
    assert rows["L1"]["calendar_hours"] == 64.25
    assert rows["L2"]["business_hours"] == 4.0
    assert rows["L2"]["sla_status"] == "on_time"
    assert rows["L3"]["business_hours"] == 5.5
    assert rows["L3"]["first_touch_at"] == at(8, 19, 30)
    assert rows["L4"]["sla_status"] == "breached"
    assert rows["L5"]["sla_status"] == "not_due"
    assert rows["L5"]["sla_deadline"] == at(15, 16, 30)
    assert rows["L6"]["routing_failed"] is True
    assert rows["L6"]["routed_owner_id"] == "0055g00000RepS3AAA"


@pytest.mark.parametrize(
    ("handoff_day", "failed"),
    [
        pytest.param(7, False, id="before-deactivation"),
        pytest.param(14, True, id="after-deactivation"),
    ],
)
def test_routing_to_rep_deactivated_later(handoff_day: int, failed: bool) -> None:
    data = tables([("L1", "mql", at(handoff_day, 14))])
    data.tables["users"] = conform(
        "users",
        pl.DataFrame(
            {
                "user_id": ["S1"],
                "team": ["sales"],
                "is_active": [False],
                "deactivated_at": [at(10, 12)],
            }
        ),
    )
    handoffs = build_handoffs(data, CONFIG, at(31, 0))
    assert handoffs["routing_failed"].to_list() == [failed]


def test_handoff_number_per_lead() -> None:
    stages = [
        ("L2", "mql", at(9, 14)), ("L1", "mql", at(7, 14)), ("L1", "mql", at(21, 14)),
        ("L2", "mql", at(1, 14)), ("L2", "mql", at(4, 14)), ("L3", "mql", at(2, 14)),
    ]  # fmt: skip
    handoffs = build_handoffs(tables(stages), CONFIG, at(31, 0))
    handoffs = handoffs.sort("lead_id", "handoff_at")
    assert handoffs["handoff_number"].to_list() == [1, 2, 1, 2, 3, 1]
    assert handoffs["handoff_number"].dtype == pl.UInt32


def test_rejection_reason_earliest_in_window() -> None:
    data = tables([("L1", "mql", at(7, 14))])
    data.tables["stage_events"] = conform(
        "stage_events",
        pl.DataFrame(
            {
                "lead_id": ["L1", "L1", "L1", "L1"],
                "stage": ["mql", "recycled", "rejected", "sal"],
                "entered_at": [at(7, 14), at(9, 14), at(8, 14), at(10, 14)],
                "reason": [None, "Not ICP", "No budget", "Ignored"],
            }
        ),
    )
    handoff = build_handoffs(data, CONFIG, at(31, 0)).row(0, named=True)
    assert handoff["decision"] == "rejected"
    assert handoff["reason"] == "No budget"
    assert handoff["has_reason"] is True
    assert handoff["recycled"] is True


def test_handoff_without_rejection_follow_up() -> None:
    data = tables([("L1", "mql", at(7, 14)), ("L1", "sal", at(8, 14))])
    handoff = build_handoffs(data, CONFIG, at(31, 0)).row(0, named=True)
    assert handoff["reason"] is None
    assert handoff["has_reason"] is False
    assert handoff["recycled"] is False


@pytest.mark.parametrize(
    ("owner_zone", "lead_zone", "hours"),
    [
        pytest.param(None, None, 3.0, id="org-new-york"),
        pytest.param("America/Los_Angeles", None, 1.0, id="owner-los-angeles"),
        pytest.param(None, "America/Los_Angeles", 1.0, id="lead-los-angeles"),
        pytest.param("America/New_York", "America/Los_Angeles", 3.0, id="owner-before-lead"),
    ],
)
def test_clock_runs_in_owner_then_lead_zone(
    owner_zone: str | None, lead_zone: str | None, hours: float
) -> None:
    # Handoff Monday 14:00 UTC: 10:00 in New York, 07:00 in Los Angeles (before
    # opening). The touch at 17:00 UTC is 13:00 and 10:00 there.
    data = tables([("L1", "mql", at(7, 14))], [("L1", "S1", at(7, 17))])
    data.tables["users"] = data["users"].with_columns(
        time_zone=pl.when(pl.col("user_id") == "S1").then(pl.lit(owner_zone, pl.String))
    )
    data.tables["leads"] = data["leads"].with_columns(time_zone=pl.lit(lead_zone, pl.String))
    handoffs = build_handoffs(data, CONFIG, at(31, 0))
    assert handoffs["business_hours"].to_list() == [hours]
