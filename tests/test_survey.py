"""Tests of the survey reader, team ratings, perception gaps and the template."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from connectors.errors import InputError
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
    with pytest.raises(SurveyError, match="no respondent rows found"):
        read_survey(_write(tmp_path))


def test_ragged_row(tmp_path: Path) -> None:
    path = _write(tmp_path, "r1,sales,2025-06-20,3,3,3,3,3,extra")
    with pytest.raises(SurveyError, match="found more fields than defined") as caught:
        read_survey(path)
    assert "truncate_ragged_lines" not in str(caught.value)


def test_unreadable_survey(tmp_path: Path) -> None:
    with pytest.raises(SurveyError, match="cannot be read as UTF-8 CSV"):
        read_survey(tmp_path / "absent.csv")


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
