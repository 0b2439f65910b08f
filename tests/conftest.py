"""Test settings shared by every test module.

Prefect reads its settings when first imported, so its home, telemetry and
analytics switches are set here, before any test module imports it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_PREFECT_HOME = tempfile.mkdtemp(prefix="revalign-prefect-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402

# A process that has not imported great_expectations starts a validation worker
# for each scoring run, which costs about 2 s of CPU each time. Importing it once
# here makes every scoring run in this process validate in-process. The worker's
# tests start it themselves or run revalign in a fresh process.
import expectations.suites  # noqa: E402, F401

TESTS_DIR = Path(__file__).resolve().parent
CASES_DIR = TESTS_DIR / "cases"

CREDENTIAL_VARIABLES = (
    "SALESFORCE_USERNAME",
    "SALESFORCE_PASSWORD",
    "SALESFORCE_SECURITY_TOKEN",
    "SALESFORCE_SESSION_ID",
    "SALESFORCE_CONSUMER_KEY",
    "HUBSPOT_ACCESS_TOKEN",
)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Clear CRM credential variables so no test reads a developer's own."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Start one temporary Prefect server for the whole test session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
