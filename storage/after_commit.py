"""Work that may happen only once a transaction has committed.

Removing the file of a deleted `media_file` row is the example: done before the commit, a
rollback would leave a row whose file is gone. `run_after_commit(session, action)` calls
`action` right after the session's outermost transaction commits. Each action remembers the
transaction it was scheduled in, so a rolled-back savepoint forgets only its own actions; an
outermost rollback, or a session closed without a commit, forgets them all. A crash between
the commit and the action loses the action: callers must be able to live with that (the orphan
sweep of `media.store` removes files left behind that way).

Actions run inside `commit()`, on its thread (the event loop's), so they must be quick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

__all__ = ["run_after_commit"]

logger = logging.getLogger(__name__)


def run_after_commit(session: AsyncSession, action: Callable[[], object]) -> None:
    """Call `action` once the session's current outermost transaction commits, and only then."""
    sync_session = session.sync_session
    _PendingActions.of(sync_session).add(action, sync_session)


@dataclass
class _PendingActions:
    entries: list[tuple[Callable[[], object], SessionTransaction | None]] = field(
        default_factory=list
    )

    _KEY = "storage.after_commit.pending"

    @classmethod
    def of(cls, session: Session) -> _PendingActions:
        pending = session.info.get(cls._KEY)
        if pending is None:
            pending = session.info[cls._KEY] = cls()
            event.listen(session, "after_commit", pending._after_commit)
            event.listen(session, "after_soft_rollback", pending._after_soft_rollback)
            event.listen(session, "after_transaction_end", pending._after_transaction_end)
        return pending

    def add(self, action: Callable[[], object], session: Session) -> None:
        transaction = session.get_nested_transaction() or session.get_transaction()
        self.entries.append((action, transaction))

    def _after_commit(self, session: Session) -> None:
        if session.get_nested_transaction() is not None:
            return  # a savepoint was released: wait for the outermost commit
        entries, self.entries = self.entries, []
        for action, _ in entries:
            try:
                action()
            except Exception:
                # The commit has happened; a failing action must not make it look failed, nor
                # keep the other actions from running.
                logger.exception("an action after a commit failed")

    def _after_soft_rollback(self, session: Session, previous: SessionTransaction) -> None:
        self.entries = [entry for entry in self.entries if previous not in _chain(entry[1])]

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            self.entries = []  # the outermost transaction ended without after_commit's work


def _chain(transaction: SessionTransaction | None) -> Iterator[SessionTransaction]:
    while transaction is not None:
        yield transaction
        transaction = transaction.parent
