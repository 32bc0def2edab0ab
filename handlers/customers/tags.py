"""Tags, kept the same in our database and in WeCom (corp tags + mark_tag).

A tag is written `组:名` (门店:朝阳大悦城) or just `名`, which lands in the rules file's
default group. Corp tags that do not exist yet are created with add_corp_tag.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError

from bot.access.errors import Refusal
from bot.app.context import BotContext
from bot.store.db import NewRows, atomic, dialect, insert_with_children
from bot.wecom import WeComError
from bot.wecom.errors import NOT_EXTERNAL_CONTACT, TAG_NAME_EXISTS
from models import CorpTag, Customer, CustomerTag, FollowRelation
from models.contacts import RelationStatus

logger = logging.getLogger(__name__)

DEFAULT_GROUP = "客户标签"
MAX_TAG_CHARS = 30  # WeCom's limit for a tag's (and a group's) name


class CorpTagCache(dict[tuple[str, str], CorpTag]):
    """(group, name) → corp tag, so a scan does not look its tags up again; one per app,
    cleared whenever the mirror is refreshed from WeCom."""


class TagGroupsCache(dict[str, list[str]]):
    """Tag name → the groups it is a corp tag in, so a scan's ungrouped tags (`压测新客`)
    are resolved without a query; cleared with `CorpTagCache`, and when a tag is created."""


def _forget_tags(ctx: BotContext) -> None:
    ctx.locals.get(CorpTagCache).clear()
    ctx.locals.get(TagGroupsCache).clear()


def default_group(ctx: BotContext) -> str:
    org = ctx.rules.current.raw.get("organisation", {})
    return str(org.get("default_tag_group", DEFAULT_GROUP))


async def refresh_corp_tags(ctx: BotContext) -> int:
    """Mirror WeCom's corp tags into our database; returns how many there are.

    The mirror converges whatever WeCom did: a tag deleted and recreated with the same name
    (a new id for the same group and name), a tag renamed onto a name an old, deleted tag
    had, a tag moved: WeCom's view wins and customers' tags follow their tag's new id.
    """
    data = await ctx.wecom.get_corp_tag_list()
    _forget_tags(ctx)
    present: set[str] = set()
    async with atomic():
        for group in data.get("tag_group", []):
            for tag in group.get("tag", []):
                await _mirror(tag["id"], group["group_id"], group["group_name"], tag["name"],
                              deleted=bool(tag.get("deleted")))
                present.add(tag["id"])
        await CorpTag.filter(deleted=False).exclude(tag_id__in=present).update(deleted=True)
    ctx.locals.get(TagGroupsCache).clear()  # what scans read meanwhile
    return len(present)


async def _mirror(tag_id: str, group_id: str, group_name: str, name: str, *,
                  deleted: bool = False) -> CorpTag:
    """Make our row for WeCom's tag `tag_id` say (group, name), whatever rows were there.

    Concurrent scans mirror the same new tag at once: a row another transaction inserted
    meanwhile makes ours conflict; the savepoint is rolled back and the row read again.
    """
    for attempt in range(2):
        try:
            async with atomic():
                return await _mirror_once(tag_id, group_id, group_name, name, deleted)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _mirror_once(tag_id: str, group_id: str, group_name: str, name: str,
                       deleted: bool) -> CorpTag:
    by_id = await CorpTag.get_or_none(tag_id=tag_id)
    by_name = await CorpTag.get_or_none(group_name=group_name, name=name)
    if by_name is not None and by_name.tag_id != tag_id:
        # The (group, name) belonged to another id: a tag WeCom deleted and recreated, or one
        # renamed away. WeCom's current tag takes the name; customers' tags follow it.
        await CustomerTag.filter(tag_id=by_name.tag_id, group_name=group_name, name=name) \
            .update(tag_id=tag_id)
        if by_id is None:
            by_name.tag_id = tag_id
            by_id = by_name
        else:
            await by_name.delete()
    if by_id is None:
        return await CorpTag.create(tag_id=tag_id, name=name, group_id=group_id,
                                    group_name=group_name, deleted=deleted)
    by_id.name, by_id.group_id, by_id.group_name, by_id.deleted = name, group_id, group_name, \
        deleted
    await by_id.save()
    return by_id


async def ensure_corp_tag(ctx: BotContext, group: str, name: str) -> CorpTag:
    """The corp tag (group, name), created in WeCom if it does not exist yet."""
    cache = ctx.locals.get(CorpTagCache)
    cached = cache.get((group, name))
    if cached is not None:
        return cached
    tag = await _ensure_corp_tag(ctx, group, name)
    cache[(group, name)] = tag
    return tag


async def _ensure_corp_tag(ctx: BotContext, group: str, name: str) -> CorpTag:
    async with ctx.locks(("corp_tag", group, name)):
        tag = await CorpTag.get_or_none(group_name=group, name=name, deleted=False)
        if tag is not None:
            return tag
        await refresh_corp_tags(ctx)
        tag = await CorpTag.get_or_none(group_name=group, name=name, deleted=False)
        if tag is not None:
            return tag
        existing_group = await CorpTag.filter(group_name=group, deleted=False).first()
        try:
            if existing_group is not None:
                result = await ctx.wecom.add_corp_tag([name], group_id=existing_group.group_id)
            else:
                result = await ctx.wecom.add_corp_tag([name], group_name=group)
        except WeComError as exc:
            if exc.errcode != TAG_NAME_EXISTS:
                raise
            await refresh_corp_tags(ctx)  # another instance created it meanwhile
            return await CorpTag.get(group_name=group, name=name)
        created = result["tag_group"]
        new = next(t for t in created["tag"] if t["name"] == name)
        mirrored = await _mirror(new["id"], created["group_id"], created["group_name"], name)
        ctx.locals.get(TagGroupsCache).clear()
        return mirrored


class AmbiguousTag(Refusal):
    """A tag written without its group exists in several groups."""


async def resolve_tags(ctx: BotContext, texts: list[str], *, fresh: bool = False
                       ) -> list[tuple[str, str]]:
    """(group, name) for tags as staff write them: `组:名`, or a name, which means the one
    corp tag of that name if there is one (in whatever group), else a new one in the default
    group. With `fresh` the mirror is refreshed first when a name is unknown (commands: the
    tag may have been created in the admin console since)."""
    resolved = []
    refreshed = not fresh
    known = await _groups_of(ctx, [t.strip() for t in texts if not _grouped(t)],
                             cached=not fresh)
    for text in texts:
        group, sep, name = text.replace("：", ":").partition(":")
        for part in (group, name) if sep else (text,):
            if len(part.strip()) > MAX_TAG_CHARS:
                raise Refusal(f"标签名和标签组名最长 {MAX_TAG_CHARS} 个字（企业微信规定），"
                              f"「{part.strip()[:10]}…」有 {len(part.strip())} 个字")
        if sep and group.strip() and name.strip():
            resolved.append((group.strip(), name.strip()))
            continue
        name = text.strip()
        groups = known.get(name, [])
        if not groups and not refreshed:
            await refresh_corp_tags(ctx)
            refreshed = True
            groups = await _groups_with(name)
        if len(groups) > 1:
            options = "、".join(f"{g}:{name}" for g in groups)
            raise AmbiguousTag(f"标签「{name}」在多个标签组中，请写明是哪一个：{options}")
        resolved.append((groups[0] if groups else default_group(ctx), name))
    return resolved


def _grouped(text: str) -> bool:
    group, sep, name = text.replace("：", ":").partition(":")
    return bool(sep and group.strip() and name.strip())


async def _groups_of(ctx: BotContext, names: list[str], *, cached: bool
                     ) -> dict[str, list[str]]:
    """The groups each name is a corp tag in, for all of them in one query; `cached` (a
    scan, not a member's command): remembered from the last time if possible."""
    cache = ctx.locals.get(TagGroupsCache)
    if cached and all(name in cache for name in names):
        return {name: cache[name] for name in names}
    found: dict[str, list[str]] = {}
    if names:
        marks = ",".join(f"${i + 1}" if dialect() == "postgres" else "?"
                         for i in range(len(names)))
        rows = await get_connection("default").execute_query_dict(
            f"SELECT name, group_name FROM corp_tag WHERE NOT deleted AND name IN ({marks}) "
            "ORDER BY group_name", names)
        for row in rows:
            found.setdefault(str(row["name"]), []).append(str(row["group_name"]))
    for name in names:
        cache[name] = found.setdefault(name, [])
    return found


async def _groups_with(name: str) -> list[str]:
    rows = await CorpTag.filter(name=name, deleted=False).order_by("group_name") \
        .values_list("group_name", flat=True)
    return [str(g) for g in rows]


async def tagging_member(customer: Customer) -> FollowRelation | None:
    """The relationship to tag through: the owner's if live, else any live one."""
    relations = await FollowRelation.filter(
        customer=customer, status__in=[RelationStatus.ACTIVE, RelationStatus.HALF])
    relations.sort(key=lambda r: (r.staff_userid != customer.owner_userid,
                                  r.status != RelationStatus.ACTIVE))
    return relations[0] if relations else None


async def apply_tags(ctx: BotContext, customer: Customer, names: list[str], *,
                     origin: str, fresh: bool = False) -> list[CustomerTag]:
    """Add tags in our database and in WeCom. An 84061 (half-added) leaves them unsynced,
    to be retried when the add completes; the database is written either way."""
    corp_tags = [await ensure_corp_tag(ctx, group, name)
                 for group, name in await resolve_tags(ctx, names, fresh=fresh)]
    relation = await tagging_member(customer)
    synced = False
    if relation is not None:
        try:
            await ctx.wecom.mark_tag(relation.staff_userid, customer.external_userid or "",
                                     add=[t.tag_id for t in corp_tags])
            synced = True
        except WeComError as exc:
            if exc.errcode != NOT_EXTERNAL_CONTACT:
                raise
            logger.info("mark_tag for %s refused with 84061; retried when the add completes",
                        customer.external_userid)
    # One statement for all the tags; rows that exist already are left as they are...
    await CustomerTag.bulk_create([
        CustomerTag(customer=customer, group_name=t.group_name, name=t.name, tag_id=t.tag_id,
                    origin=origin, synced=synced, created_at=ctx.clock.now())
        for t in corp_tags], ignore_conflicts=True)
    tag_ids = [t.tag_id for t in corp_tags]
    if synced:  # ...except that WeCom has them now
        await CustomerTag.filter(customer=customer, tag_id__in=tag_ids, synced=False) \
            .update(synced=True)
    return await CustomerTag.filter(customer=customer, tag_id__in=tag_ids)


async def tag_new_customer(ctx: BotContext, customer: NewRows, external_userid: str,
                           via: str | None, names: list[str], *, origin: str,
                           wecom_tags: list[dict[str, Any]],
                           with_rows: Sequence[NewRows] = (), last: bool = False) -> int | None:
    """`apply_tags` for a customer not written yet (`customer`: their row), whose only tags
    are those WeCom reported (`wecom_tags`, rows for `customer_tag`): tagged in WeCom
    through `via` (the relationship `tagging_member` would pick), then the customer and
    every tag row in one statement (WeCom's win over a channel tag of the same name, as
    when written before), with `with_rows` (their relationships, the caller's
    record of the add; customer_id is set to the new id). Returns the id, or None: the
    customer existed and nothing was written (`insert_with_children`)."""
    corp_tags = [await ensure_corp_tag(ctx, group, name)
                 for group, name in await resolve_tags(ctx, names)]
    synced = False
    if via is not None and corp_tags:
        try:
            await ctx.wecom.mark_tag(via, external_userid, add=[t.tag_id for t in corp_tags])
            synced = True
        except WeComError as exc:
            if exc.errcode != NOT_EXTERNAL_CONTACT:
                raise
            logger.info("mark_tag for %s refused with 84061; retried when the add completes",
                        external_userid)
    now = ctx.clock.now()
    rows = {(t["group_name"], t["name"]): t for t in wecom_tags}
    for t in corp_tags:  # WeCom's row wins: it is what WeCom holds already
        rows.setdefault((t.group_name, t.name), {
            "group_name": t.group_name, "name": t.name, "tag_id": t.tag_id, "origin": origin,
            "synced": synced, "created_at": now})
    return await insert_with_children(customer, "customer_id", [*with_rows, NewRows(
        CustomerTag, list(rows.values()), unique=["customer_id", "group_name", "name"])],
        last=last)


async def resync_unsynced_tags(ctx: BotContext, customer: Customer) -> int:
    """Push tags WeCom refused earlier (84061 on a half add). Returns how many were sent."""
    pending = await CustomerTag.filter(customer=customer, synced=False)
    relation = await tagging_member(customer)
    if not pending or relation is None or relation.status != RelationStatus.ACTIVE:
        return 0
    await ctx.wecom.mark_tag(relation.staff_userid, customer.external_userid or "",
                             add=[t.tag_id for t in pending if t.tag_id])
    await CustomerTag.filter(id__in=[t.id for t in pending]).update(synced=True)
    return len(pending)


async def remove_tags(ctx: BotContext, customer: Customer, names: list[str]) -> list[str]:
    """Remove tags (written `组:名`, or by name alone if the customer has only one tag of
    that name) in our database and in WeCom; returns what was removed."""
    removed = []
    for text in names:
        group, sep, name = text.replace("：", ":").partition(":")
        if sep and group.strip() and name.strip():
            rows = await CustomerTag.filter(customer=customer, group_name=group.strip(),
                                            name=name.strip())
        else:
            rows = await CustomerTag.filter(customer=customer, name=text.strip())
        if len(rows) > 1:
            options = "、".join(f"{r.group_name}:{r.name}" for r in rows)
            raise AmbiguousTag(f"{customer.name} 有多个「{text.strip()}」标签，请写明是哪一个："
                               f"{options}")
        if not rows:
            continue
        row = rows[0]
        relation = await tagging_member(customer)
        if relation is not None and row.tag_id:
            await ctx.wecom.mark_tag(relation.staff_userid, customer.external_userid or "",
                                     remove=[row.tag_id])
        await row.delete()
        removed.append(shown_tag(ctx, row.group_name, row.name))
    return removed


def shown_tag(ctx: BotContext, group: str, name: str) -> str:
    """How a tag is written to staff: `组:名`, or the name alone in the default group."""
    return name if group == default_group(ctx) else f"{group}:{name}"


async def sync_tags_from_wecom(customer: Customer, follow_users: list[dict[str, Any]]) -> None:
    """Make our copy match WeCom's corp tags on the customer (after an edit in WeCom).

    Tags still waiting for WeCom (unsynced after an 84061) are kept: WeCom cannot know them.
    """
    wecom_tags: dict[str, tuple[str, str]] = {}
    for follow in follow_users:
        for tag in follow.get("tags", []):
            if tag.get("type", 1) == 1 and tag.get("tag_id"):
                wecom_tags[tag["tag_id"]] = (tag.get("group_name", ""), tag.get("tag_name", ""))
    ours = await CustomerTag.filter(customer=customer)
    known = {t.tag_id for t in ours}
    for row in ours:
        if row.synced and row.tag_id and row.tag_id not in wecom_tags:
            await row.delete()
    for tag_id, (group, name) in wecom_tags.items():
        if tag_id not in known:
            await CustomerTag.get_or_create(customer=customer, group_name=group, name=name,
                                            defaults={"tag_id": tag_id, "origin": "wecom"})


async def add_local_tags(ctx: BotContext, customer: Customer, names: list[str], *,
                         origin: str) -> None:
    """Tags kept in our database only (Official Account followers are not WeCom contacts)."""
    for group, name in await resolve_tags(ctx, names):
        await CustomerTag.get_or_create(customer=customer, group_name=group, name=name,
                                        defaults={"origin": origin, "synced": True})
