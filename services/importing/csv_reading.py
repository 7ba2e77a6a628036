"""Reading an import's CSV file, and reporting every problem with its file, line and column.

An import is all-or-nothing: the whole file is read and checked (against itself and against
what the school already holds) before a single row is written, and every problem found is
reported, so one round of fixing is usually enough. Values are cleaned the same way
everywhere: NFC-normalised, runs of spaces collapsed, control characters refused.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

# Past this many problems the rest are mostly echoes of the first ones (a shifted column).
MAX_PROBLEMS = 50

_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


@dataclass(frozen=True)
class ImportProblem:
    file: str
    line: int  # 0 when the problem is about the file as a whole
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line == 0 else f"{self.file} line {self.line}"
        if self.column is not None:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class ImportFileError(Exception):
    """The file cannot be imported; nothing was written. One problem per line in str()."""

    def __init__(self, problems: Sequence[ImportProblem], *, more: bool = False) -> None:
        self.problems = list(problems)
        self.more = more
        super().__init__(str(self))

    def __str__(self) -> str:
        lines = [str(problem) for problem in self.problems]
        if self.more and self.problems:
            lines.append(
                f"{self.problems[0].file}: more problems than these {len(self.problems)}; "
                "fix these first"
            )
        return "\n".join(lines)


class Problems:
    """The problems found in one file so far; `raise_if_any` ends the import with all of them."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[ImportProblem] = []
        self.more = False

    def add(self, line: int, column: str | None, message: str) -> None:
        if len(self.items) >= MAX_PROBLEMS:
            self.more = True
            return
        self.items.append(ImportProblem(self.file, line, column, message))

    def raise_if_any(self) -> None:
        if self.items:
            # Checks run in several passes; the reader wants them in file order.
            raise ImportFileError(sorted(self.items, key=lambda item: item.line), more=self.more)

    def fail(self, line: int, column: str | None, message: str) -> NoReturn:
        self.add(line, column, message)
        self.raise_if_any()
        raise AssertionError("unreachable: a problem was just added")


@dataclass(frozen=True)
class CsvRow:
    line: int  # where the record starts (a quoted value may span lines)
    values: dict[str, str]

    def raw(self, column: str) -> str:
        return self.values.get(column, "").strip()


@dataclass(frozen=True)
class CsvTable:
    header_line: int
    columns: list[str]
    rows: list[CsvRow]


def _column_name(cell: str) -> str:
    return "_".join(cell.strip().lower().split())


async def read_csv(path: Path, problems: Problems) -> CsvTable:
    """The file's header and non-empty rows; a file that cannot be read as CSV fails here."""
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as error:
        problems.fail(0, None, f"cannot read the file: {error.strerror or error}")
    return parse_csv(data, problems)


def parse_csv(data: bytes, problems: Problems) -> CsvTable:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        problems.fail(line, None, 'not UTF-8 text; save the file as "CSV UTF-8"')

    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    header_line = 1
    rows: list[CsvRow] = []
    start = 1
    try:
        for record in reader:
            # A quoted value may span lines: report the line the record starts on.
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header, header_line = [_column_name(cell) for cell in record], line
                while header and not header[-1]:
                    header.pop()  # spreadsheets add empty columns at the end
                continue
            extra = record[len(header) :]
            if any(cell.strip() for cell in extra):
                problems.add(
                    line,
                    None,
                    f"{len(record)} values but the header has {len(header)} columns "
                    "(a comma in a value needs quotes around the value)",
                )
                continue
            values = {
                column: record[index] if index < len(record) else ""
                for index, column in enumerate(header)
            }
            rows.append(CsvRow(line, values))
    except csv.Error as error:
        problems.fail(reader.line_num, None, f"not valid CSV: {error}")

    if header is None:
        problems.add(0, None, "the file is empty")
    elif len(header) == 1 and ";" in header[0]:
        problems.add(
            header_line,
            None,
            'the columns are separated by semicolons; save the file comma-separated ("CSV UTF-8")',
        )
    elif not rows and not problems.items:
        problems.add(0, None, "the file has a header but no rows")
    problems.raise_if_any()
    assert header is not None
    return CsvTable(header_line, header, rows)


def check_columns(
    table: CsvTable, problems: Problems, *, required: Sequence[str], optional: Sequence[str]
) -> None:
    expected = (*required, *optional)
    if not set(table.columns) & set(expected):
        # Most likely the wrong file: one line says so better than a line per column.
        problems.fail(
            table.header_line,
            None,
            f"the header has none of the expected columns ({', '.join(expected)}); "
            f"found: {', '.join(table.columns)}",
        )
    seen: set[str] = set()
    for position, column in enumerate(table.columns, start=1):
        if not column:
            problems.add(table.header_line, None, f"column {position} of the header has no name")
        elif column in seen:
            problems.add(table.header_line, column, "this column appears twice in the header")
        elif column not in expected:
            problems.add(
                table.header_line, column, f"unknown column (expected: {', '.join(expected)})"
            )
        seen.add(column)
    for column in required:
        if column not in seen:
            problems.add(table.header_line, column, "required column is missing")
    # Rows cannot be checked against a header that is wrong.
    problems.raise_if_any()


def bad_character(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in _CONTROL_CATEGORIES:
            return f"U+{ord(char):04X}"
    return None


def clean_value(
    text: str, line: int, column: str, problems: Problems, *, max_length: int
) -> str | None:
    """One value, NFC-normalised with runs of spaces collapsed, or None if it is not usable.

    Normalising makes "é" typed two ways the same name, so a re-import does not count it as
    a change.
    """
    bad = bad_character(text)
    if bad is not None:
        problems.add(line, column, f"control character {bad} is not allowed")
        return None
    cleaned = unicodedata.normalize("NFC", re.sub(r"\s{2,}", " ", text.strip()))
    if len(cleaned) > max_length:
        problems.add(line, column, f"too long: {len(cleaned)} characters, at most {max_length}")
        return None
    return cleaned


def cell_value(
    row: CsvRow, column: str, problems: Problems, *, max_length: int, required: bool = True
) -> str:
    raw = row.raw(column)
    if not raw:
        if required:
            problems.add(row.line, column, "empty; a value is required")
        return ""
    return clean_value(raw, row.line, column, problems, max_length=max_length) or ""


def cell_list(row: CsvRow, column: str, problems: Problems, *, max_length: int) -> list[str]:
    """A `;`-separated list, without empties and repeats, in the order given."""
    items: list[str] = []
    for part in row.raw(column).split(";"):
        if not part.strip():
            continue
        item = clean_value(part, row.line, column, problems, max_length=max_length)
        if item and item not in items:
            items.append(item)
    return items
