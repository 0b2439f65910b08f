"""A logged-in Salesforce client with the retry, re-login and error rules.

Every API call of an extraction goes through :meth:`ApiSession.call` or
:meth:`ApiSession.recover`, which sort failures into four kinds. An ended
session (INVALID_SESSION_ID) means a new login, and the caller restarts its
query. A 5xx, a connection error or REQUEST_LIMIT_EXCEEDED means a wait with
bounded backoff. QUERY_TIMEOUT is raised as :class:`WindowTimedOut` so the
caller can split its time window. Anything else stops the extraction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceOperationError

from config.models import SalesforceConfig
from connectors.errors import RevalignError
from connectors.salesforce_auth import (
    SalesforceAuthError,
    SessionCredentials,
    connect,
    login,
    login_url,
    read_credentials,
)
from connectors.salesforce_calls import (
    CallMeter,
    RetryPolicy,
    SalesforceApiError,
    classify,
    describe_failure,
)

logger = logging.getLogger(__name__)

API_ERRORS = (
    SalesforceError,
    SalesforceOperationError,
    requests.exceptions.RequestException,
)
T = TypeVar("T")


class WindowTimedOut(Exception):
    """Raised when a query fails with QUERY_TIMEOUT, so the caller splits its window."""


@dataclass
class ExtractOptions:
    """Retry, polling and timeout settings of an extraction; defaults suit a real org.

    ``request_timeout`` is the (connect, read) timeout in seconds of a REST query
    page, and ``min_window`` the narrowest window a timed-out query is split to.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    bulk_poll_seconds: float = 5.0
    bulk_page_rows: int = 50_000
    min_window: dt.timedelta = dt.timedelta(minutes=1)
    max_logins: int = 3
    request_timeout: tuple[float, float] = (10.0, 300.0)


class ApiSession:
    """A logged-in client that logs in again when Salesforce ends the session."""

    def __init__(
        self,
        settings: SalesforceConfig,
        session: requests.Session,
        meter: CallMeter,
        options: ExtractOptions,
    ) -> None:
        self.settings = settings
        self.session = session
        self.meter = meter
        self.options = options
        self.credentials = read_credentials(settings)
        self.logins = 0
        self._client: Salesforce | None = None

    def client(self) -> Salesforce:
        """Return the client, logging in first when there is no live session."""
        if self._client is None:
            try:
                live = login(self.settings, self.credentials, self.session)
            except requests.exceptions.RequestException as exc:
                raise _unreachable(exc, login_url(self.settings)) from None
            self.logins += 1
            self._client = connect(self.settings, live, self.session)
        return self._client

    def call(self, operation: str, action: Callable[[Salesforce], T]) -> T:
        """Run ``action`` with the client, retrying and logging in again as needed.

        ``operation`` names the call in log lines and error messages.
        """
        attempt = 0
        while True:
            try:
                return action(self.client())
            except Exception as exc:  # noqa: BLE001 - recover() re-raises the rest
                attempt = self.recover(exc, attempt, operation)

    def recover(self, exc: Exception, attempt: int, operation: str) -> int:
        """Handle a failed call and return the new attempt count, or raise.

        Drops the session on INVALID_SESSION_ID, so the next call logs in again,
        and sleeps before retrying a transient error. Raises
        :class:`WindowTimedOut` on QUERY_TIMEOUT, :class:`SalesforceApiError`
        when retries run out or the error is permanent, and re-raises errors
        that do not come from the API.
        """
        if isinstance(exc, RevalignError) or not isinstance(exc, API_ERRORS):
            raise exc
        kind = classify(exc)
        if kind == "reauth":
            self._relogin(operation)
            return attempt
        if kind == "timeout":
            raise WindowTimedOut(operation) from exc
        if kind == "fatal":
            if isinstance(exc, requests.exceptions.RequestException):
                raise _unreachable(exc, login_url(self.settings)) from None
            raise SalesforceApiError(describe_failure(exc, operation)) from None
        attempt += 1
        policy = self.options.retry
        if attempt >= policy.attempts:
            msg = (
                f"{describe_failure(exc, operation)}; gave up after {attempt} "
                f"tries. Daily API usage: {self.meter.usage_text()}. Run again later"
            )
            raise SalesforceApiError(msg, retryable=True) from None
        retry_after = (
            self.meter.retry_after if isinstance(exc, SalesforceError) else None
        )
        delay = policy.delay(attempt - 1, retry_after)
        logger.warning(
            "%s; retry %d in %.1f s", describe_failure(exc, operation), attempt, delay
        )
        policy.sleep(delay)
        return attempt

    def _relogin(self, operation: str) -> None:
        if isinstance(self.credentials, SessionCredentials):
            variable = self.settings.session_id_env
            msg = (
                f"Salesforce rejected the session id in {variable!r} "
                f"(INVALID_SESSION_ID) during {operation}. Set a current one, or set "
                f"salesforce.auth to 'password' or 'jwt' so revalign can log in itself"
            )
            raise SalesforceAuthError(msg)
        if self.logins >= self.options.max_logins:
            msg = (
                f"Salesforce ended the session {self.logins} times during this run "
                f"(last during {operation}); check the session policies of the API user"
            )
            raise SalesforceApiError(msg, retryable=True)
        logger.warning("session ended during %s; logging in again", operation)
        self._client = None


def _unreachable(
    exc: requests.exceptions.RequestException, url: str
) -> SalesforceApiError:
    if isinstance(exc, requests.exceptions.SSLError):
        msg = (
            f"TLS verification failed for {url} ({exc}). If a proxy or test server "
            f"uses its own CA, set salesforce.ca_bundle to its PEM file"
        )
        return SalesforceApiError(msg)
    reason = type(exc).__name__
    msg = f"cannot reach Salesforce at {url} ({reason}); check the network and URL"
    return SalesforceApiError(msg, retryable=True)
