"""CRM credentials read from Prefect Secret blocks when the variables are unset.

The blocks are real ``Secret`` documents on the session's temporary Prefect
server, and the connectors log in to the fake Salesforce and HubSpot servers on
127.0.0.1. conftest.py clears the credential variables, so unless a test sets
one, every secret comes from a block.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme

from config.models import OrgConfig, load_config
from connectors.hubspot_api import read_hubspot
from connectors.hubspot_client import HubSpotError
from connectors.salesforce_api import ExtractOptions, extract_salesforce
from connectors.salesforce_auth import SalesforceAuthError
from connectors.salesforce_calls import RetryPolicy
from tests.conftest import CASES_DIR
from tests.fake_hubspot import FakeHubSpot, FakePortal, define_standard_portal, iso
from tests.fake_salesforce import FakeOrg, FakeSalesforce, serve

CASE = CASES_DIR / "sf-export-business-hours"

# Not the fake servers' default credentials, so a login that succeeds proves
# the connector sent the values stored in the blocks.
USERNAME = "block-user@example.com"
PASSWORD = "block-pass-4711"
SECURITY_TOKEN = "BLOCKTOKEN987"
ACCESS_TOKEN = "pat-na1-block-token-0042"
NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)


def save_secret(name: str, value: str) -> str:
    """Save ``value`` as the Secret block ``name`` and return the name."""
    from prefect.blocks.system import Secret

    Secret(value=value).save(name, overwrite=True)
    return name


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def session(ca: trustme.CA, tmp_path: Path) -> Iterator[requests.Session]:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    http = requests.Session()
    http.verify = str(ca_file)
    http.trust_env = False
    yield http
    http.close()


@pytest.fixture
def options() -> ExtractOptions:
    """Extraction options that never sleep between retries."""
    return ExtractOptions(
        retry=RetryPolicy(
            attempts=2, base_seconds=0.5, max_seconds=1.0, sleep=lambda _: None
        ),
        bulk_poll_seconds=0,
    )


@pytest.fixture
def password_blocks(prefect_harness: None) -> dict[str, str]:
    """The three password-login secrets, each saved in its own block."""
    return {
        "username": save_secret("test-sf-username", USERNAME),
        "password": save_secret("test-sf-password", PASSWORD),
        "security_token": save_secret("test-sf-security-token", SECURITY_TOKEN),
    }


def fake_salesforce(ca: trustme.CA) -> FakeSalesforce:
    return serve(
        FakeOrg.from_export(CASE),
        ca,
        username=USERNAME,
        password=PASSWORD,
        security_token=SECURITY_TOKEN,
    )


def salesforce_config(fake: FakeSalesforce, **settings: object) -> OrgConfig:
    """Return the case's config pointed at ``fake`` with ``settings`` replaced."""
    config = load_config(CASE / "revalign.yaml")
    updates = {"base_url": fake.url, **settings}
    return config.model_copy(
        update={"salesforce": config.salesforce.model_copy(update=updates)}
    )


# Salesforce


def test_salesforce_login_from_blocks(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_blocks: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with fake_salesforce(ca) as fake:
        config = salesforce_config(fake, secret_blocks=password_blocks)
        result = extract_salesforce(config, session=session, options=options)
        sessions = list(fake.sessions)
    assert fake.requests["login"] == 1
    assert result.tables["leads"].height == 6
    assert len(sessions) == 1
    assert PASSWORD not in caplog.text
    assert SECURITY_TOKEN not in caplog.text
    assert USERNAME not in caplog.text
    assert sessions[0] not in caplog.text


def test_salesforce_variable_overrides_block(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_blocks: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocks = {
        **password_blocks,
        "password": save_secret("test-sf-stale-password", "old"),
    }
    monkeypatch.setenv("SALESFORCE_PASSWORD", PASSWORD)
    with fake_salesforce(ca) as fake:
        config = salesforce_config(fake, secret_blocks=blocks)
        result = extract_salesforce(config, session=session, options=options)
    assert fake.requests["login"] == 1
    assert result.tables["leads"].height == 6


def test_salesforce_wrong_block_value_rejected(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_blocks: dict[str, str],
) -> None:
    wrong = "wrong-pass-0815"
    blocks = {
        **password_blocks,
        "password": save_secret("test-sf-wrong-password", wrong),
    }
    with fake_salesforce(ca) as fake:
        config = salesforce_config(fake, secret_blocks=blocks)
        with pytest.raises(
            SalesforceAuthError, match="rejected the password login.*INVALID_LOGIN"
        ) as raised:
            extract_salesforce(config, session=session, options=options)
    assert fake.requests["login"] == 1
    assert wrong not in str(raised.value)
    assert SECURITY_TOKEN not in str(raised.value)


def test_salesforce_missing_block_named(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    password_blocks: dict[str, str],
) -> None:
    blocks = {**password_blocks, "password": "test-sf-no-such-block"}
    with fake_salesforce(ca) as fake:
        config = salesforce_config(fake, secret_blocks=blocks)
        with pytest.raises(SalesforceAuthError) as raised:
            extract_salesforce(config, session=session, options=options)
    message = str(raised.value)
    assert fake.requests["login"] == 0
    assert message.startswith(
        "Salesforce password is missing: environment variable "
        "'SALESFORCE_PASSWORD' is not set or empty and Prefect Secret block "
        "'test-sf-no-such-block' cannot be loaded ("
    )
    assert "Unable to find block document named test-sf-no-such-block" in message
    assert "check salesforce.secret_blocks.password" in message


def test_salesforce_session_id_from_block(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    prefect_harness: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with fake_salesforce(ca) as fake:
        session_id = fake.login()
        block = save_secret("test-sf-session-id", session_id)
        config = salesforce_config(
            fake, auth="session", secret_blocks={"session_id": block}
        )
        result = extract_salesforce(config, session=session, options=options)
    assert fake.requests["login"] == 0
    assert result.tables["leads"].height == 6
    assert session_id not in caplog.text


# HubSpot


@pytest.fixture
def fake_hubspot() -> Iterator[FakeHubSpot]:
    """A portal that accepts only ``ACCESS_TOKEN``, with one contact."""
    portal = FakePortal(token=ACCESS_TOKEN)
    define_standard_portal(portal)
    created = iso(dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.UTC))
    portal.add(
        "contacts",
        {"createdate": created, "lastmodifieddate": created},
        history={"lifecyclestage": [("marketingqualifiedlead", created)]},
        object_id="1",
    )
    with FakeHubSpot(portal) as server:
        yield server


def hubspot_config(server: FakeHubSpot, **settings: object) -> OrgConfig:
    return OrgConfig.model_validate({"hubspot": {"host": server.url, **settings}})


def count_leads(config: OrgConfig) -> int:
    """Read the portal and return the number of leads."""
    tables, _ = read_hubspot(config, now=NOW, sleep=lambda _: None)
    return tables["leads"].height


def test_hubspot_token_from_block(
    fake_hubspot: FakeHubSpot,
    prefect_harness: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    block = save_secret("test-hubspot-token", ACCESS_TOKEN)
    leads = count_leads(hubspot_config(fake_hubspot, token_block=block))
    assert leads == 1
    assert fake_hubspot.portal.requests["GET /crm/v3/objects/contacts"] == 1
    assert ACCESS_TOKEN not in caplog.text


def test_hubspot_variable_overrides_block(
    fake_hubspot: FakeHubSpot,
    prefect_harness: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block = save_secret("test-hubspot-stale-token", "pat-na1-stale")
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", ACCESS_TOKEN)
    assert count_leads(hubspot_config(fake_hubspot, token_block=block)) == 1


def test_hubspot_wrong_block_token_rejected(
    fake_hubspot: FakeHubSpot,
    prefect_harness: None,
) -> None:
    wrong = "pat-na1-wrong-token-0815"
    block = save_secret("test-hubspot-wrong-token", wrong)
    with pytest.raises(
        HubSpotError, match=r"rejected the access token \(401\)"
    ) as raised:
        count_leads(hubspot_config(fake_hubspot, token_block=block))
    assert raised.value.exit_code == 2
    assert raised.value.retryable is False
    assert wrong not in str(raised.value)


def test_hubspot_missing_block_named(
    fake_hubspot: FakeHubSpot,
    prefect_harness: None,
) -> None:
    config = hubspot_config(fake_hubspot, token_block="test-hubspot-no-such-block")
    with pytest.raises(HubSpotError) as raised:
        count_leads(config)
    message = str(raised.value)
    assert raised.value.exit_code == 2
    assert sum(fake_hubspot.portal.requests.values()) == 0
    assert message.startswith(
        "no HubSpot access token: the environment variable 'HUBSPOT_ACCESS_TOKEN' "
        "is unset and Prefect Secret block 'test-hubspot-no-such-block' could "
        "not be loaded ("
    )
    assert "Unable to find block document named test-hubspot-no-such-block" in message
    assert "point hubspot.token_block at an existing block" in message


# An unreachable Prefect API


@pytest.fixture
def unreachable_prefect() -> Iterator[None]:
    """Point the Prefect client at a closed port on 127.0.0.1, with its retries off.

    Its HTTP transport still retries the connection a few times.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        temporary_settings,
    )

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    updates = {
        PREFECT_API_URL: f"http://127.0.0.1:{port}/api",
        PREFECT_CLIENT_MAX_RETRIES: 0,
    }
    with temporary_settings(updates=updates):
        yield


def test_salesforce_unreachable_prefect_api(
    ca: trustme.CA,
    session: requests.Session,
    options: ExtractOptions,
    unreachable_prefect: None,
) -> None:
    with fake_salesforce(ca) as fake:
        config = salesforce_config(fake, secret_blocks={"username": "test-sf-user"})
        with pytest.raises(
            SalesforceAuthError,
            match=r"'SALESFORCE_USERNAME' is not set or empty and Prefect Secret "
            r"block 'test-sf-user' cannot be loaded \(.*Connection refused\)",
        ):
            extract_salesforce(config, session=session, options=options)
    assert fake.requests["login"] == 0


def test_hubspot_unreachable_prefect_api(
    fake_hubspot: FakeHubSpot, unreachable_prefect: None
) -> None:
    config = hubspot_config(fake_hubspot, token_block="test-hubspot-token")
    with pytest.raises(
        HubSpotError,
        match=r"Prefect Secret block 'test-hubspot-token' could not be loaded "
        r"\(.*Connection refused\)",
    ) as raised:
        count_leads(config)
    assert raised.value.exit_code == 2
    assert sum(fake_hubspot.portal.requests.values()) == 0
