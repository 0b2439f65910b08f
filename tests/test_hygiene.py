"""Definition hygiene: unmapped statuses, stage order, converted flag, scores."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.models import OrgConfig, StageMapping, load_config
from connectors.salesforce_export import read_export
from metrics.hygiene import (
    converted_flag_mismatch,
    hygiene_metrics,
    stage_order,
    unmapped_statuses,
)
from tests.canonical import at, context, events, tables
from tests.conftest import CASES_DIR

DEFAULT_STAGES = OrgConfig(stages=StageMapping(preset="salesforce_default"))


@pytest.fixture(scope="module")
def demo_export():
    folder = CASES_DIR / "sfdc-demo-export"
    config = load_config(folder / "revalign.yaml")
    return read_export(Path(folder), config), config


def test_converted_flag_mismatch_demo_export(demo_export):
    data, config = demo_export
    metric = converted_flag_mismatch(data, config)["converted_flag_mismatch_count"]
    assert metric.value == 3.0
    assert metric.population == 8
    assert metric.note == (
        "3 of 8 leads with a converted status have the converted flag unset"
    )
    assert len(metric.details["lead_ids"]) == 3


def test_hygiene_demo_export_not_measurable(demo_export):
    data, config = demo_export
    metrics = hygiene_metrics(context(data, config))
    assert metrics["stage_order_violation_share"].value is None
    assert metrics["stage_order_violation_share"].note.startswith("no LeadHistory file")
    assert metrics["unmapped_status_share"].value == 0.0
    assert metrics["unmapped_status_share"].population == 22


def test_unmapped_statuses_listed():
    data = tables(
        leads=[
            {"lead_id": "L1", "status_raw": "Open - Not Contacted"},
            {"lead_id": "L2", "status_raw": "Nurturing"},
            {"lead_id": "L3", "status_raw": "Nurturing"},
            {"lead_id": "L4", "status_raw": "Cold"},
            {"lead_id": "L5", "status_raw": None},
        ]
    )
    data.unmapped_statuses = {"Nurturing": 5, "Cold": 1, "Gone": 2}
    metric = unmapped_statuses(data, DEFAULT_STAGES)["unmapped_status_share"]
    assert metric.value == 3 / 4
    assert metric.population == 4
    assert metric.note == "3 of 4 leads have an unmapped status; 3 unmapped values"
    assert metric.details["unmapped_values"] == [
        {"value": "Nurturing", "leads": 2, "records": 5},
        {"value": "Gone", "leads": 0, "records": 2},
        {"value": "Cold", "leads": 1, "records": 1},
    ]


def _order_data():
    return tables(
        leads=[
            {
                "lead_id": "L1",
                "is_converted": True,
                "converted_on": at(2024, 1, 9).date(),
            },
            {"lead_id": "L2", "is_converted": False},
            {
                "lead_id": "L3",
                "is_converted": True,
                "converted_on": at(2024, 1, 9).date(),
            },
            {"lead_id": "L4", "is_converted": False},
            {"lead_id": "L5", "is_converted": False},
        ],
        stage_events=events(
            # In order: MQL, SAL, SQL, opportunity.
            ("L1", "mql", at(2024, 1, 1)),
            ("L1", "sal", at(2024, 1, 2)),
            ("L1", "sql", at(2024, 1, 3)),
            ("L1", "opportunity", at(2024, 1, 9)),
            # SQL that was never an MQL.
            ("L2", "sql", at(2024, 1, 3)),
            # Flagged converted with no status entry and no acceptance.
            ("L3", "mql", at(2024, 1, 1)),
            # Converted status before any acceptance.
            ("L4", "mql", at(2024, 1, 1)),
            ("L4", "opportunity", at(2024, 1, 2)),
            ("L4", "sal", at(2024, 1, 3)),
            # Never past MQL: not in the population.
            ("L5", "mql", at(2024, 1, 1)),
        ),
    )


def test_stage_order_violations():
    metric = stage_order(_order_data())["stage_order_violation_share"]
    assert metric.value == 3 / 4
    assert metric.population == 4
    assert metric.note == "3 of 4 leads past SQL or converted have stages out of order"
    assert metric.details["sql_without_mql"] == 1
    assert metric.details["conversion_without_acceptance"] == 2


def test_converted_flag_reverse_mismatch():
    data = tables(
        leads=[
            {"lead_id": "L1", "status_raw": "Closed - Converted", "is_converted": True},
            {
                "lead_id": "L2",
                "status_raw": "Working - Contacted",
                "is_converted": True,
            },
        ]
    )
    metric = converted_flag_mismatch(data, DEFAULT_STAGES)[
        "converted_flag_mismatch_count"
    ]
    assert metric.value == 0.0
    assert metric.details["flag_without_converted_status"] == 1


def test_score_coverage_at_handoff():
    data = tables(
        leads=[{"lead_id": "L1", "score": 40.0}, {"lead_id": "L2"}, {"lead_id": "L3"}],
        stage_events=events(
            ("L1", "mql", at(2024, 1, 1)),
            ("L2", "mql", at(2024, 1, 1)),
            ("L1", "mql", at(2024, 2, 1)),
        ),
    )
    metric = hygiene_metrics(context(data))["score_coverage_at_handoff"]
    assert metric.value == 2 / 3
    assert metric.population == 3
    assert metric.note == (
        "2 of 3 handoffs had a lead score; the current lead score is used as the "
        "score at handoff"
    )


def test_score_coverage_no_scores():
    data = tables(
        leads=[{"lead_id": "L1"}], stage_events=events(("L1", "mql", at(2024, 1, 1)))
    )
    metric = hygiene_metrics(context(data))["score_coverage_at_handoff"]
    assert metric.value is None
    assert "fields.lead_score" in metric.note


def test_converted_flag_no_converted_status():
    data = tables(
        leads=[
            {
                "lead_id": "L1",
                "status_raw": "Working - Contacted",
                "is_converted": False,
            }
        ]
    )
    metric = converted_flag_mismatch(data, DEFAULT_STAGES)[
        "converted_flag_mismatch_count"
    ]
    assert metric.value is None
    assert metric.note == "no lead has a status that maps to a converted stage"
