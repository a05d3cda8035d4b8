"""Render rows as a GitHub-flavoured markdown table.

Why: every bench result ends up pasted into docs or a PR; one tiny renderer keeps the tables
uniform (first column left-aligned, the numbers right-aligned).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        padded = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "| "
        + " | ".join([":" + "-" * (widths[0] - 1)] + ["-" * (w - 1) + ":" for w in widths[1:]])
        + " |"
    )
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def emit_report(report: str, out: Path | None) -> None:
    """Print the report and, if asked, write it to ``out``."""
    print("\n" + report)
    if out:
        out.write_text(report + "\n", encoding="utf-8")
        print(f"\nwrote {out}")
