"""The weekly summary of a demo child as a parent gets it, rendered into docs/ for nl and ar.

    .venv/bin/python scripts/render_parent_summary.py [--out docs] [--child P1]

Seeds the demo school into a temporary database (with its photos of work), composes the
summary with the very code the bot sends on Friday and on /overzicht, and writes:

* docs/parent-summary.md: the text in Dutch and in Arabic (right-to-left), with the pictures;
* docs/parent-summary-nl.png, docs/parent-summary-ar.png: the progress picture;
* docs/parent-summary-work-N.jpg: the photos the child shared (the album).

Nothing of data/ is touched. Run it again when the summary changes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
import tempfile
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiogram.methods import SendMediaGroup, SendMessage, SendPhoto, TelegramMethod  # noqa: E402
from aiogram.types import BufferedInputFile  # noqa: E402
from sqlalchemy import select  # noqa: E402

from conversations.parent_summary import summary_messages, summary_week  # noqa: E402
from language.i18n import load_i18n, use_locale  # noqa: E402
from services.demo_school import seed_demo_school  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, create_sessionmaker  # noqa: E402
from storage.models import Guardianship, Person, Talk, TalkKind, TalkStatus  # noqa: E402

LOCALES = ("nl", "ar")
ZONE = ZoneInfo("Europe/Amsterdam")


def _bytes(file: Any) -> bytes:
    assert isinstance(file, BufferedInputFile)
    return file.data


def _markdown(html: str) -> str:
    """Telegram's HTML (b, i) as Markdown; line breaks kept."""
    text = html.replace("*", "\\*")
    text = re.sub(r"</?b>", "**", text)
    text = re.sub(r"</?i>", "*", text)
    return "  \n".join(text.split("\n"))


async def render(out: Path, child: str) -> list[Path]:
    written: list[Path] = []
    i18n = load_i18n()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}"
        media = Path(folder) / "media"
        await migrate.upgrade(url)
        engine = create_engine(url)
        now = datetime.now(UTC)
        today = now.astimezone(ZONE).date()
        try:
            sessions = create_sessionmaker(engine)
            async with sessions() as session, session.begin():
                # A throwaway school: its invite codes are never used, so any key will do.
                seed = await seed_demo_school(
                    session, today=today, invite_secret=secrets.token_bytes(32), media_dir=media
                )
                pupil = await session.scalar(
                    select(Person).where(
                        Person.school_id == seed.school_id, Person.external_id == child
                    )
                )
                assert pupil is not None, f"no demo pupil {child}"
                parent_id = await session.scalar(
                    select(Guardianship.parent_id).where(Guardianship.pupil_id == pupil.id)
                )
                assert parent_id is not None
                if await session.scalar(select(Talk.id).where(Talk.pupil_id == pupil.id)) is None:
                    # A driehoeksgesprek next week, so the summary shows an upcoming talk.
                    day = today + timedelta(days=7 - today.weekday() + 3)
                    session.add(
                        Talk(
                            kind=TalkKind.TRIPARTITE,
                            pupil_id=pupil.id,
                            scheduled_at=datetime.combine(day, time(14), tzinfo=ZONE),
                            status=TalkStatus.PLANNED,
                        )
                    )
            sections: list[str] = []
            album_written = False
            for locale in LOCALES:
                async with sessions() as session:
                    with i18n.context(), use_locale(locale):
                        methods: list[TelegramMethod[Any]] = await summary_messages(
                            session,
                            parent_id=parent_id,
                            pupil_id=pupil.id,
                            week_start=summary_week(today),
                            chat_id=0,
                            now=now,
                            media_dir=media,
                        )
                text = next(m.text for m in methods if isinstance(m, SendMessage))
                photos = [m for m in methods if isinstance(m, SendPhoto)]
                picture = photos[-1]
                picture_path = out / f"parent-summary-{locale}.png"
                picture_path.write_bytes(_bytes(picture.photo))
                written.append(picture_path)
                work: list[tuple[bytes, str | None]] = []
                for method in methods:
                    if isinstance(method, SendMediaGroup):
                        work += [(_bytes(item.media), item.caption) for item in method.media]
                    elif isinstance(method, SendPhoto) and method is not picture:
                        work.append((_bytes(method.photo), method.caption))
                album = []
                for index, (data, caption) in enumerate(work, start=1):
                    path = out / f"parent-summary-work-{index}.jpg"
                    if not album_written:
                        path.write_bytes(data)
                        written.append(path)
                    alt = (caption or "").replace("\n", " · ")
                    album.append(f"![{alt}]({path.name})")
                album_written = True
                body = _markdown(text)
                if locale == "ar":
                    body = f'<div dir="rtl" lang="ar">\n\n{body}\n\n</div>'
                sections.append(
                    "\n\n".join(
                        [
                            f"## {'Nederlands' if locale == 'nl' else 'العربية (Arabic)'}",
                            body,
                            " ".join(album),
                            f"![{picture.caption or ''}]({picture_path.name})",
                        ]
                    )
                )
        finally:
            await engine.dispose()
    markdown = out / "parent-summary.md"
    markdown.write_text(
        "# The weekly summary for parents\n\n"
        "What a parent of a demo child receives on Friday (or with /overzicht): the text, the "
        "album of work the child shared, and the progress picture with the buttons for tops "
        "& tips. Rendered by `scripts/render_parent_summary.py` from the demo school; goal "
        "texts and the teacher's note stay as the school wrote them.\n\n"
        + "\n\n".join(sections)
        + "\n",
        encoding="utf-8",
    )
    written.append(markdown)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--child", default="P1", help="external id of a demo pupil")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(render(args.out, args.child)):
        print(path)


if __name__ == "__main__":
    main()
