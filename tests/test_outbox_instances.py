"""Two instances deliver one outbox and one is killed (SIGKILL) mid-dispatch: every notice
arrives exactly once (counted in the simulator's log)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.app.keys import context_key
from models import OutboxMessage, OutboxStatus
from tests.harness import start_harness

ROOT = Path(__file__).resolve().parent.parent
NOTICES, MEMBERS = 300, 150


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgres"),
                    reason="several instances share a database on PostgreSQL only "
                           "(SQLite is the single-instance embedded default)")
async def test_kill_one_of_two_instances_mid_dispatch(aiohttp_client: Any,
                                                      database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url, run_worker=False)
    for i in range(MEMBERS):
        h.sim.add_user(f"m{i:03d}", f"员工{i}", [1])
    ctx = h.app[context_key]
    for n in range(NOTICES):
        await ctx.outbox.app_message(f"test:{n}", "test", f"m{n % MEMBERS:03d}", "text",
                          {"content": f"通知 {n}"})
    assert not await ctx.outbox.app_message("test:0", "test", "m000", "text", {"content": "again"})

    async def instance() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests" / "outbox_instance.py"), h.sim.base_url,
            database_url, "30", cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    doomed, survivor = await instance(), await instance()
    for _ in range(2000):  # kill the first as soon as delivery is under way
        if len(h.sim.sent_messages) >= 30:
            break
        await asyncio.sleep(0.005)
    doomed.send_signal(signal.SIGKILL)
    assert await doomed.wait() == -signal.SIGKILL
    _, err = await asyncio.wait_for(survivor.communicate(), 60)
    assert survivor.returncode == 0, err.decode()[-2000:]

    delivered = Counter(m["text"]["content"] for m in h.sim.sent_messages)
    assert len(delivered) == NOTICES
    assert max(delivered.values()) == 1  # nothing twice
    assert await OutboxMessage.filter(status=OutboxStatus.SENT).count() == NOTICES
    assert not [c for c in h.sim.calls_to("message/send") if c.errcode == 45009]
