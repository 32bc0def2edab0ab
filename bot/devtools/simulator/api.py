"""The `/cgi-bin/...` endpoints, answering with WeCom's JSON shapes and error codes.

Handlers are plain functions `(state, request) -> dict` that raise `ApiError`; `CgiDispatcher`
does what WeCom does around them (token check, method check, logging) and injected faults.
Where WeCom's exact code for a rejection is not documented we answer 40058 (bad parameter).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from bot.devtools.simulator import transfers
from bot.devtools.simulator.oauth import redeem_code
from bot.devtools.simulator.state import (
    TRANSFER_WAIT_S,
    WELCOME_CODE_TTL_S,
    AccessToken,
    Call,
    ContactWay,
    Follow,
    FollowStatus,
    SimState,
    Transfer,
    random_id,
)

logger = logging.getLogger(__name__)

ERRMSG: dict[int, str] = {
    -1: "system busy",
    0: "ok",
    40001: "invalid credential",
    40003: "invalid userid",
    40008: "invalid message type",
    40014: "invalid access_token",
    40058: "invalid parameter",
    40068: "invalid tagid",
    40071: "tag name already exists",
    40096: "invalid external userid",
    40097: "该成员尚未离职",
    40099: "接替成员的客户数达到上限",
    40128: "客户转接过于频繁（90个自然日内，在职成员的每位客户仅可被转接2次）",
    40129: "当前客户正在转接中",
    40130: "原跟进人与接手人一样，不可继承",
    40131: "handover_userid 并不是外部联系人的跟进人",
    41001: "access_token missing",
    41041: "contact way has too many users",
    41050: "welcome code expired",
    41051: "welcome code already used",
    42001: "access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44004: "empty content",
    45002: "content size out of limit",
    45003: "title size out of limit",
    45004: "description size out of limit",
    45008: "article size out of limit",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    60111: "userid not found",
    60123: "invalid party id",
    81013: "user & party & tag all invalid",
    84061: "not external contact",
    301002: "not allow operate another agent with this accesstoken",
}

MSG_TYPES = ("text", "markdown", "textcard", "template_card", "file", "news")
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction",
              "multiple_interaction")
VISIBLE = {FollowStatus.HALF, FollowStatus.ACTIVE, FollowStatus.DELETED_BY_CUSTOMER}
MAX_WAY_USERS = 100
MAX_TEMP_EXPIRES_S = 14 * 86400
DEFAULT_TEMP_EXPIRES_S = 7 * 86400
DEFAULT_CHAT_EXPIRES_S = 86400


def errmsg_for(errcode: int, detail: str | None = None) -> str:
    """WeCom's errmsg shape: text, a hint, and the devtool link (never parse it)."""
    text = ERRMSG.get(errcode, "error")
    if errcode == 0:
        return text
    hint = f", hint: [sim: {detail}]" if detail else ""
    return f"{text}{hint}, more info at https://open.work.weixin.qq.com/devtool/query?e={errcode}"


class ApiError(Exception):
    """A WeCom error answer: JSON with a non-zero errcode (and HTTP 200, as WeCom does)."""

    def __init__(self, errcode: int, detail: str | None = None, *,
                 errmsg: str | None = None) -> None:
        self.errcode = errcode
        self.detail = detail
        self.errmsg = errmsg or errmsg_for(errcode, detail)  # `errmsg` is used verbatim
        super().__init__(f"{errcode}: {self.errmsg}")


@dataclass
class ApiRequest:
    query: dict[str, str]
    body: dict[str, Any]
    secret_label: str | None


Handler = Callable[[SimState, ApiRequest], "dict[str, Any] | MediaFile"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    handler: Handler


# --- small validators --------------------------------------------------------------------------


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise ApiError(40058, f"{key} is required")
        return ""
    if not isinstance(value, str):
        raise ApiError(40058, f"{key} must be a string")
    return value


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or value is None:
        raise ApiError(40058, f"{key} must be an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(40058, f"{key} must be an integer") from None


def _str_list(data: dict[str, Any], key: str) -> list[str]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(40058, f"{key} must be a list of strings")
    return value


def _int_list(data: dict[str, Any], key: str) -> list[int]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ApiError(40058, f"{key} must be a list of integers")
    return value


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(40058, f"{key} must be an object")
    return value


def _member(state: SimState, userid: str, errcode: int = 40003) -> None:
    if userid not in state.members:
        raise ApiError(errcode, f"unknown userid {userid!r}")


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


# --- token and directory -----------------------------------------------------------------------


def gettoken(state: SimState, req: ApiRequest) -> dict[str, Any]:
    secret = req.query.get("corpsecret", "")
    if req.query.get("corpid") != state.corp_id or secret not in state.secrets:
        raise ApiError(40001, "wrong corpid or corpsecret")
    tok = state.issue_token(secret)
    return {"access_token": tok.token, "expires_in": 7200}


def user_get(state: SimState, req: ApiRequest) -> dict[str, Any]:
    member = state.members.get(req.query.get("userid", ""))
    if member is None:
        raise ApiError(60111, f"userid {req.query.get('userid', '')!r} not found")
    return member.to_api()


def user_simplelist(state: SimState, req: ApiRequest) -> dict[str, Any]:
    dept_id = _int(req.query, "department_id", 1)
    if dept_id not in state.departments:
        raise ApiError(60123, f"department {dept_id} not found")
    depts = (state.subdepartments(dept_id) if req.query.get("fetch_child") == "1"
             else [dept_id])
    users = [m for m in state.members.values() if set(depts) & set(m.department)]
    return {"userlist": [{"userid": m.userid, "name": m.name, "department": m.department}
                         for m in users]}


def department_list(state: SimState, req: ApiRequest) -> dict[str, Any]:
    if "id" in req.query and req.query["id"] != "":
        root = _int(req.query, "id")
        if root not in state.departments:
            raise ApiError(60123, f"department {root} not found")
        ids = state.subdepartments(root)
    else:
        ids = list(state.departments)
    return {"department": [state.departments[i].to_api() for i in ids]}


# --- app messages ------------------------------------------------------------------------------


def _check_payload(msgtype: str, payload: dict[str, Any]) -> None:
    if msgtype in ("text", "markdown"):
        content = _str(payload, "content", required=False)
        if not content:
            raise ApiError(44004, f"{msgtype}.content is empty")
        if _utf8_len(content) > 2048:
            raise ApiError(45002, f"{msgtype}.content is {_utf8_len(content)} bytes, max 2048")
    elif msgtype == "textcard":
        title = _str(payload, "title")
        description = _str(payload, "description")
        _str(payload, "url")
        if len(title) > 128:
            raise ApiError(45003, "textcard.title is longer than 128 characters")
        if len(description) > 512:
            raise ApiError(45004, "textcard.description is longer than 512 characters")
    elif msgtype == "template_card":
        card_type = payload.get("card_type")
        if card_type not in CARD_TYPES:
            raise ApiError(40058, f"template_card.card_type {card_type!r} is not supported")
        if card_type == "text_notice" and not isinstance(payload.get("card_action"), dict):
            raise ApiError(40058, "text_notice needs card_action")
    elif msgtype == "file":
        _str(payload, "media_id")
    elif msgtype == "news":
        articles = payload.get("articles")
        if not isinstance(articles, list) or not 1 <= len(articles) <= 8:
            raise ApiError(45008, "news needs 1-8 articles")


def _recipients(state: SimState, body: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """Resolve touser/toparty/totag to member ids, plus the invalid entries of each."""
    touser = body.get("touser") or ""
    toparty = body.get("toparty") or ""
    totag = body.get("totag") or ""
    if not all(isinstance(v, str) for v in (touser, toparty, totag)):
        raise ApiError(40058, "touser, toparty and totag are '|'-separated strings")
    if not (touser or toparty or totag):
        raise ApiError(40058, "touser, toparty and totag are all empty")
    found: dict[str, None] = {}
    invalid: dict[str, list[str]] = {"user": [], "party": [], "tag": []}
    if touser == "@all":
        found.update(dict.fromkeys(state.members))
    else:
        for userid in filter(None, touser.split("|")):
            if userid in state.members:
                found[userid] = None
            else:
                invalid["user"].append(userid)
    for party in filter(None, toparty.split("|")):
        if party.isdigit() and int(party) in state.departments:
            found.update(dict.fromkeys(state.members_in([int(party)])))
        else:
            invalid["party"].append(party)
    invalid["tag"].extend(filter(None, totag.split("|")))  # member tags are not simulated
    return list(found), invalid


def media_upload(state: SimState, req: ApiRequest) -> dict[str, Any]:
    """Temporary media (valid 3 days in WeCom): a multipart `media` field, ≤ 20 MB for files."""
    media_type = req.query.get("type", "")
    if media_type not in ("image", "voice", "video", "file"):
        raise ApiError(40004, f"invalid media type {media_type!r}")
    content = req.body.get("content")
    if not isinstance(content, bytes) or not content:
        raise ApiError(41005, "media data missing")
    if len(content) > 20 * 1024 * 1024:
        raise ApiError(40006, "invalid file size")
    media_id = state.add_media(str(req.body.get("filename") or "file"), content,
                               "application/octet-stream")
    return {"type": media_type, "media_id": media_id,
            "created_at": str(int(state.clock.timestamp()))}


@dataclass(frozen=True)
class MediaFile:
    """An answer that is a file, not JSON (media/get)."""

    filename: str
    content_type: str
    content: bytes


def media_get(state: SimState, req: ApiRequest) -> MediaFile:
    """Temporary media as a file; 40007 once its 3 days are over (or it never existed)."""
    found = state.live_media(req.query.get("media_id", ""))
    if found is None:
        raise ApiError(40007, errmsg="invalid media_id")
    return MediaFile(*found)


def message_send(state: SimState, req: ApiRequest) -> dict[str, Any]:
    body = req.body
    agentid = _int(body, "agentid")
    if agentid != state.agent_id:
        raise ApiError(301002, f"agentid {agentid} is not this token's app")
    msgtype = body.get("msgtype")
    if msgtype not in MSG_TYPES:
        raise ApiError(40008, f"msgtype {msgtype!r} is not supported")
    payload = _dict(body, msgtype)
    _check_payload(msgtype, payload)
    users, invalid = _recipients(state, body)
    if not users:
        raise ApiError(81013, "no valid recipient")
    duplicate_key = None
    if body.get("enable_duplicate_check") in (1, "1", True):
        # WeCom does not deliver an identical message again inside the interval (max 4 h).
        interval = min(int(body.get("duplicate_check_interval") or 1800), 4 * 3600)
        duplicate_key = json.dumps({k: v for k, v in body.items() if k not in (
            "enable_duplicate_check", "duplicate_check_interval")}, sort_keys=True,
            ensure_ascii=False)
        seen = state.duplicate_checks.get(duplicate_key)
        if seen is not None and state.clock.timestamp() - seen[0] < interval:
            state.duplicates_dropped += 1
            return {"invaliduser": "", "msgid": seen[1]}
    blocked = [u for u in users if state.send_blocked(u)]
    if blocked:
        # WeCom silently drops these; we answer 45009 so tests can see the limit was hit.
        raise ApiError(45009, f"over 30/min or 1000/h app messages to {','.join(blocked)}")
    for userid in users:
        state.record_send(userid)
    msgid = random_id("", 44)
    if duplicate_key is not None:
        state.duplicate_checks[duplicate_key] = (state.clock.timestamp(), msgid)
    state.sent_messages.append({
        "msgid": msgid, "touser": users, "invaliduser": invalid["user"],
        "toparty": body.get("toparty") or "", "totag": body.get("totag") or "",
        "msgtype": msgtype, msgtype: payload, "payload": payload, "agentid": agentid,
        "at": state.now(),
    })
    answer: dict[str, Any] = {"invaliduser": "|".join(invalid["user"]), "msgid": msgid}
    if body.get("toparty"):
        answer["invalidparty"] = "|".join(invalid["party"])
    if body.get("totag"):
        answer["invalidtag"] = "|".join(invalid["tag"])
    if msgtype == "template_card" and payload.get("card_type") not in ("text_notice",
                                                                         "news_notice"):
        answer["response_code"] = random_id("", 40)
    return answer


# --- external contacts -------------------------------------------------------------------------


def _follow_to_api(state: SimState, follow: Follow) -> dict[str, Any]:
    tags = []
    for tag_id in follow.tag_ids:
        tag = state.live_tag(tag_id)
        if tag is not None:
            tags.append({"group_name": state.tag_groups[tag.group_id].name,
                         "tag_name": tag.name, "type": 1, "tag_id": tag.id})
    data: dict[str, Any] = {
        "userid": follow.userid, "remark": follow.remark, "description": follow.description,
        "createtime": follow.createtime, "tags": tags, "remark_corp_name": "",
        "remark_mobiles": list(follow.remark_mobiles), "oper_userid": follow.oper_userid,
        "add_way": follow.add_way,
    }
    if follow.state:
        data["state"] = follow.state
    return data


def externalcontact_get(state: SimState, req: ApiRequest) -> dict[str, Any]:
    ext = req.query.get("external_userid", "")
    contact = state.contacts.get(ext)
    if contact is None:
        raise ApiError(40096, f"external_userid {ext!r} not found")
    follows = [f for f in state.follows_of(ext) if f.status in VISIBLE]
    if not follows:
        raise ApiError(84061, "no member has this customer any more")
    return {"external_contact": contact.to_api(),
            "follow_user": [_follow_to_api(state, f) for f in follows]}


def externalcontact_list(state: SimState, req: ApiRequest) -> dict[str, Any]:
    userid = req.query.get("userid", "")
    _member(state, userid)
    return {"external_userid": state.customers_of(userid, VISIBLE)}


def get_follow_user_list(state: SimState, req: ApiRequest) -> dict[str, Any]:
    return {"follow_user": list(state.members)}


def mark_tag(state: SimState, req: ApiRequest) -> dict[str, Any]:
    body = req.body
    userid = _str(body, "userid")
    ext = _str(body, "external_userid")
    add, remove = _str_list(body, "add_tag"), _str_list(body, "remove_tag")
    if not add and not remove:
        raise ApiError(40058, "add_tag and remove_tag are both empty")
    _member(state, userid)
    if ext not in state.contacts:
        raise ApiError(40096, f"external_userid {ext!r} not found")
    unknown = [t for t in add + remove if state.live_tag(t) is None]
    if unknown:
        raise ApiError(40068, f"unknown tag ids {unknown}")
    follow = state.follow(userid, ext)
    if follow is None or follow.status != FollowStatus.ACTIVE:
        status = follow.status.value if follow else "absent"
        raise ApiError(84061, f"relationship {userid}/{ext} is {status}")
    follow.tag_ids = [t for t in follow.tag_ids if t not in remove]
    follow.tag_ids.extend(t for t in dict.fromkeys(add) if t not in follow.tag_ids)
    return {}


def get_corp_tag_list(state: SimState, req: ApiRequest) -> dict[str, Any]:
    tag_ids, group_ids = _str_list(req.body, "tag_id"), _str_list(req.body, "group_id")
    groups = [g for g in state.tag_groups.values() if not g.deleted]
    if group_ids:  # WeCom ignores tag_id when group_id is given
        return {"tag_group": [g.to_api() for g in groups if g.group_id in group_ids]}
    if tag_ids:
        wanted = set(tag_ids)
        return {"tag_group": [g.to_api(only=wanted) for g in groups
                              if any(t.id in wanted and not t.deleted for t in g.tags)]}
    return {"tag_group": [g.to_api() for g in groups]}


def add_corp_tag(state: SimState, req: ApiRequest) -> dict[str, Any]:
    body = req.body
    group_id = _str(body, "group_id", required=False)
    group_name = _str(body, "group_name", required=False)
    raw_tags = body.get("tag")
    if not isinstance(raw_tags, list) or not raw_tags \
            or not all(isinstance(t, dict) and isinstance(t.get("name"), str) and t["name"]
                       for t in raw_tags):
        raise ApiError(40058, "tag must be a non-empty list of {name, order?}")
    names = [t["name"] for t in raw_tags]
    if any(len(n) > 30 for n in names):
        raise ApiError(40058, "tag names are at most 30 characters")
    if group_id:
        group = state.tag_groups.get(group_id)
        if group is None or group.deleted:
            raise ApiError(40068, f"group_id {group_id!r} not found")
    elif group_name:
        group = state.group_by_name(group_name)
    else:
        raise ApiError(40058, "group_id or group_name is required")
    existing = {t.name for t in group.tags if not t.deleted} if group else set()
    duplicates = [n for n in names if n in existing] + [n for i, n in enumerate(names)
                                                        if n in names[:i]]
    if duplicates:
        raise ApiError(40071, f"tag {duplicates[0]!r} already exists in the group")
    if group is None:
        group = state.create_group(group_name, _int(body, "order", 0))
    created = [state.create_tag(group, t["name"], _int(t, "order", 0)) for t in raw_tags]
    return {"tag_group": group.to_api(only={t.id for t in created})}


def edit_corp_tag(state: SimState, req: ApiRequest) -> dict[str, Any]:
    item_id = _str(req.body, "id")
    name = _str(req.body, "name", required=False)
    tag = state.live_tag(item_id)
    group = state.tag_groups.get(item_id)
    if tag is not None:
        if name:
            siblings = state.tag_groups[tag.group_id].tags
            if any(t.name == name and t.id != tag.id and not t.deleted for t in siblings):
                raise ApiError(40071, f"tag {name!r} already exists in the group")
            tag.name = name
        if "order" in req.body:
            tag.order = _int(req.body, "order")
    elif group is not None and not group.deleted:
        if name:
            group.name = name
        if "order" in req.body:
            group.order = _int(req.body, "order")
    else:
        raise ApiError(40068, f"id {item_id!r} not found")
    return {}


def del_corp_tag(state: SimState, req: ApiRequest) -> dict[str, Any]:
    tag_ids, group_ids = _str_list(req.body, "tag_id"), _str_list(req.body, "group_id")
    if not tag_ids and not group_ids:
        raise ApiError(40058, "tag_id and group_id are both empty")
    unknown = [t for t in tag_ids if state.live_tag(t) is None] + [
        g for g in group_ids if g not in state.tag_groups or state.tag_groups[g].deleted]
    if unknown:
        raise ApiError(40068, f"unknown ids {unknown}")
    for tag_id in tag_ids:
        state.tags[tag_id].deleted = True
    for group_id in group_ids:
        group = state.tag_groups[group_id]
        group.deleted = True
        for tag in group.tags:
            tag.deleted = True
    for group in state.tag_groups.values():  # a group whose last tag went goes too
        if group.tags and all(t.deleted for t in group.tags):
            group.deleted = True
    return {}


# --- contact ways ------------------------------------------------------------------------------


def _apply_way_fields(state: SimState, way: ContactWay, body: dict[str, Any]) -> None:
    """Validate and copy the settable fields of add/update_contact_way onto `way`."""
    if "state" in body:
        value = _str(body, "state", required=False)
        if len(value) > 30:
            raise ApiError(40058, "state is longer than 30 characters")
        way.state = value or None
    if "remark" in body:
        value = _str(body, "remark", required=False)
        if len(value) > 30:
            raise ApiError(40058, "remark is longer than 30 characters")
        way.remark = value
    if "style" in body and body["style"] is not None:
        way.style = _int(body, "style")
    if "skip_verify" in body:
        way.skip_verify = bool(body["skip_verify"])
    if "user" in body:
        way.user = _str_list(body, "user")
    if "party" in body:
        way.party = _int_list(body, "party")
    for userid in way.user:
        _member(state, userid)
    for party in way.party:
        if party not in state.departments:
            raise ApiError(60123, f"department {party} not found")
    if way.type == 1 and (len(way.user) != 1 or way.party):
        raise ApiError(40058, "type 1 (single) needs exactly one user and no party")
    if not way.user and not way.party:
        raise ApiError(40058, "user and party are both empty")
    if len(state.way_members(way)) > MAX_WAY_USERS:
        raise ApiError(41041, f"more than {MAX_WAY_USERS} members")
    if "expires_in" in body or "chat_expires_in" in body or way.is_temp:
        if not way.is_temp and ("expires_in" in body or "chat_expires_in" in body):
            raise ApiError(40058, "expires_in needs is_temp")
        if "expires_in" in body:
            way.expires_in = _int(body, "expires_in")
        if "chat_expires_in" in body:
            way.chat_expires_in = _int(body, "chat_expires_in")
        if way.expires_in is not None and not 0 < way.expires_in <= MAX_TEMP_EXPIRES_S:
            raise ApiError(40058, "expires_in must be within 14 days")
    if "unionid" in body:
        way.unionid = _str(body, "unionid", required=False) or None
    if "conclusions" in body:
        way.conclusions = _dict(body, "conclusions")


def add_contact_way(state: SimState, req: ApiRequest) -> dict[str, Any]:
    body = req.body
    way_type, scene = _int(body, "type", 0), _int(body, "scene", 0)
    if way_type not in (1, 2):
        raise ApiError(40058, "type must be 1 (single) or 2 (multi)")
    if scene not in (1, 2):
        raise ApiError(40058, "scene must be 1 (mini program) or 2 (QR code)")
    is_temp = bool(body.get("is_temp", False))
    if is_temp and way_type != 1:
        raise ApiError(40058, "is_temp needs type 1")
    way = ContactWay(random_id("", 32, "0123456789abcdef"), way_type, scene, state.timestamp(),
                     is_temp=is_temp)
    if is_temp:
        way.expires_in, way.chat_expires_in = DEFAULT_TEMP_EXPIRES_S, DEFAULT_CHAT_EXPIRES_S
    _apply_way_fields(state, way, body)
    if scene == 2:
        way.qr_code = f"https://sim.scrmbot.local/qr/{way.config_id}.png"
    state.contact_ways[way.config_id] = way
    answer: dict[str, Any] = {"config_id": way.config_id}
    if way.qr_code:
        answer["qr_code"] = way.qr_code
    return answer


def _way(state: SimState, body: dict[str, Any]) -> ContactWay:
    config_id = _str(body, "config_id")
    way = state.contact_ways.get(config_id)
    if way is None or way.deleted:
        raise ApiError(40058, f"config_id {config_id!r} not found")
    return way


def get_contact_way(state: SimState, req: ApiRequest) -> dict[str, Any]:
    return {"contact_way": _way(state, req.body).to_api()}


def update_contact_way(state: SimState, req: ApiRequest) -> dict[str, Any]:
    way = _way(state, req.body)
    draft = replace(way, user=list(way.user), party=list(way.party))
    _apply_way_fields(state, draft, req.body)  # validate fully before changing anything
    state.contact_ways[way.config_id] = draft
    return {}


def del_contact_way(state: SimState, req: ApiRequest) -> dict[str, Any]:
    _way(state, req.body).deleted = True
    return {}


def list_contact_way(state: SimState, req: ApiRequest) -> dict[str, Any]:
    ways = [w for w in state.contact_ways.values() if not w.deleted]
    return {"contact_way": [{"config_id": w.config_id} for w in ways]}


# --- reaching customers ------------------------------------------------------------------------


def _check_content(body: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    text = _dict(body, "text")
    attachments = body.get("attachments") or []
    if not isinstance(attachments, list):
        raise ApiError(40058, "attachments must be a list")
    if len(attachments) > 9:
        raise ApiError(40058, "at most 9 attachments")
    content = text.get("content") or ""
    if not isinstance(content, str):
        raise ApiError(40058, "text.content must be a string")
    if _utf8_len(content) > 4000:
        raise ApiError(45002, f"text.content is {_utf8_len(content)} bytes, max 4000")
    if not content and not attachments:
        raise ApiError(40058, "text and attachments are both empty")
    return text, attachments


def send_welcome_msg(state: SimState, req: ApiRequest) -> dict[str, Any]:
    code_str = _str(req.body, "welcome_code")
    code = state.welcome_codes.get(code_str)
    if code is None:
        raise ApiError(40058, "unknown welcome_code")
    text, attachments = _check_content(req.body)
    if code.used:
        raise ApiError(41051, "welcome_code already used")
    if state.timestamp() - code.issued_at > WELCOME_CODE_TTL_S:
        raise ApiError(41050, f"welcome_code is older than {WELCOME_CODE_TTL_S}s")
    code.used = True
    state.welcome_messages.append({
        "welcome_code": code.code, "userid": code.userid, "external_userid": code.external_userid,
        "text": text, "attachments": attachments, "at": state.now(),
    })
    return {}


def add_msg_template(state: SimState, req: ApiRequest) -> dict[str, Any]:
    body = req.body
    chat_type = body.get("chat_type") or "single"
    if chat_type not in ("single", "group"):
        raise ApiError(40058, "chat_type must be single or group")
    sender = _str(body, "sender", required=False)
    if sender:
        _member(state, sender)
    targets = _str_list(body, "external_userid")
    text, attachments = _check_content(body)
    if chat_type == "group" and not sender:
        raise ApiError(40058, "group messages need a sender")
    if chat_type == "single" and not targets:
        if not sender:
            raise ApiError(40058, "external_userid and sender are both empty")
        targets = state.customers_of(sender, {FollowStatus.ACTIVE})
    if len(targets) > 10000:
        raise ApiError(40058, "at most 10000 customers")
    month = state.month_key()
    accepted: list[str] = []
    fail_list: list[str] = []
    for ext in dict.fromkeys(targets):
        related = [f for f in state.follows_of(ext) if f.status == FollowStatus.ACTIVE
                   and (not sender or f.userid == sender)]
        if not related or state.group_msg_counts.get((ext, month), 0) >= 4:
            fail_list.append(ext)
            continue
        state.group_msg_counts[(ext, month)] = state.group_msg_counts.get((ext, month), 0) + 1
        accepted.append(ext)
    msgid = random_id("msg", 24)
    state.msg_templates.append({
        "msgid": msgid, "chat_type": chat_type, "sender": sender or None,
        "external_userid": accepted, "fail_list": fail_list, "text": text,
        "attachments": attachments, "at": state.now(), "create_time": state.unix(),
    })
    return {"msgid": msgid, "fail_list": fail_list}


GROUPMSG_LIST_MAX_SPAN_S = 31 * 86400  # WeCom: start and end at most one month apart


def get_groupmsg_list_v2(state: SimState, req: ApiRequest) -> dict[str, Any]:
    """Group-message tasks created in [start_time, end_time], newest first, by creator."""
    body = req.body
    chat_type = body.get("chat_type") or "single"
    start, end = _int(body, "start_time"), _int(body, "end_time")
    if end < start or end - start > GROUPMSG_LIST_MAX_SPAN_S:
        raise ApiError(40058, "start_time and end_time must be at most one month apart")
    creator = _str(body, "creator", required=False)
    filter_type = _int(body, "filter_type", 2)
    limit = min(max(_int(body, "limit", 50), 1), 100)
    offset = int(_str(body, "cursor", required=False) or 0)
    found = [t for t in reversed(state.msg_templates)
             if t["chat_type"] == chat_type and start <= t["create_time"] <= end
             and (not creator or t["sender"] == creator) and filter_type in (0, 2)]
    page = found[offset:offset + limit]
    next_cursor = str(offset + limit) if offset + limit < len(found) else ""
    return {"next_cursor": next_cursor, "group_msg_list": [
        {"msgid": t["msgid"], "creator": t["sender"] or "", "create_time": str(t["create_time"]),
         "create_type": 0, "text": t["text"], "attachments": t["attachments"]}
        for t in page]}


# --- transfers ---------------------------------------------------------------------------------

MAX_TRANSFER_CUSTOMERS = 100
MAX_SUCCESS_MSG_CHARS = 200
TRANSFER_PAGE_SIZE = 1000
MAX_UNASSIGNED_PAGE = 1000


def _transfer_members(state: SimState, body: dict[str, Any], resigned: bool) -> tuple[str, str]:
    """Top-level checks of handover and takeover: a resigned handover only for 离职继承, an
    active one only for 在职继承 (a resigned member is gone from the directory there)."""
    handover, takeover = _str(body, "handover_userid"), _str(body, "takeover_userid")
    if handover == takeover:
        raise ApiError(40130, "handover and takeover are the same member")
    _member(state, handover, 60111)
    _member(state, takeover, 60111)
    handover_resigned = state.members[handover].status == 5
    if resigned and not handover_resigned:
        raise ApiError(40097, f"{handover!r} has not resigned")
    if not resigned and handover_resigned:
        raise ApiError(60111, f"{handover!r} has resigned; use resigned/transfer_customer")
    if state.members[takeover].status != 1:
        raise ApiError(60111, f"takeover {takeover!r} is not an active member")
    return handover, takeover


def _success_msg(body: dict[str, Any], resigned: bool) -> str | None:
    """在职继承's message to the customer (≤ 200 characters); 离职继承 has none."""
    if resigned:
        return None
    msg = _str(body, "transfer_success_msg", required=False)
    if len(msg) > MAX_SUCCESS_MSG_CHARS:
        raise ApiError(40058, f"transfer_success_msg is over {MAX_SUCCESS_MSG_CHARS} characters")
    return msg or None


def _transfer_errcode(state: SimState, handover: str, takeover: str, ext: str,
                      resigned: bool) -> int:
    """The per-customer errcode WeCom answers for one customer of the request."""
    if ext not in state.contacts:
        return 40096
    if not transfers.has_relationship(state.follow(handover, ext), resigned):
        return 40131
    if transfers.waiting_for(state, handover, ext) is not None:
        return 40129
    if not resigned and transfers.too_frequent(state, ext):
        return 40128
    if transfers.at_limit(state, takeover, count_waiting=True):
        return 40099
    return 0


def _transfer(state: SimState, req: ApiRequest, resigned: bool) -> dict[str, Any]:
    body = req.body
    handover, takeover = _transfer_members(state, body, resigned)
    customers = _str_list(body, "external_userid")
    if not 1 <= len(customers) <= MAX_TRANSFER_CUSTOMERS:
        raise ApiError(40058, f"external_userid needs 1-{MAX_TRANSFER_CUSTOMERS} customers")
    success_msg = _success_msg(body, resigned)
    transfers.settle_transfers(state)  # due ones end first; their callbacks stay queued
    results = []
    for ext in customers:
        errcode = _transfer_errcode(state, handover, takeover, ext, resigned)
        if errcode == 0:
            created = state.timestamp()
            state.transfers.append(Transfer(
                handover, takeover, ext, created, resigned=resigned,
                takeover_time=int(created + TRANSFER_WAIT_S), success_msg=success_msg))
        results.append({"external_userid": ext, "errcode": errcode})
    return {"customer": results}


def transfer_customer(state: SimState, req: ApiRequest) -> dict[str, Any]:
    return _transfer(state, req, resigned=False)


def resigned_transfer_customer(state: SimState, req: ApiRequest) -> dict[str, Any]:
    return _transfer(state, req, resigned=True)


def _cursor(body: dict[str, Any]) -> int:
    """Our cursors are string offsets; anything else is a bad parameter."""
    cursor = _str(body, "cursor", required=False)
    if cursor and not cursor.isdigit():
        raise ApiError(40058, f"invalid cursor {cursor!r}")
    return int(cursor or 0)


def _next_cursor(offset: int, size: int, total: int) -> str:
    return str(offset + size) if offset + size < total else ""


def _transfer_result(state: SimState, req: ApiRequest, resigned: bool) -> dict[str, Any]:
    """The pair's transfers of this kind, latest per customer, settled lazily first."""
    handover, takeover = _str(req.body, "handover_userid"), _str(req.body, "takeover_userid")
    offset = _cursor(req.body)
    transfers.settle_transfers(state)
    found = transfers.latest_per_customer([
        t for t in state.transfers if t.resigned == resigned
        and (t.handover_userid, t.takeover_userid) == (handover, takeover)])
    page = found[offset:offset + TRANSFER_PAGE_SIZE]
    return {"customer": [{"external_userid": t.external_userid, "status": t.status,
                          "takeover_time": t.takeover_time} for t in page],
            "next_cursor": _next_cursor(offset, TRANSFER_PAGE_SIZE, len(found))}


def transfer_result(state: SimState, req: ApiRequest) -> dict[str, Any]:
    return _transfer_result(state, req, resigned=False)


def resigned_transfer_result(state: SimState, req: ApiRequest) -> dict[str, Any]:
    return _transfer_result(state, req, resigned=True)


def get_unassigned_list(state: SimState, req: ApiRequest) -> dict[str, Any]:
    """Resigned members' customers nobody has taken over yet (待分配)."""
    page_size = _int(req.body, "page_size", MAX_UNASSIGNED_PAGE)
    if not 1 <= page_size <= MAX_UNASSIGNED_PAGE:
        raise ApiError(40058, f"page_size must be 1-{MAX_UNASSIGNED_PAGE}")
    offset = _cursor(req.body)
    transfers.settle_transfers(state)
    rows = transfers.unassigned(state)
    page = rows[offset:offset + page_size]
    next_cursor = _next_cursor(offset, page_size, len(rows))
    return {"info": [{"handover_userid": h, "external_userid": e, "dimission_time": t}
                     for h, e, t in page],
            "is_last": not next_cursor, "next_cursor": next_cursor}


def auth_getuserinfo(state: SimState, req: ApiRequest) -> dict[str, Any]:
    """A login code → the member (``userid``); a used, expired or unknown code is 40029."""
    if req.secret_label != "app":
        raise ApiError(40029, "invalid code: exchange it with the app's own access token")
    userid = redeem_code(state, req.query.get("code", ""))
    if userid is None:
        raise ApiError(40029, "invalid code")
    return {"userid": userid, "user_ticket": f"sim-ticket-{secrets.token_hex(8)}",
            "expires_in": 1800}


JS_TICKET_TTL_S = 7200
# WeCom's limits on fetching JS-SDK tickets: per corp an hour, and per app an hour
JS_TICKET_LIMITS = {"corp": 400, "agent": 100}


def _js_ticket(state: SimState, kind: str) -> dict[str, Any]:
    """The current ticket of `kind` (a new one once it expired), within the hourly limit."""
    now = state.timestamp()
    fetches = state.js_ticket_fetches.setdefault(kind, deque())
    while fetches and fetches[0] <= now - 3600:
        fetches.popleft()
    if len(fetches) >= JS_TICKET_LIMITS[kind]:
        raise ApiError(45009, f"over {JS_TICKET_LIMITS[kind]} {kind} jsapi tickets per hour")
    fetches.append(now)
    current = state.js_tickets.get(kind)
    if current is None or current[1] <= now:
        current = (f"sim-{kind}-jsapi-{secrets.token_urlsafe(24)}", now + JS_TICKET_TTL_S)
        state.js_tickets[kind] = current
    return {"ticket": current[0], "expires_in": int(current[1] - now)}


def get_jsapi_ticket(state: SimState, req: ApiRequest) -> dict[str, Any]:
    """The corp's jsapi_ticket (wx.config signatures)."""
    return _js_ticket(state, "corp")


def ticket_get(state: SimState, req: ApiRequest) -> dict[str, Any]:
    """The app's ticket (``type=agent_config``: wx.agentConfig signatures); it needs the
    app's own access token."""
    if req.query.get("type") != "agent_config":
        raise ApiError(40058, "type must be agent_config")
    if req.secret_label != "app":
        raise ApiError(48002, "api forbidden: the agent ticket needs the app's access token")
    return _js_ticket(state, "agent")


ENDPOINTS: dict[str, Endpoint] = {
    "auth/getuserinfo": Endpoint("GET", auth_getuserinfo),
    "get_jsapi_ticket": Endpoint("GET", get_jsapi_ticket),
    "ticket/get": Endpoint("GET", ticket_get),
    "gettoken": Endpoint("GET", gettoken),
    "user/get": Endpoint("GET", user_get),
    "user/simplelist": Endpoint("GET", user_simplelist),
    "department/list": Endpoint("GET", department_list),
    "message/send": Endpoint("POST", message_send),
    "media/upload": Endpoint("POST", media_upload),
    "media/get": Endpoint("GET", media_get),
    "externalcontact/get": Endpoint("GET", externalcontact_get),
    "externalcontact/list": Endpoint("GET", externalcontact_list),
    "externalcontact/get_follow_user_list": Endpoint("GET", get_follow_user_list),
    "externalcontact/mark_tag": Endpoint("POST", mark_tag),
    "externalcontact/get_corp_tag_list": Endpoint("POST", get_corp_tag_list),
    "externalcontact/add_corp_tag": Endpoint("POST", add_corp_tag),
    "externalcontact/edit_corp_tag": Endpoint("POST", edit_corp_tag),
    "externalcontact/del_corp_tag": Endpoint("POST", del_corp_tag),
    "externalcontact/add_contact_way": Endpoint("POST", add_contact_way),
    "externalcontact/get_contact_way": Endpoint("POST", get_contact_way),
    "externalcontact/update_contact_way": Endpoint("POST", update_contact_way),
    "externalcontact/del_contact_way": Endpoint("POST", del_contact_way),
    "externalcontact/list_contact_way": Endpoint("POST", list_contact_way),
    "externalcontact/send_welcome_msg": Endpoint("POST", send_welcome_msg),
    "externalcontact/add_msg_template": Endpoint("POST", add_msg_template),
    "externalcontact/get_groupmsg_list_v2": Endpoint("POST", get_groupmsg_list_v2),
    "externalcontact/transfer_customer": Endpoint("POST", transfer_customer),
    "externalcontact/transfer_result": Endpoint("POST", transfer_result),
    "externalcontact/resigned/transfer_customer": Endpoint("POST", resigned_transfer_customer),
    "externalcontact/resigned/transfer_result": Endpoint("POST", resigned_transfer_result),
    "externalcontact/get_unassigned_list": Endpoint("POST", get_unassigned_list),
}


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


class CgiDispatcher:
    """The aiohttp handler for `/cgi-bin/{endpoint}`: WeCom's envelope around every handler."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def _token_label(self, token: str | None) -> str | None:
        tok = self.state.tokens.get(token or "")
        return tok.label if tok is not None and self.state.token_valid(tok) else None

    def _authenticate(self, token: str | None) -> AccessToken:
        if not token:
            raise ApiError(41001, "access_token belongs in the query string")
        tok = self.state.tokens.get(token)
        if tok is None or tok.revoked:
            raise ApiError(40014)
        if not self.state.token_valid(tok):
            raise ApiError(42001)
        return tok

    async def handle(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"].strip("/")
        query = dict(request.query)
        token = query.pop("access_token", None)
        raw = b"" if endpoint == "media/upload" else await request.read()
        body: dict[str, Any] | None = None
        bad_json = False
        if endpoint == "media/upload" and request.content_type == "multipart/form-data":
            form = await request.post()
            media = form.get("media")
            body = {} if not isinstance(media, web.FileField) else {
                "filename": media.filename, "content": media.file.read()}
        elif raw:
            try:
                parsed = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                parsed = None
            bad_json = not isinstance(parsed, dict)
            body = parsed if isinstance(parsed, dict) else None
        spec = ENDPOINTS.get(endpoint)
        label = (self.state.secrets.get(query.get("corpsecret", ""))
                 if endpoint == "gettoken" else self._token_label(token))
        status = 200
        answer: dict[str, Any] | MediaFile = {}
        try:
            if spec is None:
                status = 404
                raise ApiError(40058, f"unknown endpoint {endpoint!r}")
            fault = self.state.take_fault(endpoint)
            if fault is not None:
                raise ApiError(fault.errcode, "injected by fail_next", errmsg=fault.errmsg)
            if request.method != spec.method:
                raise ApiError(43001 if spec.method == "GET" else 43002)
            if endpoint != "gettoken":
                self._authenticate(token)
                refusal = self.state.api_frequency_refusal(endpoint)
                if refusal is not None:
                    raise ApiError(45009, refusal)
            if bad_json:
                raise ApiError(40058, "body is not a JSON object")
            answer = spec.handler(self.state, ApiRequest(query, body or {}, label))
            errcode, errmsg = 0, "ok"
        except ApiError as exc:
            errcode, errmsg, answer = exc.errcode, exc.errmsg, {}
        self.state.calls.append(Call(request.method, endpoint, query, body, errcode,
                                     self.state.now(), label))
        if self.state.take_lost_answer(endpoint) and request.transport is not None:
            request.transport.close()  # done, but the caller never hears so
            return web.Response()
        logger.debug("sim %s %s -> %s", request.method, endpoint, errcode)
        if isinstance(answer, MediaFile):
            return web.Response(body=answer.content, content_type=answer.content_type,
                                headers={"Content-Disposition":
                                         f'attachment; filename="{answer.filename}"'})
        return _json({"errcode": errcode, "errmsg": errmsg, **answer}, status)

