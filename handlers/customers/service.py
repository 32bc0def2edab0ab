"""Customers: our copy of WeCom's external contacts and their relationships, purchases, and
how members find the customers they may see. What other features use is here."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import F, Q, Subquery
from tortoise.queryset import QuerySet

from bot.access.errors import Refusal
from bot.access.scope import ScopedData
from bot.app.context import BotContext
from bot.store.db import NewRows
from bot.wecom import WeComError
from handlers.customers.tags import (
    add_local_tags,
    apply_tags,
    remove_tags,
    resync_unsynced_tags,
    shown_tag,
    sync_tags_from_wecom,
    tag_new_customer,
)
from handlers.staff.service import ensure_staff, staff_region
from models import Channel, Customer, CustomerTag, FollowRelation, Purchase, Staff
from models.contacts import CustomerStatus, RelationStatus

logger = logging.getLogger(__name__)

# What other features use: customers, and tags kept the same here and in WeCom.
__all__ = ["OA_WINDOW", "CustomerFilter", "NewCustomer", "add_local_tags", "annual_spend_fen",
           "apply_tags", "filtered_customers", "find_one_customer", "follower",
           "lift_dormancy", "mask_mobile", "mobile_shown_to", "new_customer",
           "oa_window_left", "record_purchase", "refresh_spend", "remove_tags",
           "resync_unsynced_tags", "search_customers", "sync_customer", "write_new_customer"]


def _from_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (TypeError, ValueError):
        return None


SYNCED_FIELDS = ("name", "type", "gender", "avatar", "unionid", "corp_name", "mobile",
                 "first_contact_at", "status", "owner_userid", "region", "updated_at")


async def sync_customer(external_userid: str, ctx: BotContext, *, added_by: str | None = None,
                        half: bool = False, data: dict[str, Any] | None = None,
                        owner: str | None = None) -> Customer:
    """Create or update a customer, their relationships and tags from externalcontact/get.

    `added_by` is the member whose add this event reports: that relationship becomes active
    (or half, with `half`). Other relationships keep the status their own events gave them.
    `data` is a response the caller already fetched; `owner` the owner for a new customer.
    """
    if data is None:
        data = await ctx.wecom.get_external_contact(external_userid)
    contact = data.get("external_contact", {})
    follows: list[dict[str, Any]] = data.get("follow_user", [])
    mobiles = [m for f in follows for m in f.get("remark_mobiles", []) if m]
    customer, _ = await Customer.get_or_create(external_userid=external_userid)
    customer.name = contact.get("name", customer.name)
    customer.type = int(contact.get("type", customer.type))
    customer.gender = int(contact.get("gender", customer.gender))
    customer.avatar = contact.get("avatar", customer.avatar)
    customer.unionid = contact.get("unionid") or customer.unionid
    customer.corp_name = contact.get("corp_name", customer.corp_name)
    customer.mobile = mobiles[0] if mobiles else customer.mobile
    for follow in follows:
        added = _from_ts(follow.get("createtime"))
        if customer.first_contact_at is None or (added and added < customer.first_contact_at):
            customer.first_contact_at = added
        relation, _ = await FollowRelation.get_or_create(
            customer=customer, staff_userid=follow["userid"])
        relation.state = follow.get("state") or relation.state
        relation.added_at = added or relation.added_at
        if follow["userid"] == added_by:
            relation.status = RelationStatus.HALF if half else RelationStatus.ACTIVE
            relation.ended_at = None
            relation.end_detail = None
        await relation.save()
    live = await FollowRelation.filter(
        customer=customer, status__in=[RelationStatus.ACTIVE, RelationStatus.HALF]).exists()
    customer.status = CustomerStatus.ACTIVE if live else CustomerStatus.ENDED
    if customer.owner_userid is None:
        customer.owner_userid = owner or added_by or (follows[0]["userid"] if follows else None)
    if customer.region is None and customer.owner_userid:
        owner_staff = await ensure_staff(customer.owner_userid, ctx)
        customer.region = owner_staff.region
    # Only what WeCom tells us: spend, dates and dormancy are written by their own updates.
    await customer.save(update_fields=SYNCED_FIELDS)
    await sync_tags_from_wecom(customer, follows)
    return customer


@dataclass(frozen=True)
class NewCustomer:
    """A customer we have never seen, as `new_customer` reads them from WeCom's profile:
    the rows to write (`write_new_customer`), and what tagging them needs."""

    row: dict[str, Any]  # the customer row
    external_userid: str
    tag_via: str | None  # the member `tagging_member` would tag through
    wecom_tags: list[dict[str, Any]]  # customer_tag rows for the tags WeCom reported
    relations: NewRows  # their relationships (customer_id is set when written)


async def new_customer(ctx: BotContext, external_userid: str, data: dict[str, Any], *,
                       added_by: str, half: bool, owner: str | None, source: dict[str, Any],
                       added_by_region: tuple[str | None] | None = None) -> NewCustomer:
    """`sync_customer` for a customer we have never seen, as rows: written with their tags
    in one statement by `write_new_customer`, instead of a dozen. `source` is what the scan
    says of them (source, source_state, store and a region that wins over the owner's);
    `added_by_region` the region of `added_by`, recorded already, if the caller read it.
    The rows are those `sync_customer` would write for a new customer, field for field."""
    contact = data.get("external_contact", {})
    follows: list[dict[str, Any]] = data.get("follow_user", [])
    mobiles = [m for f in follows for m in f.get("remark_mobiles", []) if m]
    first_contact_at: datetime | None = None
    relations = []
    for follow in follows:
        added = _from_ts(follow.get("createtime"))
        if first_contact_at is None or (added and added < first_contact_at):
            first_contact_at = added
        status = RelationStatus.ACTIVE
        if follow["userid"] == added_by:
            status = RelationStatus.HALF if half else RelationStatus.ACTIVE
        relations.append({"staff_userid": follow["userid"], "state": follow.get("state") or None,
                          "added_at": added, "status": status})
    owner_userid = owner or added_by or (follows[0]["userid"] if follows else None)
    region = source.get("region")
    if owner_userid == added_by and added_by_region is not None:
        region = region or added_by_region[0]
    elif owner_userid:  # the owner is recorded from then on, as sync_customer does
        owner_region = await staff_region(owner_userid, ctx)
        region = region or owner_region
    row = {"external_userid": external_userid, "name": contact.get("name", ""),
           "type": int(contact.get("type", 1)), "gender": int(contact.get("gender", 0)),
           "avatar": contact.get("avatar", ""), "unionid": contact.get("unionid") or None,
           "corp_name": contact.get("corp_name", ""),
           "mobile": mobiles[0] if mobiles else None, "first_contact_at": first_contact_at,
           "status": CustomerStatus.ACTIVE if relations else CustomerStatus.ENDED,
           "owner_userid": owner_userid, **source, "region": region}
    live = sorted((r for r in relations if r["status"] in (RelationStatus.ACTIVE,
                                                          RelationStatus.HALF)),
                  key=lambda r: (r["staff_userid"] != owner_userid,
                                 r["status"] != RelationStatus.ACTIVE))
    wecom_tags: dict[tuple[str, str], dict[str, Any]] = {}
    for follow in follows:  # as sync_tags_from_wecom writes them for a customer without tags
        for tag in follow.get("tags", []):
            if tag.get("type", 1) == 1 and tag.get("tag_id"):
                group, name = tag.get("group_name", ""), tag.get("tag_name", "")
                wecom_tags.setdefault((group, name), {
                    "group_name": group, "name": name, "tag_id": tag["tag_id"],
                    "origin": "wecom"})
    return NewCustomer(row, external_userid, live[0]["staff_userid"] if live else None,
                       list(wecom_tags.values()), NewRows(FollowRelation, relations))


async def write_new_customer(ctx: BotContext, new: NewCustomer, names: list[str], *,
                             origin: str, with_rows: Sequence[NewRows] = (),
                             last: bool = False) -> int | None:
    """A new customer tagged with `names` (in WeCom first), then written with their
    relationships, their tags and the caller's `with_rows` (rows of the customer's, given
    without customer_id) in one statement (`insert_with_children`; `last` as there).
    Returns their id, or None if they exist by now: then nothing is written, and the full
    sync is the caller's (the tags it adds to WeCom were added already: WeCom keeps a tag
    once)."""
    return await tag_new_customer(
        ctx, NewRows(Customer, [new.row], unique=["external_userid"]), new.external_userid,
        new.tag_via, names, origin=origin, wecom_tags=new.wecom_tags,
        with_rows=[new.relations, *with_rows], last=last)


OA_WINDOW = timedelta(hours=48)  # customer-service messages after a follower's last message


def oa_window_left(customer: Customer, now: datetime) -> timedelta | None:
    """How long the Official Account may still message this follower (None: not at all)."""
    if not customer.openid or customer.oa_last_seen_at is None:
        return None
    left = customer.oa_last_seen_at + OA_WINDOW - now
    return left if left > timedelta(0) else None


async def follower(ctx: BotContext, openid: str) -> tuple[Customer, bool]:
    """An Official Account follower (created on first sight); every message, follow or scan
    reopens their 48-hour customer-service window. Returns (customer, created)."""
    customer, created = await Customer.get_or_create(
        openid=openid, defaults={"source": "oa", "name": f"公众号粉丝{openid[-4:]}",
                                 "first_contact_at": ctx.clock.now()})
    customer.oa_last_seen_at = ctx.clock.now()
    await customer.save(update_fields=["oa_last_seen_at"])
    return customer, created


def mask_mobile(mobile: str | None) -> str:
    if not mobile:
        return "-"
    return mobile[:3] + "****" + mobile[-4:] if len(mobile) >= 11 else mobile


def mobile_shown_to(customer: Customer, userid: str) -> str:
    """The full number for the customer's owner, masked for everyone else."""
    if customer.owner_userid == userid:
        return customer.mobile or "-"
    return mask_mobile(customer.mobile)


@dataclass(frozen=True)
class CustomerFilter:
    """What a customer list is narrowed by: the same for `/customer list`, `/customer export`
    and the console's list and export, so chat and the web never disagree."""

    tag: str = ""  # `组:名`, or a name in any group
    owner: str = ""  # the owner's userid
    region: str = ""
    channel: str = ""  # the source channel's name
    dormant: bool = False

    def shown(self) -> str:
        """The filters as a member would type them (`tag=VIP --dormant`)."""
        words = [f"{name}={value}" for name, value in (
            ("tag", self.tag), ("owner", self.owner), ("region", self.region),
            ("channel", self.channel)) if value]
        return " ".join([*words, *(["--dormant"] if self.dormant else [])])


async def filtered_customers(data: ScopedData, wanted: CustomerFilter) -> QuerySet[Customer]:
    """The customers in `data`'s scope that match `wanted` (unordered, unbounded: callers
    order, page or limit it). An unknown channel is refused by name."""
    query = data.customers()
    if wanted.tag:
        group, sep, name = wanted.tag.replace("：", ":").partition(":")
        tagged = CustomerTag.filter(group_name=group, name=name) if sep and name \
            else CustomerTag.filter(name=wanted.tag)
        query = query.filter(id__in=Subquery(tagged.values("customer_id")))
    if wanted.owner:
        query = query.filter(owner_userid=wanted.owner)
    if wanted.region:
        query = query.filter(region=wanted.region)
    if wanted.channel:
        channel = await Channel.get_or_none(name=wanted.channel)
        if channel is None:
            raise Refusal(f"没有渠道 {wanted.channel}。")
        query = query.filter(source_state=channel.state)
    if wanted.dormant:
        query = query.filter(dormant_since__isnull=False)
    return query


async def search_customers(data: ScopedData, query: str, limit: int = 10) -> list[Customer]:
    """Customers in `data`'s scope matching a name, mobile or external id (exact first)."""
    exact = await data.customers().filter(
        Q(name=query) | Q(mobile=query) | Q(external_userid=query)).limit(limit)
    if exact:
        return exact
    return await data.customers().filter(
        Q(name__icontains=query) | Q(mobile__contains=query)).limit(limit)


async def find_one_customer(data: ScopedData, query: str) -> Customer:
    """Exactly one customer in scope, or a refusal listing the choices (a customer outside
    the scope is "not found": its existence does not leak)."""
    found = await search_customers(data, query)
    if not found:
        raise Refusal(f"找不到客户 {query}（或不在您的数据范围：{data.scope.describe()}）。")
    if len(found) > 1:
        lines = [f"找到 {len(found)} 位客户，请用手机号或外部联系人 ID 指定："]
        lines += [f"{c.name}  {mask_mobile(c.mobile)}  {c.external_userid}" for c in found]
        raise Refusal("\n".join(lines))
    return found[0]


async def record_purchase(ctx: BotContext, customer: Customer, amount_fen: int,
                          recorded_by: str) -> bool:
    """A purchase: last purchase, lifetime spend (one atomic update, never read-modify-write)
    and, for a dormant customer, the dormant tag removed. True if they were dormant."""
    now = ctx.clock.now()
    await Purchase.create(customer_id=customer.id, amount_fen=amount_fen, at=now,
                          recorded_by=recorded_by)
    await Customer.filter(id=customer.id).update(
        last_purchase_at=now, lifetime_spend_fen=F("lifetime_spend_fen") + amount_fen)
    await customer.refresh_from_db(fields=["last_purchase_at", "lifetime_spend_fen"])
    if customer.dormant_since is None:
        return False
    customer.dormant_since = None
    await customer.save(update_fields=["dormant_since"])
    await remove_tags(ctx, customer, [ctx.rules.current.care.dormant_tag])
    return True


async def refresh_spend(customer_ids: Sequence[int]) -> None:
    """Lifetime spend and last purchase recomputed from the purchases on record (orders add
    and refund through purchase rows, so the two never drift), in one statement per chunk."""
    for chunk in _chunks(sorted(set(customer_ids))):
        marks = ",".join(str(int(i)) for i in chunk)  # ints from our own rows, not input
        await get_connection("default").execute_query(
            "UPDATE customer SET "
            "lifetime_spend_fen = (SELECT COALESCE(SUM(p.amount_fen), 0) FROM purchase p "
            "WHERE p.customer_id = customer.id), "
            "last_purchase_at = (SELECT MAX(p.at) FROM purchase p "
            "WHERE p.customer_id = customer.id AND p.amount_fen > 0) "
            f"WHERE id IN ({marks})")


async def lift_dormancy(ctx: BotContext, customer_ids: Sequence[int]) -> int:
    """Customers among these who are dormant but bought within the dormancy period lose the
    tag (here and in WeCom) and the mark. A WeCom failure leaves them marked for the
    dormancy job to retry. Returns how many were lifted."""
    care = ctx.rules.current.care
    cutoff = ctx.clock.now() - timedelta(days=care.dormant_days)
    lifted = 0
    for chunk in _chunks(sorted(set(customer_ids))):
        for customer in await Customer.filter(id__in=chunk, dormant_since__isnull=False,
                                              last_purchase_at__gte=cutoff):
            try:
                await remove_tags(ctx, customer, [care.dormant_tag])
            except WeComError as exc:
                logger.warning("dormant tag of customer %s not removed in WeCom: %s",
                               customer.id, exc)
                continue
            await Customer.filter(id=customer.id).update(dormant_since=None)
            lifted += 1
    return lifted


async def annual_spend_fen(ctx: BotContext, customer: Customer) -> int:
    """This calendar year's purchases (the corp's time zone), for rebate tiers."""
    year_start = ctx.clock.now().astimezone(ctx.settings.tz).replace(
        month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return sum(p.amount_fen for p in await Purchase.filter(customer_id=customer.id,
                                                           at__gte=year_start))


# --- customers as the console's rows (list, detail, export, sidebar) --------------------------

CHUNK = 500  # ids per IN (...) query: well under SQLite's and PostgreSQL's parameter limits
SOURCE_NAMES = {"oa": "公众号", "unknown": "未知来源"}


@dataclass(frozen=True)
class CustomerRow:
    """A customer as a list row: the record and the names its ids stand for."""

    customer: Customer
    owner: str
    channel: str
    tags: tuple[str, ...]

    def mobile_for(self, userid: str) -> str:
        return mobile_shown_to(self.customer, userid)


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def customer_rows(ctx: BotContext, customers: Sequence[Customer]) -> list[CustomerRow]:
    """Owners' names, source channels' names and tags for `customers`, in a few queries."""
    tags: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks([c.id for c in customers]):
        for customer_id, group, name in await CustomerTag.filter(
                customer_id__in=chunk).order_by("group_name", "name").values_list(
                "customer_id", "group_name", "name"):
            tags[customer_id].append(shown_tag(ctx, group, name))
    owner_ids = sorted({c.owner_userid for c in customers if c.owner_userid})
    owners = {s.userid: s.name or s.userid for s in await Staff.filter(userid__in=owner_ids)}
    states = sorted({c.source_state for c in customers if c.source_state})
    channels = {ch.state: ch.name for ch in await Channel.filter(state__in=states)}
    return [CustomerRow(c, owners.get(c.owner_userid or "", c.owner_userid or "—"),
                        channels.get(c.source_state or "") or SOURCE_NAMES.get(c.source, "—"),
                        tuple(tags[c.id])) for c in customers]


# --- the customer's dates and home store (chat's /customer set, the sidebar) ----------------

DATE_NAMES = {"birthday": "生日", "baby_birthday": "宝宝生日"}


async def set_customer_details(ctx: BotContext, customer: Customer, *,
                               birthday: str | None = None, baby_birthday: str | None = None,
                               home_store: str | None = None) -> list[tuple[str, str]]:
    """Set the dates the care schedules read (YYYY-MM-DD) and the home store tickets are
    routed by; None or "" leaves a field as it is. Returns (field, value) for each change;
    a bad date or an unknown store is refused before anything is saved."""
    changed: list[tuple[str, str]] = []
    for key, value in (("birthday", birthday), ("baby_birthday", baby_birthday)):
        if not value:
            continue
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise Refusal(f"{DATE_NAMES[key]}应写成 1990-05-01 这样的日期。") from None
        if key == "birthday":
            customer.birthday = day
        else:
            customer.dates = {**(customer.dates or {}), key: day.isoformat()}
        changed.append((key, day.isoformat()))
    if home_store:
        if home_store not in ctx.rules.current.tickets.routing.stores:
            raise Refusal(f"没有门店 {home_store}。")
        customer.home_store = home_store
        changed.append(("home_store", home_store))
    if changed:
        await customer.save(update_fields=["birthday", "dates", "home_store"])
    return changed
