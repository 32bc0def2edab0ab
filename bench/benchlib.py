"""What the bench scripts share: the import path, a throw-away PostgreSQL database and Redis
db, the app's settings, the entry point and its options, timing on one core, the CPU
accounting (the machine is shared) and the outbox filled in bulk.

Imported first by every script: run as `python bench/<name>.py`, it puts the repository on
`sys.path`, so `bot`, `handlers` and `models` import after it without an installed package.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg
from redis.asyncio import Redis

if TYPE_CHECKING:
    from bot.app.settings import Settings

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as `python bench/<name>.py`
    sys.path.insert(0, str(REPO))

RULES_FILE = REPO / "rules.toml"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
# scrmbot's own secret (SCRM_SECRET_KEY, >= 32 characters): it signs the links in text cards.
SECRET_KEY = "bench-secret-key-for-signed-links-0123456789"


def bench_settings(**fields: Any) -> Settings:
    """`Settings` for an app under benchmark: the repository's rules and a secret key, plus
    `fields` (corp, credentials, API base, database, Redis)."""
    from bot.app.settings import Settings

    return Settings(**{"agent_id": 1000002, "aes_key": AES_KEY, "secret_key": SECRET_KEY,
                       "rules_file": str(RULES_FILE), **fields})


def free_port() -> int:
    """A port nobody listens on right now (also usable as an unreachable WeCom API)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the throw-away database and Redis db ------------------------------------------------------

def pg_parts(url: str) -> tuple[str, str]:
    """(admin DSN, database name); refuses any database whose name lacks 'bench'."""
    parsed = urllib.parse.urlsplit(url)
    name = parsed.path.lstrip("/")
    if not name or "bench" not in name or not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing to drop database {name!r}: its name must contain 'bench' "
                         "and only letters, digits and underscores")
    admin = parsed._replace(scheme="postgresql", path="/postgres", query="")
    return urllib.parse.urlunsplit(admin), name


async def recreate_database(url: str, *, create: bool = True) -> None:
    """Drop the bench database and (unless `create` is False) create it empty."""
    dsn, name = pg_parts(url)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def flush_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def add_store_options(parser: argparse.ArgumentParser, database_url: str,
                      redis_url: str) -> None:
    """--database-url, --redis-url and --keep-db, for a script that drops its database."""
    parser.add_argument("--database-url", default=database_url,
                        help="PostgreSQL, dropped and re-created (name must contain 'bench')")
    parser.add_argument("--redis-url", default=redis_url, help="flushed before and after")
    parser.add_argument("--keep-db", action="store_true",
                        help="keep the database afterwards (default: drop it)")


def bench_main(argv: list[str] | None, parse: Callable[[list[str]], argparse.Namespace],
               run: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
               children: Mapping[str, Callable[[list[str]], Coroutine[Any, Any, None]]]
               ) -> int:
    """A script's entry point: one of its `children` modes (the script started again in a
    child process, `argv[0]` naming the mode), or the benchmark itself with WARNING logs and
    its total time printed at the end (130 on Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in children:
        logging.basicConfig(level=logging.WARNING)
        asyncio.run(children[argv[0]](argv[1:]))
        return 0
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    print(f"\ntotal {time.perf_counter() - started:.0f} s "
          f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
    return 0


# --- the outbox, filled in bulk -----------------------------------------------------------------

_OUTBOX_SQL = """
INSERT INTO outbox (key, recipient, payload, kind, channel, customer_facing, status, attempts,
                    next_attempt_ms, locked_until_ms, created_at)
SELECT u.k, u.r, u.p::jsonb, $4::varchar, 'app', false, 'pending', 0, $5::bigint, 0,
       $6::timestamptz
FROM unnest($1::varchar[], $2::varchar[], $3::text[]) AS u(k, r, p)
ON CONFLICT (key) DO NOTHING
"""


async def insert_text_notices(conn: Any, kind: str, notices: Sequence[tuple[str, str, str]],
                              now: datetime) -> None:
    """(key, recipient, text) rows, as `Outbox.app_message(key, kind, recipient, "text",
    {"content": text})` writes them, due `now`, in one INSERT ... SELECT FROM unnest (a key
    queued already keeps its row). `conn` is a tortoise connection (PostgreSQL)."""
    await conn.execute_query(_OUTBOX_SQL, [
        [key[:191] for key, _, _ in notices], [recipient for _, recipient, _ in notices],
        [json.dumps({"msgtype": "text", "text": {"content": text}}, ensure_ascii=False,
                    separators=(",", ":")) for _, _, text in notices],
        kind, int(now.timestamp() * 1000), now])


# --- pure-code timing ---------------------------------------------------------------------------

def pin_one_core() -> tuple[str, Callable[[], None]]:
    """Pin this process to one CPU: (what was done, how to undo it)."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)", lambda: None
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}", lambda: os.sched_setaffinity(0, before)


def best_of(repeat: int, run: Callable[[], object]) -> tuple[float, list[float]]:
    """`run` `repeat` times after a garbage collection each: (best seconds, every run's)."""
    times = []
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times), times


# --- CPU: who was busy during a phase (the machine is shared) ----------------------------------

def _our_backend(entry: Path, database: str) -> bool:
    """A postgres process serving this benchmark's database, or a shared one (WAL writer,
    checkpointer, autovacuum ...), rather than a backend of someone else's database."""
    try:
        title = (entry / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return True
    parts = title.replace("\0", " ").split()
    # a backend's title: "postgres: 15/main: <user> <database> <client> <state>"
    return len(parts) < 4 or not parts[3].startswith("scrmbot") or parts[3] == database


def _proc_jiffies(database: str, me: str, named: Mapping[int | None, str]
                  ) -> dict[tuple[int, int], tuple[str, int]]:
    """(pid, start time) -> (who, utime+stime) for every process: `named` ones, this one and
    its children (`me`), postgres, redis-server and everyone else ("other")."""
    out: dict[tuple[int, int], tuple[str, int]] = {}
    mine = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        pid, ppid = int(entry.name), int(fields[1])
        who = named.get(pid) or (me if mine in (pid, ppid) else "postgres"
                                 if comm == "postgres" else "redis"
                                 if comm.startswith("redis-server") else "other")
        if who == "postgres" and not _our_backend(entry, database):
            who = "other"
        out[pid, int(fields[19])] = (who, int(fields[11]) + int(fields[12]))
    return out


@dataclass
class Cpu:
    """A snapshot of /proc; `since` gives the cores each party used in between. Processes
    that ended in between are lost, except this script's own children (os.times)."""

    total: int
    procs: dict[tuple[int, int], tuple[str, int]]
    children_s: float
    parties: tuple[str, ...]
    database: ClassVar[str] = ""  # this benchmark's database (other backends are "other")

    @classmethod
    def take(cls, me: str = "bench", named: Mapping[int | None, str] | None = None) -> Cpu:
        """`me` names this process and its children; `named` other processes by pid (a
        None pid: the party is listed, with nothing to count)."""
        named = named or {}
        parties = (me, *named.values(), "postgres", "redis", "other")
        times = os.times()
        if not Path("/proc/stat").exists():
            return cls(0, {}, 0.0, parties)
        stat = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return cls(sum(stat), _proc_jiffies(cls.database, me, named),
                   times.children_user + times.children_system, parties)

    def since(self, before: Cpu) -> dict[str, float]:
        """Cores each party used between `before` and this snapshot ({} without /proc)."""
        if not self.total:
            return {}
        per_cpu = max(self.total - before.total, 1) / (os.cpu_count() or 1)
        used = dict.fromkeys(self.parties, 0.0)
        for key, (who, ticks) in self.procs.items():
            used[who] += max(0, ticks - before.procs.get(key, (who, 0))[1]) / per_cpu
        used[self.parties[0]] += (self.children_s - before.children_s) \
            * os.sysconf("SC_CLK_TCK") / per_cpu
        return used


def cpu_text(used: Mapping[str, float]) -> str:
    """`cores: bench 0.95, postgres 0.60, ...`, flagged when other processes were busy."""
    if not used:
        return ""
    text = "cores: " + ", ".join(f"{k} {v:.2f}" for k, v in used.items())
    return text + ("  <- NOISY: other processes busy" if used.get("other", 0) > 0.2 else "")
