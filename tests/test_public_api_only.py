"""Other projects are used through their public API only (docs/architecture.md).

A private name of a library (a leading underscore: aiogram's, SQLAlchemy's, aiosqlite's,
asyncpg's, Pillow's, APScheduler's, anyone's) may change or vanish in any release without
notice, and code leaning on it breaks on an upgrade that the library calls compatible. A
static check over every production package fails when the code

- imports a private name from a library, or from a private module of one
  (`from aiogram.x import _y`, `import aiosqlite._z`, `from sqlalchemy._x import y`);
- reads or writes a private attribute of anything that is not the project's own: `x._name`
  where `x` is a library's module (or a name imported from one), or where `_name` is defined
  nowhere in the project (no function, class, module-level name or attribute of ours carries
  it); `getattr`/`hasattr`/`setattr`/`delattr` with such a name count too;
- passes a private keyword argument (`_name=...`) that no function of the project takes;
- subclasses a library's class (directly, or through a class of ours) and defines a private
  method in it, which would override the library's or be overridden by its next release;
  or assigns a private attribute on `self` that the library's class uses itself; or reads a
  private attribute on `self` that the class itself does not define (so: the library's).

Dunder names (`__init__`, `__api_method__`) are public by convention and pass. The standard
library is checked like any library. A name that must stay an exception goes in `ALLOWED`
with its reason; an entry no longer needed fails the test too.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "bot",
    "handlers",
    "conversations",
    "scheduler",
    "chat_ui",
    "services",
    "language",
    "media",
    "storage",
    "config",
    "sandbox",
)
# Everything else imported is another project's (a dependency or the standard library).
PROJECT_ROOTS = frozenset(PACKAGES) | {"tests", "bench"}

# (path, private name) -> why it may be used there. Keep it short: fix the code instead.
ALLOWED: dict[tuple[str, str], str] = {}

ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "hasattr", "setattr", "delattr"})
_PRIVATE_IN_SOURCE = re.compile(r"\b(_[A-Za-z]\w*)")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_outside(origin: str) -> bool:
    return origin.split(".")[0] not in PROJECT_ROOTS


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    name: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


@dataclass
class Module:
    """One parsed source file of the project."""

    name: str  # dotted: storage.db
    path: str  # as reported: storage/db.py
    tree: ast.Module
    is_package: bool = False

    @classmethod
    def parse(cls, name: str, path: str, source: str, *, is_package: bool = False) -> Module:
        return cls(name, path, ast.parse(source, filename=path), is_package)

    def resolve_relative(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.name.split(".")
        base = parts[: len(parts) - node.level + (1 if self.is_package else 0)]
        return ".".join([*base, node.module] if node.module else base)

    @functools.cached_property
    def imports(self) -> dict[str, str]:
        """Local name -> what it was imported as (dotted), for every import in the module."""
        bound: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    bound[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom):
                source = self.resolve_relative(node)
                for alias in node.names:
                    bound[alias.asname or alias.name] = f"{source}.{alias.name}"
        return bound

    @functools.cached_property
    def classes(self) -> dict[str, ast.ClassDef]:
        return {node.name: node for node in self.tree.body if isinstance(node, ast.ClassDef)}


class Project:
    """The project's modules, and the names its own code defines: those it may use with an
    underscore wherever it likes."""

    def __init__(self, modules: Iterable[Module]) -> None:
        self.modules = {module.name: module for module in modules}
        self.names: set[str] = set()
        self.parameters: set[str] = set()
        for module in self.modules.values():
            for node in ast.walk(module.tree):
                self._collect(node)

    def _collect(self, node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.names.add(node.name)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
            every += [argument for argument in (arguments.vararg, arguments.kwarg) if argument]
            self.parameters.update(argument.arg for argument in every)
        elif isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Store):
            self.names.add(node.id if isinstance(node, ast.Name) else node.attr)
        elif isinstance(node, ast.alias):
            self.names.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__slots__" for target in node.targets
        ):
            # __slots__ = ("_a", "_b") defines attributes by their names as strings
            for item in ast.walk(node.value):
                if isinstance(item, ast.Constant) and isinstance(item.value, str):
                    self.names.add(item.value)

    def class_named(self, dotted: str) -> tuple[Module, ast.ClassDef] | None:
        module_name, _, class_name = dotted.rpartition(".")
        module = self.modules.get(module_name)
        if module is None or class_name not in module.classes:
            return None
        return module, module.classes[class_name]


def chain_root(node: ast.expr) -> ast.expr:
    """The expression an attribute chain starts from: `a` of `a.b(c)[d].e`."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node


def is_super_call(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


def on_self(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"}


def class_defines(node: ast.ClassDef) -> set[str]:
    """Names the class itself defines: in its body, or assigned on `self`/`cls` in it."""
    defined: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(item.name)
        elif isinstance(item, ast.Name) and isinstance(item.ctx, ast.Store):
            defined.add(item.id)
        elif isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store) and on_self(item):
            defined.add(item.attr)
    return defined


@functools.cache
def private_names_of_library_class(origin: str) -> frozenset[str] | None:
    """Every private name in the source of a library class and its library ancestors, or
    None when the class cannot be imported or read (then every private name counts)."""
    module_name, _, attribute = origin.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError):
        return None
    if not inspect.isclass(found):
        return None
    names: set[str] = set()
    for ancestor in found.__mro__:
        if ancestor is object or not is_outside(ancestor.__module__):
            continue
        try:
            source = inspect.getsource(ancestor)
        except (OSError, TypeError):
            names.update(name for name in vars(ancestor) if is_private(name))
            continue
        names.update(name for name in _PRIVATE_IN_SOURCE.findall(source) if is_private(name))
    return frozenset(names)


@dataclass
class Scope:
    names: dict[str, str]  # local name -> the library object it holds (dotted origin)
    library_class: tuple[ast.ClassDef, str] | None  # the class being defined, if a library's


class ModuleScan(ast.NodeVisitor):
    """One module's uses of other projects' private names."""

    def __init__(self, module: Module, project: Project) -> None:
        self.module = module
        self.project = project
        self.findings: list[Finding] = []
        library_imports = {
            name: origin for name, origin in module.imports.items() if is_outside(origin)
        }
        self.scopes = [Scope(library_imports, None)]

    def run(self) -> list[Finding]:
        self.visit(self.module.tree)
        return self.findings

    def flag(self, node: ast.AST, name: str, what: str) -> None:
        if (self.module.path, name) not in ALLOWED:
            self.findings.append(Finding(self.module.path, getattr(node, "lineno", 0), name, what))

    # ------------------------------------------------------------------- what holds what
    def library_origin(self, node: ast.expr | None) -> str | None:
        """The library object an expression starts from, if any: `aiosqlite` for
        `aiosqlite.connect(...)`, `aiogram.Router` for `router` after `router = Router()`."""
        if node is None:
            return None
        root = chain_root(node)
        if not isinstance(root, ast.Name):
            return None
        for scope in reversed(self.scopes):
            if root.id in scope.names:
                return scope.names[root.id]
        return None

    def bind(self, target: ast.expr, origin: str | None) -> None:
        if not isinstance(target, ast.Name):
            return
        if origin is None:
            self.scopes[-1].names.pop(target.id, None)
        else:
            self.scopes[-1].names[target.id] = origin

    def library_base(self, node: ast.ClassDef, module: Module, seen: frozenset[str]) -> str | None:
        """The library class this class derives from, directly or through ours, if any."""
        for base in node.bases:
            root = chain_root(base)
            if not isinstance(root, ast.Name):
                continue
            origin = module.imports.get(root.id)
            if origin is None and root.id in module.classes:
                origin = f"{module.name}.{root.id}"
            if origin is None:
                continue
            if isinstance(base, ast.Attribute):  # module.Class
                origin = f"{origin}.{ast.unparse(base).split('.', 1)[1]}"
            if is_outside(origin):
                return origin
            ours = self.project.class_named(origin)
            if ours is not None and origin not in seen:
                found = self.library_base(ours[1], ours[0], seen | {origin})
                if found is not None:
                    return found
        return None

    # ------------------------------------------------------------------------- imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if is_outside(alias.name) and any(map(is_private, alias.name.split("."))):
                self.flag(node, alias.name, f"imports the private module {alias.name}")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        source = self.module.resolve_relative(node)
        if not is_outside(source):
            return
        if any(map(is_private, source.split("."))):
            self.flag(node, source, f"imports from the private module {source}")
        for alias in node.names:
            if is_private(alias.name):
                self.flag(node, alias.name, f"imports the private name {alias.name} of {source}")

    # ------------------------------------------------------------------------- scopes
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for item in [*node.bases, *node.keywords, *node.decorator_list]:
            self.visit(item)
        library = self.library_base(node, self.module, frozenset())
        if library is not None:
            self.check_library_subclass(node, library)
        self.scopes.append(Scope({}, (node, library) if library is not None else None))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    def check_library_subclass(self, node: ast.ClassDef, library: str) -> None:
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and is_private(
                statement.name
            ):
                what = f"{node.name} subclasses {library} and defines the private method"
                self.flag(statement, statement.name, f"{what} {statement.name}")
        # Attributes set on self anywhere in the class, and names set in its body.
        stored: list[tuple[ast.expr, str]] = [
            (item, item.attr)
            for item in ast.walk(node)
            if isinstance(item, ast.Attribute) and isinstance(item.ctx, ast.Store) and on_self(item)
        ]
        for statement in node.body:
            targets = (
                statement.targets
                if isinstance(statement, ast.Assign)
                else [statement.target]
                if isinstance(statement, ast.AnnAssign)
                else []
            )
            stored += [(target, target.id) for target in targets if isinstance(target, ast.Name)]
        library_names = private_names_of_library_class(library)
        for item, name in stored:
            if is_private(name) and (library_names is None or name in library_names):
                self.flag(item, name, f"{node.name} subclasses {library} and sets its {name}")

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for item in [*node.decorator_list, node.args, node.returns]:
            if item is not None:
                self.visit(item)
        outer = self.scopes[-1]
        # A method's `self` belongs to its class; a nested function sees its class's too.
        scope = Scope({}, outer.library_class)
        self.scopes.append(scope)
        arguments = node.args
        for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
            self.bind(ast.Name(argument.arg), self.library_origin(argument.annotation))
        for statement in node.body:
            self.visit(statement)
        self.scopes.pop()

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        for target in node.targets:
            self.bind(target, self.library_origin(node.value))

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self.generic_visit(node)
        self.bind(
            node.target, self.library_origin(node.annotation) or self.library_origin(node.value)
        )

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        self.generic_visit(node)
        for item in node.items:
            if item.optional_vars is not None:
                self.bind(item.optional_vars, self.library_origin(item.context_expr))

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self.visit_With(node)

    # ---------------------------------------------------------------------- attributes
    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)
        name = node.attr
        if not is_private(name):
            return
        library_class = self.scopes[-1].library_class
        if is_super_call(node.value):
            if library_class is not None:
                self.flag(node, name, f"uses {name} of {library_class[1]} through super()")
            return
        if on_self(node):
            # Ours, unless the class derives from a library's and does not define it itself.
            if library_class is not None and name not in class_defines(library_class[0]):
                self.flag(node, name, f"uses {name} of {library_class[1]} on self")
            return
        origin = self.library_origin(node.value)
        if origin is not None:
            self.flag(node, name, f"uses {name}, a private name of {origin}")
        elif name not in self.project.names:
            self.flag(
                node,
                name,
                f"uses {name} of {ast.unparse(node.value)}, a private name the project does "
                "not define",
            )

    # --------------------------------------------------------------------------- calls
    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)
        for keyword in node.keywords:
            name = keyword.arg
            if name and is_private(name) and name not in self.project.parameters:
                callee = ast.unparse(node.func)
                self.flag(keyword, name, f"passes the private argument {name} to {callee}")
        if (
            isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            name = node.args[1].value
            if self.library_origin(node.args[0]) is not None or name not in self.project.names:
                self.flag(node, name, f"{node.func.id}() with {name}, a private name")


def production_modules() -> Iterator[Module]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            parts = list(relative.with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            yield Module.parse(
                ".".join(parts[:-1] if is_package else parts),
                relative.as_posix(),
                path.read_text(),
                is_package=is_package,
            )


def scan(project: Project) -> list[Finding]:
    findings = [
        finding
        for module in project.modules.values()
        for finding in ModuleScan(module, project).run()
    ]
    return sorted(set(findings), key=lambda finding: (finding.path, finding.line, finding.name))


@pytest.fixture(scope="module")
def the_project() -> Project:
    return Project(production_modules())


def test_the_production_code_uses_other_projects_public_names_only(the_project: Project) -> None:
    findings = scan(the_project)
    assert not findings, "private names of other projects:\n" + "\n".join(map(str, findings))


def test_every_allowed_exception_is_still_needed(the_project: Project) -> None:
    saved = dict(ALLOWED)
    ALLOWED.clear()
    try:
        used = {(finding.path, finding.name) for finding in scan(the_project)}
    finally:
        ALLOWED.update(saved)
    assert set(saved) <= used, f"no longer needed: {sorted(set(saved) - used)}"


# ------------------------------------------------------------------ planted violations
#
# The check must be able to fail: each snippet below is a project of one planted module that
# breaks the rule once (or, further down, keeps it).


def planted(source: str) -> list[Finding]:
    module = Module.parse("storage.planted", "storage/planted.py", source)
    return ModuleScan(module, Project([module])).run()


def names(findings: list[Finding]) -> list[str]:
    return [finding.name for finding in findings]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(
            "from aiogram.dispatcher.router import _private\n", ["_private"], id="from-import"
        ),
        pytest.param("import aiosqlite._internal\n", ["aiosqlite._internal"], id="private-module"),
        pytest.param(
            "from sqlalchemy.util._collections import immutabledict\n",
            ["sqlalchemy.util._collections"],
            id="from-private-module",
        ),
        pytest.param(
            "import aiosqlite\n\ndef run(connection: aiosqlite.Connection):\n"
            "    return connection._conn.in_transaction\n",
            ["_conn"],
            id="library-object-attribute",
        ),
        pytest.param(
            "import aiosqlite\n\nhandler = aiosqlite._something\n",
            ["_something"],
            id="library-module-attribute",
        ),
        pytest.param(
            "from aiogram import Router\n\nROUTER = Router()\n"
            "async def feed(event, data):\n"
            "    return await ROUTER._propagate_event('message', event, **data)\n",
            ["_propagate_event"],
            id="imported-library-object",
        ),
        pytest.param(
            "def run(dispatcher):\n    return dispatcher.message._handler\n",
            ["_handler"],
            id="anything-undefined-in-project",
        ),
        pytest.param(
            "def run(polling):\n    return polling._polling()\n",
            ["_polling"],
            id="method-undefined-in-project",
        ),
        pytest.param(
            "def run(connection):\n    return getattr(connection, '_conn_xyz', None)\n",
            ["_conn_xyz"],
            id="getattr-string",
        ),
        pytest.param(
            "def run(session, value, bot):\n"
            "    return session.prepare_value(value, bot=bot, _dumps_json=False)\n",
            ["_dumps_json"],
            id="private-keyword",
        ),
        pytest.param(
            "from aiogram.webhook.aiohttp_server import SimpleRequestHandler\n\n"
            "class Replies(SimpleRequestHandler):\n"
            "    def _build_response_writer(self, bot, result):\n"
            "        return super()._build_response_writer(bot, result)\n",
            ["_build_response_writer", "_build_response_writer"],
            id="overrides-private-method",
        ),
        pytest.param(
            "from aiogram import BaseMiddleware\n\n"
            "class Mine(BaseMiddleware):\n"
            "    def _helper(self):\n        return 1\n",
            ["_helper"],
            id="new-private-method-in-library-subclass",
        ),
        pytest.param(
            "from aiosqlite import Connection\n\n"
            "class Mine(Connection):\n"
            "    def cursor(self):\n        return self._conn.cursor()\n",
            ["_conn"],
            id="reads-library-attribute-on-self",
        ),
        pytest.param(
            "from aiosqlite import Connection\n\n"
            "class Mine(Connection):\n"
            "    def __init__(self):\n        self._tx = None\n",
            ["_tx"],
            id="clobbers-library-attribute",
        ),
        pytest.param(
            "from aiosqlite import Connection\n\n"
            "class Middle(Connection):\n    pass\n\n"
            "class Mine(Middle):\n"
            "    def _in_transaction(self):\n        return False\n",
            ["_in_transaction"],
            id="through-a-class-of-ours",
        ),
    ],
)
def test_a_planted_violation_is_found(source: str, expected: list[str]) -> None:
    assert sorted(names(planted(source))) == sorted(expected)


def test_the_old_in_loop_sqlite_cursor_would_be_found() -> None:
    """The shape of what storage/db.py once did to run statements in the event loop."""
    source = (
        "import aiosqlite\n"
        "from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection\n\n"
        "class InlineConnection(AsyncAdapt_aiosqlite_connection):\n"
        "    def commit(self):\n"
        "        self._connection._conn.commit()\n\n"
        "def possible():\n"
        "    return callable(getattr(aiosqlite.Connection, '_execute', None))\n"
    )
    found = names(planted(source))
    assert "_conn" in found and "_execute" in found and "_connection" in found


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("from language.i18n import _\n\ntext = _('Hallo')\n", id="our-gettext"),
        pytest.param(
            "class Counter:\n    def __init__(self):\n        self._count = 0\n"
            "    def bump(self, other: 'Counter'):\n        other._count += 1\n",
            id="our-own-private-attribute",
        ),
        pytest.param(
            "from aiogram import BaseMiddleware\n\n"
            "class Mine(BaseMiddleware):\n"
            "    def __init__(self, lock):\n        self._own_lock_xyz = lock\n"
            "    async def __call__(self, handler, event, data):\n"
            "        async with self._own_lock_xyz:\n"
            "            return await handler(event, data)\n",
            id="library-subclass-own-attribute",
        ),
        pytest.param("from aiogram.types import Message\n\nname = Message.__name__\n", id="dunder"),
    ],
)
def test_public_use_passes(source: str) -> None:
    assert planted(source) == []
