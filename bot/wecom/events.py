"""Typed callback events, parsed from the decrypted XML through a registry.

Each event class names the callback it stands for (`msg_type`, `event`, and for events that
exist only on one side, `source`) and which XML tag fills each field; registering happens in
`__init_subclass__`, as wechatpy's `EVENT_TYPES` does, so parsing is one lookup instead of an
if-chain. wechatpy 1.8.18 does not know `change_external_contact` and friends, hence our own.
Anything unregistered becomes an `UnknownEvent`: stored, logged, never dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bot.wecom.xmlparse import XmlValue, text_field

# (source or "*", msg_type, event) → the class that parses it.
_REGISTRY: dict[tuple[str, str, str], type[Event]] = {}


@dataclass(frozen=True)
class Event:
    """Fields common to every callback. `inbox_id` is the inbox row it arrived as (0 before it
    was stored), so effects can be keyed by it."""

    source: str  # "wecom" or "wechat"
    from_user: str
    to_user: str
    create_time: int
    raw: dict[str, XmlValue] = field(repr=False, compare=False)
    inbox_id: int = 0

    # Class-level registration data: the XML tag that fills each field of a subclass.
    xml_fields: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, *, msg_type: str = "", event: str = "", source: str = "*",
                          **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if msg_type:
            key = (source, msg_type, event.lower())
            if key in _REGISTRY:
                msg = f"{cls.__name__}: callback {key} is registered by {_REGISTRY[key].__name__}"
                raise TypeError(msg)
            _REGISTRY[key] = cls

    @property
    def kind(self) -> str:
        """A stable name for logs, the inbox and metrics."""
        return type(self).__name__

    @property
    def subject(self) -> str:
        """What the event is about, so the worker handles one subject's events in order."""
        return f"user:{self.from_user}"

    @classmethod
    def extra_fields(cls, fields: dict[str, XmlValue]) -> dict[str, Any]:
        """The subclass's own fields, read from the XML by `xml_fields` (absent tags → "")."""
        return {name: text_field(fields, tag) for name, tag in cls.xml_fields.items()}


def _optional(fields: dict[str, XmlValue], name: str) -> str | None:
    return text_field(fields, name) if name in fields else None


@dataclass(frozen=True)
class TextMessage(Event, msg_type="text"):
    msg_id: str = ""
    content: str = ""
    agent_id: str = ""

    xml_fields: ClassVar[dict[str, str]] = {
        "msg_id": "MsgId", "content": "Content", "agent_id": "AgentID"}


@dataclass(frozen=True)
class ImageMessage(Event, msg_type="image"):
    """A member sent a picture to the app: `media_id` is temporary media (3 days) to fetch
    with `media/get`; `pic_url` is WeCom's own link to it."""

    msg_id: str = ""
    media_id: str = ""
    pic_url: str = ""
    agent_id: str = ""

    xml_fields: ClassVar[dict[str, str]] = {
        "msg_id": "MsgId", "media_id": "MediaId", "pic_url": "PicUrl", "agent_id": "AgentID"}


@dataclass(frozen=True)
class EnterAgentEvent(Event, msg_type="event", event="enter_agent"):
    agent_id: str = ""

    xml_fields: ClassVar[dict[str, str]] = {"agent_id": "AgentID"}


@dataclass(frozen=True)
class ExternalContactChange(Event, msg_type="event", event="change_external_contact"):
    change_type: str = ""
    user_id: str = ""
    external_user_id: str = ""
    state: str | None = None
    welcome_code: str | None = None
    source_detail: str | None = None  # <Source>, e.g. DELETE_BY_TRANSFER
    fail_reason: str | None = None

    xml_fields: ClassVar[dict[str, str]] = {
        "change_type": "ChangeType", "user_id": "UserID", "external_user_id": "ExternalUserID"}

    @classmethod
    def extra_fields(cls, fields: dict[str, XmlValue]) -> dict[str, Any]:
        return {**super().extra_fields(fields), "state": _optional(fields, "State"),
                "welcome_code": _optional(fields, "WelcomeCode"),
                "source_detail": _optional(fields, "Source"),
                "fail_reason": _optional(fields, "FailReason")}

    @property
    def kind(self) -> str:
        return f"ExternalContactChange:{self.change_type}"

    @property
    def subject(self) -> str:
        return f"ext:{self.external_user_id}"


@dataclass(frozen=True)
class ContactChange(Event, msg_type="event", event="change_contact"):
    """A directory change (通讯录): a member created, updated or deleted (left the corp)."""

    change_type: str = ""  # create_user | update_user | delete_user | …_party | update_tag
    user_id: str = ""

    xml_fields: ClassVar[dict[str, str]] = {"change_type": "ChangeType", "user_id": "UserID"}

    @property
    def kind(self) -> str:
        return f"ContactChange:{self.change_type}"

    @property
    def subject(self) -> str:
        return f"member:{self.user_id}"


@dataclass(frozen=True)
class ExternalTagChange(Event, msg_type="event", event="change_external_tag"):
    tag_id: str = ""
    tag_type: str = ""  # tag | tag_group
    change_type: str = ""  # create | update | delete | shuffle
    strategy_id: str = ""

    xml_fields: ClassVar[dict[str, str]] = {
        "tag_id": "Id", "tag_type": "TagType", "change_type": "ChangeType",
        "strategy_id": "StrategyId"}


@dataclass(frozen=True)
class OASubscribe(Event, msg_type="event", event="subscribe", source="wechat"):
    """An Official Account follow; `scene` is the channel QR code's scene_str, if any."""

    scene: str | None = None

    @classmethod
    def extra_fields(cls, fields: dict[str, XmlValue]) -> dict[str, Any]:
        key = text_field(fields, "EventKey")
        return {"scene": key.removeprefix("qrscene_") or None
                if key.startswith("qrscene_") else None}


@dataclass(frozen=True)
class OAScan(Event, msg_type="event", event="scan", source="wechat"):
    """An existing follower scanned a parametric QR code."""

    scene: str = ""

    xml_fields: ClassVar[dict[str, str]] = {"scene": "EventKey"}


@dataclass(frozen=True)
class OAUnsubscribe(Event, msg_type="event", event="unsubscribe", source="wechat"):
    pass


@dataclass(frozen=True)
class UnknownEvent(Event):
    msg_type: str = ""
    event: str = ""

    @property
    def kind(self) -> str:
        suffix = f":{self.event}" if self.event else ""
        return f"Unknown:{self.msg_type}{suffix}"


def parse_event(fields: dict[str, XmlValue], source: str = "wecom", inbox_id: int = 0) -> Event:
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
        "inbox_id": inbox_id,
    }
    msg_type = text_field(fields, "MsgType").lower()
    event = text_field(fields, "Event")
    name = event.lower() if msg_type == "event" else ""
    cls = _REGISTRY.get((source, msg_type, name)) or _REGISTRY.get(("*", msg_type, name))
    if cls is None:
        return UnknownEvent(**base, msg_type=msg_type, event=event)
    return cls(**base, **cls.extra_fields(fields))


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
    """What an event is about (see `Event.subject`)."""
    return event.subject
