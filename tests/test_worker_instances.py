"""Two instances work one inbox and one is killed (SIGKILL) in the middle of running
commands: every command runs once and every answer arrives once."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.app.keys import worker_key
from models import InboxEntry, Purchase
from tests.harness import start_harness, walk_in

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = 25  # within one member's 30 app messages a minute


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgres"),
                    reason="several instances share a database on PostgreSQL only "
                           "(SQLite is the single-instance embedded default)")
async def test_kill_one_of_two_instances_mid_command(aiohttp_client: Any,
                                                     database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url)
    customer = await walk_in(h, "王女士")
    await h.app[worker_key].stop()  # from now on this instance only stores callbacks
    for n in range(1, COMMANDS + 1):
        delivery = await h.sim.staff_sends_text("zhangsan", f"/customer buy 王女士 {n}")
        assert delivery.delivered
    seen = len(h.sim.sent_messages)

    async def instance() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests" / "worker_instance.py"), h.sim.base_url,
            database_url, "60", cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    doomed = await instance()
    for _ in range(4000):  # kill it as soon as commands are being run
        if await Purchase.filter(customer_id=customer.id).count() >= 5:
            break
        await asyncio.sleep(0.005)
    survivor = await instance()
    doomed.send_signal(signal.SIGKILL)
    assert await doomed.wait() == -signal.SIGKILL
    _, err = await asyncio.wait_for(survivor.communicate(), 90)
    assert survivor.returncode == 0, err.decode()[-2000:]

    amounts = sorted(await Purchase.filter(customer_id=customer.id).values_list(
        "amount_fen", flat=True))
    assert amounts == [n * 100 for n in range(1, COMMANDS + 1)]  # each command once
    assert await InboxEntry.exclude(status="done").count() == 0
    # the rows the killed instance held were taken over when their lease ran out
    assert await InboxEntry.filter(attempts__gte=2).exists()
    answers = Counter(m["text"]["content"] for m in h.sim.sent_messages[seen:]
                      if m["msgtype"] == "text" and "已记录 王女士 消费" in m["text"]["content"])
    assert len(answers) == COMMANDS and max(answers.values()) == 1  # each answer once
    await customer.refresh_from_db()
    assert customer.lifetime_spend_fen == sum(amounts)
