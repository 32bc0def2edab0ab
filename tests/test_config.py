"""Configuration: defaults, and one precise line per bad value."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.app.settings import DEFAULT_API_BASE, ConfigError, load_settings

GOOD = {
    "WECOM_CORP_ID": "ww1234567890abcdef", "WECOM_AGENT_ID": "1000002",
    "WECOM_SECRET": "s3cret", "WECOM_TOKEN": "QDG6eK",
    "WECOM_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C",
    "SCRM_SECRET_KEY": "a-long-random-secret-key-for-links-0123",
}


def test_defaults() -> None:
    s = load_settings(GOOD)
    assert s.api_base == DEFAULT_API_BASE
    assert s.contact_secret == "s3cret"  # WECOM_CONTACT_SECRET defaults to WECOM_SECRET
    assert s.database_url == "sqlite://scrmbot.db"
    assert s.redis_url is None
    assert (s.timezone, s.max_clock_skew_s, s.host, s.port) == ("Asia/Shanghai", 600,
                                                                 "0.0.0.0", 8080)
    assert s.oa is None


def test_everything_set() -> None:
    s = load_settings({**GOOD, "WECOM_CONTACT_SECRET": "c", "WECOM_API_BASE": "http://x/cgi-bin/",
                       "DATABASE_URL": "postgres://u@h/db", "REDIS_URL": "redis://h:6379/0",
                       "SCRM_ADMINS": "admin, zhangsan", "SCRM_MAX_CLOCK_SKEW_S": "0",
                       "WECHAT_APP_ID": "wx1", "WECHAT_SECRET": "s", "WECHAT_TOKEN": "t",
                       "PORT": "9000"})
    assert s.contact_secret == "c" and s.api_base == "http://x/cgi-bin"
    assert s.admins == ("admin", "zhangsan") and s.max_clock_skew_s == 0 and s.port == 9000
    assert s.oa is not None and s.oa.aes_key is None
    assert s.processes == 1
    assert load_settings({**GOOD, "DATABASE_URL": "postgres://u@h/db",
                          "REDIS_URL": "redis://h:6379/0", "SCRM_PROCESSES": "3"}).processes == 3
    assert s.event_loop == "uvloop"
    assert load_settings({**GOOD, "SCRM_EVENT_LOOP": " Asyncio "}).event_loop == "asyncio"


@pytest.mark.parametrize("name", ["uvloop", "asyncio"])
def test_serve_runs_on_the_event_loop_named(name: str) -> None:
    import asyncio

    from bot.app.serving import event_loop_runner

    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    event_loop_runner(name)(main())
    assert seen[0].startswith("uvloop" if name == "uvloop" else "asyncio")


@pytest.mark.parametrize(("change", "variable", "fragment"), [
    ({"WECOM_CORP_ID": ""}, "WECOM_CORP_ID", "is required"),
    ({"WECOM_AES_KEY": "tooshort"}, "WECOM_AES_KEY", "43 characters"),
    ({"WECOM_AES_KEY": "!" * 43}, "WECOM_AES_KEY", "43 characters"),
    ({"WECOM_AGENT_ID": "abc"}, "WECOM_AGENT_ID", "whole number"),
    ({"WECOM_TOKEN": "has space"}, "WECOM_TOKEN", "letters or digits"),
    ({"PORT": "70000"}, "PORT", "at most 65535"),
    ({"SCRM_MAX_CLOCK_SKEW_S": "-1"}, "SCRM_MAX_CLOCK_SKEW_S", "at least 0"),
    ({"SCRM_TIMEZONE": "Mars/Olympus"}, "SCRM_TIMEZONE", "unknown time zone"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL", "sqlite:// or postgres://"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL", "redis://"),
    ({"SCRM_PROCESSES": "2"}, "SCRM_PROCESSES", "need PostgreSQL"),  # SQLite, no Redis
    ({"SCRM_PROCESSES": "2", "DATABASE_URL": "postgres://u@h/db"}, "SCRM_PROCESSES",
     "and Redis"),
    ({"SCRM_PROCESSES": "0"}, "SCRM_PROCESSES", "at least 1"),
    ({"SCRM_EVENT_LOOP": "trio"}, "SCRM_EVENT_LOOP", "one of uvloop, asyncio"),
    ({"WECHAT_APP_ID": "wx1"}, "WECHAT_SECRET", "is required"),  # and WECHAT_TOKEN
    ({"WECHAT_APP_ID": "wx1", "WECHAT_SECRET": "s", "WECHAT_TOKEN": "t",
      "WECHAT_AES_KEY": "short"}, "WECHAT_AES_KEY", "43 characters"),
])
def test_bad_values_name_the_variable_and_an_example(change: dict[str, str], variable: str,
                                                     fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**GOOD, **change})
    message = str(info.value).splitlines()[0]  # the first problem, one line
    assert info.value.variable == variable
    assert message.startswith(f"{variable}: ") and fragment in message
    assert f"(example: {variable}=" in message


def test_dotenv_is_read_and_environment_wins(tmp_path: pytest.TempPathFactory) -> None:
    env_file = tmp_path / ".env"  # type: ignore[operator]
    env_file.write_text("".join(f"{k}={v}\n" for k, v in GOOD.items()) + "PORT=9100\n")
    s = load_settings({"PORT": "9200"}, dotenv=env_file)
    assert s.corp_id == GOOD["WECOM_CORP_ID"] and s.port == 9200


def test_serve_stops_with_one_line_on_a_bad_value() -> None:
    env = {**GOOD, "WECOM_AES_KEY": "abc", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "bot.app.cli", "serve"], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "WECOM_AES_KEY" in lines[0] and "43 characters" in lines[0]
