"""The quick-reply library (话术库) and the compliance check before a reply is sent: one
implementation for the sidebar and the console's library page.

The library starts from the rules file's `[[sidebar.quick_replies]]`: each seed is written
once (by group and title) the first time this process reads the library under a given
rules load, and never again once it exists, retired or edited.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from bot.access.errors import NotFound, Refusal
from bot.app.context import BotContext
from bot.domain.compliance import Verdict, check_reply, explain
from bot.domain.roles import ROLE_NAMES, has_role
from bot.rules.loader import Rules
from bot.rules.sidebar import MAX_REPLY
from models import AuditEntry, QuickReply

OVERRIDE_ACTION = "sidebar.compliance_override"
LIMITS = {"group": 32, "title": 64, "text": MAX_REPLY}
FIELD_NAMES = {"group": "分组", "title": "标题", "text": "内容"}
_seeded_under: list[Rules] = []  # the rules load this process last seeded from


async def ensure_seeded(ctx: BotContext) -> None:
    """Write the rules file's seeds the library lacks (once per rules load and process)."""
    rules = ctx.rules.current
    if _seeded_under and _seeded_under[0] is rules:
        return
    have = set(await QuickReply.all().values_list("group_name", "title"))
    for seed in rules.sidebar.quick_replies:
        if (seed.group, seed.title) in have:
            continue
        try:
            async with in_transaction():
                await QuickReply.create(group_name=seed.group, title=seed.title,
                                        text=seed.text, seeded=True, updated_by="rules",
                                        updated_at=ctx.clock.now())
        except IntegrityError:  # another instance wrote it first
            pass
    _seeded_under[:] = [rules]


def _matches(reply: QuickReply, words: list[str]) -> bool:
    haystack = f"{reply.group_name} {reply.title} {reply.text}".casefold()
    return all(word in haystack for word in words)


async def library(ctx: BotContext, query: str = "", *, retired: bool | None = False
                  ) -> list[QuickReply]:
    """Active (or retired, or with `retired=None` all) replies by group and title; every
    word of `query` in group, title or text."""
    await ensure_seeded(ctx)
    chosen = QuickReply.all() if retired is None else QuickReply.filter(active=not retired)
    replies = await chosen.order_by("group_name", "title")
    words = query.casefold().split()
    return [r for r in replies if _matches(r, words)] if words else replies


def group_replies(replies: list[QuickReply]) -> dict[str, list[QuickReply]]:
    groups: dict[str, list[QuickReply]] = {}
    for reply in replies:
        groups.setdefault(reply.group_name, []).append(reply)
    return groups


def _clean(values: dict[str, str]) -> dict[str, str]:
    out = {}
    for key, limit in LIMITS.items():
        value = (values.get(key) or "").strip()
        if not value:
            raise Refusal(f"请填写{FIELD_NAMES[key]}。")
        if len(value) > limit:
            raise Refusal(f"{FIELD_NAMES[key]}不能超过 {limit} 个字（现在 {len(value)} 个）。")
        out[key] = value
    return out


async def save_reply(ctx: BotContext, actor: str, values: dict[str, str],
                     reply_id: int | None = None) -> QuickReply:
    """Add a reply or change one; a reply with a forbidden phrase is refused, since the
    library is what staff send without thinking twice."""
    fields = _clean(values)
    verdict = review(ctx, fields["text"])
    if verdict.blocked:
        raise Refusal("话术含禁用语，不能入库：" + "；".join(explain(verdict)))
    clash = QuickReply.filter(group_name=fields["group"], title=fields["title"])
    if reply_id is not None:
        clash = clash.exclude(id=reply_id)
    if await clash.exists():
        raise Refusal(f"分组「{fields['group']}」里已有标题「{fields['title']}」的话术"
                      "（可能已停用），请换个标题或直接修改那一条。")
    now = ctx.clock.now()
    if reply_id is None:
        return await QuickReply.create(group_name=fields["group"], title=fields["title"],
                                       text=fields["text"], updated_by=actor, updated_at=now)
    reply = await QuickReply.get_or_none(id=reply_id)
    if reply is None:
        raise NotFound("没有这条话术。")
    reply.group_name, reply.title, reply.text = fields["group"], fields["title"], fields["text"]
    reply.updated_by, reply.updated_at = actor, now
    await reply.save()
    return reply


async def set_active(ctx: BotContext, actor: str, reply_id: int, active: bool) -> QuickReply:
    """Retire a reply (kept, so a seed stays gone) or bring it back."""
    reply = await QuickReply.get_or_none(id=reply_id)
    if reply is None:
        raise NotFound("没有这条话术。")
    reply.active, reply.updated_by, reply.updated_at = active, actor, ctx.clock.now()
    await reply.save(update_fields=["active", "updated_by", "updated_at"])
    return reply


def review(ctx: BotContext, text: str) -> Verdict:
    return check_reply(text, ctx.rules.current.compliance)


@dataclass(frozen=True)
class Review:
    """What the sidebar shows before a send, and whether this member may send anyway."""

    verdict: Verdict
    may_override: bool
    override_role: str

    def as_json(self) -> dict[str, object]:
        v = self.verdict
        return {"clean": v.clean, "blocked": v.blocked, "may_override": self.may_override,
                "lines": list(explain(v)), "suggestion": v.suggestion,
                "override_role": ROLE_NAMES.get(self.override_role, self.override_role)}


def review_for(ctx: BotContext, role: str, text: str) -> Review:
    if not text.strip():
        raise Refusal("请先写要发送的内容。")
    if len(text) > MAX_REPLY:
        raise Refusal(f"一条消息不能超过 {MAX_REPLY} 个字。")
    needed = ctx.rules.current.compliance.override_role
    return Review(review(ctx, text), has_role(role, needed), needed)


async def override(ctx: BotContext, actor: str, role: str, text: str, customer: str,
                   reason: str) -> Review:
    """Let a forbidden phrase through for a member whose role may, with an audit row that
    names the member, the customer, the text and what matched."""
    checked = review_for(ctx, role, text)
    if not checked.verdict.blocked:
        return checked
    if not checked.may_override:
        raise Refusal(f"含禁用语，不能发送；只有{ROLE_NAMES.get(checked.override_role)}及以上"
                      "可以确认后发送。请按提示修改。")
    if not reason.strip():
        raise Refusal("请写明仍要发送的理由（会记入审计）。")
    await AuditEntry.create(
        at=ctx.clock.now(), actor=actor, action=OVERRIDE_ACTION,
        arguments=f"客户 {customer}：{text}"[:4000], outcome="ok",
        detail=("；".join(explain(checked.verdict)) + f"；理由：{reason.strip()}")[:4000])
    return checked


async def count_sent(reply_id: int) -> None:
    """A library reply went into a chat: the console shows which replies are used."""
    await QuickReply.filter(id=reply_id).update(sent_count=F("sent_count") + 1)
