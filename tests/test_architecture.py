"""The layers of docs/architecture.md hold: every import points down, checked by import-linter.

The contracts live in pyproject.toml ([tool.importlinter]). The first test runs them on the
real tree; the others run the very same contracts on a small planted tree, so a contract that
can no longer fail (a typo in a layer name, a contract dropped) is noticed too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def run_contracts(project: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(project)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def contracts() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)["tool"]["importlinter"]


def test_the_real_tree_keeps_every_contract() -> None:
    result = run_contracts(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def planted_tree(tmp_path: Path, plants: dict[str, str]) -> Path:
    """Every root package of the contracts, empty but for the planted modules."""
    config = contracts()
    for package in config["root_packages"]:  # type: ignore[attr-defined]
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    # The imports a contract lists as allowed exceptions must exist, or import-linter objects.
    plants = {"storage.fsm": "import aiogram\n", "language.i18n": "import aiogram\n", **plants}
    for module, source in plants.items():
        path = tmp_path / (module.replace(".", "/") + ".py")
        path.write_text(source)
    lines = ["[tool.importlinter]"]
    toml = (ROOT / "pyproject.toml").read_text()
    # The contracts' own text, copied as written: what is checked here is what the tree uses.
    section = toml[toml.index("[tool.importlinter]") + len("[tool.importlinter]") :]
    (tmp_path / "pyproject.toml").write_text("\n".join(lines) + section)
    return tmp_path


def test_a_clean_planted_tree_passes(tmp_path: Path) -> None:
    project = planted_tree(
        tmp_path,
        {
            "bot.app": "import handlers.start\n",
            "handlers.start": "import conversations.reflection\n",
            "conversations.reflection": "import chat_ui.keyboards\nimport scheduler.composers\n",
            "scheduler.composers": "import chat_ui.keyboards\n",
            "chat_ui.keyboards": "import language.i18n\nimport storage.models\n",
            "services.export": "import media.store\nimport language.i18n\n",
            "media.store": "import storage.models\n",
            "language.i18n": "import aiogram\nimport config.settings\n",
            "storage.models": "import config.settings\n",
            "storage.fsm": "import aiogram\n",
            "config.settings": "",
            "bot.demo": "import sandbox.server\n",
            "sandbox.server": "",
        },
    )
    result = run_contracts(project)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("plants", "broken"),
    [
        # A conversation reaching up for a handler's filter (as 13 modules once did).
        ({"conversations.goals": "import handlers.filters\n", "handlers.filters": ""}, "layers"),
        # The scheduler and the composition root importing each other.
        ({"scheduler.dispatcher": "import bot.i18n\n", "bot.i18n": ""}, "layers"),
        # Storage reaching for file handling above it.
        ({"storage.evidence": "import media.store\n", "media.store": ""}, "layers"),
        # Two things on the same floor that must stay apart.
        ({"media.store": "import language.i18n\n"}, "layers"),
        ({"handlers.start": "import sandbox.server\n", "sandbox.server": ""}, "sandbox"),
        ({"sandbox.server": "import storage.models\n", "storage.models": ""}, "sandbox-root"),
        ({"storage.reminders": "import aiogram\n"}, "no-telegram-below-chat"),
        ({"services.export": "from aiogram import Bot\n"}, "no-telegram-below-chat"),
        # Only language.i18n may use aiogram's gettext wrapper, not the rest of language/.
        ({"language.labels": "import aiogram.types\n"}, "no-telegram-below-chat"),
    ],
)
def test_a_planted_violation_breaks_its_contract(
    tmp_path: Path, plants: dict[str, str], broken: str
) -> None:
    result = run_contracts(planted_tree(tmp_path, plants))
    assert result.returncode != 0
    # import-linter wraps long contract names over lines: compare with whitespace folded.
    report = " ".join(result.stdout.split())
    names = {contract["id"]: contract["name"] for contract in contracts()["contracts"]}  # type: ignore[index]
    assert f"{names[broken]} BROKEN" in report or f"{names[broken]}BROKEN" in report, result.stdout
