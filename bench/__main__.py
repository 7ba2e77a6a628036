"""`python -m bench <name> [args]` runs bench/<name>.py's main(); without a name, lists them."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def available() -> list[str]:
    return sorted(
        module.name
        for module in pkgutil.iter_modules(bench.__path__)
        if not module.name.startswith("_")
    )


def run(argv: list[str]) -> int:
    names = available()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench <name> [args]\n\nbenches:")
        for name in names:
            summary = (importlib.import_module(f"bench.{name}").__doc__ or "").strip()
            print(f"  {name:12} {summary.splitlines()[0] if summary else ''}")
        return 0
    name = argv[0]
    if name not in names:
        print(f"unknown bench {name!r}; choose from: {', '.join(names)}", file=sys.stderr)
        return 2
    # The bench parses its own arguments, as if it had been started on its own.
    sys.argv = [f"python -m bench {name}", *argv[1:]]
    result = importlib.import_module(f"bench.{name}").main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
