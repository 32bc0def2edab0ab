"""Photo proof (拍照验收): pictures the assignee sends to the app while a ticket is at a
stage that needs them, downloaded from WeCom, stored, counted, listed and (soft) deleted.

An image callback is handled once by the inbox worker, in steps that can each be retried:
which ticket (a read), the download (`media/get`, inside the media's 3 days), the store
(keyed by the content's sha256, so writing it again is harmless), then one transaction
with the photo's row — unique per (inbox row, media_id), so a replayed callback never
stores it twice — its place in the ticket's history and the answer to the member. A
download or store that fails for a passing reason raises: the inbox tries the route again
later and nothing was recorded. Media WeCom no longer has (40007) cannot come back: the
member is asked to send the picture again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import PurePosixPath

from bot.app.context import BotContext
from bot.domain.roles import ROLE_NAMES, has_role
from bot.store.db import atomic
from bot.wecom.errors import INVALID_MEDIA_ID, WeComError
from bot.wecom.events import ImageMessage
from handlers.tickets.service import (
    OPEN_STATES,
    TicketError,
    current_stage,
    photos_taken,
    record,
    require_open,
)
from models import Staff, Ticket, TicketPhoto

logger = logging.getLogger(__name__)

EXTENSIONS = {"image/jpeg": "jpg", "image/jpg": "jpg", "image/png": "png",
              "image/gif": "gif", "image/webp": "webp", "image/bmp": "bmp",
              "image/heic": "heic"}
MAX_PHOTO_BYTES = 20 * 1024 * 1024


def extension(content_type: str, filename: str) -> str:
    """The stored file's extension: from the content type, else the file name."""
    if content_type in EXTENSIONS:
        return EXTENSIONS[content_type]
    suffix = PurePosixPath(filename).suffix.lower().lstrip(".")
    return suffix if suffix.isalnum() and len(suffix) <= 5 else "bin"


def size_text(size: int) -> str:
    return f"{size / 1024:.1f} KB" if size < 1024 * 1024 else f"{size / 1048576:.1f} MB"


async def waiting_for_photos(userid: str) -> list[Ticket]:
    """The member's open tickets whose current stage needs photos it does not have yet."""
    found = []
    for ticket in await Ticket.filter(assignee=userid, status__in=OPEN_STATES).order_by("id"):
        stage = current_stage(ticket)
        if stage and stage.photos and await photos_taken(ticket, stage.name) < stage.photos:
            found.append(ticket)
    return found


async def _answer(ctx: BotContext, userid: str, text: str, key: str) -> None:
    await ctx.chat.write_reply(userid, text, key)


async def receive_photo(ctx: BotContext, event: ImageMessage, staff: Staff) -> None:
    """One picture from a member: attach it, keep it until they say which ticket, or say
    why not. Runs outside a transaction (it downloads); see the module's docstring."""
    key = f"reply:{event.inbox_id}"
    if await TicketPhoto.exists(inbox_id=event.inbox_id, media_id=event.media_id):
        return  # stored and answered before: its row and reply were one transaction
    targets = await waiting_for_photos(staff.userid)
    if not targets:
        await _answer(ctx, staff.userid, ctx.renderer.render("ticket/photo_none.txt.j2"), key)
        return
    try:
        filename, content_type, data = await ctx.wecom.get_media(event.media_id)
    except WeComError as exc:
        if exc.errcode != INVALID_MEDIA_ID:
            raise  # a passing failure: the inbox tries again
        logger.info("inbox row %s: media of %s expired", event.inbox_id, staff.userid)
        await _answer(ctx, staff.userid,
                      ctx.renderer.render("ticket/photo_expired.txt.j2"), key)
        return
    if not data or len(data) > MAX_PHOTO_BYTES:
        await _answer(ctx, staff.userid, "照片为空或超过 20 MB，没有保存，请重新拍一张发送。",
                      key)
        return
    sha = hashlib.sha256(data).hexdigest()
    target = targets[0] if len(targets) == 1 else None
    folder = target.number if target else f"pending/{staff.userid}"
    storage_key = f"{folder}/{sha}.{extension(content_type, filename)}"
    await ctx.photos.put(storage_key, data, content_type)  # BlobError: the inbox retries
    async with atomic():
        photo, created = await TicketPhoto.get_or_create(
            inbox_id=event.inbox_id, media_id=event.media_id, defaults={
                "sender": staff.userid, "storage_key": storage_key, "size": len(data),
                "sha256": sha, "content_type": content_type[:64],
                "taken_at": ctx.clock.now()})
        if not created:
            return
        if target is not None:
            text = await attach(ctx, target, [photo], staff)
        else:
            text = ctx.renderer.render("ticket/photo_which.txt.j2", tickets=[
                (t, current_stage(t)) for t in targets])
        await _answer(ctx, staff.userid, text, key)


async def attach(ctx: BotContext, ticket: Ticket, photos: Sequence[TicketPhoto],
                 staff: Staff) -> str:
    """Count `photos` for the ticket's current stage; the answer says how many are still
    needed. A picture the stage already has (the same sha256) is kept but not counted."""
    require_open(ticket)
    stage = current_stage(ticket)
    if stage is None or not stage.photos:
        raise TicketError(f"工单 {ticket.number} 的当前阶段不需要照片。")
    label = stage.photo_label or "照片"
    kept = {str(sha) for sha in await TicketPhoto.filter(
        ticket_id=ticket.id, stage=stage.name, deleted_at__isnull=True).values_list(
            "sha256", flat=True)}
    counted = repeated = 0
    for photo in photos:
        photo.ticket, photo.stage, photo.stage_index = ticket, stage.name, ticket.stage_index
        if photo.sha256 in kept:
            photo.deleted_at, photo.deleted_by = ctx.clock.now(), "system"
            repeated += 1
        else:
            kept.add(photo.sha256)
            counted += 1
        if photo.storage_key.startswith("pending/"):
            data = await ctx.photos.get(photo.storage_key)
            if data is not None:
                moved = f"{ticket.number}/{photo.storage_key.rsplit('/', 1)[-1]}"
                await ctx.photos.put(moved, data, photo.content_type)
                photo.storage_key = moved
        await photo.save()
    taken = await photos_taken(ticket, stage.name)
    if counted:
        await record(ticket, ctx, staff.userid, "photo",
                     f"「{label}」{counted} 张（{stage.name}，共 {taken}/{stage.photos}）")
    lines = []
    if repeated:
        lines.append(f"有 {repeated} 张和已收到的照片相同，没有重复计数。")
    if taken < stage.photos:
        lines.append(f"工单 {ticket.number} 已收到「{label}」第 {taken} 张，"
                     f"还需 {stage.photos - taken} 张。")
    else:
        who = "" if has_role(staff.role, stage.role) else \
            f"（需要「{ROLE_NAMES[stage.role]}」权限，请审批人完成）"
        lines.append(f"工单 {ticket.number} 照片已齐（{taken}/{stage.photos}），"
                     f"可以 /ticket next {ticket.number} 完成「{stage.name}」{who}。")
    return "\n".join(lines)


async def attach_pending(ctx: BotContext, ticket: Ticket, staff: Staff) -> str:
    """`/ticket photo <工单号>`: the member's pictures waiting for a ticket go to this one."""
    pending = await TicketPhoto.filter(sender=staff.userid, ticket_id__isnull=True,
                                       deleted_at__isnull=True).order_by("id")
    if not pending:
        raise TicketError("您没有待归属的照片。先把照片发给本应用，"
                          "再回复 /ticket photo <工单号>。")
    return await attach(ctx, ticket, pending, staff)


async def numbered_photos(ticket: Ticket) -> list[tuple[int, TicketPhoto]]:
    """Every photo of the ticket with its 序号 (1, 2 … by arrival; deleted ones keep theirs,
    so a number never comes to mean another photo)."""
    photos = await TicketPhoto.filter(ticket_id=ticket.id).order_by("id")
    return list(enumerate(photos, start=1))


async def delete_photo(ctx: BotContext, ticket: Ticket, number: int, staff: Staff,
                       reason: str) -> TicketPhoto:
    """Mark one photo deleted (it stops counting; the file and row stay for the audit)."""
    numbered = dict(await numbered_photos(ticket))
    photo = numbered.get(number)
    if photo is None or photo.deleted_at is not None:
        raise TicketError(f"工单 {ticket.number} 没有第 {number} 张照片"
                          f"（/ticket photos {ticket.number} 查看序号）。")
    if photo.sender != staff.userid and not has_role(staff.role, "approver"):
        raise TicketError("只能删除自己上传的照片（审批人可以删除任何照片）。")
    photo.deleted_at, photo.deleted_by = ctx.clock.now(), staff.userid
    await photo.save(update_fields=["deleted_at", "deleted_by"])
    why = f"：{reason}" if reason else ""
    await record(ticket, ctx, staff.userid, "photo_deleted",
                 f"第 {number} 张（{photo.stage}，sha256 {photo.sha256[:12]}）{why}")
    return photo
