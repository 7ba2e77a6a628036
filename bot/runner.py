"""Run modes: long polling, a webhook server, and the demo (bot.demo) when no token is given."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal

from aiogram.methods import TelegramMethod
from aiogram.types import BotCommand, InputFile, Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.app import App, build_app, rewrap_invite_codes
from bot.observability import add_ops_routes, log_unreadable_update, start_ops_server
from chat_ui.commands import general_commands
from config.settings import Settings, with_invite_secret
from services.errors import UserError
from storage.health import SchemaState, schema_state_of
from storage.migrate import ensure_current

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "1000001:sandbox-local-token-not-secret"
WEBHOOK_PATH = "/telegram/webhook"


def bot_commands(app: App, locale: str) -> list[BotCommand]:
    with app.i18n.context(), app.i18n.use_locale(locale):
        return general_commands()


async def announce_commands(app: App) -> None:
    """The command list in Telegram's menu, in Dutch and (for English apps) in English."""
    await app.bot.set_my_commands(bot_commands(app, app.settings.default_locale))
    for locale in app.i18n.available_locales:
        if locale != app.settings.default_locale:
            await app.bot.set_my_commands(bot_commands(app, locale), language_code=locale)


async def run_bot(settings: Settings, *, webhook: bool = False) -> None:
    if settings.uses_sandbox:
        # No Telegram to talk to: the demo school in its own database, against the sandbox.
        # --keep, so that running twice continues the same demo.
        from bot.demo import run_demo

        await run_demo(settings, keep=True, port=settings.sandbox_port)
        return
    # Without INVITE_SECRET a real bot stops here, before it touches the database.
    settings = with_invite_secret(settings)
    await ensure_runnable_schema(settings.database_url)
    app = build_app(settings)
    ops: web.AppRunner | None = None
    try:
        await rewrap_invite_codes(app)
        # Every process runs the reminder jobs: planning is idempotent, claiming exclusive.
        app.reminders.start()
        if webhook:
            await _serve_webhook(app)
        else:
            if settings.metrics_port is not None:
                ops = await start_ops_server(
                    app, host=settings.metrics_host, port=settings.metrics_port
                )
            await poll(app)
    finally:
        if ops is not None:
            await ops.cleanup()
        await app.close()


async def ensure_runnable_schema(url: str) -> None:
    """Run on the code's schema, or on the next version's during a rolling upgrade: its
    migrations keep this version working (docs/operations.md, "Upgrades")."""
    try:
        state, revision = await schema_state_of(url)
    except Exception:  # unreachable: ensure_current says so in one line
        state, revision = SchemaState.EMPTY, None
    if state is SchemaState.AHEAD:
        log.warning("database schema %s is newer than this version; running on it", revision)
        return
    await ensure_current(url)


async def poll(app: App, *, handle_signals: bool = True) -> None:
    """Long polling until stopped (Ctrl+C, SIGTERM, or `app.stop_polling()`)."""
    me = await app.bot.get_me()
    log.info("polling as @%s", me.username)
    await announce_commands(app)
    # Polling and a webhook exclude each other at Telegram.
    await app.bot.delete_webhook(drop_pending_updates=False)
    if handle_signals:
        # A signal stops polling as App.stop_polling does: the updates in hand commit first.
        loop = asyncio.get_running_loop()
        stopping: set[asyncio.Task[None]] = set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(
                sig, lambda: stopping.add(asyncio.create_task(app.stop_polling()))
            )
    freeze_startup_objects()
    # bot.polling.BatchPoller: an update is confirmed to Telegram (by the next getUpdates)
    # only after its transaction committed, so a bot killed between a reply and the commit
    # gets the update again and the pupil's answer is not lost.
    await app.poller.run(app.bot)


def freeze_startup_objects() -> None:
    """Leave what start-up built (modules, models, routers: most of the bot's memory) out of
    the garbage collector's full collections. Those walk every tracked object, which here
    took some 200 ms each under load, a stall of every update in hand; the updates' own
    objects are collected as before."""
    gc.collect()
    gc.freeze()


class JsonReplies(SimpleRequestHandler):
    """aiogram's webhook handler, answering with a method as JSON rather than a multipart form
    (the Bot API takes both; JSON costs less to write). A method with a file is sent as a
    request of its own instead, and the reply is empty.

    An update that cannot be read (a shape of a newer or older Bot API) is answered 200 and
    skipped, logged by its id, type and the fields that did not fit: answered 500, Telegram
    would deliver it again and again for a day."""

    async def handle(self, request: web.Request) -> web.Response:
        bot = await self.resolve_bot(request)
        if not self.verify_secret(request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot):
            return web.Response(body="Unauthorized", status=401)
        raw: object = None
        try:
            raw = await request.json(loads=bot.session.json_loads)
            update = Update.model_validate(raw, context={"bot": bot})
        except ValueError as error:  # not JSON, or (pydantic's ValidationError) not an update
            log_unreadable_update(raw, error)
            return web.json_response({}, dumps=bot.session.json_dumps)
        result: object = await self.dispatcher.feed_webhook_update(bot, update, **self.data)
        if not isinstance(result, TelegramMethod):
            return web.json_response({}, dumps=bot.session.json_dumps)
        files: dict[str, InputFile] = {}
        # aiogram's preparation of the parameters, given the whole call at once: a dict comes
        # back as its JSON text.
        body = bot.session.prepare_value(
            {"method": result.__api_method__, **result.model_dump(warnings=False)},
            bot=bot,
            files=files,
        )
        if files:
            await self.dispatcher.silent_call_request(bot, result)
            return web.json_response({}, dumps=bot.session.json_dumps)
        return web.Response(text=body, content_type="application/json")


def build_webhook_app(app: App, *, secret: str) -> web.Application:
    """The aiohttp application that receives Telegram's updates (one per replica)."""
    settings = app.settings
    if not settings.webhook_url:
        raise UserError(
            "Setting WEBHOOK_URL is needed for --webhook: the public https address of this bot."
        )
    webhook_url = f"{settings.webhook_url}{WEBHOOK_PATH}"
    web_app = web.Application()
    add_ops_routes(web_app, app)
    # Not in the background: Telegram gets its 200 only after the update's transaction
    # committed. A replica that dies mid-update thus leaves it unanswered, and Telegram (through
    # the load balancer) delivers it again, to a replica that is alive; the processed_update
    # row makes sure an update that did commit is never handled twice.
    # webhook_reply: a tap's answer rides on the reply (bot.middlewares.TapAnswers).
    JsonReplies(
        dispatcher=app.dispatcher,
        bot=app.bot,
        secret_token=secret,
        handle_in_background=False,
        webhook_reply=True,
    ).register(web_app, path=WEBHOOK_PATH)
    setup_application(web_app, app.dispatcher, bot=app.bot)

    async def register_webhook(_app: web.Application) -> None:
        # Every replica sets the same URL and secret; setting it again changes nothing.
        await app.bot.set_webhook(
            webhook_url,
            secret_token=secret,
            allowed_updates=app.dispatcher.resolve_used_update_types(),
        )
        await announce_commands(app)
        freeze_startup_objects()

    web_app.on_startup.append(register_webhook)
    return web_app


async def _serve_webhook(app: App) -> None:
    settings = app.settings
    # Replicas must share one secret, or Telegram's deliveries to all but the last one that
    # registered would be refused: a random secret only suits a single process.
    secret = settings.webhook_secret or secrets.token_urlsafe(32)
    # No access log: the update log line says more, and probes would flood it.
    runner = web.AppRunner(build_webhook_app(app, secret=secret), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    log.info("webhook server on %s:%s", settings.webhook_host, settings.webhook_port)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
