"""Mail templates: ``<purpose>.subject.txt``, ``<purpose>.txt`` and ``<purpose>.html``.

The packaged templates are the defaults; a file of the same name in
``MAIL_TEMPLATES_DIR`` overrides one. HTML is autoescaped (a display name is user
input); text and subject are not.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    select_autoescape,
)

PURPOSES = ("verify", "reset", "email_change", "email_changed_notice")


class MailTemplates:
    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[FileSystemLoader | PackageLoader] = []
        if override_dir is not None:
            loaders.append(FileSystemLoader(str(override_dir)))
        loaders.append(PackageLoader("authgate.mail", "templates"))
        self._env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        # Every template parsed now: a broken override stops start-up, not a send.
        for purpose in PURPOSES:
            for suffix in ("subject.txt", "txt", "html"):
                self._env.get_template(f"{purpose}.{suffix}")

    def render(self, purpose: str, context: Mapping[str, object]) -> tuple[str, str, str]:
        """(subject, text, html) for ``purpose``."""
        subject = self._env.get_template(f"{purpose}.subject.txt").render(context)
        text = self._env.get_template(f"{purpose}.txt").render(context)
        html = self._env.get_template(f"{purpose}.html").render(context)
        # A header line: no newline may reach it (header injection).
        return " ".join(subject.split()), text, html
