"""Funnel conversion from real stage moves, stage velocity, cohort and period views."""

from __future__ import annotations

import pytest

from metrics.funnel import funnel_metrics, handoff_progress
from tests.canonical import AS_OF, at, context, events, tables


def _funnel_tables(with_sql: bool = True):
    rows = events(
        ("L1", "mql", at(2024, 1, 1, 10)),
        ("L1", "sal", at(2024, 1, 2, 10)),
        ("L1", "sql", at(2024, 1, 5, 10)),
        ("L1", "opportunity", at(2024, 1, 10, 10)),
        ("L2", "mql", at(2024, 1, 3, 10)),
        ("L2", "sql", at(2024, 1, 6, 10)),
        ("L3", "mql", at(2024, 1, 4, 10)),
        ("L3", "sal", at(2024, 1, 6, 10)),
        ("L4", "mql", at(2024, 1, 5, 10)),
        ("L4", "rejected", at(2024, 1, 6, 10)),
        ("L5", "mql", at(2024, 2, 1, 10)),
        ("L5", "sal", at(2024, 2, 2, 10)),
        ("L5", "sql", at(2024, 2, 3, 10)),
        ("L5", "recycled", at(2024, 2, 20, 10)),
        ("L5", "mql", at(2024, 3, 1, 10)),
        ("L5", "sal", at(2024, 3, 2, 10)),
        ("L6", "mql", at(2024, 12, 28, 10)),
    )
    if not with_sql:
        rows = [r for r in rows if r["stage"] != "sql"]
    return tables(
        leads=[
            {"lead_id": "L1", "opportunity_id": "O1"},
            {"lead_id": "L2", "opportunity_id": "O2"},
            *({"lead_id": f"L{n}"} for n in range(3, 7)),
        ],
        stage_events=rows,
        opportunities=[
            {"opportunity_id": "O1", "created_at": at(2024, 1, 10, 10),
             "is_won": True, "close_date": at(2024, 2, 1).date()},
            {"opportunity_id": "O2", "created_at": at(2024, 1, 8, 10), "is_won": False},
        ],
    )  # fmt: skip


@pytest.fixture(scope="module")
def funnel():
    return funnel_metrics(context(_funnel_tables()))


@pytest.mark.parametrize(
    ("key", "value", "population"),
    [
        pytest.param("funnel_mql_to_sal", 4 / 6, 6, id="mql-to-sal"),
        pytest.param("funnel_sal_to_sql", 2 / 4, 4, id="sal-to-sql"),
        pytest.param("funnel_sql_to_opportunity", 1 / 2, 2, id="sql-to-opportunity"),
        pytest.param("funnel_opportunity_to_won", 1.0, 1, id="opportunity-to-won"),
    ],
)
def test_funnel_conversion(funnel, key, value, population):
    assert funnel[key].value == value
    assert funnel[key].population == population


_MATURE = (
    "over handoffs older than 14 days (6 of 7); stages in the data: mql, sal, sql, "
    "opportunity, won"
)


@pytest.mark.parametrize(
    ("key", "counts"),
    [
        pytest.param("funnel_mql_to_sal", "4 of 6 handoffs reached SAL", id="mql"),
        pytest.param(
            "funnel_sal_to_sql",
            "2 of the 4 handoffs that reached SAL reached SQL",
            id="sal",
        ),
        pytest.param(
            "funnel_sql_to_opportunity",
            "1 of the 2 handoffs that reached SQL reached an opportunity",
            id="sql",
        ),
        pytest.param(
            "funnel_opportunity_to_won",
            "1 of the 1 handoff that reached an opportunity was won",
            id="opportunity",
        ),
    ],
)
def test_funnel_conversion_notes(funnel, key, counts):
    assert funnel[key].note == f"{counts}; {_MATURE}"


@pytest.mark.parametrize(
    ("key", "days"),
    [
        pytest.param("stage_velocity_mql_to_sal", 1.0, id="mql-to-sal"),
        pytest.param("stage_velocity_sal_to_sql", 2.0, id="sal-to-sql"),
        pytest.param("stage_velocity_sql_to_opportunity", 5.0, id="sql-to-opportunity"),
        pytest.param(
            "stage_velocity_opportunity_to_won", 22.0, id="opportunity-to-won"
        ),
    ],
)
def test_funnel_velocity(funnel, key, days):
    assert funnel[key].value == days
    assert funnel[key].unit == "days"


def test_funnel_skipped_stage_counted(funnel):
    assert funnel["funnel_mql_to_sal"].details["skipped_stages"] == {"sal": 1, "sql": 0}


def test_funnel_skipped_stage_not_converted():
    progress = handoff_progress(_funnel_tables(), AS_OF)
    skipped = progress.filter(progress["lead_id"] == "L2").row(0, named=True)
    assert skipped["sql_at"] is None
    assert skipped["opportunity_at"] is None
    assert skipped["direct_sql_at"] == at(2024, 1, 6, 10)


def test_funnel_cohort_table(funnel):
    cohorts = funnel["funnel_mql_to_sal"].details["cohorts"]
    assert [c["month"] for c in cohorts] == ["2024-01", "2024-02", "2024-03", "2024-12"]
    assert cohorts[0] == {
        "month": "2024-01", "mql": 4, "sal": 2, "sql": 1, "opportunity": 1, "won": 1,
        "mql_to_sal": 0.5, "sal_to_sql": 0.5, "sql_to_opportunity": 1.0,
        "opportunity_to_won": 1.0, "settled": True,
    }  # fmt: skip
    assert cohorts[3]["sal_to_sql"] is None
    # December's handoffs are not all older than the 14-day decision window.
    assert cohorts[3]["settled"] is False


def test_funnel_period_table(funnel):
    periods = {p["month"]: p for p in funnel["funnel_mql_to_sal"].details["periods"]}
    assert periods["2024-01"]["won"] == 0
    assert periods["2024-02"]["won"] == 1
    assert periods["2024-01"]["sal"] == 2
    assert periods["2024-03"]["mql_to_sal"] == 1.0


def test_funnel_without_sql_stage_bridges():
    metrics = funnel_metrics(context(_funnel_tables(with_sql=False)))
    assert metrics["funnel_sal_to_sql"].value is None
    assert "no record entered 'sql'" in metrics["funnel_sal_to_sql"].note
    # Opportunity after SAL: L1 only, of the 4 mature handoffs that reached SAL.
    assert metrics["funnel_sal_to_opportunity"].value == 1 / 4
    assert metrics["stage_velocity_sal_to_opportunity"].value == 8.0


def test_funnel_missing_history_not_measurable():
    data = tables(
        missing={"stage_events": "no LeadHistory file"}, leads=[{"lead_id": "L1"}]
    )
    metrics = funnel_metrics(context(data))
    assert metrics["funnel_mql_to_sal"].value is None
    assert metrics["funnel_mql_to_sal"].note == "no LeadHistory file"


def test_funnel_period_rate_without_mqls():
    data = tables(
        leads=[{"lead_id": "L1"}],
        stage_events=events(
            ("L1", "mql", at(2024, 3, 29, 15)), ("L1", "sal", at(2024, 4, 1, 15))
        ),
    )
    details = funnel_metrics(context(data))["funnel_mql_to_sal"].details
    periods = {p["month"]: p for p in details["periods"]}
    assert periods["2024-03"]["mql_to_sal"] == 0.0
    assert periods["2024-04"]["mql"] == 0
    assert periods["2024-04"]["sal"] == 1
    assert periods["2024-04"]["mql_to_sal"] is None


def test_funnel_opportunity_from_creation_not_lead_date():
    # No opportunity stage event: the opportunity's own creation, 5 days after
    # SQL, is the entry. The lead's earlier creation date must not be used.
    lead_tables = tables(
        leads=[
            {"lead_id": "L1", "opportunity_id": "O1", "created_at": at(2023, 12, 1)}
        ],
        stage_events=events(
            ("L1", "mql", at(2024, 1, 1, 10)),
            ("L1", "sal", at(2024, 1, 2, 10)),
            ("L1", "sql", at(2024, 1, 5, 10)),
        ),
        opportunities=[
            {"opportunity_id": "O1", "created_at": at(2024, 1, 10, 10), "is_won": False}
        ],
    )
    metrics = funnel_metrics(context(lead_tables))
    assert metrics["funnel_sql_to_opportunity"].value == 1.0
    assert metrics["funnel_sql_to_opportunity"].population == 1
    assert metrics["stage_velocity_sql_to_opportunity"].value == 5.0
