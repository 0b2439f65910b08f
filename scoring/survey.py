"""The self-assessment survey: reading, validating and summarising team ratings.

A survey has one row per respondent: ``respondent_id``, ``team``, ``answered_on``
(an ISO date such as 2025-06-20, blank when unknown), a 1-5 self-rating for each of
the five dimensions and an optional free-text ``evidence`` column. A blank rating
means the respondent did not answer that dimension. Teams are matched ignoring case
and surrounding spaces.

Every problem in a file is collected and raised together as one
:class:`SurveyError`, so nothing is scored from a half-read file. Rows are counted
as a spreadsheet shows them: the header is row 1, or the row after the template's
leading guide rows. Respondent ids and teams may be personal data, so an invalid
one that looks like an e-mail address or phone number is shown as a placeholder.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

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
EMAIL_MASK = "<e-mail address>"
PHONE_MASK = "<phone number>"
PERSONAL_COLUMNS = ("respondent_id", "team")
_EMAIL = r"[^\s@]+@[^\s@]+\.[^\s@]+"
_PHONE_CHARACTERS = r"^\+?[\d\s().\-/]+$"
_PHONE_SEPARATOR = r"^\+|[\s().\-/]"
_NUMERIC_DATE = r"^\d{1,4}[/.\-]\d{1,2}[/.\-]\d{1,4}$"
_PATH_HINT = "check the --survey path (or `survey` in the org config)"


@dataclass(frozen=True)
class SurveyProblem:
    """One invalid file, row, cell or column of a survey.

    ``row`` is None for a problem with the whole file and ``column`` is None for a
    problem with a whole row. ``value`` may be :data:`EMAIL_MASK` or
    :data:`PHONE_MASK` in place of personal data.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    reason: str
    row_kind: Literal["row", "entry"] = "row"

    def __str__(self) -> str:
        if self.row is None:
            return f"{self.file}: {self.reason}"
        place = f"{self.file}, {self.row_kind} {self.row}"
        if self.column is not None:
            place += f", column `{self.column}`"
        return f"{place}: {_shown_value(self.value)}{self.reason}"


def _shown_value(value: str | None) -> str:
    if value is None:
        return ""
    if value in (EMAIL_MASK, PHONE_MASK):
        return f"{value} "
    return f"{value!r} "


class SurveyError(InputError):
    """Raised when a survey file is unusable or has invalid rows.

    ``problems`` lists each problem. A problem with the whole file (missing, not
    UTF-8, empty) is the only one in the list and is the whole message.
    """

    def __init__(self, file: str, problems: list[SurveyProblem]) -> None:
        self.file = file
        self.problems = problems
        if len(problems) == 1 and problems[0].row is None:
            super().__init__(f"survey file {file!r} {problems[0].reason}")
            return
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        lines = "\n".join(f"  - {problem}" for problem in problems)
        message = (
            f"invalid survey {file}: {count}, so nothing was scored. "
            f"Fix each cell listed and run again:\n{lines}"
        )
        super().__init__(message)


def read_survey(path: Path, *, today: dt.date | None = None) -> SurveyResult:
    """Read and validate a survey from CSV or YAML (``.yaml``/``.yml``).

    Args:
        path: the survey file.
        today: the date that ``answered_on`` may exceed by at most one day;
            defaults to today in UTC.

    Raises:
        SurveyError: the file is missing, unreadable or empty, or any row is
            invalid; the message lists every problem with its file, row and column.
    """
    text = _read_text(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        sheet = _read_yaml(path, text)
    else:
        sheet = _read_csv(path, text)
    frame, problems = sheet.frame, sheet.problems
    if frame is not None:
        latest = (today or dt.datetime.now(dt.UTC).date()) + dt.timedelta(days=1)
        problems += _column_problems(str(path), frame.columns, sheet.kind)
        frame = _with_all_columns(frame)
        problems += _cell_problems(str(path), frame, sheet.kind, latest)
    if not problems and frame is not None and frame.is_empty():
        problems.append(SurveyProblem(str(path), None, None, None, sheet.empty))
    if problems or frame is None:
        raise SurveyError(str(path), sorted(problems, key=_problem_order))
    return SurveyResult(path=path, responses=_typed(frame))


def _problem_order(problem: SurveyProblem) -> tuple[int, int]:
    known = (*COLUMNS, *OPTIONAL_COLUMNS)
    position = known.index(problem.column) if problem.column in known else len(known)
    return problem.row or 0, position


# Reading


class _Sheet(NamedTuple):
    """A survey file read as text columns, before its cells are checked."""

    frame: pl.DataFrame | None
    kind: Literal["row", "entry"]
    problems: list[SurveyProblem]
    empty: str  # the reason to give when the file has no respondents


def _file_error(path: Path, reason: str) -> SurveyError:
    return SurveyError(str(path), [_whole_file(path, reason)])


def _read_text(path: Path) -> str:
    """Return the file's text without a byte order mark.

    Raises:
        SurveyError: the path is missing or a folder, or the file is not UTF-8
            text or is blank.
    """
    if path.is_dir():
        raise _file_error(path, f"is a folder, not a survey file; {_PATH_HINT}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _file_error(path, f"not found; {_PATH_HINT}") from None
    except OSError as exc:
        reason = f"cannot be read ({exc.strerror}); {_PATH_HINT}"
        raise _file_error(path, reason) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        reason = (
            f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); save "
            f"it as CSV UTF-8 (or YAML in UTF-8) and retry"
        )
        raise _file_error(path, reason) from None
    if not text.strip():
        reason = (
            "is empty; start from `revalign survey template` and fill in one row "
            "per respondent"
        )
        raise _file_error(path, reason)
    return text


def _read_csv(path: Path, text: str) -> _Sheet:
    lines = text.splitlines(keepends=True)
    skipped = next(
        (
            index
            for index, line in enumerate(lines)
            if not line.startswith(GUIDE_PREFIX)
        ),
        len(lines),
    )
    header_row = skipped + 1
    body = "".join(lines[skipped:])
    empty = (
        f"has no respondent rows after the header (row {header_row}); fill in one "
        f"row per respondent"
    )
    if not body.strip():
        reason = "has guide rows but no header; add the header from the template"
        return _Sheet(None, "row", [_whole_file(path, reason)], empty)
    try:
        frame = pl.read_csv(body.encode(), infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        problems = _long_rows(str(path), body, header_row)
        if not problems:
            # Polars appends advice about its own options; only the first line applies.
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            reason = f"cannot be read as CSV ({detail}); save it as CSV UTF-8 and retry"
            problems = [_whole_file(path, reason)]
        return _Sheet(None, "row", problems, empty)
    frame = frame.rename({name: name.strip().lower() for name in frame.columns})
    frame = frame.with_row_index("_row", offset=header_row + 1).with_columns(
        pl.col("_row").cast(pl.Int64)
    )
    return _Sheet(_drop_blank_and_guide_rows(frame), "row", [], empty)


def _whole_file(path: Path, reason: str) -> SurveyProblem:
    return SurveyProblem(str(path), None, None, None, reason)


def _long_rows(file: str, body: str, header_row: int) -> list[SurveyProblem]:
    """Return a problem for each row with more cells than the header."""
    try:
        header, *rows = csv.reader(io.StringIO(body))
    except csv.Error:
        return []
    return [
        SurveyProblem(
            file,
            header_row + offset,
            None,
            None,
            f"has {len(cells)} cells, the header has {len(header)}; remove the "
            f"extra cells or quote a value that contains a comma",
        )
        for offset, cells in enumerate(rows, start=1)
        if len(cells) > len(header)
    ]


def _drop_blank_and_guide_rows(frame: pl.DataFrame) -> pl.DataFrame:
    cells = [pl.col(name) for name in frame.columns if name != "_row"]
    blank = pl.all_horizontal(
        [cell.str.strip_chars().fill_null("") == "" for cell in cells]
    )
    guide = cells[0].str.starts_with(GUIDE_PREFIX).fill_null(False)
    return frame.filter(~blank & ~guide)


class _TextDateLoader(yaml.SafeLoader):
    """A safe YAML loader that keeps dates as text.

    PyYAML's own date conversion raises a bare ValueError on an impossible date
    such as 2025-02-30; as text, the date gets the same row check as in a CSV.
    """


_TextDateLoader.yaml_implicit_resolvers = {
    first: [
        (tag, pattern)
        for tag, pattern in resolvers
        if tag != "tag:yaml.org,2002:timestamp"
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _read_yaml(path: Path, text: str) -> _Sheet:
    file = str(path)
    empty = "has no respondent entries; add one entry per respondent"
    try:
        data = yaml.load(text, Loader=_TextDateLoader)
    except (yaml.YAMLError, ValueError) as exc:
        reason = f"cannot be read as YAML ({' '.join(str(exc).split())})"
        return _Sheet(None, "entry", [_whole_file(path, reason)], empty)
    if isinstance(data, dict):
        data = data.get("respondents")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        reason = "expected a list of respondents, or a `respondents:` key holding one"
        return _Sheet(None, "entry", [_whole_file(path, reason)], empty)
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
    frame = frame.with_columns(pl.col("_row").cast(pl.Int64))
    return _Sheet(frame, "entry", problems, empty)


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


def _reasons(latest: dt.date) -> dict[str, pl.Expr]:
    team = pl.col("team").str.to_lowercase()
    allowed = ", ".join(TEAMS)
    future = (
        f"is in the future (after {latest}, a day after today in UTC); write the "
        f"date the respondent answered"
    )
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
        )
        .then(pl.lit("is not a date; write it as YYYY-MM-DD or leave it blank"))
        .when(_parsed_date() > latest)
        .then(pl.lit(future)),
    }
    for name in DIMENSIONS:
        invalid = pl.col(name).is_not_null() & ~pl.col(name).str.contains(_RATING)
        reasons[name] = pl.when(invalid).then(
            pl.lit("is not a rating from 1 to 5; use a whole number, or leave it blank")
        )
    return reasons


def _masked(name: str) -> pl.Expr:
    """Return the column with e-mail addresses and phone numbers replaced by masks."""
    value = pl.col(name)
    if name not in PERSONAL_COLUMNS:
        return value
    digits = value.str.count_matches(r"\d")
    phone = (
        value.str.contains(_PHONE_CHARACTERS)
        & digits.is_between(7, 15)
        & (value.str.contains(_PHONE_SEPARATOR) | (digits >= 10))
        & ~value.str.contains(_NUMERIC_DATE)
    )
    return (
        pl.when(value.str.contains(_EMAIL))
        .then(pl.lit(EMAIL_MASK))
        .when(phone)
        .then(pl.lit(PHONE_MASK))
        .otherwise(value)
    )


def _cell_problems(
    file: str, frame: pl.DataFrame, kind: str, latest: dt.date
) -> list[SurveyProblem]:
    if frame.is_empty():
        return []
    checked = frame.select(
        "_row",
        *[
            pl.struct(value=_masked(name), reason=reason).alias(name)
            for name, reason in _reasons(latest).items()
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
