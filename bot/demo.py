"""`portfolio-bot demo`: the whole bot in a browser, without a Telegram account.

One process runs three things: the demo school in its own SQLite database (`demo.db` next to
the configured database, `data/demo.db` by default, so demo data never mixes with a real
school's), the Telegram sandbox, and the real bot polling it. The sandbox serves a chat page;
its "who are you?" picker lists the demo school's people, each played by a sandbox user.

Every demo person's Telegram account is linked the way a real person links theirs: their
sandbox user sends `/start CODE` to the bot, so onboarding runs for real and each chat opens
with the bot's welcome and the role's menu. With `--keep` the database stays; the sandbox
keeps nothing between runs (it lives in memory), so the people come back as sandbox users with
the Telegram ids the database remembers, and each sends `/start` once to get their menu again.
The chat history of an earlier run is gone then; the portfolio data is not.

The demo clock (`services.clock.Clock`, held by the app) can be moved from the page. The bot's
dialogues take "today" from it; scheduled prompts and reminders will, once they exist.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.app import App, build_app
from bot.runner import SANDBOX_TOKEN, poll
from config.settings import DEFAULT_DATA_DIR, Settings, invite_secret_of, with_invite_secret
from sandbox import SandboxClient, TelegramSandbox
from sandbox.page import PageHooks
from services.clock import Clock
from services.demo_school import seed_demo_school
from services.errors import UserError
from storage import migrate
from storage.db import create_engine, create_sessionmaker
from storage.demo_school import (
    DemoPerson,
    demo_counts,
    demo_people,
    fresh_demo_codes,
    last_update_id,
)
from storage.invites import rewrap_plain_hashes

log = logging.getLogger(__name__)

DEMO_DATABASE = "demo.db"
DEMO_MEDIA = "demo-media"
# Linking is 18 /start round trips; a few at a time keeps SQLite's single writer busy
# without letting one slow reply hold up everyone.
LINK_CONCURRENCY = 6
REPLY_TIMEOUT = 20.0
CLOCK_NOTES = [
    "Moving the clock moves the bot's 'today': reflections, the week plan and goals count "
    "from the new date, and the prompts due at the new time (the daily reflection at 14:30, "
    "the Monday week plan, the teacher's morning list) arrive at once.",
    "De klok verzetten verzet 'vandaag' voor de bot: reflecties, het weekplan en de doelen "
    "rekenen met de nieuwe datum, en de vragen die dan aan de beurt zijn (de reflectie om "
    "14:30, het weekplan op maandag, het lijstje van de leerkracht) komen meteen.",
]


def demo_paths(settings: Settings) -> tuple[Path, Path]:
    """The demo's database file and media folder: next to the configured SQLite database."""
    folder = DEFAULT_DATA_DIR
    configured: Path | None = None
    url = settings.database_url
    if url.startswith("sqlite") and ":///" in url:
        raw = url.split(":///", 1)[1]
        if raw and raw != ":memory:":
            configured = Path(raw)
            folder = configured.parent
    database = folder / DEMO_DATABASE
    if configured is not None and configured.resolve() == database.resolve():
        # A fresh demo deletes its database: never the one the bot is configured to use.
        raise UserError(
            f"DATABASE_URL points at {database}, the file the demo starts afresh; "
            "give the real database another name"
        )
    return database, folder / DEMO_MEDIA


def _wipe(database: Path, media: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    shutil.rmtree(media, ignore_errors=True)


def _split_name(name: str) -> tuple[str, str | None]:
    first, _, last = name.partition(" ")
    return first, last or None


class DemoStoppedError(Exception):
    """The demo was stopped (Ctrl+C) while it was still starting."""


@dataclass(frozen=True)
class DemoStatus:
    url: str
    database: Path
    fresh: bool
    counts: dict[str, int]


class Demo:
    """The running demo: `await start()`, then `await serve()` until stopped, then `stop()`."""

    def __init__(
        self,
        settings: Settings,
        *,
        keep: bool,
        port: int,
        host: str = "127.0.0.1",
        handle_signals: bool = True,
    ) -> None:
        self.keep = keep
        self.port = port
        self.host = host
        self.handle_signals = handle_signals
        self.database, self.media = demo_paths(settings)
        # The demo never talks to Telegram: a token in the environment is not for it. Its
        # invite secret is INVITE_SECRET, or the one kept next to its database.
        self.settings = with_invite_secret(
            settings.model_copy(
                update={
                    "bot_token": None,
                    "database_url": f"sqlite+aiosqlite:///{self.database}",
                    "media_dir": self.media,
                    "redis_url": None,
                }
            )
        )
        self.sandbox = TelegramSandbox()
        self.app: App | None = None
        self.school_id: int | None = None
        self._poll_task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"{self.sandbox.base_url}/chat/"

    async def start(self) -> DemoStatus:
        fresh = not self.keep or not self.database.exists()
        if fresh:
            _wipe(self.database, self.media)
        await migrate.upgrade(self.settings.database_url)
        codes, counts, school_days = await self._seed()
        await self.sandbox.start(self.host, self.port)
        settings = self.settings.model_copy(update={"telegram_api_url": self.sandbox.base_url})
        clock = Clock(settings.timezone, school_days=school_days)
        self.app = build_app(settings, token=SANDBOX_TOKEN, clock=clock)
        self.sandbox.page.configure(
            PageHooks(
                token=SANDBOX_TOKEN,
                people=self._people_for_page,
                clock=self._clock_for_page,
                title="Leerling Portfolio – demo",
                notes=CLOCK_NOTES,
            )
        )
        await self._continue_update_ids(self.app)
        self._poll_task = asyncio.create_task(poll(self.app, handle_signals=self.handle_signals))
        linking = asyncio.create_task(self._link_everyone(self.app, codes))
        await asyncio.wait({linking, self._poll_task}, return_when=asyncio.FIRST_COMPLETED)
        if not linking.done():
            # Ctrl+C while people were joining: waiting for their replies would only hang.
            linking.cancel()
            await asyncio.gather(linking, return_exceptions=True)
            await self._poll_task  # a polling error, if that is why it stopped
            raise DemoStoppedError("stopped before everyone had joined")
        await linking
        # After linking, so the prompts find everyone; the first plan runs at once.
        self.app.reminders.start()
        return DemoStatus(self.url, self.database, fresh, counts)

    async def serve(self) -> None:
        """Until polling stops (Ctrl+C or SIGTERM when signals are handled)."""
        assert self._poll_task is not None
        await self._poll_task

    async def stop(self) -> None:
        if self.app is not None:
            if self._poll_task is not None and not self._poll_task.done():
                # Also before polling has started: it then ends as soon as it would start.
                await self.app.stop_polling()
            if self._poll_task is not None:
                await asyncio.gather(self._poll_task, return_exceptions=True)
            await self.app.close()
            self.app = None
        await self.sandbox.stop()

    async def _seed(self) -> tuple[dict[str, str], dict[str, int], list[int]]:
        engine = create_engine(self.settings.database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                today = Clock(self.settings.timezone).today()
                # A demo kept from a version before the invite secret: its codes get keyed.
                await rewrap_plain_hashes(session, secret=invite_secret_of(self.settings))
                seed = await seed_demo_school(
                    session,
                    today=today,
                    invite_secret=invite_secret_of(self.settings),
                    timezone=self.settings.timezone,
                    invite_valid_for=timedelta(days=self.settings.invite_valid_days),
                    media_dir=Path(self.settings.media_dir),
                )
                self.school_id = seed.school_id
                counts = await demo_counts(session, school_id=seed.school_id)
                return seed.codes, counts, list(seed.school_days)
        finally:
            await engine.dispose()

    async def _continue_update_ids(self, app: App) -> None:
        async with app.session_factory() as session:
            newest = await last_update_id(session, bot_id=app.bot.id)
        self.sandbox.resume_update_ids(SANDBOX_TOKEN, newest)

    async def _people(self, app: App) -> list[DemoPerson]:
        assert self.school_id is not None
        async with app.session_factory() as session:
            return await demo_people(session, school_id=self.school_id)

    async def _link_everyone(self, app: App, seeded_codes: dict[str, str]) -> None:
        """Bring every demo person into the sandbox as a Telegram user who has joined the bot."""
        people = await self._people(app)
        unlinked = [
            person
            for person in people
            if person.telegram_user_id is None and person.external_id not in seeded_codes
        ]
        codes = dict(seeded_codes)
        if unlinked:
            # A demo stopped half-way through linking: the codes it had are only hashes now.
            async with app.session_factory() as session, session.begin():
                fresh = await fresh_demo_codes(
                    session,
                    person_ids=[person.person_id for person in unlinked],
                    invite_secret=invite_secret_of(app.settings),
                )
            codes.update({person.external_id: fresh[person.person_id] for person in unlinked})
        limit = asyncio.Semaphore(LINK_CONCURRENCY)
        async with SandboxClient(self.sandbox.base_url, SANDBOX_TOKEN) as client:

            async def join(person: DemoPerson) -> None:
                async with limit:
                    first, last = _split_name(person.name)
                    user = await client.create_user(
                        first,
                        last,
                        language_code=person.locale or "nl",
                        user_id=person.telegram_user_id,
                    )
                    # Someone linked before only needs their menu back.
                    linked = person.telegram_user_id is not None
                    code = None if linked else codes.get(person.external_id)
                    await user.send_text(f"/start {code}" if code else "/start")
                    await user.wait_for_reply(timeout=REPLY_TIMEOUT)

            await asyncio.gather(*(join(person) for person in people))
        missing = [person.name for person in await self._people(app) if not person.telegram_user_id]
        if missing:
            raise UserError(f"the demo could not link {', '.join(missing)} to the bot")

    async def _people_for_page(self) -> list[dict[str, Any]]:
        assert self.app is not None
        return [
            {
                "user_id": person.telegram_user_id,
                "name": person.name,
                "role": person.role.value,
                "detail": person.detail,
                "key": person.external_id,
            }
            for person in await self._people(self.app)
            if person.telegram_user_id is not None
        ]

    async def _clock_for_page(self, move: str | None) -> dict[str, Any]:
        assert self.app is not None
        if move is not None:
            self.app.clock.move(move)  # ClockError is a ValueError: the page shows its text
            # Whatever became due at the new time arrives now, not at the next job run.
            await self.app.reminders.tick()
        return self.app.clock.view().as_dict()


async def run_demo(settings: Settings, *, keep: bool, port: int) -> None:
    """Seed (or continue) the demo, serve the sandbox and its page, run the bot; print the URL."""
    # Every control-API call of the linking would log a line; the demo's output is the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo = Demo(settings, keep=keep, port=port)
    try:
        try:
            status = await demo.start()
        except DemoStoppedError:
            return
        counts = status.counts
        state = "a fresh demo school" if status.fresh else "the demo school as you left it"
        print(
            f"Demo: {state} in {status.database} ({counts['pupils']} pupils, "
            f"{counts['teachers']} teachers, {counts['parents']} parents), the Telegram sandbox "
            "and the bot.",
            flush=True,
        )
        print(f"Open {status.url} in a browser. Stop with Ctrl+C.", flush=True)
        await demo.serve()
    finally:
        await demo.stop()
