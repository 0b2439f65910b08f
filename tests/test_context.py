"""Handoff context: a score and a marketing touch at handoff time."""

from __future__ import annotations

from metrics.context import context_metrics
from tests.canonical import at, context, events, tables


def _touch(touch_id, lead, when):
    return {"touch_id": touch_id, "lead_id": lead, "touched_at": when}


def test_handoff_context_share():
    data = tables(
        leads=[
            {"lead_id": "L1", "score": 50.0},
            {"lead_id": "L2", "score": 10.0},
            {"lead_id": "L3"},
        ],
        stage_events=events(
            ("L1", "mql", at(2024, 1, 10)),
            ("L2", "mql", at(2024, 1, 10)),
            ("L3", "mql", at(2024, 1, 10)),
            ("L2", "mql", at(2024, 3, 1)),
        ),
        touches=[
            _touch("T1", "L1", at(2024, 1, 10)),  # at the handoff: counts
            _touch("T2", "L2", at(2024, 2, 1)),  # after the first handoff only
            _touch("T3", "L3", at(2024, 1, 1)),  # no score
        ],
    )
    metric = context_metrics(context(data))["handoff_context_share"]
    assert metric.value == 2 / 4
    assert metric.population == 4
    assert metric.details == {
        "handoffs": 4, "with_score": 3, "with_touch": 3, "with_both": 2
    }  # fmt: skip
    assert "current lead score" in metric.note


def test_handoff_context_missing_touches():
    data = tables(
        missing={"touches": "no CampaignMember file"},
        leads=[{"lead_id": "L1", "score": 1.0}],
        stage_events=events(("L1", "mql", at(2024, 1, 10))),
    )
    metric = context_metrics(context(data))["handoff_context_share"]
    assert metric.value is None
    assert metric.note == "no CampaignMember file"
