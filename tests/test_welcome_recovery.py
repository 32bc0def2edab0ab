"""The welcome recovery lane finds the adds nobody welcomed with a bounded query.

It used to parse every add stored in the last 20 s, every second: at 3,000 adds a second
that was 60,000 XML parses a second and halved what the server could acknowledge. Now SQL
picks the adds without a finished or claimed welcome, oldest first, at most what the lane
has room for, and only those are parsed."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from tortoise.connection import get_connection

from bot.app.keys import context_key
from bot.store.db import dialect
from handlers.channels import welcome
from handlers.channels.welcome import RECOVERY_GRACE_S, code_hash, pending_welcomes
from models import InboxEntry, InboxStatus, WelcomeSend
from tests.harness import Harness, start_harness


def add_xml(n: int, create_time: int) -> str:
    return (f"<xml><ToUserName><![CDATA[wwcorp]]></ToUserName>"
            f"<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>{create_time}</CreateTime>"
            f"<MsgType><![CDATA[event]]></MsgType>"
            f"<Event><![CDATA[change_external_contact]]></Event>"
            f"<ChangeType><![CDATA[add_external_contact]]></ChangeType>"
            f"<UserID><![CDATA[zhangsan]]></UserID>"
            f"<ExternalUserID><![CDATA[wmrecover{n:04d}]]></ExternalUserID>"
            f"<WelcomeCode><![CDATA[code-{n}]]></WelcomeCode></xml>")


async def store_add(h: Harness, n: int, age_s: float,
                    status: InboxStatus = InboxStatus.PENDING) -> InboxEntry:
    at = h.clock.timestamp() - age_s
    return await InboxEntry.create(
        source="wecom", dedup_key=f"recover-{n}",
        kind="ExternalContactChange:add_external_contact", subject="sys",
        payload=add_xml(n, int(at)), status=status, received_ms=int(at * 1000),
        next_attempt_ms=int(at * 1000))


@pytest.fixture
async def harness(aiohttp_client: Any, database_url: str) -> Harness:
    """No worker and no lanes: the rows below are only looked at, by the test."""
    return await start_harness(aiohttp_client, database_url=database_url, run_worker=False)


async def test_only_unwelcomed_adds_are_recovered_oldest_first_and_bounded(
        harness: Harness) -> None:
    ctx = harness.app[context_key]
    now_ms = int(harness.clock.timestamp() * 1000)
    rows = {n: await store_add(harness, n, age_s=15 - n) for n in range(10)}  # 15 s … 6 s old
    for n in (0, 2, 4):  # welcomed, or given up: finished
        await WelcomeSend.create(code_hash=code_hash(f"code-{n}"), inbox_id=rows[n].id,
                                 event_at=harness.clock.now(), status="sent")
    await WelcomeSend.create(code_hash=code_hash("code-1"), inbox_id=rows[1].id,
                             event_at=harness.clock.now(), lease_until_ms=now_ms + 5000)
    await WelcomeSend.create(code_hash=code_hash("code-3"), inbox_id=rows[3].id,
                             event_at=harness.clock.now(), lease_until_ms=now_ms - 1)
    await store_add(harness, 50, age_s=RECOVERY_GRACE_S / 2)  # the fast lane's own
    await store_add(harness, 51, age_s=25)  # its code is dead
    await store_add(harness, 52, age_s=8, status=InboxStatus.DONE)

    found = await pending_welcomes(ctx, limit=3)
    # 1 is claimed under a live lease; 3's claimer died (its lease ran out): recovered
    assert [e.external_user_id for e in found] == ["wmrecover0003", "wmrecover0005",
                                                    "wmrecover0006"]
    assert [e.inbox_id for e in found] == [rows[3].id, rows[5].id, rows[6].id]
    everything = await pending_welcomes(ctx, limit=100)
    assert [e.external_user_id[-2:] for e in everything] == ["03", "05", "06", "07", "08", "09"]
    harness.clock.advance(timedelta(seconds=7))  # 3 is 19 s old now: still alive; 50 is due
    assert [e.external_user_id[-2:] for e in await pending_welcomes(ctx, limit=100)] == [
        "03", "05", "06", "07", "08", "09", "50"]


def _plan_nodes(plan: dict[str, Any], inside_subplan: bool = False
                ) -> list[tuple[str, str, bool]]:
    """(node type, relation, under a SubPlan) for every node of an EXPLAIN (FORMAT JSON)."""
    here = inside_subplan or plan.get("Parent Relationship") == "SubPlan"
    nodes = [(str(plan["Node Type"]), str(plan.get("Relation Name", "")), here)]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child, here)
    return nodes


async def test_a_burst_does_not_compare_every_add_with_every_welcome(
        harness: Harness) -> None:
    """Under a live stream's burst (2026-12-04 bench: 10,000 adds in 60 s) PostgreSQL's
    statistics, taken while the tables were small, made it join the pending adds with
    `welcome_send` by scanning all of it once per add: 550 ms a run, more than half of the
    database's CPU (welcome_send.inbox_id had no index either: migration 0025). The welcome
    is looked up by its inbox row's index, add by add, whatever the statistics say."""
    if dialect() != "postgres":
        pytest.skip("SQLite runs NOT EXISTS as a lookup per row; the plan is PostgreSQL's")
    conn = get_connection("default")
    await conn.execute_script("ANALYZE inbox; ANALYZE welcome_send")  # small, as at start
    base = int(harness.clock.timestamp() * 1000)
    await conn.execute_query(
        "INSERT INTO inbox (source, dedup_key, kind, subject, payload, status, attempts,"
        " received_ms, next_attempt_ms, locked_until_ms)"
        " SELECT 'wecom', 'burst-' || g, 'ExternalContactChange:add_external_contact',"
        " 'sys', '<xml/>', 'pending', 0, $1::bigint - g, 0, 0 FROM generate_series(1, 3000) g",
        [base - 3000])
    await conn.execute_query(
        "INSERT INTO welcome_send (code_hash, inbox_id, external_userid, event_at, status,"
        " claimed_by, lease_until_ms, attempted, detail)"
        " SELECT 'burst-' || id, id, '', now(), 'sent', '', 0, true, '' FROM inbox"
        " WHERE dedup_key LIKE 'burst-%'")
    _, rows = await conn.execute_query(
        "EXPLAIN (FORMAT JSON) " + welcome._PENDING_WELCOMES_SQL,
        [base - 20_000, base, "ExternalContactChange:add_external_contact",
         "ExternalContactChange:add_half_external_contact", base, 100])
    plan = rows[0]["QUERY PLAN"]
    nodes = _plan_nodes((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    welcome_nodes = [n for n in nodes if n[1] == "welcome_send"]
    assert welcome_nodes and all(under and "Index" in kind for kind, _, under in welcome_nodes), \
        nodes
    assert not any("Join" in kind for kind, _, _ in nodes), nodes
