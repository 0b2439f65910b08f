"""The data-quality gate's report: findings, outcome and how they are shown."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from rich.table import Table

from expectations.catalogue import Severity


@dataclass(frozen=True)
class Finding:
    """One failed check.

    ``expectation`` is the check's name (``<table>.<column>.<rule>``) and
    ``expectation_type`` the great_expectations expectation that tested it.
    ``examples`` holds up to five CRM record ids of failing rows (lead ids for
    event tables), never a personal field. ``detail`` adds what the counts cannot
    show, such as the unmapped values and their share.
    """

    table: str
    expectation: str
    severity: Severity
    failed: int
    total: int
    examples: tuple[str, ...]
    fix: str
    detail: str = ""
    expectation_type: str = ""


@dataclass
class GateReport:
    """Findings of one gate run, in run order, with its timing.

    ``skipped`` maps a table or check name to the reason it was not checked.
    ``import_seconds`` is the part of ``duration_seconds`` spent waiting for
    great_expectations to load, in this process or in the validation worker. It
    is near zero when the import had finished during extraction.
    """

    findings: list[Finding]
    checks_run: int
    duration_seconds: float
    import_seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether no finding is critical, so scoring may go on."""
        return not self.critical

    @property
    def critical(self) -> list[Finding]:
        """The findings that stop the run."""
        return [f for f in self.findings if f.severity == "critical"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings that weaken the scores without stopping the run."""
        return [f for f in self.findings if f.severity == "warning"]

    def summary(self) -> str:
        """Describe the outcome in one sentence."""
        verdict = "passed" if self.passed else "failed"
        return (
            f"Data-quality gate {verdict}: {len(self.critical)} critical, "
            f"{len(self.warnings)} warning(s) from {self.checks_run} checks "
            f"in {self.duration_seconds:.2f} s."
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data, findings in run order."""
        return {
            "passed": self.passed,
            "checks_run": self.checks_run,
            "duration_seconds": round(self.duration_seconds, 3),
            "import_seconds": round(self.import_seconds, 3),
            "findings": [
                {**asdict(f), "examples": list(f.examples)} for f in self.findings
            ],
            "skipped": dict(self.skipped),
        }

    def render_table(self) -> Table:
        """Build a rich table of the findings, critical ones first."""
        table = Table(
            title=self.summary(), title_justify="left", show_lines=True, expand=True
        )
        table.add_column("severity", no_wrap=True)
        table.add_column("check", overflow="fold", ratio=2)
        table.add_column("failed", no_wrap=True)
        table.add_column("examples", overflow="fold", ratio=2)
        table.add_column("what to fix", ratio=3)
        for finding in self._ordered():
            style = "bold red" if finding.severity == "critical" else "yellow"
            fix = f"{finding.detail}\n{finding.fix}" if finding.detail else finding.fix
            table.add_row(
                f"[{style}]{finding.severity}[/]",
                finding.expectation.replace(".", ".\n", 1),
                f"{finding.failed} of {finding.total}",
                "\n".join(finding.examples),
                fix,
            )
        return table

    def markdown(self) -> str:
        """Return the findings as Markdown: a summary line, a table, skipped checks."""
        lines = [self.summary(), ""]
        if self.findings:
            lines += [
                "| severity | check | failed | examples | what to fix |",
                "|---|---|---|---|---|",
            ]
            for finding in self._ordered():
                fix = (
                    f"{finding.detail} {finding.fix}" if finding.detail else finding.fix
                )
                cells = (
                    finding.severity,
                    f"`{finding.expectation}`",
                    f"{finding.failed} of {finding.total}",
                    ", ".join(finding.examples),
                    fix,
                )
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
            lines.append("")
        if self.skipped:
            lines.append("Not checked:")
            lines += [
                f"- `{name}`: {_cell(reason)}" for name, reason in self.skipped.items()
            ]
            lines.append("")
        return "\n".join(lines)

    def _ordered(self) -> list[Finding]:
        return self.critical + self.warnings


def _cell(text: str) -> str:
    """Make ``text`` safe inside one Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
