"""The value of one metric, with the evidence behind it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Unit = Literal["share", "hours", "count", "days", "ratio", "flag"]

# The ``details`` key listing the data-quality gate's warnings on a metric's input.
WARNINGS_KEY = "data_quality_warnings"


@dataclass(frozen=True)
class MetricValue:
    """A measured value with its population and what limited it.

    ``value`` is ``None`` when the metric is not measurable; ``note`` then says why
    (a missing file or column, an empty population). ``population`` is the number
    of records the value was computed over, so a value built on 12 leads says so.
    ``details`` holds the counts and breakdowns behind the value. ``reads`` names
    the canonical inputs that feed the value, each a table (``"activities"``) or
    a column (``"opportunities.amount"``); :func:`metrics.measure.measure` sets it.
    """

    key: str
    value: float | None
    population: int
    unit: Unit
    label: str
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    reads: frozenset[str] = field(default=frozenset(), compare=False)

    @property
    def measurable(self) -> bool:
        """Return whether the metric has a value."""
        return self.value is not None

    @classmethod
    def not_measurable(cls, key: str, unit: Unit, label: str, reason: str) -> MetricValue:
        """Build the value of a metric whose inputs are missing."""
        return cls(key=key, value=None, population=0, unit=unit, label=label, note=reason)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "key": self.key,
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "population": self.population,
            "measurable": self.measurable,
            "note": self.note,
            "details": self.details,
        }


Metrics = dict[str, MetricValue]
