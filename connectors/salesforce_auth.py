"""Salesforce credentials and login.

``salesforce.auth`` in the org config picks one of three modes. ``password``
sends the username, password and security token to the SOAP login. ``jwt`` uses
the OAuth 2.0 JWT bearer flow with a connected app's consumer key and private
key file. ``session`` reuses an existing session id for ``salesforce.base_url``.
Secrets come from environment variables, or from Prefect Secret blocks named in
the config, and this module puts none of them in logs or error messages.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

import jwt
import requests
from pydantic import SecretStr
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceAuthenticationFailed
from simple_salesforce.login import SalesforceLogin, token_login

from config.models import SalesforceConfig
from connectors.errors import RevalignError

JWT_LIFETIME = dt.timedelta(minutes=3)


class SalesforceAuthError(RevalignError):
    """Raised when credentials are missing or Salesforce rejects the login."""


@dataclass(frozen=True)
class PasswordCredentials:
    """Username, password and security token for the SOAP login."""

    username: str
    password: SecretStr
    security_token: SecretStr


@dataclass(frozen=True)
class JwtCredentials:
    """Connected-app consumer key and private key for the JWT bearer flow."""

    username: str
    consumer_key: str
    private_key: SecretStr


@dataclass(frozen=True)
class SessionCredentials:
    """An existing session id (or OAuth access token)."""

    session_id: SecretStr


Credentials = PasswordCredentials | JwtCredentials | SessionCredentials


@dataclass(frozen=True)
class Login:
    """A live session: its id and the instance URL to send API calls to."""

    session_id: SecretStr
    instance_url: str


def login_url(settings: SalesforceConfig) -> str:
    """Return the login host: the configured base URL, else ``https://<domain>.salesforce.com``."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    return f"https://{settings.domain}.salesforce.com"


class _ConfiguredCaSession(requests.Session):
    """A session whose own ``verify`` takes precedence over ``REQUESTS_CA_BUNDLE``.

    requests 2.32 lets that variable replace a session's CA bundle. Here the
    bundle named in the org config is used, while proxies still come from the
    environment.
    """

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(
            url, proxies, stream, verify, cert
        )
        if verify is None:
            settings["verify"] = self.verify
        return settings


def build_session(settings: SalesforceConfig) -> requests.Session:
    """Return a ``requests.Session`` that verifies TLS against the configured CA bundle.

    Without ``salesforce.ca_bundle`` the system's certificates are used.
    """
    if settings.ca_bundle is None:
        return requests.Session()
    session = _ConfiguredCaSession()
    if not settings.ca_bundle.is_file():
        msg = (
            f"CA bundle {str(settings.ca_bundle)!r} not found. Set "
            f"salesforce.ca_bundle to a PEM file, or remove it to use the system "
            f"certificates"
        )
        raise SalesforceAuthError(msg)
    session.verify = str(settings.ca_bundle)
    return session


def read_credentials(
    settings: SalesforceConfig, environ: Mapping[str, str] | None = None
) -> Credentials:
    """Read the secrets that ``settings.auth`` needs.

    Raises :class:`SalesforceAuthError` naming the first missing variable.
    """
    environ = os.environ if environ is None else environ
    if settings.auth == "session":
        if not settings.base_url:
            msg = (
                "salesforce.auth is 'session' but salesforce.base_url is not set. "
                "Set it to the instance URL the session belongs to, such as "
                "'https://acme.my.salesforce.com'"
            )
            raise SalesforceAuthError(msg)
        return SessionCredentials(SecretStr(_secret(settings, "session_id", environ)))
    username = _secret(settings, "username", environ)
    if settings.auth == "password":
        return PasswordCredentials(
            username,
            SecretStr(_secret(settings, "password", environ)),
            SecretStr(_secret(settings, "security_token", environ)),
        )
    return JwtCredentials(
        username,
        _secret(settings, "consumer_key", environ),
        SecretStr(_private_key(settings)),
    )


def _secret(settings: SalesforceConfig, name: str, environ: Mapping[str, str]) -> str:
    variable = getattr(settings, f"{name}_env")
    value = environ.get(variable, "")
    if value:
        return value
    block = settings.secret_blocks.get(name)  # type: ignore[call-overload]
    if block:
        return _read_secret_block(block, name, variable)
    msg = (
        f"Salesforce {name.replace('_', ' ')} is missing: environment variable "
        f"{variable!r} is not set or empty; set it, or name a Prefect Secret block "
        f"under salesforce.secret_blocks.{name}"
    )
    raise SalesforceAuthError(msg)


def _read_secret_block(block: str, name: str, variable: str) -> str:
    # NOTE: loading a block talks to the Prefect API (a server or an ephemeral one).
    import httpx
    from prefect.blocks.system import Secret

    try:
        value = Secret.load(block).get()
    except (ValueError, httpx.HTTPError) as exc:
        # Secret.load raises ValueError for a block that does not exist,
        # and httpx.HTTPError when the Prefect API is unreachable or
        # returns an error status.
        msg = (
            f"Salesforce {name.replace('_', ' ')} is missing: environment variable "
            f"{variable!r} is not set or empty and Prefect Secret block {block!r} "
            f"cannot be loaded ({exc}); set the variable, or check "
            f"salesforce.secret_blocks.{name} and that the Prefect API is reachable"
        )
        raise SalesforceAuthError(msg) from None
    return str(value)


def _private_key(settings: SalesforceConfig) -> str:
    path = settings.private_key_file
    if path is None:
        msg = (
            "salesforce.auth is 'jwt' but salesforce.private_key_file is not set. "
            "Set it to the PEM private key of the connected app's certificate"
        )
        raise SalesforceAuthError(msg)
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        msg = (
            f"cannot read private key file {str(path)!r} ({exc}); check "
            f"salesforce.private_key_file"
        )
        raise SalesforceAuthError(msg) from None


def login(
    settings: SalesforceConfig, credentials: Credentials, session: requests.Session
) -> Login:
    """Start a session with ``credentials`` and return its id and instance URL.

    Raises :class:`SalesforceAuthError` when Salesforce rejects the login.
    """
    if isinstance(credentials, SessionCredentials):
        return Login(credentials.session_id, login_url(settings))
    try:
        if isinstance(credentials, PasswordCredentials):
            session_id, instance = SalesforceLogin(
                username=credentials.username,
                password=credentials.password.get_secret_value(),
                security_token=credentials.security_token.get_secret_value(),
                sf_version=settings.api_version,
                session=session,
                domain=settings.domain,
                scratch_url=login_url(settings),
            )
        else:
            session_id, instance = _jwt_login(settings, credentials, session)
    except SalesforceAuthenticationFailed as exc:
        msg = (
            f"Salesforce rejected the {settings.auth} login at {login_url(settings)} "
            f"(code {exc.code!r}: {exc.auth_message}); check the credentials and "
            f"salesforce.domain ('test' for a sandbox)"
        )
        raise SalesforceAuthError(msg) from None
    return Login(SecretStr(session_id), f"https://{instance}")


def _jwt_login(
    settings: SalesforceConfig, credentials: JwtCredentials, session: requests.Session
) -> tuple[str, str]:
    # The audience is the login server, also when the token endpoint is a My Domain.
    audience = (
        "https://test.salesforce.com"
        if settings.domain == "test"
        else ("https://login.salesforce.com")
    )
    claims = {
        "iss": credentials.consumer_key,
        "sub": credentials.username,
        "aud": audience,
        "exp": int((dt.datetime.now(dt.UTC) + JWT_LIFETIME).timestamp()),
    }
    try:
        assertion = jwt.encode(
            claims, credentials.private_key.get_secret_value(), algorithm="RS256"
        )
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        msg = (
            f"the private key in salesforce.private_key_file cannot sign a JWT ({exc})"
        )
        raise SalesforceAuthError(msg) from None
    data = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": assertion,
    }
    token_url = f"{login_url(settings)}/services/oauth2/token"
    return token_login(
        token_url, data, settings.domain, credentials.consumer_key, None, None, session
    )


def connect(
    settings: SalesforceConfig, live: Login, session: requests.Session
) -> Salesforce:
    """Return a ``Salesforce`` client bound to ``live`` that never logs in by itself.

    The client is built from the session id, so an expired session surfaces as
    ``SalesforceExpiredSession`` and the caller decides how to log in again.
    """
    return Salesforce(
        session_id=live.session_id.get_secret_value(),
        instance_url=live.instance_url,
        session=session,
        version=settings.api_version,
    )
