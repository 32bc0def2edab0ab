"""Typed callback events, parsed from the decrypted XML.

wechatpy 1.8.18 does not know `change_external_contact` and friends, so we parse the few
shapes scrmbot acts on ourselves and keep everything else as `UnknownEvent` (stored, logged,
never dropped).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bot.xmlparse import XmlValue, text_field

CHANGE_TYPES = frozenset({
    "add_external_contact", "add_half_external_contact", "edit_external_contact",
    "del_external_contact", "del_follow_user", "transfer_fail",
})


@dataclass(frozen=True)
class Event:
    """Fields common to every callback."""

    source: str  # "wecom" or "wechat"
    from_user: str
    to_user: str
    create_time: int
    raw: dict[str, XmlValue] = field(repr=False, compare=False)

    @property
    def kind(self) -> str:
        """A stable name for logs, the inbox and metrics."""
        return type(self).__name__


@dataclass(frozen=True)
class TextMessage(Event):
    msg_id: str = ""
    content: str = ""
    agent_id: str = ""


@dataclass(frozen=True)
class EnterAgentEvent(Event):
    agent_id: str = ""


@dataclass(frozen=True)
class ExternalContactChange(Event):
    change_type: str = ""
    user_id: str = ""
    external_user_id: str = ""
    state: str | None = None
    welcome_code: str | None = None
    source_detail: str | None = None  # <Source>, e.g. DELETE_BY_TRANSFER
    fail_reason: str | None = None

    @property
    def kind(self) -> str:
        return f"ExternalContactChange:{self.change_type}"


@dataclass(frozen=True)
class ExternalTagChange(Event):
    tag_id: str = ""
    tag_type: str = ""  # tag | tag_group
    change_type: str = ""  # create | update | delete | shuffle
    strategy_id: str = ""


@dataclass(frozen=True)
class OASubscribe(Event):
    """An Official Account follow; `scene` is the channel QR code's scene_str, if any."""

    scene: str | None = None


@dataclass(frozen=True)
class OAScan(Event):
    """An existing follower scanned a parametric QR code."""

    scene: str = ""


@dataclass(frozen=True)
class OAUnsubscribe(Event):
    pass


@dataclass(frozen=True)
class UnknownEvent(Event):
    msg_type: str = ""
    event: str = ""

    @property
    def kind(self) -> str:
        suffix = f":{self.event}" if self.event else ""
        return f"Unknown:{self.msg_type}{suffix}"


def _optional(fields: dict[str, XmlValue], name: str) -> str | None:
    return text_field(fields, name) if name in fields else None


def parse_event(fields: dict[str, XmlValue], source: str = "wecom") -> Event:
    """Turn a decrypted callback's fields into a typed event. Never raises on unknown shapes."""
    try:
        create_time = int(text_field(fields, "CreateTime") or 0)
    except ValueError:
        create_time = 0
    base: dict[str, Any] = {
        "source": source,
        "from_user": text_field(fields, "FromUserName"),
        "to_user": text_field(fields, "ToUserName"),
        "create_time": create_time,
        "raw": fields,
    }
    msg_type = text_field(fields, "MsgType").lower()
    event = text_field(fields, "Event")
    if msg_type == "text":
        return TextMessage(**base, msg_id=text_field(fields, "MsgId"),
                           content=text_field(fields, "Content"),
                           agent_id=text_field(fields, "AgentID"))
    if msg_type == "event":
        lowered = event.lower()
        if lowered == "change_external_contact":
            return ExternalContactChange(
                **base,
                change_type=text_field(fields, "ChangeType"),
                user_id=text_field(fields, "UserID"),
                external_user_id=text_field(fields, "ExternalUserID"),
                state=_optional(fields, "State"),
                welcome_code=_optional(fields, "WelcomeCode"),
                source_detail=_optional(fields, "Source"),
                fail_reason=_optional(fields, "FailReason"),
            )
        if lowered == "change_external_tag":
            return ExternalTagChange(**base, tag_id=text_field(fields, "Id"),
                                     tag_type=text_field(fields, "TagType"),
                                     change_type=text_field(fields, "ChangeType"),
                                     strategy_id=text_field(fields, "StrategyId"))
        if lowered == "enter_agent":
            return EnterAgentEvent(**base, agent_id=text_field(fields, "AgentID"))
        if source == "wechat" and lowered == "subscribe":
            key = text_field(fields, "EventKey")
            scene = key.removeprefix("qrscene_") if key.startswith("qrscene_") else None
            return OASubscribe(**base, scene=scene or None)
        if source == "wechat" and lowered == "scan":
            return OAScan(**base, scene=text_field(fields, "EventKey"))
        if source == "wechat" and lowered == "unsubscribe":
            return OAUnsubscribe(**base)
    return UnknownEvent(**base, msg_type=msg_type, event=event)


def dedup_key(source: str, fields: dict[str, XmlValue], plaintext: bytes) -> str:
    """MsgId for messages; a hash of the decrypted content for events.

    Never FromUserName+CreateTime: contact events all come from `sys` and several customers
    scan in the same second.
    """
    msg_id = text_field(fields, "MsgId")
    if msg_id:
        return f"{source}:msg:{msg_id}"
    return f"{source}:sha256:{hashlib.sha256(plaintext).hexdigest()}"


def subject_of(event: Event) -> str:
    """What an event is about, so the worker handles one subject's events in order."""
    if isinstance(event, ExternalContactChange):
        return f"ext:{event.external_user_id}"
    return f"user:{event.from_user}"
