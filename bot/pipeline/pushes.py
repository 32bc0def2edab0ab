"""Pushes from other platforms (a shop's order webhook) kept in the same durable inbox as
WeCom's callbacks: verified and stored as JSON before the 200, processed by the worker,
deduplicated by a key the receiver chooses, handled in order per topic.

WeCom callbacks are XML and become typed events through the registry in `bot/wecom/events`;
a push is a `PushedEvent` carrying its JSON body, routed by its source like any event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bot.pipeline.intake import InboxRow
from bot.wecom.events import Event, parse_event
from bot.wecom.xmlparse import parse_xml

PUSH_SOURCES = frozenset({"orders"})  # inbox sources whose payload is a JSON push


@dataclass(frozen=True)
class PushedEvent(Event):
    """One push: `topic` names what it is about (one order), `body` is what the receiver
    kept of it after verifying it."""

    topic: str = ""
    body: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def kind(self) -> str:
        return f"Pushed:{self.source}"

    @property
    def subject(self) -> str:
        return self.topic


def push_row(source: str, dedup_key: str, topic: str, body: dict[str, Any]) -> InboxRow:
    """The inbox row for a verified push."""
    if source not in PUSH_SOURCES:
        msg = f"{source!r} is not a push source ({', '.join(sorted(PUSH_SOURCES))})"
        raise ValueError(msg)
    return InboxRow(source=source, dedup_key=dedup_key[:128], kind=f"Pushed:{source}",
                    subject=topic[:160], payload=json.dumps(
                        {"topic": topic, "body": body}, ensure_ascii=False))


def decode_row(source: str, payload: str, inbox_id: int) -> Event:
    """An inbox row's event: a push from its JSON, a WeCom or OA callback from its XML."""
    if source in PUSH_SOURCES:
        data = json.loads(payload)
        return PushedEvent(source=source, from_user=source, to_user="", create_time=0,
                           raw={}, inbox_id=inbox_id, topic=str(data["topic"]),
                           body=dict(data["body"]))
    return parse_event(parse_xml(payload), source, inbox_id=inbox_id)
