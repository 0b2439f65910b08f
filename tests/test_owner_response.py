"""Owner response: from each owner's assignment to that owner's first touch."""

from __future__ import annotations

import pytest

from metrics.owner_response import owner_response_metrics
from tests.canonical import at, context, events, tables

HANDOFF = at(2024, 6, 3, 9)  # a Monday; the default calendar is Mon-Fri 09-17 UTC


def _call(activity_id, lead, owner, when):
    return {
        "activity_id": activity_id, "lead_id": lead, "owner_id": owner,
        "occurred_at": when, "kind": "call", "is_automated": False,
        "is_completed": True,
    }  # fmt: skip


def _assign(lead, owner, when):
    return {"lead_id": lead, "owner_id": owner, "assigned_at": when}


@pytest.fixture(scope="module")
def metrics():
    data = tables(
        leads=[{"lead_id": f"L{n}"} for n in range(1, 5)],
        stage_events=events(*[(f"L{n}", "mql", HANDOFF) for n in range(1, 5)]),
        owner_events=[
            _assign("L1", "U1", at(2024, 6, 1)),
            _assign("L1", "U2", at(2024, 6, 4, 9)),
            _assign("L2", "Q1", at(2024, 6, 2)),
            _assign("L2", "U1", at(2024, 6, 3, 13)),
            _assign("L3", "U2", at(2024, 6, 1)),
            _assign("L4", "U1", at(2024, 6, 1)),
            _assign("L4", "U2", at(2024, 6, 2)),
        ],
        activities=[
            _call("A1", "L1", "U1", at(2024, 6, 3, 11)),  # U1 after 2 h
            _call("A2", "L1", "U2", at(2024, 6, 4, 9, 30)),  # U2 after 0.5 h
            _call("A3", "L1", "U1", at(2024, 6, 4, 10)),  # U1 no longer owns L1
            _call("A4", "L2", "U1", at(2024, 6, 4, 10)),  # 4 h Monday + 1 h Tuesday
            _call("A5", "L3", "U1", at(2024, 6, 3, 10)),  # not L3's owner
            _call("A6", "L4", "U2", HANDOFF),  # at once
        ],
        users=[
            {"user_id": "U1", "team": "sales", "is_active": True},
            {"user_id": "U2", "team": "sales", "is_active": True},
        ],
    )
    return owner_response_metrics(context(data))


def test_owner_response_median(metrics):
    # Answered stints: 2, 0.5, 5 and 0 business hours.
    assert metrics["owner_response_median_business_hours"].value == 1.25
    assert metrics["owner_response_median_business_hours"].population == 4


def test_owner_response_p90(metrics):
    # Sorted 0, 0.5, 2, 5: position 2.7 lies between 2 and 5.
    assert metrics["owner_response_p90_business_hours"].value == pytest.approx(4.1)


def test_owner_response_unanswered(metrics):
    # L3's owner U2 never touched it.
    assert metrics["owner_unanswered_share"].value == 1 / 5
    assert metrics["owner_unanswered_share"].population == 5


@pytest.mark.parametrize(
    ("key", "counts"),
    [
        pytest.param(
            "owner_unanswered_share",
            "1 of 5 sales owner stints with no touch by the owner",
            id="unanswered",
        ),
        pytest.param(
            "owner_response_median_business_hours",
            "over 4 answered of 5 sales owner stints",
            id="median",
        ),
    ],
)
def test_owner_response_notes(metrics, key, counts):
    left_out = "1 stint held by queues or non-sales users left out"
    assert metrics[key].note == f"{counts}; {left_out}"


@pytest.mark.parametrize(
    ("key", "count"),
    [
        pytest.param("reassigned_stints", 2, id="reassigned"),
        pytest.param("non_sales_stints", 1, id="queue"),
        pytest.param("stints", 5, id="stints"),
    ],
)
def test_owner_response_counts(metrics, key, count):
    assert metrics["owner_unanswered_share"].details[key] == count


def test_owner_response_no_owner_history():
    data = tables(
        missing={"owner_events": "no LeadHistory file"},
        stage_events=events(("L1", "mql", HANDOFF)),
    )
    metric = owner_response_metrics(context(data))[
        "owner_response_median_business_hours"
    ]
    assert metric.value is None
    assert metric.note == "no LeadHistory file"


def test_owner_response_final_owner(metrics):
    details = metrics["owner_response_median_business_hours"].details
    # Final stints: L1 with U2 (0.5 h), L2 with U1 (5 h), L3 with U2 (none), L4 (0 h).
    assert details["final_owner_stints"] == 4
    assert details["final_owner_median_business_hours"] == 0.5
