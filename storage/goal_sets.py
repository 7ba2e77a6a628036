"""Writing a goal set from a checked list of goals: its rubric levels, learning lines, goals,
prerequisites and rubric descriptors (the goal-set files, see services.importing.goal_sets).

Goals are matched on (goal set, code), learning lines on their name, rubric levels on their
place, so writing the same list twice changes nothing. Goals missing from a later list are
kept, because pupils' goals, evidence and assessments refer to them. Nothing here commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.change_counts import ChangeCounts, ChangeTally
from storage.models import (
    Goal,
    GoalPrerequisite,
    GoalSet,
    LearningLine,
    RubricDescriptor,
    RubricLevel,
)


@dataclass(frozen=True)
class GoalEntry:
    """One goal of a checked goal-set file, in file order."""

    code: str
    learning_line: str
    text: str
    after: list[str]  # codes of goals this one comes after
    # (level name, descriptor) in the rubric's order; empty without a rubric.
    levels: list[tuple[str, str]]


@dataclass(frozen=True)
class GoalSetChanges:
    goal_set_id: int
    name: str
    created: bool
    level_changes: ChangeCounts
    learning_lines: ChangeCounts
    # A goal counts as updated when its text, line, place, prerequisites or descriptors changed.
    goals: ChangeCounts
    # Every code the set has now, the file's and those kept from before.
    codes: list[str]


async def find_goal_set(session: AsyncSession, *, school_id: int, name: str) -> GoalSet | None:
    """The school's goal set of this name, case ignored."""
    return await session.scalar(
        select(GoalSet).where(
            GoalSet.school_id == school_id, func.lower(GoalSet.name) == name.lower()
        )
    )


async def rubric_levels(session: AsyncSession, *, goal_set_id: int) -> list[RubricLevel]:
    """The set's rubric levels in order."""
    return list(
        await session.scalars(
            select(RubricLevel)
            .where(RubricLevel.goal_set_id == goal_set_id)
            .order_by(RubricLevel.position)
        )
    )


async def write_goal_set(
    session: AsyncSession,
    *,
    school_id: int,
    goal_set: GoalSet | None,
    name: str,
    has_rubric: bool,
    levels: Sequence[str],
    old_levels: Sequence[RubricLevel],
    entries: Sequence[GoalEntry],
) -> GoalSetChanges:
    """Create the set (when `goal_set` is None) or bring it in line with the entries.
    `old_levels` are its `rubric_levels`; levels are matched by place, so a renamed level
    keeps its assessments."""
    created = goal_set is None
    if goal_set is None:
        goal_set = GoalSet(school_id=school_id, name=name, has_rubric=has_rubric)
        session.add(goal_set)
        await session.flush()
    goals = list(entries)
    level_rows, level_changes = await _sync_levels(
        session, goal_set, list(levels), list(old_levels)
    )
    lines, line_changes = await _sync_learning_lines(session, goal_set, goals)
    goal_rows, changed_goals, created_goals = await _sync_goals(session, goal_set, goals, lines)
    changed_goals |= await _sync_prerequisites(session, goal_set, goals, goal_rows)
    if has_rubric:
        changed_goals |= await _sync_descriptors(session, goal_set, goals, goal_rows, level_rows)

    tally = ChangeTally()
    for goal in goals:
        tally.count(created=goal.code in created_goals, updated=goal.code in changed_goals)
    return GoalSetChanges(
        goal_set_id=goal_set.id,
        name=goal_set.name,
        created=created,
        level_changes=level_changes,
        learning_lines=line_changes,
        goals=tally.freeze(),
        codes=list(goal_rows),
    )


async def _sync_levels(
    session: AsyncSession, goal_set: GoalSet, levels: list[str], old_levels: list[RubricLevel]
) -> tuple[list[RubricLevel], ChangeCounts]:
    """Levels are matched by place, so renaming "brons" to "beginner" keeps assessments."""
    tally = ChangeTally()
    rows: list[RubricLevel] = []
    for position, level_name in enumerate(levels, start=1):
        if position <= len(old_levels):
            level = old_levels[position - 1]
            renamed = level.name != level_name
            level.name = level_name
            tally.count(updated=renamed)
        else:
            level = RubricLevel(goal_set_id=goal_set.id, position=position, name=level_name)
            session.add(level)
            tally.count(created=True)
        rows.append(level)
    await session.flush()
    return rows, tally.freeze()


async def _sync_learning_lines(
    session: AsyncSession, goal_set: GoalSet, goals: list[GoalEntry]
) -> tuple[dict[str, LearningLine], ChangeCounts]:
    existing = {
        line.name: line
        for line in await session.scalars(
            select(LearningLine).where(LearningLine.goal_set_id == goal_set.id)
        )
    }
    tally = ChangeTally()
    for position, name in enumerate(dict.fromkeys(goal.learning_line for goal in goals), 1):
        line = existing.get(name)
        if line is None:
            existing[name] = LearningLine(goal_set_id=goal_set.id, name=name, position=position)
            session.add(existing[name])
            tally.count(created=True)
        else:
            moved = line.position != position
            line.position = position
            tally.count(updated=moved)
    await session.flush()
    return existing, tally.freeze()


async def _sync_goals(
    session: AsyncSession,
    goal_set: GoalSet,
    goals: list[GoalEntry],
    lines: dict[str, LearningLine],
) -> tuple[dict[str, Goal], set[str], set[str]]:
    """Returns all goals of the set by code, the codes updated and the codes created."""
    existing = {
        goal.code: goal
        for goal in await session.scalars(select(Goal).where(Goal.goal_set_id == goal_set.id))
    }
    updated: set[str] = set()
    created: set[str] = set()
    for position, row in enumerate(goals, start=1):
        line_id = lines[row.learning_line].id
        goal = existing.get(row.code)
        if goal is None:
            existing[row.code] = Goal(
                goal_set_id=goal_set.id,
                learning_line_id=line_id,
                code=row.code,
                text=row.text,
                position=position,
            )
            session.add(existing[row.code])
            created.add(row.code)
        elif (goal.text, goal.learning_line_id, goal.position) != (row.text, line_id, position):
            goal.text, goal.learning_line_id, goal.position = row.text, line_id, position
            updated.add(row.code)
    await session.flush()
    return existing, updated, created


async def _sync_prerequisites(
    session: AsyncSession, goal_set: GoalSet, goals: list[GoalEntry], goal_rows: dict[str, Goal]
) -> set[str]:
    """The file says what each of its goals comes after, so that replaces what was stored."""
    wanted = {
        (goal_rows[goal.code].id, goal_rows[code].id) for goal in goals for code in goal.after
    }
    in_file = {goal_rows[goal.code].id for goal in goals}
    code_of = {goal.id: code for code, goal in goal_rows.items()}
    stored = await session.scalars(
        select(GoalPrerequisite)
        .join(Goal, Goal.id == GoalPrerequisite.goal_id)
        .where(Goal.goal_set_id == goal_set.id)
    )
    changed: set[str] = set()
    have: set[tuple[int, int]] = set()
    for prerequisite in stored:
        pair = (prerequisite.goal_id, prerequisite.requires_goal_id)
        if prerequisite.goal_id in in_file and pair not in wanted:
            await session.delete(prerequisite)
            changed.add(code_of[prerequisite.goal_id])
        have.add(pair)
    for goal_id, requires_id in sorted(wanted - have):
        session.add(GoalPrerequisite(goal_id=goal_id, requires_goal_id=requires_id))
        changed.add(code_of[goal_id])
    await session.flush()
    return changed


async def _sync_descriptors(
    session: AsyncSession,
    goal_set: GoalSet,
    goals: list[GoalEntry],
    goal_rows: dict[str, Goal],
    levels: list[RubricLevel],
) -> set[str]:
    stored = {
        (descriptor.goal_id, descriptor.rubric_level_id): descriptor
        for descriptor in await session.scalars(
            select(RubricDescriptor)
            .join(Goal, Goal.id == RubricDescriptor.goal_id)
            .where(Goal.goal_set_id == goal_set.id)
        )
    }
    changed: set[str] = set()
    for goal in goals:
        goal_id = goal_rows[goal.code].id
        for level, (_, text) in zip(levels, goal.levels, strict=True):
            descriptor = stored.get((goal_id, level.id))
            if descriptor is None:
                session.add(RubricDescriptor(goal_id=goal_id, rubric_level_id=level.id, text=text))
                changed.add(goal.code)
            elif descriptor.text != text:
                descriptor.text = text
                changed.add(goal.code)
    await session.flush()
    return changed
