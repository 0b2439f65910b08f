"""Planning signals: target-account list and target shares."""

from __future__ import annotations

import pytest

from metrics.planning import planning_metrics
from tests.canonical import at, context, events, tables


def _data(targets=(True, False, None)):
    accounts = [
        {"account_id": f"A{n}", "is_target": flag} for n, flag in enumerate(targets, 1)
    ]
    return tables(
        accounts=accounts,
        leads=[
            {"lead_id": "L1", "account_id": "A1"},
            {"lead_id": "L2", "account_id": "A2"},
            {"lead_id": "L3", "account_id": "A1"},
            {"lead_id": "L4"},
        ],
        stage_events=events(*[(f"L{n}", "mql", at(2024, 1, n)) for n in range(1, 5)]),
        opportunities=[
            {"opportunity_id": "O1", "account_id": "A1", "amount": 300.0},
            {"opportunity_id": "O2", "account_id": "A2", "amount": 100.0},
            {"opportunity_id": "O3", "account_id": "A3", "amount": None},
            {"opportunity_id": "O4", "account_id": "A9", "amount": 50.0},
        ],
    )


def test_planning_target_shares():
    metrics = planning_metrics(context(_data()))
    assert metrics["target_account_list_present"].value == 1.0
    # L4 has no account: 2 of the 3 handoffs with an account are on A1.
    assert metrics["target_account_mql_share"].value == 2 / 3
    assert metrics["target_account_mql_share"].details["unknown_account"] == 1
    # A9 is not in the accounts table, so O4 is left out.
    assert metrics["target_account_opportunity_share"].value == 1 / 3
    assert metrics["target_account_pipeline_share"].value == 300 / 400


@pytest.mark.parametrize(
    ("key", "note"),
    [
        pytest.param(
            "target_account_mql_share",
            "2 of 3 handoffs with a known account are on a target account; "
            "1 handoff without one left out",
            id="mql",
        ),
        pytest.param(
            "target_account_opportunity_share",
            "1 of 3 opportunities on target accounts; 1 opportunity without a known "
            "account left out",
            id="opportunities",
        ),
        pytest.param(
            "target_account_pipeline_share",
            "300 of 400 pipeline amount on the 1 of 3 opportunities on target "
            "accounts; 1 opportunity without a known account left out",
            id="pipeline",
        ),
    ],
)
def test_planning_target_notes(key, note):
    metrics = planning_metrics(context(_data()))
    assert metrics[key].note == note


def test_planning_no_targets_marked():
    metrics = planning_metrics(context(_data(targets=(False, False, False))))
    assert metrics["target_account_list_present"].value == 0.0
    assert metrics["target_account_mql_share"].value is None


def test_planning_no_target_field():
    metrics = planning_metrics(context(_data(targets=(None, None, None))))
    assert metrics["target_account_list_present"].value is None
    assert "fields.target_account" in metrics["target_account_list_present"].note
