"""The demo org: a seeded Salesforce export folder read through the real reader.

Most tests share one 500-lead export (module-scoped). The funnel-rate tests use
the default 5,000 leads, because the rates the demo promises are for that size.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import holidays
import polars as pl
import pytest
from typer.testing import CliRunner

from config.models import load_config
from connectors.demo import (
    DEMO_AS_OF,
    DEMO_CONFIG,
    SURVEY_COLUMNS,
    DemoOrg,
    generate_demo,
    salesforce_ids,
)
from connectors.errors import InputError
from connectors.salesforce_export import read_export
from connectors.schema import CanonicalTables
from flows.cli import app
from flows.pipeline import ScoreRequest, run_score
from scoring.survey import read_survey
from tests.conftest import CASES_DIR

LEADS = 500
ZONE = "America/New_York"
KEY_PREFIXES = {
    "Lead": "00Q",
    "User": "005",
    "Task": "00T",
    "Event": "00U",
    "Opportunity": "006",
    "Account": "001",
    "Contact": "003",
    "Campaign": "701",
    "CampaignMember": "00v",
    "LeadHistory": "017",
    "OpportunityHistory": "008",
    "OpportunityContactRole": "00K",
}
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$"


def _checksum(short_id: str) -> str:
    """Salesforce's 3-character suffix of a 15-character id, written out plainly."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    suffix = ""
    for block in range(3):
        chars = short_id[block * 5 : block * 5 + 5]
        bits = sum(1 << i for i, char in enumerate(chars) if "A" <= char <= "Z")
        suffix += alphabet[bits]
    return suffix


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoOrg:
    return generate_demo(tmp_path_factory.mktemp("demo") / "export", leads=LEADS)


@pytest.fixture(scope="module")
def tables(demo: DemoOrg) -> CanonicalTables:
    return read_export(demo.folder, load_config(DEMO_CONFIG))


def _csv(demo: DemoOrg, obj: str) -> pl.DataFrame:
    """Read an export file as text; a quoted empty field becomes null."""
    frame = pl.read_csv(demo.paths[obj], infer_schema=False)
    return frame.with_columns(pl.all().replace("", None))


def _local_handoffs(tables: CanonicalTables) -> pl.DataFrame:
    return (
        tables["stage_events"]
        .filter(pl.col("stage") == "mql")
        .select(local=pl.col("entered_at").dt.convert_time_zone(ZONE))
    )


# --- determinism, size and reading ------------------------------------------


def test_generate_same_seed_identical(demo: DemoOrg, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", leads=LEADS)
    for name, path in demo.paths.items():
        assert again.paths[name].read_bytes() == path.read_bytes(), name


def test_generate_other_seed_differs(demo: DemoOrg, tmp_path: Path) -> None:
    other = generate_demo(tmp_path / "other", leads=LEADS, seed=8)
    assert other.paths["Lead"].read_bytes() != demo.paths["Lead"].read_bytes()


@pytest.mark.parametrize(
    "leads",
    [
        pytest.param(1, id="one"),
        pytest.param(37, id="few"),
        pytest.param(500, id="500"),
    ],
)
def test_generate_lead_count(leads: int, tmp_path: Path) -> None:
    demo = generate_demo(tmp_path / "export", leads=leads)
    tables = read_export(demo.folder, load_config(demo.config_path))
    assert demo.counts["Lead"] == leads
    assert tables["leads"].height == leads


def test_generate_rejects_zero_leads(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"invalid number of demo leads 0"):
        generate_demo(tmp_path / "export", leads=0)


def test_generate_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(InputError, match=r"cannot write the demo export to .*file"):
        generate_demo(blocker, leads=20)


def test_read_export_complete(tables: CanonicalTables) -> None:
    assert tables.missing == {}
    assert tables.notes == []
    assert tables.counts["Lead"] == LEADS


def test_demo_org_fields(demo: DemoOrg) -> None:
    config = load_config(demo.config_path)
    assert demo.as_of == dt.datetime(2025, 11, 1, tzinfo=dt.UTC)
    assert DEMO_AS_OF == demo.as_of
    assert config.survey == demo.survey_path
    assert config.org.id == "demo"
    assert demo.counts["survey"] == 12
    for obj in KEY_PREFIXES:
        assert _csv(demo, obj).height == demo.counts[obj], obj


def test_demo_data_ends_before_as_of(tables: CanonicalTables) -> None:
    as_of = pl.lit(DEMO_AS_OF).cast(pl.Datetime("us", "UTC"))
    first_day = dt.datetime(2024, 11, 1, 4, tzinfo=dt.UTC)
    created = tables["leads"]["created_at"]
    assert created.min() >= first_day
    assert tables["leads"].filter(pl.col("created_at") >= as_of).height == 0
    assert tables["stage_events"].filter(pl.col("entered_at") >= as_of).height == 0
    assert tables["activities"].filter(pl.col("occurred_at") >= as_of).height == 0
    assert tables["touches"].filter(pl.col("touched_at") >= as_of).height == 0


# --- export format ----------------------------------------------------------


def test_salesforce_ids_checksum() -> None:
    ids = salesforce_ids("00Q", 3000, first=123_456).to_list()
    real = pl.read_csv(CASES_DIR / "sfdc-demo-export" / "Lead.csv", infer_schema=False)
    assert all(len(value) == 18 for value in ids)
    assert [value[15:] for value in ids] == [_checksum(value[:15]) for value in ids]
    assert real["Id"][0][15:] == _checksum(real["Id"][0][:15])
    assert ids == sorted(ids)


@pytest.mark.parametrize("obj", [pytest.param(obj, id=obj) for obj in KEY_PREFIXES])
def test_export_key_prefixes(demo: DemoOrg, obj: str) -> None:
    ids = _csv(demo, obj)["Id"]
    assert ids.str.starts_with(KEY_PREFIXES[obj]).all()
    assert ids.str.len_chars().eq(18).all()
    assert ids.n_unique() == ids.len()


def test_export_timestamps_iso(demo: DemoOrg) -> None:
    for obj in KEY_PREFIXES:
        created = _csv(demo, obj).get_column("CreatedDate").drop_nulls()
        assert created.str.contains(ISO_TIMESTAMP).all(), obj


def test_export_booleans_and_dates(demo: DemoOrg) -> None:
    lead = _csv(demo, "Lead")
    converted = lead.filter(pl.col("IsConverted") == "TRUE")
    assert set(lead["IsConverted"].unique()) == {"TRUE", "FALSE"}
    assert converted.height > 0
    assert converted["ConvertedDate"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    assert converted["ConvertedOpportunityId"].str.starts_with("006").all()
    assert converted["ConvertedContactId"].str.starts_with("003").all()
    assert converted["ConvertedAccountId"].str.starts_with("001").all()


def test_export_lead_ids_in_creation_order(demo: DemoOrg) -> None:
    lead = _csv(demo, "Lead")
    assert lead["Id"].to_list() == sorted(lead["Id"].to_list())
    assert lead["CreatedDate"].to_list() == sorted(lead["CreatedDate"].to_list())


# --- what real orgs contain -------------------------------------------------


def test_demo_users_teams(demo: DemoOrg) -> None:
    users = _csv(demo, "User")
    sales = users.filter(pl.col("Department") == "Sales")
    assert sales.height == 12
    assert sales.filter(pl.col("IsActive") == "FALSE").height == 2
    assert users.filter(pl.col("Department") == "Marketing").height == 3
    assert sales["Name"].str.contains(r"^Sales Rep \d{2}$").all()


def test_demo_deactivated_rep_reassigned(demo: DemoOrg) -> None:
    inactive = _csv(demo, "User").filter(pl.col("IsActive") == "FALSE")["Id"]
    owner = _csv(demo, "LeadHistory").filter(pl.col("Field") == "Owner")
    id_rows = owner.filter(pl.col("DataType") == "EntityId")
    name_rows = owner.filter(pl.col("DataType") == "Text")
    moved = id_rows.filter(
        pl.col("OldValue").is_in(inactive.implode())
        & pl.col("NewValue").str.starts_with("005")
    )
    assert moved.height > 0
    assert moved["OldValue"].n_unique() == 2
    assert name_rows.height == id_rows.height
    assert name_rows.select("LeadId", "CreatedDate").equals(
        id_rows.select("LeadId", "CreatedDate")
    )
    assert not name_rows["NewValue"].str.starts_with("005").any()


def test_demo_routing_to_inactive_rep(demo: DemoOrg, tables: CanonicalTables) -> None:
    users = _csv(demo, "User")
    left = users.filter(pl.col("IsActive") == "FALSE")
    deactivated_at = dt.datetime.fromisoformat(
        left["LastModifiedDate"].min().replace("+0000", "+00:00")
    )
    owners = tables["owner_events"].filter(
        pl.col("owner_id").is_in(left["Id"].implode())
        & (pl.col("assigned_at") > deactivated_at)
    )
    assert owners.height > 0


def test_demo_list_emails(demo: DemoOrg) -> None:
    tasks = _csv(demo, "Task").filter(pl.col("TaskSubtype") == "ListEmail")
    assert tasks.height > 0
    assert (tasks["Status"] == "Completed").all()


def test_demo_open_tasks(demo: DemoOrg) -> None:
    tasks = _csv(demo, "Task").filter(pl.col("IsClosed") == "FALSE")
    assert tasks.height > 0
    assert (tasks["Status"] == "Not Started").all()
    assert tasks["CompletedDateTime"].is_null().all()


def test_demo_marketing_user_touches(demo: DemoOrg) -> None:
    marketing = _csv(demo, "User").filter(pl.col("Department") == "Marketing")["Id"]
    tasks = _csv(demo, "Task").filter(
        pl.col("OwnerId").is_in(marketing.implode())
        & pl.col("TaskSubtype").is_in(["Call", "Email"])
    )
    assert tasks.height > 0


def test_demo_touches_on_contacts(demo: DemoOrg) -> None:
    tasks = _csv(demo, "Task")
    events = _csv(demo, "Event")
    assert tasks["WhoId"].str.starts_with("003").any()
    assert tasks["WhoId"].str.starts_with("00Q").any()
    assert events["StartDateTime"].str.contains(ISO_TIMESTAMP).all()


def test_demo_unmapped_statuses(tables: CanonicalTables) -> None:
    unmapped = tables.unmapped_statuses
    leads = tables["leads"]
    unmapped_leads = leads.filter(pl.col("status_raw").is_in(list(unmapped)))
    assert set(unmapped) == {"Contacted - Waiting", "On Hold"}
    assert 0 < unmapped_leads.height / LEADS < 0.03


def test_demo_re_mqls(tables: CanonicalTables) -> None:
    handoffs = tables["stage_events"].filter(pl.col("stage") == "mql")
    again = handoffs.group_by("lead_id").len().filter(pl.col("len") >= 2)
    recycled = tables["stage_events"].filter(pl.col("stage") == "recycled")
    assert again.height > 0
    assert recycled.height > again.height


def test_demo_rejection_reasons(tables: CanonicalTables) -> None:
    rejected = tables["stage_events"].filter(pl.col("stage") == "rejected")
    reasons = rejected["reason"].drop_nulls()
    assert reasons.len() > 0
    assert rejected["reason"].null_count() > 0
    assert set(reasons.unique()) <= {
        "No budget",
        "Not ICP",
        "Competitor",
        "Student",
        "Bad data",
        "No response",
    }


def test_demo_conversions(tables: CanonicalTables) -> None:
    stages = tables["stage_events"]["stage"].unique().to_list()
    opportunities = tables["opportunities"]
    converted = tables["leads"].filter(pl.col("is_converted"))
    assert {"mql", "sal", "sql", "rejected", "recycled", "opportunity"} <= set(stages)
    assert converted.height == opportunities.height
    assert opportunities["lead_ids"].list.len().min() == 1
    assert opportunities["is_won"].any()
    assert (~opportunities["is_closed"]).any()


@pytest.mark.parametrize(
    ("when", "expression"),
    [
        pytest.param("weekend", pl.col("local").dt.weekday() >= 6, id="weekend"),
        pytest.param(
            "night",
            (pl.col("local").dt.hour() < 7) | (pl.col("local").dt.hour() >= 20),
            id="night",
        ),
        pytest.param(
            "daylight saving",
            pl.col("local")
            .dt.date()
            .is_in([dt.date(2024, 11, 3), dt.date(2025, 3, 9)]),
            id="dst",
        ),
        pytest.param(
            "holiday",
            pl.col("local")
            .dt.date()
            .is_in(list(holidays.country_holidays("US", years=[2024, 2025]))),
            id="holiday",
        ),
    ],
)
def test_demo_awkward_handoffs(
    tables: CanonicalTables, when: str, expression: pl.Expr
) -> None:
    assert _local_handoffs(tables).filter(expression).height > 0, when


def test_demo_multi_touch_journeys(tables: CanonicalTables) -> None:
    first = (
        tables["stage_events"]
        .filter(pl.col("stage") == "mql")
        .group_by("lead_id")
        .agg(pl.col("entered_at").min())
    )
    before = (
        first.join(tables["touches"], on="lead_id", how="left")
        .group_by("lead_id")
        .agg((pl.col("touched_at") < pl.col("entered_at")).sum().alias("touches"))
    )
    assert (before["touches"] >= 2).mean() > 0.5


def test_demo_campaigns(tables: CanonicalTables) -> None:
    campaigns = tables["campaigns"]
    assert campaigns.height == 25
    assert campaigns["name"].str.contains(r"^20\d\d-Q[1-4] [A-Za-z ]+: .+$").all()
    assert set(campaigns["channel"]) == {
        "Webinar",
        "Email",
        "Paid Search",
        "Content Syndication",
        "Trade Show",
        "Partner",
    }
    assert campaigns.filter(pl.col("cost") > 0).height >= 20


def test_demo_target_accounts(tables: CanonicalTables) -> None:
    accounts = tables["accounts"]
    assert accounts.height == 80
    assert accounts["is_target"].sum() == 16


def test_demo_lead_scores(tables: CanonicalTables) -> None:
    missing = tables["leads"]["score"].null_count() / LEADS
    assert 0.08 < missing < 0.25


def test_demo_no_personal_values(demo: DemoOrg, tables: CanonicalTables) -> None:
    lead = _csv(demo, "Lead")
    personal = set()
    for column in ("Email", "Phone", "FirstName", "LastName", "Name"):
        personal |= set(lead[column].drop_nulls())
    found = []
    for name, table in tables.tables.items():
        for column, dtype in table.schema.items():
            values = table[column]
            if dtype == pl.List(pl.String):
                values = values.explode()
            elif dtype != pl.String:
                continue
            hits = set(values.drop_nulls()) & personal
            found += [f"{name}.{column}: {value}" for value in sorted(hits)[:3]]
    assert len(personal) == 5 * LEADS
    assert found == []


def test_demo_personal_values_synthetic(demo: DemoOrg) -> None:
    lead = _csv(demo, "Lead")
    assert lead["Email"].str.contains(r"^lead\d{5}@example\.com$").all()
    assert lead["FirstName"].str.contains(r"^First\d{5}$").all()
    assert lead["Phone"].str.contains(r"^\(\d{3}\) 555-01\d{2}$").all()


# --- survey -----------------------------------------------------------------


def test_survey_columns_and_teams(demo: DemoOrg) -> None:
    survey = pl.read_csv(demo.survey_path)
    assert tuple(survey.columns) == SURVEY_COLUMNS
    assert survey.height == 12
    assert set(survey["team"]) == {"sales", "marketing", "leadership"}
    assert survey["respondent_id"].n_unique() == 12


def test_survey_perception_gap(demo: DemoOrg) -> None:
    survey = pl.read_csv(demo.survey_path)
    means = survey.group_by("team").agg(pl.col(SURVEY_COLUMNS[3:8]).mean())
    sales = means.filter(pl.col("team") == "sales").row(0, named=True)
    marketing = means.filter(pl.col("team") == "marketing").row(0, named=True)
    gaps = {key: marketing[key] - sales[key] for key in SURVEY_COLUMNS[3:8]}
    assert max(gaps.values()) >= 1.0
    assert gaps["attribution"] == pytest.approx(1.6)
    assert survey["lead_handoff"].mean() > 3.5


def test_survey_reads(demo: DemoOrg) -> None:
    survey = read_survey(demo.survey_path)
    gaps = survey.perception_gaps(1.0).filter(pl.col("flagged"))
    assert survey.respondents == 12
    assert gaps["dimension"].to_list() == ["attribution"]


# --- funnel rates at the default size ---------------------------------------


@pytest.fixture(scope="module")
def default_run() -> dict[str, Any]:
    """Score the default demo (5,000 leads, seed 7) without the data-quality gate."""
    return run_score(ScoreRequest(demo=True, run_gate=False)).document


@pytest.mark.parametrize(
    ("metric", "low", "high"),
    [
        pytest.param("sal_rate", 0.55, 0.65, id="sal-rate"),
        pytest.param("sla_breach_rate", 0.35, 0.50, id="sla-breach"),
        pytest.param("speed_to_lead_median_business_hours", 3.0, 6.0, id="median"),
        pytest.param("untouched_share", 0.08, 0.12, id="untouched"),
        pytest.param("rejection_reason_share", 0.5, 0.7, id="reasons"),
        pytest.param("unmapped_status_share", 0.01, 0.02, id="unmapped"),
    ],
)
def test_default_demo_rates(
    default_run: dict[str, Any], metric: str, low: float, high: float
) -> None:
    assert low <= default_run["metrics"][metric]["value"] <= high


def test_default_demo_scores_mid_scale(default_run: dict[str, Any]) -> None:
    overall = default_run["scorecard"]["overall"]["score"]
    levels = {d["key"]: d["level"] for d in default_run["scorecard"]["dimensions"]}
    assert 2.0 <= overall < 3.0
    assert min(levels.values()) >= 2
    assert max(levels.values()) <= 4


def test_default_demo_audit_over_claim(default_run: dict[str, Any]) -> None:
    audit = {d["key"]: d for d in default_run["audit"]["dimensions"]}
    assert audit["lead_handoff"]["everyone"]["verdict"] == "over-claim"
    assert audit["attribution"]["perception_gap"] is True


# --- command line -----------------------------------------------------------


def test_cli_demo_writes_export(tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--leads", "120"])
    assert result.exit_code == 0, result.output
    assert "As-of time: 2025-11-01T00:00:00Z" in result.output
    assert "120 leads" in result.output
    assert (out / "Lead.csv").is_file()
    assert (out / "revalign.yaml").is_file()


def test_cli_demo_rejects_zero_leads(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path), "--leads", "0"])
    assert result.exit_code == 2


def test_cli_demo_unwritable_out(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--out", str(blocker), "--leads", "20"])
    assert result.exit_code == 2
    assert "cannot write the demo export" in result.output
