"""Replies: rendered from jinja2 templates, split to fit WeCom's 2048-byte message limit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

if TYPE_CHECKING:
    from bot.wecom import WeComClient

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_MESSAGE_BYTES = 2048


@dataclass(frozen=True)
class TextCard:
    """A text card (title, description, link) for notices that lead somewhere."""

    title: str
    description: str
    url: str
    button: str = "详情"


@dataclass(frozen=True)
class Reply:
    """What a command answers: text or a template with data (markdown or text), or a card."""

    text: str | None = None
    template: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    markdown: bool = False
    card: TextCard | None = None


def make_environment(directory: Path = TEMPLATES_DIR) -> Environment:
    env = Environment(loader=FileSystemLoader(directory), undefined=StrictUndefined,
                      autoescape=False, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=False)
    env.filters["yuan"] = lambda fen: f"{int(fen) / 100:,.2f}"
    return env


class Renderer:
    """Renders templates by name; one Environment for the process."""

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or make_environment()

    def render(self, template: str, **data: Any) -> str:
        return self.env.get_template(template).render(**data).strip()

    def reply_text(self, reply: Reply | str) -> str:
        if isinstance(reply, str):
            return reply
        if reply.template:
            return self.render(reply.template, **reply.data)
        return reply.text or ""


def split_message(text: str, limit: int = MAX_MESSAGE_BYTES) -> list[str]:
    """Split on line breaks into parts of at most `limit` UTF-8 bytes, never mid-character.

    A single line longer than the limit is cut between characters.
    """
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate.encode()) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        current = ""
        while len(line.encode()) > limit:
            cut = _longest_prefix(line, limit)
            parts.append(line[:cut])
            line = line[cut:]
        current = line
    if current or not parts:
        parts.append(current)
    return parts


def _longest_prefix(line: str, limit: int) -> int:
    """How many characters of `line` fit in `limit` bytes."""
    used = 0
    for index, char in enumerate(line):
        used += len(char.encode())
        if used > limit:
            return index
    return len(line)


async def send_reply(wecom: WeComClient, renderer: Renderer, userid: str,
                     reply: Reply | str) -> None:
    """Render and send a reply to one member, in as many messages as it takes."""
    if isinstance(reply, Reply) and reply.card is not None:
        card = reply.card
        await wecom.send_textcard(userid, card.title[:128], card.description[:512], card.url,
                                  card.button[:4])
        if not (reply.text or reply.template):
            return
    text = renderer.reply_text(reply)
    markdown = isinstance(reply, Reply) and reply.markdown
    for part in split_message(text):
        if markdown:
            await wecom.send_markdown(userid, part)
        else:
            await wecom.send_text(userid, part)
