"""Replies: rendered from jinja2 templates, split to fit WeCom's 2048-byte message limit.

A reply is never sent from here: the chat runner writes it to the outbox in the command's own
transaction, so a failed delivery is retried without running the command again.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
MAX_MESSAGE_BYTES = 2048


CARD_DESCRIPTION_CHARS = 512  # WeCom's limit for a text card's description
CARD_STYLES = ("gray", "normal", "highlight")


def card_description(*lines: tuple[str, str]) -> str:
    """A text card's description from (style, text) lines, each a `<div class=…>`.

    The text is escaped, so whatever a customer or staff member typed (a name, a summary, a
    tag) cannot add markup of its own, such as a fake highlighted line; it is shortened, never
    the markup, to fit WeCom's 512 characters.
    """
    texts = [text for _, text in lines]
    for style, _ in lines:
        if style not in CARD_STYLES:
            msg = f"unknown card style {style!r}"
            raise ValueError(msg)

    def build() -> str:
        return "".join(f'<div class="{style}">{html.escape(text)}</div>'
                       for (style, _), text in zip(lines, texts, strict=True))

    description = build()
    while len(description) > CARD_DESCRIPTION_CHARS:
        longest = max(range(len(texts)), key=lambda i: len(texts[i]))
        if len(texts[longest]) <= 1:
            break
        excess = len(description) - CARD_DESCRIPTION_CHARS
        texts[longest] = texts[longest][:max(1, len(texts[longest]) - max(excess, 1) - 1)] + "…"
        description = build()
    return description


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


def reply_messages(renderer: Renderer, reply: Reply | str) -> list[tuple[str, dict[str, Any]]]:
    """The app messages (msgtype, content) that carry a reply: its card, then its text split
    to fit 2048 bytes, never inside a character."""
    messages: list[tuple[str, dict[str, Any]]] = []
    if isinstance(reply, Reply) and reply.card is not None:
        card = reply.card
        messages.append(("textcard", {"title": card.title[:128],
                                      "description": card.description,
                                      "url": card.url, "btntxt": card.button[:4]}))
        if not (reply.text or reply.template):
            return messages
    text = renderer.reply_text(reply)
    msgtype = "markdown" if isinstance(reply, Reply) and reply.markdown else "text"
    messages += [(msgtype, {"content": part}) for part in split_message(text)]
    return messages
