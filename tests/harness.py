"""Drives the real app over HTTP against the WeCom simulator, PostgreSQL/SQLite and Redis."""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from aiohttp.web_runner import BaseRunner
from tortoise import Tortoise
from tortoise.connection import get_connection

from bot.app.factory import create_app
from bot.app.keys import outbox_key, redis_key, worker_key
from bot.app.serving import make_runner
from bot.app.settings import Settings
from bot.devtools.simulator import WeComSimulator, load_demo_corp
from bot.devtools.simulator.jssdk import JSSDK_PATH
from bot.domain.clock import ManualClock
from bot.store.db import dialect
from bot.wecom.crypto import CallbackCrypto
from models import Customer, Ticket

RULES_FILE = Path(__file__).resolve().parent.parent / "rules.toml"
CORP_ID = "wwtestcorp0001"
AGENT_ID = 1000002
SECRET = "test-app-secret"
CONTACT_SECRET = "test-contact-secret"
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SECRET_KEY = "test-secret-key-for-signed-links-0123456789"


class ServedTestServer(TestServer):
    """The test server, serving the app the way `scrmbot serve` does (bot/app/serving.py)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return make_runner(self.app)  # not aiohttp's test options: production's


def test_settings(api_base: str, **overrides: Any) -> Settings:
    base = Settings(
        corp_id=CORP_ID, agent_id=AGENT_ID, secret=SECRET, contact_secret=CONTACT_SECRET,
        token=TOKEN, aes_key=AES_KEY, api_base=api_base,
        redis_url=os.environ.get("REDIS_URL") or None,
        max_clock_skew_s=600, admins=("admin",), workers=4, rules_file=str(RULES_FILE),
        secret_key=SECRET_KEY, data_dir=tempfile.mkdtemp(prefix="scrmbot-test-data-"),
    )
    return replace(base, **overrides)


_PG_RESET: list[str] = []  # the PostgreSQL reset script, made once per test session


async def _pg_reset_script(tables: list[str]) -> str:
    """DELETE every table with foreign-key triggers off, then restart the sequences: about
    10 ms, where TRUNCATE of some fifty tables takes 130 ms a test (it makes new files for
    every table), which was a third of the suite's time on PostgreSQL."""
    if not _PG_RESET:
        conn = get_connection("default")
        # The sequences of the tables emptied, not the migration runner's own: restarting
        # that one made the next new migration collide with the first row's id.
        _, rows = await conn.execute_query(
            "SELECT s.relname AS seq, t.relname AS tab FROM pg_class s"
            " JOIN pg_depend d ON d.objid = s.oid AND d.deptype = 'a'"
            " JOIN pg_class t ON t.oid = d.refobjid WHERE s.relkind = 'S'")
        deletes = "; ".join(f'DELETE FROM "{t}"' for t in tables)
        restarts = "; ".join(f'ALTER SEQUENCE "{r["seq"]}" RESTART' for r in rows
                             if r["tab"] in tables)
        _PG_RESET.append(f"SET session_replication_role = replica; {deletes}; "
                         f"SET session_replication_role = DEFAULT; {restarts}")
    return _PG_RESET[0]


async def reset_database() -> None:
    """Empty every table so each test starts clean (schema stays)."""
    conn = get_connection("default")
    tables = [model._meta.db_table for model in Tortoise.apps.get_models_iterable()]
    if dialect() == "postgres":
        await conn.execute_script(await _pg_reset_script(tables))
    else:
        for table in tables:
            await conn.execute_query(f'DELETE FROM "{table}"')


@dataclass
class Harness:
    """One scrmbot app, one simulator, one shared manual clock."""

    sim: WeComSimulator
    client: TestClient
    clock: ManualClock
    settings: Settings
    crypto: CallbackCrypto = field(init=False)

    def __post_init__(self) -> None:
        self.crypto = CallbackCrypto(TOKEN, AES_KEY, self.settings.corp_id)

    @property
    def app(self) -> web.Application:
        return self.client.server.app

    @property
    def callback_url(self) -> str:
        return str(self.client.make_url("/wecom/callback"))

    async def drain(self) -> None:
        """Process every due inbox row and deliver every due notice (twice, since handling
        an event may queue notices and delivering one never queues events)."""
        if not self.app[outbox_key].running:
            self.app[outbox_key].start()
        await self.app[worker_key].drain()
        await self.app[outbox_key].drain()
        await self.app[worker_key].drain()

    def signed_post(self, xml: str, *, timestamp: str | None = None,
                    nonce: str | None = None) -> tuple[dict[str, str], str]:
        """Query parameters and body of a correctly signed, encrypted WeCom callback."""
        ts = timestamp or str(int(self.clock.timestamp()))
        nonce = nonce or secrets.token_hex(5)
        body, signature = self.crypto.envelope(xml, ts, nonce)
        return {"msg_signature": signature, "timestamp": ts, "nonce": nonce}, body

    async def post_callback(self, xml: str, **kw: str) -> Any:
        params, body = self.signed_post(xml, **kw)
        return await self.client.post("/wecom/callback", params=params, data=body)


async def start_harness(aiohttp_client: Any, *, run_worker: bool = True,
                        clock: ManualClock | None = None, reset: bool = True,
                        **overrides: Any) -> Harness:
    """Start the simulator and the app; `reset=False` keeps the data (restart tests)."""
    clock = clock or ManualClock()
    corp_id = overrides.get("corp_id", CORP_ID)
    sim = WeComSimulator(corp_id, AGENT_ID, {SECRET: "app", CONTACT_SECRET: "contact"},
                         TOKEN, AES_KEY, clock=clock, callback_timeout_s=2.0)
    load_demo_corp(sim)
    api_base = await sim.start()
    port = overrides.pop("port", None) or unused_port()
    sim_root = api_base.removesuffix("/cgi-bin")
    if overrides.pop("sim_jssdk", False):  # the simulator stands in for WeCom's JS-SDK
        overrides["jssdk_stand_in"] = sim_root + JSSDK_PATH
    overrides = {"public_url": f"http://127.0.0.1:{port}", "oauth_base": sim_root,
                 "login_base": sim_root, **overrides}
    settings = test_settings(api_base, **overrides)
    app = create_app(settings, clock=clock, run_worker=run_worker, run_scheduler=False,
                     worker_poll_s=0.05)

    async def clean_state(app: web.Application) -> Any:
        if reset:
            await reset_database()
            await app[redis_key].flushdb()
        yield

    async def close_simulator(_app: web.Application) -> None:
        await sim.close()

    app.cleanup_ctx.insert(2, clean_state)  # after database and redis, before the worker
    app.on_cleanup.append(close_simulator)
    client: TestClient = await aiohttp_client(ServedTestServer(app, host="127.0.0.1",
                                                               port=port))
    sim.callback_url = str(client.make_url("/wecom/callback"))
    harness = Harness(sim=sim, client=client, clock=clock, settings=settings)
    return harness




async def say(h: Harness, userid: str, text: str) -> str:
    """Type `text` to the app as `userid`; return everything the bot answered, joined."""
    seen = len(h.sim.sent_messages)
    delivery = await h.sim.staff_sends_text(userid, text)
    assert delivery.delivered, delivery.attempts
    await h.drain()
    replies = [m for m in h.sim.sent_messages[seen:] if userid in m["touser"]]
    return "\n".join(_message_text(m) for m in replies)


def _message_text(message: dict[str, Any]) -> str:
    payload = message[message["msgtype"]]
    if message["msgtype"] == "textcard":
        return f"{payload['title']}\n{payload['description']}\n{payload['url']}"
    return str(payload.get("content", payload))


async def walk_in(h: Harness, name: str, staff: str = "zhangsan", **fields: Any) -> Customer:
    """A customer who added `staff` without a channel, with `fields` set on our record."""
    scan = await h.sim.customer_scans("walkin", name, staff=staff)
    await h.drain()
    customer = await Customer.get(external_userid=scan.external_userid)
    if fields:
        await Customer.filter(id=customer.id).update(**fields)
        await customer.refresh_from_db()
    return customer


async def installed_ticket(h: Harness, store: str = "成都高新店", region: str = "西南",
                           kind: str = "安装") -> str:
    result = await h.sim.customer_scans("walkin", "周先生", staff="zhouba",
                                        mobile="13912345678")
    await h.drain()
    await Customer.filter(external_userid=result.external_userid).update(store=store,
                                                                         region=region)
    await say(h, "zhouba", f"/ticket open 周先生 {kind} 客厅空调 {REQUIRED_FIELDS.get(kind, '')}")
    ticket = await Ticket.get()
    await walk_stages(h, ticket, {"西南": "zhouba", "华东": "sunqi"}[region])
    return ticket.number


# What the shipped rules file requires of each type before its stages can be walked.
REQUIRED_FIELDS = {"维修": "型号=KFR-35GW"}


async def send_photos(h: Harness, userid: str, count: int = 1) -> str:
    """`userid` sends `count` pictures to the app (each another demo picture); returns what
    the bot answered, joined."""
    seen = len(h.sim.sent_messages)
    for _ in range(count):
        sent = await h.sim.staff_sends_image(userid)
        assert sent.delivery.delivered, sent.delivery.attempts
        await h.drain()
    replies = [m for m in h.sim.sent_messages[seen:] if userid in m["touser"]]
    return "\n".join(_message_text(m) for m in replies)


async def walk_stages(h: Harness, ticket: Ticket, approver: str) -> None:
    """Walk a four-stage ticket (接单, 上门, 安装/维修, 验收) to its end: its assignee the
    first three and the photos 验收 needs (安装: 2 验收照片), the approver 验收."""
    assignee = ticket.assignee or "wangwu"
    for _ in range(3):
        await say(h, assignee, f"/ticket next {ticket.number}")
    await ticket.refresh_from_db()
    stage = ticket.stages[ticket.stage_index] if ticket.stage_index < len(ticket.stages) \
        else {}
    needed = int(str(stage.get("photos") or 0))
    if needed:
        await send_photos(h, ticket.assignee or assignee, needed)
    await say(h, approver, f"/ticket next {ticket.number} 验收通过")
