"""Counting what an import created, updated or left as it was."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChangeCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass
class ChangeTally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def count(self, *, created: bool = False, updated: bool = False) -> None:
        if created:
            self.created += 1
        elif updated:
            self.updated += 1
        else:
            self.unchanged += 1

    def freeze(self) -> ChangeCounts:
        return ChangeCounts(self.created, self.updated, self.unchanged)
