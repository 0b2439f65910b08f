"""Coverage helpers: history gaps, handoff spans, finite numbers in every metric."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest

from config.models import OrgConfig, TargetsConfig
from metrics.coverage import history_gap
from metrics.measure import measure
from metrics.shared import handoff_spans
from tests.canonical import AS_OF, at, events, tables


def test_history_gap_counts_earlier():
    touches = pl.Series([at(2024, 3, 1), at(2024, 4, 1), None])
    opportunities = pl.Series([at(2024, 1, 5), at(2024, 2, 9), at(2024, 3, 2)])
    note = history_gap(
        touches, opportunities, source_name="marketing touches",
        subject_name="opportunities",
    )  # fmt: skip
    assert note == (
        "marketing touches start on 2024-03-01; 2 opportunities come before that "
        "and may look untouched only because of it"
    )


def test_history_gap_none():
    touches = pl.Series([at(2024, 1, 1)])
    opportunities = pl.Series([at(2024, 1, 1), at(2024, 2, 1)])
    assert history_gap(touches, opportunities, source_name="a", subject_name="b") == ""


def test_history_gap_no_source():
    empty = pl.Series([], dtype=pl.Datetime("us", "UTC"))
    assert (
        history_gap(
            empty, pl.Series([at(2024, 1, 1)]), source_name="a", subject_name="b"
        )
        == ""
    )


def test_handoff_spans_next_handoff():
    handoffs = pl.DataFrame(
        {
            "lead_id": ["L2", "L1", "L1"],
            "handoff_at": [at(2024, 1, 5), at(2024, 3, 1), at(2024, 1, 1)],
        }
    )
    spans = handoff_spans(handoffs, AS_OF)
    assert spans.rows() == [
        ("L1", at(2024, 1, 1), at(2024, 3, 1)),
        ("L1", at(2024, 3, 1), AS_OF),
        ("L2", at(2024, 1, 5), AS_OF),
    ]


def _non_finite(value, path=""):
    """Return the paths of NaN and infinite floats in a nested dict or list."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _non_finite(v, f"{path}[{i}]")]
    return []


def _edge_tables(amount: float, stages: list[tuple[str, str, dt.datetime]]):
    return tables(
        leads=[
            {"lead_id": "L1", "score": 10.0, "account_id": "A1",
             "opportunity_id": "O1"},
            {"lead_id": "L2"},
        ],
        stage_events=events(*stages),
        activities=[
            {"activity_id": "T1", "lead_id": "L1", "owner_id": "S1",
             "occurred_at": at(2024, 4, 1, 16), "kind": "call",
             "is_automated": False, "is_completed": True},
        ],
        users=[{"user_id": "S1", "team": "sales", "is_active": True}],
        owner_events=[
            {"lead_id": "L1", "owner_id": "S1", "assigned_at": at(2024, 3, 1)},
        ],
        touches=[{"touch_id": "X1", "lead_id": "L1", "touched_at": at(2024, 3, 1)}],
        opportunities=[
            {"opportunity_id": "O1", "account_id": "A1", "created_at": at(2024, 4, 2),
             "amount": amount, "lead_ids": ["L1"]},
        ],
        accounts=[{"account_id": "A1", "is_target": True}],
        campaigns=[],
    )  # fmt: skip


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            _edge_tables(
                500.0,
                [("L1", "mql", at(2024, 3, 29, 15)), ("L1", "sal", at(2024, 4, 1, 15))],
            ),
            id="accepted-next-month",
        ),
        pytest.param(
            _edge_tables(
                0.0, [("L2", "sal", at(2024, 5, 1)), ("L2", "sql", at(2024, 5, 2))]
            ),
            id="no-handoff-zero-amount",
        ),
        pytest.param(
            _edge_tables(
                0.0,
                [
                    ("L1", "mql", at(2024, 3, 29, 15)),
                    ("L1", "rejected", at(2024, 3, 30)),
                ],
            ),
            id="rejected-zero-amount",
        ),
    ],
)
def test_metric_details_finite(data):
    config = OrgConfig(targets=TargetsConfig(mql_monthly={"2024-03": 0, "2024-04": 5}))
    metrics, _ = measure(data, config, at(2024, 12, 31))
    for key, metric in metrics.items():
        assert _non_finite(metric.to_dict()) == [], key
