"""Names of the bot's own things in the reader's language, for the chat and for documents alike."""

from __future__ import annotations

from language.i18n import _
from storage.models import Role


def role_label(role: Role) -> str:
    labels = {
        Role.PUPIL: _("leerling"),
        Role.TEACHER: _("leerkracht"),
        # parents
        Role.PARENT: _("ouder"),
        Role.ADMIN: _("beheerder"),
    }
    return labels[role]
