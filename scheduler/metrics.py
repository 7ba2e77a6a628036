"""Prometheus metrics of the outgoing side: messages sent, flood waits, reminder outcomes and lag.

They live here, not in bot/, because the scheduler may import only storage: the sender and the
dispatcher count into these objects, and `bot.observability` serves them with the rest.
They are registered in prometheus-client's default registry, one per process; several apps in
one process (tests, the demo) add to the same counters, which only ever matters to tests, and
those compare before and after.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_SENT = Counter(
    "portfolio_messages_sent_total",
    "Bot API calls that put a message on a screen (send, edit, copy), by method",
    ["method"],
)
FLOOD_WAITS = Counter(
    "portfolio_telegram_429_total",
    "429 Too Many Requests answers from Telegram (each one pauses all sending)",
)
SEND_FAILURES = Counter(
    "portfolio_send_failures_total",
    "Messages that did not arrive: unreachable (blocked the bot) or failed (after retries)",
    ["reason"],
)
REMINDERS = Counter(
    "portfolio_reminders_total",
    "Reminders finished by this process, by kind and outcome "
    "(sent, cancelled, dropped, deferred, failed, unreachable)",
    ["kind", "outcome"],
)
REMINDER_LAG = Histogram(
    "portfolio_reminder_lag_seconds",
    "From a reminder's due time to the moment it was sent",
    ["kind"],
    buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600),
)
REMINDERS_RECOVERED = Counter(
    "portfolio_reminders_recovered_total",
    "Reminders taken over from a worker that stopped: released (sent again later) or "
    "uncertain (may have arrived, not sent again)",
    ["outcome"],
)
# Set when /metrics is scraped (bot.observability), from the reminder table: the same value on
# every replica, so alert on max() over replicas, not sum().
QUEUE_DEPTH = Gauge(
    "portfolio_reminder_queue_depth",
    "Reminders by state: due (pending and due now), claimed (being sent), scheduled (later)",
    ["state"],
)
OLDEST_DUE_AGE = Gauge(
    "portfolio_reminder_oldest_due_seconds",
    "Age of the oldest pending reminder that is due: grows when nothing is sending",
)

OUTCOMES = ("sent", "cancelled", "dropped", "deferred", "failed", "unreachable")


def count_outcomes(kind: str, counts: dict[str, int]) -> None:
    """Adds one delivery attempt's outcome (a DispatchReport's counters) to REMINDERS."""
    for outcome in OUTCOMES:
        if counts.get(outcome):
            REMINDERS.labels(kind=kind, outcome=outcome).inc(counts[outcome])
