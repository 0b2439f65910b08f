"""Parsing of raw CRM text values into typed polars columns, with row-level errors.

Every parser takes a string column and either returns the typed column or raises
:class:`InputError` naming the file, row, field and value of the first bad cells.
Rows are counted as a spreadsheet shows them: the header is row 1.
"""

from __future__ import annotations

import hashlib
import re

import polars as pl

from connectors.errors import InputError

_ISO = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
_EPOCH_MS = r"^\d{12,13}$"
_LOCALE_TIME = r"^\d{1,2}/\d{1,2}/\d{2,4} \d{1,2}:\d{2}(:\d{2})?( ?[AaPp][Mm])?$"
_LOCALE_DATE = r"^\d{1,2}/\d{1,2}/\d{2,4}$"
_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_TRUE = ("true", "1", "yes", "y")
_FALSE = ("false", "0", "no", "n")
MAX_EXAMPLES = 3


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# A run of digits that may be split by spaces, dots, dashes or brackets, as in
# "+44 20 7946 0958", "(415) 555-0199" or "4155550142".
_DIGIT_RUN = r"\+?\(?\d[\d\s().-]*\d"
# Dates are not phone numbers. ISO dates are blanked before runs are found, so
# a date next to a number does not hide it. A run such as 20250701, a date as
# campaign names write it, is skipped whole.
_DATE_ANYWHERE = r"\d{4}-\d{1,2}-\d{1,2}"
_COMPACT_DATE = r"^(19|20)\d{6}$"
_SEPARATED = re.compile(r"[\s().+-]")
PHONE_DIGITS = 7


EMAIL_PLACEHOLDER = "<e-mail address>"
PHONE_PLACEHOLDER = "<phone number>"


def redact(value: object) -> str:
    """Return ``repr(value)`` unless it looks like an e-mail address or phone number.

    Error messages show the bad cell so the user can find it, but a cell that holds
    personal data (a column shifted by a stray comma, say) must not be printed.
    """
    placeholder = personal_placeholder(str(value), free_text=False)
    return placeholder or repr(value)


def personal_placeholder(text: str, *, free_text: bool) -> str | None:
    """Return the placeholder for ``text`` if it looks personal, else ``None``.

    ``free_text`` applies the stricter rule of :func:`redact_text`, in which an
    unseparated run of seven digits counts as a phone number too.
    """
    if _EMAIL.search(text):
        return EMAIL_PLACEHOLDER
    if _has_phone(text, separated_only=not free_text):
        return PHONE_PLACEHOLDER
    return None


def _has_phone(text: str, *, separated_only: bool) -> bool:
    """Return whether ``text`` contains a run of seven or more digits, not a date.

    With ``separated_only`` a run counts only if spaces, dashes, dots, brackets
    or a plus sign split it, so that a bad amount such as ``12345678`` in an
    error message stays readable.
    """
    for run in re.findall(_DIGIT_RUN, re.sub(_DATE_ANYWHERE, " ", text)):
        if re.search(_COMPACT_DATE, run):
            continue
        if separated_only and not _SEPARATED.search(run):
            continue
        if sum(ch.isdigit() for ch in run) >= PHONE_DIGITS:
            return True
    return False


def redact_text(column: str) -> pl.Expr:
    """Replace the values of a text column that look personal by a placeholder.

    A value containing an e-mail address becomes ``<e-mail address>``. A value
    with a run of seven digits or more, separated or not, that is not a date
    becomes ``<phone number>``, because free text rarely contains such a number
    for any other reason. Other values are kept.
    """
    text = pl.col(column)
    without_dates = text.str.replace_all(_DATE_ANYWHERE, " ")
    digits_per_run = without_dates.str.extract_all(_DIGIT_RUN).list.eval(
        pl.when(pl.element().str.contains(_COMPACT_DATE))
        .then(0)
        .otherwise(pl.element().str.count_matches(r"\d"))
    )
    return (
        pl.when(text.str.contains(_EMAIL.pattern))
        .then(pl.lit(EMAIL_PLACEHOLDER))
        .when(digits_per_run.list.max() >= PHONE_DIGITS)
        .then(pl.lit(PHONE_PLACEHOLDER))
        .otherwise(text)
        .alias(column)
    )


def redact_counts(counts: dict[str, int]) -> dict[str, int]:
    """Return value counts with personal-looking values merged under placeholders.

    The values are free text, so the rule of :func:`redact_text` applies.
    """
    redacted: dict[str, int] = {}
    for value, count in counts.items():
        key = redact_free_text(value)
        redacted[key] = redacted.get(key, 0) + count
    return redacted


def redact_free_text(value: str) -> str:
    """Return ``value``, or its placeholder when it looks like personal data."""
    return personal_placeholder(value, free_text=True) or value


def _row_numbers(frame: pl.DataFrame, bad: pl.Expr) -> pl.DataFrame:
    return frame.with_row_index("_row", offset=2).filter(bad).head(MAX_EXAMPLES)


def _raise_bad_cells(
    source: str, frame: pl.DataFrame, column: str, bad: pl.Expr, expected: str
) -> None:
    rows = _row_numbers(frame, bad)
    if rows.is_empty():
        return
    total = frame.select(bad.sum()).item()
    examples = "; ".join(
        f"row {row}: {redact(value)}" for row, value in zip(rows["_row"], rows[column])
    )
    msg = (
        f"{source}: field `{column}` has {total} invalid value(s) ({examples}); "
        f"expected {expected}. Fix these cells in the file or re-export it."
    )
    raise InputError(msg)


def _locale_formats(date_order: str) -> tuple[str, str]:
    return ("%m/%d", "%d/%m") if date_order == "MDY" else ("%d/%m", "%m/%d")


def _parse_locale(text: pl.Expr, date_order: str, *, with_time: bool) -> pl.Expr:
    day_month, _ = _locale_formats(date_order)
    short_year = text.str.contains(r"^\d{1,2}/\d{1,2}/\d{2}(\s|$)")
    if not with_time:
        return pl.coalesce(
            pl.when(short_year).then(text.str.to_date(f"{day_month}/%y", strict=False)),
            pl.when(~short_year).then(text.str.to_date(f"{day_month}/%Y", strict=False)),
        )
    candidates = []
    for year_format, selector in (("%y", short_year), ("%Y", ~short_year)):
        for time_format in ("%I:%M %p", "%I:%M%p", "%I:%M:%S %p", "%H:%M", "%H:%M:%S"):
            fmt = f"{day_month}/{year_format} {time_format}"
            candidates.append(
                pl.when(selector).then(text.str.to_datetime(fmt, strict=False, time_unit="us"))
            )
    return pl.coalesce(candidates)


def parse_datetime(
    frame: pl.DataFrame,
    column: str,
    *,
    source: str,
    time_zone: str,
    date_order: str = "MDY",
) -> tuple[pl.Series, dict[str, int]]:
    """Parse a column of export timestamps to UTC.

    Accepted: ISO 8601 with ``+0000``, ``Z``, ``+00:00`` or ``+00`` offsets; epoch
    milliseconds; locale forms such as ``03/05/2024 2:22 PM`` and dates such as
    ``02/03/24``. Locale forms and bare dates carry no zone, so ``time_zone``
    applies (a bare date becomes the start of that local day). Returns the column
    and a count of values read by each zone-less form, for the report.
    """
    text = pl.col(column).str.strip_chars()
    iso = text.str.contains(_ISO)
    epoch = text.str.contains(_EPOCH_MS)
    locale_time = text.str.contains(_LOCALE_TIME)
    locale_date = text.str.contains(_LOCALE_DATE) | text.str.contains(_ISO_DATE)

    iso_value = text.str.replace(r"Z$", "+00:00").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC"
    )
    iso_space = text.str.to_datetime(
        "%Y-%m-%d %H:%M:%S%.f%#z", strict=False, time_unit="us", time_zone="UTC"
    )
    iso_naive = pl.coalesce(
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us"),
        text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us"),
        text.str.to_datetime("%Y-%m-%dT%H:%M", strict=False, time_unit="us"),
    )
    epoch_value = pl.from_epoch(
        text.cast(pl.Int64, strict=False), time_unit="ms"
    ).dt.replace_time_zone("UTC")
    local_value = (
        pl.coalesce(
            pl.when(locale_time).then(_parse_locale(text, date_order, with_time=True)),
            pl.when(locale_date).then(
                pl.coalesce(
                    _parse_locale(text, date_order, with_time=False),
                    text.str.to_date("%Y-%m-%d", strict=False),
                ).cast(pl.Datetime("us"))
            ),
            pl.when(iso).then(iso_naive),
        )
        .dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    parsed_expr = pl.coalesce(
        pl.when(iso).then(pl.coalesce(iso_value, iso_space)),
        pl.when(epoch).then(epoch_value),
        local_value,
    )
    parsed = frame.select(
        parsed=parsed_expr,
        zoneless_time=(locale_time | (iso & iso_value.is_null() & iso_space.is_null()))
        & parsed_expr.is_not_null(),
        date_only=locale_date & parsed_expr.is_not_null(),
    )
    check = frame.with_columns(_parsed=parsed["parsed"])
    bad = pl.col(column).str.strip_chars().str.len_chars().gt(0) & pl.col("_parsed").is_null()
    _raise_bad_cells(
        source,
        check,
        column,
        bad,
        "a timestamp such as 2024-03-05T14:22:10.000+0000, 03/05/2024 2:22 PM "
        "or epoch milliseconds",
    )
    forms = {
        "zoneless_time": int(parsed["zoneless_time"].sum()),
        "date_only": int(parsed["date_only"].sum()),
    }
    return parsed["parsed"].alias(column), forms


def parse_date(
    frame: pl.DataFrame, column: str, *, source: str, date_order: str = "MDY"
) -> pl.Series:
    """Parse a date-only column (``2024-03-05``, ``03/05/2024``, ``03/05/24``).

    A full timestamp in a date column keeps its calendar date as written.
    """
    text = pl.col(column).str.strip_chars()
    value = pl.coalesce(
        text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False),
        pl.when(text.str.contains(r"^\d{1,2}/\d{1,2}/\d{2,4}")).then(
            _parse_locale(text.str.extract(r"^(\S+)"), date_order, with_time=False)
        ),
    )
    check = frame.with_columns(_parsed=value)
    bad = text.str.len_chars().gt(0) & pl.col("_parsed").is_null()
    _raise_bad_cells(source, check, column, bad, "a date such as 2024-03-05 or 03/05/2024")
    return check["_parsed"].alias(column)


def parse_bool(frame: pl.DataFrame, column: str, *, source: str) -> pl.Series:
    """Parse TRUE/FALSE (any case), 1/0 or yes/no; a blank cell is null."""
    text = pl.col(column).str.strip_chars().str.to_lowercase()
    value = (
        pl.when(text.is_in(_TRUE))
        .then(True)
        .when(text.is_in(_FALSE))
        .then(False)
        .otherwise(None)
    )
    check = frame.with_columns(_parsed=value)
    bad = text.str.len_chars().gt(0) & pl.col("_parsed").is_null()
    _raise_bad_cells(source, check, column, bad, "TRUE or FALSE")
    return check["_parsed"].alias(column)


def parse_number(frame: pl.DataFrame, column: str, *, source: str) -> pl.Series:
    """Parse a decimal number; thousands separators and currency signs are removed."""
    text = pl.col(column).str.strip_chars().str.replace_all(r"[,$€£\s]", "")
    parsed = text.cast(pl.Float64, strict=False)
    value = pl.when(parsed.is_finite()).then(parsed)
    check = frame.with_columns(_parsed=value)
    bad = text.str.len_chars().gt(0) & pl.col("_parsed").is_null()
    _raise_bad_cells(
        source, check, column, bad, "a finite number such as 15000 or 1250.50"
    )
    return check["_parsed"].alias(column)


def hash_email(column: pl.Expr, salt: str) -> pl.Expr:
    """Return a salted SHA-256 of the normalised e-mail address, or null when blank.

    The address itself is never kept; the hash only lets duplicates be recognised
    within one org.
    """
    normalised = column.str.strip_chars().str.to_lowercase()
    return (
        pl.when(normalised.str.len_chars() > 0)
        .then(
            normalised.map_elements(
                lambda value: hashlib.sha256((salt + value).encode()).hexdigest()[:32],
                return_dtype=pl.String,
            )
        )
        .otherwise(None)
    )
