"""Salesforce API calls: one log line each, the daily budget, and retry rules.

:class:`CallMeter` hooks into the ``requests.Session`` the clients share, so it
sees every call that ``simple-salesforce`` makes, REST and Bulk alike.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from simple_salesforce.exceptions import SalesforceError

from connectors.errors import RevalignError

logger = logging.getLogger(__name__)

LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
RETRYABLE_CODES = {"REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "UNABLE_TO_LOCK_ROW"}
SECRET_PARAMS = {
    "access_token",
    "assertion",
    "client_secret",
    "password",
    "session_id",
    "sid",
}


class SalesforceApiError(RevalignError):
    """Raised when a Salesforce API call fails after its retries, or cannot succeed.

    ``retryable`` is true when a later run may succeed.
    """

    exit_code = 4

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ApiBudgetExceeded(SalesforceApiError):
    """Raised once the org's daily API usage reaches the configured share."""


@dataclass
class RetryPolicy:
    """Bounded exponential backoff of ``base_seconds * 2**attempt`` seconds.

    A ``Retry-After`` header replaces the computed delay, still capped at
    ``max_seconds``. ``attempts`` counts tries, the first one included.
    """

    attempts: int = 5
    base_seconds: float = 1.0
    max_seconds: float = 60.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Return the wait in seconds before try number ``attempt + 1``."""
        if retry_after is not None:
            return min(retry_after, self.max_seconds)
        return min(self.base_seconds * 2**attempt, self.max_seconds)


@dataclass
class CallMeter:
    """Counts, logs and budgets the calls made through one ``requests.Session``.

    After each response it reads ``Sforce-Limit-Info`` (``api-usage=used/limit``);
    once ``used`` reaches ``max_share`` of ``limit`` the hook raises
    :class:`ApiBudgetExceeded`, so no further call is sent.
    """

    max_share: float = 1.0
    calls: int = 0
    used: int | None = None
    limit: int | None = None
    retry_after: float | None = None
    _session: requests.Session | None = None

    def attach(self, session: requests.Session) -> CallMeter:
        """Hook into ``session``; :meth:`detach` removes the hook."""
        session.hooks.setdefault("response", []).append(self._on_response)
        self._session = session
        return self

    def detach(self) -> None:
        """Remove the hook from the session it was attached to."""
        if self._session is not None:
            self._session.hooks["response"].remove(self._on_response)
            self._session = None

    def __enter__(self) -> CallMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def usage_text(self) -> str:
        """Return the last known usage, such as ``4,510 of 5,000 (90%)``."""
        if self.used is None or not self.limit:
            return "unknown"
        return f"{self.used:,} of {self.limit:,} ({self.used / self.limit:.0%})"

    def _on_response(
        self, response: requests.Response, *args: Any, **kwargs: Any
    ) -> None:
        self.calls += 1
        url = urllib.parse.urlsplit(response.request.url or "")
        logger.info(
            "Salesforce %s %s -> %d (%.2f s)",
            response.request.method,
            url._replace(query="").geturl(),
            response.status_code,
            response.elapsed.total_seconds(),
        )
        if url.query:
            logger.debug("parameters: %s", redact(url.geturl()))
        self.retry_after = _retry_after(response)
        match = LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.used, self.limit = int(match[1]), int(match[2])
            if self.used >= self.max_share * self.limit:
                response.close()
                self._stop()

    def _stop(self) -> None:
        msg = (
            f"stopped before exceeding the API budget: the org has used "
            f"{self.usage_text()} of its daily API requests, and "
            f"salesforce.max_api_share allows {self.max_share:.0%}. Run again when "
            f"usage falls (Salesforce counts a rolling 24 hours), or raise the share"
        )
        raise ApiBudgetExceeded(msg, retryable=True)


def redact(url: str) -> str:
    """Return ``url`` without its query string values that could hold secrets."""
    parts = urllib.parse.urlsplit(url)
    params = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    safe = [(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in params]
    query = urllib.parse.urlencode(safe)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


Failure = Literal["reauth", "retry", "timeout", "fatal"]


def error_code(exc: SalesforceError) -> str:
    """Return the ``errorCode`` of a Salesforce error response, or ``""``."""
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", ""))
    if isinstance(content, dict):
        return str(content.get("errorCode", ""))
    return ""


def classify(exc: Exception) -> Failure:
    """Return the next step after ``exc``: log in, retry, split the window or stop."""
    if isinstance(exc, requests.exceptions.SSLError):
        return "fatal"
    if isinstance(
        exc, requests.exceptions.ConnectionError | requests.exceptions.Timeout
    ):
        return "retry"
    if not isinstance(exc, SalesforceError):
        return "fatal"
    code = error_code(exc)
    if exc.status == 401 or code == "INVALID_SESSION_ID":
        return "reauth"
    if code == "QUERY_TIMEOUT":
        return "timeout"
    if exc.status >= 500 or code in RETRYABLE_CODES:
        return "retry"
    return "fatal"


def describe_failure(exc: Exception, operation: str) -> str:
    """Return one line saying that ``operation`` failed, with the error code."""
    if isinstance(exc, SalesforceError):
        code = error_code(exc) or f"HTTP {exc.status}"
        content = exc.content
        first = content[0] if isinstance(content, list) and content else None
        detail = first.get("message", "") if isinstance(first, dict) else ""
        return f"{operation} failed with {code}: {detail}".rstrip(": ")
    return f"{operation} failed: {type(exc).__name__}: {exc}"
