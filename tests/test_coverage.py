"""Coverage helpers: history gaps and handoff spans."""

from __future__ import annotations

import polars as pl

from metrics.coverage import history_gap
from metrics.shared import handoff_spans
from tests.canonical import AS_OF, at


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
