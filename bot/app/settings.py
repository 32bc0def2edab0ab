"""Configuration from the environment (and an optional .env file), validated at start-up.

Every problem is reported as one line naming the variable, what is wrong and an example,
because the person reading it is an operator looking at a crash-looping container.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.wecom.budget import WECOM_API_LIMITS

DEFAULT_API_BASE = "https://qyapi.weixin.qq.com/cgi-bin"
DEFAULT_OA_API_BASE = "https://api.weixin.qq.com/cgi-bin"
# The console's two login pages: web authorisation inside WeCom, QR login on a desktop.
DEFAULT_OAUTH_BASE = "https://open.weixin.qq.com"
DEFAULT_LOGIN_BASE = "https://login.work.weixin.qq.com"


class ConfigError(Exception):
    """A configuration value is missing or malformed."""

    def __init__(self, variable: str, problem: str, example: str) -> None:
        self.variable = variable
        self.problem = problem
        self.example = example
        super().__init__(f"{variable}: {problem} (example: {variable}={example})")


@dataclass(frozen=True)
class WeChatOAConfig:
    """An Official Account connection; absent when WECHAT_APP_ID is unset."""

    app_id: str
    secret: str
    token: str
    aes_key: str | None  # None = plain mode (no message encryption)


@dataclass(frozen=True)
class Settings:
    """Everything scrmbot reads from its environment."""

    corp_id: str
    agent_id: int
    secret: str
    contact_secret: str
    token: str
    aes_key: str
    api_base: str = DEFAULT_API_BASE
    oa: WeChatOAConfig | None = None
    oa_api_base: str = DEFAULT_OA_API_BASE
    database_url: str = "sqlite://scrmbot.db"
    redis_url: str | None = None
    timezone: str = "Asia/Shanghai"
    max_clock_skew_s: int = 600
    host: str = "0.0.0.0"
    port: int = 8080
    admins: tuple[str, ...] = ()
    rules_file: str = "rules.toml"
    sandbox: bool = False
    workers: int = 4
    # complete instances `scrmbot serve` runs on one port (bot/app/processes.py)
    processes: int = 1
    # the event loop `scrmbot serve` runs on: uvloop (libuv, in C) or the standard library's
    event_loop: str = "uvloop"
    public_url: str = "http://127.0.0.1:8080"
    # scrmbot's own secret: signs the links in text cards (and, later, sessions). Never a
    # WeCom credential. Generated into var/ in the sandbox, required in production.
    secret_key: str = ""
    link_ttl_days: int = 7
    oauth_base: str = DEFAULT_OAUTH_BASE
    login_base: str = DEFAULT_LOGIN_BASE
    # the simulator's stand-in for WeCom's JS-SDK (sandbox and tests only; never from the
    # environment): the sidebar loads it instead of @wecom/jssdk
    jssdk_stand_in: str = ""
    session_idle_h: int = 8  # a console session ends after this long without a request
    domain_verify_file: str = ""  # WeCom's WW_verify_….txt, served at the site's root
    assets_dir: str = ""  # node_modules/ holding the console's vendor files ("" = the project's)
    data_dir: str = "var"  # files scrmbot keeps: uploaded imports and their error reports
    # where ticket photos go: "" = <data_dir>/photos, or s3://bucket/prefix with the S3_*
    # endpoint and keys (any S3-compatible store)
    photo_store: str = ""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = "us-east-1"
    # Serving limits (bot/app/serving.py). WeCom sends a whole request at once and gives up
    # after 5 s, so a client slower than this is broken or hostile.
    header_timeout_s: float = 5
    body_timeout_s: float = 5
    max_connections: int = 512
    # The share of WeCom's per-API limits (10,000 a minute, 150,000 an hour per corp) scrmbot
    # allows itself (bot/wecom/budget.py); the limits themselves only change in tests.
    api_budget_percent: int = 100
    api_limits: tuple[tuple[int, float], ...] = WECOM_API_LIMITS
    # GET /metrics (bot/app/metrics.py): on the main port to a bearer of `metrics_token`,
    # and/or without a token on `metrics_host`:`metrics_port`, a second listener meant to be
    # internal. Neither set: not served at all.
    metrics_token: str = ""
    metrics_port: int = 0  # 0 = no metrics listener
    metrics_host: str = "127.0.0.1"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


MIN_SECRET_KEY = 32
AES_KEY_LENGTH = 43
_AES_KEY_CHAR_RE = re.compile(r"[A-Za-z0-9+/]")
_CORP_ID_RE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
MIN_METRICS_TOKEN = 16
# RFC 6750's b64token: what may follow "Bearer " in an Authorization header.
_BEARER_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
_DB_SCHEMES = ("sqlite://", "postgres://", "postgresql://", "asyncpg://", "psql://")


def read_dotenv(path: Path) -> dict[str, str]:
    """Read KEY=VALUE lines from a .env file; the real environment wins over it."""
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(environ: Mapping[str, str] | None = None,
                  dotenv: Path | None = None) -> Settings:
    """Build and validate `Settings`; raises `ConfigErrors` listing every bad value at once,
    so an operator fixes the environment in one round instead of one restart per variable."""
    env: dict[str, str] = {}
    if dotenv is not None and dotenv.is_file():
        env.update(read_dotenv(dotenv))
    env.update(os.environ if environ is None else environ)
    get = _Reader(env)

    corp_id = get.required("WECOM_CORP_ID", "ww1234567890abcdef")
    if corp_id and not _CORP_ID_RE.match(corp_id):
        get.problem("WECOM_CORP_ID", "must be the corp id from 我的企业 → 企业信息",
                    "ww1234567890abcdef")
    secret = get.required("WECOM_SECRET", "<the app's Secret>")
    token = get.required("WECOM_TOKEN", "QDG6eK")
    if token and not _TOKEN_RE.match(token):
        get.problem("WECOM_TOKEN", "must be 1-32 letters or digits, as WeCom generates it",
                    "QDG6eK")
    aes_key = _aes_key(get, "WECOM_AES_KEY", required=True) or ""
    agent_id = get.integer("WECOM_AGENT_ID", "1000002", required=True, minimum=1)

    oa: WeChatOAConfig | None = None
    if env.get("WECHAT_APP_ID"):
        oa = WeChatOAConfig(
            app_id=env["WECHAT_APP_ID"],
            secret=get.required("WECHAT_SECRET", "<the Official Account's AppSecret>"),
            token=get.required("WECHAT_TOKEN", "scrmbotOA"),
            aes_key=_aes_key(get, "WECHAT_AES_KEY", required=False),
        )

    tz_name = env.get("SCRM_TIMEZONE") or "Asia/Shanghai"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        get.problem("SCRM_TIMEZONE", f"unknown time zone {tz_name!r}", "Asia/Shanghai")

    database_url = env.get("DATABASE_URL") or "sqlite://scrmbot.db"
    if not database_url.startswith(_DB_SCHEMES):
        get.problem("DATABASE_URL", "must start with sqlite:// or postgres://",
                    "postgres://scrm:secret@db:5432/scrm")
    redis_url = env.get("REDIS_URL") or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        get.problem("REDIS_URL", "must start with redis://, rediss:// or unix://",
                    "redis://127.0.0.1:6379/0")
    api_base = (env.get("WECOM_API_BASE") or DEFAULT_API_BASE).rstrip("/")
    if not api_base.startswith(("http://", "https://")):
        get.problem("WECOM_API_BASE", "must be an http(s) URL", DEFAULT_API_BASE)
    oa_api_base = (env.get("WECHAT_API_BASE") or DEFAULT_OA_API_BASE).rstrip("/")
    if not oa_api_base.startswith(("http://", "https://")):
        get.problem("WECHAT_API_BASE", "must be an http(s) URL", DEFAULT_OA_API_BASE)

    sandbox = get.flag("SCRM_SANDBOX")
    secret_key = (env.get("SCRM_SECRET_KEY") or "").strip()
    if len(secret_key) < MIN_SECRET_KEY:  # `scrmbot sandbox` makes its own, in var/
        problem = "is required but not set" if not secret_key else \
            f"must be at least {MIN_SECRET_KEY} characters, got {len(secret_key)}"
        get.problem("SCRM_SECRET_KEY", f"{problem}; generate one with "
                    "python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                    "kq3-…43 random characters…")
    admins = tuple(a.strip() for a in (env.get("SCRM_ADMINS") or "").split(",") if a.strip())
    public_url = (env.get("SCRM_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        get.problem("SCRM_PUBLIC_URL", "must be the http(s) address staff open links at",
                    "https://scrm.example.com")
    oauth_base = (env.get("WECOM_OAUTH_BASE") or DEFAULT_OAUTH_BASE).rstrip("/")
    login_base = (env.get("WECOM_LOGIN_BASE") or DEFAULT_LOGIN_BASE).rstrip("/")
    for name, value, default in (("WECOM_OAUTH_BASE", oauth_base, DEFAULT_OAUTH_BASE),
                                 ("WECOM_LOGIN_BASE", login_base, DEFAULT_LOGIN_BASE)):
        if not value.startswith(("http://", "https://")):
            get.problem(name, "must be an http(s) URL", default)
    verify_file = env.get("WECOM_DOMAIN_VERIFY_FILE") or ""
    if verify_file and not (Path(verify_file).is_file()
                            and re.fullmatch(r"WW_verify_\w+\.txt", Path(verify_file).name)):
        get.problem("WECOM_DOMAIN_VERIFY_FILE", "must be the WW_verify_….txt file downloaded "
                    "from the app's 可信域名 setting", "/etc/scrmbot/WW_verify_abc123.txt")
    photo_store = env.get("SCRM_PHOTO_STORE") or ""
    if photo_store:
        if not re.fullmatch(r"s3://[a-z0-9.-]{3,63}(/.*)?", photo_store):
            get.problem("SCRM_PHOTO_STORE", "must be s3://bucket/prefix (or unset for the "
                        "data directory)", "s3://scrm-photos/tickets")
        for name, example in (("S3_ENDPOINT", "https://s3.example.com"),
                              ("S3_ACCESS_KEY", "AKIA…"), ("S3_SECRET_KEY", "<secret>")):
            get.required(name, example)
    metrics_token, metrics_port, metrics_host = _metrics(get, secret_key)
    settings = Settings(
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secret,
        contact_secret=env.get("WECOM_CONTACT_SECRET") or secret,
        token=token,
        aes_key=aes_key,
        api_base=api_base,
        oa=oa,
        oa_api_base=oa_api_base,
        database_url=database_url,
        redis_url=redis_url,
        timezone=tz_name,
        max_clock_skew_s=get.integer("SCRM_MAX_CLOCK_SKEW_S", "600", default=600, minimum=0),
        host=env.get("HOST") or "0.0.0.0",
        port=get.integer("PORT", "8080", default=8080, minimum=0, maximum=65535),
        admins=admins,
        rules_file=env.get("SCRM_RULES_FILE") or "rules.toml",
        sandbox=sandbox,
        workers=get.integer("SCRM_WORKERS", "4", default=4, minimum=1, maximum=256),
        processes=_processes(get, database_url, redis_url),
        event_loop=_event_loop(get, env),
        public_url=public_url,
        secret_key=secret_key,
        link_ttl_days=get.integer("SCRM_LINK_TTL_DAYS", "7", default=7, minimum=1, maximum=90),
        oauth_base=oauth_base,
        login_base=login_base,
        assets_dir=env.get("SCRM_ASSETS_DIR") or "",
        data_dir=env.get("SCRM_DATA_DIR") or "var",
        photo_store=photo_store,
        s3_endpoint=(env.get("S3_ENDPOINT") or "").rstrip("/"),
        s3_access_key=env.get("S3_ACCESS_KEY") or "",
        s3_secret_key=env.get("S3_SECRET_KEY") or "",
        s3_region=env.get("S3_REGION") or "us-east-1",
        domain_verify_file=verify_file,
        session_idle_h=get.integer("SCRM_SESSION_IDLE_H", "8", default=8, minimum=1,
                                   maximum=720),
        header_timeout_s=get.integer("SCRM_HEADER_TIMEOUT_S", "5", default=5, minimum=1,
                                     maximum=300),
        body_timeout_s=get.integer("SCRM_BODY_TIMEOUT_S", "5", default=5, minimum=1,
                                   maximum=300),
        max_connections=get.integer("SCRM_MAX_CONNECTIONS", "512", default=512, minimum=1,
                                    maximum=100_000),
        api_budget_percent=get.integer("SCRM_WECOM_BUDGET_PERCENT", "80", default=100,
                                       minimum=10, maximum=100),
        metrics_token=metrics_token,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    if get.problems:
        raise ConfigErrors(get.problems)
    return settings


EVENT_LOOPS = ("uvloop", "asyncio")


def _event_loop(get: _Reader, env: Mapping[str, str]) -> str:
    """SCRM_EVENT_LOOP: uvloop spends less CPU on every socket (callbacks, WeCom's API,
    PostgreSQL, Redis); asyncio is the standard library's, for where uvloop is not
    installed (it is no dependency on Windows) or to rule it out."""
    loop = (env.get("SCRM_EVENT_LOOP") or "uvloop").strip().lower()
    if loop not in EVENT_LOOPS:
        get.problem("SCRM_EVENT_LOOP", f"is {loop!r}; one of {', '.join(EVENT_LOOPS)}",
                    "asyncio")
        return "uvloop"
    return loop


def _processes(get: _Reader, database_url: str, redis_url: str | None) -> int:
    """SCRM_PROCESSES: several processes share only what PostgreSQL and Redis hold (SQLite
    is one process's file, the in-process fakeredis one process's memory)."""
    processes = get.integer("SCRM_PROCESSES", "2", default=1, minimum=1, maximum=64)
    if processes > 1 and not (database_url.startswith(_DB_SCHEMES[1:]) and redis_url):
        get.problem("SCRM_PROCESSES", f"is {processes}, but several processes need "
                    "PostgreSQL (DATABASE_URL=postgres://…) and Redis (REDIS_URL=redis://…), "
                    "which they share; set SCRM_PROCESSES=1 with SQLite or without Redis", "1")
    return processes


def _metrics(get: _Reader, secret_key: str) -> tuple[str, int, str]:
    """SCRM_METRICS_TOKEN, SCRM_METRICS_PORT and SCRM_METRICS_HOST, checked together."""
    token = (get.env.get("SCRM_METRICS_TOKEN") or "").strip()
    generate = "generate one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    if token and (len(token) < MIN_METRICS_TOKEN or not _BEARER_TOKEN_RE.match(token)):
        get.problem("SCRM_METRICS_TOKEN", f"must be at least {MIN_METRICS_TOKEN} characters "
                    f"of letters, digits and - . _ ~ + / (a bearer token); {generate}",
                    "Zk3…43 random characters…")
    elif token and token == secret_key:
        get.problem("SCRM_METRICS_TOKEN", "must not be SCRM_SECRET_KEY: whoever scrapes the "
                    f"metrics could then sign links; {generate}", "Zk3…43 random characters…")
    port = get.integer("SCRM_METRICS_PORT", "9108", default=0, minimum=0, maximum=65535)
    main_port = (get.env.get("PORT") or "8080").strip()
    if port and str(port) == main_port:
        get.problem("SCRM_METRICS_PORT", f"must differ from PORT ({main_port}): it is a second "
                    "listener, serving only /metrics", "9108")
    host = (get.env.get("SCRM_METRICS_HOST") or "").strip()
    if host and not port:
        get.problem("SCRM_METRICS_HOST", "has no effect without SCRM_METRICS_PORT (set both, "
                    "or SCRM_METRICS_TOKEN to serve /metrics on the main port)", "10.0.0.5")
    return token, port, host or "127.0.0.1"


def _aes_key(get: _Reader, name: str, *, required: bool) -> str | None:
    example = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    value = get.required(name, example) if required else get.env.get(name) or None
    if not value:
        return value
    bad = sorted({ch for ch in value if not _AES_KEY_CHAR_RE.match(ch)})
    if bad:
        shown = " ".join(repr(ch) for ch in bad[:5])
        get.problem(name, f"contains {shown}, which an EncodingAESKey never has: it is 43 "
                    "characters of A-Z, a-z, 0-9, + and / (copy it again from the WeCom "
                    "admin console)", example)
    elif len(value) != AES_KEY_LENGTH:
        get.problem(name, f"an EncodingAESKey is {AES_KEY_LENGTH} characters, got "
                    f"{len(value)} (copy it again from the WeCom admin console)", example)
    return value


class ConfigErrors(ConfigError):
    """Every problem found in one configuration, one line each; `variable` is the first's."""

    def __init__(self, problems: list[ConfigError]) -> None:
        first = problems[0]
        super().__init__(first.variable, first.problem, first.example)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


class _Reader:
    """Reads variables and collects what is wrong with them instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[ConfigError] = []

    def problem(self, name: str, problem: str, example: str) -> None:
        self.problems.append(ConfigError(name, problem, example))

    def required(self, name: str, example: str) -> str:
        value = (self.env.get(name) or "").strip()
        if not value:
            self.problem(name, "is required but not set", example)
        return value

    def integer(self, name: str, example: str, *, default: int | None = None,
                required: bool = False, minimum: int | None = None,
                maximum: int | None = None) -> int:
        fallback = default if default is not None else 0
        raw = (self.env.get(name) or "").strip()
        if not raw:
            if required or default is None:
                self.problem(name, "is required but not set", example)
            return fallback
        try:
            value = int(raw)
        except ValueError:
            self.problem(name, f"must be a whole number, got {raw!r}", example)
            return fallback
        if minimum is not None and value < minimum:
            self.problem(name, f"must be at least {minimum}, got {value}", example)
        elif maximum is not None and value > maximum:
            self.problem(name, f"must be at most {maximum}, got {value}", example)
        return value

    def flag(self, name: str) -> bool:
        raw = (self.env.get(name) or "").strip().lower()
        if raw in ("", "0", "false", "no", "off"):
            return False
        if raw in ("1", "true", "yes", "on"):
            return True
        self.problem(name, f"must be 1 or 0, got {raw!r}", "1")
        return False
