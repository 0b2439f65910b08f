"""Org configuration: the YAML file that describes how one CRM org is set up.

Validated with pydantic. An invalid file raises :class:`ConfigError` naming the
key, the value and what is allowed. Secrets never live here: connectors read them
from environment variables named in the file.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from config import CONFIG_DIR
from connectors.errors import RevalignError

STAGE_NAMES = ("mql", "sal", "sql", "rejected", "recycled", "opportunity", "customer")
SEGMENTS = ("seed_series_a", "series_b_c", "growth_scale", "enterprise_public")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOUCH_KINDS = ("call", "email", "meeting", "sms", "task", "other")


class ConfigError(RevalignError):
    """Raised when an org config file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OrgInfo(_Strict):
    """Identity and size of the org being scored."""

    id: str = Field(default="org", pattern=r"^[A-Za-z0-9_.-]+$")
    segment: Literal[SEGMENTS] | None = None  # type: ignore[valid-type]
    arr_usd: float | None = Field(default=None, ge=0)


class CalendarConfig(_Strict):
    """Business calendar that the speed-to-lead clock runs on."""

    time_zone: str = "UTC"
    working_days: tuple[Literal[WEEKDAYS], ...] = Field(  # type: ignore[valid-type]
        default=("mon", "tue", "wed", "thu", "fri"), min_length=1
    )
    opens: dt.time = dt.time(9, 0)
    closes: dt.time = dt.time(17, 0)
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    extra_holidays: tuple[dt.date, ...] = ()

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown IANA time zone {value!r}; use a name such as 'America/New_York'"
            raise ValueError(msg) from None
        return value

    @field_validator("opens", "closes", mode="before")
    @classmethod
    def _time_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 9:00 as the number 540 (base-60), not a time.
        if isinstance(value, int | float) and not isinstance(value, bool):
            msg = f"write the time in quotes as 'HH:MM', such as '09:00' (got {value!r})"
            raise ValueError(msg)
        return value

    @field_validator("closes")
    @classmethod
    def _closes_after_opening(cls, value: dt.time, info: Any) -> dt.time:
        opens = info.data.get("opens")
        if opens is not None and value <= opens:
            msg = f"closing time {value} must be after opening time {opens}"
            raise ValueError(msg)
        return value

    @field_validator("holiday_country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import holidays

        supported = holidays.list_supported_countries()
        if value not in supported:
            msg = (
                f"unknown holiday country {value!r}; use an ISO 3166-1 alpha-2 code "
                f"such as 'US', 'GB' or 'DE'"
            )
            raise ValueError(msg)
        return value


class StageMapping(_Strict):
    """Mapping of raw status values to canonical stages.

    A value mapped to ``null`` is known and deliberately not a funnel stage (for
    example ``New``). A value that appears in the data but not here is unmapped:
    counted and reported, never guessed.
    """

    preset: Literal["salesforce_default", "salesforce_custom", "none"] = "none"
    status: dict[str, Literal[STAGE_NAMES] | None] = Field(default_factory=dict)  # type: ignore[valid-type]

    def resolved(self) -> dict[str, str | None]:
        """Return the preset's mapping overlaid with the explicit ``status`` entries."""
        mapping: dict[str, str | None] = {}
        if self.preset != "none":
            mapping.update(load_preset(self.preset))
        mapping.update(self.status)
        return mapping


class TeamMapping(_Strict):
    """Mapping of CRM users to the sales and marketing teams."""

    department: dict[str, Literal["sales", "marketing", "other"]] = Field(
        default_factory=lambda: {"Sales": "sales", "Marketing": "marketing"}
    )
    users: dict[str, Literal["sales", "marketing", "other"]] = Field(default_factory=dict)


class SlaConfig(_Strict):
    """The sales follow-up commitment and what counts as a sales touch."""

    speed_to_lead_hours: float = Field(default=4.0, gt=0, le=1000)
    touch_kinds: tuple[Literal[TOUCH_KINDS], ...] = Field(  # type: ignore[valid-type]
        default=("call", "email", "meeting", "sms"), min_length=1
    )
    automated_subtypes: tuple[str, ...] = ("ListEmail", "Cadence")
    routing_hours: float = Field(default=1.0, gt=0, le=1000)


class FieldNames(_Strict):
    """Custom CRM fields the org uses, by API name; ``None`` when the org has none."""

    rejection_reason: str | None = None
    lead_score: str | None = None
    mql_date: str | None = None
    target_account: str | None = None
    lead_time_zone: str | None = None


class SourceConfig(_Strict):
    """How to read exported files."""

    locale_date_order: Literal["MDY", "DMY"] = "MDY"


class AlertingConfig(_Strict):
    """Whether breach alerts are wired up, used as evidence for SLA maturity."""

    sla_breach_alerts: bool = False


class ScoringConfig(_Strict):
    """Weights for blending measured levels with survey self-ratings."""

    measured_weight: float = Field(default=0.7, ge=0, le=1)
    min_respondents: int = Field(default=3, ge=1)


class GateConfig(_Strict):
    """Thresholds and severities of the data-quality gate.

    ``severity`` maps a check name such as ``activities.owner_id.known_user`` to
    ``critical`` (the run stops), ``warning`` or ``off``. Shares are fractions of
    the leads that have a status (0.02 is 2%).
    """

    max_unmapped_share: float = Field(default=0.02, ge=0, le=1)
    critical_unmapped_share: float | None = Field(default=None, ge=0, le=1)
    earliest_date: dt.date = dt.date(2000, 1, 1)
    severity: dict[str, Literal["critical", "warning", "off"]] = Field(default_factory=dict)

    @field_validator("critical_unmapped_share")
    @classmethod
    def _critical_above_warning(cls, value: float | None, info: Any) -> float | None:
        limit = info.data.get("max_unmapped_share")
        if value is not None and limit is not None and value < limit:
            msg = f"critical share {value} must be at least max_unmapped_share {limit}"
            raise ValueError(msg)
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _unquoted_off(cls, value: Any) -> Any:
        """Read YAML's unquoted ``off`` (loaded as ``False``) as ``"off"``."""
        if isinstance(value, dict):
            return {
                name: "off" if level is False else level
                for name, level in value.items()
            }
        return value

    @field_validator("severity")
    @classmethod
    def _known_checks(cls, value: dict[str, str]) -> dict[str, str]:
        from expectations.catalogue import CHECK_NAMES

        unknown = sorted(set(value) - set(CHECK_NAMES))
        if unknown:
            msg = f"unknown check(s) {', '.join(map(repr, unknown))}; known checks: " + (
                ", ".join(CHECK_NAMES)
            )
            raise ValueError(msg)
        return value


SECRET_NAMES = ("username", "password", "security_token", "consumer_key", "session_id")


class SalesforceConfig(_Strict):
    """How to reach a Salesforce org's API; secrets are named here, never stored.

    Each ``*_env`` key names the environment variable that contains that value. A
    ``secret_blocks`` entry names a Prefect Secret block to read when that
    variable is unset.
    """

    base_url: str | None = Field(default=None, pattern=r"^https://[^/\s@]+/?$")
    domain: str = Field(default="login", pattern=r"^[A-Za-z0-9.-]+$")
    api_version: str = Field(default="62.0", pattern=r"^\d+\.\d$")
    ca_bundle: Path | None = None
    auth: Literal["password", "jwt", "session"] = "password"
    username_env: str = "SALESFORCE_USERNAME"
    password_env: str = "SALESFORCE_PASSWORD"
    security_token_env: str = "SALESFORCE_SECURITY_TOKEN"
    consumer_key_env: str = "SALESFORCE_CONSUMER_KEY"
    session_id_env: str = "SALESFORCE_SESSION_ID"
    private_key_file: Path | None = None
    secret_blocks: dict[Literal[SECRET_NAMES], str] = Field(default_factory=dict)  # type: ignore[valid-type]
    bulk_threshold_rows: int = Field(default=50_000, ge=1)
    lookback_minutes: int = Field(default=10, ge=0)
    max_api_share: float = Field(default=0.5, gt=0, le=1)


HUBSPOT_AUTOMATED_SOURCES = (
    "SEQUENCES",
    "WORKFLOWS",
    "AUTOMATION_PLATFORM",
    "AUTOMATION_JOURNEY",
    "PRIMARY_AUTOMATION",
    "BOT",
    "PROSPECTING_AGENT",
    "BREEZE_AGENT",
    "CUSTOMER_AGENT",
)


class HubSpotStageMapping(_Strict):
    """Mapping of HubSpot contact values to canonical stages.

    ``lifecycle`` maps ``lifecyclestage`` values (internal names, or the numeric
    ids of custom stages); ``lead_status`` maps ``hs_lead_status`` values. HubSpot
    lifecycle stages only move forward, so rejection and recycling are read from
    the lead status. A value mapped to ``null`` is known and not a funnel stage.
    """

    preset: Literal["hubspot_default", "none"] = "hubspot_default"
    lifecycle: dict[str, Literal[STAGE_NAMES] | None] = Field(default_factory=dict)  # type: ignore[valid-type]
    lead_status: dict[str, Literal[STAGE_NAMES] | None] = Field(default_factory=dict)  # type: ignore[valid-type]

    def resolved(self) -> tuple[dict[str, str | None], dict[str, str | None]]:
        """Return the (lifecycle, lead status) mappings: preset overlaid with entries."""
        lifecycle: dict[str, str | None] = {}
        lead_status: dict[str, str | None] = {}
        if self.preset != "none":
            path = CONFIG_DIR / f"stages-{self.preset.replace('_', '-')}.yaml"
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            lifecycle.update(data["lifecycle"])
            lead_status.update(data["lead_status"])
        lifecycle.update(self.lifecycle)
        lead_status.update(self.lead_status)
        return lifecycle, lead_status


class HubSpotProperties(_Strict):
    """Contact, company and deal property names the portal uses; ``None`` if absent."""

    lead_score: str | None = "hubspotscore"
    rejection_reason: str | None = None
    target_account: str | None = "hs_is_target_account"
    lead_source: str | None = "hs_analytics_source"


class HubSpotEngagements(_Strict):
    """Rules that decide which engagements are human sales touches.

    ``communication_kinds`` maps ``hs_communication_channel_type`` (SMS,
    WHATS_APP, LINKEDIN_MESSAGE) to an activity kind; ``sla.touch_kinds`` then
    decides whether that kind counts. An unlisted channel becomes ``other``.
    """

    communication_kinds: dict[str, Literal[TOUCH_KINDS]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: {"SMS": "sms", "WHATS_APP": "sms", "LINKEDIN_MESSAGE": "other"}
    )
    call_completed_statuses: tuple[str, ...] = ("COMPLETED", "BUSY", "NO_ANSWER")
    meeting_missed_outcomes: tuple[str, ...] = ("NO_SHOW", "CANCELED")
    automated_sources: tuple[str, ...] = HUBSPOT_AUTOMATED_SOURCES


class HubSpotConfig(_Strict):
    """How to reach a HubSpot portal's API and read its CRM; the token is named here.

    ``token_env`` names the environment variable holding the private-app access
    token; ``token_block`` names a Prefect Secret block read when that variable is
    unset. ``host`` may be an EU data-centre host; plain ``http`` is accepted only
    for a loopback address (a local test server). ``time_zone`` is the portal's
    zone, used for date-only values (the calendar's zone when unset). ``teams``
    maps HubSpot team names to sales, marketing or other (``teams.department``
    when unset); ``teams.users`` maps owner ids.
    """

    host: str = Field(default="https://api.hubapi.com", pattern=r"^https?://[^/\s@]+/?$")
    ca_bundle: Path | None = None
    token_env: str = "HUBSPOT_ACCESS_TOKEN"
    token_block: str | None = None
    time_zone: str | None = None
    stages: HubSpotStageMapping = HubSpotStageMapping()
    properties: HubSpotProperties = HubSpotProperties()
    engagements: HubSpotEngagements = HubSpotEngagements()
    teams: dict[str, Literal["sales", "marketing", "other"]] | None = None
    search_window_days: float = Field(default=7.0, gt=0)
    lookback_minutes: int = Field(default=60, ge=0)
    max_retries: int = Field(default=6, ge=0)
    max_backoff_seconds: float = Field(default=60.0, gt=0)

    @field_validator("host")
    @classmethod
    def _tls_unless_loopback(cls, value: str) -> str:
        loopback = r"^http://(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?/?$"
        if value.startswith("http://") and not re.match(loopback, value):
            msg = f"HubSpot host {value!r} must use https (plain http only for 127.0.0.1)"
            raise ValueError(msg)
        return value.rstrip("/")

    @field_validator("time_zone")
    @classmethod
    def _known_portal_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown IANA time zone {value!r}; use a name such as 'Europe/Berlin'"
            raise ValueError(msg) from None
        return value


class CadenceConfig(_Strict):
    """The follow-up cadence sales commits to: ``min_touches`` in ``business_days``."""

    min_touches: int = Field(default=6, ge=1)
    business_days: float = Field(default=10.0, gt=0)


class TargetsConfig(_Strict):
    """Monthly MQL targets, inline by month (``"2024-05": 120``) or from a CSV file.

    The CSV has the columns ``month`` (``YYYY-MM``) and ``target``. A month given
    both inline and in the file takes the inline value.
    """

    mql_monthly: dict[str, float] = Field(default_factory=dict)
    mql_csv: Path | None = None

    @field_validator("mql_monthly")
    @classmethod
    def _valid_months(cls, value: dict[str, float]) -> dict[str, float]:
        for month, target in value.items():
            if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", str(month)):
                msg = f"month {month!r} is not in YYYY-MM form; write it like '2024-05'"
                raise ValueError(msg)
            if target < 0:
                msg = f"target {target!r} for {month} is negative; use 0 or more"
                raise ValueError(msg)
        return value


class AttributionConfig(_Strict):
    """Settings of the rule-based attribution models."""

    half_life_days: float = Field(default=7.0, gt=0)


class HistoryConfig(_Strict):
    """Storage of scored runs, relative to the config file's folder.

    ``path`` is the DuckDB history file. When ``keep_extracts`` is true, each
    run's canonical tables are kept as Parquet under ``extracts/<org>/<day>/``
    in the folder of that file.
    """

    path: Path = Path("revalign-state/history.duckdb")
    keep_extracts: bool = True


class ScheduleConfig(_Strict):
    """When the nightly deployment runs and what each scheduled run reads.

    ``cron`` is a five-field cron expression evaluated in ``time_zone`` (the
    calendar's zone when unset). ``source``, ``path`` and ``out`` are the run
    parameters, as for ``revalign score``; paths are relative to the config file.
    """

    cron: str = "0 6 * * *"
    time_zone: str | None = None
    deployment: str = Field(default="nightly", pattern=r"^[A-Za-z0-9_.-]+$")
    source: str = "salesforce-export"
    path: Path | None = None
    out: Path | None = None

    @field_validator("cron")
    @classmethod
    def _five_cron_fields(cls, value: str) -> str:
        # Prefect checks the field values when the deployment is built; this
        # catches the common slips without importing it for every config.
        if not re.fullmatch(r"\s*([0-9A-Za-z*?,/#-]+\s+){4}[0-9A-Za-z*?,/#-]+\s*", value):
            msg = f"invalid cron expression {value!r}; use five fields like '0 6 * * *'"
            raise ValueError(msg)
        return value.strip()

    @field_validator("time_zone")
    @classmethod
    def _known_schedule_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return CalendarConfig._known_zone(value)


class AlertChannel(_Strict):
    """Where alerts go: a Prefect notification block or a plain JSON webhook.

    ``block`` is a saved block as ``<block-type-slug>/<name>``, such as
    ``slack-webhook/revops``. ``webhook_url_env`` names the environment variable
    that contains the webhook URL, so a URL with a token in it stays out of the file.
    """

    block: str | None = Field(default=None, pattern=r"^[a-z0-9-]+/[A-Za-z0-9_.-]+$")
    webhook_url_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")

    @model_validator(mode="after")
    def _one_target(self) -> AlertChannel:
        if (self.block is None) == (self.webhook_url_env is None):
            msg = "an alert channel needs exactly one of `block` and `webhook_url_env`"
            raise ValueError(msg)
        return self

    @property
    def name(self) -> str:
        """Return the channel's name in logs and in the history's alert rows."""
        if self.block is not None:
            return f"block:{self.block}"
        return f"webhook:{self.webhook_url_env}"


ALERT_EVENTS = ("metric", "dimension_drop", "band_change", "gate_failed", "run_failed")


class AlertRule(_Strict):
    """One alert rule; ``id`` names it in messages and in the once-a-day check.

    ``when: metric`` fires while ``metric`` is above ``above`` (``sla`` means
    ``sla.speed_to_lead_hours``) or below ``below``. ``dimension_drop`` fires
    when a dimension's level is lower than in the previous day's run (only
    ``dimension`` when set), ``band_change`` when the overall band differs from
    it. ``gate_failed`` fires when the data-quality gate stops a run and
    ``run_failed`` when a run fails for any other reason.
    """

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    when: Literal[ALERT_EVENTS] = "metric"  # type: ignore[valid-type]
    metric: str | None = None
    above: float | Literal["sla"] | None = None
    below: float | None = None
    dimension: str | None = None

    @model_validator(mode="after")
    def _fields_match_event(self) -> AlertRule:
        bounds = (self.above is not None) + (self.below is not None)
        if self.when == "metric" and (self.metric is None or bounds != 1):
            msg = f"rule {self.id!r}: a metric rule needs `metric` and one of `above`, `below`"
            raise ValueError(msg)
        if self.when != "metric" and (self.metric is not None or bounds):
            msg = f"rule {self.id!r}: `metric`, `above` and `below` belong to metric rules"
            raise ValueError(msg)
        if self.dimension is not None and self.when != "dimension_drop":
            msg = f"rule {self.id!r}: `dimension` belongs to dimension_drop rules"
            raise ValueError(msg)
        return self


class AlertsConfig(_Strict):
    """Alert rules and channels; each rule alerts at most once per org and day.

    A failed send is retried ``send_attempts`` times in all, waiting
    ``retry_seconds`` and then twice as long before each further attempt.
    """

    channels: tuple[AlertChannel, ...] = ()
    rules: tuple[AlertRule, ...] = ()
    send_attempts: int = Field(default=3, ge=1)
    retry_seconds: float = Field(default=5.0, ge=0)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, value: tuple[AlertRule, ...]) -> tuple[AlertRule, ...]:
        ids = [rule.id for rule in value]
        repeated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if repeated:
            msg = f"alert rule id(s) {', '.join(map(repr, repeated))} used more than once"
            raise ValueError(msg)
        return value


class OrgConfig(_Strict):
    """One org's configuration, as read from ``revalign.yaml``."""

    org: OrgInfo = OrgInfo()
    calendar: CalendarConfig = CalendarConfig()
    stages: StageMapping = StageMapping(preset="salesforce_custom")
    teams: TeamMapping = TeamMapping()
    sla: SlaConfig = SlaConfig()
    fields: FieldNames = FieldNames()
    source: SourceConfig = SourceConfig()
    alerting: AlertingConfig = AlertingConfig()
    scoring: ScoringConfig = ScoringConfig()
    decision_window_days: int = Field(default=14, ge=1)
    survey: Path | None = None
    salesforce: SalesforceConfig = SalesforceConfig()
    gate: GateConfig = GateConfig()
    hubspot: HubSpotConfig = HubSpotConfig()
    cadence: CadenceConfig = CadenceConfig()
    targets: TargetsConfig = TargetsConfig()
    attribution: AttributionConfig = AttributionConfig()
    history: HistoryConfig | None = None
    schedule: ScheduleConfig = ScheduleConfig()
    alerts: AlertsConfig = AlertsConfig()


def load_preset(name: str) -> dict[str, str | None]:
    """Load a built-in status mapping from ``config/stages-<name>.yaml``."""
    path = CONFIG_DIR / f"stages-{name.replace('_', '-')}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(data["status"])


_SECRET_WORDS = ("password", "token", "secret", "private", "credential", "url")


def _describe_error(path: Path, error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    value = error.get("input")
    message = error["msg"]
    shown = f"value {value!r}"
    if any(word in key.lower() for word in _SECRET_WORDS) or error["type"] == "extra_forbidden":
        # A misplaced or malformed secret must not be echoed to the terminal or logs.
        shown = "value not shown"
    if error["type"] == "extra_forbidden":
        message = (
            "unknown key; check its spelling against config/example-org.yaml "
            "(secrets belong in environment variables, not in this file)"
        )
    elif error["type"] == "literal_error":
        allowed = error.get("ctx", {}).get("expected", "")
        message = f"not an allowed value; allowed: {allowed}"
    return f"{path}: key `{key}`: {shown}: {message}"


def load_config(path: Path | None) -> OrgConfig:
    """Read and validate an org config file; ``None`` gives the defaults.

    Relative paths inside the file (such as ``survey``) are resolved against the
    file's folder.
    """
    if path is None:
        return OrgConfig()
    data = _read_mapping(path)
    try:
        config = OrgConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(path, error) for error in exc.errors()]
        raise ConfigError("invalid org config:\n" + "\n".join(lines)) from None
    if config.survey is not None and not config.survey.is_absolute():
        config = config.model_copy(update={"survey": path.parent / config.survey})
    csv = config.targets.mql_csv
    if csv is not None and not csv.is_absolute():
        targets = config.targets.model_copy(update={"mql_csv": path.parent / csv})
        config = config.model_copy(update={"targets": targets})
    config = _resolve_nightly_paths(config, path.parent)
    return _resolve_salesforce_paths(config, path.parent)


def _resolve_nightly_paths(config: OrgConfig, folder: Path) -> OrgConfig:
    """Make the history and schedule paths absolute against ``folder``."""
    if config.history is not None:
        history = config.history.model_copy(update={"path": folder / config.history.path})
        config = config.model_copy(update={"history": history})
    schedule = config.schedule
    updates = {
        name: folder / value
        for name in ("path", "out")
        if (value := getattr(schedule, name)) is not None
    }
    return config.model_copy(update={"schedule": schedule.model_copy(update=updates)})


class OrgListEntry(_Strict):
    """One org of an org list: its config file and, optionally, other run parameters.

    ``source``, ``path`` and ``out`` replace the org config's ``schedule`` values.
    """

    config: Path
    source: str | None = None
    path: Path | None = None
    out: Path | None = None


class OrgListConfig(_Strict):
    """A file listing several orgs that one nightly deployment scores in turn.

    ``schedule`` gives the cron and time zone (its run parameters are ignored);
    ``history`` is the store that every org's runs go to.
    """

    orgs: tuple[OrgListEntry, ...] = Field(min_length=1)
    schedule: ScheduleConfig = ScheduleConfig()
    history: HistoryConfig = HistoryConfig()


def load_org_list(path: Path) -> OrgListConfig:
    """Read an org list file; relative paths are resolved against its folder.

    Raises:
        ConfigError: the file is unreadable or invalid. The org configs it lists
            are not read here, so one broken org config does not stop the others.
    """
    data = _read_mapping(path)
    try:
        listing = OrgListConfig.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(path, error) for error in exc.errors()]
        raise ConfigError("invalid org list:\n" + "\n".join(lines)) from None
    folder = path.parent
    entries = tuple(
        entry.model_copy(
            update={
                name: folder / value
                for name in ("config", "path", "out")
                if (value := getattr(entry, name)) is not None
            }
        )
        for entry in listing.orgs
    )
    history = listing.history.model_copy(update={"path": folder / listing.history.path})
    return listing.model_copy(update={"orgs": entries, "history": history})


def is_org_list(path: Path) -> bool:
    """Return whether the YAML file at ``path`` is an org list (has an ``orgs`` key)."""
    data = _read_mapping(path)
    return "orgs" in data


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        msg = f"{path}: not a UTF-8 text file; pass the YAML org config"
        raise ConfigError(msg) from None
    except OSError as exc:
        msg = f"cannot read org config {str(path)!r}: {exc.strerror}; check the --config path"
        raise ConfigError(msg) from None
    try:
        data = yaml.safe_load(text) or {}
    except ValueError as exc:
        # PyYAML raises a plain ValueError for impossible dates such as 2025-02-30.
        msg = f"{path}: invalid value in the YAML: {exc}; fix the date or quote it"
        raise ConfigError(msg) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        msg = f"{path}: the top level must be a mapping of keys, not {type(data).__name__}"
        raise ConfigError(msg)
    return data


def _resolve_salesforce_paths(config: OrgConfig, folder: Path) -> OrgConfig:
    """Make the Salesforce CA bundle and private key paths absolute against ``folder``."""
    settings = config.salesforce
    updates = {
        name: folder / value
        for name in ("ca_bundle", "private_key_file")
        if (value := getattr(settings, name)) is not None and not value.is_absolute()
    }
    if not updates:
        return config
    return config.model_copy(update={"salesforce": settings.model_copy(update=updates)})
