"""Who may see whom is decided in `storage/policy.py` only.

A static check over the other storage modules: it fails when one of them builds its own
relationship condition, the kind of check the policy owns:

- a relationship column (guardianship, group membership, talk participant) tied to a given
  person, group or subquery (`Guardianship.parent_id == parent_id`,
  `GroupMembership.group_id.in_(...)`); joining it to another table's column is an ordinary
  join and passes;
- a role read from a loaded row or a parameter and compared with a `Role` member
  (`person.role is Role.TEACHER`, `viewer_role is Role.PARENT`); an `assert` states an
  invariant and passes, and selecting people of a role in SQL (`Person.role == Role.PUPIL`
  in a where clause) is a listing and passes;
- a loaded person's `school_id` (`pupil.school_id`) compared in an `if`, a conditional or a
  `return`: a same-school decision.

Not checked: the policy itself, the models, and the rows of the people import and of the demo
school (`roster.py`, `demo_school.py`), which write memberships and guardianships by design.
A function that must stay an exception is listed in `ALLOWED` with a one-line reason; an entry
that is no longer needed fails the test too.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STORAGE = Path(__file__).resolve().parent.parent / "storage"
NOT_CHECKED = {"policy.py", "models.py", "roster.py", "demo_school.py"}
RELATIONSHIP_COLUMNS = {
    ("Guardianship", "parent_id"),
    ("Guardianship", "pupil_id"),
    ("GroupMembership", "person_id"),
    ("GroupMembership", "group_id"),
    ("TalkParticipant", "person_id"),
}
COMPARING_METHODS = {"in_", "not_in", "is_", "is_not", "isnot", "notin_"}

# (module, function) -> why it may read a relationship itself.
ALLOWED: dict[tuple[str, str], str] = {
    ("subject_data.py", "_Collector.info"): (
        "the export lists every group and parent link of the one pupil (ended ones too), "
        "after policy.pupil_at_school chose the pupil"
    ),
    ("erasure.py", "erasure_preview"): (
        "counts the links the erasure removes, of the pupil the admin's school owns"
    ),
}


@dataclass(frozen=True)
class Violation:
    module: str
    function: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"storage/{self.module}:{self.line} in {self.function}: {self.what}"


def _model_column(node: ast.AST) -> tuple[str, str] | None:
    """`Model.column` (a class name, capitalised, then an attribute), else None."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id[:1].isupper()
    ):
        return node.value.id, node.attr
    return None


def _is_relationship_column(node: ast.AST) -> bool:
    return _model_column(node) in RELATIONSHIP_COLUMNS


def _is_role_member(node: ast.AST) -> bool:
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return bool(node.elts) and all(_is_role_member(element) for element in node.elts)
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Role"
    )


def _is_role_read(node: ast.AST) -> bool:
    """A role from a loaded row (`person.role`) or a parameter (`viewer_role`); `Person.role`
    itself is a column in a query."""
    if isinstance(node, ast.Attribute) and node.attr == "role":
        return _model_column(node) is None
    return isinstance(node, ast.Name) and (node.id == "role" or node.id.endswith("_role"))


# Names a loaded person goes by in storage; a goal's or period's school is not about people.
PERSON_NAMES = {"person", "pupil", "teacher", "parent", "admin", "viewer", "actor", "child"}


def _is_persons_school(node: ast.AST) -> bool:
    """`person.school_id`, `viewer.person.school_id`: the school of a loaded person."""
    if not (isinstance(node, ast.Attribute) and node.attr == "school_id"):
        return False
    owner = node.value
    name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
    return name in PERSON_NAMES


class _Checker(ast.NodeVisitor):
    def __init__(self, module: str) -> None:
        self.module = module
        self.scope: list[str] = []
        self.in_assert = False
        self.found: list[Violation] = []

    def _add(self, node: ast.AST, what: str) -> None:
        function = ".".join(self.scope) or "<module>"
        self.found.append(Violation(self.module, function, getattr(node, "lineno", 0), what))

    def _scoped(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._scoped(node)

    def visit_Assert(self, node: ast.Assert) -> None:
        self.in_assert = True
        self.generic_visit(node)
        self.in_assert = False

    def visit_Compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        for left, right in itertools.pairwise(operands):
            for column, other in ((left, right), (right, left)):
                if _is_relationship_column(column) and _model_column(other) is None:
                    self._add(
                        node,
                        f"{ast.unparse(column)} tied to {ast.unparse(other)} "
                        "(a relationship check: use storage.policy)",
                    )
                if _is_role_read(column) and _is_role_member(other) and not self.in_assert:
                    self._add(
                        node,
                        f"{ast.unparse(column)} compared with {ast.unparse(other)} "
                        "(a role decision: use storage.policy)",
                    )
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        if (
            isinstance(function, ast.Attribute)
            and function.attr in COMPARING_METHODS
            and _is_relationship_column(function.value)
        ):
            self._add(
                node,
                f"{ast.unparse(function)}(...) (a relationship check: use storage.policy)",
            )
        self.generic_visit(node)

    def _decision(self, test: ast.AST) -> None:
        for part in ast.walk(test):
            if isinstance(part, ast.Compare):
                operands = [part.left, *part.comparators]
                if any(_is_persons_school(operand) for operand in operands):
                    self._add(
                        part,
                        f"{ast.unparse(part)} (a same-school decision: use storage.policy)",
                    )

    def visit_If(self, node: ast.If) -> None:
        self._decision(node.test)
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._decision(node.test)
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._decision(node.test)
        self.generic_visit(node)

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None:
            self._decision(node.value)
        self.generic_visit(node)


def relationship_checks(source: str, module: str) -> list[Violation]:
    """Every place in `source` that decides a relationship or a role by itself."""
    checker = _Checker(module)
    checker.visit(ast.parse(source))
    return checker.found


def checked_modules() -> Iterator[Path]:
    # Only the package's own modules: migrations/ is a folder and not looked into.
    for path in sorted(STORAGE.glob("*.py")):
        if path.name not in NOT_CHECKED:
            yield path


def all_violations() -> list[Violation]:
    return [
        violation
        for path in checked_modules()
        for violation in relationship_checks(path.read_text(encoding="utf-8"), path.name)
    ]


# --- the rule over storage/ -----------------------------------------------------------------


def test_no_storage_module_decides_who_sees_whom_by_itself():
    unexpected = [v for v in all_violations() if (v.module, v.function) not in ALLOWED]
    assert not unexpected, "Relationship checks outside storage/policy.py:\n" + "\n".join(
        str(violation) for violation in unexpected
    )


def test_every_exception_is_still_needed():
    present = {(path.name, "") for path in checked_modules()}
    used = {(violation.module, violation.function) for violation in all_violations()}
    stale = [
        key
        for key in ALLOWED
        # A module that is not there (yet) keeps its entry; one that no longer needs it does not.
        if (key[0], "") in present and key not in used
    ]
    assert not stale, f"ALLOWED entries no longer needed, remove them: {stale}"


def test_the_policy_module_is_there_and_the_check_sees_the_others():
    modules = {path.name for path in checked_modules()}
    assert (STORAGE / "policy.py").exists()
    assert {"observations.py", "evidence.py", "parents.py", "talks.py"} <= modules
    assert {"erasure.py", "subject_data.py", "pupil_lookup.py", "goal_sets.py"} <= modules
    assert "policy.py" not in modules and "roster.py" not in modules


# --- the checker itself -----------------------------------------------------------------------

PLANTED = """
async def is_parent_of(session, *, parent_id, pupil_id):
    return await session.scalar(
        select(Guardianship.pupil_id).where(
            Guardianship.parent_id == parent_id, Guardianship.pupil_id == pupil_id
        )
    )


def teacher_groups(teacher_id):
    return select(GroupMembership.group_id).where(GroupMembership.person_id == teacher_id)


def pupils_of(groups):
    return select(GroupMembership.person_id).where(GroupMembership.group_id.in_(groups))


async def is_teacher(session, person_id):
    person = await session.get(Person, person_id)
    return person is not None and person.role is Role.TEACHER


def notes(viewer_role):
    return [] if viewer_role in (Role.TEACHER, Role.ADMIN) else [private]


async def admin_may(session, school_id, pupil_id):
    pupil = await session.get(Person, pupil_id)
    if pupil.school_id != school_id:
        return False
    return True


def took_part(viewer_id):
    return exists().where(TalkParticipant.person_id == viewer_id)
"""


def test_the_checker_finds_every_planted_relationship_check():
    found = relationship_checks(PLANTED, "planted.py")
    by_function: dict[str, int] = {}
    for violation in found:
        by_function[violation.function] = by_function.get(violation.function, 0) + 1
    assert by_function == {
        "is_parent_of": 2,
        "teacher_groups": 1,
        "pupils_of": 1,
        "is_teacher": 1,
        "notes": 1,
        "admin_may": 1,
        "took_part": 1,
    }
    assert any("Guardianship.parent_id tied to parent_id" in v.what for v in found)
    assert any("person.role compared with Role.TEACHER" in v.what for v in found)
    assert any("same-school" in v.what for v in found)


ORDINARY = """
async def groups_with_names(session, pupil_ids):
    rows = await session.execute(
        select(Group.name, Person.display_name)
        .join(GroupMembership, GroupMembership.group_id == Group.id)
        .join(Person, Person.id == GroupMembership.person_id)
        .where(Person.id.in_(pupil_ids), Person.role == Role.PUPIL)
    )
    return rows.all()


async def context(session, pupil_id):
    pupil = await session.get(Person, pupil_id)
    assert pupil is not None and pupil.role is Role.PUPIL
    assessed = [a for a in pupil.assessments if a.by_role == ChosenBy.TEACHER]
    holidays = [h for h in all_holidays if h.school_id == pupil.school_id]
    return assessed, holidays
"""


def test_the_checker_lets_ordinary_joins_and_listings_pass():
    assert relationship_checks(ORDINARY, "ordinary.py") == []
