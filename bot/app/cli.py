"""The `scrmbot` command: serve, migrate, simulator, sandbox, inbox, outbox, orders, settle."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.app.settings import ConfigError, Settings, load_settings
from bot.rules.checker import RulesError
from bot.rules.loader import load_rules
from bot.store.db import DatabaseUnavailable, apply_migrations, close_db, open_db

logger = logging.getLogger("scrmbot")


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tortoise").setLevel(logging.WARNING)
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _settings() -> Settings:
    """Settings from the environment and ./.env; bad values end the process, one line each."""
    try:
        return load_settings(dotenv=Path(".env"))
    except ConfigError as exc:
        for line in str(exc).splitlines():
            print(f"scrmbot: configuration error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


def _run_db_command(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    """Run `work` with the ORM open, and always close it (aiosqlite hangs at exit otherwise)."""
    async def main() -> int:
        await open_db(settings.database_url, migrate=True)
        try:
            return await work()
        finally:
            await close_db()

    return asyncio.run(main())


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.app.factory import create_app  # the whole app: loaded only to serve
    from bot.app.metrics import MetricsPortTaken
    from bot.app.processes import for_process
    from bot.app.serving import report_port_taken, serve

    settings = _settings()
    index = args.process_index or 0
    processes = 1 if index else settings.processes
    if processes > 1:  # once, before any of the processes starts
        asyncio.run(apply_migrations(settings.database_url))
    try:
        app = create_app(for_process(settings, index), migrate=processes == 1 and not index)
    except RulesError as exc:
        print(f"scrmbot: rules error: {exc}", file=sys.stderr)
        return 2
    host, port = args.host or settings.host, args.port or settings.port
    try:
        serve(app, host, port, processes=processes, process_index=index,
              log_level=args.log_level)
    except MetricsPortTaken as exc:
        return report_port_taken(exc, "scrmbot", exc.host, exc.port,
                                 "stop what listens there or choose another SCRM_METRICS_PORT")
    except OSError as exc:
        return report_port_taken(exc, "scrmbot", host, port,
                                 "stop what listens there or choose another with --port or PORT")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    asyncio.run(apply_migrations(settings.database_url))
    print(f"migrations applied to {settings.database_url.split('@')[-1]}")
    return 0


def cmd_simulator(args: argparse.Namespace) -> int:
    from bot.devtools.simulator.__main__ import main as simulator_main

    return simulator_main(args.rest)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from bot.devtools.sandbox import run_sandbox

    port = args.port
    if port is None:
        raw = os.environ.get("PORT") or "8080"
        if not raw.isdigit() or not 0 < int(raw) < 65534:
            print(f"scrmbot sandbox: PORT must be a port number like 8080, got {raw!r}",
                  file=sys.stderr)
            return 2
        port = int(raw)
    return run_sandbox(port=port, console=not args.no_console)


def _fmt_ms(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def cmd_inbox(args: argparse.Namespace) -> int:
    from bot.pipeline.inbox_admin import replay, status_counts
    from models import InboxEntry

    settings = _settings()

    async def inbox_list() -> int:
        query = InboxEntry.all().order_by("-id").limit(args.limit)
        if args.status:
            query = query.filter(status=args.status)
        rows = await query
        print(f"{'id':>8}  {'status':10} {'tries':>5}  {'received (UTC)':19}  kind")
        for row in rows:
            print(f"{row.id:>8}  {row.status:10} {row.attempts:>5}  "
                  f"{_fmt_ms(row.received_ms)}  {row.kind}")
        counts = await status_counts()
        print("totals: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0

    async def inbox_show() -> int:
        row = await InboxEntry.get_or_none(id=args.id)
        if row is None:
            print(f"no inbox row {args.id}", file=sys.stderr)
            return 1
        print(f"id:         {row.id}\nsource:     {row.source}\nkind:       {row.kind}\n"
              f"dedup key:  {row.dedup_key}\nstatus:     {row.status}\n"
              f"attempts:   {row.attempts}\nreceived:   {_fmt_ms(row.received_ms)}\n"
              f"next try:   {_fmt_ms(row.next_attempt_ms)}\n"
              f"processed:  {_fmt_ms(row.processed_ms)}\nlocked by:  {row.locked_by or '-'}")
        print(f"payload:\n{row.payload}")
        if row.last_error:
            print(f"last error:\n{row.last_error}")
        return 0

    async def inbox_replay() -> int:
        replayed = await replay(args.ids, all_dead=args.all_dead)
        if not replayed:
            print("nothing to replay", file=sys.stderr)
            return 1
        print(f"queued {len(replayed)} row(s) for processing: "
              + ", ".join(map(str, replayed)))
        return 0

    work = {"list": inbox_list, "show": inbox_show, "replay": inbox_replay}[args.inbox_cmd]
    return _run_db_command(settings, work)


def cmd_settle(args: argparse.Namespace) -> int:
    from handlers.settlement.reconcile import ledger_report
    from models import LedgerEntry, Payout

    settings = _settings()
    try:
        rules = load_rules(settings.rules_file, settings.timezone)
    except RulesError as exc:
        print(f"scrmbot: rules error: {exc}", file=sys.stderr)
        return 2

    async def check() -> int:
        report = await ledger_report(rules)
        problems = report.problems
        payouts, entries = await Payout.all().count(), await LedgerEntry.all().count()
        for note in report.notes:
            print(f"NOTE {note}")
        if problems:
            for problem in problems:
                print(f"PROBLEM {problem}")
            print(f"ledger check failed: {len(problems)} problem(s) in {payouts} payouts, "
                  f"{entries} ledger entries")
            return 1
        print(f"ledger ok: {payouts} payouts, {entries} ledger entries")
        return 0

    return _run_db_command(settings, check)


def cmd_outbox(args: argparse.Namespace) -> int:
    from models import OutboxMessage, OutboxStatus

    settings = _settings()

    async def listing() -> int:
        query = OutboxMessage.all().order_by("-id").limit(args.limit)
        if args.failed:
            query = query.filter(status=OutboxStatus.FAILED)
        rows = await query
        print(f"{'id':>8}  {'status':8} {'tries':>5}  {'kind':10} {'channel':10} "
              f"{'recipient':20} error")
        for row in rows:
            error = f"{row.errcode or ''} {(row.last_error or '')[:60]}".strip()
            print(f"{row.id:>8}  {row.status:8} {row.attempts:>5}  {row.kind:10} "
                  f"{row.channel:10} {row.recipient:20} {error}")
        counts = {s.value: await OutboxMessage.filter(status=s).count() for s in OutboxStatus}
        print("totals: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return 0

    return _run_db_command(settings, listing)


def cmd_orders(args: argparse.Namespace) -> int:
    """`scrmbot orders import FILE --source …`: a progress bar on stderr, the report on
    stdout; exits 1 if any row was refused or the import stopped, 2 if it could not start."""
    from bot.access.errors import Refusal
    from bot.app.factory import standalone_context
    from handlers.orders.importer import import_file

    settings = _settings()
    path = Path(args.file)
    if not path.is_file():
        print(f"scrmbot: 找不到文件 {path}", file=sys.stderr)
        return 2
    bar = _ProgressBar(sys.stderr)

    async def work() -> int:
        async with standalone_context(settings) as ctx:
            report = await import_file(ctx, path, source=args.source, shop=args.shop,
                                       started_by=args.by, on_progress=bar.show)
        bar.end()
        for line in report.lines():
            print(line)
        print(f"用时 {report.seconds:.1f} 秒（{report.rows / max(report.seconds, 0.001):,.0f} "
              f"行/秒）")
        return 1 if report.failed or report.counts.refused else 0

    try:
        return asyncio.run(work())
    except Refusal as exc:
        bar.end()
        print(f"scrmbot: {exc}", file=sys.stderr)
        return 2
    except RulesError as exc:
        print(f"scrmbot: rules error: {exc}", file=sys.stderr)
        return 2


def cmd_parts(args: argparse.Namespace) -> int:
    """`scrmbot parts import FILE`: the report on stdout; exits 1 if any row was refused, 2
    if the file could not be imported at all."""
    from bot.access.errors import Refusal
    from bot.app.factory import standalone_context
    from handlers.parts.importer import import_parts

    settings = _settings()

    async def work() -> int:
        async with standalone_context(settings) as ctx:
            report = await import_parts(ctx, Path(args.file), started_by=args.by)
        for line in report.lines():
            print(line)
        return 1 if report.refused else 0

    try:
        return asyncio.run(work())
    except (Refusal, RulesError) as exc:
        print(f"scrmbot: {exc}", file=sys.stderr)
        return 2


class _ProgressBar:
    """`[#####.....]  48%  96,000 行` redrawn in place on a terminal, a line per 10% else."""

    def __init__(self, out: Any, width: int = 30) -> None:
        self.out, self.width = out, width
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.last_tenth = -1
        self.drawn = False

    def show(self, fraction: float, rows: int) -> None:
        filled = int(fraction * self.width)
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {fraction:4.0%}  {rows:,} 行"
        if self.tty:
            self.out.write("\r" + text)
            self.drawn = True
        elif int(fraction * 10) > self.last_tenth:
            self.last_tenth = int(fraction * 10)
            self.out.write(text + "\n")
        self.out.flush()

    def end(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.drawn = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrmbot", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (applies pending migrations first)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    # set by the supervising process for the processes it starts (SCRM_PROCESSES)
    serve.add_argument("--process-index", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="apply pending database migrations").set_defaults(
        func=cmd_migrate)

    sim = sub.add_parser("simulator", add_help=False,
                         help="run the WeCom simulator standalone (scrmbot simulator --help)")
    sim.set_defaults(func=cmd_simulator, rest=[])

    sandbox = sub.add_parser("sandbox", help="server + simulator + console, no WeCom needed")
    sandbox.add_argument("--port", type=int, default=None,
                         help="scrmbot's port (default $PORT or 8080); the WeCom simulator "
                              "uses the next one, the Official Account the one after")
    sandbox.add_argument("--no-console", action="store_true")
    sandbox.set_defaults(func=cmd_sandbox)

    inbox = sub.add_parser("inbox", help="look at and replay accepted callbacks")
    inbox_sub = inbox.add_subparsers(dest="inbox_cmd", required=True)
    listing = inbox_sub.add_parser("list", help="recent rows (newest first)")
    listing.add_argument("--status", choices=["pending", "processing", "done", "dead"])
    listing.add_argument("--limit", type=int, default=20)
    show = inbox_sub.add_parser("show", help="one row with payload and last error")
    show.add_argument("id", type=int)
    replay = inbox_sub.add_parser("replay", help="queue rows for processing again")
    replay.add_argument("ids", type=int, nargs="*")
    replay.add_argument("--all-dead", action="store_true")
    inbox.set_defaults(func=cmd_inbox)

    outbox = sub.add_parser("outbox", help="look at queued and failed notices")
    outbox_sub = outbox.add_subparsers(dest="outbox_cmd", required=True)
    outbox_list = outbox_sub.add_parser("list", help="recent notices (newest first)")
    outbox_list.add_argument("--failed", action="store_true", help="only permanent failures")
    outbox_list.add_argument("--limit", type=int, default=20)
    outbox.set_defaults(func=cmd_outbox)

    orders = sub.add_parser("orders", help="import orders exported from shops and platforms")
    orders_sub = orders.add_subparsers(dest="orders_cmd", required=True)
    order_import = orders_sub.add_parser(
        "import", help="import a CSV or XLSX order export (see the README for layouts)")
    order_import.add_argument("file", help="the exported file (.csv or .xlsx)")
    order_import.add_argument("--source", required=True,
                              choices=["taobao", "jd", "douyin", "youzan", "generic",
                                       "wechat_shop"],
                              help="whose export layout the file has")
    order_import.add_argument("--shop", help="the shop, as in [[orders.shops]] (optional "
                                             "when the source has one shop)")
    order_import.add_argument("--by", default="", help="who ran the import (WeCom userid)")
    order_import.set_defaults(func=cmd_orders)

    parts = sub.add_parser("parts", help="import the parts catalogue and stock counts")
    parts_sub = parts.add_subparsers(dest="parts_cmd", required=True)
    parts_import = parts_sub.add_parser(
        "import", help="import a CSV or XLSX parts list: each row sets the stock of a part "
                       "in a warehouse (a stocktake; see the README)")
    parts_import.add_argument("file", help="the parts file (.csv or .xlsx)")
    parts_import.add_argument("--by", default="", help="who ran the import (WeCom userid)")
    parts_import.set_defaults(func=cmd_parts)

    settle = sub.add_parser("settle", help="settlement ledger tools")
    settle_sub = settle.add_subparsers(dest="settle_cmd", required=True)
    settle_sub.add_parser("check", help="verify the ledger; exits 1 if anything is wrong")
    settle.set_defaults(func=cmd_settle)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # The simulator has its own parser (and --help): its options pass through untouched.
    args, extra = parser.parse_known_args(argv)
    if args.command == "simulator":
        args.rest = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setup_logging(args.log_level)
    if args.command == "inbox" and args.inbox_cmd == "replay" and not (args.ids or args.all_dead):
        print("scrmbot inbox replay: give row ids or --all-dead", file=sys.stderr)
        return 2
    try:
        return int(args.func(args))
    except DatabaseUnavailable as exc:
        print(f"scrmbot: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
