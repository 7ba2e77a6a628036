"""The bot under load, in a process of its own: `python -m bench._botproc --kind portfolio ...`.

A process of its own, so that its peak RSS and CPU time are the bot's alone (the sandbox and
the scripted pupils live in the bench's process). It counts what the bench cannot see from
outside: updates handled, SQL statements per update (SQLAlchemy's `before_cursor_execute` on
the engine, attributed to the update being handled through a context variable, which
SQLAlchemy's greenlets carry along), and the handling time per step.

Talks to the bench over stdin/stdout, one line each: it prints `READY` once it polls or
serves its webhook; `reset` zeroes the counters (answers `OK`), `report` prints them as one
JSON line; end of stdin stops the bot cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import functools
import inspect
import json
import os
import resource
import secrets
import socket
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import GetUpdates
from aiogram.types import CallbackQuery, Message, Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

if TYPE_CHECKING:
    from bot.app import App

WEBHOOK_PATH = "/telegram/webhook"
API_CALLS = "Bot API calls"
_current_step: contextvars.ContextVar[str] = contextvars.ContextVar("step", default="outside")


def step_of(update: Any) -> str:
    """Which step of the script an update is (for the bot process's per-step counts)."""
    if update.message is not None:
        return "start"
    query = update.callback_query
    if query is None or not query.data:
        return "other"
    prefix, _, rest = query.data.partition(":")
    if prefix == "rg":
        return "goal"
    if prefix == "rsc":
        return rest.split(":", 1)[0]
    return {"rx": "extra", "rsk": "next_step"}.get(prefix, "other")


class Counters:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # The event loop thread's CPU time by part of the work (see `split_cpu`).
        self.split: dict[str, float] = defaultdict(float)
        self.api_calls = 0
        self.thread_start = time.thread_time()
        self.updates: dict[str, int] = defaultdict(int)
        self.statements: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)
        self.errors = 0
        times = os.times()
        self.cpu_start = times.user + times.system

    def report(self) -> dict[str, Any]:
        times = os.times()
        steps = sorted(set(self.updates) | set(self.statements))
        return {
            "updates": sum(self.updates.values()),
            "statements": sum(n for step, n in self.statements.items() if step != "outside"),
            "statements_outside_updates": self.statements.get("outside", 0),
            "errors": self.errors,
            "per_step": {
                step: {
                    "updates": self.updates.get(step, 0),
                    "statements": self.statements.get(step, 0),
                    "seconds": round(self.seconds.get(step, 0.0), 4),
                }
                for step in steps
            },
            "cpu_seconds": round(times.user + times.system - self.cpu_start, 3),
            "loop_thread_cpu_seconds": round(time.thread_time() - self.thread_start, 3),
            "split_seconds": {part: round(seconds, 4) for part, seconds in self.split.items()},
            "api_calls": self.api_calls,
            # ru_maxrss is in KiB on Linux: the high-water mark of the whole process life.
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }


class _Part:
    """The event loop thread's CPU time spent inside a block, less what inner parts took.

    `time.thread_time` counts this thread only: SQLite's own work on aiosqlite's thread is not
    in it, and neither is waiting. It is exact only while one update is handled at a time
    (polling on SQLite); with concurrent updates (PostgreSQL, webhook) another update's work
    done during an await is counted too, so the split is printed for that case only.
    """

    def __init__(self, counters: Counters, name: str) -> None:
        self.counters = counters
        self.name = name

    async def run(self, awaitable: Awaitable[Any]) -> Any:
        split = self.counters.split
        inner_before = sum(split.values())
        started = time.thread_time()
        try:
            return await awaitable
        finally:
            spent = time.thread_time() - started
            split[self.name] += spent - (sum(split.values()) - inner_before)


def split_cpu(app: App, counters: Counters) -> None:
    """Times the parts of an update: the Bot API calls, the opening trip (claim, viewer,
    dialogue), the commit, and the handlers' own work (their own SQL included); the rest of
    an update is aiogram's routing, filters and the middlewares."""
    from aiogram.client.session.middlewares.base import BaseRequestMiddleware
    from sqlalchemy.ext.asyncio import AsyncSession

    import bot.middlewares

    api = _Part(counters, API_CALLS)

    class TimedRequests(BaseRequestMiddleware):
        async def __call__(self, make_request: Any, bot: Bot, method: Any) -> Any:
            if isinstance(method, GetUpdates):  # bot.polling's GetUpdatesAsSent too
                return await make_request(bot, method)
            counters.api_calls += 1
            if type(method).__name__ == "AnswerCallbackQuery":
                # Sent alongside the step's own calls (bot.middlewares.TapAnswers): a part of
                # its own would overlap the others. Its CPU is counted where it runs, mostly
                # within the card's edit, under "Bot API calls".
                return await make_request(bot, method)
            return await api.run(make_request(bot, method))

    app.bot.session.middleware(TimedRequests())

    opening = _Part(counters, "opening (claim, viewer, dialogue)")
    open_update = bot.middlewares.open_update

    async def timed_open(*args: Any, **kwargs: Any) -> Any:
        return await opening.run(open_update(*args, **kwargs))

    bot.middlewares.open_update = timed_open  # type: ignore[assignment]

    commit_part = _Part(counters, "commit (dialogue write included)")
    commit = AsyncSession.commit

    async def timed_commit(self: AsyncSession) -> None:
        await commit_part.run(commit(self))

    AsyncSession.commit = timed_commit  # type: ignore[method-assign]

    handlers = _Part(counters, "handlers' own work (their SQL included)")
    for router in app.dispatcher.chain_tail:
        for observer in router.observers.values():
            for handler in observer.handlers:
                if inspect.iscoroutinefunction(handler.callback):
                    handler.callback = _timed_handler(handlers, handler.callback)


def _timed_handler(part: _Part, callback: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(callback)
    async def timed(*args: Any, **kwargs: Any) -> Any:
        return await part.run(callback(*args, **kwargs))

    return timed


def count_updates(dispatcher: Dispatcher, counters: Counters) -> None:
    """Wrap feed_update (polling and webhook both come through it) to count per step."""
    handle = dispatcher.feed_update

    async def counted(bot: Bot, update: Update, **kwargs: Any) -> Any:
        step = step_of(update)
        token = _current_step.set(step)
        started = time.perf_counter()
        cpu_started = time.thread_time()
        inner_before = sum(counters.split.values())
        try:
            return await handle(bot, update, **kwargs)
        except Exception:
            counters.errors += 1
            raise
        finally:
            inner = sum(counters.split.values()) - inner_before
            counters.split["routing, filters, middlewares"] += (
                time.thread_time() - cpu_started - inner
            )
            counters.seconds[step] += time.perf_counter() - started
            counters.updates[step] += 1
            _current_step.reset(token)

    dispatcher.feed_update = counted  # type: ignore[method-assign]


# ------------------------------------------------------------------------------ the bots


def build_portfolio(
    arguments: argparse.Namespace, counters: Counters, webhook_url: str | None
) -> App:
    from sqlalchemy import event

    from bot.app import build_app
    from bot.observability import configure_logging
    from config.settings import Settings

    settings = Settings(
        bot_token=None,
        database_url=arguments.database_url,
        telegram_api_url=arguments.api_url,
        media_dir=Path(arguments.work_dir) / "media",
        webhook_url=webhook_url,
        _env_file=None,  # type: ignore[call-arg]
    )
    # As in production: one log line per update, to stderr (the bench keeps it in a file).
    configure_logging(settings)
    app = build_app(settings, token=arguments.token)

    def counted_statement(*_args: Any) -> None:
        counters.statements[_current_step.get()] += 1

    event.listen(app.engine.sync_engine, "before_cursor_execute", counted_statement)
    count_updates(app.dispatcher, counters)
    split_cpu(app, counters)
    return app


def build_echo(arguments: argparse.Namespace, counters: Counters) -> tuple[Bot, Dispatcher]:
    """Bare aiogram: one plain message back per update, no database, no middlewares."""
    bot = Bot(
        arguments.token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(arguments.api_url)),
    )
    dispatcher = Dispatcher()

    async def echo_message(message: Message, bot: Bot) -> None:
        await bot.send_message(message.chat.id, message.text or "?")

    async def echo_press(query: CallbackQuery, bot: Bot) -> None:
        assert query.message is not None
        await bot.send_message(query.message.chat.id, query.data or "?")

    dispatcher.message.register(echo_message, F.text)
    dispatcher.callback_query.register(echo_press)
    count_updates(dispatcher, counters)
    return bot, dispatcher


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------- the run


async def serve(arguments: argparse.Namespace) -> None:
    counters = Counters()
    ready = asyncio.Event()
    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}" if arguments.mode == "webhook" else None
    runner: web.AppRunner | None = None
    polling: asyncio.Task[None] | None = None
    close: Any
    stop_polling: Callable[[], Awaitable[Any]]

    if arguments.kind == "portfolio":
        from bot.runner import build_webhook_app, poll

        app = build_portfolio(arguments, counters, webhook_url)
        bot, dispatcher, close = app.bot, app.dispatcher, app.close
        stop_polling = app.stop_polling
        if arguments.mode == "webhook":
            web_app = build_webhook_app(app, secret=secrets.token_urlsafe(16))
        else:
            dispatcher.startup.register(ready.set)
            # The production entry point (bot.runner.poll); the reminder jobs are not started:
            # their planner would send today's prompts into the pupils' chats mid-run, and
            # `python -m bench reminders` measures them on their own.
            polling = asyncio.create_task(poll(app, handle_signals=False))
    else:
        bot, dispatcher = build_echo(arguments, counters)
        close = bot.session.close
        stop_polling = dispatcher.stop_polling
        if arguments.mode == "webhook":
            secret = secrets.token_urlsafe(16)
            web_app = web.Application()
            SimpleRequestHandler(
                dispatcher=dispatcher, bot=bot, secret_token=secret, handle_in_background=False
            ).register(web_app, path=WEBHOOK_PATH)
            setup_application(web_app, dispatcher, bot=bot)

            async def register(_app: web.Application) -> None:
                await bot.set_webhook(
                    f"{webhook_url}{WEBHOOK_PATH}",
                    secret_token=secret,
                    allowed_updates=dispatcher.resolve_used_update_types(),
                )

            web_app.on_startup.append(register)
        else:
            dispatcher.startup.register(ready.set)
            polling = asyncio.create_task(
                dispatcher.start_polling(
                    bot,
                    allowed_updates=dispatcher.resolve_used_update_types(),
                    handle_signals=False,
                    close_bot_session=False,
                )
            )

    if arguments.mode == "webhook":
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
    await ready.wait()
    print("READY", flush=True)

    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            command = line.strip()
            if not line:
                break
            if command == "reset":
                counters.reset()
                print("OK", flush=True)
            elif command == "report":
                print(json.dumps(counters.report()), flush=True)
    finally:
        if polling is not None:
            # The portfolio bot stops as in production: the updates in hand commit first.
            await stop_polling()
            await polling
        if runner is not None:
            await runner.cleanup()
        await close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._botproc")
    parser.add_argument("--kind", choices=("portfolio", "echo"), required=True)
    parser.add_argument("--mode", choices=("polling", "webhook"), required=True)
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--work-dir", default=".")
    arguments = parser.parse_args()
    profile_to = os.environ.get("BENCH_PROFILE")
    if profile_to:
        # BENCH_PROFILE=file.prof python -m bench load ...: where the bot's CPU time goes
        # (read with `python -m pstats file.prof`).
        import cProfile

        cProfile.runctx("asyncio.run(serve(arguments))", globals(), locals(), profile_to)
        return
    asyncio.run(serve(arguments))


if __name__ == "__main__":
    main()
