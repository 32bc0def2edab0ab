"""Callbacks from "WeCom" to scrmbot: plaintext XML builders and delivery with WeCom's retries.

WeCom wants HTTP 200 within 5 s; otherwise (timeout, connection error, any other status) it
sends the same plaintext again, up to 3 retries. Each retry is freshly encrypted, so only
the plaintext (and its CreateTime) identifies a duplicate.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

import aiohttp

from bot.domain.clock import Clock
from bot.wecom.crypto import CallbackCrypto

logger = logging.getLogger(__name__)

MAX_RETRIES = 3

XmlValue = str | int | None


def cdata(value: str) -> str:
    """Wrap text in CDATA, splitting any `]]>` inside it so the XML stays well-formed."""
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def build_xml(fields: list[tuple[str, XmlValue]]) -> str:
    """Render `<xml>` with strings as CDATA and ints bare, as WeCom does; None fields are left
    out entirely (WeCom omits e.g. `<State>` rather than sending it empty)."""
    parts = []
    for name, value in fields:
        if value is None:
            continue
        text = str(value) if isinstance(value, int) else cdata(value)
        parts.append(f"<{name}>{text}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def contact_event_xml(corp_id: str, create_time: int, change_type: str, userid: str,
                      external_userid: str, *, state: str | None = None,
                      welcome_code: str | None = None, source: str | None = None,
                      fail_reason: str | None = None) -> str:
    """A `change_external_contact` event (FromUserName is `sys` for these)."""
    return build_xml([
        ("ToUserName", corp_id), ("FromUserName", "sys"), ("CreateTime", create_time),
        ("MsgType", "event"), ("Event", "change_external_contact"),
        ("ChangeType", change_type), ("UserID", userid), ("ExternalUserID", external_userid),
        ("State", state), ("WelcomeCode", welcome_code), ("Source", source),
        ("FailReason", fail_reason),
    ])


def member_change_xml(corp_id: str, create_time: int, change_type: str, userid: str) -> str:
    """A 通讯录 `change_contact` event about a member, e.g. `delete_user` when one resigns."""
    return build_xml([
        ("ToUserName", corp_id), ("FromUserName", "sys"), ("CreateTime", create_time),
        ("MsgType", "event"), ("Event", "change_contact"), ("ChangeType", change_type),
        ("UserID", userid),
    ])


def tag_event_xml(corp_id: str, create_time: int, tag_id: str, tag_type: str,
                  change_type: str) -> str:
    """A `change_external_tag` event: an admin created, updated or deleted a corp tag/group."""
    return build_xml([
        ("ToUserName", corp_id), ("FromUserName", "sys"), ("CreateTime", create_time),
        ("MsgType", "event"), ("Event", "change_external_tag"), ("Id", tag_id),
        ("TagType", tag_type), ("ChangeType", change_type),
    ])


def text_message_xml(corp_id: str, create_time: int, userid: str, content: str, msg_id: int,
                     agent_id: int) -> str:
    """A member typed `content` in the app's chat."""
    return build_xml([
        ("ToUserName", corp_id), ("FromUserName", userid), ("CreateTime", create_time),
        ("MsgType", "text"), ("Content", content), ("MsgId", msg_id), ("AgentID", agent_id),
    ])


def image_message_xml(corp_id: str, create_time: int, userid: str, pic_url: str,
                      media_id: str, msg_id: int, agent_id: int) -> str:
    """A member sent a picture in the app's chat."""
    return build_xml([
        ("ToUserName", corp_id), ("FromUserName", userid), ("CreateTime", create_time),
        ("MsgType", "image"), ("PicUrl", pic_url), ("MediaId", media_id), ("MsgId", msg_id),
        ("AgentID", agent_id),
    ])


def enter_agent_xml(corp_id: str, create_time: int, userid: str, agent_id: int) -> str:
    """A member opened the app's chat."""
    return build_xml([
        ("ToUserName", corp_id), ("FromUserName", userid), ("CreateTime", create_time),
        ("MsgType", "event"), ("AgentID", agent_id), ("Event", "enter_agent"), ("EventKey", ""),
    ])


@dataclass
class CallbackDelivery:
    """What happened to one callback: its plaintext and each attempt's HTTP status or error."""

    xml: str
    attempts: list[int | str] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return 200 in self.attempts


class CallbackSender:
    """Encrypts, signs and POSTs callbacks to `url`, retrying the way WeCom does."""

    def __init__(self, crypto: CallbackCrypto, clock: Clock, timeout_s: float = 5.0,
                 url: str | None = None) -> None:
        self.crypto = crypto
        self.clock = clock
        self.timeout_s = timeout_s
        self.url = url
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def deliver(self, xml: str, *, agent_id: int | None = None,
                      times: int = 1) -> CallbackDelivery:
        """Send `xml` until answered 200 (at most 1 + 3 retries); repeat that `times` times."""
        delivery = CallbackDelivery(xml)
        url = self.url
        if not url:
            logger.warning("sim: callback_url is not set; callback not delivered")
            return delivery
        for _ in range(times):
            for _ in range(1 + MAX_RETRIES):
                outcome = await self._attempt(url, xml, agent_id)
                delivery.attempts.append(outcome)
                if outcome == 200:
                    break
        return delivery

    async def _attempt(self, url: str, xml: str, agent_id: int | None) -> int | str:
        timestamp = str(int(self.clock.timestamp()))
        nonce = str(secrets.randbelow(9 * 10**9) + 10**9)
        body, signature = self.crypto.envelope(
            xml, timestamp, nonce, agent_id=str(agent_id) if agent_id is not None else None)
        params = {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce}
        try:
            async with self._client().post(
                    url, params=params, data=body.encode(),
                    headers={"Content-Type": "text/xml"},
                    timeout=aiohttp.ClientTimeout(total=self.timeout_s)) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            logger.info("sim: callback to %s timed out after %ss", url, self.timeout_s)
            return "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            logger.info("sim: callback to %s failed: %r", url, exc)
            return type(exc).__name__
        if status != 200:
            logger.info("sim: callback to %s answered %s", url, status)
        return status


@dataclass(frozen=True)
class ImageSent:
    """A picture a member sent: its temporary media and the callback that announced it."""

    media_id: str
    msg_id: int
    delivery: CallbackDelivery


@dataclass(frozen=True)
class ScanResult:
    """What a customer's add produced: who, with whom, the welcome code and the callback."""

    external_userid: str
    userid: str
    welcome_code: str | None
    delivery: CallbackDelivery
