"""Terminal and Markdown rendering of a scorecard document, compared as text."""

from __future__ import annotations

import datetime as dt

import pytest
from rich.console import Console

from flows.pipeline import ScoreRequest, run_score
from flows.render import render_scorecard
from flows.report import format_value, markdown_report
from tests.conftest import CASES_DIR


@pytest.fixture(scope="module")
def document() -> dict:
    folder = CASES_DIR / "sf-export-business-hours"
    request = ScoreRequest(
        path=folder,
        config_path=folder / "revalign.yaml",
        as_of=dt.datetime(2025, 7, 15, tzinfo=dt.UTC),
        run_gate=False,
    )
    return run_score(request).document


def rendered(document: dict, width: int = 120) -> str:
    console = Console(width=width, color_system=None, record=True, force_terminal=False)
    render_scorecard(document, console)
    return console.export_text()


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        pytest.param(0.6, "share", "60.0%", id="share"),
        pytest.param(4.75, "hours", "4.75 h", id="hours"),
        pytest.param(1234.0, "count", "1,234", id="count"),
        pytest.param(1.0, "flag", "yes", id="flag-yes"),
        pytest.param(0.0, "flag", "no", id="flag-no"),
        pytest.param(None, "share", "not measurable", id="missing"),
    ],
)
def test_format_value(value: float | None, unit: str, text: str) -> None:
    assert format_value(value, unit) == text


def test_terminal_dimension_rows(document: dict) -> None:
    text = rendered(document)
    lines = [" ".join(line.replace("│", " ").split()) for line in text.splitlines()]
    assert "Lead Handoff 2.00 Emerging 2 — measured low" in lines
    assert "Attribution — no data — — no data —" in lines


def test_terminal_states_what_held_each_level(document: dict) -> None:
    text = " ".join(rendered(document).replace("│", " ").split())
    assert "Lead Handoff: level 3 failed: speed_to_lead_median_business_hours < 4 (4.75 h)" in text
    assert "SLA breach rate 60.0% 5 3 of 5 due handoffs breached the 4-business-hour SLA; 1 not yet due" in text


def test_terminal_lists_missing_sources(document: dict) -> None:
    text = " ".join(rendered(document).replace("│", " ").split())
    assert "not available: opportunities: no Opportunity file" in text
    assert "as of 2025-07-15T00:00:00Z: given with --as-of" in text


def test_markdown_report_sections(document: dict) -> None:
    report = markdown_report(document)
    assert report.startswith("# Sales–marketing alignment: clock-rules\n")
    assert "| Lead Handoff | 2.00 | Emerging | 2 | — | measured | low |" in report
    assert (
        "| SLA breach rate | 60.0% | 5 | 3 of 5 due handoffs breached the "
        "4-business-hour SLA; 1 not yet due |"
    ) in report
    assert "## Audit: self-reported against measured" in report
    assert "- Not available: opportunities: no Opportunity file" in report
