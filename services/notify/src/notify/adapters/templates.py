"""Messages from Jinja2 templates: one file per event type and channel
(``templates/<channel>/<event>.j2``, e.g. ``templates/email/dossier.received.j2``), in Vietnamese.
An e-mail template defines the blocks ``subject``, ``text`` and ``html``; an SMS template the
block ``text``. StrictUndefined: a variable the template uses and the context lacks raises, so a
message with a hole in it is never sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from motcua.vntext import day, vnd, when
from notify.domain.delivery import Rendered

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _moment(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    raise ValueError(f"not a date and time: {value!r}")


class JinjaRenderer:
    """Two environments on the same files: the ``html`` block is rendered with autoescaping (an
    applicant's name cannot inject markup), ``subject`` and ``text`` without (plain text)."""

    def __init__(self, directory: Path = TEMPLATES):
        self.directory = directory
        self._plain = self._environment(autoescape=False)
        self._html = self._environment(autoescape=True)

    def _environment(self, autoescape: bool) -> Environment:
        env = Environment(loader=FileSystemLoader(str(self.directory)), undefined=StrictUndefined,
                          autoescape=autoescape, trim_blocks=True, lstrip_blocks=True)
        env.filters["vn_datetime"] = lambda v: when(_moment(v))
        env.filters["vn_date"] = lambda v: f"ngày {day(_moment(v))}"
        env.filters["vnd"] = vnd
        return env

    def templates(self) -> list[tuple[str, str]]:
        """(channel, event name) of every template there is."""
        return sorted((p.parent.name, p.name.removesuffix(".j2")) for p in self.directory.glob("*/*.j2"))

    def render(self, event_name: str, channel: str, context: Mapping[str, Any]) -> Rendered:
        name = f"{channel}/{event_name}.j2"
        blocks: dict[str, str] = {}
        for env, wanted in ((self._plain, ("subject", "text")), (self._html, ("html",))):
            template = env.get_template(name)
            ctx = template.new_context(dict(context))
            for block in wanted:
                if block in template.blocks:
                    blocks[block] = "".join(template.blocks[block](ctx)).strip()
        if "text" not in blocks:
            raise ValueError(f"template {name} has no text block")
        return Rendered(subject=" ".join(blocks.get("subject", "").split()), text=blocks["text"],
                        html=blocks.get("html", ""))
