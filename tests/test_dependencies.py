"""Every package the code imports is declared, and every declared package is locked.

pyproject.toml declares what the project needs; requirements/lock.txt (runtime) and
requirements/dev-lock.txt (runtime and dev) pin it, and `./dev` installs only from the locks
(docs/development.md). A package that is merely pulled in by another one (aiohttp by aiogram,
say) works until that other one drops it: so what is imported must be declared, the
production packages' imports as runtime dependencies, those of tests, benches and scripts at
least as dev dependencies.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping, Set
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements" / "lock.txt"
DEV_LOCK = ROOT / "requirements" / "dev-lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["project"]


def runtime_requirements() -> list[Requirement]:
    return [Requirement(line) for line in project()["dependencies"]]  # type: ignore[attr-defined]


def dev_requirements() -> list[Requirement]:
    extras = project()["optional-dependencies"]
    return [Requirement(line) for line in extras["dev"]]  # type: ignore[index]


def production_packages() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["tool"]["importlinter"]["root_packages"])


def top_level_imports(folders: Iterable[str]) -> dict[str, set[str]]:
    """Top-level module name -> the files importing it, for every absolute import."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def third_party(imports: dict[str, set[str]], own: set[str]) -> dict[str, set[str]]:
    return {
        name: files
        for name, files in imports.items()
        if name not in own and name not in sys.stdlib_module_names
    }


def undeclared(
    imports: dict[str, set[str]], declared: Set[str], distributions: Mapping[str, list[str]]
) -> list[str]:
    """The imported modules whose distribution is not among the declared ones."""
    missing = []
    for name, files in sorted(imports.items()):
        providers = {canonicalize_name(dist) for dist in distributions.get(name, [name])}
        if not providers & declared:
            missing.append(f"{name} (from {', '.join(sorted(providers))}) in {sorted(files)}")
    return missing


def pins(lock: Path) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(lock.read_text())}


def unlocked(requirements: Iterable[Requirement], pinned: dict[str, str]) -> list[str]:
    """The requirements the lock does not pin, or pins at a version outside their bounds."""
    problems = []
    for requirement in requirements:
        version = pinned.get(canonicalize_name(requirement.name))
        if version is None:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement} is pinned at {version}")
    return problems


OWN = {*production_packages(), "tests", "bench", "scripts"}


def test_production_code_imports_only_runtime_dependencies() -> None:
    imports = third_party(top_level_imports(production_packages()), OWN)
    declared = {canonicalize_name(requirement.name) for requirement in runtime_requirements()}
    assert imports, "the scan found no third-party import at all"
    assert undeclared(imports, declared, packages_distributions()) == []


def test_tests_benches_and_scripts_import_only_declared_packages() -> None:
    imports = third_party(top_level_imports(["tests", "bench", "scripts"]), OWN)
    declared = {
        canonicalize_name(requirement.name)
        for requirement in [*runtime_requirements(), *dev_requirements()]
    }
    assert undeclared(imports, declared, packages_distributions()) == []


def test_an_import_pulled_in_only_by_another_package_is_reported() -> None:
    # aiohttp comes with aiogram; not declaring it must still be caught.
    imports = {"aiohttp": {"bot/runner.py"}, "PIL": {"media/pipeline.py"}}
    declared = {"aiogram", "pillow"}
    distributions = {"aiohttp": ["aiohttp"], "PIL": ["pillow"]}
    assert undeclared(imports, declared, distributions) == [
        "aiohttp (from aiohttp) in ['bot/runner.py']"
    ]


def test_the_runtime_lock_pins_every_runtime_dependency() -> None:
    assert unlocked(runtime_requirements(), pins(RUNTIME_LOCK)) == []


def test_the_dev_lock_pins_everything_at_the_runtime_lock_s_versions() -> None:
    dev_pins = pins(DEV_LOCK)
    assert unlocked([*runtime_requirements(), *dev_requirements()], dev_pins) == []
    differing = {
        name: (version, dev_pins.get(name))
        for name, version in pins(RUNTIME_LOCK).items()
        if dev_pins.get(name) != version
    }
    assert differing == {}


def test_a_lock_without_a_package_or_outside_its_bounds_is_reported() -> None:
    requirements = [Requirement("aiosqlite>=0.22"), Requirement("aiogram>=3.31,<4")]
    assert unlocked(requirements, {"aiosqlite": "0.21.0"}) == [
        "aiosqlite>=0.22 is pinned at 0.21.0",
        "aiogram<4,>=3.31 is not pinned",
    ]


def test_every_pin_carries_its_hashes() -> None:
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        text = lock.read_text()
        starts = [match.start() for match in PIN.finditer(text)]
        assert starts, lock
        ends = [*starts[1:], len(text)]
        entries = [text[start:end] for start, end in zip(starts, ends, strict=True)]
        assert [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry] == []
