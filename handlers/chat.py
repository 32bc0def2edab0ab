"""A member's text to the app: a command runs and its answer goes back by message/send."""

from __future__ import annotations

from bot.commands import looks_like_command, run_command
from bot.context import BotContext
from bot.dispatch import EventRouter
from bot.events import TextMessage
from bot.replies import send_reply
from handlers.directory import ensure_staff

router = EventRouter(__name__)


@router.on(TextMessage)
async def on_staff_text(event: TextMessage, ctx: BotContext) -> None:
    if event.source != "wecom" or not event.from_user:
        return
    staff = await ensure_staff(event.from_user, ctx)
    if not staff.active:
        return
    if looks_like_command(event.content):
        reply = await run_command(ctx.commands, ctx, staff, event.content)
    else:
        reply = ctx.renderer.render("command/not_a_command.txt.j2", name=staff.name)
    await send_reply(ctx.wecom, ctx.renderer, staff.userid, reply)
