"""Two server instances sweeping the same minute: every reminder is sent once."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from models import Customer, TicketTimer
from tests.harness import Harness, say

ROOT = Path(__file__).resolve().parent.parent


async def test_two_instances_sweep_the_same_minute(harness: Harness) -> None:
    scan = await harness.sim.customer_scans("walkin", "王女士", staff="zhangsan")
    await harness.drain()
    assert await Customer.filter(external_userid=scan.external_userid).exists()
    for i in range(10):
        await say(harness, "zhangsan", f"/ticket open 王女士 咨询 问题{i}")
    moment = harness.clock.now() + timedelta(hours=1, minutes=1)
    at = moment.isoformat()
    before = len(harness.sim.sent_messages)
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "tests" / "sweep_instance.py"), harness.sim.base_url,
        harness.settings.database_url, at, cwd=ROOT, env={"PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = [await p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-2000:] for o in outputs]
    harness.clock.set(moment)
    await harness.drain()  # the instances queued the notices; this one's outbox sends them
    reminders = [m for m in harness.sim.sent_messages[before:]
                 if m["msgtype"] == "textcard" and "工单提醒" in m["textcard"]["title"]]
    assert len(reminders) == 10  # one per ticket (the 0.5 reminder), not two
    assert await TicketTimer.filter(fired_at__isnull=False, kind="remind:response:0.5").count() \
        == 10
