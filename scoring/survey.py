"""The self-assessment survey: reading, validating and summarising team ratings.

A survey has one row per respondent: ``respondent_id``, ``team``, ``answered_on``
(an ISO date such as 2025-06-20, blank when unknown), a 1-5 self-rating for each of
the five dimensions and an optional free-text ``evidence`` column. A blank rating
means the respondent did not answer that dimension. Teams are matched ignoring case
and surrounding spaces.

Every problem in a file is collected and raised together as one
:class:`SurveyError`, so nothing is scored from a half-read file. Rows are counted
as a spreadsheet shows them: the header is row 1, or the row after the template's
leading guide rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
import yaml

from connectors.errors import InputError
from scoring.rubric import DIMENSIONS

TEAMS = ("sales", "marketing", "leadership", "revops")
COLUMNS = ("respondent_id", "team", "answered_on", *DIMENSIONS)
OPTIONAL_COLUMNS = ("evidence",)
GUIDE_PREFIX = "#"
_RATING = r"^[1-5](\.0+)?$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"


@dataclass(frozen=True)
class SurveyProblem:
    """One invalid cell, column or entry of a survey file."""

    file: str
    row: int
    column: str
    value: str | None
    reason: str
    row_kind: Literal["row", "entry"] = "row"

    def __str__(self) -> str:
        value_text = "" if self.value is None else f"{self.value!r} "
        place = f"{self.file}, {self.row_kind} {self.row}, column `{self.column}`"
        return f"{place}: {value_text}{self.reason}"


class SurveyError(InputError):
    """Raised when a survey file has invalid rows; ``problems`` lists each one."""

    def __init__(self, file: str, problems: list[SurveyProblem]) -> None:
        self.file = file
        self.problems = problems
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {problem}" for problem in problems)
        message = (
            f"invalid survey {file}: {count}, so nothing was scored. "
            f"Fix each cell listed and run again:\n{lines}"
        )
        super().__init__(message)


def read_survey(path: Path) -> SurveyResult:
    """Read and validate a survey from CSV or YAML (``.yaml``/``.yml``).

    Raises:
        SurveyError: the file is unreadable or any row is invalid; the message
            lists every problem with its file, row and column.
    """
    if path.suffix.lower() in (".yaml", ".yml"):
        frame, kind, problems = _read_yaml(path)
    else:
        frame, kind, problems = _read_csv(path)
    if frame is not None:
        problems += _column_problems(str(path), frame.columns, kind)
        frame = _with_all_columns(frame)
        problems += _cell_problems(str(path), frame, kind)
    if not problems and (frame is None or frame.is_empty()):
        problems.append(
            SurveyProblem(
                str(path), 1, "respondent_id", None, "no respondent rows found"
            )
        )
    if problems:
        raise SurveyError(str(path), sorted(problems, key=_problem_order))
    return SurveyResult(path=path, responses=_typed(frame))


def _problem_order(problem: SurveyProblem) -> tuple[int, int]:
    known = (*COLUMNS, *OPTIONAL_COLUMNS)
    position = known.index(problem.column) if problem.column in known else len(known)
    return problem.row, position


# Reading


def _leading_guide_rows(path: Path) -> int:
    count = 0
    with path.open(encoding="utf-8-sig") as handle:
        for line in handle:
            if not line.startswith(GUIDE_PREFIX):
                break
            count += 1
    return count


def _read_csv(path: Path) -> tuple[pl.DataFrame | None, str, list[SurveyProblem]]:
    try:
        skipped = _leading_guide_rows(path)
        frame = pl.read_csv(path, infer_schema=False, skip_rows=skipped)
    except (OSError, UnicodeDecodeError, pl.exceptions.PolarsError) as exc:
        # Polars appends advice about its own options; only the first line applies.
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = (
            f"cannot be read as UTF-8 CSV ({detail}); save it as CSV UTF-8 with as "
            f"many cells in each row as in the header, and retry"
        )
        return None, "row", [SurveyProblem(str(path), 1, "(file)", None, reason)]
    frame = frame.rename({name: name.strip().lower() for name in frame.columns})
    header_row = skipped + 1
    frame = frame.with_row_index("_row", offset=header_row + 1).with_columns(
        pl.col("_row").cast(pl.Int64)
    )
    return _drop_blank_and_guide_rows(frame), "row", []


def _drop_blank_and_guide_rows(frame: pl.DataFrame) -> pl.DataFrame:
    cells = [pl.col(name) for name in frame.columns if name != "_row"]
    blank = pl.all_horizontal(
        [cell.str.strip_chars().fill_null("") == "" for cell in cells]
    )
    guide = cells[0].str.starts_with(GUIDE_PREFIX).fill_null(False)
    return frame.filter(~blank & ~guide)


def _read_yaml(path: Path) -> tuple[pl.DataFrame | None, str, list[SurveyProblem]]:
    file = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = f"cannot be read as YAML ({exc})"
        return None, "entry", [SurveyProblem(file, 1, "(file)", None, reason)]
    if isinstance(data, dict):
        data = data.get("respondents")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        reason = "expected a list of respondents, or a `respondents:` key holding one"
        return None, "entry", [SurveyProblem(file, 1, "(file)", None, reason)]
    allowed = (*COLUMNS, *OPTIONAL_COLUMNS)
    rows = [
        {str(key).strip().lower(): _yaml_text(value) for key, value in item.items()}
        for item in data
    ]
    problems = [
        SurveyProblem(file, entry, key, None, _unknown_column(), "entry")
        for entry, row in enumerate(rows, start=1)
        for key in row
        if key not in allowed
    ]
    schema = {key: pl.String for key in allowed}
    known = [{key: row.get(key) for key in allowed} for row in rows]
    frame = pl.DataFrame(known, schema=schema).with_row_index("_row", offset=1)
    return frame.with_columns(pl.col("_row").cast(pl.Int64)), "entry", problems


def _unknown_column() -> str:
    return f"unknown column; allowed: {', '.join((*COLUMNS, *OPTIONAL_COLUMNS))}"


def _yaml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# Validation


def _column_problems(file: str, columns: list[str], kind: str) -> list[SurveyProblem]:
    present = [name for name in columns if name != "_row"]
    allowed = (*COLUMNS, *OPTIONAL_COLUMNS)
    problems = [
        SurveyProblem(file, 1, name, None, _unknown_column())
        for name in present
        if name not in allowed
    ]
    if kind == "row":
        problems += [
            SurveyProblem(file, 1, name, None, "missing column; add it to the header")
            for name in COLUMNS
            if name not in present
        ]
    return problems


def _with_all_columns(frame: pl.DataFrame) -> pl.DataFrame:
    missing = [
        name for name in (*COLUMNS, *OPTIONAL_COLUMNS) if name not in frame.columns
    ]
    frame = frame.with_columns(
        pl.lit(None, dtype=pl.String).alias(name) for name in missing
    )
    cleaned = [
        pl.col(name).str.strip_chars().replace("", None).alias(name)
        for name in (*COLUMNS, *OPTIONAL_COLUMNS)
    ]
    return frame.select("_row", *cleaned)


def _duplicate_reason() -> pl.Expr:
    respondent = pl.col("respondent_id")
    rows = pl.col("_row").implode().over(respondent, mapping_strategy="join")
    count = rows.list.len()
    listed = (
        rows.list.head(count - 1)
        .list.eval(pl.element().cast(pl.String))
        .list.join(", ")
    )
    times = (
        pl.when(count == 2)
        .then(pl.lit("twice"))
        .otherwise(count.cast(pl.String) + pl.lit(" times"))
    )
    text = pl.concat_str(
        pl.lit("appears "),
        times,
        pl.lit(" (rows "),
        listed,
        pl.lit(" and "),
        rows.list.last().cast(pl.String),
        pl.lit("); give each respondent one row"),
    )
    second = pl.int_range(pl.len()).over(respondent) == 1
    return pl.when(respondent.is_not_null() & second).then(text)


def _parsed_date() -> pl.Expr:
    text = pl.col("answered_on")
    return pl.when(text.str.contains(_ISO_DATE)).then(
        text.str.to_date("%Y-%m-%d", strict=False)
    )


def _reasons() -> dict[str, pl.Expr]:
    team = pl.col("team").str.to_lowercase()
    allowed = ", ".join(TEAMS)
    reasons = {
        "respondent_id": pl.when(pl.col("respondent_id").is_null())
        .then(pl.lit("is missing; give every row a respondent id"))
        .otherwise(_duplicate_reason()),
        "team": pl.when(team.is_null())
        .then(pl.lit(f"is missing; use one of: {allowed}"))
        .when(~team.is_in(TEAMS))
        .then(pl.lit(f"is not a known team; use one of: {allowed}")),
        "answered_on": pl.when(
            pl.col("answered_on").is_not_null() & _parsed_date().is_null()
        ).then(pl.lit("is not a date; write it as YYYY-MM-DD or leave it blank")),
    }
    for name in DIMENSIONS:
        invalid = pl.col(name).is_not_null() & ~pl.col(name).str.contains(_RATING)
        reasons[name] = pl.when(invalid).then(
            pl.lit("is not a rating from 1 to 5; use a whole number, or leave it blank")
        )
    return reasons


def _cell_problems(file: str, frame: pl.DataFrame, kind: str) -> list[SurveyProblem]:
    if frame.is_empty():
        return []
    checked = frame.select(
        "_row",
        *[
            pl.struct(value=pl.col(name), reason=reason).alias(name)
            for name, reason in _reasons().items()
        ],
    )
    found = (
        checked.unpivot(index="_row", variable_name="column")
        .unnest("value")
        .filter(pl.col("reason").is_not_null())
    )
    return [
        SurveyProblem(file, row, column, value, reason, kind)  # type: ignore[arg-type]
        for row, column, value, reason in found.iter_rows()
    ]


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.col("_row").alias("row"),
        "respondent_id",
        pl.col("team").str.to_lowercase(),
        _parsed_date().alias("answered_on"),
        *[pl.col(name).cast(pl.Float64).cast(pl.Int8) for name in DIMENSIONS],
        "evidence",
    )


# Results


@dataclass(frozen=True)
class SurveyResult:
    """A validated survey: one row per respondent, ratings as ``Int8`` (null = blank).

    ``evidence`` is free text and may name people, so :meth:`to_dict` leaves it out.
    """

    path: Path
    responses: pl.DataFrame

    @property
    def respondents(self) -> int:
        """Number of respondents."""
        return self.responses.height

    def answers(self) -> pl.DataFrame:
        """Return one row per answered rating: respondent, team, dimension, rating."""
        return self.responses.unpivot(
            index=["respondent_id", "team"],
            on=list(DIMENSIONS),
            variable_name="dimension",
            value_name="rating",
        ).filter(pl.col("rating").is_not_null())

    def dimension_means(self) -> pl.DataFrame:
        """Return each dimension's mean rating over all teams and its answer count.

        Every dimension has a row; one nobody answered has a null mean and 0 answers.
        """
        summary = (
            self.answers()
            .group_by("dimension")
            .agg(mean=pl.col("rating").cast(pl.Float64).mean(), answers=pl.len())
        )
        return (
            _all_dimensions()
            .join(summary, on="dimension", how="left")
            .with_columns(pl.col("answers").fill_null(0).cast(pl.Int64))
        )

    def team_ratings(self) -> pl.DataFrame:
        """Return each team's mean rating and answer count per dimension (long form)."""
        return (
            self.answers()
            .group_by("dimension", "team")
            .agg(
                mean=pl.col("rating").cast(pl.Float64).mean(),
                answers=pl.len().cast(pl.Int64),
            )
            .sort(pl.col("dimension").cast(pl.Enum(DIMENSIONS)), "team")
        )

    def perception_gaps(self, threshold: float) -> pl.DataFrame:
        """Return sales and marketing means per dimension, their gap and the flag.

        ``gap`` is the absolute difference, null when either team gave no answer.
        ``flagged`` is true when the gap is ``threshold`` or more. The gap is
        rounded to 9 decimals first, so float noise cannot hide a gap of exactly 1.
        """
        wide = (
            self.team_ratings()
            .filter(pl.col("team").is_in(("sales", "marketing")))
            .pivot(on="team", index="dimension", values="mean")
        )
        for team in ("sales", "marketing"):
            if team not in wide.columns:
                wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(team))
        gap = (pl.col("sales") - pl.col("marketing")).abs()
        return (
            _all_dimensions()
            .join(
                wide.select("dimension", "sales", "marketing"),
                on="dimension",
                how="left",
            )
            .with_columns(gap=gap)
            .with_columns(
                flagged=(pl.col("gap").round(9) >= threshold).fill_null(False)
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """Return respondent counts and mean ratings, JSON-ready (no free text)."""
        teams = self.responses.group_by("team").len().sort("team")
        return {
            "path": str(self.path),
            "respondents": self.respondents,
            "teams": dict(teams.iter_rows()),
            "dimensions": self.dimension_means().to_dicts(),
            "team_ratings": self.team_ratings().to_dicts(),
        }


def _all_dimensions() -> pl.DataFrame:
    return pl.DataFrame({"dimension": list(DIMENSIONS)})
