"""`WeComSimulator`: WeCom's server API plus WeCom's side of the callback conversation.

The API answers scrmbot's calls (`/cgi-bin/...`); the scenario methods play customers and
members doing things in WeCom, change the state and send scrmbot the signed, encrypted
callbacks WeCom would send.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from bot.devtools.simulator.api import (
    ApiError,
    ApiRequest,
    CgiDispatcher,
    add_contact_way,
)
from bot.devtools.simulator.callbacks import (
    CallbackDelivery,
    CallbackSender,
    ImageSent,
    ScanResult,
    contact_event_xml,
    enter_agent_xml,
    image_message_xml,
    member_change_xml,
    tag_event_xml,
    text_message_xml,
)
from bot.devtools.simulator.control import setup_control
from bot.devtools.simulator.jssdk import setup_jssdk
from bot.devtools.simulator.oauth import setup_oauth
from bot.devtools.simulator.pictures import demo_png
from bot.devtools.simulator.shop import SimulatedShop, setup_shops
from bot.devtools.simulator.state import (
    Call,
    ContactWay,
    Department,
    ExternalContact,
    Follow,
    FollowStatus,
    Member,
    PendingCallback,
    SimState,
    SimulatorError,
    Transfer,
)
from bot.devtools.simulator.transfers import (
    LIMIT_EXCEEDED,
    REFUSED,
    WAITING,
    complete_transfer,
    fail_transfer,
    settle_transfers,
    success_callbacks,
)
from bot.domain.clock import Clock, SystemClock
from bot.wecom.crypto import CallbackCrypto

logger = logging.getLogger(__name__)

_RNG = secrets.SystemRandom()  # the constructor's `secrets` parameter shadows the module


class WeComSimulator:
    """An in-memory WeCom for tests, `scrmbot simulator` and sandbox mode.

    :param secrets: secret -> label, e.g. ``{"app-secret": "app", "contact-secret": "contact"}``;
        the label is recorded on every call made with a token from that secret.
    :param clock: all simulator time (tokens, welcome codes, rate limits, CreateTime).
    :param callback_url: scrmbot's ``POST /wecom/callback`` URL (can be set later).
    """

    def __init__(self, corp_id: str, agent_id: int, secrets: dict[str, str], token: str,
                 aes_key: str, clock: Clock | None = None, callback_url: str | None = None,
                 callback_timeout_s: float = 5.0) -> None:
        self.clock: Clock = clock or SystemClock()
        self.state = SimState(corp_id, agent_id, secrets, self.clock)
        self.crypto = CallbackCrypto(token, aes_key, corp_id)
        self.sender = CallbackSender(self.crypto, self.clock, callback_timeout_s, callback_url)
        self.calls: list[Call] = self.state.calls
        self.sent_messages: list[dict[str, Any]] = self.state.sent_messages
        self.welcome_messages: list[dict[str, Any]] = self.state.welcome_messages
        self.msg_templates: list[dict[str, Any]] = self.state.msg_templates
        self._msg_id = 7_000_000_000_000_000_000 + _RNG.randrange(10**17)  # 19 digits
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self.app = web.Application()
        self.app.router.add_route("*", "/cgi-bin/{endpoint:.*}", CgiDispatcher(self.state).handle)
        setup_control(self.app, self)
        setup_oauth(self.app, self.state)
        setup_jssdk(self.app, self.state)
        self.shops: dict[str, SimulatedShop] = {}  # shops serving the generic order pull
        setup_shops(self.app, self.shops)
        self.app.cleanup_ctx.append(self._sender_ctx)

    async def _sender_ctx(self, app: web.Application) -> AsyncIterator[None]:
        yield
        await self.sender.close()

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def corp_id(self) -> str:
        return self.state.corp_id

    @property
    def agent_id(self) -> int:
        return self.state.agent_id

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the app and return the API base URL, e.g. ``http://127.0.0.1:54321/cgi-bin``."""
        if self._runner is not None:
            msg = "simulator already started"
            raise RuntimeError(msg)
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._base_url = f"http://{bound_host}:{bound_port}/cgi-bin"
        logger.info("WeCom simulator listening on %s", self._base_url)
        return self._base_url

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.sender.close()

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            msg = "simulator not started; call `await sim.start()` first"
            raise RuntimeError(msg)
        return self._base_url

    @property
    def callback_url(self) -> str | None:
        return self.sender.url

    @callback_url.setter
    def callback_url(self, url: str | None) -> None:
        self.sender.url = url

    @property
    def callback_timeout_s(self) -> float:
        return self.sender.timeout_s

    @callback_timeout_s.setter
    def callback_timeout_s(self, seconds: float) -> None:
        self.sender.timeout_s = seconds

    # --- call log and fault injection -------------------------------------------------------

    def calls_to(self, endpoint: str) -> list[Call]:
        endpoint = endpoint.strip("/")
        return [c for c in self.calls if c.endpoint == endpoint]

    def clear_calls(self) -> None:
        self.calls.clear()

    def fail_next(self, endpoint: str, errcode: int, times: int = 1,
                  errmsg: str | None = None) -> None:
        """Answer the next `times` calls to `endpoint` (e.g. "message/send") with `errcode`."""
        self.state.add_fault(endpoint, errcode, times, errmsg)

    def use_up_api(self, endpoint: str, window: str = "minute") -> None:
        """Spend the corp's calls to `endpoint` for this minute (or "hour"), as another
        system on the same corp would: the next call gets 45009."""
        self.state.use_up_api(endpoint.strip("/"), window)

    def lose_answer_next(self, endpoint: str, times: int = 1) -> None:
        """Carry out the next `times` calls to `endpoint`, then drop the connection instead
        of answering: the caller sees a network error although the call took effect."""
        key = endpoint.strip("/")
        self.state.lost_answers[key] = self.state.lost_answers.get(key, 0) + times

    def revoke_tokens(self) -> None:
        """Invalidate every issued token: the next call with one gets 40014."""
        self.state.revoke_tokens()

    # --- directory and setup ----------------------------------------------------------------

    def add_department(self, id: int, name: str, parent_id: int = 1) -> Department:
        dept = Department(id, name, 0 if id == 1 else parent_id, order=len(self.state.departments))
        self.state.departments[id] = dept
        return dept

    def add_user(self, userid: str, name: str, department: list[int], *,
                 mobile: str | None = None, position: str = "") -> Member:
        member = Member(userid, name, list(department), position, mobile or "")
        self.state.members[userid] = member
        return member

    def add_corp_tag_group(self, name: str, tags: list[str]) -> dict[str, str]:
        """Create (or extend) a corp tag group; returns tag name -> tag id."""
        group = self.state.group_by_name(name) or self.state.create_group(name)
        ids = {t.name: t.id for t in group.tags if not t.deleted}
        for tag_name in tags:
            if tag_name not in ids:
                ids[tag_name] = self.state.create_tag(group, tag_name).id
        return ids

    def add_contact_way(self, users: list[str], state: str | None = None, *,
                        is_temp: bool = False, skip_verify: bool = True,
                        party: list[int] | None = None) -> str:
        """Create a QR-code contact way directly (as if scrmbot had called the API)."""
        body: dict[str, Any] = {"type": 1 if len(users) == 1 and not party else 2, "scene": 2,
                                "user": users, "party": party or [], "state": state or "",
                                "skip_verify": skip_verify, "is_temp": is_temp}
        try:
            answer = add_contact_way(self.state, ApiRequest({}, body, None))
        except ApiError as exc:
            raise SimulatorError(str(exc)) from None
        return str(answer["config_id"])

    # --- callbacks --------------------------------------------------------------------------

    async def deliver(self, xml: str, *, times: int = 1,
                      agent_id: int | None = None) -> CallbackDelivery:
        """Send a plaintext callback as WeCom would; `times` > 1 repeats it even after a 200."""
        return await self.sender.deliver(xml, agent_id=agent_id, times=times)

    async def _contact_event(self, change_type: str, userid: str, external_userid: str,
                             **extra: str | None) -> CallbackDelivery:
        xml = contact_event_xml(self.corp_id, self.state.unix(), change_type, userid,
                                external_userid, **extra)
        return await self.deliver(xml)

    # --- customers adding members -----------------------------------------------------------

    def _member(self, userid: str) -> Member:
        member = self.state.members.get(userid)
        if member is None:
            msg = f"no member {userid!r} in the simulated directory"
            raise SimulatorError(msg)
        return member

    def _pick_member(self, way: ContactWay) -> str:
        candidates = self.state.way_members(way)
        if not candidates:
            msg = f"contact way {way.config_id} has no members"
            raise SimulatorError(msg)
        userid = candidates[way.next_user % len(candidates)]
        way.next_user += 1
        return userid

    def _follow_for_add(self, userid: str, external_userid: str, state: str | None, half: bool,
                        mobile: str | None) -> Follow:
        status = FollowStatus.HALF if half else FollowStatus.ACTIVE
        follow = self.state.follow(userid, external_userid)
        if follow is not None and follow.status in (FollowStatus.ACTIVE, FollowStatus.HALF):
            msg = f"{external_userid} is already a contact of {userid} ({follow.status})"
            raise SimulatorError(msg)
        if follow is None:
            follow = Follow(userid, external_userid, status, self.state.unix())
            self.state.follows[(userid, external_userid)] = follow
        # a re-add keeps remark and tags, as WeCom keeps the member's notes
        follow.status, follow.createtime = status, self.state.unix()
        follow.state, follow.add_way, follow.oper_userid = state, 1, external_userid
        if mobile and mobile not in follow.remark_mobiles:
            follow.remark_mobiles.append(mobile)
        return follow

    def _contact_for_add(self, name: str, mobile: str | None, unionid: str | None,
                         external_userid: str | None) -> ExternalContact:
        if external_userid is not None:
            contact = self.state.contacts.get(external_userid)
            if contact is None:
                msg = f"no customer {external_userid!r} to re-add"
                raise SimulatorError(msg)
            return contact
        ext = self.state.new_external_userid()
        contact = ExternalContact(ext, name, type=1, gender=_RNG.choice((1, 2)),
                                  avatar=f"https://sim.scrmbot.local/avatar/{ext}.png",
                                  unionid=unionid, mobile=mobile)
        self.state.contacts[ext] = contact
        return contact

    async def _add(self, *, userid: str, state: str | None, name: str, mobile: str | None,
                   half: bool, unionid: str | None,
                   external_userid: str | None) -> ScanResult:
        self._member(userid)
        contact = self._contact_for_add(name, mobile, unionid, external_userid)
        self._follow_for_add(userid, contact.external_userid, state, half, mobile)
        code = self.state.issue_welcome_code(userid, contact.external_userid)
        change = "add_half_external_contact" if half else "add_external_contact"
        delivery = await self._contact_event(change, userid, contact.external_userid,
                                             state=state, welcome_code=code.code)
        return ScanResult(contact.external_userid, userid, code.code, delivery)

    async def customer_scans(self, state: str, name: str, *, mobile: str | None = None,
                             half: bool = False, staff: str | None = None,
                             unionid: str | None = None,
                             external_userid: str | None = None) -> ScanResult:
        """A customer scans the contact way carrying `state` and becomes a contact.

        A state no way carries is allowed (scrmbot must cope with it) but then `staff` says
        whom the customer added. `half=True` is a skip-verify add the member has not
        confirmed: the relationship stays `half` and mark_tag answers 84061 until
        `confirm_half`. Pass `external_userid` to re-add an existing customer.
        """
        way = self.state.way_by_state(state)
        if way is None:
            if staff is None:
                msg = f"no contact way has state {state!r}; pass staff= to say who was added"
                raise SimulatorError(msg)
            userid = staff
        else:
            if way.is_temp and way.used:
                msg = f"temporary contact way {way.config_id} already used its one add"
                raise SimulatorError(msg)
            if way.is_temp and way.expires_in \
                    and self.state.timestamp() > way.created_at + way.expires_in:
                msg = f"temporary contact way {way.config_id} has expired"
                raise SimulatorError(msg)
            userid = staff if staff is not None else self._pick_member(way)
            self._member(userid)
            way.used = way.used or way.is_temp
        return await self._add(userid=userid, state=state, name=name, mobile=mobile, half=half,
                               unionid=unionid, external_userid=external_userid)

    async def customer_adds_without_state(self, name: str, staff: str, *,
                                          mobile: str | None = None, half: bool = False,
                                          unionid: str | None = None,
                                          external_userid: str | None = None) -> ScanResult:
        """A customer adds `staff` directly (personal QR, search): no `<State>` at all."""
        return await self._add(userid=staff, state=None, name=name, mobile=mobile, half=half,
                               unionid=unionid, external_userid=external_userid)

    def _follow(self, userid: str, external_userid: str,
                allowed: tuple[FollowStatus, ...]) -> Follow:
        follow = self.state.follow(userid, external_userid)
        if follow is None or follow.status not in allowed:
            status = follow.status.value if follow else "absent"
            msg = f"relationship {userid}/{external_userid} is {status}"
            raise SimulatorError(msg)
        return follow

    async def confirm_half(self, userid: str, external_userid: str) -> CallbackDelivery:
        """The member confirms a skip-verify add: `half` becomes active (no new welcome code)."""
        follow = self._follow(userid, external_userid, (FollowStatus.HALF,))
        follow.status = FollowStatus.ACTIVE
        return await self._contact_event("add_external_contact", userid, external_userid,
                                         state=follow.state)

    # --- later changes ----------------------------------------------------------------------

    async def staff_deletes_customer(self, userid: str, external_userid: str,
                                     source: str | None = None) -> CallbackDelivery:
        """`source="DELETE_BY_TRANSFER"` marks a deletion caused by an in-service transfer."""
        follow = self._follow(userid, external_userid, (
            FollowStatus.ACTIVE, FollowStatus.HALF, FollowStatus.DELETED_BY_CUSTOMER))
        follow.status = FollowStatus.DELETED_BY_STAFF
        return await self._contact_event("del_external_contact", userid, external_userid,
                                         source=source)

    async def customer_deletes_staff(self, userid: str, external_userid: str) -> CallbackDelivery:
        follow = self._follow(userid, external_userid, (FollowStatus.ACTIVE, FollowStatus.HALF))
        follow.status = FollowStatus.DELETED_BY_CUSTOMER
        return await self._contact_event("del_follow_user", userid, external_userid)

    async def staff_edits_customer_tags(self, userid: str, external_userid: str,
                                        add: list[str] | None = None,
                                        remove: list[str] | None = None) -> CallbackDelivery:
        """The member edits corp tags in the WeCom app (fires edit_external_contact)."""
        add, remove = add or [], remove or []
        unknown = [t for t in add + remove if self.state.live_tag(t) is None]
        if unknown:
            msg = f"unknown tag ids {unknown}"
            raise SimulatorError(msg)
        follow = self._follow(userid, external_userid, (FollowStatus.ACTIVE,))
        follow.tag_ids = [t for t in follow.tag_ids if t not in remove]
        follow.tag_ids.extend(t for t in dict.fromkeys(add) if t not in follow.tag_ids)
        return await self._contact_event("edit_external_contact", userid, external_userid)

    async def corp_tag_changed(self, tag_id: str, change_type: str = "update",
                               tag_type: str = "tag") -> CallbackDelivery:
        """An admin changed a corp tag or group in the console (`change_external_tag`)."""
        if change_type not in ("create", "update", "delete", "shuffle"):
            msg = "change_type must be create, update, delete or shuffle"
            raise ValueError(msg)
        if tag_type not in ("tag", "tag_group"):
            msg = "tag_type must be tag or tag_group"
            raise ValueError(msg)
        if change_type == "delete":
            if tag_type == "tag" and tag_id in self.state.tags:
                self.state.tags[tag_id].deleted = True
            elif tag_type == "tag_group" and tag_id in self.state.tag_groups:
                group = self.state.tag_groups[tag_id]
                group.deleted = True
                for tag in group.tags:
                    tag.deleted = True
        xml = tag_event_xml(self.corp_id, self.state.unix(), tag_id, tag_type, change_type)
        return await self.deliver(xml)

    # --- transfers and resignations ---------------------------------------------------------

    def customer_will_refuse_transfer(self, external_userid: str) -> None:
        """This customer taps 暂不添加: a transfer of them ends refused (status 3) when due."""
        if external_userid not in self.state.contacts:
            msg = f"no customer {external_userid!r}"
            raise SimulatorError(msg)
        self.state.refusing.add(external_userid)

    def set_customer_limit(self, userid: str, n: int) -> None:
        """Cap how many customers `userid` may have (transfers to them answer 40099 / end 4)."""
        self._member(userid)
        self.state.customer_limits[userid] = n

    async def _send(self, callbacks: list[PendingCallback]) -> list[CallbackDelivery]:
        return [await self._contact_event(change, userid, ext, **extra)
                for change, userid, ext, extra in callbacks]

    async def settle_transfers(self) -> list[CallbackDelivery]:
        """Decide the transfers whose 24 h are over, then send every queued transfer callback
        in order (including those queued by a lazily settling API call)."""
        settle_transfers(self.state)
        queued = list(self.state.pending_callbacks)
        self.state.pending_callbacks.clear()
        return await self._send(queued)

    def _waiting(self, matches: tuple[str, str], by_takeover: bool) -> Transfer | None:
        for transfer in self.state.transfers:
            who = transfer.takeover_userid if by_takeover else transfer.handover_userid
            if (who, transfer.external_userid) == matches and transfer.status == WAITING:
                return transfer
        return None

    async def transfer_fails(self, userid: str, external_userid: str,
                             reason: str = "customer_refused") -> CallbackDelivery:
        """A transfer to takeover member `userid` fails now (`customer_refused` or
        `customer_limit_exceed`): a matching waiting transfer gets status 3 or 4."""
        statuses = {"customer_refused": REFUSED, "customer_limit_exceed": LIMIT_EXCEEDED}
        if reason not in statuses:
            msg = f"reason must be one of {sorted(statuses)}"
            raise ValueError(msg)
        transfer = self._waiting((userid, external_userid), by_takeover=True)
        if transfer is not None:
            fail_transfer(transfer, statuses[reason])
        return await self._contact_event("transfer_fail", userid, external_userid,
                                         fail_reason=reason)

    async def transfer_completes(self, handover_userid: str,
                                 external_userid: str) -> CallbackDelivery:
        """A waiting transfer is taken now instead of after 24 h.

        For 在职继承 the handover loses the customer (`del_external_contact` with
        `Source=DELETE_BY_TRANSFER`, returned), then the takeover gets `add_external_contact`;
        for 离职继承 only the add is sent (and returned).
        """
        transfer = self._waiting((handover_userid, external_userid), by_takeover=False)
        if transfer is None:
            msg = f"no waiting transfer of {external_userid} from {handover_userid}"
            raise SimulatorError(msg)
        complete_transfer(self.state, transfer, self.state.unix())
        return (await self._send(success_callbacks(transfer)))[0]

    async def member_resigns(self, userid: str) -> CallbackDelivery:
        """The member leaves the corp (status 5); WeCom sends the 通讯录 `delete_user` event.
        Their customers stay, waiting for 离职继承 (get_unassigned_list)."""
        member = self._member(userid)
        if member.status == 5:
            msg = f"{userid!r} has already resigned"
            raise SimulatorError(msg)
        member.status = 5
        self.state.resigned_at[userid] = self.state.unix()
        xml = member_change_xml(self.corp_id, self.state.unix(), "delete_user", userid)
        return await self.deliver(xml)

    # --- members talking to the app ---------------------------------------------------------

    async def staff_sends_text(self, userid: str, content: str) -> CallbackDelivery:
        """A member types `content` in the app chat (a text message with a fresh MsgId)."""
        self._member(userid)
        self._msg_id += 1
        xml = text_message_xml(self.corp_id, self.state.unix(), userid, content, self._msg_id,
                               self.agent_id)
        return await self.deliver(xml, agent_id=self.agent_id)

    async def staff_sends_image(self, userid: str, content: bytes | None = None, *,
                                filename: str = "photo.png",
                                content_type: str = "image/png") -> ImageSent:
        """A member sends a picture to the app: kept as temporary media (3 days, uploaded
        now) and announced by an `image` callback with its MediaId. Without `content`, a
        small demo picture, a different one each time."""
        self._member(userid)
        self._msg_id += 1
        if content is None:
            content = demo_png(self._msg_id % 1000)
        media_id = self.state.add_media(filename, content, content_type)
        pic_url = f"https://sim.scrmbot.local/pic/{media_id[:16]}.png"
        xml = image_message_xml(self.corp_id, self.state.unix(), userid, pic_url, media_id,
                                self._msg_id, self.agent_id)
        return ImageSent(media_id, self._msg_id,
                         await self.deliver(xml, agent_id=self.agent_id))

    def expire_media(self, media_id: str | None = None) -> int:
        """Age temporary media past its 3 days: media/get then answers 40007."""
        return self.state.expire_media(media_id)

    async def staff_enters_agent(self, userid: str) -> CallbackDelivery:
        self._member(userid)
        xml = enter_agent_xml(self.corp_id, self.state.unix(), userid, self.agent_id)
        return await self.deliver(xml, agent_id=self.agent_id)

