"""The connection and mapping check of a Salesforce org.

Logs in, reads the Lead Status picklist (the ``LeadStatus`` object) and
describes Lead and Account, then compares both with the org config: which
status values the stage mapping covers, which it leaves unmapped, and which
configured custom fields exist and are readable.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import requests

from config.models import OrgConfig
from connectors.salesforce_api import describe_objects
from connectors.salesforce_auth import build_session
from connectors.salesforce_calls import CallMeter
from connectors.salesforce_session import ApiSession, ExtractOptions

CUSTOM_FIELDS = (
    ("lead_score", "Lead"),
    ("rejection_reason", "Lead"),
    ("mql_date", "Lead"),
    ("target_account", "Account"),
)


@dataclass(frozen=True)
class StatusCheck:
    """One Lead Status picklist value and the stage the config maps it to."""

    value: str
    mapped: bool
    stage: str | None


@dataclass(frozen=True)
class FieldCheck:
    """One configured custom field and whether the API user can read it."""

    setting: str
    field: str
    readable: bool


@dataclass
class SalesforceCheck:
    """What ``revalign check salesforce`` found."""

    instance_url: str
    api_usage: str
    statuses: list[StatusCheck] = field(default_factory=list)
    fields: list[FieldCheck] = field(default_factory=list)
    mapped_not_in_picklist: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Return true when every status value is mapped and every field is readable."""
        return all(s.mapped for s in self.statuses) and all(
            f.readable for f in self.fields
        )


def check_salesforce(
    config: OrgConfig,
    *,
    session: requests.Session | None = None,
    options: ExtractOptions | None = None,
) -> SalesforceCheck:
    """Compare the org's Lead Status picklist and custom fields with ``config``.

    Raises the connector's errors (auth, API, budget) like an extraction does.
    """
    settings = config.salesforce
    with contextlib.ExitStack() as stack:
        if session is None:
            session = stack.enter_context(build_session(settings))
        meter = stack.enter_context(CallMeter(settings.max_api_share).attach(session))
        api = ApiSession(settings, session, meter, options or ExtractOptions())
        described = describe_objects(api, ["LeadStatus", "Lead", "Account"])
        values = _picklist(api, described["LeadStatus"])
        fields = _custom_fields(config, described)
        instance_url = api.client().base_url.split("/services/")[0]
    mapping = config.stages.resolved()
    statuses = [StatusCheck(v, v in mapping, mapping.get(v)) for v in values]
    extra = sorted(set(mapping) - set(values))
    return SalesforceCheck(instance_url, meter.usage_text(), statuses, fields, extra)


def _picklist(api: ApiSession, described: dict[str, Any] | None) -> list[str]:
    names = {item["name"] for item in (described or {"fields": []})["fields"]}
    column = "ApiName" if "ApiName" in names else "MasterLabel"
    soql = f"SELECT {column}, SortOrder FROM LeadStatus ORDER BY SortOrder"
    answer = api.call("query of LeadStatus", lambda client: client.query_all(soql))
    return [record[column] for record in answer["records"]]


def _custom_fields(
    config: OrgConfig, described: dict[str, dict[str, Any] | None]
) -> list[FieldCheck]:
    checks = []
    for setting, obj in CUSTOM_FIELDS:
        name = getattr(config.fields, setting)
        if not name:
            continue
        names = {
            item["name"] for item in (described.get(obj) or {"fields": []})["fields"]
        }
        checks.append(FieldCheck(setting, f"{obj}.{name}", name in names))
    return checks
