"""The Salesforce export reader: spellings, missing files, bad cells, personal data."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from config.models import OrgConfig, load_config
from connectors.errors import InputError
from connectors.salesforce_export import read_export
from connectors.values import (
    parse_datetime,
    redact,
    redact_counts,
    redact_free_text,
    redact_text,
)
from tests.conftest import CASES_DIR

UTC = dt.UTC


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2024-03-05T14:22:10.000+0000", dt.datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC), id="offset-0000"),
        pytest.param("2024-03-05T14:22:10Z", dt.datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC), id="zulu"),
        pytest.param("2024-03-05T14:22:10+00:00", dt.datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC), id="offset-colon"),
        pytest.param("2024-03-05T14:22:10+00", dt.datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC), id="offset-hours"),
        pytest.param("2024-03-05T09:22:10.000-0500", dt.datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC), id="offset-minus-5"),
        pytest.param("1709648530000", dt.datetime(2024, 3, 5, 14, 22, 10, tzinfo=UTC), id="epoch-ms"),
        pytest.param("03/05/2024 2:22 PM", dt.datetime(2024, 3, 5, 19, 22, tzinfo=UTC), id="locale-est"),
        pytest.param("07/05/2024 2:22 PM", dt.datetime(2024, 7, 5, 18, 22, tzinfo=UTC), id="locale-edt"),
        pytest.param("02/24/26 02:18 AM", dt.datetime(2026, 2, 24, 7, 18, tzinfo=UTC), id="two-digit-year"),
        pytest.param("02/03/24", dt.datetime(2024, 2, 3, 5, 0, tzinfo=UTC), id="date-only"),
    ],
)
def test_parse_datetime_spellings(text: str, expected: dt.datetime) -> None:
    frame = pl.DataFrame({"CreatedDate": [text]})
    parsed, _ = parse_datetime(
        frame, "CreatedDate", source="Lead.csv", time_zone="America/New_York"
    )
    assert parsed[0] == expected


def test_parse_datetime_counts_zoneless_values() -> None:
    frame = pl.DataFrame({"d": ["03/05/2024 2:22 PM", "02/03/24", "2024-03-05T14:22:10Z"]})
    _, forms = parse_datetime(frame, "d", source="x.csv", time_zone="UTC")
    assert forms == {"zoneless_time": 1, "date_only": 1}


def test_parse_datetime_error_names_file_row_field_value() -> None:
    frame = pl.DataFrame({"CreatedDate": ["2024-03-05T14:22:10Z", "yesterday"]})
    with pytest.raises(InputError, match=r"Lead\.csv: field `CreatedDate`.*row 3: 'yesterday'"):
        parse_datetime(frame, "CreatedDate", source="Lead.csv", time_zone="UTC")


def test_read_export_without_lead_file(tmp_path: Path) -> None:
    _write(tmp_path, "User.csv", "Id,IsActive,Department\n0055g00000RepS1AAA,TRUE,Sales\n")
    with pytest.raises(InputError, match="Lead.csv not found"):
        read_export(tmp_path, OrgConfig())


def test_read_export_missing_required_column(tmp_path: Path) -> None:
    _write(tmp_path, "Lead.csv", "Id,CreatedDate\n00Q1,2024-03-05T14:22:10Z\n")
    with pytest.raises(InputError, match=r"Lead\.csv: missing required column\(s\) Status"):
        read_export(tmp_path, OrgConfig())


def test_read_export_bad_boolean_names_row(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "Lead.csv",
        "Id,Status,IsConverted\n00Q1,New,FALSE\n00Q2,New,maybe\n",
    )
    with pytest.raises(InputError, match=r"field `IsConverted`.*row 3: 'maybe'.*TRUE or FALSE"):
        read_export(tmp_path, OrgConfig())


def test_read_export_reports_missing_files_and_columns() -> None:
    folder = CASES_DIR / "sfdc-demo-export"
    tables = read_export(folder, load_config(folder / "revalign.yaml"))
    assert tables.counts == {"Lead": 22, "Opportunity": 36, "OpportunityHistory": 48, "Account": 18}
    assert tables.missing["leads.created_at"] == "Lead has no CreatedDate column"
    assert tables.missing["stage_events"] == "no LeadHistory file, so no status history"
    assert tables.missing["activities"] == "no Task or Event file, so no sales activities"
    assert tables.missing["users"] == "no User file, so teams and active reps are unknown"
    assert "LeadHistory.csv" in tables.notes[0]


def test_read_export_drops_personal_fields() -> None:
    folder = CASES_DIR / "sfdc-demo-export"
    tables = read_export(folder, load_config(folder / "revalign.yaml"))
    raw = pl.read_csv(folder / "Lead.csv", infer_schema=False)
    personal = set(
        pl.concat([raw["LastName"], raw["FirstName"], raw["Email"], raw["Phone"]]).drop_nulls()
    )
    for name, frame in tables.tables.items():
        for column in frame.columns:
            if frame[column].dtype == pl.String:
                leaked = personal & set(frame[column].drop_nulls())
                assert not leaked, f"{name}.{column} holds personal values"


def test_read_export_owner_history_keeps_ids() -> None:
    folder = CASES_DIR / "sf-export-business-hours"
    tables = read_export(folder, load_config(folder / "revalign.yaml"))
    owners = tables["owner_events"].filter(pl.col("lead_id") == "00Q5g00000LeadL6AA")
    assert owners["owner_id"].to_list() == [
        "0055g00000MktM1AAA",
        "0055g00000RepS3AAA",
        "0055g00000RepS2AAA",
    ]


def test_read_export_counts_unmapped_statuses(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "Lead.csv",
        "Id,Status\n00Q1,Marketing Qualified\n00Q2,On Hold\n00Q3,On Hold\n",
    )
    tables = read_export(tmp_path, OrgConfig())
    assert tables.unmapped_statuses == {"On Hold": 2}


def test_read_export_zoneless_note_names_time_zone() -> None:
    folder = CASES_DIR / "sfdc-demo-export"
    tables = read_export(folder, load_config(folder / "revalign.yaml"))
    zone_notes = [note for note in tables.notes if "America/Los_Angeles" in note]
    assert zone_notes == [
        "Opportunity.CreatedDate (date only): 36 value(s) had no time zone; "
        "read in the org's time zone America/Los_Angeles",
        "OpportunityHistory.CreatedDate (zoneless time): 48 value(s) had no time zone; "
        "read in the org's time zone America/Los_Angeles",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"Id,Status,Status\n00Q1,New,Open\n", "column(s) 'Status' appear more than once", id="duplicate-header"),
        pytest.param(b"Id,Status\n00Q1,Qualifi\xe9\n", "is not UTF-8 encoded", id="latin-1"),
        pytest.param(b"Id,Status\n00Q1,New,extra\n", "row 2 has 3 cells but the header has 2", id="ragged-row"),
        pytest.param(b'Id,Status\n00Q1,"New\n00Q2,Open\n', "near line 2; check for an unclosed quote", id="open-quote"),
        pytest.param(b"Id,Status\n", "has a header but no lead rows", id="header-only"),
    ],
)
def test_read_export_malformed_lead_file(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "Lead.csv").write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)):
        read_export(tmp_path, OrgConfig())


def test_missing_header_error_does_not_echo_cells(tmp_path: Path) -> None:
    (tmp_path / "Lead.csv").write_text(
        "00Q1,Zelda Quixotewski,zelda@example.com,+1-555-867-5300\n"
        "00Q2,Ann Other,ann@example.com,+1-555-867-5301\n"
    )
    with pytest.raises(InputError) as caught:
        read_export(tmp_path, OrgConfig())
    message = str(caught.value)
    assert "Zelda" not in message
    assert "zelda@example.com" not in message
    assert "555" not in message
    assert "are not API field names" in message


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("zelda.q@example.com", "<e-mail address>", id="email"),
        pytest.param("+1-555-867-5300", "<phone number>", id="phone"),
        pytest.param("(850) 644-4200", "<phone number>", id="phone-brackets"),
        pytest.param("2025-02-30", "'2025-02-30'", id="date-kept"),
    ],
)
def test_cell_errors_redact_personal_values(value: str, shown: str) -> None:
    frame = pl.DataFrame({"CreatedDate": [value]})
    with pytest.raises(InputError) as caught:
        parse_datetime(frame, "CreatedDate", source="Lead.csv", time_zone="UTC")
    assert f"row 2: {shown}" in str(caught.value)


def test_user_departments_match_loosely_and_unmapped_are_noted(tmp_path: Path) -> None:
    _write(tmp_path, "Lead.csv", "Id,Status\n00Q1,New\n")
    _write(
        tmp_path,
        "User.csv",
        "Id,IsActive,Department\nU1,TRUE, SALES \nU2,TRUE,Inside Sales EMEA\nU3,TRUE,Inside Sales EMEA\n",
    )
    tables = read_export(tmp_path, OrgConfig())
    assert tables["users"]["team"].to_list() == ["sales", "other", "other"]
    assert any("'Inside Sales EMEA' (2)" in note for note in tables.notes)


@pytest.mark.parametrize("amount", ["1e400", "NaN", "inf"])
def test_non_finite_amount_is_rejected(tmp_path: Path, amount: str) -> None:
    _write(tmp_path, "Lead.csv", "Id,Status\n00Q1,New\n")
    _write(tmp_path, "Opportunity.csv", f"Id,Amount\n006A,{amount}\n")
    with pytest.raises(InputError, match=r"field `Amount`.*a finite number"):
        read_export(tmp_path, OrgConfig())


def test_time_zones_of_users_and_leads(tmp_path: Path) -> None:
    _write(tmp_path, "Lead.csv", "Id,Status,Lead_TZ__c\n00Q1,New,Europe/Berlin\n00Q2,New,\n")
    _write(
        tmp_path,
        "User.csv",
        "Id,IsActive,Department,TimeZoneSidKey\nU1,TRUE,Sales,America/Los_Angeles\nU2,TRUE,Sales,\n",
    )
    config = OrgConfig.model_validate({"fields": {"lead_time_zone": "Lead_TZ__c"}})
    tables = read_export(tmp_path, config)
    assert tables["leads"]["time_zone"].to_list() == ["Europe/Berlin", None]
    assert tables["users"]["time_zone"].to_list() == ["America/Los_Angeles", None]


def test_status_values_that_look_personal_are_redacted(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "Lead.csv",
        "Id,Status\n00Q1,New\n00Q2,call Zorbald +1 555 017 9999\n"
        "00Q3,ask zorbald@example.com\n00Q4,Parked\n",
    )
    tables = read_export(tmp_path, OrgConfig())
    assert tables["leads"]["status_raw"].to_list() == [
        "New",
        "<phone number>",
        "<e-mail address>",
        "Parked",
    ]
    assert tables.unmapped_statuses == {
        "<phone number>": 1,
        "<e-mail address>": 1,
        "Parked": 1,
    }


def test_redact_counts_merges_placeholders() -> None:
    counts = {"+1 555 017 9999": 2, "(850) 644-4200": 1, "Working": 4}
    assert redact_counts(counts) == {"<phone number>": 3, "Working": 4}


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        pytest.param("Call (415) 555-0199", False, id="brackets-inside"),
        pytest.param("Callback 4155550142", False, id="plain-digits"),
        pytest.param("tel +44 20 7946 0958", False, id="plus-inside"),
        pytest.param("Ring 020 7946 0959", False, id="uk-spaces"),
        pytest.param("555-0145 ext 22", False, id="seven-digits"),
        pytest.param("call back 2025-07-01", True, id="iso-date"),
        pytest.param("Call 2025-11-01 555 0199", False, id="date-then-phone"),
        pytest.param("Webinar 20250701", True, id="compact-date"),
        pytest.param("Q3 2025 budget", True, id="year"),
        pytest.param("Open - Not Contacted", True, id="status"),
    ],
)
def test_free_text_phone_numbers_redacted(value: str, kept: bool) -> None:
    frame = pl.DataFrame({"reason": [value]}).select(redact_text("reason"))
    expected = value if kept else "<phone number>"
    assert frame["reason"][0] == expected
    assert redact_free_text(value) == expected


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        pytest.param("12345678", "'12345678'", id="plain-amount"),
        pytest.param("2025-07-01 10:00:00", "'2025-07-01 10:00:00'", id="timestamp"),
        pytest.param("call 020 7946 0959", "<phone number>", id="spaced-phone"),
    ],
)
def test_error_cell_redaction_keeps_plain_numbers(value: str, shown: str) -> None:
    assert redact(value) == shown


def test_department_note_redacts_personal_values(tmp_path: Path) -> None:
    _write(tmp_path, "Lead.csv", "Id,Status\n00Q1,New\n")
    _write(
        tmp_path,
        "User.csv",
        "Id,IsActive,Department\nU1,TRUE,Sales erin@example.com\n",
    )
    tables = read_export(tmp_path, OrgConfig())
    note = next(n for n in tables.notes if n.startswith("User departments"))
    assert "'<e-mail address>' (1)" in note
    assert "erin" not in " ".join(tables.notes)
