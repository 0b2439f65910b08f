"""Canonical files: Parquet and CSV in the canonical schema read back unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from config.models import load_config
from connectors.canonical_files import read_canonical, write_canonical
from connectors.errors import InputError
from connectors.salesforce_export import read_export
from metrics.measure import measure
from tests.conftest import CASES_DIR

CLOCK_CASE = CASES_DIR / "sf-export-business-hours"


def test_parquet_round_trip_gives_same_metrics(tmp_path: Path) -> None:
    config = load_config(CLOCK_CASE / "revalign.yaml")
    tables = read_export(CLOCK_CASE, config)
    write_canonical(tables, tmp_path)
    again = read_canonical(tmp_path, config)
    for name in ("leads", "stage_events", "owner_events", "activities", "users"):
        assert_frame_equal(again[name], tables[name])
    as_of = dt.datetime(2025, 7, 15, tzinfo=dt.UTC)
    metrics, _ = measure(again, config, as_of)
    assert metrics["sla_breach_rate"].value == 0.6
    assert metrics["speed_to_lead_median_business_hours"].value == 4.75


def test_csv_files_are_typed(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text(
        "lead_id,created_at,is_converted,score\nL1,2025-07-01T10:00:00Z,FALSE,42\n"
    )
    (tmp_path / "stage_events.csv").write_text(
        "lead_id,stage,entered_at\nL1,mql,2025-07-01T11:00:00+00:00\n"
    )
    tables = read_canonical(tmp_path, load_config(None))
    leads = tables["leads"]
    assert leads["created_at"][0] == dt.datetime(2025, 7, 1, 10, tzinfo=dt.UTC)
    assert leads["is_converted"][0] is False
    assert leads["score"][0] == 42.0
    assert tables.missing["activities"] == "no activities file"


def test_unknown_stage_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "leads.csv").write_text("lead_id\nL1\n")
    (tmp_path / "stage_events.csv").write_text(
        "lead_id,stage,entered_at\nL1,qualified,2025-07-01T11:00:00Z\n"
    )
    with pytest.raises(InputError, match=r"stage value\(s\) 'qualified' are not canonical"):
        read_canonical(tmp_path, load_config(None))


def test_parquet_with_wrong_type_names_column(tmp_path: Path) -> None:
    pl.DataFrame({"lead_id": ["L1"], "created_at": ["soon"]}).write_parquet(tmp_path / "leads.parquet")
    with pytest.raises(InputError, match=r"column `created_at` has type String"):
        read_canonical(tmp_path, load_config(None))


def test_missing_leads_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="leads.parquet or leads.csv not found"):
        read_canonical(tmp_path, load_config(None))


def test_score_cli_reads_canonical_source(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    config = load_config(CLOCK_CASE / "revalign.yaml")
    write_canonical(read_export(CLOCK_CASE, config), tmp_path / "canonical")
    result = CliRunner().invoke(
        app,
        [
            "score", "--source", "canonical", "--path", str(tmp_path / "canonical"),
            "--config", str(CLOCK_CASE / "revalign.yaml"),
            "--as-of", "2025-07-15T00:00:00Z", "--out", str(tmp_path / "out"), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert '"sla_breach_rate"' in result.stdout
    assert (tmp_path / "out" / "scorecard.json").is_file()


def test_naive_parquet_timestamps_read_in_org_zone(tmp_path: Path) -> None:
    config = load_config(CLOCK_CASE / "revalign.yaml")
    naive = dt.datetime(2025, 7, 1, 10, 0)  # noqa: DTZ001
    leads = pl.DataFrame({"lead_id": ["L1"], "created_at": [naive]})
    leads.write_parquet(tmp_path / "leads.parquet")
    tables = read_canonical(tmp_path, config)
    # 10:00 in New York in July (UTC-4) is 14:00 UTC.
    expected = dt.datetime(2025, 7, 1, 14, tzinfo=dt.UTC)
    assert tables["leads"]["created_at"][0] == expected
    assert tables.notes == [
        "leads.parquet created_at: 1 value(s) had no time zone; read in the org's "
        "time zone America/New_York"
    ]


def test_zone_less_csv_values_noted(tmp_path: Path) -> None:
    config = load_config(CLOCK_CASE / "revalign.yaml")
    (tmp_path / "leads.csv").write_text(
        "lead_id,created_at\nL1,2025-07-01 10:00:00\nL2,2025-07-01T10:00:00Z\n"
    )
    tables = read_canonical(tmp_path, config)
    assert tables["leads"]["created_at"].to_list() == [
        dt.datetime(2025, 7, 1, 14, tzinfo=dt.UTC),
        dt.datetime(2025, 7, 1, 10, tzinfo=dt.UTC),
    ]
    assert tables.notes == [
        "leads.csv created_at: 1 value(s) had no time zone; read in the org's "
        "time zone America/New_York"
    ]


def test_unmapped_statuses_counted_by_config_mapping(tmp_path: Path) -> None:
    config = load_config(CLOCK_CASE / "revalign.yaml")
    (tmp_path / "leads.csv").write_text(
        "lead_id,status_raw\nL1,New\nL2,Bogus\nL3,Bogus\nL4,\n", encoding="utf-8"
    )
    tables = read_canonical(tmp_path, config)
    assert tables.unmapped_statuses == {"Bogus": 2}
