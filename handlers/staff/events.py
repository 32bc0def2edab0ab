"""A member's text to the app: a command runs and its answer is written to the outbox, both in
the route's one transaction; entering the app records the member."""

from __future__ import annotations

from bot.app.context import BotContext, Events
from bot.chat.commands import looks_like_command
from bot.pipeline.dispatcher import HasField, Source
from bot.wecom.events import EnterAgentEvent, TextMessage
from handlers.staff.service import ensure_staff

events = Events("staff")


@events.on(EnterAgentEvent, HasField("from_user"))
async def on_enter_agent(event: EnterAgentEvent, ctx: BotContext) -> None:
    await ensure_staff(event.from_user, ctx)


@events.on(TextMessage, Source("wecom"), HasField("from_user"), name="command")
async def on_staff_text(event: TextMessage, ctx: BotContext) -> None:
    staff = await ensure_staff(event.from_user, ctx)
    if not staff.active:
        return
    if looks_like_command(event.content):
        reply = await ctx.chat.run(ctx, staff, event.content)
    else:
        reply = ctx.renderer.render("command/not_a_command.txt.j2", name=staff.name)
    await ctx.chat.write_reply(staff.userid, reply, f"reply:{event.inbox_id}")
