"""The demo clock: real time plus an offset, moved by short English or Dutch phrases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.clock import Clock, ClockError

# Thursday 26 November 2026, 10:00 in Amsterdam (09:00 UTC).
REAL = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def real() -> FakeTime:
    return FakeTime(REAL)


@pytest.fixture
def clock(real: FakeTime) -> Clock:
    return Clock("Europe/Amsterdam", real_now=real)


def local(clock: Clock) -> tuple[str, str]:
    now = clock.local_now()
    return now.strftime("%A %Y-%m-%d"), now.strftime("%H:%M")


def test_unmoved_clock_is_real_time(clock: Clock):
    assert clock.now() == REAL
    assert local(clock) == ("Thursday 2026-11-26", "10:00")
    assert not clock.view().moved


@pytest.mark.parametrize(
    ("move", "expected"),
    [
        ("next school day 15:30", ("Friday 2026-11-27", "15:30")),
        ("Volgende schooldag 15.30", ("Friday 2026-11-27", "15:30")),
        ("next school day", ("Friday 2026-11-27", "08:30")),
        ("next Monday 08:30", ("Monday 2026-11-30", "08:30")),
        ("volgende maandag", ("Monday 2026-11-30", "08:30")),
        ("next thursday 9:05", ("Thursday 2026-12-03", "09:05")),
        ("tomorrow 14:30", ("Friday 2026-11-27", "14:30")),
        ("vandaag om 16:00", ("Thursday 2026-11-26", "16:00")),
        ("+1 day", ("Friday 2026-11-27", "10:00")),
        ("+2 hours", ("Thursday 2026-11-26", "12:00")),
        ("+30 min", ("Thursday 2026-11-26", "10:30")),
        ("+1 week", ("Thursday 2026-12-03", "10:00")),
        ("+3 dagen", ("Sunday 2026-11-29", "10:00")),
    ],
)
def test_moves(clock: Clock, move: str, expected: tuple[str, str]):
    clock.move(move)
    assert local(clock) == expected
    assert clock.view().moved


def test_next_school_day_skips_the_weekend(clock: Clock):
    clock.move("next friday 16:00")
    clock.move("next school day 15:30")
    assert local(clock) == ("Monday 2026-11-30", "15:30")


def test_school_days_come_from_the_school(real: FakeTime):
    clock = Clock("Europe/Amsterdam", school_days=[1, 2, 4, 5], real_now=real)
    clock.move("next monday 09:00")
    clock.move("next school day")
    assert local(clock) == ("Tuesday 2026-12-01", "08:30")
    clock.move("next school day")
    assert local(clock) == ("Thursday 2026-12-03", "08:30")


def test_the_clock_keeps_running_after_a_move(clock: Clock, real: FakeTime):
    clock.move("next monday 08:30")
    real.moment += timedelta(minutes=7)
    assert local(clock) == ("Monday 2026-11-30", "08:37")


def test_moves_add_up_and_now_resets(clock: Clock):
    clock.move("+1 day")
    clock.move("+1 day")
    assert clock.offset == timedelta(days=2)
    clock.move("nu")
    assert clock.offset == timedelta(0)
    assert clock.now() == REAL


def test_across_the_change_to_summer_time(real: FakeTime):
    real.moment = datetime(2027, 3, 26, 12, 0, tzinfo=UTC)  # a Friday, winter time
    clock = Clock("Europe/Amsterdam", real_now=real)
    clock.move("next school day 15:30")  # Monday 29 March, summer time (UTC+2)
    assert local(clock) == ("Monday 2027-03-29", "15:30")
    assert clock.now() == datetime(2027, 3, 29, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize("move", ["blah", "next funday", "+1 fortnight", "today 25:00", ""])
def test_unknown_moves_say_what_works(clock: Clock, move: str):
    with pytest.raises(ClockError) as raised:
        clock.move(move)
    assert clock.offset == timedelta(0)
    assert (
        "next school day" in str(raised.value)
        or "unknown unit" in str(raised.value)
        or ("time of day" in str(raised.value))
    )


def test_more_than_a_year_is_refused(clock: Clock):
    with pytest.raises(ClockError):
        clock.move("+60 weeks")


def test_view_for_the_page(clock: Clock):
    clock.move("+1 hour")
    view = clock.view().as_dict()
    assert view["offset_seconds"] == 3600
    assert view["timezone"] == "Europe/Amsterdam"
    assert view["moved"] is True
    assert view["epoch_ms"] == int((REAL + timedelta(hours=1)).timestamp() * 1000)
