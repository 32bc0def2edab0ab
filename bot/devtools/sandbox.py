"""Sandbox mode: scrmbot, the WeCom simulator and a console in one process.

No WeCom account needed: SQLite, an in-process fakeredis, and a simulated corp with staff in
two regions. The console lets a newcomer act as a staff member or a customer and shows the
bot's replies and the WeCom API calls scrmbot made.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import sys
from pathlib import Path

from aiohttp import web

from bot.app.factory import create_app
from bot.app.keys import context_key
from bot.app.serving import start_site
from bot.app.settings import Settings, WeChatOAConfig
from bot.devtools.console import Console
from bot.devtools.demo_history import demo_enabled, write_demo_history
from bot.devtools.restore import restore_corp
from bot.devtools.running import Sandbox, saved_offset
from bot.devtools.simulator import WeComSimulator, load_demo_corp
from bot.devtools.simulator.__main__ import (
    DEMO_AES_KEY,
    DEMO_CONTACT_SECRET,
    DEMO_CORP_ID,
    DEMO_SECRET,
    DEMO_TOKEN,
)
from bot.devtools.simulator.jssdk import JSSDK_PATH
from bot.devtools.simulator.oa import OASimulator
from bot.domain.clock import OffsetClock
from handlers.parts.importer import import_parts

logger = logging.getLogger(__name__)

SANDBOX_DIR = Path("var")
DEMO_PARTS = Path(__file__).resolve().parent / "examples" / "parts.csv"


OA_APP_ID, OA_SECRET, OA_TOKEN = "wxsandboxoa", "sandbox-oa-secret", "sandboxoa"
# The sandbox serves /metrics on its own port (127.0.0.1 only) to this documented token.
SANDBOX_METRICS_TOKEN = "sandbox-metrics-token"


def sandbox_secret_key() -> str:
    """The sandbox's own SCRM_SECRET_KEY, made once and kept in var/ (links stay valid
    across restarts)."""
    path = SANDBOX_DIR / "secret_key"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def sandbox_settings(api_base: str, port: int, oa_api_base: str) -> Settings:
    SANDBOX_DIR.mkdir(exist_ok=True)
    return Settings(
        oa=WeChatOAConfig(OA_APP_ID, OA_SECRET, OA_TOKEN, None), oa_api_base=oa_api_base,
        corp_id=DEMO_CORP_ID, agent_id=1000002, secret=DEMO_SECRET,
        contact_secret=DEMO_CONTACT_SECRET, token=DEMO_TOKEN, aes_key=DEMO_AES_KEY,
        api_base=api_base, database_url=f"sqlite://{SANDBOX_DIR / 'sandbox.db'}",
        redis_url=None, host="127.0.0.1", port=port, admins=("admin",),
        rules_file=os.environ.get("SCRM_RULES_FILE") or "rules.toml", sandbox=True,
        secret_key=sandbox_secret_key(), public_url=f"http://127.0.0.1:{port}",
        # the simulator plays both login pages (a member picker instead of WeCom's)
        oauth_base=api_base.removesuffix("/cgi-bin"), login_base=api_base.removesuffix("/cgi-bin"),
        jssdk_stand_in=api_base.removesuffix("/cgi-bin") + JSSDK_PATH,
        data_dir=str(SANDBOX_DIR), metrics_token=SANDBOX_METRICS_TOKEN,
    )


class PortTaken(Exception):
    """A port the sandbox needs is in use; the message says which and what to do."""


def check_ports(port: int) -> None:
    """The sandbox listens on `port` (scrmbot), +1 (the WeCom simulator), +2 (the Official
    Account): say clearly if one is taken, rather than a traceback half-way through start."""
    for number, what in ((port, "scrmbot"), (port + 1, "the WeCom simulator"),
                         (port + 2, "the Official Account simulator")):
        with socket.socket() as probe:
            # As the servers will: connections of a sandbox that just quit linger in
            # TIME_WAIT, and only a listener should count as taken.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", number))
            except OSError:
                msg = (f"port {number} ({what}) is already in use — is another sandbox "
                       f"running? Start on other ports with: PORT={port + 1000} make run")
                raise PortTaken(msg) from None


async def start_sandbox(port: int = 8080, *, demo: bool = False
                        ) -> tuple[Sandbox, web.AppRunner]:
    """Start the sandbox; with `demo` (what `make run` asks for) a fresh database first gets
    the demo corp's history, unless SCRM_SANDBOX_DEMO=0."""
    clock = OffsetClock()
    clock.offset = saved_offset(SANDBOX_DIR)
    sim = WeComSimulator(DEMO_CORP_ID, 1000002,
                         {DEMO_SECRET: "app", DEMO_CONTACT_SECRET: "contact"},
                         DEMO_TOKEN, DEMO_AES_KEY, clock=clock)
    load_demo_corp(sim)
    api_base = await sim.start("127.0.0.1", port + 1)
    oa = OASimulator(OA_APP_ID, OA_SECRET, OA_TOKEN, clock=clock)
    oa_base = await oa.start("127.0.0.1", port + 2)
    app = create_app(sandbox_settings(api_base, port, oa_base), clock=clock, migrate=True,
                     worker_poll_s=0.2)
    runner = await start_site(app, "127.0.0.1", port)
    # Before the restore, which then puts the history's channels and customers into the
    # simulator; before the scheduler's first tick too (its jobs start after a minute).
    history = await write_demo_history(app[context_key], list(sim.state.members.values())) \
        if demo and demo_enabled() else None
    restored = await restore_corp(sim, oa)  # the database outlives the in-memory simulator
    if history is not None:
        print(history.summary())
        # stock in the demo's warehouses, so an installation ticket can reserve parts
        parts = await import_parts(app[context_key], DEMO_PARTS, started_by="demo")
        print(f"演示配件库存：{parts.new} 条（/parts 铜管；/ticket parts <工单号> KT-CU3M 2）")
    server_url = f"http://127.0.0.1:{port}"
    sim.callback_url = f"{server_url}/wecom/callback"
    oa.callback_url = f"{server_url}/wechat/callback"
    sandbox = Sandbox(sim=sim, app=app, clock=clock, server_url=server_url, oa=oa,
                      restored=str(restored) if any(vars(restored).values())
                      and history is None else None,
                      state_dir=SANDBOX_DIR)
    return sandbox, runner


def _log_to_file(path: Path) -> None:
    """Keep the console readable: INFO logs go to a file, warnings still show."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler):
            handler.setLevel(logging.WARNING)
    file_handler = logging.FileHandler(path, encoding="utf-8")
    file_handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)


def run_sandbox(port: int = 8080, console: bool = True) -> int:
    try:
        check_ports(port)
    except PortTaken as exc:
        print(f"scrmbot sandbox: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        interactive = console and sys.stdin.isatty()
        if interactive:
            _log_to_file(SANDBOX_DIR / "sandbox.log")
        sandbox, runner = await start_sandbox(port, demo=True)
        control = sandbox.sim.base_url.removesuffix("/cgi-bin")
        logs = f", logs in {SANDBOX_DIR / 'sandbox.log'}" if interactive else ""
        print(f"scrmbot sandbox on {sandbox.server_url} (WeCom simulator on {control}{logs}).")
        print(f"Console: open {sandbox.server_url}/ in a browser and log in as a demo member "
              "(陈总 sees every region, 赵六 华北, 孙七 华东, 王五 his earnings).")
        if sandbox.restored:
            print(f"Restored from {SANDBOX_DIR / 'sandbox.db'}: {sandbox.restored}. "
                  f"To start afresh: quit, delete {SANDBOX_DIR}/, make run.")
        print("Try:  as zhangsan: /help    as zhangsan: /channel new 抖音直播 tags=直播高意向用户 "
              "staff=zhangsan    scan 抖音直播 as 王女士    sidebar 王女士 (the WeCom sidebar "
              "for a chat with her)    help")
        print(f"Or from another shell: curl -XPOST {control}/sim/text "
              "-d '{\"userid\":\"zhangsan\",\"content\":\"/help\"}'")
        print(f"Metrics: curl -H 'Authorization: Bearer {SANDBOX_METRICS_TOKEN}' "
              f"{sandbox.server_url}/metrics")
        try:
            if interactive:
                await Console(sandbox).run()
            else:
                await asyncio.Event().wait()
        finally:
            await sandbox.sim.close()
            if sandbox.oa is not None:
                await sandbox.oa.close()
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    return 0
