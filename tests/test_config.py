"""Org config loading: valid files, and errors that name key, value and allowed values."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import CONFIG_DIR
from config.models import ConfigError, load_config, load_preset


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "revalign.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads() -> None:
    config = load_config(CONFIG_DIR / "example-org.yaml")
    assert config.org.id == "acme"
    assert config.calendar.time_zone == "America/New_York"
    assert config.stages.resolved()["Marketing Qualified"] == "mql"
    assert config.stages.resolved()["Contacted - Waiting"] == "sal"


def test_default_preset_maps_salesforce_statuses() -> None:
    assert load_preset("salesforce_default") == {
        "Open - Not Contacted": "mql",
        "Working - Contacted": "sal",
        "Closed - Converted": "opportunity",
        "Closed - Not Converted": "rejected",
    }


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        pytest.param(
            "stages:\n  status:\n    Accepted: accepted\n",
            r"key `stages\.status\.Accepted`: value 'accepted': not an allowed value; "
            r"allowed: 'mql', 'sal', 'sql', 'rejected', 'recycled', 'opportunity' or 'customer'",
            id="unknown-stage",
        ),
        pytest.param(
            "calendar:\n  time_zone: Mars/Olympus\n",
            r"key `calendar\.time_zone`: value 'Mars/Olympus'.*unknown IANA time zone",
            id="unknown-zone",
        ),
        pytest.param(
            "calendar:\n  working_days: [mon, funday]\n",
            r"key `calendar\.working_days\.1`: value 'funday': not an allowed value; "
            r"allowed: 'mon', 'tue'",
            id="unknown-weekday",
        ),
        pytest.param(
            "sla:\n  speed_to_lead_hours: 0\n",
            r"key `sla\.speed_to_lead_hours`: value 0: Input should be greater than 0",
            id="zero-sla",
        ),
        pytest.param(
            "colour: blue\n",
            r"key `colour`: value not shown: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "calendar:\n  opens: '17:00'\n  closes: '09:00'\n",
            r"closing time 09:00:00 must be after opening time 17:00:00",
            id="closes-before-opens",
        ),
        pytest.param(
            "calendar:\n  holiday_country: XX\n",
            r"unknown holiday country 'XX'",
            id="unknown-country",
        ),
    ],
)
def test_invalid_config_message(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(_config(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        pytest.param("calendar:\n  working_days: []\n", r"calendar\.working_days", id="no-working-days"),
        pytest.param("calendar:\n  opens: 9:00\n", r"write the time in quotes as 'HH:MM'", id="unquoted-time"),
        pytest.param("sla:\n  speed_to_lead_hours: 1e308\n", r"less than or equal to 1000", id="huge-sla"),
        pytest.param("sla:\n  touch_kinds: []\n", r"sla\.touch_kinds", id="no-touch-kinds"),
        pytest.param("calendar:\n  extra_holidays: [2025-02-30]\n", r"invalid value in the YAML", id="impossible-date"),
    ],
)
def test_more_invalid_configs(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        load_config(_config(tmp_path, text))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("salesforce:\n  password: hunter2SECRET\n", id="secret-key"),
        pytest.param("salesforce:\n  base_url: https://admin:hunter2SECRET@acme.my.salesforce.com\n", id="url-credentials"),
    ],
)
def test_config_error_hides_secrets(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, text))
    assert "hunter2SECRET" not in str(caught.value)
    assert "value not shown" in str(caught.value)


def test_binary_config_file(tmp_path: Path) -> None:
    path = tmp_path / "revalign.yaml"
    path.write_bytes(b"\x7fELF\x02\x01\xff\xfe")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        load_config(path)


def test_invalid_yaml_names_file(tmp_path: Path) -> None:
    path = _config(tmp_path, "org: [unclosed\n")
    with pytest.raises(ConfigError, match=r"revalign\.yaml: invalid YAML"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read org config .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_survey_path_relative_to_config(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "survey: answers.csv\n"))
    assert config.survey == tmp_path / "answers.csv"
