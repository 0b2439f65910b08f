"""HubSpot connector through hubspot-api-client against the fake API on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import yaml
from hubspot import HubSpot
from pydantic import ValidationError
from typer.testing import CliRunner

from config.models import HubSpotConfig, OrgConfig, load_config
from connectors.hubspot_api import read_hubspot
from connectors.hubspot_client import SEARCH_CAP, HubSpotApi, HubSpotError, connect
from connectors.schema import CanonicalTables
from tests.fake_hubspot import (
    TOKEN,
    FakeHubSpot,
    FakePortal,
    define_standard_portal,
    epoch_ms,
    iso,
)

T0 = dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.UTC)  # a Monday
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)


def at(offset: dt.timedelta) -> str:
    return iso(T0 + offset)


def small_portal() -> FakePortal:
    """A portal with one contact for each case the tests check, ids fixed.

    Contact 1 moves from MQL to an opportunity; 2 is recycled and re-MQLs; 3
    survives a merge with the archived 4; 5 is rejected with a reason; 6 has no
    lifecycle history, only a date-only MQL date property.
    """
    portal = FakePortal()
    define_standard_portal(portal)
    for contact_id, values, history, archived in CONTACTS:
        portal.add(
            "contacts", values, history=history, archived=archived, object_id=contact_id
        )
    for kind, engagement_id, contacts, values in ENGAGEMENTS:
        portal.add(
            kind, {"hs_lastmodifieddate": at(DAY), **values}, object_id=engagement_id
        )
        for contact in contacts:
            portal.associate(kind, engagement_id, "contacts", contact)
    _deals_and_companies(portal)
    return portal


CONTACTS = [
    (
        "1",
        {
            "createdate": at(-DAY),
            "associatedcompanyid": "501",
            "email": " Ann@Example.com",
            "hubspotscore": "42",
            "hs_analytics_source": "ORGANIC_SEARCH",
            "hs_lifecyclestage_marketingqualifiedlead_date": epoch_ms(T0),
            "lastmodifieddate": at(3 * DAY),
        },
        {
            "lifecyclestage": [
                ("lead", at(-DAY)),
                ("marketingqualifiedlead", at(0 * DAY)),
                ("salesqualifiedlead", at(DAY)),
                ("opportunity", at(3 * DAY)),
            ],
            "hs_lead_status": [
                ("NEW", at(0 * DAY)),
                ("IN_PROGRESS", at(2 * HOUR)),
                ("CONNECTED", at(3 * HOUR)),
            ],
            "hubspot_owner_id": [
                ("201", at(-DAY)),
                ("101", at(10 * MINUTE)),
                ("101", at(DAY)),
            ],
            "recent_conversion_date": [
                (epoch_ms(T0 - DAY), at(-DAY)),
                (at(-2 * HOUR), at(-2 * HOUR)),
            ],
        },
        False,
    ),
    (
        "2",
        {"createdate": at(-2 * DAY), "lastmodifieddate": at(20 * DAY)},
        {
            "lifecyclestage": [
                ("lead", at(-2 * DAY)),
                ("marketingqualifiedlead", at(0 * DAY)),
                ("", at(20 * DAY)),
                ("lead", at(20 * DAY)),
                ("marketingqualifiedlead", at(20 * DAY + HOUR)),
            ],
            "hs_lead_status": [("IN_PROGRESS", at(HOUR)), ("BAD_TIMING", at(5 * DAY))],
            "hubspot_owner_id": [("101", at(30 * MINUTE))],
            "hs_email_last_send_date": [(epoch_ms(T0 - 3 * DAY), at(-3 * DAY))],
        },
        False,
    ),
    (
        "3",
        {
            "createdate": at(DAY),
            "hs_merged_object_ids": "4",
            "lastmodifieddate": at(DAY),
        },
        {"lifecyclestage": [("marketingqualifiedlead", at(DAY))]},
        False,
    ),
    (
        "4",
        {"createdate": epoch_ms(T0 - 10 * DAY), "lastmodifieddate": at(DAY)},
        {"lifecyclestage": [("marketingqualifiedlead", at(-10 * DAY))]},
        True,
    ),
    (
        "5",
        {"createdate": at(-DAY), "lastmodifieddate": at(4 * HOUR)},
        {
            "lifecyclestage": [("marketingqualifiedlead", at(0 * DAY))],
            "hs_lead_status": [("UNQUALIFIED", at(4 * HOUR))],
            "rejection_reason": [("Student", at(4 * HOUR))],
        },
        False,
    ),
    (
        "6",
        {
            "createdate": at(-DAY),
            "lifecyclestage": "marketingqualifiedlead",
            "hs_v2_date_entered_marketingqualifiedlead": "2024-03-05",
            "lastmodifieddate": at(DAY),
        },
        {"lifecyclestage": []},
        False,
    ),
]

SALES = {"hubspot_owner_id": "101"}
ENGAGEMENTS = [
    (
        "calls",
        "11",
        ("1",),
        {
            **SALES,
            "hs_timestamp": at(30 * MINUTE),
            "hs_call_direction": "OUTBOUND",
            "hs_call_status": "COMPLETED",
        },
    ),
    (
        "calls",
        "12",
        ("1",),
        {
            **SALES,
            "hs_timestamp": at(HOUR),
            "hs_call_direction": "OUTBOUND",
            "hs_call_status": "FAILED",
        },
    ),
    (
        "calls",
        "13",
        ("3",),
        {**SALES, "hs_timestamp": at(DAY), "hs_call_status": "NO_ANSWER"},
    ),
    (
        "calls",
        "14",
        ("4",),
        {
            "hubspot_owner_id": "102",
            "hs_timestamp": epoch_ms(T0 - 9 * DAY),
            "hs_call_status": "COMPLETED",
        },
    ),
    (
        "emails",
        "21",
        ("2",),
        {
            **SALES,
            "hs_timestamp": at(2 * HOUR),
            "hs_email_direction": "EMAIL",
            "hs_email_status": "SENT",
            "hs_engagement_source": "SEQUENCES",
        },
    ),
    (
        "emails",
        "22",
        ("2",),
        {**SALES, "hs_timestamp": at(3 * HOUR), "hs_email_direction": "INCOMING_EMAIL"},
    ),
    (
        "meetings",
        "31",
        ("1", "2"),
        {**SALES, "hs_timestamp": at(2 * DAY), "hs_meeting_outcome": "COMPLETED"},
    ),
    (
        "meetings",
        "32",
        ("5",),
        {**SALES, "hs_timestamp": at(DAY), "hs_meeting_outcome": "NO_SHOW"},
    ),
    (
        "tasks",
        "41",
        ("5",),
        {
            **SALES,
            "hs_timestamp": at(DAY),
            "hs_task_status": "NOT_STARTED",
            "hs_task_type": "CALL",
        },
    ),
    (
        "tasks",
        "42",
        ("5",),
        {
            **SALES,
            "hs_timestamp": at(DAY),
            "hs_task_status": "COMPLETED",
            "hs_task_completion_date": at(5 * HOUR),
        },
    ),
    (
        "communications",
        "51",
        ("2",),
        {
            **SALES,
            "hs_timestamp": at(90 * MINUTE),
            "hs_communication_channel_type": "SMS",
        },
    ),
    (
        "communications",
        "52",
        ("5",),
        {
            **SALES,
            "hs_timestamp": at(2 * HOUR),
            "hs_communication_channel_type": "LINKEDIN_MESSAGE",
        },
    ),
]


def _deals_and_companies(portal: FakePortal) -> None:
    portal.add("companies", {"hs_is_target_account": "true"}, object_id="501")
    portal.add("companies", {"hs_is_target_account": "false"}, object_id="502")
    late_evening = dt.datetime(2024, 3, 14, 23, 30, tzinfo=dt.UTC)
    portal.add(
        "deals",
        {
            "createdate": at(3 * DAY),
            "closedate": epoch_ms(late_evening),
            "pipeline": "default",
            "hubspot_owner_id": "101",
            "hs_analytics_source": "OFFLINE",
        },
        history={
            "dealstage": [
                ("appointmentscheduled", at(3 * DAY)),
                ("closedwon", at(10 * DAY)),
            ],
            "amount": [("5000", at(3 * DAY)), ("6000", at(9 * DAY))],
        },
        object_id="601",
    )
    portal.add(
        "deals",
        {
            "createdate": at(4 * DAY),
            "closedate": "2024-04-30",
            "pipeline": "default",
            "dealstage": "qualifiedtobuy",
            "amount": "1200.5",
        },
        object_id="602",
    )
    portal.associate("deals", "601", "contacts", "1")
    portal.associate("deals", "601", "companies", "501")
    portal.associate("deals", "602", "contacts", "4")
    portal.associate("deals", "602", "contacts", "3")


def hubspot_config(**changes: object) -> OrgConfig:
    data: dict = {
        "calendar": {"time_zone": "Europe/Berlin"},
        "hubspot": {"properties": {"rejection_reason": "rejection_reason"}},
    }
    for key, value in changes.items():
        data["hubspot"][key] = value
    return OrgConfig.model_validate(data)


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(small_portal()) as server:
        yield server


def api_for(
    server: FakeHubSpot, sleeps: list[float] | None = None, **options: int
) -> HubSpotApi:
    record = sleeps.append if sleeps is not None else (lambda seconds: None)
    return HubSpotApi(
        HubSpot(access_token=TOKEN, host=server.url), sleep=record, **options
    )


def read(
    server: FakeHubSpot, config: OrgConfig | None = None, **options
) -> CanonicalTables:
    tables, _ = read_hubspot(
        config or hubspot_config(), api=api_for(server), now=NOW, **options
    )
    return tables


def rows(frame: pl.DataFrame, *columns: str) -> list[tuple]:
    return list(frame.select(columns).iter_rows())


# Paging and history.


def test_list_paging_follows_after(fake: FakeHubSpot) -> None:
    for number in range(120):
        fake.portal.add("contacts", {"createdate": at(number * MINUTE)})
    tables = read(fake)
    assert tables["leads"].height == 125
    assert fake.portal.requests["GET /crm/v3/objects/contacts"] == 3
    assert fake.portal.requests["GET /crm/v3/objects/calls"] == 1


def test_association_paging_follows_after(fake: FakeHubSpot) -> None:
    fake.portal.association_page_size = 1
    tables = read(fake)
    meeting = tables["activities"].filter(pl.col("activity_id").str.starts_with("31"))
    assert sorted(meeting["lead_id"]) == ["1", "2"]
    assert (
        fake.portal.requests["POST /crm/v4/associations/meetings/contacts/batch/read"]
        == 2
    )


def test_history_gives_every_stage_entry(fake: FakeHubSpot) -> None:
    events = read(fake)["stage_events"].filter(pl.col("lead_id") == "1")
    assert rows(events, "stage", "entered_at", "source_field") == [
        ("mql", T0, "contacts.lifecyclestage"),
        ("sal", T0 + 2 * HOUR, "contacts.hs_lead_status"),
        ("sql", T0 + DAY, "contacts.lifecyclestage"),
        ("opportunity", T0 + 3 * DAY, "contacts.lifecyclestage"),
    ]


def test_history_gives_owner_changes(fake: FakeHubSpot) -> None:
    events = read(fake)["owner_events"].filter(pl.col("lead_id") == "1")
    assert rows(events, "owner_id", "assigned_at") == [
        ("201", T0 - DAY),
        ("101", T0 + 10 * MINUTE),
    ]


def test_date_property_fills_missing_history(fake: FakeHubSpot) -> None:
    tables = read(fake)
    events = tables["stage_events"].filter(pl.col("lead_id") == "6")
    midnight_berlin = dt.datetime(2024, 3, 4, 23, 0, tzinfo=dt.UTC)
    assert rows(events, "stage", "entered_at", "source_field") == [
        ("mql", midnight_berlin, "contacts.hs_v2_date_entered_marketingqualifiedlead"),
    ]
    assert any(
        "dates only" in note and "Europe/Berlin" in note for note in tables.notes
    )


# Contacts: recycling, merging, rejection.


def test_recycled_contact_returns_as_new_mql(fake: FakeHubSpot) -> None:
    events = read(fake)["stage_events"].filter(pl.col("lead_id") == "2")
    assert rows(events, "stage", "entered_at", "raw_value") == [
        ("mql", T0, "marketingqualifiedlead"),
        ("sal", T0 + HOUR, "IN_PROGRESS"),
        ("recycled", T0 + 5 * DAY, "BAD_TIMING"),
        ("mql", T0 + 20 * DAY + HOUR, "marketingqualifiedlead"),
    ]


def test_merged_contact_is_one_lead(fake: FakeHubSpot) -> None:
    tables = read(fake)
    leads = tables["leads"]
    assert sorted(leads["lead_id"]) == ["1", "2", "3", "5", "6"]
    merged = leads.filter(pl.col("lead_id") == "3").row(0, named=True)
    assert merged["created_at"] == T0 - 10 * DAY
    assert fake.portal.requests["POST /crm/v3/objects/contacts/batch/read"] == 1


def test_merged_contact_unites_activities(fake: FakeHubSpot) -> None:
    activities = read(fake)["activities"].filter(pl.col("lead_id") == "3")
    assert sorted(activities["activity_id"]) == ["13", "14"]


def test_merged_contact_keeps_first_mql(fake: FakeHubSpot) -> None:
    events = read(fake)["stage_events"].filter(pl.col("lead_id") == "3")
    assert rows(events, "stage", "entered_at") == [("mql", T0 - 10 * DAY)]


def test_merged_contact_deal_lists_person_once(fake: FakeHubSpot) -> None:
    deal = read(fake)["opportunities"].filter(pl.col("opportunity_id") == "602")
    assert deal["lead_ids"].to_list() == [["3"]]


def test_rejection_carries_reason(fake: FakeHubSpot) -> None:
    events = read(fake)["stage_events"].filter(pl.col("lead_id") == "5")
    assert rows(events, "stage", "reason") == [("mql", None), ("rejected", "Student")]


def test_lead_columns_from_contact(fake: FakeHubSpot) -> None:
    lead = read(fake)["leads"].filter(pl.col("lead_id") == "1").row(0, named=True)
    assert lead["created_at"] == T0 - DAY
    assert lead["owner_id"] == "101"
    assert lead["status_raw"] == "CONNECTED"
    assert lead["lifecycle_raw"] == "opportunity"
    assert lead["score"] == 42.0
    assert lead["account_id"] == "501"
    assert lead["source"] == "ORGANIC_SEARCH"
    assert lead["is_converted"] is True
    assert lead["converted_on"] == dt.date(2024, 3, 7)
    assert lead["opportunity_id"] == "601"
    assert len(lead["email_hash"]) == 32


def test_email_never_stored_in_state(fake: FakeHubSpot, tmp_path: Path) -> None:
    read(fake, state_dir=tmp_path)
    stored = pl.read_parquet(tmp_path / "hubspot" / "org" / "objects-contacts.parquet")
    assert "email" not in stored.columns
    assert "email_hash" in stored.columns


# Dates.


def test_epoch_milliseconds_parse_to_utc(fake: FakeHubSpot) -> None:
    tables = read(fake)
    call = tables["activities"].filter(pl.col("activity_id") == "14").row(0, named=True)
    assert call["occurred_at"] == T0 - 9 * DAY
    deal = (
        tables["opportunities"]
        .filter(pl.col("opportunity_id") == "601")
        .row(0, named=True)
    )
    assert deal["close_date"] == dt.date(2024, 3, 15)


def test_date_only_close_date_kept(fake: FakeHubSpot) -> None:
    deal = (
        read(fake)["opportunities"]
        .filter(pl.col("opportunity_id") == "602")
        .row(0, named=True)
    )
    assert deal["close_date"] == dt.date(2024, 4, 30)


def test_invalid_date_names_record(fake: FakeHubSpot) -> None:
    fake.portal.add("calls", {"hs_timestamp": "yesterday"}, object_id="19")
    with pytest.raises(
        Exception, match=r"calls property `hs_timestamp`.*record 19: 'yesterday'"
    ):
        read(fake)


# Engagements.


@pytest.mark.parametrize(
    ("activity_id", "kind", "direction", "automated", "completed", "occurred"),
    [
        pytest.param(
            "11", "call", "outbound", False, True, T0 + 30 * MINUTE, id="call-done"
        ),
        pytest.param(
            "12", "call", "outbound", False, False, T0 + HOUR, id="call-failed"
        ),
        pytest.param("13", "call", None, False, True, T0 + DAY, id="call-no-answer"),
        pytest.param(
            "21", "email", "outbound", True, True, T0 + 2 * HOUR, id="sequence-email"
        ),
        pytest.param(
            "22", "email", "inbound", False, True, T0 + 3 * HOUR, id="incoming-email"
        ),
        pytest.param("32", "meeting", None, False, False, T0 + DAY, id="no-show"),
        pytest.param("41", "task", None, False, False, T0 + DAY, id="open-task"),
        pytest.param("42", "task", None, False, True, T0 + 5 * HOUR, id="done-task"),
        pytest.param("51", "sms", None, False, True, T0 + 90 * MINUTE, id="sms"),
        pytest.param("52", "other", None, False, True, T0 + 2 * HOUR, id="linkedin"),
    ],
)
def test_engagement_becomes_activity(
    fake: FakeHubSpot,
    activity_id: str,
    kind: str,
    direction: str | None,
    automated: bool,
    completed: bool,
    occurred: dt.datetime,
) -> None:
    activity = read(fake)["activities"].filter(pl.col("activity_id") == activity_id)
    row = activity.row(0, named=True)
    assert row["kind"] == kind
    assert row["direction"] == direction
    assert row["is_automated"] is automated
    assert row["is_completed"] is completed
    assert row["occurred_at"] == occurred


def test_shared_meeting_one_row_per_lead(fake: FakeHubSpot) -> None:
    activities = read(fake)["activities"].filter(
        pl.col("activity_id").str.starts_with("31")
    )
    assert sorted(rows(activities, "activity_id", "lead_id", "account_id")) == [
        ("31:1", "1", "501"),
        ("31:2", "2", None),
    ]


def test_sms_counted_per_config(fake: FakeHubSpot) -> None:
    config = hubspot_config(engagements={"communication_kinds": {"SMS": "other"}})
    sms = read(fake, config)["activities"].filter(pl.col("activity_id") == "51")
    assert sms["kind"].to_list() == ["other"]


# Deals, owners, companies, touches.


def test_deal_becomes_opportunity(fake: FakeHubSpot) -> None:
    deal = (
        read(fake)["opportunities"]
        .filter(pl.col("opportunity_id") == "601")
        .row(0, named=True)
    )
    assert deal["account_id"] == "501"
    assert deal["created_at"] == T0 + 3 * DAY
    assert deal["is_closed"] is True
    assert deal["is_won"] is True
    assert deal["amount"] == 6000.0
    assert deal["stage_raw"] == "Closed Won"
    assert deal["source"] == "OFFLINE"
    assert deal["owner_id"] == "101"
    assert deal["lead_ids"] == ["1"]


def test_open_deal_not_closed(fake: FakeHubSpot) -> None:
    deal = (
        read(fake)["opportunities"]
        .filter(pl.col("opportunity_id") == "602")
        .row(0, named=True)
    )
    assert deal["is_closed"] is False
    assert deal["is_won"] is False
    assert deal["stage_raw"] == "Qualified To Buy"
    assert deal["amount"] == 1200.5


def test_deal_stage_history_with_amounts(fake: FakeHubSpot) -> None:
    history = read(fake)["opportunity_history"].filter(
        pl.col("opportunity_id") == "601"
    )
    assert rows(history, "stage_raw", "amount", "changed_at") == [
        ("Appointment Scheduled", 5000.0, T0 + 3 * DAY),
        ("Closed Won", 6000.0, T0 + 10 * DAY),
    ]


def test_owners_include_archived(fake: FakeHubSpot) -> None:
    users = read(fake)["users"].sort("user_id")
    assert rows(users, "user_id", "team", "is_active") == [
        ("101", "sales", True),
        ("102", "sales", False),
        ("201", "marketing", True),
        ("301", "other", True),
    ]
    archived = users.filter(pl.col("user_id") == "102").row(0, named=True)
    assert archived["deactivated_at"] == dt.datetime(2024, 6, 30, 12, tzinfo=dt.UTC)


def test_owner_team_from_config_ids(fake: FakeHubSpot) -> None:
    config = OrgConfig.model_validate(
        {
            "teams": {"users": {"301": "sales"}},
            "hubspot": {"teams": {"Marketing": "other"}},
        }
    )
    users = read(fake, config)["users"].sort("user_id")
    assert rows(users, "user_id", "team") == [
        ("101", "other"),
        ("102", "other"),
        ("201", "other"),
        ("301", "sales"),
    ]


def test_companies_mark_target_accounts(fake: FakeHubSpot) -> None:
    accounts = read(fake)["accounts"].sort("account_id")
    assert rows(accounts, "account_id", "is_target") == [("501", True), ("502", False)]


def test_conversions_and_sends_become_touches(fake: FakeHubSpot) -> None:
    tables = read(fake)
    touches = tables["touches"].sort("lead_id", "touched_at")
    assert rows(
        touches, "touch_id", "lead_id", "touched_at", "channel", "responded"
    ) == [
        (f"1:form:{epoch_ms(T0 - DAY)}", "1", T0 - DAY, "form", True),
        (f"1:form:{epoch_ms(T0 - 2 * HOUR)}", "1", T0 - 2 * HOUR, "form", True),
        (f"2:email:{epoch_ms(T0 - 3 * DAY)}", "2", T0 - 3 * DAY, "email", False),
    ]
    assert rows(touches, "account_id") == [("501",), ("501",), (None,)]
    assert "campaigns" in tables.missing


def test_touches_missing_without_touch_properties() -> None:
    portal = small_portal()
    portal.definitions["contacts"] = [
        d
        for d in portal.definitions["contacts"]
        if d["name"] not in ("recent_conversion_date", "hs_email_last_send_date")
    ]
    with FakeHubSpot(portal) as server:
        tables = read(server)
    assert "recent_conversion_date" in tables.missing["touches"]
    assert not tables.has("touches")


def test_unmapped_values_counted(fake: FakeHubSpot) -> None:
    fake.portal.add("contacts", {"hs_lead_status": "WAITING", "lifecyclestage": "1234"})
    tables = read(fake)
    assert tables.unmapped_statuses == {"WAITING": 2, "lifecyclestage=1234": 2}


# Limits: search cap, rate limits, errors.


def test_search_window_over_cap_is_split() -> None:
    portal = FakePortal()
    count = SEARCH_CAP + 50
    for number in range(count):
        portal.add(
            "contacts", {"lastmodifieddate": iso(T0 + number * dt.timedelta(seconds=8))}
        )
    with FakeHubSpot(portal) as server:
        found = api_for(server).search_modified(
            "contacts",
            "lastmodifieddate",
            T0,
            T0 + DAY,
            [],
            window=dt.timedelta(days=7),
        )
    assert len(found) == count
    assert len({record.id for record in found}) == count
    windows = [
        tuple(rule["value"] for rule in body["filterGroups"][0]["filters"])
        for body in portal.search_bodies
        if not body.get("after")
    ]
    start, end, middle = epoch_ms(T0), epoch_ms(T0 + DAY), epoch_ms(T0 + DAY / 2)
    assert windows == [(start, end), (start, middle), (middle, end)]


def test_search_cap_within_one_millisecond_raises() -> None:
    portal = FakePortal()
    for _ in range(SEARCH_CAP + 1):
        portal.add("contacts", {"lastmodifieddate": iso(T0)})
    with (
        FakeHubSpot(portal) as server,
        pytest.raises(HubSpotError, match="in the one millisecond"),
    ):
        api_for(server).search_modified(
            "contacts", "lastmodifieddate", T0, T0 + MINUTE, [], window=DAY
        )


def test_search_windows_follow_config_size(fake: FakeHubSpot) -> None:
    found = api_for(fake).search_modified(
        "calls", "hs_lastmodifieddate", T0, T0 + 3 * DAY, [], window=DAY
    )
    assert sorted(record.id for record in found) == ["11", "12", "13", "14"]
    assert fake.portal.requests["POST /crm/v3/objects/calls/search"] == 3


def test_rate_limit_honours_retry_after(fake: FakeHubSpot) -> None:
    fake.portal.inject(429, retry_after="7")
    sleeps: list[float] = []
    owners = api_for(fake, sleeps).owners()
    assert len(owners) == 4
    assert sleeps == [7.0]


def test_rate_limit_without_retry_after_backs_off(fake: FakeHubSpot) -> None:
    fake.portal.inject(429, count=3)
    sleeps: list[float] = []
    owners = api_for(fake, sleeps).owners()
    assert len(owners) == 4
    assert sleeps == [1.0, 2.0, 4.0]


def test_rate_limit_retries_are_bounded(fake: FakeHubSpot) -> None:
    fake.portal.inject(429, count=10)
    sleeps: list[float] = []
    api = api_for(fake, sleeps, max_retries=3, max_backoff_seconds=3.0)
    with pytest.raises(HubSpotError, match="status 429") as raised:
        api.owners()
    assert sleeps == [1.0, 2.0, 3.0]
    assert raised.value.retryable is True
    assert raised.value.exit_code == 4


def test_retry_after_capped_by_max_backoff(fake: FakeHubSpot) -> None:
    fake.portal.inject(429, retry_after="600")
    sleeps: list[float] = []
    api_for(fake, sleeps, max_backoff_seconds=30.0).owners()
    assert sleeps == [30.0]


def test_server_error_retried(fake: FakeHubSpot) -> None:
    fake.portal.inject(502)
    sleeps: list[float] = []
    tables, _ = read_hubspot(hubspot_config(), api=api_for(fake, sleeps), now=NOW)
    assert tables["leads"].height == 5
    assert sleeps == [1.0]


def test_rejected_token_raises(fake: FakeHubSpot) -> None:
    api = HubSpotApi(HubSpot(access_token="wrong", host=fake.url))
    with pytest.raises(
        HubSpotError, match=r"rejected the access token \(401\)"
    ) as raised:
        api.owners()
    assert raised.value.retryable is False
    assert raised.value.exit_code == 2


def test_missing_token_names_variable() -> None:
    settings = HubSpotConfig(token_env="REVALIGN_TEST_HUBSPOT_TOKEN")
    with pytest.raises(HubSpotError, match="'REVALIGN_TEST_HUBSPOT_TOKEN' is unset"):
        connect(settings)


def test_token_never_logged(
    fake: FakeHubSpot, caplog: pytest.LogCaptureFixture
) -> None:
    fake.portal.inject(429)
    api = api_for(fake)
    with caplog.at_level(logging.DEBUG):
        read_hubspot(hubspot_config(), api=api, now=NOW)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)
    calls = [
        r for r in caplog.records
        if r.name == "connectors.hubspot_client" and r.levelno == logging.INFO
        and r.getMessage().startswith("HubSpot ") and "halving" not in r.getMessage()
    ]  # fmt: skip
    assert len(calls) == api.calls
    assert api.calls == sum(fake.portal.requests.values())


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_refused_connection_retried_twice() -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    sleeps: list[float] = []
    api = HubSpotApi(HubSpot(access_token=TOKEN, host=host), sleep=sleeps.append)
    with pytest.raises(HubSpotError) as raised:
        api.owners()
    assert str(raised.value) == (
        f"cannot connect to {host}: connection refused; check hubspot.host"
    )
    assert sleeps == [0.5, 1.0]
    assert api.calls == 3
    assert raised.value.retryable is False
    assert raised.value.exit_code == 4


def test_timeout_keeps_full_backoff() -> None:
    with socket.socket() as listener:
        # The kernel accepts the connection, but nothing ever answers it.
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        host = f"http://127.0.0.1:{listener.getsockname()[1]}"
        sleeps: list[float] = []
        api = HubSpotApi(
            HubSpot(access_token=TOKEN, host=host),
            max_retries=2,
            request_timeout=(1.0, 0.2),
            sleep=sleeps.append,
        )
        with pytest.raises(HubSpotError) as raised:
            api.pipelines("deals")
    assert str(raised.value) == (
        f"HubSpot request GET /crm/v3/pipelines/deals to {host} timed out 3 times; "
        "check the network or proxy, and retry later"
    )
    assert sleeps == [1.0, 2.0]
    assert raised.value.retryable is True
    assert raised.value.exit_code == 4


def _hubspot_org(tmp_path: Path, host: str) -> Path:
    config_path = tmp_path / "revalign.yaml"
    config_path.write_text(yaml.safe_dump({"hubspot": {"host": host}}))
    return config_path


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["check", "hubspot"], id="check"),
        pytest.param(["score", "--source", "hubspot"], id="score"),
    ],
)
def test_cli_refused_connection_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    from flows.cli import app

    host = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    arguments = [*command, "--config", str(_hubspot_org(tmp_path, host))]
    if command[0] == "score":
        arguments += ["--out", str(tmp_path / "out")]
    started = time.monotonic()
    result = CliRunner().invoke(app, arguments)
    elapsed = time.monotonic() - started
    message = " ".join(result.stderr.split())
    assert result.exit_code == 4
    assert message.startswith(
        f"error: cannot connect to {host}: connection refused; check hubspot.host"
    )
    assert "MaxRetryError" not in message
    assert "This may succeed" not in message
    assert elapsed < 10


NOT_JSON = "the body is not valid JSON (Expecting property name enclosed in "
HTML_PAGE = (
    "the body is an HTML page, not JSON; a proxy or an outage page may have "
    "sent it in place of HubSpot"
)


@pytest.mark.parametrize(
    ("body", "content_type", "reason", "retryable"),
    [
        pytest.param(
            b"{not json",
            "application/json",
            NOT_JSON + "double quotes at line 1 column 2)",
            False,
            id="not-json",
        ),
        pytest.param(
            b"<!DOCTYPE html><html><body>Sign in</body></html>",
            "text/html; charset=utf-8",
            HTML_PAGE,
            True,
            id="html",
        ),
        pytest.param(
            b'{"results":"nope"}',
            "application/json",
            "`results` is a string, not a list of objects",
            False,
            id="results-string",
        ),
        pytest.param(
            b"[1, 2]",
            "application/json",
            "the body is a list, not a JSON object",
            False,
            id="list-body",
        ),
        pytest.param(
            b'{"results":[1]}',
            "application/json",
            "`results` contains a number, not an object",
            False,
            id="result-number",
        ),
        pytest.param(
            b"{}", "application/json", "`results` is missing", False, id="no-results"
        ),
    ],
)
@pytest.mark.parametrize(
    ("endpoint", "label"),
    [
        pytest.param("list", "GET /crm/v3/objects/contacts after=-", id="list-objects"),
        pytest.param("properties", "GET /crm/v3/properties/contacts", id="model"),
    ],
)
def test_invalid_response_raises(
    fake: FakeHubSpot,
    body: bytes,
    content_type: str,
    reason: str,
    retryable: bool,
    endpoint: str,
    label: str,
) -> None:
    api = api_for(fake)
    fake.portal.inject_body(body, content_type=content_type)
    with pytest.raises(HubSpotError) as raised:
        if endpoint == "list":
            list(api.list_objects("contacts", ["email"]))
        else:
            api.property_definitions("contacts")
    assert str(raised.value) == (f"invalid response from HubSpot for {label}: {reason}")
    assert raised.value.retryable is retryable
    assert raised.value.exit_code == 4


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(
            b'{"results":[{"properties":{}}]}',
            "a result has no `id`",
            id="no-id",
        ),
        pytest.param(
            b'{"results":[{"id":"1","properties":"x"}]}',
            "`properties` of result 1 is a string, not an object",
            id="properties-string",
        ),
    ],
)
def test_invalid_result_raises(fake: FakeHubSpot, body: bytes, reason: str) -> None:
    fake.portal.inject_body(body)
    with pytest.raises(HubSpotError) as raised:
        list(api_for(fake).list_objects("contacts", ["email"]))
    assert str(raised.value) == (
        "invalid response from HubSpot for GET /crm/v3/objects/contacts after=-: "
        f"{reason}"
    )


def test_invalid_search_total_raises(fake: FakeHubSpot) -> None:
    fake.portal.inject_body(b'{"results":[],"total":"many"}')
    with pytest.raises(HubSpotError, match="`total` is a string, not a number"):
        api_for(fake).search_modified(
            "calls", "hs_lastmodifieddate", T0, T0 + DAY, [], window=DAY
        )


def test_invalid_association_raises(fake: FakeHubSpot) -> None:
    fake.portal.inject_body(b'{"results":[{"from":{"id":"1"}}]}')
    with pytest.raises(HubSpotError, match="a result has no `to`"):
        api_for(fake).associations("calls", "contacts", ["11"])


def test_invalid_owner_time_raises(fake: FakeHubSpot) -> None:
    fake.portal.inject_body(b'{"results":[{"id":"1","createdAt":"not a time"}]}')
    with pytest.raises(HubSpotError) as raised:
        api_for(fake).owners()
    assert str(raised.value) == (
        "invalid response from HubSpot for GET /crm/v3/owners archived=false "
        "after=-: Failed to parse `not a time` as datetime object"
    )
    assert raised.value.exit_code == 4


def test_check_command_invalid_response(
    fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import app

    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    fake.portal.inject_body(b"{not json")
    config_path = _hubspot_org(tmp_path, fake.url)
    result = CliRunner().invoke(app, ["check", "hubspot", "--config", str(config_path)])
    message = " ".join(result.stderr.split())
    assert result.exit_code == 4
    assert message.startswith(
        "error: invalid response from HubSpot for GET /crm/v3/properties/contacts: "
        "the body is not valid JSON"
    )
    assert isinstance(result.exception, SystemExit)


# Incremental extraction.


def test_incremental_reads_only_changes(fake: FakeHubSpot, tmp_path: Path) -> None:
    read(fake, state_dir=tmp_path)
    fake.portal.requests.clear()
    fake.portal.add(
        "contacts",
        {"createdate": iso(NOW + HOUR), "lastmodifieddate": iso(NOW + HOUR)},
        history={"lifecyclestage": [("marketingqualifiedlead", iso(NOW + HOUR))]},
        object_id="7",
    )
    later = NOW + DAY
    tables, extracted_at = read_hubspot(
        hubspot_config(), api=api_for(fake), state_dir=tmp_path, now=later
    )
    assert extracted_at == later
    assert sorted(tables["leads"]["lead_id"]) == ["1", "2", "3", "5", "6", "7"]
    assert fake.portal.requests["GET /crm/v3/objects/contacts"] == 0
    assert fake.portal.requests["POST /crm/v3/objects/contacts/search"] == 1
    assert fake.portal.requests["POST /crm/v3/objects/contacts/batch/read"] == 1
    assert any("incremental" in note for note in tables.notes)


def test_incremental_search_starts_at_lookback(
    fake: FakeHubSpot, tmp_path: Path
) -> None:
    read(fake, state_dir=tmp_path)
    read(fake, hubspot_config(lookback_minutes=30), state_dir=tmp_path)
    first = fake.portal.search_bodies[0]["filterGroups"][0]["filters"]
    assert first[0]["value"] == epoch_ms(NOW - 30 * MINUTE)
    assert first[1]["value"] == epoch_ms(NOW)


def test_full_refresh_ignores_state(fake: FakeHubSpot, tmp_path: Path) -> None:
    read(fake, state_dir=tmp_path)
    read(fake, state_dir=tmp_path, full_refresh=True)
    assert fake.portal.requests["GET /crm/v3/objects/contacts"] == 2
    assert fake.portal.search_bodies == []


# Config and command.


def test_plain_http_host_only_for_loopback() -> None:
    with pytest.raises(ValidationError, match="must use https"):
        HubSpotConfig(host="http://api.hubapi.com")
    assert HubSpotConfig(host="http://127.0.0.1:8080/").host == "http://127.0.0.1:8080"
    assert (
        HubSpotConfig(host="https://api-eu1.hubapi.com").host
        == "https://api-eu1.hubapi.com"
    )


def test_stage_preset_maps_lifecycle_and_status() -> None:
    lifecycle, status = HubSpotConfig().stages.resolved()
    assert lifecycle["marketingqualifiedlead"] == "mql"
    assert lifecycle["lead"] is None
    assert status["UNQUALIFIED"] == "rejected"
    assert status["BAD_TIMING"] == "recycled"


def test_check_command_lists_mapping(
    fake: FakeHubSpot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.cli import app

    config_path = tmp_path / "revalign.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "hubspot": {
                    "host": fake.url,
                    "stages": {"lead_status": {"BAD_TIMING": None}},
                }
            }
        )
    )
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "120")
    fake.portal.definitions["contacts"][1]["options"].append(
        {"value": "CUSTOM_X", "label": "Custom", "displayOrder": 9, "hidden": False}
    )
    result = CliRunner().invoke(app, ["check", "hubspot", "--config", str(config_path)])
    assert result.exit_code == 0, result.output
    assert "marketingqualifiedlead" in result.output
    assert "BAD_TIMING" in result.output
    assert "CUSTOM_X" in result.output
    assert "1 value(s) not mapped" in result.output
    assert load_config(config_path).hubspot.host == fake.url


# The demo org read through HubSpot.

# HubSpot has no converted flag on contacts, so this hygiene check is Salesforce's.
SALESFORCE_ONLY_METRICS = ("converted_flag_mismatch_count",)


@pytest.fixture(scope="module")
def demo_through_both(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    from connectors.demo import DEMO_AS_OF, generate_demo
    from connectors.salesforce_export import read_export
    from tests.fake_hubspot import portal_from_tables

    folder = tmp_path_factory.mktemp("demo")
    generate_demo(folder, leads=300)
    config = load_config(folder / "revalign.yaml")
    config = config.model_copy(
        update={
            "hubspot": HubSpotConfig(
                properties={"rejection_reason": "rejection_reason"}
            )
        }
    )
    exported = read_export(folder, config)
    emails = pl.read_csv(
        folder / "Lead.csv", columns=["Id", "Email"], infer_schema=False
    )
    portal, _ = portal_from_tables(exported, dict(emails.iter_rows()))
    with FakeHubSpot(portal) as server:
        api = HubSpotApi(HubSpot(access_token=TOKEN, host=server.url))
        through_hubspot, _ = read_hubspot(config, api=api, now=DEMO_AS_OF)
    return exported, through_hubspot, config, DEMO_AS_OF


def test_demo_tables_same_size(demo_through_both: tuple) -> None:
    exported, through_hubspot, _, _ = demo_through_both
    for table in ("leads", "stage_events", "owner_events", "activities", "touches"):
        assert through_hubspot[table].height == exported[table].height, table
    for table in ("opportunities", "opportunity_history", "accounts", "users"):
        assert through_hubspot[table].height == exported[table].height, table


def test_demo_metrics_match_export(demo_through_both: tuple) -> None:
    from metrics.measure import measure

    exported, through_hubspot, config, as_of = demo_through_both
    expected, _ = measure(exported, config, as_of)
    measured, _ = measure(through_hubspot, config, as_of)
    assert set(measured) == set(expected)
    for key in sorted(set(expected) - set(SALESFORCE_ONLY_METRICS)):
        assert measured[key].value == pytest.approx(expected[key].value), key
        assert measured[key].population == expected[key].population, key


def test_demo_unmapped_statuses_match(demo_through_both: tuple) -> None:
    exported, through_hubspot, _, _ = demo_through_both
    expected = {
        value.upper().replace(" - ", "_").replace(" ", "_"): count
        for value, count in exported.unmapped_statuses.items()
    }
    assert through_hubspot.unmapped_statuses == expected


def test_demo_levels_match_export(demo_through_both: tuple) -> None:
    from metrics.measure import measure
    from scoring.rubric import load_rubric
    from scoring.scorecard import build_scorecard

    exported, through_hubspot, config, as_of = demo_through_both
    levels = []
    for tables in (exported, through_hubspot):
        metrics, _ = measure(tables, config, as_of)
        card = build_scorecard(
            metrics, survey=None, config=config, rubric=load_rubric()
        )
        levels.append({item.key: item.measured.level for item in card.dimensions})
    assert levels[1] == levels[0]
