"""What an operator meets at the command line (issue 11, items 5 and 11): every bad variable
at once, a database that cannot be opened, a missing rules file, a taken port, and the
standalone simulator driving a real `scrmbot serve` end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.simulator.__main__ import (
    DEMO_AES_KEY,
    DEMO_CONTACT_SECRET,
    DEMO_CORP_ID,
    DEMO_SECRET,
    DEMO_TOKEN,
)

REPO = Path(__file__).resolve().parent.parent
DEMO_ENV = {
    "WECOM_CORP_ID": DEMO_CORP_ID, "WECOM_AGENT_ID": "1000002", "WECOM_SECRET": DEMO_SECRET,
    "WECOM_CONTACT_SECRET": DEMO_CONTACT_SECRET, "WECOM_TOKEN": DEMO_TOKEN,
    "WECOM_AES_KEY": DEMO_AES_KEY, "SCRM_SECRET_KEY": "an-operator-test-secret-key-0123456789",
    "SCRM_RULES_FILE": str(REPO / "rules.toml"),
}


def scrmbot(args: list[str], env: dict[str, str], cwd: Path,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`scrmbot ARGS` in a clean environment (only PATH and `env`), as an operator runs it."""
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], cwd=cwd,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def post_json(url: str, body: dict[str, str]) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_every_bad_variable_is_reported_at_once(tmp_path: Path) -> None:
    result = scrmbot(["serve"], {"WECOM_AES_KEY": DEMO_AES_KEY[:-1] + "-", "PORT": "x"},
                     tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    named = [line.removeprefix("scrmbot: configuration error: ").split(":")[0]
             for line in lines]
    assert named == ["WECOM_CORP_ID", "WECOM_SECRET", "WECOM_TOKEN", "WECOM_AES_KEY",
                     "WECOM_AGENT_ID", "SCRM_SECRET_KEY", "PORT"]
    aes = lines[3]
    assert "contains '-'" in aes and "got 43" not in aes  # the right length, a wrong character
    assert "Traceback" not in result.stderr


def test_a_missing_rules_file_names_the_shipped_one(tmp_path: Path) -> None:
    env = {**DEMO_ENV, "SCRM_RULES_FILE": "rules.toml"}
    result = scrmbot(["serve"], env, tmp_path)
    assert result.returncode == 2
    assert f"looked for {tmp_path / 'rules.toml'}" in result.stderr
    assert "rules.toml that ships with scrmbot" in result.stderr
    assert "rules.example.toml" not in result.stderr
    assert (REPO / "rules.toml").is_file()


@pytest.mark.parametrize(("url", "says"), [
    ("sqlite:///no/such/dir/scrm.db", "the directory /no/such/dir does not exist"),
    ("postgres://scrm:hunter2@127.0.0.1:1/scrm", "is PostgreSQL running there"),
])
@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["outbox", "list"]])
def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path, url: str, says: str,
                                                      command: list[str]) -> None:
    result = scrmbot(command, {**DEMO_ENV, "DATABASE_URL": url}, tmp_path, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("scrmbot: cannot open the database ") and says in last
    assert "hunter2" not in result.stderr  # the password is never printed


def test_simulator_options_and_a_taken_port(tmp_path: Path) -> None:
    helped = scrmbot(["simulator", "--help"], {}, tmp_path)
    assert helped.returncode == 0
    for option in ("--port", "--callback-url", "--no-demo", "--manual-clock"):
        assert option in helped.stdout
    assert "unrecognized" not in helped.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = scrmbot(["simulator", "--port", str(port)], {}, tmp_path)
        served = scrmbot(["serve", "--port", str(port)], DEMO_ENV, tmp_path)
    assert taken.returncode == 2 and f"port {port} on 127.0.0.1 is already in use" in \
        taken.stderr and "Traceback" not in taken.stderr
    assert served.returncode == 2 and f"port {port} on 0.0.0.0 is already in use" in \
        served.stderr and "Traceback" not in served.stderr
    wrong = scrmbot(["serve", "--bogus"], DEMO_ENV, tmp_path)
    assert wrong.returncode == 2 and "unrecognized arguments: --bogus" in wrong.stderr


@pytest.fixture
def simulator_and_server(tmp_path: Path) -> Iterator[str]:
    """`scrmbot simulator` and `scrmbot serve` as two processes, as the README describes."""
    sim_port, bot_port = free_port(), free_port()
    base = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    sim = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "simulator", "--port", str(sim_port),
         "--callback-url", f"http://127.0.0.1:{bot_port}/wecom/callback"],
        cwd=tmp_path, env=base, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.app.cli", "serve", "--port", str(bot_port)], cwd=tmp_path,
        env={**base, **DEMO_ENV, "WECOM_API_BASE": f"http://127.0.0.1:{sim_port}/cgi-bin",
             "DATABASE_URL": f"sqlite://{tmp_path / 'scrm.db'}",
             "SCRM_ADMINS": "zhangsan"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        control = f"http://127.0.0.1:{sim_port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                get_json(f"http://127.0.0.1:{bot_port}/healthz")
                get_json(f"{control}/sim/")
                break
            except OSError:
                time.sleep(0.2)
        yield control
    finally:
        for process in (server, sim):
            process.terminate()
            process.wait(timeout=20)


def test_the_standalone_simulator_drives_a_real_server(simulator_and_server: str) -> None:
    control = simulator_and_server
    index = get_json(f"{control}/sim/")
    assert any(row["path"] == "/sim/text" and "userid" in row["what"] for row in index)
    delivery = post_json(f"{control}/sim/text", {"userid": "zhangsan", "content": "/帮助"})
    assert delivery["delivered"] is True
    deadline = time.monotonic() + 20
    replies: list[dict[str, object]] = []
    while time.monotonic() < deadline and not replies:
        replies = [m for m in get_json(f"{control}/sim/messages")
                   if "zhangsan" in str(m.get("touser"))]
        time.sleep(0.2)
    assert replies, "scrmbot never answered through the simulator"
    assert "/帮助" in str(replies[0]) or "命令" in str(replies[0])


def test_a_bad_port_variable_is_said_plainly(tmp_path: Path) -> None:
    result = scrmbot(["sandbox", "--no-console"], {"PORT": "80a"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "scrmbot sandbox: PORT must be a port number like 8080, " \
                                    "got '80a'"
