"""Filling translated templates safely.

Messages are sent as HTML, so every value put into a template is escaped: a pupil called
"<b>Sam</b>" is shown as typed and cannot change the layout of anyone's message.
"""

from __future__ import annotations

from html import escape

from language.i18n import _


def fill(template: str, **values: object) -> str:
    return template.format(**{name: escape(str(value)) for name, value in values.items()})


def bold(value: object) -> str:
    return f"<b>{escape(str(value))}</b>"


def names_list(names: list[str]) -> str:
    """ "Sam", "Sam en Noor", "Sam, Noor en Daan" (and the English equivalent)."""
    if len(names) <= 1:
        return "".join(names)
    # parents
    return _("{first} en {last}").format(first=", ".join(names[:-1]), last=names[-1])
