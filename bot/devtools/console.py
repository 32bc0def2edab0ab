"""The sandbox console: type as a staff member or a customer, see what scrmbot did.

    as zhangsan: /help          a member types to the scrmbot app
    scan 抖音直播 as 王女士       a customer scans a channel QR code
    as customer 王女士: 我要报修  a customer writes to the Official Account
    clock +3h                   move time forward (SLA, care and settlement jobs)
    sidebar 王女士               the sidebar's URL for a chat with a customer
    photo wangwu                a member sends a picture to the app (拍照验收)
    calls [n]                   the last WeCom API calls scrmbot made
    import generic bot/devtools/examples/orders-generic.csv
                                import a shop's order export (as `scrmbot orders import`)
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import shlex
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bot.access.errors import Refusal
from bot.app.keys import context_key
from bot.devtools.running import Sandbox
from bot.devtools.simulator import FollowStatus
from bot.pipeline.inbox_admin import status_counts
from handlers.orders.importer import ImportReport, import_file
from handlers.parts.importer import PartImportReport, import_parts
from models import Channel, Customer
from scheduler.runner import JobBook, run_due_jobs

_AS = re.compile(r"^as\s+(?P<who>[\w.-]+)\s*[:：]\s*(?P<text>.+)$", re.S)
_AS_CUSTOMER = re.compile(r"^as\s+customer\s+(?P<name>\S+?)\s*[:：]\s*(?P<text>.+)$", re.S)
_SCAN = re.compile(r"^scan\s+(?P<state>\S+)\s+as\s+(?P<name>\S+)(?P<rest>.*)$")
_CLOCK = re.compile(r"^clock\s+\+(?P<n>\d+)(?P<unit>[smhd])$")
_SIDEBAR = re.compile(r"^sidebar\s+(?P<name>\S+)(?:\s+entry=(?P<entry>\w+))?$")
_CONFIRM = re.compile(r"^confirm\s+(?P<name>\S+)(?:\s+by\s+(?P<who>[\w.-]+))?$")
_IMPORT = re.compile(r"^import\s+(?P<source>\w+)\s+(?P<file>.+?)(?:\s+shop=(?P<shop>\S+))?$")
_RESIGN = re.compile(r"^resign\s+(?P<who>[\w.-]+)$")
_PHOTO = re.compile(r"^photo\s+(?P<who>[\w.-]+)(?:\s+(?P<file>.+))?$")
_PICTURE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
                  ".gif": "image/gif", ".webp": "image/webp"}
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_TAGS = re.compile(r"\s*<[^>]+>\s*")

HELP = """commands:
  as <userid>: <text>        type to the scrmbot app as a member (try: as zhangsan: /help)
  as customer <name>: <text> a customer writes to the Official Account (try: 我要报修)
  scan <channel|state> as <name> [mobile=138…] [staff=<userid>] [half]
                             a customer scans a channel QR code (staff= for a state
                             that belongs to no channel)
  sidebar <customer> [entry=<entry>]
                             the sidebar's URL for a chat with that customer, with the
                             simulator standing in for WeCom's JS-SDK (entry: single_chat_tools,
                             contact_profile, group_chat_tools, normal)
  confirm <customer> [by <userid>]
                             the member confirms a customer's half add (a skip-verify
                             scan with `half`), as they would in WeCom
  clock +<n><s|m|h|d>        move time forward and run what fell due (sweep, care, digests)
  import <source> <file> [shop=<shop>]
                             import a shop's order export as `scrmbot orders import` does
                             (sources: taobao jd douyin youzan generic wechat_shop); try
                             import generic bot/devtools/examples/orders-generic.csv
  import parts <file>        import parts and stock counts as `scrmbot parts import` does;
                             try import parts bot/devtools/examples/parts.csv
  photo <userid> [file]      the member sends a picture to the app (a demo picture, or
                             a .jpg/.png file): photo proof for a ticket at a stage that
                             needs photos, e.g. 安装 at 验收
  resign <userid>            the member leaves the corp (离职): try /handover, or wait for
                             the default ([handover] in rules.toml) with clock +1d
  calls [n]                  the last n WeCom API calls scrmbot made (default 10)
  staff                      the simulated corp's members
  inbox                      inbox totals (pending, processing, done, dead)
  help | quit"""


class Colour:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text


class Console:
    """A line-oriented REPL over the sandbox's simulator."""

    def __init__(self, sandbox: Sandbox, out: Any = None, colour: bool | None = None) -> None:
        self.sandbox = sandbox
        self.out = out or sys.stdout
        self.c = Colour(sys.stdout.isatty() if colour is None else colour)
        self._seen_messages = len(sandbox.sim.sent_messages)
        self._seen_calls = len(sandbox.sim.calls)
        self._seen_welcome = len(sandbox.sim.welcome_messages)
        self._seen_tasks = len(sandbox.sim.msg_templates)
        self._seen_oa = len(sandbox.oa.sent) if sandbox.oa is not None else 0

    def say(self, text: str) -> None:
        print(text, file=self.out)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                line = await loop.run_in_executor(None, input, self.c("scrmbot> ", "1;36"))
            except EOFError:
                return
            if line.strip() in ("quit", "exit"):
                return
            await self.execute(line)

    async def execute(self, line: str) -> None:
        """Run one console line; errors are shown, never raised."""
        line = line.strip()
        if not line:
            return
        try:
            await self._execute(line)
        except Exception as exc:  # a console must survive any typo
            self.say(self.c(f"error: {exc}", "31"))

    async def _execute(self, line: str) -> None:
        sim = self.sandbox.sim
        if m := _AS_CUSTOMER.match(line):
            await self._customer_says(m["name"], m["text"].strip())
        elif m := _AS.match(line):
            who, text = m["who"], m["text"].strip()
            if who not in sim.state.members:
                self.say(self.c(f"no member {who!r}; members: {', '.join(sim.state.members)}",
                                "31"))
                return
            await sim.staff_sends_text(who, text)
            await self.show_effects()
        elif m := _SCAN.match(line):
            opts = shlex.split(m["rest"])
            named = dict(o.split("=", 1) for o in opts if "=" in o)
            channel = await Channel.get_or_none(name=m["state"])
            state = channel.state if channel else m["state"]  # a channel's name works too
            result = await sim.customer_scans(state, m["name"], mobile=named.get("mobile"),
                                              staff=named.get("staff"), half="half" in opts)
            self.say(self.c(f"{m['name']} scanned {m['state']} and added {result.userid} "
                            f"(external id {result.external_userid})", "2"))
            await self.show_effects()
        elif m := _SIDEBAR.match(line):
            await self._sidebar_url(m["name"], m["entry"] or "single_chat_tools")
        elif m := _CONFIRM.match(line):
            await self._confirm_half(m["name"], m["who"])
        elif m := _CLOCK.match(line):
            delta = timedelta(**{_UNITS[m["unit"]]: int(m["n"])})
            ctx = self.sandbox.app[context_key]
            now = self.sandbox.clock.advance(delta).astimezone(ctx.settings.tz)
            self.sandbox.clock_moved()
            self.say(self.c(f"clock is now {now:%Y-%m-%d %H:%M} ({ctx.settings.timezone})",
                            "2"))
            await sim.settle_transfers()  # WeCom takes over customers 24 h after a transfer
            await self.show_effects()
            for job, outcome in (await run_due_jobs(ctx, ctx.locals.get(JobBook))).items():
                if outcome not in ("not due", "claimed"):
                    self.say(self.c(f"job {job}: {outcome}", "2"))
            await self.show_effects()
        elif m := _IMPORT.match(line):
            ctx, path = self.sandbox.app[context_key], Path(m["file"].strip())
            try:
                report: ImportReport | PartImportReport = await import_parts(
                    ctx, path, started_by="admin") if m["source"] == "parts" else \
                    await import_file(ctx, path, source=m["source"], shop=m["shop"],
                                      started_by="admin")
            except Refusal as exc:
                self.say(self.c(str(exc), "31"))
                return
            for text in report.lines():
                self.say(text)
            await self.show_effects()
        elif line.startswith("calls"):
            parts = line.split()
            n = int(parts[1]) if len(parts) > 1 else 10
            for call in sim.calls[-n:]:
                self.say(self._fmt_call(call))
        elif m := _PHOTO.match(line):
            await self._photo(m["who"], m["file"])
        elif m := _RESIGN.match(line):
            await sim.member_resigns(m["who"])
            self.say(self.c(f"{m['who']} left the corp (WeCom sent change_contact delete_user)",
                            "2"))
            await self.show_effects()
        elif line == "staff":
            for member in sim.state.members.values():
                self.say(f"  {member.userid:10} {member.name}  {member.position}")
        elif line == "inbox":
            self.say(", ".join(f"{k} {v}" for k, v in (await status_counts()).items()))
        elif line == "help":
            self.say(HELP)
        else:
            self.say(self.c("unknown console command; type help", "31"))

    async def _photo(self, who: str, file: str | None) -> None:
        sim = self.sandbox.sim
        if who not in sim.state.members:
            self.say(self.c(f"no member {who!r}; members: {', '.join(sim.state.members)}",
                            "31"))
            return
        if file is None:
            sent = await sim.staff_sends_image(who)
        else:
            path = Path(file.strip())
            kind = _PICTURE_TYPES.get(path.suffix.lower())
            if kind is None or not await asyncio.to_thread(path.is_file):
                self.say(self.c(f"{path}: not a .jpg/.png/.gif/.webp file", "31"))
                return
            content = await asyncio.to_thread(path.read_bytes)
            sent = await sim.staff_sends_image(who, content, filename=path.name,
                                               content_type=kind)
        self.say(self.c(f"{who} sent a picture (media_id {sent.media_id[:12]}…)", "2"))
        await self.show_effects()

    async def _sidebar_url(self, name: str, entry: str) -> None:
        """Where to open the sidebar as if a member were chatting with `name` in WeCom."""
        customer = await Customer.filter(name=name).first()
        if customer is None or not customer.external_userid:
            self.say(self.c(f"no customer {name!r} with a WeCom contact", "31"))
            return
        base = self.sandbox.app[context_key].settings.public_url
        query = urlencode({"sim_entry": entry, "sim_external": customer.external_userid})
        self.say(f"open {base}/sidebar?{query}")
        self.say(self.c(f"  log in as {customer.owner_userid or 'a member of the region'} "
                        f"(the owner); a member of another region sees nothing", "2"))

    async def _confirm_half(self, name: str, who: str | None) -> None:
        """A member confirms a half add (the customer added a skip-verify member)."""
        customer = await Customer.filter(name=name).first()
        half = [f for f in self.sandbox.sim.state.follows.values()
                if customer is not None and f.external_userid == customer.external_userid
                and f.status == FollowStatus.HALF and who in (None, f.userid)]
        if not half:
            self.say(self.c(f"{name} has no half add to confirm", "31"))
            return
        await self.sandbox.sim.confirm_half(half[0].userid, half[0].external_userid)
        self.say(self.c(f"{half[0].userid} confirmed {name}'s add", "2"))
        await self.show_effects()

    async def _customer_says(self, name: str, text: str) -> None:
        """A customer writes to the Official Account (followers are linked by name here)."""
        oa = self.sandbox.oa
        if oa is None:
            self.say(self.c("no Official Account in this sandbox", "31"))
            return
        customer = await Customer.filter(name=name).first()
        openid = (customer.openid if customer else None) or \
            "o" + hashlib.sha256(name.encode()).hexdigest()[:27]
        if customer is not None and customer.openid is None:
            customer.openid = openid  # the same person follows the Official Account
            await customer.save(update_fields=["openid"])
        await oa.follower_sends_text(openid, text)
        await self.show_effects()

    async def show_effects(self) -> None:
        """After an action: wait for the worker, then print new replies and API calls."""
        await self.sandbox.settle()
        sim = self.sandbox.sim
        for call in sim.calls[self._seen_calls:]:
            self.say(self._fmt_call(call))
        for welcome in sim.welcome_messages[self._seen_welcome:]:
            text = (welcome.get("text") or {}).get("content", "")
            self.say(self.c(f"[welcome → {welcome.get('external_userid')}] ", "1;35") + text)
        for message in sim.sent_messages[self._seen_messages:]:
            self.say(self.c(f"[bot → {','.join(message['touser'])}] ", "1;32")
                     + self._fmt_message(message))
        for task in sim.msg_templates[self._seen_tasks:]:
            self.say(self.c(f"[群发任务 {task['sender']} → {len(task['external_userid'])} 位客户，"
                            "待员工确认] ", "1;33") + task["text"]["content"])
        oa = self.sandbox.oa
        if oa is not None:
            for message in oa.sent[self._seen_oa:]:
                who = await Customer.filter(openid=message["touser"]).first()
                self.say(self.c(f"[公众号 → {who.name if who else message['touser']}] ", "1;34")
                         + message["text"]["content"])
            self._seen_oa = len(oa.sent)
        self._seen_calls = len(sim.calls)
        self._seen_welcome = len(sim.welcome_messages)
        self._seen_messages = len(sim.sent_messages)
        self._seen_tasks = len(sim.msg_templates)

    def _fmt_call(self, call: Any) -> str:
        status = "ok" if call.errcode == 0 else f"errcode {call.errcode}"
        return self.c(f"  ↳ {call.method} {call.endpoint} ({status})", "2")

    @staticmethod
    def _fmt_message(message: dict[str, Any]) -> str:
        msgtype = message.get("msgtype", "")
        payload = message.get(msgtype) or {}
        if msgtype in ("text", "markdown"):
            return str(payload.get("content", ""))
        if msgtype == "textcard":
            description = html.unescape(
                _TAGS.sub(" ", str(payload.get("description", ""))).strip())
            return f"{payload.get('title')}\n{description}\n{payload.get('url')}"
        if msgtype == "file":
            return f"[文件 {payload.get('media_id', '')[:12]}…]"
        return str(payload)
