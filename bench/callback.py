"""Benchmark: how fast scrmbot durably acknowledges WeCom callbacks, next to a bare handler.

What it measures
----------------
Two servers, each in its own process, on 127.0.0.1, one after the other:

* **bare**: an aiohttp handler that reads the body and answers 200 (``web.run_app``,
  ``access_log=None``). This is the ceiling of the HTTP stack on this machine.
* **durable**: the real ``scrmbot serve`` (migrations applied at start-up): signature check,
  AES decrypt, XML parse, dedup key, group-committed INSERT into ``inbox``, then 200 with an
  empty body. The inbox worker runs in the same process and competes for CPU; its WeCom API
  base points at a closed local port, so every handler call fails fast and the row is
  rescheduled with backoff (``SCRM_WORKERS=2``). ``--no-worker`` starts the same app through
  ``create_app(run_worker=False)`` instead, to see what the worker costs. ``--processes N``
  runs it as ``SCRM_PROCESSES=N``: N complete instances on the port (bot/app/processes.py);
  the server's CPU is then the sum over them.

Each server gets two loads, from a third process:

1. **fixed offered load** (``--rate``, default 1,000/s) for ``--duration`` seconds after a
   1 s warm-up: an open-loop generator sends request *i* at ``t0 + i/rate`` whether or not
   earlier answers came back (up to 256 connections), and latency is measured from that
   *intended* send time, so a stall shows up in the percentiles instead of silently slowing
   the sender (no coordinated omission). "send lag" is how late the generator itself was.
2. **saturation**: ``wrk`` with ``--connections`` (default 50) closed-loop connections for
   ``--duration`` seconds, cycling through the pre-generated requests with a Lua script.
   Without wrk, a Python closed-loop generator is used (it needs a lot of CPU itself, so the
   bare figure is then understated; ``apt-get install -y wrk`` to fix that).

Every durable request is a distinct, validly signed ``change_external_contact`` /
``add_external_contact`` callback (distinct ExternalUserID, State and WelcomeCode, ~600 B of
plaintext), generated up front with ``CallbackCrypto.envelope``. Their timestamps are "now at
generation"; the server runs with ``SCRM_MAX_CLOCK_SKEW_S=0``, which switches the freshness
check off so nothing expires during a run.

How to read the output
----------------------
* ``req/s``: completed requests per second. At saturation this is the server's capacity on a
  2-core box shared by the server, the load generator and PostgreSQL/Redis.
* ``p50/p99``: latency percentiles in ms (open loop: from the intended send time).
* ``non-2xx`` / ``errors``: HTTP answers other than 2xx (wrk counts only >= 400) and socket
  errors/timeouts. Anything non-zero is worth a look in the server log (path printed).
* ``durable/bare``: saturation throughput ratio (the issue's target is >= 0.25).
* ``inbox check``: rows in ``inbox`` against the 200s the generators saw. Rows may exceed the
  200s by at most the requests wrk had in flight when it stopped (the server committed them,
  wrk never read the answer). Fewer rows than 200s would mean acknowledged events were lost.

Nothing is asserted: the script prints figures and exits 0 unless it could not run at all.

Usage::

    .venv/bin/python bench/callback.py [--duration 10] [--connections 50] [--rate 1000]
        [--database-url postgres://postgres@127.0.0.1:5432/scrmbot_bench] [--no-worker]
        [--pool 100000] [--workers 2] [--processes 1] [--keep]

The bench database is dropped and re-created on every run (its name must contain "bench");
Redis db 13 is flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchlib import REPO, SECRET_KEY, flush_redis, free_port, recreate_database

CORP_ID = "ww7a3c91e05b2d48f6"
AGENT_ID = "1000002"
TOKEN = "scrmbotBench2026"
AES_KEY = base64.b64encode(hashlib.sha256(b"scrmbot bench key").digest()).decode()[:43]
REDIS_URL = "redis://127.0.0.1:6379/13"
CALLBACK_PATH = "/wecom/callback"
WARMUP_S = 1.0
OPEN_LOOP_MAX_CONNECTIONS = 256
REQUEST_TIMEOUT_S = 10.0


# --------------------------------------------------------------------------------------------
# Fixtures: distinct, validly signed callbacks
# --------------------------------------------------------------------------------------------

STAFF = ("zhangsan", "lisi", "wangwu", "zhaoliu", "sunqi", "zhouba", "wujiu", "zhengshi")
CHANNELS = ("store_sh_xuhui", "store_bj_chaoyang", "live_1125", "poster_q4", "wx_ad_game")


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choices(alphabet, k=length))


def make_plaintext(index: int, create_time: int, rng: random.Random) -> str:
    """One add_external_contact event as WeCom sends it (~600 bytes, newline-separated)."""
    alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    external_user_id = f"wm{_token(rng, alnum, 22)}{index:08d}"  # 32 chars, unique by index
    state = f"{rng.choice(CHANNELS)}_{index:07d}"[:30]  # contact-way state is <= 30 chars
    welcome_code = f"{_token(rng, alnum + '-_', 80)}{index:08d}"
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>\n"
        "<FromUserName><![CDATA[sys]]></FromUserName>\n"
        f"<CreateTime>{create_time}</CreateTime>\n"
        "<MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[change_external_contact]]></Event>\n"
        "<ChangeType><![CDATA[add_external_contact]]></ChangeType>\n"
        f"<UserID><![CDATA[{rng.choice(STAFF)}]]></UserID>\n"
        f"<ExternalUserID><![CDATA[{external_user_id}]]></ExternalUserID>\n"
        f"<State><![CDATA[{state}]]></State>\n"
        f"<WelcomeCode><![CDATA[{welcome_code}]]></WelcomeCode>\n"
        "</xml>"
    )


@dataclass
class FixtureStats:
    count: int
    plaintext_bytes: int
    body_bytes: int


def write_requests(path: Path, first_index: int, count: int, seed: int) -> FixtureStats:
    """Write `count` callbacks, one per line: "<path?query> <body>" (for wrk and the generator)."""
    from bot.wecom.crypto import CallbackCrypto

    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    rng = random.Random(seed)
    timestamp = str(int(time.time()))
    plain_total = body_total = 0
    with path.open("w", encoding="utf-8") as out:
        for index in range(first_index, first_index + count):
            plaintext = make_plaintext(index, int(timestamp), rng)
            nonce = str(rng.randrange(10**9, 10**10))
            body, signature = crypto.envelope(plaintext, timestamp, nonce, agent_id=AGENT_ID)
            query = urllib.parse.urlencode(
                {"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
            out.write(f"{CALLBACK_PATH}?{query} {body}\n")
            plain_total += len(plaintext.encode())
            body_total += len(body.encode())
    return FixtureStats(count, plain_total // max(count, 1), body_total // max(count, 1))


def read_requests(path: Path, host_header: str) -> list[bytes]:
    """Turn the request file into ready-to-send HTTP/1.1 requests."""
    requests = []
    with path.open("rb") as lines:
        for line in lines:
            target, body = line.rstrip(b"\n").split(b" ", 1)
            requests.append(
                b"POST " + target + b" HTTP/1.1\r\nHost: " + host_header.encode()
                + b"\r\nContent-Type: text/xml\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\n\r\n" + body)
    return requests


# --------------------------------------------------------------------------------------------
# Database and Redis
# --------------------------------------------------------------------------------------------

def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite://")


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite://").split("?", 1)[0])


def empty_database(url: str) -> None:
    """Start every run from an empty database (scrmbot serve applies the migrations)."""
    if is_sqlite(url):
        path = sqlite_path(url)
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    asyncio.run(recreate_database(url))


async def _count_pg(url: str) -> dict[str, int]:
    import asyncpg

    parsed = urllib.parse.urlsplit(url)
    conn = await asyncpg.connect(urllib.parse.urlunsplit(
        parsed._replace(scheme="postgresql", query="")))
    try:
        rows = await conn.fetch("SELECT status, count(*) AS n FROM inbox GROUP BY status")
    finally:
        await conn.close()
    return {r["status"]: int(r["n"]) for r in rows}


def inbox_counts(url: str) -> dict[str, int]:
    """Rows in `inbox` by status."""
    if is_sqlite(url):
        with contextlib.closing(sqlite3.connect(sqlite_path(url))) as conn:
            rows = conn.execute("SELECT status, count(*) FROM inbox GROUP BY status").fetchall()
        return {status: int(n) for status, n in rows}
    return asyncio.run(_count_pg(url))


def redact(url: str) -> str:
    """The URL without its password (SQLite URLs unchanged)."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.password:
        return url
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------

class Processes:
    """Every child this script starts; `close()` stops them all (TERM, then KILL)."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
              log: Path | None = None, cwd: Path | None = None,
              capture: bool = False) -> subprocess.Popen[bytes]:
        out = subprocess.PIPE if capture else (log.open("wb") if log else subprocess.DEVNULL)
        try:
            proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=out,
                                    stderr=subprocess.STDOUT if log else subprocess.PIPE,
                                    start_new_session=True)  # Ctrl-C reaches us, not them
        finally:
            if not isinstance(out, int):
                out.close()  # the child has its own copy
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 8.0) -> None:
        """SIGTERM the child's own process group, SIGKILL it if it does not exit in time."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if proc in self._procs:
            self._procs.remove(proc)

    def close(self) -> None:
        for proc in list(self._procs):
            self.stop(proc)


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], log: Path,
                     timeout_s: float = 30.0) -> None:
    """Poll `url` until it answers 200; fail with the log tail if the server died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError, urllib.error.URLError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.1)
    raise RuntimeError(f"server not ready after {timeout_s:.0f}s:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def durable_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    """The environment `scrmbot serve` reads, without anything inherited that could change it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WECOM_", "WECHAT_", "SCRM_", "DATABASE_URL", "REDIS_URL"))}
    env.update({
        "WECOM_CORP_ID": CORP_ID, "WECOM_AGENT_ID": AGENT_ID, "WECOM_SECRET": "bench-secret",
        "WECOM_TOKEN": TOKEN, "WECOM_AES_KEY": AES_KEY,
        "WECOM_API_BASE": f"http://127.0.0.1:{free_port()}/cgi-bin",  # nobody listens there
        "DATABASE_URL": args.database_url, "REDIS_URL": REDIS_URL,
        "SCRM_MAX_CLOCK_SKEW_S": "0",  # 0 = freshness check off: fixtures never expire
        "SCRM_WORKERS": str(args.workers), "SCRM_SECRET_KEY": SECRET_KEY,
        "SCRM_PROCESSES": str(args.processes), "SCRM_EVENT_LOOP": args.event_loop,
        "HOST": "127.0.0.1", "PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    })
    # scrmbot refuses to start without a rules file; use the repository's (cwd is a temp dir).
    rules = next((REPO / n for n in ("rules.toml", "rules.example.toml") if (REPO / n).is_file()),
                 None)
    if rules is not None:
        env["SCRM_RULES_FILE"] = str(rules)
    return env


def _jiffies(pid: int | str) -> tuple[str, int]:
    """(command name, user+system jiffies) of one process; ("", 0) if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "", 0
    comm, rest = raw[raw.index("(") + 1:raw.rindex(")")], raw.rsplit(")", 1)[1].split()
    return comm, int(rest[11]) + int(rest[12])


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants (the processes `SCRM_PROCESSES` starts)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except OSError:
                continue
    return found


@dataclass
class CpuUse:
    """Cores used during one phase, averaged over it."""

    machine: float
    server: float
    loadgen: float
    postgres: float

    @property
    def other(self) -> float:
        """Everything else: other users' processes, Redis, the kernel."""
        return max(self.machine - self.server - self.loadgen - self.postgres, 0.0)


@dataclass
class CpuSample:
    """Jiffies of the machine, the server, all postgres processes and our reaped children."""

    busy: int
    total: int
    server: int
    postgres: dict[int, int]  # pid -> jiffies; a backend that exits mid-phase counts as other
    children_s: float

    @classmethod
    def take(cls, server_pid: int) -> CpuSample:
        stat = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        postgres = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                comm, jiffies = _jiffies(entry.name)
                if comm == "postgres":
                    postgres[int(entry.name)] = jiffies
        children = os.times()
        return cls(busy=sum(stat) - stat[3] - stat[4], total=sum(stat),
                   server=sum(_jiffies(pid)[1] for pid in _tree(server_pid)),
                   postgres=postgres,
                   children_s=children.children_user + children.children_system)

    def since(self, before: CpuSample) -> CpuUse:
        """The load generator is the child reaped in between (wrk or `_loadgen`)."""
        ticks_per_cpu = max(self.total - before.total, 1) / (os.cpu_count() or 1)
        seconds = ticks_per_cpu / os.sysconf("SC_CLK_TCK")
        return CpuUse(machine=(self.busy - before.busy) / ticks_per_cpu,
                      server=(self.server - before.server) / ticks_per_cpu,
                      loadgen=(self.children_s - before.children_s) / seconds,
                      postgres=sum(j - before.postgres.get(pid, 0)
                                   for pid, j in self.postgres.items()) / ticks_per_cpu)


# --------------------------------------------------------------------------------------------
# Load generation
# --------------------------------------------------------------------------------------------

WRK_LUA = r"""
-- Cycles through pre-generated callbacks ("<path> <body>" per line, file given after --).
threads = {}
local reqs, n, i = {}, 0, 0
issued = 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local headers = { ["Host"] = wrk.headers["Host"], ["Content-Type"] = "text/xml" }
  for line in io.lines(args[1]) do
    local sp = line:find(" ", 1, true)
    n = n + 1
    reqs[n] = wrk.format("POST", line:sub(1, sp - 1), headers, line:sub(sp + 1))
  end
  pool = n
end

function request()
  i = i % n + 1
  issued = issued + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local sent, pool_size = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + t:get("issued")
    pool_size = pool_size + t:get("pool")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"completed":%d,"duration_s":%.6f,"non2xx":%d,"errors":%d,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"sent":%d,"pool":%d}\n',
    summary.requests, summary.duration / 1e6, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, sent, pool_size))
end
"""


@dataclass
class LoadResult:
    """What one load run saw. `ok` = 2xx answers; `sent` includes requests still in flight."""

    mode: str
    completed: int
    ok: int
    non2xx: int
    errors: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sent: int
    pool: int
    lag_p99_ms: float | None = None
    worst_by_second_ms: list[float] = field(default_factory=list)
    cpu: CpuUse | None = None
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.completed / self.duration_s if self.duration_s else 0.0

    @property
    def in_flight(self) -> int:
        return max(self.sent - self.completed, 0)


def run_wrk(wrk: str, port: int, request_file: Path, lua: Path, connections: int,
            duration: int, threads: int, procs: Processes) -> LoadResult:
    """Closed-loop saturation with wrk; the figures come from the Lua `done` hook."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s",
            f"--timeout={int(REQUEST_TIMEOUT_S)}s", "-s", str(lua),
            f"http://127.0.0.1:{port}{CALLBACK_PATH}", "--", str(request_file)]
    proc = procs.start(argv, capture=True)
    out, err = proc.communicate(timeout=duration + 120)
    procs.stop(proc)
    text = out.decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text}\n{err.decode()}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    ok = data["completed"] - data["non2xx"]
    return LoadResult(mode="saturation (wrk)", completed=data["completed"], ok=ok,
                      non2xx=data["non2xx"], errors=data["errors"],
                      duration_s=data["duration_s"], p50_ms=data["p50_ms"],
                      p90_ms=data["p90_ms"], p99_ms=data["p99_ms"], max_ms=data["max_ms"],
                      sent=data["sent"], pool=data["pool"])


def run_generator(port: int, request_file: Path, procs: Processes, *, mode: str,
                  rate: int = 0, connections: int = 0, duration: int) -> LoadResult:
    """Run this script's own generator (`_loadgen`) in a separate process."""
    argv = [sys.executable, str(Path(__file__).resolve()), "_loadgen", "--port", str(port),
            "--file", str(request_file), "--mode", mode, "--rate", str(rate),
            "--connections", str(connections), "--duration", str(duration)]
    proc = procs.start(argv, capture=True)
    out, err = proc.communicate(timeout=duration + 120)
    procs.stop(proc)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode}): {err.decode()}")
    return LoadResult(**json.loads(out))


# --- the generator itself (runs in its own process) -------------------------------------------

class ConnectionPool:
    """Keep-alive connections to one server; callers wait when `limit` are busy.

    scrmbot closes a keep-alive connection that has been idle for its header timeout (5 s,
    `SCRM_HEADER_TIMEOUT_S`). Like an HTTP client that honours that, the pool does not reuse a
    connection idle for longer than `IDLE_LIMIT_S`: writing to one the server is closing is
    the keep-alive race every client must avoid, not a server fault."""

    IDLE_LIMIT_S = 4.0

    def __init__(self, port: int, limit: int) -> None:
        self._port = port
        self._limit = limit
        self._open = 0
        self._idle: list[tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], float]] = []
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            stale = time.perf_counter() - self.IDLE_LIMIT_S
            while self._idle and self._idle[0][1] < stale:  # the oldest idle come first
                conn, _ = self._idle.pop(0)
                conn[1].close()
                self._open -= 1
            if self._idle:
                return self._idle.pop()[0]
            if self._open < self._limit:
                self._open += 1
                try:
                    return await asyncio.open_connection("127.0.0.1", self._port)
                except OSError:
                    self._open -= 1
                    raise
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def release(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self._idle.append((conn, time.perf_counter()))
        self._wake_one()

    def discard(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        conn[1].close()
        self._open -= 1
        self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                   request: bytes) -> int:
    """Send one request and read its answer; returns the HTTP status."""
    reader, writer = conn
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise RuntimeError("chunked answers are not supported by this generator")
    if length:
        await reader.readexactly(length)
    return status


@dataclass
class Sample:
    index: int
    intended: float
    sent: float = 0.0
    done: float = 0.0
    status: int = 0  # 0 = socket error or timeout


async def send_one(pool: ConnectionPool, request: bytes, sample: Sample) -> None:
    try:
        conn = await pool.acquire()
    except OSError:
        sample.done = time.perf_counter()
        return
    sample.sent = time.perf_counter()
    try:
        sample.status = await asyncio.wait_for(exchange(conn, request), REQUEST_TIMEOUT_S)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, RuntimeError, ValueError):
        sample.done = time.perf_counter()
        pool.discard(conn)
        return
    sample.done = time.perf_counter()
    pool.release(conn)


async def open_loop(port: int, requests: list[bytes], rate: int) -> list[Sample]:
    """Send request i at t0 + i/rate, never waiting for earlier answers."""
    pool = ConnectionPool(port, OPEN_LOOP_MAX_CONNECTIONS)
    # Pre-open a few connections so the first second does not measure TCP handshakes.
    warm = [await pool.acquire() for _ in range(8)]
    for conn in warm:
        pool.release(conn)
    samples: list[Sample] = []
    tasks: list[asyncio.Task[None]] = []
    start = time.perf_counter() + 0.05
    for index, request in enumerate(requests):
        intended = start + index / rate
        delay = intended - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sample = Sample(index, intended)
        samples.append(sample)
        tasks.append(asyncio.create_task(send_one(pool, request, sample)))
    await asyncio.gather(*tasks)
    return samples


async def closed_loop(port: int, requests: list[bytes], connections: int,
                      duration: float) -> list[Sample]:
    """Fallback saturation without wrk: each connection sends its next request on an answer."""
    pool = ConnectionPool(port, connections)
    samples: list[Sample] = []
    deadline = time.perf_counter() + duration
    counter = iter(range(10**12))

    async def loop() -> None:
        while time.perf_counter() < deadline:
            index = next(counter)
            sample = Sample(index, time.perf_counter())
            samples.append(sample)
            await send_one(pool, requests[index % len(requests)], sample)

    await asyncio.gather(*(loop() for _ in range(connections)))
    return samples


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), math.ceil(pct / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


def _worst_by_second(window: list[Sample], start: float) -> list[float]:
    """The slowest answer to the requests meant for each second of the window: one stall
    shows as one bad second, a slow server as bad seconds throughout."""
    worst: dict[int, float] = {}
    for s in window:
        second = int(s.intended - start)
        worst[second] = max(worst.get(second, 0.0), (s.done - s.intended) * 1000)
    return [round(worst[k], 1) for k in sorted(worst)]


def summarise(samples: list[Sample], mode: str, measured_from: int, pool: int) -> LoadResult:
    """Figures over the samples with index >= measured_from (earlier ones are warm-up)."""
    window = [s for s in samples if s.index >= measured_from]
    latencies = sorted((s.done - s.intended) * 1000 for s in window)
    lags = sorted((s.sent - s.intended) * 1000 for s in window if s.sent)
    statuses = Counter(str(s.status) for s in samples)
    ok_all = sum(1 for s in samples if 200 <= s.status < 300)
    start = min((s.intended for s in window), default=0.0)
    end = max((s.done for s in window), default=0.0)
    return LoadResult(
        mode=mode, completed=sum(1 for s in window if s.status), ok=ok_all,
        # failures count over every request, warm-up included: each one matters
        non2xx=sum(1 for s in samples if s.status and not 200 <= s.status < 300),
        errors=sum(1 for s in samples if not s.status), duration_s=max(end - start, 1e-9),
        p50_ms=percentile(latencies, 50), p90_ms=percentile(latencies, 90),
        p99_ms=percentile(latencies, 99), max_ms=latencies[-1] if latencies else 0.0,
        sent=len(samples), pool=pool,
        lag_p99_ms=percentile(lags, 99) if mode.startswith("open") else None,
        worst_by_second_ms=_worst_by_second(window, start) if mode.startswith("open") else [],
        statuses=dict(statuses))


def loadgen_main(args: argparse.Namespace) -> int:
    """Child mode: run one load and print a LoadResult as JSON."""
    requests = read_requests(Path(args.file), f"127.0.0.1:{args.port}")
    if args.mode == "open":
        warmup = int(args.rate * WARMUP_S)
        samples = asyncio.run(open_loop(args.port, requests, args.rate))
        result = summarise(samples, f"open loop {args.rate}/s", warmup, len(requests))
    else:
        samples = asyncio.run(closed_loop(args.port, requests, args.connections, args.duration))
        result = summarise(samples, "saturation (python)", 0, len(requests))
        # closed loop: latency from the actual send; the window is the run itself
        result.duration_s = float(args.duration)
    print(json.dumps(asdict(result)))
    return 0


# --------------------------------------------------------------------------------------------
# The two servers (child modes)
# --------------------------------------------------------------------------------------------

def bare_main(args: argparse.Namespace) -> int:
    """Child mode: the baseline, an aiohttp handler that reads the body and answers 200."""
    from aiohttp import web

    async def callback(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    async def ready(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post(CALLBACK_PATH, callback)
    app.router.add_get("/healthz", ready)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


def no_worker_main(args: argparse.Namespace) -> int:
    """Child mode: scrmbot's app exactly as `scrmbot serve` builds it, minus the inbox worker."""
    from aiohttp import web

    from bot.app.cli import setup_logging
    from bot.app.factory import create_app
    from bot.app.settings import load_settings

    setup_logging()
    settings = load_settings()
    app = create_app(settings, migrate=True, run_worker=False)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None)
    return 0


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------

@dataclass
class ServerRun:
    name: str
    open_loop: LoadResult
    saturation: LoadResult
    log: Path
    rows: dict[str, int] = field(default_factory=dict)
    rows_after_open: int = 0
    background_cores: float = 0.0


def background_cpu(seconds: float = 1.0) -> float:
    """Cores busy on the machine while this benchmark runs nothing (other users' load)."""
    before = CpuSample.take(os.getpid())
    time.sleep(seconds)
    return CpuSample.take(os.getpid()).since(before).machine


def measure_server(name: str, argv: list[str], env: dict[str, str], port: int,
                   args: argparse.Namespace, files: Files, procs: Processes,
                   count_rows: bool) -> ServerRun:
    """Start one server, run the open-loop load then saturation against it, stop it."""
    log = files.dir / f"{name}.log"
    background = background_cpu()
    server = procs.start(argv, env=env, log=log, cwd=files.dir)
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/healthz", server, log)
        before = CpuSample.take(server.pid)
        open_result = run_generator(port, files.open_loop, procs, mode="open", rate=args.rate,
                                    duration=args.duration)
        open_result.cpu = CpuSample.take(server.pid).since(before)
        rows_after_open = sum(inbox_counts(args.database_url).values()) if count_rows else 0
        time.sleep(1.0)
        before = CpuSample.take(server.pid)
        if files.wrk:
            sat = run_wrk(files.wrk, port, files.saturation, files.lua, args.connections,
                          args.duration, args.wrk_threads, procs)
        else:
            sat = run_generator(port, files.saturation, procs, mode="closed",
                                connections=args.connections, duration=args.duration)
        sat.cpu = CpuSample.take(server.pid).since(before)
        if server.poll() is not None:
            raise RuntimeError(f"{name} server died during the run:\n{tail(log)}")
        time.sleep(0.5)  # let requests wrk abandoned at the deadline finish committing
    finally:
        procs.stop(server)
    background = max(background, background_cpu())  # before and after: was anyone else busy?
    run = ServerRun(name, open_result, sat, log, rows_after_open=rows_after_open,
                    background_cores=background)
    if count_rows:
        run.rows = inbox_counts(args.database_url)
    return run


@dataclass
class Files:
    dir: Path
    saturation: Path
    open_loop: Path
    lua: Path
    wrk: str | None


def prepare_files(args: argparse.Namespace, workdir: Path) -> tuple[Files, FixtureStats, float]:
    """Generate the two request sets: one for saturation, one (disjoint) for the open loop."""
    started = time.perf_counter()
    saturation = workdir / "saturation.req"
    open_loop = workdir / "open_loop.req"
    stats = write_requests(saturation, 0, args.pool, seed=1)
    write_requests(open_loop, args.pool, int(args.rate * (args.duration + WARMUP_S)), seed=2)
    lua = workdir / "cycle.lua"
    lua.write_text(WRK_LUA)
    wrk = None if args.no_wrk else shutil.which("wrk")
    files = Files(workdir, saturation, open_loop, lua, wrk)
    return files, stats, time.perf_counter() - started


def log_summary(log: Path, examples: int = 3) -> str:
    """Counts of ERROR / WARNING / Traceback lines and a few distinct examples."""
    levels: Counter[str] = Counter()
    seen: dict[str, str] = {}
    for line in log.read_text(errors="replace").splitlines():
        level = next((lv for lv in ("ERROR", "WARNING") if f" {lv} " in line),
                     "Traceback" if line.startswith("Traceback") else None)
        if level is None:
            continue
        levels[level] += 1
        message = line.split(": ", 1)[-1]
        kind = re.sub(r"\w*\d\w*", "#", message)[:60]  # one example per kind of message
        if len(seen) < examples and kind not in seen:
            seen[kind] = line[:220]
    text = ", ".join(f"{n} {level}" for level, n in levels.items()) or "clean"
    return text + "".join(f"\n      e.g. {line}" for line in seen.values())


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def print_load(label: str, bare: LoadResult, durable: LoadResult) -> None:
    def row(title: str, b: str, d: str) -> None:
        print(f"  {title:<30}{b:>20}{d:>22}")

    print(f"{label}")
    row("throughput, req/s", fmt_int(bare.rps), fmt_int(durable.rps))
    row("latency p50 / p99, ms", f"{bare.p50_ms:.2f} / {bare.p99_ms:.2f}",
        f"{durable.p50_ms:.2f} / {durable.p99_ms:.2f}")
    row("latency p90 / max, ms", f"{bare.p90_ms:.2f} / {bare.max_ms:.1f}",
        f"{durable.p90_ms:.2f} / {durable.max_ms:.1f}")
    row("non-2xx / socket errors", f"{bare.non2xx} / {bare.errors}",
        f"{durable.non2xx} / {durable.errors}")
    if bare.lag_p99_ms is not None and durable.lag_p99_ms is not None:
        row("generator send lag p99, ms", f"{bare.lag_p99_ms:.2f}", f"{durable.lag_p99_ms:.2f}")
    if durable.worst_by_second_ms:
        print("  slowest answer in each second, ms:")
        for name, result in (("bare", bare), ("durable", durable)):
            print(f"    {name:<8}" + " ".join(f"{v:g}" for v in result.worst_by_second_ms))
    def cpu(use: CpuUse | None) -> str:
        if use is None:
            return "-"
        return f"{use.server:.2f}/{use.loadgen:.2f}/{use.postgres:.2f}/{use.other:.2f}"

    row("CPU cores: srv/gen/pg/other", cpu(bare.cpu), cpu(durable.cpu))


def print_inbox_check(durable: ServerRun) -> None:
    """Rows committed against 200s seen: fewer rows than 200s = acknowledged events lost."""
    sat, opn = durable.saturation, durable.open_loop
    rows = sum(durable.rows.values())
    wrapped = sat.sent > sat.pool
    distinct_sat_ok = min(sat.ok, sat.pool)
    acked = opn.ok + distinct_sat_ok
    slack = sat.in_flight
    by_status = ", ".join(f"{k} {v:,}" for k, v in sorted(durable.rows.items()))
    print(f"inbox check: {fmt_int(rows)} rows ({by_status})")
    print(f"  after the open loop: {fmt_int(durable.rows_after_open)} rows for "
          f"{fmt_int(opn.ok)} x 200 of {fmt_int(opn.sent)} sent"
          f" -> {'OK' if durable.rows_after_open == opn.ok else 'MISMATCH'}")
    print(f"  in total: {fmt_int(acked)} distinct requests answered 200"
          f" (+ {slack} in flight when the saturation load stopped)")
    if wrapped:
        print(f"  note: saturation sent {fmt_int(sat.sent)} requests from a pool of "
              f"{fmt_int(sat.pool)}: {fmt_int(sat.sent - sat.pool)} were repeats (dedup path);"
              " raise --pool for a clean count")
    if rows < acked:
        verdict = f"LOST {fmt_int(acked - rows)} acknowledged events"
    elif rows <= acked + slack:
        verdict = (f"OK (no lost events; {rows - acked} extra rows = answers the load generator"
                   " never read)")
    else:
        verdict = f"UNEXPECTED: {fmt_int(rows - acked - slack)} more rows than requests sent"
    print(f"  -> {verdict}")


def print_report(args: argparse.Namespace, stats: FixtureStats, gen_s: float,
                 bare: ServerRun, durable: ServerRun, files: Files) -> None:
    wrk = files.wrk or ("python closed loop (--no-wrk)" if args.no_wrk else
                        "python closed loop, wrk not found (apt-get install -y wrk)")
    print()
    print(f"scrmbot callback benchmark: {os.cpu_count()} CPUs, loopback, load generator "
          f"{'wrk ' + wrk if files.wrk else wrk}")
    print(f"database {redact(args.database_url)}, Redis db 13, SCRM_MAX_CLOCK_SKEW_S=0 "
          f"(freshness check off), durable server: "
          f"{'create_app(run_worker=False)' if args.no_worker else 'scrmbot serve'}"
          f"{'' if args.no_worker else f' with SCRM_WORKERS={args.workers}'}"
          f"{'' if args.no_worker else f', SCRM_PROCESSES={args.processes}'}")
    print(f"fixtures: {fmt_int(stats.count)} + {fmt_int(args.rate * (args.duration + WARMUP_S))}"
          f" distinct add_external_contact callbacks, plaintext ~{stats.plaintext_bytes} B,"
          f" body ~{stats.body_bytes} B, generated in {gen_s:.1f} s")
    others = [r.cpu.other for run in (bare, durable) for r in (run.open_loop, run.saturation)
              if r.cpu is not None]
    noisy = max([bare.background_cores, durable.background_cores, *others]) > 0.15
    print(f"other processes' CPU around the runs: bare {bare.background_cores:.2f} cores, "
          f"durable {durable.background_cores:.2f} cores; during the loads up to "
          f"{max(others, default=0):.2f} cores"
          f"{'  <- NOISY: someone else is using the CPU, figures are low' if noisy else ''}")
    print(f"{'':<32}{'bare aiohttp':>20}{'scrmbot durable':>22}")
    print_load(f"offered {args.rate:,}/s, open loop, {args.duration} s after {WARMUP_S:.0f} s "
               "warm-up (latency from intended send)", bare.open_loop, durable.open_loop)
    print_load(f"saturation, {args.connections} connections, {args.duration} s, closed loop",
               bare.saturation, durable.saturation)
    ratio = durable.saturation.rps / bare.saturation.rps if bare.saturation.rps else 0.0
    print(f"durable / bare at saturation: {ratio:.3f}x   (issue 17's target >= 0.5x)")
    print(f"durable p99 at {args.rate:,}/s: {durable.open_loop.p99_ms:.2f} ms   "
          "(issue 17's target <= 10 ms at 1,000/s)")
    print_inbox_check(durable)
    print(f"server logs: bare {log_summary(bare.log)}")
    print(f"             durable {log_summary(durable.log)}")
    print(f"             ({files.dir if args.keep else 'deleted; --keep keeps them'})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load (default 10)")
    parser.add_argument("--connections", type=int, default=50,
                        help="saturation connections (default 50)")
    parser.add_argument("--rate", type=int, default=1000,
                        help="open-loop offered load, req/s (default 1000)")
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/scrmbot_bench",
                        help="dropped and re-created; sqlite:///tmp/bench.db works too")
    parser.add_argument("--pool", type=int, default=100_000,
                        help="distinct callbacks for the saturation load (default 100,000; "
                             "more than the server can take in --duration keeps them distinct)")
    parser.add_argument("--workers", type=int, default=2, help="SCRM_WORKERS (default 2)")
    parser.add_argument("--event-loop", choices=["uvloop", "asyncio"], default="uvloop",
                        help="SCRM_EVENT_LOOP for scrmbot serve (the environment's is ignored, "
                        "as every SCRM_ variable is)")
    parser.add_argument("--processes", type=int, default=1,
                        help="SCRM_PROCESSES: scrmbot processes on the port (default 1)")
    parser.add_argument("--no-worker", action="store_true",
                        help="run the durable app without its inbox worker")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--no-wrk", action="store_true",
                        help="saturate with the Python generator even if wrk is installed")
    parser.add_argument("--keep", action="store_true", help="keep the request files")
    return parser.parse_args(argv)


def child_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file")
    parser.add_argument("--mode", choices=["open", "closed"])
    parser.add_argument("--rate", type=int, default=0)
    parser.add_argument("--connections", type=int, default=0)
    parser.add_argument("--duration", type=int, default=10)
    return parser.parse_args(argv)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM both raise KeyboardInterrupt, so the cleanup in `main` runs.

    SIGINT is set explicitly because a shell starting us in the background ignores it.
    """
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_benchmark(args: argparse.Namespace, procs: Processes, workdir: Path) -> None:
    open_count = fmt_int(args.rate * (args.duration + WARMUP_S))
    print(f"preparing: database {redact(args.database_url)}, Redis db 13, "
          f"{fmt_int(args.pool)} + {open_count} callbacks ...", flush=True)
    empty_database(args.database_url)
    asyncio.run(flush_redis(REDIS_URL))
    files, stats, gen_s = prepare_files(args, workdir)

    print("bare aiohttp handler ...", flush=True)
    port = free_port()
    bare_argv = [sys.executable, str(Path(__file__).resolve()), "_bare", "--port", str(port)]
    bare = measure_server("bare", bare_argv, dict(os.environ), port, args, files, procs,
                          count_rows=False)

    print("scrmbot durable intake ...", flush=True)
    port = free_port()
    if args.no_worker:
        durable_argv = [sys.executable, str(Path(__file__).resolve()), "_serve_no_worker",
                        "--port", str(port)]
    else:
        durable_argv = [str(Path(sys.executable).with_name("scrmbot")), "serve"]
    durable = measure_server("durable", durable_argv, durable_env(args, port), port, args,
                             files, procs, count_rows=True)
    print_report(args, stats, gen_s, bare, durable, files)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    children = {"_loadgen": loadgen_main, "_bare": bare_main, "_serve_no_worker": no_worker_main}
    if argv and argv[0] in children:
        return children[argv[0]](child_args(argv[1:]))

    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="scrmbot-bench-"))
    procs = Processes()
    completed = False
    try:
        with interruptible():
            run_benchmark(args, procs, workdir)
        completed = True
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers and load generators", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"\nbenchmark could not run: {exc}", file=sys.stderr)
        return 1
    finally:
        procs.close()
        clean_workdir(workdir, keep_logs=args.keep or not completed)
    return 0


def clean_workdir(workdir: Path, *, keep_logs: bool) -> None:
    """Delete the request files; keep the server logs after a failure or with --keep."""
    if not keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
        return
    for name in ("saturation.req", "open_loop.req"):
        (workdir / name).unlink(missing_ok=True)
    print(f"server logs kept in {workdir}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
