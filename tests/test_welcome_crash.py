"""kill -9 in the middle of a burst of scans: every welcome is sent once, or recorded as
expired; none is lost to the crash, none goes out twice (issue 12, items 4 and 9)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.app.keys import worker_key
from bot.domain.clock import SystemClock
from handlers.channels.welcome import code_hash
from models import InboxEntry, WelcomeSend
from tests.harness import start_harness

ROOT = Path(__file__).resolve().parent.parent
SCANS = 150


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgres"),
                    reason="several instances share a database on PostgreSQL only "
                           "(SQLite is the single-instance embedded default)")
async def test_kill_during_a_welcome_burst(aiohttp_client: Any, database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url, clock=SystemClock())
    await h.app[worker_key].stop()  # this instance only provides the simulator
    h.sim.add_contact_way(["zhangsan"], state="chlive")

    async def instance() -> tuple[asyncio.subprocess.Process, int]:
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "tests" / "serve_instance.py"), h.sim.base_url,
            database_url, str(port), cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 60)).strip() == b"ready"
        return proc, port

    doomed, port = await instance()
    h.sim.callback_url = f"http://127.0.0.1:{port}/wecom/callback"
    burst = asyncio.gather(*(h.sim.customer_scans("chlive", f"观众{i}") for i in range(SCANS)),
                           return_exceptions=True)
    for _ in range(4000):  # kill it while welcomes are going out
        if len(h.sim.welcome_messages) >= SCANS // 4:
            break
        await asyncio.sleep(0.005)
    doomed.send_signal(signal.SIGKILL)
    assert await doomed.wait() == -signal.SIGKILL
    survivor, port = await instance()
    h.sim.callback_url = f"http://127.0.0.1:{port}/wecom/callback"  # WeCom's retries land here
    scans = [s for s in await burst if not isinstance(s, BaseException)]
    codes = {code_hash(s.welcome_code) for s in scans if s.welcome_code}
    try:  # the dead instance's inbox rows come back after a minute; its welcomes cannot wait
        for _ in range(400):
            settled = await WelcomeSend.filter(code_hash__in=list(codes)).exclude(
                status="sending").count()
            if settled == len(codes):
                break
            await asyncio.sleep(0.1)
    finally:
        survivor.send_signal(signal.SIGTERM)
        await survivor.wait()
    assert await InboxEntry.filter(status="processing", attempts=1).exists()  # still leased
    sent = Counter(w["welcome_code"] for w in h.sim.welcome_messages)
    assert max(sent.values()) == 1  # nothing twice
    outcome = {row.code_hash: row.status for row in await WelcomeSend.all()}
    for scan in scans:
        assert scan.welcome_code is not None
        status = outcome.get(code_hash(scan.welcome_code))
        assert (scan.welcome_code in sent and status == "sent") or status == "expired", \
            (scan.welcome_code, status)
    assert "used" not in outcome.values()  # ours, not "another app's" (item 9)
    assert sum(1 for s in outcome.values() if s == "sent") >= len(scans) - 5
