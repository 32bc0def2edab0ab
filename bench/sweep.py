"""How long the minute sweep takes with 100,000 open tickets (target: under 2 s).

Builds its own PostgreSQL database (default scrmbot_bench_sweep) with 100,000 open tickets,
five timers each (500,000 rows: reminders, breaches, a stage limit) spread over two days, a
third of the tickets at stores and some already overdue, then times:

* a sweep at a moment when about 1% of the timers fall due (a busy minute), and
* the next sweep a minute later, when nothing new is due (the steady state).

Each fired timer queues a notice in the outbox (nothing is sent: no dispatcher runs).

    .venv/bin/python bench/sweep.py [--tickets 100000] [--database-url postgres://…]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta

from aiohttp import web
from benchlib import bench_settings, recreate_database

from bot.app.factory import create_app
from bot.app.keys import context_key
from bot.domain.clock import ManualClock
from bot.store.db import apply_migrations
from handlers.tickets.sweep import sweep
from models import Customer, OutboxMessage, Ticket, TicketTimer

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
STORES = ("北京朝阳店", "上海徐汇店", "成都高新店")


async def populate(count: int) -> None:
    customer = await Customer.create(external_userid="wmBENCH", name="压测客户", region="华北")
    chunk = 5000
    for offset in range(0, count, chunk):
        tickets = []
        for i in range(offset, min(offset + chunk, count)):
            created = START - timedelta(minutes=i % 2880)
            store = STORES[i % 3] if i % 3 == 0 else None
            tickets.append(Ticket(
                number=f"T-BENCH-{i:07d}", customer=customer, type="维修", summary="压测",
                team="客服中心", assignee="lisi", created_at=created, region="华北",
                service_store=store, response_due=created + timedelta(hours=2),
                resolution_due=created + timedelta(hours=24 + i % 48)))
        await Ticket.bulk_create(tickets)
        ids = await Ticket.filter(number__in=[t.number for t in tickets]).values_list(
            "id", "created_at")
        timers = []
        for ticket_id, created in ids:
            for kind, after in (("remind:response:0.5", 1), ("breach:response", 2),
                                ("remind:resolution:0.5", 12), ("breach:resolution", 24),
                                ("stage:0:接单", 2)):
                timers.append(TicketTimer(ticket_id=ticket_id, kind=kind,
                                          fire_at=created + timedelta(hours=after)))
        await TicketTimer.bulk_create(timers, batch_size=5000)
    # Everything due before the bench moment has been fired already, as in a live system.
    await TicketTimer.filter(fire_at__lt=START).update(fired_at=START)


async def main(args: argparse.Namespace) -> None:
    await recreate_database(args.database_url)
    await apply_migrations(args.database_url)
    clock = ManualClock(START)
    settings = bench_settings(corp_id="wwbench0001", secret="s", contact_secret="s",
                              token="QDG6eK", api_base="http://127.0.0.1:9/cgi-bin",
                              database_url=args.database_url, redis_url=args.redis_url)
    app = create_app(settings, clock=clock, run_worker=False, run_scheduler=False)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        started = time.perf_counter()
        await populate(args.tickets)
        print(f"populated {args.tickets:,} open tickets and "
              f"{await TicketTimer.all().count():,} timers in "
              f"{time.perf_counter() - started:.1f} s")
        ctx = app[context_key]
        clock.advance(timedelta(minutes=args.busy_minutes))
        due = await TicketTimer.filter(fired_at__isnull=True, fire_at__lte=clock.now()).count()
        started = time.perf_counter()
        report = await sweep(ctx)
        busy = time.perf_counter() - started
        print(f"busy sweep: {due:,} timers due ({args.busy_minutes} minutes' worth), "
              f"fired {report.fired}, froze {report.frozen}: {busy:.2f} s "
              f"({await OutboxMessage.all().count():,} notices queued)")
        clock.advance(timedelta(seconds=30))
        started = time.perf_counter()
        report = await sweep(ctx)
        print(f"steady sweep (nothing new due): fired {report.fired}: "
              f"{time.perf_counter() - started:.3f} s")
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--busy-minutes", type=int, default=1,
                        help="how many minutes of timers fall due at the busy sweep")
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/scrmbot_bench_sweep")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    asyncio.run(main(parser.parse_args()))
