"""Benchmark: importing a big order export, and acknowledging order webhooks at 1,000/s.

What it measures
----------------
1. **File import.** Writes a generic-layout CSV (or XLSX with ``--format xlsx``) of
   ``--rows`` rows (default 200,000: about three orders in four of one item, the rest of two;
   about 60,000 buyers by phone; paid, shipped, delivered and refunded orders) and runs the
   real ``scrmbot orders import FILE --source generic`` in a child process against a fresh
   PostgreSQL database (``--database-url``, dropped and re-created, its name must contain
   "bench"). Printed: wall time, rows/s, the child's peak resident memory (``wait4``), and the
   import's own report. Then the same file again (every order unchanged: the cost of a
   re-import). Side by side: the issue's target (under 60 s) and **parse only**, reading and
   parsing the same rows in this process without a database (the floor the format sets).
2. **Webhooks.** Starts the real ``scrmbot serve`` (inbox worker on) and sends
   ``--rate`` (default 1,000) distinct, validly signed generic order pushes a second for
   ``--duration`` seconds, open loop (request *i* at ``t0 + i/rate``; latency from the
   intended send time). Printed: answers, p50/p99/max acknowledgement latency, then the inbox
   check (rows stored against 2xx answers: fewer would mean a lost push) and how long the
   worker took to store every order.

Nothing is asserted: the script prints figures.

Usage::

    .venv/bin/python bench/orders.py [--rows 200000] [--format csv|xlsx] [--rate 1000]
        [--duration 10] [--database-url postgres://postgres@127.0.0.1:5432/scrmbot_bench_orders]
        [--skip-import] [--skip-webhooks]
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from benchlib import REPO, recreate_database
from callback import (
    Processes,
    durable_env,
    free_port,
    open_loop,
    summarise,
    tail,
    wait_until_ready,
)

from bot.domain.order_layouts import GENERIC_COLUMNS, LAYOUTS, read_header, read_row
from bot.store.files import open_rows
from handlers.orders.pushes import generic_signature

SECRET = "bench-shop-secret"
STATUSES = ("已付款", "已发货", "已签收", "已签收", "已签收", "已退款")


def export_rows(rows: int, seed: int = 7) -> Iterator[list[object]]:
    """The header, then `rows` rows, generated as they are written (the bench's own memory
    stays small: a child forked from a big parent would report the parent's size)."""
    rng = random.Random(seed)
    header = [names[0] for names in GENERIC_COLUMNS.values()]
    yield list(header)
    written, order = 0, 0
    while written < rows:
        order += 1
        status = rng.choice(STATUSES)
        items = 1 if rng.random() < 0.75 else 2
        phone = f"139{rng.randrange(60_000):08d}"
        day = 1 + order % 28
        for item in range(min(items, rows - written)):
            price = rng.choice((9900, 29900, 129900, 329900))
            values = {
                "订单号": f"B{order:09d}", "订单状态": status, "买家手机号": phone,
                "买家姓名": "买家", "省份": "北京", "城市": "北京市", "详细地址": "朝阳区",
                "商品编码": f"SKU{item}", "商品名称": "空调" if item == 0 else "支架",
                "商品类目": "家电", "数量": "1", "单价": f"{price / 100:.2f}",
                "商品金额": f"{price / 100:.2f}", "运费": "0", "实付金额": f"{price / 100:.2f}",
                "退款金额": f"{price / 100:.2f}" if status == "已退款" else "",
                "下单时间": f"2026-11-{day:02d} 10:00:00",
                "付款时间": f"2026-11-{day:02d} 10:01:00"}
            yield [values.get(h, "") for h in header]
            written += 1


def write_export(path: Path, rows: int) -> int:
    """A generic-layout export of `rows` rows; returns the number of orders."""
    numbers: set[object] = set()
    if path.suffix == ".xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        for cells in export_rows(rows):
            numbers.add(cells[0])
            sheet.append(cells)
        book.save(path)
    else:
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            for cells in export_rows(rows):
                numbers.add(cells[0])
                writer.writerow(cells)
    return len(numbers) - 1  # the header's first cell


def parse_only(path: Path) -> tuple[float, int]:
    """Read and parse every row as the import does, without a database."""
    from zoneinfo import ZoneInfo

    started = time.monotonic()
    stream = open_rows(path)
    header = read_header(LAYOUTS["generic"], next(stream.rows))
    count = 0
    for cells in stream.rows:
        read_row(header, cells, "官网商城", ZoneInfo("Asia/Shanghai"))
        count += 1
    return time.monotonic() - started, count


def run_import(path: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """`scrmbot orders import` as an operator runs it: (seconds, peak RSS in MB, stdout)."""
    started = time.monotonic()
    proc = Processes().start([sys.executable, "-m", "bot.app.cli", "orders", "import",
                              str(path), "--source", "generic", "--by", "bench"], env=env,
                             cwd=REPO, capture=True)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    if proc.returncode not in (0, 1):
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"import exited with {proc.returncode}:\n{out}\n{err}")
    return seconds, usage.ru_maxrss / 1024, out


def push_requests(count: int, port: int, first: int = 0) -> list[bytes]:
    """Distinct signed pushes, one order each, as raw HTTP requests."""
    out = []
    ts = str(int(time.time()))
    for i in range(first, first + count):
        body = json.dumps({"number": f"W{i:09d}", "status": "paid",
                           "buyer_phone": f"137{i % 50_000:08d}", "paid_fen": 19900,
                           "goods_fen": 19900, "paid_at": "2026-11-25 10:00:00",
                           "items": [{"sku": "A", "name": "空调", "quantity": 1,
                                      "unit_price_fen": 19900}]}).encode()
        head = (f"POST /orders/webhook/generic HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nX-Scrmbot-Timestamp: {ts}\r\n"
                f"X-Scrmbot-Signature: {generic_signature(SECRET, ts, body)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        out.append(head + body)
    return out


async def inbox_state(url: str) -> tuple[int, int, int]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM inbox WHERE source = 'orders'")
        done = await conn.fetchval(
            "SELECT count(*) FROM inbox WHERE source = 'orders' AND status = 'done'")
        orders = await conn.fetchval("SELECT count(*) FROM shop_order WHERE via = 'webhook'")
        return int(rows), int(done), int(orders)
    finally:
        await conn.close()


def bench_webhooks(args: argparse.Namespace, env: dict[str, str], workdir: Path) -> None:
    port = free_port()
    procs = Processes()
    log = workdir / "serve.log"
    server_env = {**durable_env(args, port), "SCRM_SHOP_WEB_SECRET": SECRET,
                  "SCRM_MAX_CLOCK_SKEW_S": "0"}
    server = procs.start([sys.executable, "-m", "bot.app.cli", "serve"], env=server_env,
                         log=log, cwd=workdir)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz", server, log)
        total = int(args.rate * (args.duration + 1))
        requests = push_requests(total, port)
        samples = asyncio.run(open_loop(port, requests, args.rate))
        result = summarise(samples, f"open loop {args.rate}/s", args.rate, len(requests))
        sent_at = time.monotonic()
        print(f"webhooks, {args.rate:,}/s offered for {args.duration + 1:g} s "
              f"({total:,} distinct pushes; the first second is warm-up):")
        print(f"  answered {result.completed:,} in the measured window at {result.rps:,.0f}/s; "
              f"2xx {result.ok:,} of {total:,}, non-2xx {result.non2xx}, errors {result.errors}")
        print(f"  acknowledgement latency p50 {result.p50_ms:.1f} ms, p90 {result.p90_ms:.1f} ms,"
              f" p99 {result.p99_ms:.1f} ms, max {result.max_ms:.1f} ms")
        rows = done = stored = 0
        while time.monotonic() - sent_at < 300:
            rows, done, stored = asyncio.run(inbox_state(args.database_url))
            if done >= rows:
                break
            time.sleep(0.5)
        took = time.monotonic() - sent_at
        print(f"  inbox check: {rows:,} rows for {result.ok:,} 2xx answers "
              f"({'none lost' if rows >= result.ok else 'LOST ' + str(result.ok - rows)}); "
              f"{stored:,} orders stored by the worker {took:.1f} s after the last push "
              f"({done:,} rows done)")
    finally:
        procs.close()
        if os.environ.get("BENCH_SHOW_LOG"):
            print(tail(log, 40))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/scrmbot_bench_orders")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-webhooks", action="store_true")
    args = parser.parse_args(argv)
    if "bench" not in args.database_url.rsplit("/", 1)[-1]:
        parser.error("the database name must contain 'bench' (it is dropped)")
    asyncio.run(recreate_database(args.database_url))
    with tempfile.TemporaryDirectory(prefix="scrmbot-bench-orders-") as tmp:
        workdir = Path(tmp)
        env = {**durable_env(args, free_port()), "SCRM_DATA_DIR": str(workdir / "var")}
        if not args.skip_import:
            path = workdir / f"orders.{args.format}"
            started = time.monotonic()
            orders = write_export(path, args.rows)
            print(f"file: {args.rows:,} rows, {orders:,} orders, "
                  f"{path.stat().st_size / 1e6:.1f} MB {args.format.upper()} "
                  f"(written in {time.monotonic() - started:.1f} s)")
            parse_s, parsed = parse_only(path)
            seconds, rss, out = run_import(path, env)
            print(f"import:      {seconds:6.1f} s  {args.rows / seconds:8,.0f} rows/s  "
                  f"peak RSS {rss:4.0f} MB   (target: under 60 s)")
            print(f"parse only:  {parse_s:6.1f} s  {parsed / parse_s:8,.0f} rows/s  "
                  f"(same rows read and parsed, no database)")
            for line in out.splitlines()[:3]:
                print(f"  | {line}")
            seconds, rss, out = run_import(path, env)
            print(f"re-import:   {seconds:6.1f} s  {args.rows / seconds:8,.0f} rows/s  "
                  f"peak RSS {rss:4.0f} MB   (every order unchanged)")
            for line in out.splitlines()[1:2]:
                print(f"  | {line}")
        if not args.skip_webhooks:
            bench_webhooks(args, env, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
