"""`SCRM_PROCESSES=2 scrmbot serve`: two complete instances on one port. Both take callbacks,
a process that dies is started again, and SIGTERM to the first stops them all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.app.keys import worker_key
from bot.app.processes import for_process
from bot.domain.clock import SystemClock
from models import InboxEntry, WelcomeSend
from tests.harness import (
    AES_KEY,
    AGENT_ID,
    CONTACT_SECRET,
    CORP_ID,
    RULES_FILE,
    SECRET,
    SECRET_KEY,
    TOKEN,
    start_harness,
)
from tests.harness import (
    test_settings as harness_settings,
)
from tests.test_welcome_crash import free_port

ROOT = Path(__file__).resolve().parent.parent
SCANS = 40


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in task.read_text().split()}
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and \
        "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


async def eventually(check: Any, timeout_s: float = 30.0) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true after {timeout_s} s: {check}")


@pytest.mark.skipif(not (os.environ.get("DATABASE_URL") or "").startswith("postgres")
                    or not os.environ.get("REDIS_URL"),
                    reason="several processes share PostgreSQL and Redis only")
async def test_two_processes_serve_one_port(aiohttp_client: Any, database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url, clock=SystemClock())
    await h.app[worker_key].stop()  # this app only provides the simulator
    h.sim.add_contact_way(["zhangsan"], state="chlive")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECOM_", "SCRM_"))}
    env.update({
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": str(AGENT_ID), "WECOM_SECRET": SECRET,
        "WECOM_CONTACT_SECRET": CONTACT_SECRET, "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": h.sim.base_url, "DATABASE_URL": database_url,
        "SCRM_SECRET_KEY": SECRET_KEY, "SCRM_RULES_FILE": str(RULES_FILE),
        "HOST": "127.0.0.1", "PORT": str(port), "SCRM_PROCESSES": "2",
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    lines: list[str] = []

    async def read_log() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            lines.append(line.decode(errors="replace"))

    reader = asyncio.create_task(read_log())
    try:
        async def both_serving() -> bool:
            return sum("serving on" in line for line in lines) == 2
        await eventually(both_serving, 60)
        assert any("process 0 of 2" in line for line in lines)
        assert any("process 1)" in line for line in lines)
        (first_child,) = children(proc.pid)

        h.sim.callback_url = f"http://127.0.0.1:{port}/wecom/callback"
        scans = await asyncio.gather(*(h.sim.customer_scans("chlive", f"观众{i}")
                                       for i in range(SCANS)))
        assert len(scans) == SCANS

        async def all_welcomed() -> bool:
            return await WelcomeSend.filter(status="sent").count() == SCANS
        await eventually(all_welcomed)
        # each connection went to one of the two: both welcomed someone
        pids = {row.claimed_by.rsplit("-", 2)[1] for row in await WelcomeSend.all()}
        assert pids == {str(proc.pid), str(first_child)}
        assert len(h.sim.welcome_messages) == SCANS  # once each

        async def all_processed() -> bool:
            return not await InboxEntry.exclude(status="done").exists()
        await eventually(all_processed)

        os.kill(first_child, signal.SIGKILL)  # a process that dies is started again

        async def replaced() -> bool:
            return bool(children(proc.pid) - {first_child}) and \
                sum("serving on" in line for line in lines) == 3
        await eventually(replaced)
        (second_child,) = children(proc.pid) - {first_child}
        assert any("exited with -9; starting it again" in line for line in lines)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
        await reader
    assert code == 0, "".join(lines[-30:])
    assert not alive(second_child)  # stopped with the first, not left behind


def test_each_process_has_a_metrics_port_of_its_own() -> None:
    settings = harness_settings("http://127.0.0.1:1/cgi-bin", metrics_port=9100)
    assert [for_process(settings, k).metrics_port for k in range(3)] == [9100, 9101, 9102]
    assert for_process(replace(settings, metrics_port=0), 2).metrics_port == 0  # none: none
    assert for_process(settings, 1).port == settings.port  # the rest is shared
