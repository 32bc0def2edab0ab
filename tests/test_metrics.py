"""GET /metrics: who may read it, and that what happens (callbacks, handlers, the outbox, WeCom
calls, jobs) moves the right series. Counters are process-wide and other tests move them too,
so every assertion is on a difference."""

from __future__ import annotations

import secrets
import socket
from datetime import datetime, time, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import unused_port
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bot.app.context import BotContext
from bot.app.keys import context_key, metrics_key
from bot.app.metrics import MetricsPortTaken
from bot.app.settings import ConfigError, load_settings
from bot.observe.metrics import WECOM_BUDGET_USED
from bot.wecom import WeComError, WeComHTTPError
from bot.wecom.crypto import CallbackCrypto
from bot.wecom.errors import WeComBudgetShort
from bot.wecom.metered import metered
from models import InboxEntry, OutboxMessage
from scheduler.jobs import JobSpec
from scheduler.runner import JobBook, run_job
from tests.harness import AES_KEY, TOKEN, Harness, start_harness
from tests.test_config import GOOD

METRICS_TOKEN = "metrics-token-for-the-tests-0123"
AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}

TEXT = """<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[zhangsan]]>\
</FromUserName><CreateTime>{ts}</CreateTime><MsgType><![CDATA[text]]></MsgType>\
<Content><![CDATA[你好]]></Content><MsgId>{msgid}</MsgId><AgentID>1000002</AgentID></xml>"""


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Deltas:
    """The change of each series named at the start, read when asked."""

    def __init__(self, *series: tuple[str, dict[str, str]]) -> None:
        self.series = series
        self.start = [value(name, **labels) for name, labels in series]

    def __call__(self) -> list[float]:
        return [value(name, **labels) - before
                for (name, labels), before in zip(self.series, self.start, strict=True)]


@pytest.fixture
async def h(aiohttp_client: Any, database_url: str) -> Harness:
    return await start_harness(aiohttp_client, database_url=database_url,
                               metrics_token=METRICS_TOKEN)


async def scrape(h: Harness) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the main port's /metrics, parsed as Prometheus would."""
    resp = await h.client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await resp.text())
            for s in family.samples}


# --- access ---------------------------------------------------------------------------------

async def test_metrics_are_not_served_unless_configured(harness: Harness) -> None:
    assert (await harness.client.get("/metrics", headers=AUTH)).status == 404


async def test_the_main_port_serves_metrics_only_to_the_bearer_of_the_token(h: Harness
                                                                            ) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": f"Basic {METRICS_TOKEN}"},
                    {"Authorization": f"Bearer {METRICS_TOKEN}x"},
                    {"Authorization": "Bearer 令牌"}):
        resp = await h.client.get("/metrics", headers=headers)
        assert (resp.status, await resp.read()) == (401, b""), headers
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    resp = await h.client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in resp.headers  # no console session is involved
    text = await resp.text()
    assert "# TYPE scrmbot_callbacks_total counter" in text
    assert "process_resident_memory_bytes" in text  # prometheus-client's own collectors
    assert "_created" not in text


async def test_an_internal_port_serves_metrics_alone_and_without_a_token(
        aiohttp_client: Any, database_url: str) -> None:
    port = unused_port()
    h = await start_harness(aiohttp_client, database_url=database_url, metrics_port=port)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            assert resp.status == 200
            assert "scrmbot_inbox_rows" in await resp.text()
        async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
            assert resp.status == 404
    assert (await h.client.get("/metrics", headers=AUTH)).status == 404  # no token: not here


async def test_a_taken_metrics_port_stops_the_start_naming_that_port(
        aiohttp_client: Any, database_url: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortTaken) as caught:
            await start_harness(aiohttp_client, database_url=database_url, metrics_port=port)
    assert (caught.value.host, caught.value.port) == ("127.0.0.1", port)


@pytest.mark.parametrize(("env", "variable", "fragment"), [
    ({"SCRM_METRICS_TOKEN": "short"}, "SCRM_METRICS_TOKEN", "at least 16 characters"),
    ({"SCRM_METRICS_TOKEN": "has spaces in the middle of it"}, "SCRM_METRICS_TOKEN",
     "a bearer token"),
    ({"SCRM_METRICS_TOKEN": GOOD["SCRM_SECRET_KEY"]}, "SCRM_METRICS_TOKEN",
     "must not be SCRM_SECRET_KEY"),
    ({"SCRM_METRICS_PORT": "8080"}, "SCRM_METRICS_PORT", "must differ from PORT"),
    ({"SCRM_METRICS_PORT": "nine"}, "SCRM_METRICS_PORT", "whole number"),
    ({"SCRM_METRICS_HOST": "0.0.0.0"}, "SCRM_METRICS_HOST", "no effect without"),
])
def test_bad_metrics_settings_name_the_variable(env: dict[str, str], variable: str,
                                                fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, **env})
    assert caught.value.variable == variable and fragment in str(caught.value)


def test_metrics_settings() -> None:
    assert (load_settings(GOOD).metrics_token, load_settings(GOOD).metrics_port) == ("", 0)
    token = secrets.token_urlsafe(32)
    s = load_settings({**GOOD, "SCRM_METRICS_TOKEN": token, "SCRM_METRICS_PORT": "9108"})
    assert (s.metrics_token, s.metrics_port, s.metrics_host) == (token, 9108, "127.0.0.1")
    s = load_settings({**GOOD, "SCRM_METRICS_PORT": "9108", "SCRM_METRICS_HOST": "10.0.0.5"})
    assert (s.metrics_token, s.metrics_host) == ("", "10.0.0.5")


# --- what the series count ------------------------------------------------------------------

async def test_a_scan_moves_callbacks_handlers_lane_and_wecom_calls(h: Harness) -> None:
    deltas = Deltas(
        ("scrmbot_callbacks_total", {"source": "wecom", "outcome": "accepted"}),
        ("scrmbot_fastlane_total", {"lane": "welcome", "outcome": "started"}),
        ("scrmbot_handler_duration_seconds_count", {"route": "channels.scan"}),
        ("scrmbot_handler_failures_total", {"route": "channels.scan"}),
        ("scrmbot_inbox_attempts_total", {"outcome": "done"}),
        ("scrmbot_wecom_calls_total", {"api": "externalcontact/send_welcome_msg",
                                       "errcode": "0"}),
        ("scrmbot_wecom_call_seconds_count", {"api": "externalcontact/send_welcome_msg"}))
    await h.sim.customer_scans("walkin", "王女士", staff="zhangsan")
    await h.drain()
    assert deltas() == [1, 1, 1, 0, 1, 1, 1]
    samples = await scrape(h)  # the same figures through the endpoint
    assert samples[("scrmbot_callbacks_total", (("outcome", "accepted"),
                                                ("source", "wecom")))] == \
        value("scrmbot_callbacks_total", source="wecom", outcome="accepted")


async def test_a_duplicate_callback_and_the_reply_it_got_are_counted(h: Harness) -> None:
    deltas = Deltas(("scrmbot_callbacks_total", {"source": "wecom", "outcome": "accepted"}),
                    ("scrmbot_callbacks_total", {"source": "wecom", "outcome": "duplicate"}),
                    ("scrmbot_outbox_sent_total", {"channel": "app"}))
    xml = TEXT.format(corp=h.settings.corp_id, ts=int(h.clock.timestamp()),
                      msgid=secrets.randbelow(10**18))
    for _ in range(2):
        assert (await h.post_callback(xml)).status == 200
    await h.drain()
    assert deltas() == [1, 1, 1]  # the reply to 你好, sent once


async def test_refused_callbacks_are_counted_by_cause(h: Harness) -> None:
    causes = ("bad_signature", "stale_timestamp", "wrong_receiver", "missing_param",
              "bad_envelope")
    deltas = Deltas(("scrmbot_callbacks_total", {"source": "wecom", "outcome": "rejected"}),
                    *(("scrmbot_callbacks_rejected_total", {"source": "wecom", "reason": c})
                      for c in causes))
    xml = TEXT.format(corp=h.settings.corp_id, ts=int(h.clock.timestamp()), msgid=1)
    params, body = h.signed_post(xml)
    forged = {**params, "msg_signature": "0" * 40}
    stale = h.signed_post(xml, timestamp=str(int(h.clock.timestamp()) - 3600))
    ts = str(int(h.clock.timestamp()))
    other, other_sig = CallbackCrypto(TOKEN, AES_KEY, "wwsomeoneelse").envelope(xml, ts, "n1")
    for query, data, status in ((forged, body, 401), (*stale, 401),
                                ({"msg_signature": other_sig, "timestamp": ts, "nonce": "n1"},
                                 other, 401),
                                ({"timestamp": ts}, body, 400), (params, "<xml/>", 400)):
        resp = await h.client.post("/wecom/callback", params=query, data=data)
        assert resp.status == status
    assert deltas() == [5, 1, 1, 1, 1, 1]
    assert await InboxEntry.all().count() == 0


async def test_the_depth_gauges_are_the_database_counts(aiohttp_client: Any,
                                                        database_url: str) -> None:
    h = await start_harness(aiohttp_client, database_url=database_url, run_worker=False,
                            metrics_token=METRICS_TOKEN)
    now_ms = int(h.clock.timestamp() * 1000)
    for n, (status, age_s) in enumerate([("pending", 30), ("pending", 10), ("processing", 5),
                                         ("dead", 900), ("done", 3600), ("done", 60)]):
        await InboxEntry.create(source="wecom", dedup_key=f"metrics:{n}", kind="TextMessage",
                                subject="zhangsan", payload="<xml/>", status=status,
                                received_ms=now_ms - age_s * 1000,
                                next_attempt_ms=now_ms - age_s * 1000)
    for n, (status, due_in_s) in enumerate([("pending", -45), ("pending", 3600),
                                            ("failed", -60), ("sent", -7200)]):
        await OutboxMessage.create(key=f"metrics:{n}", kind="test", channel="app",
                                   recipient="zhangsan", status=status,
                                   created_at=h.clock.now(),
                                   next_attempt_ms=now_ms + due_in_s * 1000)
    samples = await scrape(h)
    for status in ("pending", "processing", "dead"):
        assert samples[("scrmbot_inbox_rows", (("status", status),))] == \
            await InboxEntry.filter(status=status).count()
    for status in ("pending", "sending", "failed", "unknown"):
        assert samples[("scrmbot_outbox_rows", (("status", status),))] == \
            await OutboxMessage.filter(status=status).count()
    assert ("scrmbot_inbox_rows", (("status", "done"),)) not in samples  # not counted
    assert samples[("scrmbot_inbox_oldest_pending_age_seconds", ())] == 30
    assert samples[("scrmbot_outbox_oldest_due_age_seconds", ())] == 45
    await InboxEntry.filter(status="pending").delete()
    await OutboxMessage.filter(next_attempt_ms__lte=now_ms, status="pending").delete()
    samples = await scrape(h)
    assert samples[("scrmbot_inbox_rows", (("status", "pending"),))] == 0
    assert samples[("scrmbot_inbox_oldest_pending_age_seconds", ())] == 0
    assert samples[("scrmbot_outbox_oldest_due_age_seconds", ())] == 0  # one waits ahead


async def test_wecom_errors_are_counted_by_api_and_errcode(h: Harness) -> None:
    deltas = Deltas(("scrmbot_wecom_calls_total", {"api": "user/get", "errcode": "60111"}),
                    ("scrmbot_wecom_calls_total", {"api": "externalcontact/del_corp_tag",
                                                   "errcode": "http"}),
                    ("scrmbot_wecom_calls_total", {"api": "externalcontact/del_corp_tag",
                                                   "errcode": "0"}))
    wecom = h.app[context_key].wecom
    h.sim.fail_next("user/get", 60111)
    with pytest.raises(WeComError):
        await wecom.get_user("zhangsan")
    h.sim.lose_answer_next("externalcontact/del_corp_tag")  # done, but no answer heard
    with pytest.raises(WeComHTTPError):
        await wecom.del_corp_tag(["etNOTATAG"])
    assert deltas() == [1, 1, 0]
    assert "scrmbot_wecom_calls_total{api=\"user/get\",errcode=\"60111\"}" in \
        await (await h.client.get("/metrics", headers=AUTH)).text()


async def test_an_exchange_is_counted_once_and_a_call_the_budget_put_off_not_at_all() -> None:
    @metered("metrics/exchange")
    async def exchange(failure: BaseException | None = None) -> None:
        if failure is not None:
            raise failure

    series = [("scrmbot_wecom_calls_total", {"api": "metrics/exchange", "errcode": code})
              for code in ("0", "http", "45009")]
    deltas = Deltas(*series, ("scrmbot_wecom_call_seconds_count", {"api": "metrics/exchange"}))
    await exchange()
    with pytest.raises(WeComHTTPError):
        await exchange(WeComHTTPError("no answer within 10 s", "metrics/exchange"))
    with pytest.raises(WeComBudgetShort):  # scrmbot never called: not an exchange
        await exchange(WeComBudgetShort("metrics/exchange", 60, paused=True))
    assert deltas() == [1, 1, 0, 2]


async def test_outbox_deferrals_and_sends_are_counted_by_channel(h: Harness) -> None:
    deltas = Deltas(("scrmbot_outbox_deferrals_total", {"channel": "app",
                                                        "reason": "quiet_hours"}),
                    ("scrmbot_outbox_sent_total", {"channel": "app"}))
    today = h.clock.now().astimezone(h.settings.tz).date()
    h.clock.set(datetime.combine(today, time(21, 30), tzinfo=h.settings.tz))
    outbox = h.app[context_key].outbox
    await outbox.enqueue("metrics:quiet", kind="test", channel="app", recipient="zhangsan",
                         payload={"msgtype": "text", "text": {"content": "晚安"}},
                         customer_facing=True)
    await h.drain()
    assert deltas() == [1, 0]
    h.clock.set(datetime.combine(today + timedelta(days=1), time(9, 1), tzinfo=h.settings.tz))
    await h.drain()
    assert deltas() == [1, 1]


async def test_job_runs_are_counted_and_timed(h: Harness) -> None:
    async def job(ctx: BotContext) -> str:
        if runs:
            msg = "second run broke"
            raise RuntimeError(msg)
        runs.append(1)
        return "done"

    runs: list[int] = []
    spec = JobSpec("metrics_test", "计数测试", job, 60, lambda local, ctx: local.isoformat())
    book = JobBook.of([spec])
    deltas = Deltas(("scrmbot_job_runs_total", {"job": "metrics_test", "outcome": "ok"}),
                    ("scrmbot_job_runs_total", {"job": "metrics_test", "outcome": "failed"}),
                    ("scrmbot_job_duration_seconds_count", {"job": "metrics_test"}))
    ctx = h.app[context_key]
    assert await run_job(book, spec, ctx) == "ok: done"
    h.clock.advance(timedelta(seconds=1))  # a new slot
    assert (await run_job(book, spec, ctx)).startswith("failed")
    assert deltas() == [1, 1, 2]


async def test_a_registered_refresher_runs_before_each_scrape(h: Harness) -> None:
    async def budget() -> None:
        WECOM_BUDGET_USED.labels("metrics/test", "minute").set(7)

    async def broken() -> None:
        msg = "redis is away"
        raise ConnectionError(msg)

    refreshers = h.app[metrics_key]
    refreshers.add("test_budget", budget)
    refreshers.add("test_broken", broken)
    deltas = Deltas(("scrmbot_metrics_refresh_failures_total", {"refresher": "test_broken"}))
    samples = await scrape(h)  # still answers
    assert samples[("scrmbot_wecom_budget_used", (("api", "metrics/test"),
                                                  ("window", "minute")))] == 7
    assert deltas() == [1]
    assert refreshers.names == ("inbox", "outbox", "wecom_budget", "test_budget",
                                "test_broken")


async def test_the_api_budget_and_a_pause_are_read_at_scrape_time(h: Harness) -> None:
    deltas = Deltas(("scrmbot_wecom_calls_total", {"api": "message/send", "errcode": "45009"}),
                    ("scrmbot_outbox_deferrals_total", {"channel": "app", "reason": "budget"}))
    h.sim.use_up_api("message/send")  # another system on the corp: the next send gets 45009
    await h.app[context_key].outbox.app_message("metrics:budget", "test", "zhangsan", "text",
                                                {"content": "稍后再发"})
    await h.drain()
    assert deltas() == [1, 1]
    samples = await scrape(h)
    minute = (("api", "message/send"), ("window", "minute"))
    assert samples[("scrmbot_wecom_api_paused_seconds", (("api", "message/send"),))] == 60
    assert samples[("scrmbot_wecom_budget_used", minute)] >= 1
    assert samples[("scrmbot_wecom_budget_limit", minute)] == 10000  # WeCom's, whole
    assert samples[("scrmbot_wecom_budget_limit", (("api", "message/send"),
                                                   ("window", "hour")))] == 150000
