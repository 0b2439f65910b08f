"""``revalign survey template``: a survey CSV ready to send to respondents.

The file opens with guide rows (first cell ``#``) that give, for each dimension,
what it measures, its diagnostic question and what each level 1-5 looks like.
The header row and the respondents' rows follow. :func:`scoring.survey.read_survey`
skips the guide rows, so a filled-in template is read as it is.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from connectors.errors import InputError
from scoring.rubric import Rubric, load_rubric
from scoring.survey import COLUMNS, GUIDE_PREFIX, TEAMS

TEMPLATE_NAME = "survey-template.csv"


def template_rows(rubric: Rubric) -> list[list[str]]:
    """Return the template's rows: guide rows, then the header."""
    guide = [
        "Alignment self-assessment. Add one row per respondent below the header. "
        "Rate each dimension from 1 to 5 using the level descriptions; leave a cell "
        "blank when you cannot judge.",
        f"team is one of: {', '.join(TEAMS)}. answered_on is a date such as "
        "2025-06-20. evidence is optional free text; do not name people.",
    ]
    for key, dimension in rubric.dimensions.items():
        guide.append(f"{key} ({dimension.name}): {dimension.measures}")
        guide.append(f"{key} question: {dimension.question}")
        for number, level in dimension.levels.items():
            name = rubric.level_name(number)
            guide.append(f"{key} {number} = {name}: {level.description}")
    rows = [[GUIDE_PREFIX, text] for text in guide]
    rows.append([*COLUMNS, "evidence"])
    return rows


def write_template(out: Path, *, rubric: Rubric, force: bool = False) -> Path:
    """Write the template to ``out``, a file or a folder for ``survey-template.csv``.

    Raises:
        InputError: the file exists and ``force`` is false, or it cannot be written.
    """
    target = out / TEMPLATE_NAME if out.is_dir() else out
    if target.exists() and not force:
        msg = (
            f"{str(target)!r} already exists and may hold answers; choose another "
            f"--out or pass --force to overwrite it"
        )
        raise InputError(msg)
    try:
        with target.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(template_rows(rubric))
    except OSError as exc:
        msg = f"cannot write survey template {str(target)!r}: {exc.strerror}"
        raise InputError(msg) from None
    return target


def survey_template_command(
    out: Annotated[
        Path, typer.Option(help="File to write, or a folder for survey-template.csv.")
    ] = Path(TEMPLATE_NAME),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the file if it exists.")
    ] = False,
) -> None:
    """Write a survey CSV with each dimension's question and level descriptions."""
    try:
        target = write_template(out, rubric=load_rubric(), force=force)
    except InputError as error:
        Console(stderr=True).print(f"[bold red]error:[/] {error}", highlight=False)
        raise typer.Exit(code=error.exit_code) from None
    Console().print(
        f"Wrote {target}. Send it to respondents, then score with "
        f"`revalign score --survey {target}`.",
        highlight=False,
    )
