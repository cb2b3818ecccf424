"""Tables, as reStructuredText simple tables (readable in a terminal as they are)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["table"]


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Return *rows* under *header* as an RST simple table; numbers are right-aligned."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [
        max(len(header[column]), *(len(row[column]) for row in cells))
        for column in range(len(header))
    ]
    numeric = [
        all(_is_number(row[column]) for row in cells) and bool(cells)
        for column in range(len(header))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("=" * width for width in widths)
    return "\n".join([rule, line(header), rule, *(line(row) for row in cells), rule])


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x%").replace(",", ""))
    except ValueError:
        return text in {"", "-"}
    return True
