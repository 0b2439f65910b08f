"""The Salesforce API connector, driven through simple-salesforce against a fake org.

The fake (tests/fake_salesforce.py) serves HTTPS on 127.0.0.1 with a trustme CA,
so every test goes through the real client, the real TLS check and real HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import polars.testing
import pytest
import requests
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from typer.testing import CliRunner

from config.models import OrgConfig, load_config
from connectors.salesforce_api import (
    ApiExtract,
    ExtractOptions,
    SalesforceFieldError,
    extract_salesforce,
    merge_rows,
)
from connectors.salesforce_auth import SalesforceAuthError
from connectors.salesforce_calls import (
    ApiBudgetExceeded,
    RetryPolicy,
    SalesforceApiError,
    redact,
)
from connectors.salesforce_export import read_export
from connectors.salesforce_query import ObjectPlan, build_soql
from connectors.schema import CanonicalTables
from flows.sources import SourceRequest, extract
from tests.conftest import CASES_DIR
from tests.fake_salesforce import (
    FakeOrg,
    FakeSalesforce,
    add_lead_statuses,
    serve,
    synthetic_org,
)

CASE = CASES_DIR / "sf-export-business-hours"
USERNAME = "api@example.com"
PASSWORD = "pass-word"
TOKEN = "TOKEN123"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def session(ca_file: Path) -> Iterator[requests.Session]:
    http = requests.Session()
    http.verify = str(ca_file)
    http.trust_env = False
    yield http
    http.close()


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFORCE_USERNAME", USERNAME)
    monkeypatch.setenv("SALESFORCE_PASSWORD", PASSWORD)
    monkeypatch.setenv("SALESFORCE_SECURITY_TOKEN", TOKEN)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def options(sleeps: list[float]) -> ExtractOptions:
    """Extraction options that record backoff delays instead of sleeping."""
    return ExtractOptions(
        retry=RetryPolicy(
            attempts=5, base_seconds=0.5, max_seconds=8.0, sleep=sleeps.append
        ),
        bulk_poll_seconds=0,
    )


def configure(
    fake: FakeSalesforce, base: OrgConfig | None = None, **salesforce: Any
) -> OrgConfig:
    """Return ``base`` (default: the case's config) pointed at ``fake``."""
    config = base or load_config(CASE / "revalign.yaml")
    settings = config.salesforce.model_copy(update={"base_url": fake.url, **salesforce})
    return config.model_copy(update={"salesforce": settings})


def run(
    fake: FakeSalesforce,
    session: requests.Session,
    options: ExtractOptions,
    config: OrgConfig | None = None,
    **kwargs: Any,
) -> ApiExtract:
    return extract_salesforce(
        config or configure(fake), session=session, options=options, **kwargs
    )


def sorted_tables(tables: CanonicalTables) -> dict[str, pl.DataFrame]:
    """Return each table sorted by all its scalar columns, for order-free comparison."""
    result = {}
    for name, frame in tables.tables.items():
        keys = [c for c, t in frame.schema.items() if not isinstance(t, pl.List)]
        result[name] = frame.sort(keys, nulls_last=True)
    return result


def assert_same_tables(left: CanonicalTables, right: CanonicalTables) -> None:
    first, second = sorted_tables(left), sorted_tables(right)
    assert sorted(first) == sorted(second)
    for name in first:
        polars.testing.assert_frame_equal(first[name], second[name])
    assert left.missing == right.missing
    assert left.unmapped_statuses == right.unmapped_statuses


# Equality with the export folder of the same records


def test_rest_pages_match_export(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca, page_size=3) as fake:
        result = run(fake, session, options)
    exported = read_export(CASE, configure(fake))
    assert_same_tables(result.tables, exported)
    assert fake.requests["query"] == 4
    assert fake.requests["query_more"] == 10
    assert result.stats["LeadHistory"].fetched == 20
    assert result.tables.notes[2] == (
        "read through the Salesforce API: 17 call(s), 37 row(s) fetched, 0 of 4 "
        "object(s) incrementally; daily API usage 16 of 15,000 (0%)"
    )


def test_bulk_rows_match_rest(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca, page_size=4) as fake:
        rest = run(fake, session, options)
        bulk = run(fake, session, options, configure(fake, bulk_threshold_rows=1))
    assert_same_tables(bulk.tables, rest.tables)
    assert {s.path for s in bulk.stats.values()} == {"bulk"}
    assert fake.requests["bulk_create"] == 4
    assert fake.requests["bulk_results"] == 2 + 5 + 2 + 1


def test_synthetic_org_matches_export(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    org = synthetic_org(60)
    org.write_export(tmp_path / "export")
    config = OrgConfig()
    with serve(org, ca, page_size=25) as fake:
        result = run(fake, session, options, configure(fake, config))
    assert_same_tables(result.tables, read_export(tmp_path / "export", config))
    assert result.tables["leads"].height == 60


def test_deleted_and_archived_rows(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    org = FakeOrg.from_export(CASE)
    org.delete("Lead", ["00Q5g00000LeadL4AA"])
    org.archive("Task", ["00T5g00000TaskT1AA"])
    org.write_export(tmp_path / "export")
    with serve(org, ca, page_size=3) as fake:
        result = run(fake, session, options)
    leads = result.tables["leads"]["lead_id"].to_list()
    activities = result.tables["activities"]["activity_id"].to_list()
    assert "00Q5g00000LeadL4AA" not in leads
    assert len(leads) == 5
    assert "00T5g00000TaskT1AA" in activities
    assert result.stats["Lead"].deleted == 1
    assert_same_tables(result.tables, read_export(tmp_path / "export", configure(fake)))


# Failures


def test_session_expiry_mid_pagination(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca, page_size=3) as fake:
        fake.fail("invalid_session", on="query_more", skip=2)
        result = run(fake, session, options)
    assert fake.requests["login"] == 2
    history_queries = [q for q in fake.queries if "FROM LeadHistory" in q]
    assert len(history_queries) == 2
    assert "WHERE CreatedDate >= 2025-07-07T16:10:00Z" in history_queries[1]
    assert result.stats["LeadHistory"].fetched == 20
    assert_same_tables(result.tables, read_export(CASE, configure(fake)))


def test_session_expiry_during_bulk_job(
    ca: trustme.CA, session: requests.Session, options: ExtractOptions, password_env: None
) -> None:
    with serve(FakeOrg.from_export(CASE), ca, page_size=4) as fake:
        rest = run(fake, session, options)
        fake.reset_counts()
        fake.fail("invalid_session", on="bulk_results", skip=3)
        bulk = run(fake, session, options, configure(fake, bulk_threshold_rows=1))
    assert fake.requests["login"] == 2
    assert fake.requests["bulk_create"] == 4 + 1
    assert_same_tables(bulk.tables, rest.tables)


def test_unavailable_then_success(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    sleeps: list[float],
) -> None:
    with serve(FakeOrg.from_export(CASE), ca, retry_after=3) as fake:
        fake.fail("unavailable", on="query", times=2)
        result = run(fake, session, options)
    assert sleeps == [3.0, 3.0]
    assert fake.requests["query"] == 4 + 2
    assert result.stats["Lead"].fetched == 6


def test_rate_limit_exhausted(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    sleeps: list[float],
    tmp_path: Path,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        fake.fail("request_limit", on="query", times=100)
        with pytest.raises(
            SalesforceApiError, match="REQUEST_LIMIT_EXCEEDED.*5 tries"
        ) as caught:
            run(fake, session, options, state_dir=tmp_path)
    assert caught.value.retryable
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert fake.requests["query"] == 5
    assert not (tmp_path / "salesforce").exists()


def test_budget_stops_extraction(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca, api_used=3995, api_limit=5000) as fake:
        config = configure(fake, max_api_share=0.8)
        with pytest.raises(ApiBudgetExceeded, match=r"used 4,000 of 5,000 \(80%\)"):
            run(fake, session, options, config)
    assert fake.api_calls() == 5


def test_query_timeout_splits_window(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
) -> None:
    org = FakeOrg.from_export(CASE)
    with serve(org, ca, query_timeout_over=dt.timedelta(days=4000)) as fake:
        result = run(fake, session, options)
    lead_queries = [q for q in fake.queries if "FROM Lead " in q]
    assert "WHERE" not in lead_queries[0]
    assert "SystemModstamp >= 1970-01-01T00:00:00Z" in lead_queries[1]
    assert result.stats["Lead"].fetched == 6
    assert_same_tables(result.tables, read_export(CASE, configure(fake)))


def test_missing_custom_field(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        base = load_config(CASE / "revalign.yaml")
        fields = base.fields.model_copy(update={"mql_date": "MQL_Date__c"})
        config = configure(fake, base.model_copy(update={"fields": fields}))
        with pytest.raises(
            SalesforceFieldError, match=r"Lead\.MQL_Date__c \(fields\.mql_date\)"
        ):
            run(fake, session, options, config, state_dir=tmp_path)
    assert fake.requests["query"] == 0
    assert not (tmp_path / "salesforce").exists()


def test_unreadable_custom_field(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
) -> None:
    org = FakeOrg.from_export(CASE)
    org.objects["Lead"].fields["Score__c"] = "double"
    org.objects["Lead"].unreadable.add("Score__c")
    with serve(org, ca) as fake:
        base = load_config(CASE / "revalign.yaml")
        fields = base.fields.model_copy(update={"lead_score": "Score__c"})
        config = configure(fake, base.model_copy(update={"fields": fields}))
        with pytest.raises(
            SalesforceFieldError, match=r"Lead\.Score__c \(fields\.lead_score\)"
        ):
            run(fake, session, options, config)


# Incremental extraction


def test_incremental_pulls_changed_rows(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    org = synthetic_org(1000)
    config = OrgConfig()
    with serve(org, ca, page_size=2000) as fake:
        first = run(fake, session, options, configure(fake, config), state_dir=tmp_path)
        fake.reset_counts()
        changed = [f"00Q5g0000{i:06d}AAA" for i in range(0, 1000, 100)]
        org.update("Lead", changed, Status="Rejected")
        second = run(
            fake, session, options, configure(fake, config), state_dir=tmp_path
        )
        counts = dict(fake.requests)
        rows = sum(fake.rows.values())
        fresh = run(fake, session, options, configure(fake, config), full_refresh=True)
    assert first.stats["Lead"].fetched == 1000
    assert second.stats["Lead"].mode == "incremental"
    # The lookback also returns the rows at the old watermark: the newest lead,
    # history row and task, and the four users, which share one modstamp.
    assert second.stats["Lead"].fetched == 10 + 1
    assert second.stats["LeadHistory"].fetched == 1
    assert second.stats["Task"].fetched == 1
    assert second.stats["User"].fetched == 4
    assert second.stats["Lead"].stored == 1000
    assert rows == 17
    assert counts == {"login": 1, "composite": 1, "record_count": 1, "query": 4}
    assert_same_tables(second.tables, fresh.tables)
    rejected = second.tables["leads"].filter(pl.col("status_raw") == "Rejected").height
    assert rejected == 250 + 10


def test_incremental_applies_deletes(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        run(fake, session, options, state_dir=tmp_path)
        fake.org.delete("Lead", ["00Q5g00000LeadL1AA"])
        second = run(fake, session, options, state_dir=tmp_path)
    assert second.stats["Lead"].deleted == 1
    assert second.stats["Lead"].stored == 5
    assert "00Q5g00000LeadL1AA" not in second.tables["leads"]["lead_id"].to_list()


def test_failed_run_keeps_state(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        run(fake, session, options, state_dir=tmp_path)
        folder = tmp_path / "salesforce" / "clock-rules"
        before = {
            p.relative_to(folder): p.read_bytes()
            for p in folder.rglob("*")
            if p.is_file()
        }
        fake.org.update("Lead", ["00Q5g00000LeadL1AA"], Status="Rejected")
        fake.fail("unavailable", on="query", skip=2, times=100)
        with pytest.raises(SalesforceApiError, match="SERVER_UNAVAILABLE"):
            run(fake, session, options, state_dir=tmp_path)
    after = {
        p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    assert after == before


def test_watermark_stops_at_extraction_start(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    org = FakeOrg.from_export(CASE)
    future = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    org.objects["User"].records[0]["SystemModstamp"] = future
    with serve(org, ca) as fake:
        result = run(fake, session, options, state_dir=tmp_path)
    state = json.loads(
        (tmp_path / "salesforce" / "clock-rules" / "state.json").read_text()
    )
    watermark = dt.datetime.fromisoformat(state["objects"]["User"]["watermark"])
    assert watermark == result.extracted_at
    assert state["objects"]["Lead"]["watermark"] == "2025-07-14T20:30:00+00:00"


def test_changed_fields_force_full_read(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    tmp_path: Path,
) -> None:
    org = FakeOrg.from_export(CASE)
    org.objects["Lead"].fields["Score__c"] = "double"
    with serve(org, ca) as fake:
        run(fake, session, options, state_dir=tmp_path)
        base = load_config(CASE / "revalign.yaml")
        fields = base.fields.model_copy(update={"lead_score": "Score__c"})
        second = run(
            fake,
            session,
            options,
            configure(fake, base.model_copy(update={"fields": fields})),
            state_dir=tmp_path,
        )
    assert second.stats["Lead"].mode == "full"
    assert second.stats["Task"].mode == "incremental"


# Authentication


@pytest.mark.parametrize(
    ("domain", "audience"),
    [
        pytest.param("login", "https://login.salesforce.com", id="production"),
        pytest.param("test", "https://test.salesforce.com", id="sandbox"),
    ],
)
def test_jwt_login(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    domain: str,
    audience: str,
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    monkeypatch.setenv("SALESFORCE_USERNAME", USERNAME)
    monkeypatch.setenv("SF_APP_KEY", "fake-consumer-key")
    org = FakeOrg.from_export(CASE)
    with serve(org, ca, public_key_pem=public, jwt_audience=audience) as fake:
        config = configure(
            fake,
            auth="jwt",
            domain=domain,
            consumer_key_env="SF_APP_KEY",
            private_key_file=key_file,
        )
        result = run(fake, session, options, config)
    assert result.stats["Lead"].fetched == 6
    assert fake.requests["login"] == 1


def test_session_id_login(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        monkeypatch.setenv("SALESFORCE_SESSION_ID", fake.login())
        result = run(fake, session, options, configure(fake, auth="session"))
        fake.fail("invalid_session", on="query")
        with pytest.raises(
            SalesforceAuthError, match="'SALESFORCE_SESSION_ID'.*INVALID_SESSION_ID"
        ):
            run(fake, session, options, configure(fake, auth="session"))
    assert result.stats["User"].fetched == 4


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param({}, "'SALESFORCE_USERNAME' is not set", id="username"),
        pytest.param(
            {"SALESFORCE_USERNAME": USERNAME}, "'SALESFORCE_PASSWORD'", id="password"
        ),
        pytest.param(
            {"SALESFORCE_USERNAME": USERNAME, "SALESFORCE_PASSWORD": PASSWORD},
            "token is missing: environment variable 'SALESFORCE_SECURITY_TOKEN'",
            id="token",
        ),
    ],
)
def test_missing_secret_named(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    monkeypatch: pytest.MonkeyPatch,
    variables: dict[str, str],
    message: str,
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        with pytest.raises(SalesforceAuthError, match=message):
            run(fake, session, options)
    assert fake.requests["login"] == 0


def test_wrong_password_rejected(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SALESFORCE_PASSWORD", "wrong")
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        with pytest.raises(
            SalesforceAuthError, match="rejected the password login.*INVALID_LOGIN"
        ):
            run(fake, session, options)


def test_untrusted_certificate_rejected(
    ca: trustme.CA, options: ExtractOptions, password_env: None
) -> None:
    http = requests.Session()
    http.trust_env = False
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        with pytest.raises(
            SalesforceApiError, match="TLS verification failed.*ca_bundle"
        ):
            run(fake, http, options)
    assert fake.requests["login"] == 0


def test_log_lines_without_secrets(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_env: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="connectors")
    with serve(FakeOrg.from_export(CASE), ca, page_size=3) as fake:
        result = run(fake, session, options)
        sessions = list(fake.sessions)
    calls = [
        r for r in caplog.records if re.match(r"Salesforce (GET|POST) ", r.getMessage())
    ]
    text = caplog.text
    assert len(calls) == result.api_calls
    assert PASSWORD not in text
    assert TOKEN not in text
    assert all(s not in text for s in sessions)


def test_source_registry_reads_api(
    ca: trustme.CA, ca_file: Path, password_env: None, tmp_path: Path
) -> None:
    with serve(FakeOrg.from_export(CASE), ca) as fake:
        config = configure(fake, ca_bundle=ca_file)
        result = extract("salesforce", SourceRequest(config=config, state_dir=tmp_path))
    assert result.extracted_at is not None
    assert result.tables["leads"].height == 6
    assert (tmp_path / "salesforce" / "clock-rules" / "state.json").is_file()


# Pieces


@pytest.mark.parametrize(
    ("lower", "upper", "expected"),
    [
        pytest.param(
            None,
            None,
            "SELECT Id, SystemModstamp FROM Lead ORDER BY SystemModstamp, Id",
            id="full",
        ),
        pytest.param(
            dt.datetime(2025, 3, 1, 9, 30, 15, 500, tzinfo=dt.UTC),
            None,
            "SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp >= "
            "2025-03-01T09:30:15Z ORDER BY SystemModstamp, Id",
            id="from",
        ),
        pytest.param(
            dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
            dt.datetime(2025, 3, 2, tzinfo=dt.UTC),
            "SELECT Id, SystemModstamp FROM Lead WHERE SystemModstamp >= "
            "2025-03-01T00:00:00Z AND SystemModstamp < 2025-03-02T00:00:00Z "
            "ORDER BY SystemModstamp, Id",
            id="window",
        ),
    ],
)
def test_build_soql(
    lower: dt.datetime | None, upper: dt.datetime | None, expected: str
) -> None:
    plan = ObjectPlan("Lead", ("Id", "SystemModstamp"), {}, "SystemModstamp")
    assert build_soql(plan, lower, upper, ordered=True) == expected


def test_merge_rows_upserts_and_deletes() -> None:
    stored = pl.DataFrame(
        {
            "Id": ["a", "b", "c"],
            "Status": ["New", "New", "New"],
            "IsDeleted": ["FALSE"] * 3,
        }
    )
    fetched = pl.DataFrame(
        {
            "Id": ["d", "b", "c"],
            "Status": ["New", "MQL", "New"],
            "IsDeleted": ["FALSE", "FALSE", "TRUE"],
        }
    )
    merged, deleted = merge_rows(stored, fetched)
    assert merged["Id"].to_list() == ["a", "b", "d"]
    assert merged["Status"].to_list() == ["New", "MQL", "New"]
    assert deleted == 1


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        pytest.param(0, None, 1.0, id="first"),
        pytest.param(3, None, 8.0, id="fourth"),
        pytest.param(10, None, 60.0, id="capped"),
        pytest.param(0, 7.0, 7.0, id="retry-after"),
        pytest.param(0, 600.0, 60.0, id="retry-after-capped"),
    ],
)
def test_retry_delay(attempt: int, retry_after: float | None, expected: float) -> None:
    assert RetryPolicy().delay(attempt, retry_after) == expected


def test_redact_hides_secret_parameters() -> None:
    url = "https://x.example/services/oauth2/token?assertion=abc&grant_type=jwt"
    assert (
        redact(url)
        == "https://x.example/services/oauth2/token?assertion=%2A%2A%2A&grant_type=jwt"
    )


# The check command


def test_check_command_lists_mapping(
    ca: trustme.CA, ca_file: Path, password_env: None, tmp_path: Path
) -> None:
    from flows.cli import app

    org = FakeOrg.from_export(CASE)
    add_lead_statuses(
        org, ["New", "Marketing Qualified", "Accepted", "Qualified", "Rejected"]
    )
    with serve(org, ca) as fake:
        config_file = tmp_path / "revalign.yaml"
        config_file.write_text(
            "stages:\n  preset: salesforce_custom\n"
            "fields:\n  mql_date: MQL_Date__c\n"
            f"salesforce:\n  base_url: {fake.url}\n  ca_bundle: {ca_file.name}\n"
        )
        outcome = CliRunner().invoke(
            app,
            ["check", "salesforce", "--config", str(config_file)],
            env={"COLUMNS": "100"},
        )
    assert outcome.exit_code == 1, outcome.output
    assert "Qualified" in outcome.output
    assert "unmapped" in outcome.output
    assert "Lead.MQL_Date__c" in outcome.output
    assert "missing" in outcome.output


# Scoring through the API


def metric_values(document: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Return each metric's value, population and note.

    Details are left out: a ranking in them may order ties differently per run.
    """
    return {
        key: (metric["value"], metric["population"], metric["note"])
        for key, metric in document["metrics"].items()
    }


def gate_findings(document: dict[str, Any]) -> dict[str, Any]:
    timing = {"import_seconds", "duration_seconds"}
    return {key: value for key, value in document["gate"].items() if key not in timing}


def test_demo_scorecard_matches_export(
    ca: trustme.CA, ca_file: Path, password_env: None, tmp_path: Path
) -> None:
    from connectors.demo import generate_demo
    from flows.pipeline import ScoreRequest, run_score

    demo = generate_demo(tmp_path / "demo", leads=300)
    with serve(FakeOrg.from_export(demo.folder), ca, page_size=500) as fake:
        config_file = tmp_path / "api.yaml"
        config_file.write_text(
            demo.config_path.read_text()
            + f"salesforce:\n  base_url: {fake.url}\n  ca_bundle: {ca_file}\n"
        )
        by_api = run_score(
            ScoreRequest(
                source="salesforce",
                config_path=config_file,
                survey_path=demo.survey_path,
                as_of=demo.as_of,
            )
        )
    by_export = run_score(
        ScoreRequest(
            source="salesforce-export",
            path=demo.folder,
            config_path=demo.config_path,
            survey_path=demo.survey_path,
            as_of=demo.as_of,
        )
    )
    assert metric_values(by_api.document) == metric_values(by_export.document)
    assert by_api.document["scorecard"] == by_export.document["scorecard"]
    assert by_api.document["audit"] == by_export.document["audit"]
    assert gate_findings(by_api.document) == gate_findings(by_export.document)
    assert (
        by_api.document["source"]["records"] == by_export.document["source"]["records"]
    )
    assert (
        by_api.document["source"]["unmapped_statuses"]
        == (by_export.document["source"]["unmapped_statuses"])
    )
