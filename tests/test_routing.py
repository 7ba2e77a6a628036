"""Button presses routed by CallbackData prefix reach the same handler as aiogram's plain walk,
while routers without the press's prefix are passed by."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiogram import F, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Chat, Message, User

from handlers.routing import ChatTypeIs, press_prefixes, route_presses_by_prefix


class Apple(CallbackData, prefix="a"):
    n: int


class Cherry(CallbackData, prefix="c"):
    n: int


class Date(CallbackData, prefix="d", sep="|"):
    n: int


SENT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PRESSES = ("a:1", "a:12", "c:3", "d|4", "d:4", "zz:1", "", "a", "a:x", "c")


def press(data: str, chat_type: str = "private") -> CallbackQuery:
    user = User(id=7, is_bot=False, first_name="Sam")
    message = Message(message_id=1, date=SENT, chat=Chat(id=7, type=chat_type))
    return CallbackQuery(id="1", from_user=user, chat_instance="x", data=data, message=message)


class Offers:
    """Which routers' handlers were asked about a press (their first filter notes it)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def note(self, name: str) -> Callable[[CallbackQuery], Awaitable[bool]]:
        async def asked(_query: CallbackQuery) -> bool:
            self.asked.append(name)
            return True

        return asked


def build(offers: Offers) -> Router:
    """Order matters: `any` takes every press that `apples` (before it) leaves; `nested`
    holds a catch-all below a router that has CallbackData handlers of its own."""
    root = Router(name="root")
    apples, anything, cherries = Router(name="apples"), Router(name="any"), Router(name="cherries")
    nested, dates, leftovers = Router(name="nested"), Router(name="dates"), Router(name="left")

    @apples.callback_query(offers.note("apples"), Apple.filter(F.n < 10))
    async def small_apple(_query: CallbackQuery) -> str:
        return "apples"

    @anything.callback_query(offers.note("any"), F.data == "c")
    async def bare_c(_query: CallbackQuery) -> str:
        return "any"

    @cherries.callback_query(offers.note("cherries"), Apple.filter())
    async def cherry_apple(_query: CallbackQuery) -> str:
        return "cherries"

    @cherries.callback_query(offers.note("cherries"), Cherry.filter())
    async def cherry(_query: CallbackQuery) -> str:
        return "cherries"

    @nested.callback_query(offers.note("nested"), Apple.filter(F.n == 12))
    async def twelve(_query: CallbackQuery) -> str:
        return "nested"

    @dates.callback_query(offers.note("dates"), Date.filter())
    async def date(_query: CallbackQuery) -> str:
        return "dates"

    @leftovers.callback_query(offers.note("left"))
    async def anything_left(_query: CallbackQuery) -> str:
        return "left"

    nested.include_routers(dates, leftovers)
    root.include_routers(apples, anything, cherries, nested)
    return root


async def handled_by(root: Router, query: CallbackQuery) -> object:
    return await root.propagate_event(update_type="callback_query", event=query)


async def test_a_press_reaches_the_handler_aiograms_walk_reaches():
    routed_offers, walked_offers = Offers(), Offers()
    routed, walked = build(routed_offers), build(walked_offers)
    route_presses_by_prefix(routed)
    for data in PRESSES:
        expected = await handled_by(walked, press(data))
        assert await handled_by(routed, press(data)) == expected, data
    assert await handled_by(routed, press("a:1")) == "apples"
    assert await handled_by(routed, press("a:12")) == "cherries"
    assert await handled_by(routed, press("c")) == "any"
    assert await handled_by(routed, press("d|4")) == "dates"
    assert await handled_by(routed, press("zz:1")) == "left"


async def test_routers_without_the_prefix_are_passed_by():
    offers = Offers()
    root = build(offers)
    route_presses_by_prefix(root)
    await handled_by(root, press("c:3"))
    # `apples` and `dates` have no "c" handler: they are not asked.
    assert offers.asked == ["any", "cherries", "cherries"]
    offers.asked.clear()
    await handled_by(root, press("zz:1"))
    # `nested` holds a catch-all, so it is asked; `dates` inside it is passed by.
    assert offers.asked == ["any", "nested", "left"]


async def test_the_prefixes_a_router_can_take():
    root = build(Offers())
    apples, anything, cherries, nested = root.sub_routers
    dates, leftovers = nested.sub_routers
    assert press_prefixes(apples) == {":": {"a"}}
    assert press_prefixes(anything) is None
    assert press_prefixes(cherries) == {":": {"a", "c"}}
    assert press_prefixes(dates) == {"|": {"d"}}
    assert press_prefixes(nested) is None  # a catch-all below it
    assert press_prefixes(leftovers) is None
    assert press_prefixes(Router(name="no presses")) == {}


async def test_without_a_catch_all_an_unknown_press_goes_nowhere():
    apples, cherries = Router(name="apples"), Router(name="cherries")

    @apples.callback_query(Apple.filter())
    async def apple(_query: CallbackQuery) -> str:
        return "apples"

    @cherries.callback_query(Cherry.filter())
    async def cherry(_query: CallbackQuery) -> str:
        return "cherries"

    root = Router(name="root")
    root.include_routers(apples, cherries)
    route_presses_by_prefix(root)
    assert await handled_by(root, press("c:2")) == "cherries"
    assert await handled_by(root, press("a:2")) == "apples"
    assert await handled_by(root, press("x:1")) is UNHANDLED


async def test_a_chat_type_filter_reads_a_message_and_a_press():
    private = ChatTypeIs("private")
    assert await private(press("a:1"))
    assert not await private(press("a:1", chat_type="group"))
    in_group = ChatTypeIs("group", "supergroup")
    assert await in_group(Message(message_id=1, date=SENT, chat=Chat(id=-5, type="supergroup")))
    assert not await in_group(Message(message_id=1, date=SENT, chat=Chat(id=7, type="private")))
    no_message = CallbackQuery(
        id="1", from_user=User(id=7, is_bot=False, first_name="Sam"), chat_instance="x", data="a"
    )
    assert not await private(no_message)
