"""Operations: logs, metrics, health and readiness (see docs/operations.md).

* Logs: one line per update (id, type, command name, outcome, duration) from
  `UpdateLogMiddleware`, as text or JSON (`LOG_FORMAT`). Privacy: a log line never carries
  a message text, a name, a caption, callback data values or file contents. Only fixed
  strings and numbers go in; the one piece of user input logged is a command's name (`/start`,
  never its argument: that is an invite code), and only when it looks like a command.
* Metrics: Prometheus, prometheus-client's default registry (plus the process collector).
  Update metrics are defined here; the sending side's in `scheduler.metrics`.
* `/healthz`: the process answers. `/readyz`: the database and Redis answer and the schema
  is one this code runs on. Both, and `/metrics`, on the webhook server, or in polling mode on
  a small server of their own (`METRICS_PORT`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from pydantic import ValidationError

from scheduler import metrics as sending_metrics
from storage.health import SchemaState, ping, reminder_queue, schema_state

if TYPE_CHECKING:
    from bot.app import App
    from config.settings import Settings

log = logging.getLogger("bot.updates")

UPDATES = Counter(
    "portfolio_updates_total",
    "Updates from Telegram by type and outcome: handled, unhandled (no handler wanted it), "
    "duplicate (handled before, by this or another replica), refused (a shape Telegram never "
    "sends), unreadable (not a valid update for this version; skipped), error",
    ["type", "outcome"],
)
UPDATE_SECONDS = Histogram(
    "portfolio_update_duration_seconds",
    "Time to handle one update, database commit included",
    ["type"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# ------------------------------------------------------------------------------------ logs

# What LogRecord has of its own; everything else on a record came in through `extra=`.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """The process's logging, as the settings ask.

    Like `logging.basicConfig`, it adds its handler only when the root logger has none yet:
    whoever set up logging before (a test runner, a program embedding the bot) keeps theirs.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
        )
        root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Warnings (a library's RuntimeWarning, say) go through the same handler, as one line of
    # the chosen format, instead of as plain text of their own on stderr.
    logging.captureWarnings(True)
    pin_library_loggers()


def pin_library_loggers() -> None:
    """Levels for libraries' loggers, whatever LOG_LEVEL says.

    Privacy first: aiosqlite logs every statement *with its parameters* at DEBUG (names,
    reflections, captions), so it never logs below WARNING, even when debugging.
    """
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    # Our update line replaces aiogram's ("Update id=... is handled"), and the webhook
    # server's access log would only repeat it (and every probe of /healthz).
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # "Running job ... executed successfully" every two seconds says nothing; failures are
    # logged as errors by the jobs themselves.
    logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
    # "skipped: maximum number of running instances reached" is the design (a long send
    # outlasts the 2 s interval, and one run at a time is wanted), not a problem.
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]{1,64})?$")
_CALLBACK_PREFIX = re.compile(r"^[A-Za-z0-9_]{1,32}$")


def describe(update: Update) -> dict[str, Any]:
    """What an update is, without what it says: its type, the kind of content, a command's
    name and a button's callback prefix (the CallbackData class, never its values)."""
    fields: dict[str, Any] = {"update_id": update.update_id}
    try:
        fields["type"] = update.event_type
    except Exception:  # aiogram raises for update types it does not know
        fields["type"] = "unknown"
    message = update.message
    if message is not None:
        content = message.content_type
        fields["content"] = str(getattr(content, "value", content))
        first = (message.text or "").split(maxsplit=1)[0] if message.text else ""
        match = _COMMAND.match(first)
        if match:
            fields["command"] = "/" + match.group(1)
        fields["chat_type"] = message.chat.type
    elif update.callback_query is not None and update.callback_query.data:
        prefix = update.callback_query.data.split(":", 1)[0]
        if _CALLBACK_PREFIX.match(prefix):
            fields["callback"] = prefix
    return fields


# A field's name in a validation error's path; anything else (a key that came with the data)
# is not written down.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_MOST_PROBLEMS = 5


def validation_problems(error: ValidationError) -> list[str]:
    """Where and how an object did not fit its model, as "field.path: error type"
    (`message.forward_origin.MessageOriginUser.type: literal_error`), never the value that did
    not fit: that is what someone wrote."""
    problems: list[str] = []
    for problem in error.errors(include_url=False, include_context=False, include_input=False):
        path = ".".join(
            str(part) if isinstance(part, int) or _FIELD_NAME.match(part) else "?"
            for part in problem["loc"]
        )
        described = f"{path or 'update'}: {problem['type']}"
        if described not in problems:
            problems.append(described)
    return problems


def log_unreadable_update(update: object, error: Exception) -> None:
    """One update that could not be read (a shape of a newer or older Bot API) and is skipped:
    logged and counted by its id, its type and what did not fit, without its content."""
    raw = update if isinstance(update, dict) else {}
    update_id = raw.get("update_id")
    kind = next((key for key in raw if key != "update_id"), None)
    fields: dict[str, Any] = {
        "update_id": update_id if isinstance(update_id, int) else None,
        "type": kind if isinstance(kind, str) and _FIELD_NAME.match(kind) else "unknown",
        "outcome": "unreadable",
        "error": type(error).__name__,
    }
    if isinstance(error, ValidationError):
        fields["problems"] = validation_problems(error)
    UPDATES.labels(type=fields["type"], outcome="unreadable").inc()
    problems = fields.get("problems", [])
    log.warning(
        "update %s %s unreadable (%s%s); skipped",
        fields["update_id"],
        fields["type"],
        "; ".join(problems[:_MOST_PROBLEMS]) or fields["error"],
        f"; {len(problems) - _MOST_PROBLEMS} more" if len(problems) > _MOST_PROBLEMS else "",
        extra=fields,
    )


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateLogMiddleware(BaseMiddleware):
    """The outermost of our middlewares: times the update, counts it, logs one line.

    A duplicate is told apart from an unhandled update by `session`: `UpdateTransaction`
    (inside this one, sharing the same `data`) puts it there only after it claimed the update
    id, so an update that comes back UNHANDLED without a session was handled before.
    """

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        fields = describe(event)
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(event, data)
            if result is not UNHANDLED:
                outcome = "handled"
            elif "refused" in data:
                outcome = "refused"
                fields["reason"] = data["refused"]
            else:
                outcome = "unhandled" if "session" in data else "duplicate"
            return result
        finally:
            seconds = time.perf_counter() - started
            UPDATES.labels(type=fields["type"], outcome=outcome).inc()
            UPDATE_SECONDS.labels(type=fields["type"]).observe(seconds)
            fields["outcome"] = outcome
            fields["duration_ms"] = round(seconds * 1000, 1)
            detail = fields.get("command") or fields.get("callback") or fields.get("content")
            log.log(
                logging.WARNING if outcome == "error" else logging.INFO,
                "update %s %s%s %s in %.0f ms",
                event.update_id,
                fields["type"],
                f" {detail}" if detail else "",
                outcome,
                seconds * 1000,
                extra=fields,
            )


# ---------------------------------------------------------------------------- health, metrics

CHECK_TIMEOUT = 3.0


async def _check(name: str, work: Awaitable[Any], results: dict[str, str]) -> bool:
    try:
        await asyncio.wait_for(work, CHECK_TIMEOUT)
    except Exception as error:  # each backend has its own errors; the name is enough here
        results[name] = f"failed: {type(error).__name__}"
        return False
    results[name] = "ok"
    return True


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process and its event loop answer. Never touches the database, so a
    database outage does not make an orchestrator restart every replica in a loop."""
    return web.json_response({"status": "ok"})


def readiness_handler(app: App) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(_request: web.Request) -> web.Response:
        checks: dict[str, str] = {}
        ready = await _check("database", ping(app.engine), checks)
        if ready:
            try:
                state, revision = await asyncio.wait_for(schema_state(app.engine), CHECK_TIMEOUT)
            except Exception as error:
                checks["schema"] = f"failed: {type(error).__name__}"
                ready = False
            else:
                # AHEAD: a newer version migrated during a rolling upgrade; it stays
                # compatible with this one (docs/operations.md, "Upgrades").
                checks["schema"] = f"{state.value} ({revision})"
                ready = state in (SchemaState.CURRENT, SchemaState.AHEAD)
        redis = getattr(app.dispatcher.storage, "redis", None)
        if redis is not None:
            ready = await _check("redis", redis.ping(), checks) and ready
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    return readyz


async def refresh_queue_gauges(app: App) -> None:
    now = datetime.now(UTC)
    queue = await reminder_queue(app.engine, now=now)
    sending_metrics.QUEUE_DEPTH.labels(state="due").set(queue.due)
    sending_metrics.QUEUE_DEPTH.labels(state="claimed").set(queue.claimed)
    sending_metrics.QUEUE_DEPTH.labels(state="scheduled").set(queue.scheduled)
    oldest = (now - queue.oldest_due_at).total_seconds() if queue.oldest_due_at else 0.0
    sending_metrics.OLDEST_DUE_AGE.set(max(0.0, oldest))


def metrics_handler(app: App) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def metrics(_request: web.Request) -> web.Response:
        try:
            await asyncio.wait_for(refresh_queue_gauges(app), CHECK_TIMEOUT)
        except Exception as error:
            # The other metrics are worth more than failing the scrape over the queue.
            log.warning("reminder queue depth not refreshed: %s", type(error).__name__)
        body = await asyncio.to_thread(generate_latest, REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


def add_ops_routes(web_app: web.Application, app: App) -> None:
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readiness_handler(app))
    web_app.router.add_get("/metrics", metrics_handler(app))


async def start_ops_server(app: App, *, host: str, port: int) -> web.AppRunner:
    """Polling mode's own small server for /healthz, /readyz and /metrics."""
    web_app = web.Application()
    add_ops_routes(web_app, app)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    logging.getLogger(__name__).info("health and metrics on %s:%s", host, port)
    return runner
