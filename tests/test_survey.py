"""Tests of the survey reader, team ratings, perception gaps and the template."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from connectors.errors import InputError
from flows.cli import app
from flows.survey_cli import write_template
from scoring.rubric import load_rubric
from scoring.survey import SurveyError, SurveyProblem, read_survey
from tests.conftest import CASES_DIR

SURVEY_CASES = CASES_DIR / "survey-errors"
HEADER = (
    "respondent_id,team,answered_on,shared_definitions,lead_handoff,"
    "sla_compliance,attribution,strategic_planning"
)


def _write(
    tmp_path: Path, *rows: str, header: str = HEADER, name: str = "s.csv"
) -> Path:
    path = tmp_path / name
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def _problems(path: Path) -> list[tuple[int, str, str | None]]:
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    return [(item.row, item.column, item.value) for item in caught.value.problems]


@pytest.mark.parametrize(
    ("dimension", "sales", "marketing", "gap", "flagged"),
    [
        pytest.param("shared_definitions", 2.50, 3.33, 0.83, False, id="defs"),
        pytest.param("lead_handoff", 3.50, 4.00, 0.50, False, id="handoff"),
        pytest.param("sla_compliance", 3.00, 3.33, 0.33, False, id="sla"),
        pytest.param("attribution", 2.00, 3.00, 1.00, True, id="attribution"),
        pytest.param("strategic_planning", 2.50, 3.33, 0.83, False, id="planning"),
    ],
)
def test_valid_team_ratings(
    dimension: str, sales: float, marketing: float, gap: float, flagged: bool
) -> None:
    gaps = read_survey(SURVEY_CASES / "valid.csv").perception_gaps(1.0)
    row = gaps.filter(pl.col("dimension") == dimension).row(0, named=True)
    assert round(row["sales"], 2) == sales
    assert round(row["marketing"], 2) == marketing
    assert round(row["gap"], 2) == gap
    assert row["flagged"] is flagged


def test_valid_one_flag() -> None:
    gaps = read_survey(SURVEY_CASES / "valid.csv").perception_gaps(1.0)
    flagged = gaps.filter("flagged")["dimension"].to_list()
    assert flagged == ["attribution"]


def test_valid_team_normalised() -> None:
    survey = read_survey(SURVEY_CASES / "valid.csv")
    assert survey.responses["team"].to_list() == [
        "sales",
        "marketing",
        "sales",
        "marketing",
        "marketing",
    ]


def test_valid_blank_not_answered() -> None:
    means = read_survey(SURVEY_CASES / "valid.csv").dimension_means()
    handoff = means.filter(pl.col("dimension") == "lead_handoff").row(0, named=True)
    assert handoff["answers"] == 4
    assert handoff["mean"] == 3.75


def test_valid_rows_numbered_from_header() -> None:
    survey = read_survey(SURVEY_CASES / "valid.csv")
    assert survey.responses["row"].to_list() == [2, 3, 4, 5, 6]


def test_invalid_every_problem() -> None:
    assert _problems(SURVEY_CASES / "invalid.csv") == [
        (4, "lead_handoff", "6"),
        (5, "team", "finance"),
        (6, "respondent_id", "r02"),
    ]


def test_invalid_one_message() -> None:
    path = SURVEY_CASES / "invalid.csv"
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    message = str(caught.value)
    assert "3 problems, so nothing was scored" in message
    assert (
        f"{path}, row 4, column `lead_handoff`: '6' is not a rating from 1 to 5"
        in message
    )
    assert f"{path}, row 5, column `team`: 'finance' is not a known team" in message
    assert "use one of: sales, marketing, leadership, revops" in message
    assert (
        f"{path}, row 6, column `respondent_id`: 'r02' appears twice (rows 3 and 6)"
        in (message)
    )


def test_survey_error_is_input_error() -> None:
    error = SurveyError("s.csv", [SurveyProblem("s.csv", 2, "team", "x", "is bad")])
    assert isinstance(error, InputError)
    assert error.exit_code == 2


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        pytest.param("1", True, id="1"),
        pytest.param("5", True, id="5"),
        pytest.param(" 4 ", True, id="spaces"),
        pytest.param("4.0", True, id="4.0"),
        pytest.param("0", False, id="0"),
        pytest.param("6", False, id="6"),
        pytest.param("3.5", False, id="3.5"),
        pytest.param("three", False, id="word"),
    ],
)
def test_rating_values(tmp_path: Path, value: str, valid: bool) -> None:
    path = _write(tmp_path, f'r1,sales,2025-06-20,"{value}",3,3,3,3')
    if valid:
        assert read_survey(path).responses["shared_definitions"].to_list() == [
            int(float(value))
        ]
    else:
        assert _problems(path) == [(2, "shared_definitions", value.strip())]


def test_triple_duplicate(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "r1,sales,2025-06-20,3,3,3,3,3",
        "r1,sales,2025-06-20,3,3,3,3,3",
        "r1,sales,2025-06-20,3,3,3,3,3",
    )
    with pytest.raises(SurveyError, match=r"'r1' appears 3 times \(rows 2, 3 and 4\)"):
        read_survey(path)


def test_missing_cells(tmp_path: Path) -> None:
    path = _write(tmp_path, ",,2025-06-20,3,3,3,3,3")
    assert _problems(path) == [(2, "respondent_id", None), (2, "team", None)]


def test_invalid_date(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "r1,sales,20/06/2025,3,3,3,3,3", "r2,sales,2025-02-30,3,3,3,3,3"
    )
    assert _problems(path) == [
        (2, "answered_on", "20/06/2025"),
        (3, "answered_on", "2025-02-30"),
    ]


def test_blank_date_allowed(tmp_path: Path) -> None:
    survey = read_survey(_write(tmp_path, "r1,sales,,3,3,3,3,3"))
    assert survey.responses["answered_on"].to_list() == [None]


def test_missing_and_unknown_columns(tmp_path: Path) -> None:
    header = "respondent_id,team,answered_on,shared_definitions,lead_handof"
    path = _write(tmp_path, "r1,sales,2025-06-20,3,3", header=header)
    assert _problems(path) == [
        (1, "lead_handoff", None),
        (1, "sla_compliance", None),
        (1, "attribution", None),
        (1, "strategic_planning", None),
        (1, "lead_handof", None),
    ]


def test_header_case_and_evidence(tmp_path: Path) -> None:
    header = HEADER.upper() + ",Evidence"
    survey = read_survey(
        _write(tmp_path, "r1,Leadership,2025-06-20,3,3,3,3,3,notes", header=header)
    )
    assert survey.responses["team"].to_list() == ["leadership"]
    assert survey.responses["evidence"].to_list() == ["notes"]


def test_blank_rows_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path, "r1,sales,,3,3,3,3,3", ",,,,,,,", "r2,sales,,9,3,3,3,3")
    assert _problems(path) == [(4, "shared_definitions", "9")]


def test_empty_survey(tmp_path: Path) -> None:
    path = _write(tmp_path)
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    assert str(caught.value) == (
        f"survey file {str(path)!r} has no respondent rows after the header (row 1); "
        "fill in one row per respondent"
    )


def test_template_without_answers(tmp_path: Path) -> None:
    path = write_template(tmp_path, rubric=load_rubric())
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    assert str(caught.value) == (
        f"survey file {str(path)!r} has no respondent rows after the header "
        "(row 38); fill in one row per respondent"
    )


def test_yaml_no_entries(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("respondents: []\n", encoding="utf-8")
    with pytest.raises(SurveyError, match="has no respondent entries; add one"):
        read_survey(path)


@pytest.mark.parametrize(
    ("answered_on", "valid"),
    [
        pytest.param("2025-06-20", True, id="today"),
        pytest.param("2025-06-21", True, id="tomorrow"),
        pytest.param("2025-06-22", False, id="two-days"),
        pytest.param("2999-01-01", False, id="far-future"),
    ],
)
def test_future_date(tmp_path: Path, answered_on: str, valid: bool) -> None:
    path = _write(tmp_path, f"r1,sales,{answered_on},3,3,3,3,3")
    today = dt.date(2025, 6, 20)
    if valid:
        survey = read_survey(path, today=today)
        assert survey.responses["answered_on"].to_list() == [
            dt.date.fromisoformat(answered_on)
        ]
    else:
        with pytest.raises(SurveyError) as caught:
            read_survey(path, today=today)
        assert [str(item) for item in caught.value.problems] == [
            f"{path}, row 2, column `answered_on`: {answered_on!r} is in the future "
            "(after 2025-06-21, a day after today in UTC); write the date the "
            "respondent answered"
        ]


def test_future_date_default_today(tmp_path: Path) -> None:
    path = _write(tmp_path, "r1,sales,2999-01-01,3,3,3,3,3")
    assert _problems(path) == [(2, "answered_on", "2999-01-01")]


def test_yaml_impossible_date(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "- {respondent_id: r01, team: sales, answered_on: 2025-06-20}\n"
        "- {respondent_id: r02, team: sales, answered_on: 2025-02-30}\n",
        encoding="utf-8",
    )
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    assert [str(item) for item in caught.value.problems] == [
        f"{path}, entry 2, column `answered_on`: '2025-02-30' is not a date; write "
        "it as YYYY-MM-DD or leave it blank"
    ]
    assert caught.value.exit_code == 2


def test_yaml_dates_read(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "- {respondent_id: r01, team: sales, answered_on: 2025-06-20}\n"
        "- {respondent_id: r02, team: sales, answered_on: '2025-06-21'}\n",
        encoding="utf-8",
    )
    survey = read_survey(path, today=dt.date(2025, 6, 21))
    assert survey.responses["answered_on"].to_list() == [
        dt.date(2025, 6, 20),
        dt.date(2025, 6, 21),
    ]


@pytest.mark.parametrize(
    ("respondent", "shown"),
    [
        pytest.param("ana.lopez@example.com", "<e-mail address>", id="email"),
        pytest.param("+44 20 7946 0958", "<phone number>", id="phone-plus"),
        pytest.param("(415) 555-0100", "<phone number>", id="phone-us"),
        pytest.param("4155550100", "<phone number>", id="phone-digits"),
        pytest.param("r01", "'r01'", id="plain-id"),
        pytest.param("1042", "'1042'", id="short-number"),
    ],
)
def test_duplicate_personal_id_masked(
    tmp_path: Path, respondent: str, shown: str
) -> None:
    path = _write(
        tmp_path,
        f'"{respondent}",sales,2025-06-20,3,3,3,3,3',
        f'"{respondent}",sales,2025-06-20,3,3,3,3,3',
    )
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    message = str(caught.value)
    assert f"column `respondent_id`: {shown} appears twice (rows 2 and 3)" in message
    assert (respondent in message) is (shown == repr(respondent))


@pytest.mark.parametrize(
    ("team", "shown"),
    [
        pytest.param("bo@example.org", "<e-mail address>", id="email"),
        pytest.param("+1 415 555 0100", "<phone number>", id="phone"),
        pytest.param("2025-06-20", "'2025-06-20'", id="date"),
        pytest.param("finance", "'finance'", id="word"),
    ],
)
def test_team_personal_value_masked(tmp_path: Path, team: str, shown: str) -> None:
    path = _write(tmp_path, f'r1,"{team}",2025-06-20,3,3,3,3,3')
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    assert [str(item) for item in caught.value.problems] == [
        f"{path}, row 2, column `team`: {shown} is not a known team; use one of: "
        "sales, marketing, leadership, revops"
    ]
    assert caught.value.problems[0].value == shown.strip("'")


def test_ragged_rows_numbered(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "r1,sales,2025-06-20,3,3,3,3,3",
        "r2,sales,2025-06-20,3,3,3,3,3,extra",
        '"r3",sales,2025-06-20,3,3,3,3,3,"a, b",c',
    )
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    lines = [str(item) for item in caught.value.problems]
    assert lines == [
        f"{path}, row 3: has 9 cells, the header has 8; remove the extra cells or "
        "quote a value that contains a comma",
        f"{path}, row 4: has 10 cells, the header has 8; remove the extra cells or "
        "quote a value that contains a comma",
    ]


def test_ragged_row_after_guide_rows(tmp_path: Path) -> None:
    path = write_template(tmp_path, rubric=load_rubric())
    with path.open("a", encoding="utf-8") as handle:
        handle.write("r1,sales,2025-06-20,3,3,3,3,3,,extra\n")
    assert _problems(path) == [(39, None, None)]


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    assert str(caught.value) == (
        f"survey file {str(path)!r} not found; check the --survey path "
        "(or `survey` in the org config)"
    )


def test_folder_not_survey(tmp_path: Path) -> None:
    with pytest.raises(SurveyError) as caught:
        read_survey(tmp_path)
    assert str(caught.value) == (
        f"survey file {str(tmp_path)!r} is a folder, not a survey file; check the "
        "--survey path (or `survey` in the org config)"
    )


@pytest.mark.parametrize(
    "name", [pytest.param("s.csv", id="csv"), pytest.param("s.yaml", id="yaml")]
)
def test_not_utf8(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(HEADER.encode() + b"\nr1,sales,2025-06-20,3,3,3,3,\xe9t\xe9\n")
    with pytest.raises(SurveyError, match="is not UTF-8 text") as caught:
        read_survey(path)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"survey file {str(path)!r} ")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"")
    with pytest.raises(SurveyError, match="is empty; start from `revalign survey"):
        read_survey(path)


def test_binary_yaml(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"respondents:\x00\x01\x02")
    with pytest.raises(SurveyError, match="cannot be read as YAML") as caught:
        read_survey(path)
    assert str(caught.value).startswith(f"survey file {str(path)!r} ")


def test_yaml_matches_csv(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "respondents:\n"
        "  - {respondent_id: r01, team: sales, answered_on: 2025-06-20,\n"
        "     shared_definitions: 3, lead_handoff: 4, sla_compliance: 3,\n"
        "     attribution: 2, strategic_planning: 3}\n"
        "  - {respondent_id: r02, team: Marketing, shared_definitions: 4,\n"
        "     attribution: 3}\n",
        encoding="utf-8",
    )
    gaps = read_survey(path).perception_gaps(1.0)
    row = gaps.filter(pl.col("dimension") == "attribution").row(0, named=True)
    assert row["sales"] == 2.0
    assert row["marketing"] == 3.0
    assert row["flagged"] is True


def test_yaml_reports_entries(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "- {respondent_id: r01, team: sales, lead_handoff: 7}\n"
        "- {respondent_id: r02, team: finance, colour: blue}\n",
        encoding="utf-8",
    )
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    lines = [str(item) for item in caught.value.problems]
    assert lines[0].startswith(
        f"{path}, entry 1, column `lead_handoff`: '7' is not a rating"
    )
    assert lines[1].startswith(
        f"{path}, entry 2, column `team`: 'finance' is not a known team"
    )
    assert lines[2] == (
        f"{path}, entry 2, column `colour`: unknown column; allowed: respondent_id, "
        "team, answered_on, shared_definitions, lead_handoff, sla_compliance, "
        "attribution, strategic_planning, evidence"
    )
    assert len(lines) == 3


def test_yaml_not_a_list(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("respondents: 3\n", encoding="utf-8")
    with pytest.raises(SurveyError, match="expected a list of respondents"):
        read_survey(path)


def test_template_guide_rows(tmp_path: Path) -> None:
    path = write_template(tmp_path, rubric=load_rubric())
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    guide = [row[1] for row in rows if row[0] == "#"]
    assert rows[-1] == [*HEADER.split(","), "evidence"]
    assert len(guide) == 2 + 5 * 7
    assert any(text.startswith("lead_handoff question: ") for text in guide)
    assert any(text.startswith("attribution 3 = Defined: ") for text in guide)


def test_template_filled_in_reads(tmp_path: Path) -> None:
    path = write_template(tmp_path / "survey.csv", rubric=load_rubric())
    with path.open("a", encoding="utf-8") as handle:
        handle.write('r1,Sales,2025-06-20,2,3,,4,5,"pipeline review, weekly"\n')
        handle.write("r2,marketing,2025-06-21,2,3,9,4,5,\n")
    with pytest.raises(SurveyError) as caught:
        read_survey(path)
    assert [(item.row, item.column) for item in caught.value.problems] == [
        (40, "sla_compliance")
    ]


def test_template_refuses_overwrite(tmp_path: Path) -> None:
    path = write_template(tmp_path, rubric=load_rubric())
    with pytest.raises(InputError, match="already exists and may hold answers"):
        write_template(path, rubric=load_rubric())


def test_score_missing_survey_exit(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    result = CliRunner().invoke(app, ["score", "--demo", "--survey", str(path)])
    assert result.exit_code == 2
    assert " ".join(result.stderr.split()) == (
        f"error: survey file {str(path)!r} not found; check the --survey path "
        "(or `survey` in the org config)"
    )
