"""The export of one pupil's portfolio (the right of access): one zip with

- `index.html`: readable on a phone and printable; inline CSS, no scripts, no external
  resources, every value HTML-escaped; in the pupil's language (else the school's);
- `images/` and `files/`: the stored files themselves (images were stripped of all metadata
  when they came in, so nothing is left to clean);
- `data.json`: the same data, machine-readable (field names in English).

Rendering uses the gettext catalogs of the current locale: wrap calls in `use_locale`, or,
outside an update (the CLI), in `i18n.context()` and `i18n.use_locale()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime

from config.settings import SUPPORTED_LOCALES
from language.i18n import _, current_locale
from language.labels import role_label
from media.store import relative_path_for
from storage.models import Role
from storage.subject_data_types import (
    EvidenceItem,
    FeedbackItem,
    GoalRef,
    PupilData,
    StoredFileRef,
)

FORMAT_NAME = "leerling-portfolio-bot export"
FORMAT_VERSION = 1
# Telegram bots may send documents up to 50 MB; larger exports go through the CLI.
MAX_CHAT_BYTES = 50 * 1024 * 1024

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
  margin: 0 auto; max-width: 46rem; padding: 1rem; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .5rem; padding-bottom: .25rem;
  border-bottom: 2px solid #e3e7ee; }
h3 { font-size: 1.05rem; margin: 0 0 .25rem; }
p { margin: .25rem 0; }
.meta, .muted { color: #5b6470; font-size: .9rem; }
.notice { background: #f4f7fb; border-left: 4px solid #7a9cc6; padding: .5rem .75rem;
  margin: 1rem 0; }
.item { border: 1px solid #e3e7ee; border-radius: .5rem; padding: .75rem; margin: .75rem 0;
  break-inside: avoid; page-break-inside: avoid; }
.tag { display: inline-block; background: #eef2f7; border-radius: .75rem; padding: 0 .5rem;
  margin: 0 .25rem .25rem 0; font-size: .85rem; }
.private { border-color: #d9a441; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .75rem; margin: .25rem 0; }
dt { color: #5b6470; }
dd { margin: 0; }
img { max-width: 100%; height: auto; border-radius: .25rem; display: block; margin: .5rem 0; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; }
ul { padding-left: 1.25rem; margin: .25rem 0; }
table { border-collapse: collapse; width: 100%; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  img { max-height: 12cm; width: auto; }
  a { color: inherit; text-decoration: none; }
}
"""


# --- where files go in the zip ----------------------------------------------------------------


def zip_path(ref: StoredFileRef) -> str:
    """images/<sha256>.jpg for images, files/<sha256>.<ext> for the rest."""
    name = relative_path_for(ref.sha256, ref.mime_type).rsplit("/", 1)[-1]
    folder = "images" if ref.mime_type.startswith("image/") else "files"
    return f"{folder}/{name}"


def export_locale(data: PupilData) -> str:
    """The pupil's language, else the school's, when the export speaks it; else Dutch."""
    for candidate in (data.pupil.locale, data.school_locale):
        if candidate in SUPPORTED_LOCALES:
            return str(candidate)
    return SUPPORTED_LOCALES[0]


def export_filename(data: PupilData) -> str:
    """portfolio-<external id>-<date>.zip; the name is left out of the file name on purpose
    (file names end up in mail subjects and download lists)."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", data.pupil.external_id).strip("_") or "pupil"
    return f"portfolio-{safe}-{data.exported_at:%Y-%m-%d}.zip"


# --- JSON ------------------------------------------------------------------------------------


def render_json(data: PupilData) -> str:
    body = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **_jsonable(data)}
    return json.dumps(body, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def _jsonable(value: Any) -> Any:
    if isinstance(value, StoredFileRef):
        return {
            "path": zip_path(value),
            "sha256": value.sha256,
            "kind": value.kind,
            "mime_type": value.mime_type,
            "size_bytes": value.size_bytes,
            "width": value.width,
            "height": value.height,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# --- HTML ------------------------------------------------------------------------------------


class _Page:
    """Small helpers bound to the export's locale and the school's time zone."""

    def __init__(self, data: PupilData) -> None:
        self.data = data
        self.locale = current_locale()
        self.zone = ZoneInfo(data.school_timezone)

    def day(self, value: date) -> str:
        return escape(format_date(value, format="long", locale=self.locale))

    def moment(self, value: datetime) -> str:
        local = value.astimezone(self.zone)
        return escape(format_datetime(local, format="medium", locale=self.locale))

    @staticmethod
    def text(value: str | None) -> str:
        return f'<p class="text">{escape(value)}</p>' if value else ""

    @staticmethod
    def goal(goal: GoalRef) -> str:
        return escape(f"{goal.code} {goal.text}".strip())

    def goals(self, goals: Iterable[GoalRef]) -> str:
        return "".join(f'<span class="tag">{self.goal(goal)}</span>' for goal in goals)

    @staticmethod
    def fields(rows: Iterable[tuple[str, str | None]]) -> str:
        shown = [(label, value) for label, value in rows if value]
        if not shown:
            return ""
        inner = "".join(f"<dt>{escape(label)}</dt><dd>{value}</dd>" for label, value in shown)
        return f"<dl>{inner}</dl>"

    @staticmethod
    def file(ref: StoredFileRef, alt: str) -> str:
        path = escape(zip_path(ref), quote=True)
        if ref.mime_type.startswith("image/"):
            return f'<a href="{path}"><img src="{path}" alt="{escape(alt, quote=True)}"></a>'
        if ref.mime_type.startswith("audio/"):
            return f'<audio controls src="{path}"></audio> <a href="{path}">{path}</a>'
        return f'<p><a href="{path}">{path}</a></p>'


def render_html(data: PupilData) -> str:
    """The readable portfolio, in the current locale."""
    page = _Page(data)
    pupil = data.pupil
    title = _("Portfolio van {name}").format(name=escape(pupil.name))
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{escape(page.locale, quote=True)}">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{title}</h1>",
        '<p class="meta">'
        + _("{school} · gemaakt op {moment}").format(
            school=escape(pupil.school), moment=page.moment(data.exported_at)
        )
        + "</p>",
        '<p class="notice">'
        + escape(
            _(
                "Dit zijn alle gegevens die de portfolio-bot van de school over deze leerling "
                "bewaart. De foto's en bestanden staan in de mappen images en files, dezelfde "
                "gegevens staan ook in data.json."
            )
        )
        + " "
        + escape(
            _("Met privé-notities van leerkrachten.")
            if data.include_private_notes
            else _(
                "Privé-notities van leerkrachten staan er niet in; vraag de school ernaar als "
                "je ze wilt zien."
            )
        )
        + "</p>",
    ]
    sections: list[tuple[str, Callable[[_Page, PupilData], str]]] = [
        (_("Over de leerling"), _about),
        (_("Doelen"), _goals),
        (_("Waar sta je op je doelen"), _assessments),
        (_("Weekplannen"), _week_plans),
        (_("Reflecties"), _reflections),
        (_("Bewijsstukken"), _evidence),
        (_("Eigen plannen"), _plans),
        (_("Notities van leerkrachten"), _observations),
        (_("Gesprekken"), _talks),
    ]
    for heading, render in sections:
        body = render(page, data)
        parts.append(f"<section><h2>{escape(heading)}</h2>")
        parts.append(body or f'<p class="muted">{escape(_("Niets bewaard."))}</p>')
        parts.append("</section>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def _about(page: _Page, data: PupilData) -> str:
    pupil = data.pupil
    yes, no = _("ja"), _("nee")
    return page.fields(
        [
            (_("Naam"), escape(pupil.name)),
            (_("Leerlingnummer"), escape(pupil.external_id)),
            (_("School"), escape(pupil.school)),
            (_("Groepen"), escape(", ".join(pupil.groups))),
            (_("Ouders"), escape(", ".join(pupil.parents))),
            (_("Taal"), escape(pupil.locale or "")),
            (_("Gekoppeld aan Telegram"), escape(yes if pupil.has_telegram_account else no)),
            (_("In de bot sinds"), page.moment(pupil.created_at)),
            (_("Van school af"), page.day(pupil.left_school_on) if pupil.left_school_on else None),
        ]
    )


def _status(value: str) -> str:
    labels = {
        "proposed": _("voorgesteld"),
        "active": _("bezig"),
        "achieved": _("behaald"),
        "dropped": _("gestopt"),
        "rejected": _("niet gekozen"),
    }
    return labels.get(value, value)


def _chosen_by(value: str) -> str:
    return {"pupil": _("leerling"), "teacher": _("leerkracht")}.get(value, value)


def _goals(page: _Page, data: PupilData) -> str:
    out = []
    for item in data.goals:
        period = _("{period} ({start} – {end})").format(
            period=escape(item.period),
            start=page.day(item.period_starts_on),
            end=page.day(item.period_ends_on),
        )
        activities = "".join(f"<li>{escape(text)}</li>" for text in item.activities)
        out.append(
            '<div class="item">'
            f"<h3>{page.goal(item.goal)}</h3>"
            + page.fields(
                [
                    (_("Leerlijn"), escape(f"{item.goal_set} · {item.learning_line}")),
                    (_("Periode"), period),
                    (_("Stand"), escape(_status(item.status))),
                    (_("Gekozen door"), escape(_chosen_by(item.chosen_by))),
                    (_("Niveau"), escape(item.level_aimed or "")),
                ]
            )
            + (f"<p>{escape(_('Activiteiten'))}:</p><ul>{activities}</ul>" if activities else "")
            + "</div>"
        )
    return "".join(out)


def _assessments(page: _Page, data: PupilData) -> str:
    out = []
    for item in data.assessments:
        who = _chosen_by(item.by) + (f" ({item.assessor})" if item.assessor else "")
        out.append(
            '<div class="item">'
            f"<h3>{page.goal(item.goal)}</h3>"
            + page.fields(
                [
                    (_("Niveau"), escape(item.level or "")),
                    (_("Door"), escape(who)),
                    (_("Wanneer"), page.moment(item.assessed_at)),
                ]
            )
            + page.text(item.note)
            + "</div>"
        )
    return "".join(out)


def _week_plans(page: _Page, data: PupilData) -> str:
    out = []
    for plan in data.week_plans:
        rows = "".join(
            f"<li>{'✅ ' if entry.done_at else '⬜ '}{escape(entry.text)}"
            f' <span class="muted">({page.goal(entry.goal)})</span></li>'
            for entry in plan.items
        )
        heading = _("Week van {day}").format(day=page.day(plan.week_start))
        out.append(f'<div class="item"><h3>{heading}</h3><ul>{rows}</ul></div>')
    return "".join(out)


def _scale(value: int | None) -> str | None:
    return f"{value}/4" if value is not None else None


def _reflections(page: _Page, data: PupilData) -> str:
    out = []
    for item in data.reflections:
        out.append(
            '<div class="item">'
            f"<h3>{page.day(item.on_date)}</h3>"
            + page.goals(item.goals)
            + page.fields(
                [
                    (_("Ander werk"), escape(item.other_work or "")),
                    (_("Hoe het ging"), _scale(item.how_it_went)),
                    (_("Inzet"), _scale(item.effort)),
                    (_("Kwaliteit"), _scale(item.quality)),
                    (_("Hoe je je voelde"), _scale(item.wellbeing)),
                    (_("Motivatie"), _scale(item.motivation)),
                    (
                        _("Minuten"),
                        str(item.minutes) if item.minutes is not None else None,
                    ),
                    (_("Volgende stap"), escape(item.next_step or "")),
                ]
            )
            + page.text(item.text)
            + (page.file(item.voice, _("Ingesproken bericht")) if item.voice else "")
            + "</div>"
        )
    return "".join(out)


def _kind(value: str) -> str:
    return {
        "photo": _("foto"),
        "document": _("document"),
        "voice": _("ingesproken bericht"),
        "video": _("video"),
    }.get(value, value)


def _feedback(feedback: Iterable[FeedbackItem]) -> str:
    rows = []
    for item in feedback:
        try:
            who = role_label(Role(item.author_role))
        except ValueError:
            who = item.author_role
        if item.top:
            rows.append(
                f"<li>👍 {escape(item.top)} <span class='muted'>({escape(who)})</span></li>"
            )
        if item.tip:
            rows.append(
                f"<li>💡 {escape(item.tip)} <span class='muted'>({escape(who)})</span></li>"
            )
    if not rows:
        return ""
    return f"<p>{escape(_('Tops & tips'))}:</p><ul>{''.join(rows)}</ul>"


def _evidence(page: _Page, data: PupilData) -> str:
    out = []
    for item in data.evidence:
        feedback = [f for f in data.feedback if f.target == "evidence" and f.target_id == item.id]
        out.append(_evidence_item(page, item, feedback))
    return "".join(out)


def _evidence_item(page: _Page, item: EvidenceItem, feedback: list[FeedbackItem]) -> str:
    yes, no = _("ja"), _("nee")
    alt = item.caption or _kind(item.kind)
    return (
        '<div class="item">'
        f"<h3>{page.moment(item.created_at)} · {escape(_kind(item.kind))}</h3>"
        + "".join(page.file(ref, alt) for ref in item.files)
        + page.text(item.caption)
        + page.goals(item.goals)
        + page.fields(
            [
                (_("Buiten school"), escape(yes if item.outside_school else no)),
                (_("Gedeeld met ouders"), escape(yes if item.shared_with_parents else no)),
            ]
        )
        + _feedback(feedback)
        + "</div>"
    )


def _plans(page: _Page, data: PupilData) -> str:
    out = []
    for plan in data.learning_plans:
        steps = "".join(
            "<li>"
            + escape(step.what)
            + "".join(f" · {escape(part)}" for part in (step.who, step.when) if part)
            + "</li>"
            for step in plan.steps
        )
        feedback = [f for f in data.feedback if f.target == "plan" and f.target_id == plan.id]
        out.append(
            '<div class="item">'
            f"<h3>{escape(plan.idea)}</h3>"
            + page.fields(
                [
                    (_("Doel"), page.goal(plan.goal) if plan.goal else None),
                    (_("Waarom"), escape(plan.motivation or "")),
                    (_("Wat ik al weet"), escape(plan.prior_knowledge or "")),
                    (_("Wat ik daarna kan"), escape(plan.outcome or "")),
                    (_("Wat ik nodig heb"), escape(plan.needs or "")),
                    (_("Laatst veranderd"), page.moment(plan.updated_at)),
                ]
            )
            + (f"<p>{escape(_('Stappen'))}:</p><ol>{steps}</ol>" if steps else "")
            + _feedback(feedback)
            + "</div>"
        )
    goal_feedback = [f for f in data.feedback if f.target == "goal"]
    if goal_feedback:
        out.append(f'<div class="item">{_feedback(goal_feedback)}</div>')
    return "".join(out)


def _observations(page: _Page, data: PupilData) -> str:
    out = []
    for item in data.observations:
        tags = "".join(f'<span class="tag">#{escape(tag)}</span>' for tag in item.tags)
        marker = f" · {escape(_('privé'))}" if item.is_private else ""
        out.append(
            f'<div class="item{" private" if item.is_private else ""}">'
            f"<h3>{page.moment(item.created_at)}{marker}</h3>"
            + page.fields(
                [
                    (_("Door"), escape(item.author or "")),
                    (_("Doel"), page.goal(item.goal) if item.goal else None),
                ]
            )
            + page.text(item.text)
            + tags
            + (page.file(item.photo, _("Foto bij de notitie")) if item.photo else "")
            + (page.file(item.voice, _("Ingesproken bericht")) if item.voice else "")
            + "</div>"
        )
    return "".join(out)


def _talk_kind(value: str) -> str:
    return {
        "learning": _("leergesprek"),
        "coach": _("coachgesprek"),
        "tripartite": _("driehoeksgesprek"),
    }.get(value, value)


def _talk_status(value: str) -> str:
    return {
        "planned": _("gepland"),
        "held": _("gehouden"),
        "cancelled": _("afgezegd"),
    }.get(value, value)


def _preparation_label(key: str) -> str:
    return {
        "proud": _("Waar ben je trots op?"),
        "went_well": _("Wat ging goed?"),
        "hard": _("Wat vond je moeilijk?"),
        "next": _("Wat wil je hierna leren?"),
    }.get(key, key)


def _talks(page: _Page, data: PupilData) -> str:
    out = []
    for talk in data.talks:
        preparation = page.fields(
            (_preparation_label(key), escape(str(value)))
            for key, value in talk.preparation.items()
            if value not in (None, "")
        )
        out.append(
            '<div class="item">'
            f"<h3>{escape(_talk_kind(talk.kind).capitalize())} · "
            f"{page.moment(talk.scheduled_at)}</h3>"
            + page.fields(
                [
                    (_("Stand"), escape(_talk_status(talk.status))),
                    (_("Plaats"), escape(talk.place or "")),
                    (
                        _("Duur"),
                        escape(_("{minutes} minuten").format(minutes=talk.duration_minutes)),
                    ),
                    (_("Georganiseerd door"), escape(talk.organiser or "")),
                    (_("Met"), escape(", ".join(talk.participants))),
                ]
            )
            + (f"<p>{escape(_('Voorbereiding'))}:</p>{preparation}" if preparation else "")
            + (f"<p>{escape(_('Aantekeningen'))}:</p>{page.text(talk.notes)}" if talk.notes else "")
            + (
                f"<p>{escape(_('Afspraken'))}:</p>{page.text(talk.agreements)}"
                if talk.agreements
                else ""
            )
            + "</div>"
        )
    return "".join(out)


# --- the zip ---------------------------------------------------------------------------------


def render_export(data: PupilData) -> tuple[str, str]:
    """(index.html, data.json) in the current locale."""
    return render_html(data), render_json(data)


def write_zip(
    target: BinaryIO, data: PupilData, *, html: str, json_text: str, media_dir: Path
) -> list[str]:
    """Write the archive; returns the zip paths of files missing from the media directory
    (the export still goes out: the rest of the data is no less the pupil's)."""
    missing: list[str] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", html)
        archive.writestr("data.json", json_text)
        for ref in data.files:
            source = Path(media_dir) / relative_path_for(ref.sha256, ref.mime_type)
            if not source.is_file():
                missing.append(zip_path(ref))
                continue
            # JPEG and PDF hardly shrink: stored as they are, which is faster.
            archive.write(source, zip_path(ref), compress_type=zipfile.ZIP_STORED)
    return missing


async def export_bytes(data: PupilData, *, media_dir: Path) -> bytes:
    """The zip in memory (for sending in the chat); rendered in the current locale."""
    html, json_text = render_export(data)

    def build() -> bytes:
        buffer = io.BytesIO()
        write_zip(buffer, data, html=html, json_text=json_text, media_dir=media_dir)
        return buffer.getvalue()

    return await asyncio.to_thread(build)


async def export_to_file(data: PupilData, *, media_dir: Path, target: Path) -> list[str]:
    """Write the zip to `target` (owner-readable only: it is personal data), atomically."""
    html, json_text = render_export(data)

    def build() -> list[str]:
        descriptor, name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(descriptor, "wb") as file:
                missing = write_zip(file, data, html=html, json_text=json_text, media_dir=media_dir)
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
        return missing

    return await asyncio.to_thread(build)
