"""`WeComClient`: the one async client that makes every outgoing WeCom API call in scrmbot.

It owns the policies every call needs, so features never re-implement them: the right token
for the right secret, one token refresh on 40014/42001 (never a loop), bounded backoff on
busy/throttled answers, explicit timeouts, and the per-member app-message limits that WeCom
enforces by silently dropping messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp

from bot.domain.clock import Clock
from bot.wecom.budget import ApiBudget, Priority, blocked_window_s, current_priority
from bot.wecom.errors import (
    ACCESS_TOKEN_EXPIRED,
    FREQUENCY_LIMITED,
    INVALID_ACCESS_TOKEN,
    INVALID_CREDENTIAL,
    WeComAuthError,
    WeComBudgetShort,
    WeComError,
    WeComHTTPError,
    WeComRateLimited,
    error_for,
)
from bot.wecom.metered import metered
from bot.wecom.ratelimit import MemberRateLimiter
from bot.wecom.tokens import TokenCache

logger = logging.getLogger(__name__)

JSON = dict[str, Any]
Sleep = Callable[[float], Awaitable[None]]

# Errcodes after which a fresh token may help. 40001 only counts on API calls: on gettoken it
# means a wrong secret, and that error comes out of the token fetch, which never retries it.
_REFRESH_ERRCODES = frozenset({INVALID_CREDENTIAL, INVALID_ACCESS_TOKEN, ACCESS_TOKEN_EXPIRED})
_MAX_RECIPIENTS = 1000
_DEFAULT_EXPIRES_IN = 7200


class WeComClient:
    """Async WeCom API client over an injected ``aiohttp.ClientSession``.

    Tokens: ``externalcontact/*`` calls use the customer-contact secret, everything else the
    app secret; each secret has its own token in the shared `TokenCache`.

    Retries:

    * 40014/42001 (and 40001 on an API call): drop the token, refetch it once, retry once;
      a second auth failure raises `WeComAuthError`.
    * -1/45033 (and 45009 without a budget): WeCom rejected the call and nothing happened,
      so every call, even a non-idempotent POST, is retried with full-jitter exponential
      backoff, at most ``max_retries`` times, then `WeComRateLimited` is raised.
    * Budget (`ApiBudget`, when given): every call draws from its API's corp-wide budget
      first. With no room at the caller's priority it raises `WeComBudgetShort` without
      calling (a FIRST call waits up to ``max_budget_wait_s`` for room first). A 45009 pauses
      the API for every instance for the window WeCom named, and raises the same.
    * Transport failures (timeout, disconnect, 5xx, non-JSON): retried the same way only for
      calls that are safe to repeat: GETs, read-only/idempotent POSTs, and calls the caller
      marks ``safe_to_retry``. A non-idempotent POST (message/send, send_welcome_msg,
      add_msg_template, add_contact_way, add_corp_tag, ...) that timed out *after* it was
      sent may have taken effect, so it raises `WeComHTTPError` at once instead of risking a
      duplicate. A connection that was never made is always retried.

    ``sleep`` (backoff and limiter waits) and ``jitter`` (a ``random()`` in [0, 1)) are
    injectable so tests run instantly and can assert on the delays.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str, corp_id: str,
                 agent_id: int, secret: str, contact_secret: str, tokens: TokenCache,
                 limiter: MemberRateLimiter, clock: Clock, *, timeout_s: float = 10.0,
                 max_retries: int = 3, backoff_base_s: float = 0.5, backoff_max_s: float = 8.0,
                 sleep: Sleep = asyncio.sleep, max_limiter_wait_s: float = 120.0,
                 jitter: Callable[[], float] = random.random,
                 budget: ApiBudget | None = None, max_budget_wait_s: float = 3.0) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._corp_id = corp_id
        self._agent_id = agent_id
        self._secret = secret
        self._contact_secret = contact_secret
        self._tokens = tokens
        self._limiter = limiter
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._timeout_s = timeout_s
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._max_limiter_wait_s = max_limiter_wait_s
        self._jitter = jitter
        self._budget = budget
        self._max_budget_wait_s = max_budget_wait_s

    @property
    def limiter(self) -> MemberRateLimiter:
        """The per-member app-message limiter this client honours."""
        return self._limiter

    @property
    def budget(self) -> ApiBudget | None:
        """The corp-wide per-API budget this client draws from (None: unlimited)."""
        return self._budget

    @property
    def agent_id(self) -> int:
        return self._agent_id

    # --- generic calls ----------------------------------------------------------------------

    async def get(self, endpoint: str, params: Mapping[str, str | int] | None = None, *,
                  safe_to_retry: bool = True) -> JSON:
        """GET any endpoint (e.g. ``"user/get"``) with every policy of the typed methods."""
        return await self._call("GET", endpoint, params=params, body=None,
                                safe_to_retry=safe_to_retry)

    async def post(self, endpoint: str, body: Mapping[str, Any], *,
                   safe_to_retry: bool = False) -> JSON:
        """POST JSON to any endpoint; pass ``safe_to_retry=True`` only if repeating is harmless.

        App messages must go through `send_message`, which applies the member limits.
        """
        return await self._call("POST", endpoint, params=None, body=dict(body),
                                safe_to_retry=safe_to_retry)

    # --- directory --------------------------------------------------------------------------

    async def get_user(self, userid: str) -> JSON:
        """A member's directory entry (``user/get``)."""
        return await self.get("user/get", {"userid": userid})

    async def login_user(self, code: str) -> str | None:
        """The member a login code was issued for (``auth/getuserinfo``), or None when WeCom
        does not confirm it (used, expired, from another app, or not a member of the corp).
        A code works once, so the call is never repeated."""
        try:
            answer = await self.get("auth/getuserinfo", {"code": code}, safe_to_retry=False)
        except WeComError as exc:
            if exc.errcode is None:
                raise
            return None
        userid = answer.get("userid") or answer.get("UserId")
        return str(userid) if userid else None

    async def fetch_jsapi_ticket(self) -> tuple[str, int]:
        """The corp's JS-SDK ticket, fetched (``get_jsapi_ticket``): (ticket, expires_in).
        Rate limited by WeCom: callers go through `bot.wecom.jsapi.JsTickets`."""
        return _ticket(await self.get("get_jsapi_ticket"), "get_jsapi_ticket")

    async def fetch_agent_ticket(self) -> tuple[str, int]:
        """The app's JS-SDK ticket (``ticket/get?type=agent_config``): (ticket, expires_in)."""
        return _ticket(await self.get("ticket/get", {"type": "agent_config"}), "ticket/get")

    async def list_users(self, department_id: int = 1, *, fetch_child: bool = False) -> JSON:
        """Members of a department, ``userlist`` of ``{userid, name, department}``."""
        return await self.get("user/simplelist", {"department_id": department_id,
                                                  "fetch_child": int(fetch_child)})

    async def list_departments(self, id: int | None = None) -> JSON:
        """Every visible department, or ``id`` and those below it (``department``)."""
        return await self.get("department/list", {} if id is None else {"id": id})

    # --- app messages to members ------------------------------------------------------------

    async def send_message(self, touser: str | Sequence[str], msgtype: str,
                           payload: Mapping[str, Any], *, safe: bool = False,
                           enable_duplicate_check: bool = False,
                           duplicate_check_interval: int | None = None,
                           reserved: bool = False) -> JSON:
        """Send an app message to members, within WeCom's per-member limits.

        ``touser`` is a userid, ``"a|b"`` or a list (not ``@all``: it cannot be counted per
        member). Every recipient must have a free slot in `MemberRateLimiter`; if not, this
        waits (through the injected sleep) until they all do, or raises `WeComRateLimited`
        when the wait would exceed ``max_limiter_wait_s``. With ``enable_duplicate_check``
        WeCom drops an identical resend, so a timed-out send is then retried too.
        ``reserved`` means the caller already took the limiter's slots (the outbox does, so
        it can defer instead of waiting).
        """
        members = _recipients(touser)
        if not reserved:
            await self._reserve(members)
        body: JSON = {"touser": "|".join(members), "msgtype": msgtype,
                      "agentid": self._agent_id, msgtype: dict(payload)}
        if safe:
            body["safe"] = 1
        if enable_duplicate_check:
            body["enable_duplicate_check"] = 1
            if duplicate_check_interval is not None:
                body["duplicate_check_interval"] = duplicate_check_interval
        return await self._call("POST", "message/send", params=None, body=body,
                                safe_to_retry=enable_duplicate_check)

    async def send_text(self, touser: str | Sequence[str], content: str) -> JSON:
        """A plain text message (content ≤ 2048 bytes)."""
        return await self.send_message(touser, "text", {"content": content})

    async def send_markdown(self, touser: str | Sequence[str], content: str) -> JSON:
        """A markdown message (shown in the WeCom app only, not in WeChat)."""
        return await self.send_message(touser, "markdown", {"content": content})

    async def send_textcard(self, touser: str | Sequence[str], title: str, description: str,
                            url: str, btntxt: str = "详情") -> JSON:
        """A text card linking to ``url``."""
        return await self.send_message(touser, "textcard", {
            "title": title, "description": description, "url": url, "btntxt": btntxt})

    async def send_template_card(self, touser: str | Sequence[str],
                                 card: Mapping[str, Any]) -> JSON:
        """A template card; interactive cards answer a ``response_code`` for later updates."""
        return await self.send_message(touser, "template_card", card)

    async def upload_media(self, media_type: str, filename: str, data: bytes) -> str:
        """Upload temporary media (3 days) and return its media_id, e.g. for a file message."""
        form = aiohttp.FormData(quote_fields=False)  # keep Chinese file names readable
        form.add_field("media", data, filename=filename, content_type="application/octet-stream")
        token = await self._tokens.get(self._secret, lambda: self._fetch_token(self._secret))
        await self._draw("media/upload")
        return await self._upload_roundtrip(media_type, form, token)

    @metered("media/upload")
    async def _upload_roundtrip(self, media_type: str, form: aiohttp.FormData,
                                token: str) -> str:
        try:
            async with self._session.post(f"{self._base_url}/media/upload",
                                          params={"access_token": token, "type": media_type},
                                          data=form, timeout=self._timeout) as resp:
                answer = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise WeComHTTPError(type(exc).__name__, "media/upload") from None
        errcode = int(answer.get("errcode", 0) or 0)
        if errcode:
            raise error_for(errcode, str(answer.get("errmsg", "")), "media/upload")
        return str(answer["media_id"])

    async def get_media(self, media_id: str) -> tuple[str, str, bytes]:
        """Download temporary media (``media/get``): (filename, content type, bytes).

        WeCom answers the file itself, or JSON with an errcode (40007 once the media's 3 days
        are over). A rejected token is refetched once; busy answers and transport failures
        are retried with the client's bounded backoff (a GET is safe to repeat), then raised
        for the caller's own retry (the inbox) to try again later.
        """
        for attempt in range(2):
            token = await self._tokens.get(self._secret, lambda: self._fetch_token(self._secret))
            try:
                return await self._media_retrying(media_id, token)
            except WeComAuthError as exc:
                if attempt or exc.errcode not in _REFRESH_ERRCODES:
                    raise
                await self._tokens.invalidate(self._secret, token)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _media_retrying(self, media_id: str, token: str) -> tuple[str, str, bytes]:
        retries = 0
        while True:
            await self._draw("media/get")
            try:
                return await self._media_roundtrip(media_id, token)
            except (WeComRateLimited, WeComHTTPError) as exc:
                if self._budget is not None and isinstance(exc, WeComRateLimited) and \
                        exc.errcode == FREQUENCY_LIMITED:
                    raise await self._blocked(exc) from exc
                if retries >= self._max_retries or not _may_retry(exc, True):
                    raise
                await self._sleep(self.backoff_delay(retries))
                retries += 1

    @metered("media/get")
    async def _media_roundtrip(self, media_id: str, token: str) -> tuple[str, str, bytes]:
        try:
            async with self._session.get(f"{self._base_url}/media/get",
                                         params={"access_token": token, "media_id": media_id},
                                         timeout=self._timeout) as resp:
                status, kind = resp.status, resp.content_type
                disposition = resp.headers.get("Content-Disposition", "")
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WeComHTTPError(f"transport error: {type(exc).__name__}", "media/get") from None
        if status != 200:
            raise WeComHTTPError(f"HTTP {status}", "media/get", status=status)
        if kind in ("application/json", "text/plain"):
            data = _decode(raw)
            errcode = data.get("errcode", 0) if data else None
            if not isinstance(errcode, int) or errcode == 0:
                raise WeComHTTPError("media/get answered JSON without media", "media/get",
                                     status=status)
            raise error_for(errcode, str(data.get("errmsg", "")) if data else "", "media/get")
        return _filename(disposition) or media_id, kind, raw

    async def send_file(self, touser: str | Sequence[str], media_id: str) -> JSON:
        """A file previously uploaded as temporary media."""
        return await self.send_message(touser, "file", {"media_id": media_id})

    async def _reserve(self, members: list[str]) -> None:
        waited = 0.0
        while (delay := await self._limiter.acquire_many(members)) > 0:
            if waited + delay > self._max_limiter_wait_s:
                msg = (f"member message limit: no slot for {len(members)} member(s) within "
                       f"{self._max_limiter_wait_s:.0f} s")
                raise WeComRateLimited(None, msg, "message/send", retry_after=delay)
            logger.info("member message limit reached; waiting %.1f s", delay)
            await self._sleep(delay)
            waited += delay

    # --- external contacts (customer-contact secret) ----------------------------------------

    async def get_external_contact(self, external_userid: str,
                                   cursor: str | None = None) -> JSON:
        """A customer and every member following them (``external_contact``, ``follow_user``)."""
        params = {"external_userid": external_userid}
        if cursor:
            params["cursor"] = cursor
        return await self.get("externalcontact/get", params)

    async def list_external_contacts(self, userid: str) -> JSON:
        """The ``external_userid`` list of one member's customers."""
        return await self.get("externalcontact/list", {"userid": userid})

    async def mark_tag(self, userid: str, external_userid: str, add: Iterable[str] = (),
                       remove: Iterable[str] = ()) -> JSON:
        """Add/remove corp tags on ``userid``'s view of a customer.

        Raises `WeComError` 84061 (`NOT_EXTERNAL_CONTACT`) while the relationship is half
        (unconfirmed skip-verify add) or gone.
        """
        add_tag, remove_tag = list(add), list(remove)
        if not add_tag and not remove_tag:
            msg = "mark_tag needs tags to add or remove"
            raise ValueError(msg)
        body: JSON = {"userid": userid, "external_userid": external_userid}
        if add_tag:
            body["add_tag"] = add_tag
        if remove_tag:
            body["remove_tag"] = remove_tag
        return await self.post("externalcontact/mark_tag", body, safe_to_retry=True)

    async def get_corp_tag_list(self, tag_ids: Sequence[str] | None = None,
                                group_ids: Sequence[str] | None = None) -> JSON:
        """Corp tag groups (``tag_group``), all or filtered; WeCom ignores tag_ids if
        group_ids is given."""
        body: JSON = {}
        if tag_ids:
            body["tag_id"] = list(tag_ids)
        if group_ids:
            body["group_id"] = list(group_ids)
        return await self.post("externalcontact/get_corp_tag_list", body, safe_to_retry=True)

    async def add_corp_tag(self, tags: Sequence[str], *, group_name: str | None = None,
                           group_id: str | None = None, order: int | None = None) -> JSON:
        """Create tags in an existing group (``group_id``) or a group by name (created if
        new); answers the ``tag_group`` with only the new tags."""
        body: JSON = {"tag": [{"name": name} for name in tags]}
        if group_id:
            body["group_id"] = group_id
        if group_name:
            body["group_name"] = group_name
        if order is not None:
            body["order"] = order
        return await self.post("externalcontact/add_corp_tag", body)

    async def edit_corp_tag(self, id: str, *, name: str | None = None,
                            order: int | None = None) -> JSON:
        """Rename or reorder a corp tag or tag group."""
        body: JSON = {"id": id}
        if name is not None:
            body["name"] = name
        if order is not None:
            body["order"] = order
        return await self.post("externalcontact/edit_corp_tag", body, safe_to_retry=True)

    async def del_corp_tag(self, tag_ids: Sequence[str] = (),
                           group_ids: Sequence[str] = ()) -> JSON:
        """Delete corp tags and/or whole groups."""
        return await self.post("externalcontact/del_corp_tag",
                               {"tag_id": list(tag_ids), "group_id": list(group_ids)})

    async def add_contact_way(self, **fields: Any) -> JSON:
        """Create a 「联系我」 way; fields as WeCom's (type, scene, user, party, state ≤ 30
        chars, skip_verify, is_temp, expires_in, ...). Answers ``config_id`` and, for
        scene 2, ``qr_code``."""
        return await self.post("externalcontact/add_contact_way", fields)

    async def get_contact_way(self, config_id: str) -> JSON:
        """One contact way (``contact_way``)."""
        return await self.post("externalcontact/get_contact_way", {"config_id": config_id},
                               safe_to_retry=True)

    async def update_contact_way(self, config_id: str, **fields: Any) -> JSON:
        """Change a contact way's fields (setting the same values twice is harmless)."""
        return await self.post("externalcontact/update_contact_way",
                               {"config_id": config_id, **fields}, safe_to_retry=True)

    async def del_contact_way(self, config_id: str) -> JSON:
        """Delete a contact way; its QR code stops working."""
        return await self.post("externalcontact/del_contact_way", {"config_id": config_id})

    async def list_contact_ways(self, **filters: Any) -> JSON:
        """``config_id``s of contact ways (``contact_way``); filters as WeCom's."""
        return await self.post("externalcontact/list_contact_way", filters, safe_to_retry=True)

    async def send_welcome_msg(self, welcome_code: str, text: str | None,
                               attachments: Sequence[Mapping[str, Any]] | None = None) -> JSON:
        """Welcome a new customer; the code works once, within 20 s.

        Raises `WeComError` 41050 (`WELCOME_CODE_EXPIRED`) or 41051 (`WELCOME_CODE_USED`).
        """
        body: JSON = {"welcome_code": welcome_code}
        if text:
            body["text"] = {"content": text}
        if attachments:
            body["attachments"] = [dict(a) for a in attachments]
        return await self.post("externalcontact/send_welcome_msg", body)

    async def add_msg_template(self, sender: str, external_userids: Sequence[str], text: str,
                               attachments: Sequence[Mapping[str, Any]] | None = None) -> JSON:
        """Queue a group message for ``sender`` to confirm; answers ``msgid`` and
        ``fail_list`` (e.g. customers over 4 company messages this month)."""
        body: JSON = {"chat_type": "single", "sender": sender,
                      "external_userid": list(external_userids), "text": {"content": text}}
        if attachments:
            body["attachments"] = [dict(a) for a in attachments]
        return await self.post("externalcontact/add_msg_template", body)

    async def list_group_messages(self, *, start_time: int, end_time: int,
                                  creator: str | None = None, chat_type: str = "single",
                                  cursor: str | None = None, limit: int = 100) -> JSON:
        """Group-message tasks created in [start_time, end_time] (at most a month apart),
        ``get_groupmsg_list_v2``: ``group_msg_list`` of ``{msgid, creator, create_time,
        text}`` and ``next_cursor``."""
        body: JSON = {"chat_type": chat_type, "start_time": start_time, "end_time": end_time,
                      "filter_type": 2, "limit": limit}
        if creator:
            body["creator"] = creator
        if cursor:
            body["cursor"] = cursor
        return await self.post("externalcontact/get_groupmsg_list_v2", body,
                               safe_to_retry=True)

    async def transfer_customer(self, handover: str, takeover: str,
                                external_userids: Sequence[str],
                                msg: str | None = None) -> JSON:
        """In-service transfer (≤ 100 customers); per-customer errcodes in ``customer``."""
        body: JSON = {"handover_userid": handover, "takeover_userid": takeover,
                      "external_userid": list(external_userids)}
        if msg:
            body["transfer_success_msg"] = msg
        return await self.post("externalcontact/transfer_customer", body)

    async def resigned_transfer_customer(self, handover: str, takeover: str,
                                         external_userids: Sequence[str]) -> JSON:
        """Transfer a resigned member's customers (≤ 100)."""
        return await self.post("externalcontact/resigned/transfer_customer", {
            "handover_userid": handover, "takeover_userid": takeover,
            "external_userid": list(external_userids)})

    async def transfer_result(self, handover: str, takeover: str, cursor: str | None = None,
                              *, resigned: bool = False) -> JSON:
        """Status of transfers between two members (1 done, 2 waiting, 3 refused, ...)."""
        endpoint = ("externalcontact/resigned/transfer_result" if resigned
                    else "externalcontact/transfer_result")
        body: JSON = {"handover_userid": handover, "takeover_userid": takeover}
        if cursor:
            body["cursor"] = cursor
        return await self.post(endpoint, body, safe_to_retry=True)

    async def get_unassigned_list(self, cursor: str | None = None,
                                  page_size: int = 1000) -> JSON:
        """Resigned members' customers nobody was given yet (``info``, ``next_cursor``)."""
        body: JSON = {"page_size": page_size}
        if cursor:
            body["cursor"] = cursor
        return await self.post("externalcontact/get_unassigned_list", body, safe_to_retry=True)

    # --- machinery --------------------------------------------------------------------------

    def _secret_for(self, endpoint: str) -> str:
        return self._contact_secret if endpoint.startswith("externalcontact/") else self._secret

    async def _fetch_token(self, secret: str) -> tuple[str, int]:
        data = await self._retrying("GET", "gettoken",
                                    {"corpid": self._corp_id, "corpsecret": secret},
                                    None, None, safe_to_retry=True)
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not token:
            raise WeComHTTPError("answer has no access_token", "gettoken", status=200)
        return token, expires_in if isinstance(expires_in, int) else _DEFAULT_EXPIRES_IN

    async def _call(self, method: str, endpoint: str, *,
                    params: Mapping[str, str | int] | None, body: JSON | None,
                    safe_to_retry: bool) -> JSON:
        endpoint = endpoint.strip("/")
        secret = self._secret_for(endpoint)
        for attempt in range(2):
            token = await self._tokens.get(secret, lambda: self._fetch_token(secret))
            try:
                return await self._retrying(method, endpoint, params, body, token,
                                            safe_to_retry=safe_to_retry)
            except WeComAuthError as exc:
                if attempt or exc.errcode not in _REFRESH_ERRCODES:
                    raise
                logger.info("%s: token rejected (%s); refetching once", endpoint, exc.errcode)
                await self._tokens.invalidate(secret, token)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _draw(self, endpoint: str, earlier: WeComError | None = None) -> None:
        """One call's place in the API's budget, or `WeComBudgetShort` (or, when an earlier
        attempt of this call may have gone through, that attempt's error: the caller must
        still treat the call as in doubt)."""
        if self._budget is None or endpoint == "gettoken":
            return
        priority = current_priority()
        waited = 0.0
        while not (draw := await self._budget.take(endpoint, priority)).ok:
            if draw.paused or priority is not Priority.FIRST or \
                    waited + draw.wait > self._max_budget_wait_s:
                if earlier is not None:
                    raise earlier
                # come back at a place in line, not at the first room, where everything
                # turned away meanwhile would meet again
                wait = draw.wait if draw.paused else \
                    max(draw.wait, self._budget.place_in_line([endpoint], priority))
                raise WeComBudgetShort(endpoint, wait, paused=draw.paused)
            await self._sleep(draw.wait)
            waited += draw.wait

    async def _blocked(self, exc: WeComRateLimited) -> WeComBudgetShort:
        """WeCom answered 45009: the API is blocked for a window, for every instance
        (retrying sooner only prolongs the block)."""
        assert self._budget is not None
        window = blocked_window_s(exc.errmsg)
        await self._budget.pause(exc.endpoint, window, exc.errmsg)
        return WeComBudgetShort(exc.endpoint, window, paused=True)

    async def _retrying(self, method: str, endpoint: str,
                        params: Mapping[str, str | int] | None, body: JSON | None,
                        token: str | None, *, safe_to_retry: bool) -> JSON:
        retries = 0
        earlier: WeComError | None = None
        while True:
            await self._draw(endpoint, earlier)
            try:
                return await self._roundtrip(method, endpoint, params, body, token)
            except (WeComRateLimited, WeComHTTPError) as exc:
                if self._budget is not None and isinstance(exc, WeComRateLimited) and \
                        exc.errcode == FREQUENCY_LIMITED:
                    raise await self._blocked(exc) from exc
                if retries >= self._max_retries or not _may_retry(exc, safe_to_retry):
                    raise
                if isinstance(exc, WeComHTTPError) and exc.maybe_processed:
                    earlier = exc
                delay = self.backoff_delay(retries)
                retries += 1
                logger.info("%s failed (%s); retry %d/%d in %.2f s", endpoint,
                            exc.errcode if exc.errcode is not None else exc.errmsg,
                            retries, self._max_retries, delay)
                await self._sleep(delay)

    def backoff_delay(self, attempt: int) -> float:
        """Full-jitter exponential backoff: ``min(max, base * 2**attempt) * random()``."""
        return min(self._backoff_max_s, self._backoff_base_s * 2 ** attempt) * self._jitter()

    @metered()
    async def _roundtrip(self, method: str, endpoint: str,
                         params: Mapping[str, str | int] | None, body: JSON | None,
                         token: str | None) -> JSON:
        """One HTTP exchange: the decoded answer, or a typed error. Never logs the query
        (it carries the token or the secret)."""
        query = {k: str(v) for k, v in (params or {}).items()}
        if token is not None:
            query["access_token"] = token
        started = time.perf_counter()

        def elapsed_ms() -> float:
            return (time.perf_counter() - started) * 1000

        try:
            async with self._session.request(method, f"{self._base_url}/{endpoint}",
                                             params=query, json=body,
                                             timeout=self._timeout) as resp:
                status = resp.status
                raw = await resp.read()
        except aiohttp.ClientConnectorError as exc:
            # never connected, so the request cannot have taken effect
            logger.debug("%s %s -> connection failed in %.0f ms", method, endpoint, elapsed_ms())
            raise WeComHTTPError(f"connection failed: {exc}", endpoint,
                                 maybe_processed=False) from exc
        except TimeoutError as exc:
            logger.debug("%s %s -> timeout in %.0f ms", method, endpoint, elapsed_ms())
            raise WeComHTTPError(f"no answer within {self._timeout_s} s", endpoint,
                                 maybe_processed=not isinstance(
                                     exc, aiohttp.ConnectionTimeoutError)) from exc
        except aiohttp.ClientResponseError:
            # its text holds the URL, and so the token: do not chain it
            logger.debug("%s %s -> bad response in %.0f ms", method, endpoint, elapsed_ms())
            raise WeComHTTPError("malformed HTTP response", endpoint) from None
        except aiohttp.ClientError as exc:
            logger.debug("%s %s -> %s in %.0f ms", method, endpoint, type(exc).__name__,
                         elapsed_ms())
            raise WeComHTTPError(f"transport error: {type(exc).__name__}", endpoint) from exc
        if status != 200:
            logger.debug("%s %s -> HTTP %s in %.0f ms", method, endpoint, status, elapsed_ms())
            raise WeComHTTPError(f"HTTP {status}", endpoint, status=status)
        data = _decode(raw)
        if data is None:
            logger.debug("%s %s -> non-JSON in %.0f ms", method, endpoint, elapsed_ms())
            raise WeComHTTPError("answer is not a JSON object", endpoint, status=status)
        errcode = data.get("errcode", 0)
        if not isinstance(errcode, int):
            raise WeComHTTPError(f"errcode is {errcode!r}", endpoint, status=status)
        logger.debug("%s %s -> errcode %s in %.0f ms", method, endpoint, errcode, elapsed_ms())
        if errcode != 0:
            raise error_for(errcode, str(data.get("errmsg", "")), endpoint)
        return data


def _decode(raw: bytes) -> JSON | None:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _filename(disposition: str) -> str:
    """`attachment; filename="a.jpg"` → `a.jpg` (only the name, never a path)."""
    for part in disposition.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "filename" and value:
            return value.strip().strip('"').replace("\\", "/").rsplit("/", 1)[-1]
    return ""


def _may_retry(exc: WeComError, safe_to_retry: bool) -> bool:
    """Whether repeating the call after ``exc`` can neither do harm nor be pointless."""
    if isinstance(exc, WeComRateLimited):
        return True  # WeCom refused the call; nothing happened
    if isinstance(exc, WeComHTTPError):
        if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
            return False  # our request is wrong; the same request will be wrong again
        return safe_to_retry or not exc.maybe_processed
    return False


def _recipients(touser: str | Sequence[str]) -> list[str]:
    members = touser.split("|") if isinstance(touser, str) else list(touser)
    members = list(dict.fromkeys(m.strip() for m in members if m and m.strip()))
    if not members:
        msg = "send_message needs at least one recipient"
        raise ValueError(msg)
    if "@all" in members:
        msg = "@all cannot be rate limited per member; list the userids"
        raise ValueError(msg)
    if len(members) > _MAX_RECIPIENTS:
        msg = f"at most {_MAX_RECIPIENTS} recipients per message"
        raise ValueError(msg)
    return members


def _ticket(answer: JSON, endpoint: str) -> tuple[str, int]:
    ticket, expires_in = answer.get("ticket"), answer.get("expires_in")
    if not isinstance(ticket, str) or not ticket:
        raise WeComHTTPError("answer has no ticket", endpoint, status=200)
    return ticket, expires_in if isinstance(expires_in, int) else _DEFAULT_EXPIRES_IN
