"""In-memory state of the simulated corp: directory, customers, tags, contact ways and logs.

Everything is plain dataclasses in dicts so tests can look at (and poke) the state directly.
All time comes from the injected clock, never from the wall clock.
"""

from __future__ import annotations

import secrets
import string
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.clock import Clock

TOKEN_TTL_S = 7200
WELCOME_CODE_TTL_S = 20
MEDIA_TTL_S = 3 * 86400  # temporary media (media/upload, pictures members send)
TRANSFER_WAIT_S = 24 * 3600  # a transfer is decided 24 h after it was submitted
CORP_TZ = ZoneInfo("Asia/Shanghai")  # group-message caps count calendar months here

_URLSAFE = string.ascii_letters + string.digits + "-_"
_ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int, alphabet: str = _URLSAFE) -> str:
    """An id shaped like WeCom's (`wm…` customers, `et…` tags): prefix plus random chars."""
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


class FollowStatus(StrEnum):
    """State of one member–customer relationship."""

    HALF = "half"  # skip-verify add the member has not confirmed yet
    ACTIVE = "active"
    DELETED_BY_STAFF = "deleted_by_staff"
    DELETED_BY_CUSTOMER = "deleted_by_customer"


@dataclass
class Department:
    id: int
    name: str
    parent_id: int
    order: int = 0

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "parentid": self.parent_id,
                "order": self.order, "department_leader": []}


@dataclass
class Member:
    userid: str
    name: str
    department: list[int]
    position: str = ""
    mobile: str = ""
    status: int = 1  # 1 active, 2 disabled, 4 not activated, 5 resigned

    def to_api(self) -> dict[str, Any]:
        return {"userid": self.userid, "name": self.name, "department": list(self.department),
                "main_department": self.department[0] if self.department else 1,
                "position": self.position, "mobile": self.mobile, "status": self.status,
                "gender": "0", "email": "", "alias": "", "telephone": "",
                "avatar": f"https://sim.scrmbot.local/avatar/{self.userid}.png",
                "is_leader_in_dept": [0] * len(self.department), "direct_leader": []}


@dataclass
class ExternalContact:
    external_userid: str
    name: str
    type: int = 1  # 1 WeChat user, 2 WeCom user
    gender: int = 0
    avatar: str = ""
    unionid: str | None = None
    mobile: str | None = None  # what the member would put in remark_mobiles
    position: str = ""
    corp_name: str = ""
    corp_full_name: str = ""

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"external_userid": self.external_userid, "name": self.name,
                                "avatar": self.avatar, "type": self.type, "gender": self.gender}
        if self.unionid:
            data["unionid"] = self.unionid
        if self.type == 2:
            data.update(position=self.position, corp_name=self.corp_name,
                        corp_full_name=self.corp_full_name, external_profile={})
        return data


@dataclass
class Follow:
    """One member's side of a customer relationship (`follow_user` in externalcontact/get)."""

    userid: str
    external_userid: str
    status: FollowStatus
    createtime: int
    state: str | None = None
    add_way: int = 1  # 1 = scanned a QR code
    oper_userid: str = ""
    remark: str = ""
    description: str = ""
    remark_mobiles: list[str] = field(default_factory=list)
    tag_ids: list[str] = field(default_factory=list)


@dataclass
class Tag:
    id: str
    name: str
    group_id: str
    create_time: int
    order: int = 0
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "create_time": self.create_time,
                "order": self.order, "deleted": self.deleted}


@dataclass
class TagGroup:
    group_id: str
    name: str
    create_time: int
    order: int = 0
    tags: list[Tag] = field(default_factory=list)
    deleted: bool = False

    def to_api(self, only: set[str] | None = None) -> dict[str, Any]:
        tags = [t.to_api() for t in self.tags if not t.deleted and (only is None or t.id in only)]
        return {"group_id": self.group_id, "group_name": self.name,
                "create_time": self.create_time, "order": self.order, "tag": tags}


@dataclass
class ContactWay:
    config_id: str
    type: int
    scene: int
    created_at: float
    style: int | None = None
    remark: str = ""
    skip_verify: bool = True
    state: str | None = None
    user: list[str] = field(default_factory=list)
    party: list[int] = field(default_factory=list)
    is_temp: bool = False
    expires_in: int | None = None
    chat_expires_in: int | None = None
    unionid: str | None = None
    conclusions: dict[str, Any] | None = None
    qr_code: str | None = None
    used: bool = False  # a temporary way stops working after its first add
    deleted: bool = False
    next_user: int = 0  # round-robin position over `user` + party members

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"config_id": self.config_id, "type": self.type,
                                "scene": self.scene, "remark": self.remark,
                                "skip_verify": self.skip_verify, "state": self.state or "",
                                "user": list(self.user), "party": list(self.party),
                                "is_temp": self.is_temp}
        if self.style is not None:
            data["style"] = self.style
        if self.qr_code:
            data["qr_code"] = self.qr_code
        if self.is_temp:
            data["expires_in"] = self.expires_in
            data["chat_expires_in"] = self.chat_expires_in
            if self.unionid:
                data["unionid"] = self.unionid
            if self.conclusions is not None:
                data["conclusions"] = self.conclusions
        return data


@dataclass
class WelcomeCode:
    code: str
    userid: str
    external_userid: str
    issued_at: float
    used: bool = False


@dataclass
class Transfer:
    handover_userid: str
    takeover_userid: str
    external_userid: str
    created_at: float
    resigned: bool = False
    status: int = 2  # 1 done, 2 waiting, 3 refused, 4 takeover limit exceeded, 5 no relationship
    takeover_time: int = 0
    success_msg: str | None = None


# A callback a state change implies, waiting to be sent by the server:
# (ChangeType, UserID, ExternalUserID, keyword arguments of `contact_event_xml`)
PendingCallback = tuple[str, str, str, dict[str, str | None]]


@dataclass(frozen=True)
class Call:
    """One request the simulator answered, for assertions in tests."""

    method: str
    endpoint: str  # path after /cgi-bin/, e.g. "externalcontact/mark_tag"
    query: dict[str, str]  # without access_token
    body: dict[str, Any] | None
    errcode: int
    at: datetime
    secret_label: str | None


@dataclass
class AccessToken:
    token: str
    secret: str
    label: str
    issued_at: float
    revoked: bool = False


class SimulatorError(Exception):
    """A scenario that cannot happen in WeCom (e.g. scanning a used temporary QR code)."""


@dataclass
class Fault:
    errcode: int
    errmsg: str | None


class SimState:
    """The whole simulated corp. API handlers and scenario methods both read and mutate it."""

    def __init__(self, corp_id: str, agent_id: int, secrets_: dict[str, str],
                 clock: Clock) -> None:
        self.corp_id = corp_id
        self.agent_id = agent_id
        self.secrets = dict(secrets_)
        self.clock = clock
        self.departments: dict[int, Department] = {}
        self.members: dict[str, Member] = {}
        self.contacts: dict[str, ExternalContact] = {}
        self.follows: dict[tuple[str, str], Follow] = {}  # (userid, external_userid)
        self.tag_groups: dict[str, TagGroup] = {}
        self.tags: dict[str, Tag] = {}
        self.contact_ways: dict[str, ContactWay] = {}
        self.welcome_codes: dict[str, WelcomeCode] = {}
        self.transfers: list[Transfer] = []
        self.customer_limits: dict[str, int] = {}  # userid → max customers (absent: no limit)
        self.refusing: set[str] = set()  # customers who will tap 暂不添加 on a transfer
        self.resigned_at: dict[str, int] = {}  # userid → when the member resigned
        # callbacks decided transfers imply, until the server sends them (settle_transfers)
        self.pending_callbacks: list[PendingCallback] = []
        self.tokens: dict[str, AccessToken] = {}
        self.token_by_secret: dict[str, str] = {}
        self.faults: dict[str, deque[Fault]] = {}
        # endpoint → how many of its next calls are carried out but answered by a dropped
        # connection (the caller cannot tell whether they happened)
        self.lost_answers: dict[str, int] = {}
        self.app_sends: dict[str, deque[float]] = {}  # userid -> send times, last hour only
        self.group_msg_counts: dict[tuple[str, str], int] = {}  # (external_userid, "YYYY-MM")
        self.calls: list[Call] = []
        # JS-SDK tickets: kind ("corp", "agent") → (ticket, expires at); fetch times per kind
        self.js_tickets: dict[str, tuple[str, float]] = {}
        self.js_ticket_fetches: dict[str, deque[float]] = {}
        # what pages sent into chats through the stand-in JS-SDK's sendChatMessage
        self.chat_messages: list[dict[str, Any]] = []
        self.sent_messages: list[dict[str, Any]] = []
        # message/send with enable_duplicate_check: identical body → (first sent, msgid)
        self.duplicate_checks: dict[str, tuple[float, str]] = {}
        self.duplicates_dropped = 0
        self.media: dict[str, tuple[str, bytes]] = {}  # media_id → (filename, content)
        # media_id → (uploaded at, content type): temporary media lives MEDIA_TTL_S
        self.media_meta: dict[str, tuple[float, str]] = {}
        self.welcome_messages: list[dict[str, Any]] = []
        self.msg_templates: list[dict[str, Any]] = []
        # OAuth / QR login (bot/devtools/simulator/oauth.py): codes, and the app's trusted
        # domains (可信域名), the only hosts a login may redirect to.
        self.oauth_codes: dict[str, Any] = {}
        self.trusted_domains: set[str] = {"127.0.0.1", "localhost"}
        # WeCom's per-corp, per-API limits (page 90312): (calls, window s, its name). Counted
        # in fixed windows; going over blocks the API until its window ends (45009).
        self.api_limits: list[tuple[int, float, str]] = [(10_000, 60.0, "minute"),
                                                         (150_000, 3600.0, "hour")]
        # (api, window) → (which window it is, calls in it so far)
        self.api_counts: dict[tuple[str, float], tuple[int, int]] = {}
        self.api_blocked: dict[str, tuple[float, str]] = {}  # api → (until, window name)

    # --- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def timestamp(self) -> float:
        return self.clock.timestamp()

    def unix(self) -> int:
        """Whole-second timestamp, as WeCom puts in CreateTime and createtime."""
        return int(self.clock.timestamp())

    def month_key(self) -> str:
        return self.clock.now().astimezone(CORP_TZ).strftime("%Y-%m")

    # --- tokens -----------------------------------------------------------------------------

    def token_valid(self, tok: AccessToken) -> bool:
        return not tok.revoked and self.timestamp() < tok.issued_at + TOKEN_TTL_S

    def issue_token(self, secret: str) -> AccessToken:
        """Same token while it is valid for this secret, a new one after expiry or revocation."""
        current = self.tokens.get(self.token_by_secret.get(secret, ""))
        if current is not None and self.token_valid(current):
            return current
        tok = AccessToken(random_id("", 64, _ALNUM), secret, self.secrets[secret],
                          self.timestamp())
        self.tokens[tok.token] = tok
        self.token_by_secret[secret] = tok.token
        return tok

    def revoke_tokens(self) -> None:
        for tok in self.tokens.values():
            tok.revoked = True

    # --- temporary media ----------------------------------------------------------------------

    def add_media(self, filename: str, content: bytes, content_type: str) -> str:
        """Keep `content` as temporary media uploaded now; returns its media_id."""
        media_id = random_id("3", 63)
        self.media[media_id] = (filename, content)
        self.media_meta[media_id] = (self.timestamp(), content_type)
        return media_id

    def live_media(self, media_id: str) -> tuple[str, str, bytes] | None:
        """(filename, content type, bytes) of media still inside its 3 days, else None."""
        if media_id not in self.media:
            return None
        uploaded, kind = self.media_meta.get(media_id, (self.timestamp(), ""))
        if self.timestamp() - uploaded > MEDIA_TTL_S:
            return None
        filename, content = self.media[media_id]
        return filename, kind or "application/octet-stream", content

    def expire_media(self, media_id: str | None = None) -> int:
        """Age one medium (or all) past its 3 days, as if they were uploaded long ago."""
        chosen = [media_id] if media_id else list(self.media_meta)
        for mid in chosen:
            _, kind = self.media_meta.get(mid, (self.timestamp(), ""))
            self.media_meta[mid] = (self.timestamp() - MEDIA_TTL_S - 1, kind)
        return len(chosen)

    # --- faults -----------------------------------------------------------------------------

    def add_fault(self, endpoint: str, errcode: int, times: int, errmsg: str | None) -> None:
        queue = self.faults.setdefault(endpoint.strip("/"), deque())
        queue.extend(Fault(errcode, errmsg) for _ in range(times))

    def api_frequency_refusal(self, endpoint: str) -> str | None:
        """Count one call to `endpoint` against the corp's per-API limits; WeCom's 45009
        message when it is over one (or still blocked by one), else None."""
        now = self.timestamp()
        blocked = self.api_blocked.get(endpoint)
        if blocked is not None and now < blocked[0]:
            return f"blocked until the {blocked[1]} window ends"
        refusal = None
        for limit, window, name in self.api_limits:
            nth = int(now // window)
            counted_nth, count = self.api_counts.get((endpoint, window), (nth, 0))
            count = count + 1 if counted_nth == nth else 1
            self.api_counts[(endpoint, window)] = (nth, count)
            if count > limit and refusal is None:
                self.api_blocked[endpoint] = ((nth + 1) * window, name)
                refusal = f"over {limit} calls per {name}"
        return refusal

    def use_up_api(self, endpoint: str, window: str = "minute") -> None:
        """Another system on the corp has made this window's every allowed call to
        `endpoint`: the next one is over the limit."""
        for limit, length, name in self.api_limits:
            if name == window:
                self.api_counts[(endpoint, length)] = (int(self.timestamp() // length), limit)

    def take_fault(self, endpoint: str) -> Fault | None:
        queue = self.faults.get(endpoint)
        return queue.popleft() if queue else None

    def take_lost_answer(self, endpoint: str) -> bool:
        left = self.lost_answers.get(endpoint, 0)
        if left:
            self.lost_answers[endpoint] = left - 1
        return bool(left)

    # --- directory --------------------------------------------------------------------------

    def subdepartments(self, root: int) -> list[int]:
        """`root` and every department below it, parents first."""
        found = [root]
        for dept_id in found:
            found.extend(d.id for d in self.departments.values()
                         if d.parent_id == dept_id and d.id != dept_id)
        return found

    def members_in(self, departments: list[int]) -> list[str]:
        """Members of these departments and their sub-departments, in directory order."""
        wanted = {d for root in departments for d in self.subdepartments(root)}
        return [m.userid for m in self.members.values() if wanted & set(m.department)]

    # --- customers --------------------------------------------------------------------------

    def follow(self, userid: str, external_userid: str) -> Follow | None:
        return self.follows.get((userid, external_userid))

    def follows_of(self, external_userid: str) -> list[Follow]:
        return [f for (_, ext), f in self.follows.items() if ext == external_userid]

    def customers_of(self, userid: str, statuses: set[FollowStatus]) -> list[str]:
        return [ext for (uid, ext), f in self.follows.items()
                if uid == userid and f.status in statuses]

    def new_external_userid(self) -> str:
        while True:
            candidate = random_id("wm", 22)
            if candidate not in self.contacts:
                return candidate

    def issue_welcome_code(self, userid: str, external_userid: str) -> WelcomeCode:
        code = WelcomeCode(random_id("", 43), userid, external_userid, self.timestamp())
        self.welcome_codes[code.code] = code
        return code

    # --- tags -------------------------------------------------------------------------------

    def new_tag_id(self) -> str:
        while True:
            candidate = random_id("et", 30, _ALNUM)
            if candidate not in self.tags and candidate not in self.tag_groups:
                return candidate

    def group_by_name(self, name: str) -> TagGroup | None:
        return next((g for g in self.tag_groups.values() if g.name == name and not g.deleted),
                    None)

    def create_group(self, name: str, order: int = 0) -> TagGroup:
        group = TagGroup(self.new_tag_id(), name, self.unix(), order)
        self.tag_groups[group.group_id] = group
        return group

    def create_tag(self, group: TagGroup, name: str, order: int = 0) -> Tag:
        tag = Tag(self.new_tag_id(), name, group.group_id, self.unix(), order)
        group.tags.append(tag)
        self.tags[tag.id] = tag
        return tag

    def live_tag(self, tag_id: str) -> Tag | None:
        tag = self.tags.get(tag_id)
        return tag if tag is not None and not tag.deleted else None

    # --- contact ways -----------------------------------------------------------------------

    def way_by_state(self, state: str) -> ContactWay | None:
        """The newest live contact way carrying this state, if any."""
        ways = [w for w in self.contact_ways.values() if w.state == state and not w.deleted]
        return ways[-1] if ways else None

    def way_members(self, way: ContactWay) -> list[str]:
        seen: dict[str, None] = dict.fromkeys(way.user)
        seen.update(dict.fromkeys(self.members_in(way.party)))
        return list(seen)

    # --- app-message rate limit -------------------------------------------------------------

    def send_blocked(self, userid: str) -> bool:
        """True if one more app message to this member would exceed 30/min or 1000/h."""
        now = self.timestamp()
        sends = self.app_sends.setdefault(userid, deque())
        while sends and sends[0] <= now - 3600:
            sends.popleft()
        last_minute = sum(1 for t in sends if t > now - 60)
        return last_minute >= 30 or len(sends) >= 1000

    def record_send(self, userid: str) -> None:
        self.app_sends.setdefault(userid, deque()).append(self.timestamp())
