"""Button presses routed by CallbackData prefix reach the same handler as aiogram's walk would."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, User

from bot.routing import PrefixRouter, press_prefixes


class Apple(CallbackData, prefix="a"):
    n: int


class Cherry(CallbackData, prefix="c"):
    n: int


def press(data: str) -> CallbackQuery:
    return CallbackQuery(
        id="1", from_user=User(id=7, is_bot=False, first_name="Sam"), chat_instance="x", data=data
    )


def build(root: Router) -> Router:
    """Order matters: `any` takes every press that `apples` (before it) leaves."""
    apples, anything, cherries = Router(name="apples"), Router(name="any"), Router(name="cherries")

    @apples.callback_query(Apple.filter(F.n < 10))
    async def small_apple(_query: CallbackQuery) -> str:
        return "apples"

    @anything.callback_query()
    async def any_press(_query: CallbackQuery) -> str:
        return "any"

    @cherries.callback_query(Apple.filter())
    async def cherry_apple(_query: CallbackQuery) -> str:
        return "cherries"

    @cherries.callback_query(Cherry.filter())
    async def cherry(_query: CallbackQuery) -> str:
        return "cherries"

    root.include_routers(apples, anything, cherries)
    return root


async def handled_by(root: Router, data: str) -> object:
    return await root.propagate_event(update_type="callback_query", event=press(data))


async def test_a_press_reaches_the_handler_aiograms_walk_reaches():
    indexed = build(PrefixRouter(name="indexed"))
    walked = build(Router(name="walked"))
    for data in ("a:1", "a:12", "c:3", "zz:1", "", "a", "a:x"):
        expected = await handled_by(walked, data)
        assert await handled_by(indexed, data) == expected, data
    assert await handled_by(indexed, "a:1") == "apples"
    assert await handled_by(indexed, "a:12") == "any"


async def test_the_index_knows_which_routers_can_take_a_prefix():
    root = build(PrefixRouter(name="root"))
    assert isinstance(root, PrefixRouter)
    apples, anything, cherries = root.sub_routers
    assert press_prefixes(apples) == {"a"}
    assert press_prefixes(anything) is None
    assert press_prefixes(cherries) == {"a", "c"}
    assert list(root.routers_for("a:1")) == [apples, anything, cherries]
    assert list(root.routers_for("c:1")) == [anything, cherries]
    assert list(root.routers_for("zz")) == [anything]


async def test_without_a_catch_all_an_unknown_press_goes_nowhere():
    apples, cherries = Router(name="apples"), Router(name="cherries")

    @apples.callback_query(Apple.filter())
    async def apple(_query: CallbackQuery) -> str:
        return "apples"

    @cherries.callback_query(Cherry.filter())
    async def cherry(_query: CallbackQuery) -> str:
        return "cherries"

    root = PrefixRouter(name="root")
    root.include_routers(apples, cherries)
    assert await handled_by(root, "c:2") == "cherries"
    assert await handled_by(root, "a:2") == "apples"
    assert list(root.routers_for("x:1")) == []
    assert await handled_by(root, "x:1") is UNHANDLED
