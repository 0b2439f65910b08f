"""Attribution: coverage, sourced and influenced pipeline, and model credit."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.models import AttributionConfig, OrgConfig
from metrics.attribution import MODELS, attribution_metrics, touch_credits
from tests.canonical import AS_OF, at, context, tables


def _touch(touch_id, when, channel, campaign, lead=None, account=None):
    return {
        "touch_id": touch_id, "touched_at": when, "channel": channel,
        "campaign_id": campaign, "lead_id": lead, "account_id": account,
    }  # fmt: skip


def _data():
    return tables(
        leads=[
            {"lead_id": "L1", "created_at": at(2024, 1, 6), "account_id": "A1"},
            {"lead_id": "L2", "created_at": at(2024, 2, 1), "account_id": "A2"},
            {"lead_id": "L4", "created_at": at(2024, 3, 1), "account_id": "A4"},
            {"lead_id": "L5", "created_at": at(2024, 3, 1), "account_id": "A5"},
        ],
        opportunities=[
            {"opportunity_id": "O1", "account_id": "A1", "lead_ids": ["L1"],
             "created_at": at(2024, 1, 20), "amount": 1000.0},
            {"opportunity_id": "O2", "account_id": "A2", "lead_ids": ["L2"],
             "created_at": at(2024, 2, 10), "amount": 0.0},
            {"opportunity_id": "O3", "account_id": "A3", "lead_ids": [],
             "created_at": at(2024, 3, 1), "amount": 500.0},
            {"opportunity_id": "O4", "account_id": "A4", "lead_ids": ["L4"],
             "created_at": at(2024, 3, 10), "amount": 500.0, "is_closed": False},
            {"opportunity_id": "O5", "account_id": "A5", "lead_ids": ["L5"],
             "created_at": at(2024, 3, 10), "amount": 1000.0, "is_closed": True,
             "close_date": dt.date(2024, 3, 12)},
        ],
        touches=[
            _touch("T1", at(2023, 12, 30), "Paid Search", "C1", lead="L1"),
            _touch("T2", at(2024, 1, 6), "Webinar", "C2", lead="L1"),
            _touch("T3", at(2024, 1, 13), "Email", "C3", lead="L1"),
            _touch("T4", at(2024, 1, 20), "Webinar", "C2", lead="L1"),
            _touch("T5", at(2024, 1, 25), "Email", "C3", lead="L1"),
            _touch("T6", at(2024, 2, 5), "Event", "C4", lead="L2"),
            _touch("T7", at(2024, 2, 20), "Event", "C4", lead="C9", account="A3"),
            _touch("T8", at(2024, 3, 15), "Email", "C3", lead="L4"),
            _touch("T9", at(2024, 3, 15), "Email", "C3", lead="L5"),
        ],
        campaigns=[{"campaign_id": "C1", "name": "Search"}],
    )  # fmt: skip


@pytest.fixture(scope="module")
def credits():
    frame = touch_credits(_data(), AS_OF, half_life_days=7.0)
    return {row["touch_id"]: row for row in frame.iter_rows(named=True)}


@pytest.fixture(scope="module")
def metrics():
    return attribution_metrics(context(_data()))


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        pytest.param("first_touch", [1000, 0, 0, 0], id="first"),
        pytest.param("last_touch", [0, 0, 0, 1000], id="last"),
        pytest.param("linear", [250, 250, 250, 250], id="linear"),
        # T1 is the first touch, T2 the last one at or before the lead's creation.
        pytest.param("u_shaped", [400, 400, 100, 100], id="u-shaped"),
        # T4, at the opportunity's creation, is the opportunity-creation touch.
        pytest.param("w_shaped", [300, 300, 100, 300], id="w-shaped"),
        # Ages 21, 14, 7 and 0 days: weights 1/8, 1/4, 1/2, 1 over 15/8.
        pytest.param(
            "time_decay", [1000 / 15, 2000 / 15, 4000 / 15, 8000 / 15], id="time-decay"
        ),
    ],
)
def test_credits_per_model(credits, model, expected):
    got = [credits[t][f"{model}_credit"] for t in ("T1", "T2", "T3", "T4")]
    assert got == pytest.approx(expected)


def test_credits_touch_after_creation_excluded(credits):
    assert "T5" not in credits


def test_credits_zero_amount(credits):
    assert credits["T6"]["linear"] == 1.0
    assert credits["T6"]["linear_credit"] == 0.0


def test_credits_account_only_touch(credits):
    assert credits["T7"]["u_shaped_credit"] == 500.0
    assert credits["T7"]["w_shaped_credit"] == 500.0


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("attribution_coverage_share", 3 / 5, id="coverage"),
        pytest.param("multi_touch_coverage_share", 1 / 5, id="multi-touch"),
        pytest.param("attribution_amount_coverage_share", 1500 / 3000, id="amount"),
        # O5's only touch came after its close date.
        pytest.param("influenced_pipeline_share", 2000 / 3000, id="influenced"),
        # Only O1 had a touch before its lead was created.
        pytest.param("sourced_pipeline_share", 1000 / 3000, id="sourced"),
    ],
)
def test_attribution_shares(metrics, key, value):
    assert metrics[key].value == pytest.approx(value)
    assert metrics[key].population == 5


def test_attribution_credit_by_channel(metrics):
    by_channel = metrics["attribution_coverage_share"].details["credit"]["by_channel"]
    linear = [(r["channel"], r["credit"]) for r in by_channel if r["model"] == "linear"]
    assert linear == [
        ("Event", 500.0), ("Webinar", 500.0), ("Email", 250.0), ("Paid Search", 250.0)
    ]  # fmt: skip


def test_attribution_credit_by_campaign(metrics):
    by_campaign = metrics["attribution_coverage_share"].details["credit"]["by_campaign"]
    first = [r for r in by_campaign if r["model"] == "first_touch"][0]
    assert first == {
        "campaign_id": "C1",
        "name": "Search",
        "model": "first_touch",
        "credit": 1000.0,
    }


def test_attribution_missing_touches():
    data = tables(
        missing={"touches": "no CampaignMember file"},
        opportunities=[{"opportunity_id": "O1", "created_at": at(2024, 1, 1)}],
    )
    metrics = attribution_metrics(context(data))
    assert metrics["attribution_coverage_share"].value is None
    assert metrics["attribution_coverage_share"].note == "no CampaignMember file"


def test_attribution_all_zero_amount():
    data = tables(
        opportunities=[
            {
                "opportunity_id": "O1",
                "lead_ids": ["L1"],
                "created_at": at(2024, 1, 9),
                "amount": 0.0,
            }
        ],
        touches=[_touch("T1", at(2024, 1, 1), "Email", "C1", lead="L1")],
    )
    metrics = attribution_metrics(context(data))
    assert metrics["attribution_coverage_share"].value == 1.0
    assert metrics["attribution_amount_coverage_share"].value is None


def test_attribution_half_life_from_config():
    config = OrgConfig(attribution=AttributionConfig(half_life_days=14))
    metrics = attribution_metrics(context(_data(), config))
    assert (
        metrics["attribution_coverage_share"].details["credit"]["half_life_days"] == 14
    )


_DAY = dt.timedelta(days=1)
opportunity_sets = st.lists(
    st.tuples(
        st.one_of(st.none(), st.just(0.0), st.floats(0.01, 1e7)),  # amount
        st.lists(st.integers(0, 60), min_size=1, max_size=8),  # touch days
        st.one_of(st.none(), st.integers(0, 60)),  # lead creation day
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(opportunity_sets)
def test_credits_sum_to_amount(opportunities):
    start = at(2024, 1, 1)
    leads, opps, touches = [], [], []
    for index, (amount, days, lead_day) in enumerate(opportunities):
        lead = f"L{index}"
        created = None if lead_day is None else start + lead_day * _DAY
        leads.append({"lead_id": lead, "created_at": created})
        opps.append({"opportunity_id": f"O{index}", "lead_ids": [lead],
                     "created_at": start + 61 * _DAY, "amount": amount})  # fmt: skip
        touches += [
            _touch(f"T{index}-{n}", start + day * _DAY, "Email", "C1", lead=lead)
            for n, day in enumerate(days)
        ]
    frame = touch_credits(tables(leads=leads, opportunities=opps, touches=touches),
                          AS_OF, half_life_days=7.0)  # fmt: skip
    sums = frame.group_by("opportunity_id").agg(
        pl.col("amount").first(), *[pl.col(f"{m}_credit").sum() for m in MODELS]
    )
    assert sums.height == len(opportunities)
    for model in MODELS:
        assert sums[f"{model}_credit"].to_list() == pytest.approx(
            sums["amount"].to_list(), rel=1e-9, abs=1e-9
        ), model
        assert frame[model].min() >= 0, model


@pytest.mark.parametrize(
    ("key", "note"),
    [
        pytest.param(
            "attribution_coverage_share",
            "3 of 5 opportunities have a marketing touch at or before creation",
            id="coverage",
        ),
        pytest.param(
            "multi_touch_coverage_share",
            "1 of 5 opportunities have two or more marketing touches at or before "
            "creation",
            id="multi-touch",
        ),
        pytest.param(
            "attribution_amount_coverage_share",
            "1,500 of 3,000 pipeline amount on the 3 of 5 opportunities with a "
            "marketing touch at or before creation",
            id="amount",
        ),
        # O1 to O4 had a touch by their close date or, open, by the as-of time.
        pytest.param(
            "influenced_pipeline_share",
            "2,000 of 3,000 pipeline amount on the 4 of 5 opportunities with a "
            "marketing touch by their close date, or by the as-of time while open",
            id="influenced",
        ),
        pytest.param(
            "sourced_pipeline_share",
            "1,000 of 3,000 pipeline amount on the 1 of 5 opportunities with a "
            "marketing touch by their earliest lead's creation (plus 1 h)",
            id="sourced",
        ),
    ],
)
def test_attribution_notes(metrics, key, note):
    assert metrics[key].note == note


def test_attribution_amount_note_missing_amount():
    data = tables(
        opportunities=[
            {"opportunity_id": "O1", "lead_ids": ["L1"],
             "created_at": at(2024, 1, 9), "amount": 400.0},
            {"opportunity_id": "O2", "lead_ids": ["L2"],
             "created_at": at(2024, 1, 9), "amount": None},
        ],
        touches=[_touch("T1", at(2024, 1, 1), "Email", "C1", lead="L1")],
    )  # fmt: skip
    metric = attribution_metrics(context(data))["attribution_amount_coverage_share"]
    assert metric.value == 1.0
    assert metric.note == (
        "400 of 400 pipeline amount on the 1 of 2 opportunities with a marketing "
        "touch at or before creation; 1 without an amount counted as 0"
    )
