"""The class overview pictures of docs/class-overview.md, for docs/screenshots/.

    .venv/bin/python scripts/render_class_overview.py [--out docs/screenshots] [--locale nl]

Generates a school year for a class of 30 (bench/_schoolyear.py, the data of
`python -m bench overview`) in a temporary SQLite database, asks storage for the overview of
the last school day as a teacher would, draws it as the bot sends it and writes
class-overview.png (page 1) and class-overview-2.png (page 2). Run it again whenever the
picture changes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from datetime import date  # noqa: E402

from babel.dates import format_date  # noqa: E402

from bench._schoolyear import generate_school_year  # noqa: E402
from conversations.class_overview import picture_texts  # noqa: E402
from language.i18n import _, load_i18n  # noqa: E402
from services.pictures.class_overview import draw_class_overview_pages  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import create_engine, create_sessionmaker  # noqa: E402
from storage.overview import ClassOverview, class_overview  # noqa: E402


async def overview_of_a_year() -> tuple[ClassOverview, date]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'year.db'}"
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            year = await generate_school_year(create_sessionmaker(engine))
            async with create_sessionmaker(engine)() as session:
                overview = await class_overview(
                    session, teacher_id=year.teacher_id, group_id=year.group_id, today=year.last_day
                )
        finally:
            await engine.dispose()
    assert overview is not None
    return overview, year.last_day


def render(out: Path, locale: str) -> list[Path]:
    overview, today = asyncio.run(overview_of_a_year())
    i18n = load_i18n()
    with i18n.context(), i18n.use_locale(locale):
        when = format_date(today, format="d MMMM y", locale=locale)
        pages = draw_class_overview_pages(
            overview.lines,
            overview.pupils,
            picture_texts(overview, when),
            page_label=_("blad {page} van {pages}"),
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for number, page in enumerate(pages, start=1):
        path = out / ("class-overview.png" if number == 1 else f"class-overview-{number}.png")
        path.write_bytes(page.png)
        written.append(path)
        print(f"{path}  {page.width}x{page.height}  {len(page.png) / 1024:.0f} KiB")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--locale", default="nl")
    args = parser.parse_args()
    render(args.out, args.locale)


if __name__ == "__main__":
    main()
