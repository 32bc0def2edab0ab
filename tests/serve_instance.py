"""A whole scrmbot instance on a port, until it is killed: callbacks, worker, lanes, outbox.

Started by tests/test_welcome_crash.py, which SIGKILLs one in the middle of a burst of scans.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from bot.app.factory import create_app
from tests.harness import test_settings


async def main(api_base: str, database_url: str, port: str) -> None:
    settings = test_settings(api_base, database_url=database_url)
    # The production leases: a killed instance's rows come back only after a minute, long
    # after a welcome code (20 s) has died, unless the welcome lane recovers them.
    app = create_app(settings, run_scheduler=False, worker_poll_s=0.05)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(port)).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
