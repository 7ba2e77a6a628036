"""/healthz, /readyz and /metrics: on the webhook server, and polling mode's own small server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import httpx
from aiohttp import web
from prometheus_client import REGISTRY
from sqlalchemy import update

from bot.app import build_app
from bot.observability import start_ops_server
from bot.runner import build_webhook_app
from config.settings import Settings
from sandbox import SandboxClient
from storage.models import School
from storage.reminders import schedule_reminder
from tests.conftest import TOKEN
from tests.factories import DemoSchool
from tests.ops.conftest import free_port


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_the_webhook_server_answers_health_readiness_and_metrics(
    settings: Settings, telegram: SandboxClient, school: DemoSchool, session_factory
):
    port = free_port()
    app = build_app(
        settings.model_copy(update={"webhook_url": f"http://127.0.0.1:{port}"}), token=TOKEN
    )
    runner = web.AppRunner(build_webhook_app(app, secret="a-shared-secret"))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    handled_before = sample("portfolio_updates_total", type="message", outcome="handled")
    sent_before = sample("portfolio_reminders_total", kind="reflection_prompt", outcome="sent")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["database"] == "ok"
            assert ready.json()["checks"]["schema"].startswith("current")
            assert "redis" not in ready.json()["checks"]

            pupil = await telegram.create_user("Sam")
            await pupil.send_text(f"/start {school.codes['P1']}")
            await pupil.wait_for_reply()

            # A reminder, due a minute ago, sent by this app's dispatcher.
            today = datetime.now(ZoneInfo("Europe/Amsterdam")).date()
            async with session_factory() as session, session.begin():
                await session.execute(
                    update(School).values(
                        quiet_hours_start=clock_time(0), quiet_hours_end=clock_time(0)
                    )
                )
                await schedule_reminder(
                    session,
                    kind="reflection_prompt",
                    person_id=school.persons["P1"],
                    due_at=datetime.now(UTC) - timedelta(minutes=1),
                    idempotency_key="reflection:test",
                    payload={"date": today.isoformat()},
                )
                await schedule_reminder(
                    session,
                    kind="reflection_prompt",
                    person_id=school.persons["P2"],
                    due_at=datetime.now(UTC) + timedelta(hours=1),
                    idempotency_key="reflection:later",
                    payload={"date": today.isoformat()},
                )
            metrics = (await http.get("/metrics")).text
            assert 'portfolio_reminder_queue_depth{state="due"} 1.0' in metrics
            assert 'portfolio_reminder_queue_depth{state="scheduled"} 1.0' in metrics
            [oldest] = [
                line.split()[1]
                for line in metrics.splitlines()
                if line.startswith("portfolio_reminder_oldest_due_seconds ")
            ]
            assert float(oldest) > 50

            report = await app.reminders.dispatch()
            assert report.sent == 1
            metrics = (await http.get("/metrics")).text
        assert 'portfolio_reminder_queue_depth{state="due"} 0.0' in metrics
        assert "portfolio_update_duration_seconds_bucket" in metrics
        assert 'portfolio_messages_sent_total{method="SendMessage"}' in metrics
        assert "portfolio_telegram_429_total" in metrics
        assert sample("portfolio_updates_total", type="message", outcome="handled") == (
            handled_before + 1
        )
        assert (
            sample("portfolio_reminders_total", kind="reflection_prompt", outcome="sent")
            == sent_before + 1
        )
        lag = sample("portfolio_reminder_lag_seconds_sum", kind="reflection_prompt")
        assert lag >= 60
    finally:
        await runner.cleanup()
        await app.close()


async def test_not_ready_on_a_database_without_tables(settings: Settings, tmp_path):
    app = build_app(
        settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"}),
        token=TOKEN,
    )
    port = free_port()
    runner = await start_ops_server(app, host="127.0.0.1", port=port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["schema"].startswith("empty")
            # Metrics still answer: the queue cannot be read, the rest can.
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200 and "portfolio_updates_total" in metrics.text
    finally:
        await runner.cleanup()
        await app.close()
