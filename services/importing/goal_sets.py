"""Importing a goal set from a CSV file.

Goal-set files are told apart by their header: `learning_line,code,goal[,after]`, or with
`level,descriptor` a rubric, one row per level in order; every goal of a rubric has the same
levels, and those become the set's rubric levels. `after` lists, `;`-separated, the codes of
goals of the same file that come first; a circle of them is refused. Goals missing from a
later file are kept, because pupils' goals, evidence and assessments refer to them.

The file is read and checked here (services.importing.csv_reading); the rows are written by
storage.goal_sets. Importing the same file twice changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from services.importing.csv_reading import (
    CsvTable,
    Problems,
    bad_character,
    cell_list,
    cell_value,
    check_columns,
    read_csv,
)
from storage.change_counts import ChangeCounts
from storage.goal_sets import GoalEntry, find_goal_set, rubric_levels, write_goal_set
from storage.models import RubricLevel, School

GOAL_SET_NAME_MAX = 200
LEARNING_LINE_MAX = 200
GOAL_CODE_MAX = 32
GOAL_TEXT_MAX = 500
LEVEL_NAME_MAX = 64
DESCRIPTOR_MAX = 500

GOALS_REQUIRED = ("learning_line", "code", "goal")
RUBRIC_REQUIRED = (*GOALS_REQUIRED, "level", "descriptor")
GOALS_OPTIONAL = ("after",)

_GOAL_SET_PREFIX = re.compile(r"^(goal[-_ ]?sets?|doelen(sets?)?)[-_ ]+", re.IGNORECASE)


@dataclass(frozen=True)
class GoalSetImportResult:
    goal_set_id: int
    name: str
    created: bool
    has_rubric: bool
    levels: list[str]
    level_changes: ChangeCounts
    learning_lines: ChangeCounts
    # A goal counts as updated when its text, line, place, prerequisites or descriptors changed.
    goals: ChangeCounts
    prerequisites: int
    # Codes of goals the set has and the file does not; they are kept (pupils' work refers
    # to them).
    not_in_file: list[str]

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.level_changes.created
            or self.level_changes.updated
            or self.learning_lines.created
            or self.learning_lines.updated
            or self.goals.created
            or self.goals.updated
        )


@dataclass
class _GoalRow:
    line: int
    code: str
    learning_line: str
    text: str
    after: list[str]
    # (level name, descriptor, line) in file order; empty without a rubric.
    levels: list[tuple[str, str, int]] = field(default_factory=list)


def default_goal_set_name(path: Path) -> str:
    """A readable name from the file's: "goalset-natuurkunde-vwo3-h1" → "Natuurkunde vwo3 h1"."""
    stem = _GOAL_SET_PREFIX.sub("", path.stem)
    words = " ".join(re.split(r"[-_\s]+", stem)).strip() or path.stem
    return words[:1].upper() + words[1:]


def _goal_set_name(name: str, problems: Problems) -> str:
    bad = bad_character(name)
    if bad is not None:
        problems.fail(0, None, f"control character {bad} in the goal set's name")
    cleaned = unicodedata.normalize("NFC", " ".join(name.split()))
    if not cleaned:
        problems.fail(0, None, "the goal set needs a name")
    if len(cleaned) > GOAL_SET_NAME_MAX:
        problems.fail(0, None, f"the goal set's name is longer than {GOAL_SET_NAME_MAX} characters")
    return cleaned


def _parse_goals(table: CsvTable, problems: Problems, *, has_rubric: bool) -> list[_GoalRow]:
    goals: list[_GoalRow] = []
    first_line: dict[str, int] = {}
    for row in table.rows:
        code = cell_value(row, "code", problems, max_length=GOAL_CODE_MAX)
        current = goals[-1] if goals else None
        continues = has_rubric and current is not None and code and code == current.code
        # Later rows of a rubric goal may leave the goal's own cells empty (merged cells).
        line_name = cell_value(
            row, "learning_line", problems, max_length=LEARNING_LINE_MAX, required=not continues
        )
        text = cell_value(row, "goal", problems, max_length=GOAL_TEXT_MAX, required=not continues)
        after = cell_list(row, "after", problems, max_length=GOAL_CODE_MAX)

        if continues and current is not None:
            for column, value, first in (
                ("learning_line", line_name, current.learning_line),
                ("goal", text, current.text),
            ):
                if value and value != first:
                    problems.add(
                        row.line,
                        column,
                        f'differs from line {current.line}, the first row of goal "{code}"',
                    )
            if row.raw("after") and after != current.after:
                problems.add(
                    row.line,
                    "after",
                    f'differs from line {current.line}, the first row of goal "{code}"',
                )
            goal = current
        else:
            if code and code in first_line:
                hint = "; the rows of one goal must be next to each other" if has_rubric else ""
                problems.add(
                    row.line,
                    "code",
                    f'duplicate code "{code}" (also on line {first_line[code]}){hint}',
                )
                continue
            if code:
                first_line[code] = row.line
            goal = _GoalRow(row.line, code, line_name, text, after)
            goals.append(goal)

        if has_rubric:
            level = cell_value(row, "level", problems, max_length=LEVEL_NAME_MAX)
            descriptor = cell_value(row, "descriptor", problems, max_length=DESCRIPTOR_MAX)
            if level and any(level == name for name, _, _ in goal.levels):
                problems.add(
                    row.line, "level", f'level "{level}" appears twice for goal "{goal.code}"'
                )
            goal.levels.append((level, descriptor, row.line))

    if has_rubric:
        _check_levels_match(goals, problems)
    _check_prerequisites(goals, problems)
    return goals


def _check_levels_match(goals: list[_GoalRow], problems: Problems) -> None:
    if not goals:
        return
    reference = goals[0]
    expected = [name for name, _, _ in reference.levels]
    for goal in goals[1:]:
        names = [name for name, _, _ in goal.levels]
        if names != expected:
            problems.add(
                goal.line,
                "level",
                f'goal "{goal.code}" has levels ({", ".join(names)}) but goal "{reference.code}" '
                f"on line {reference.line} has ({', '.join(expected)}); every goal needs the "
                "same levels in the same order",
            )


def _check_prerequisites(goals: list[_GoalRow], problems: Problems) -> None:
    codes = {goal.code for goal in goals if goal.code}
    edges: dict[str, list[str]] = {}
    for goal in goals:
        valid: list[str] = []
        for code in goal.after:
            if code == goal.code:
                problems.add(goal.line, "after", f'goal "{code}" cannot come after itself')
            elif code not in codes:
                problems.add(goal.line, "after", f'unknown code "{code}" (not a goal in this file)')
            else:
                valid.append(code)
        if goal.code:
            edges[goal.code] = valid
    line_of = {goal.code: goal.line for goal in goals}
    for cycle in _cycles(list(edges), edges):
        problems.add(
            line_of[cycle[0]],
            "after",
            "goals come after each other in a circle: " + " after ".join(cycle),
        )


def _cycles(order: list[str], edges: dict[str, list[str]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search (iterative: goal lines can be long)."""
    unseen, on_path, done = 0, 1, 2
    state = dict.fromkeys(order, unseen)
    cycles: list[list[str]] = []
    for start in order:
        if state[start] != unseen:
            continue
        state[start] = on_path
        path = [start]
        stack = [iter(edges[start])]
        while stack:
            for nxt in stack[-1]:
                if state[nxt] == on_path:
                    cycles.append([*path[path.index(nxt) :], nxt])
                elif state[nxt] == unseen:
                    state[nxt] = on_path
                    path.append(nxt)
                    stack.append(iter(edges[nxt]))
                    break
            else:
                state[path.pop()] = done
                stack.pop()
    return cycles


async def import_goal_set(
    session: AsyncSession, *, school: School, path: Path, name: str | None
) -> GoalSetImportResult:
    """Create or update a goal set from a plain or a rubric file (told apart by the header)."""
    problems = Problems(path.name)
    set_name = _goal_set_name(name if name is not None else default_goal_set_name(path), problems)

    table = await read_csv(path, problems)
    has_rubric = "level" in table.columns or "descriptor" in table.columns
    check_columns(
        table,
        problems,
        required=RUBRIC_REQUIRED if has_rubric else GOALS_REQUIRED,
        optional=GOALS_OPTIONAL,
    )
    goals = _parse_goals(table, problems, has_rubric=has_rubric)
    levels = [level for level, _, _ in goals[0].levels] if has_rubric and goals else []

    goal_set = await find_goal_set(session, school_id=school.id, name=set_name)
    old_levels: list[RubricLevel] = []
    if goal_set is not None:
        if goal_set.has_rubric != has_rubric:
            kind = "has a rubric" if goal_set.has_rubric else "has no rubric"
            problems.add(
                table.header_line,
                None,
                f'goal set "{goal_set.name}" {kind} and this file '
                f"{'has' if has_rubric else 'has none'}; import it under another name",
            )
        old_levels = await rubric_levels(session, goal_set_id=goal_set.id)
        if has_rubric and len(levels) < len(old_levels):
            # Assessments point at levels: dropping one would lose where pupils stand.
            problems.add(
                table.header_line,
                "level",
                f'goal set "{goal_set.name}" has {len(old_levels)} levels and the file '
                f"{len(levels)}; levels can be renamed or added, not removed",
            )
    problems.raise_if_any()

    changes = await write_goal_set(
        session,
        school_id=school.id,
        goal_set=goal_set,
        name=set_name,
        has_rubric=has_rubric,
        levels=levels,
        old_levels=old_levels,
        entries=[
            GoalEntry(
                goal.code,
                goal.learning_line,
                goal.text,
                goal.after,
                [(level, descriptor) for level, descriptor, _ in goal.levels],
            )
            for goal in goals
        ],
    )
    in_file = {goal.code for goal in goals}
    return GoalSetImportResult(
        goal_set_id=changes.goal_set_id,
        name=changes.name,
        created=changes.created,
        has_rubric=has_rubric,
        levels=levels,
        level_changes=changes.level_changes,
        learning_lines=changes.learning_lines,
        goals=changes.goals,
        prerequisites=sum(len(goal.after) for goal in goals),
        not_in_file=sorted(code for code in changes.codes if code not in in_file),
    )
