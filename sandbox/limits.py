"""Runtime-tunable limits of the Telegram sandbox and the token buckets that enforce them.

The defaults mirror the documented (or widely observed) limits of the real Bot API, so a bot
that passes its tests against the sandbox does not trip over them in production. Tests
tighten them at runtime, either by mutating :attr:`TelegramSandbox.limits` directly or via
``POST /sandbox/{token}/limits``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any


@dataclass
class SandboxLimits:
    """Limits enforced by the sandbox; every field can be changed while it runs.

    A rate of ``0`` (or less) disables that token bucket entirely.
    """

    max_text: int = 4096
    max_caption: int = 1024
    max_callback_data: int = 64
    max_download_bytes: int = 20 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    max_photo_upload_bytes: int = 10 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    per_chat_rate: float = 1.0
    per_chat_burst: int = 20
    global_rate: float = 30.0
    global_burst: int = 30
    max_poll_timeout: float = 50.0
    webhook_attempts: int = 3
    webhook_backoff: float = 0.05
    webhook_timeout: float = 10.0
    # Real bots default to privacy mode; the sandbox defaults to "off" because most tests
    # want to see every group message. Tests of privacy behaviour switch it on.
    group_privacy: bool = False

    def update(self, changes: dict[str, Any]) -> None:
        """Apply ``changes`` (field name -> value), coercing to each field's type.

        Raises :class:`ValueError` for unknown fields or values of the wrong kind, so the
        control API can answer 400 instead of storing garbage.
        """
        known = {f.name: f for f in fields(self)}
        coerced: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown limit {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be a boolean")
                coerced[name] = value
            elif isinstance(current, int):
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be an integer")
                coerced[name] = int(value)
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number")
                coerced[name] = float(value)
        for name, value in coerced.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class TokenBucket:
    """A token bucket whose rate and capacity are read on every use.

    Reading them lazily (instead of copying at construction) is what lets tests tighten
    :class:`SandboxLimits` on a running sandbox and see the effect on the next call.
    """

    def __init__(self, capacity: int, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._tokens = float(capacity)
        self._stamp = clock()

    def _refill(self, rate: float, capacity: int) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._stamp)
        self._stamp = now
        self._tokens = min(float(capacity), self._tokens + elapsed * rate)

    def wait_time(self, amount: int, rate: float, capacity: int) -> float:
        """Seconds until ``amount`` tokens are available (0 when they are now)."""
        if rate <= 0:
            return 0.0
        self._refill(rate, capacity)
        # A request larger than the bucket can never fit; treat it as needing a full bucket
        # so the caller still gets a finite retry_after instead of waiting forever.
        needed = min(float(amount), float(max(capacity, 1)))
        if self._tokens >= needed:
            return 0.0
        return (needed - self._tokens) / rate

    def take(self, amount: int, rate: float, capacity: int) -> None:
        if rate <= 0:
            return
        self._refill(rate, capacity)
        self._tokens -= min(float(amount), float(max(capacity, 1)))


def retry_after_seconds(wait: float) -> int:
    """Telegram reports whole seconds and never 0 for a refused request."""
    return max(1, math.ceil(wait - 1e-9))
