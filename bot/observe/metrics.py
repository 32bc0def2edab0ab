"""Every metric scrmbot exports, on prometheus-client's default registry (which also carries
the process's CPU, memory and file descriptors).

Labels take values from small fixed sets only (sources, rejection causes, route and job
names, WeCom endpoint paths, outbox channels): each distinct value is a time series kept
by Prometheus, so an id, a user or an error message never becomes one.

Counters and histograms are per process. The `*_rows` and `*_age_seconds` gauges are read
from the shared database at scrape time and are the same on every instance: aggregate them
with `max`, not `sum`.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Jobs run from milliseconds (a sweep with nothing due) to minutes (a board rollup catching
# up), well past the default buckets' 10 s.
JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
               600.0)

# --- callbacks (bot/wecom/endpoints.py) --------------------------------------------------------

CALLBACKS = Counter(
    "scrmbot_callbacks", "Callbacks received, by source (wecom, wechat) and outcome "
    "(accepted, duplicate, rejected, url_check)", ["source", "outcome"])
CALLBACKS_REJECTED = Counter(
    "scrmbot_callbacks_rejected", "Callbacks refused, by source and cause", ["source", "reason"])

# --- the inbox (bot/pipeline/worker.py, dispatcher.py) -----------------------------------------

INBOX_ROWS = Gauge(
    "scrmbot_inbox_rows", "Inbox rows not done, by status (pending, processing, dead); read "
    "at scrape time", ["status"])
INBOX_OLDEST_PENDING_AGE = Gauge(
    "scrmbot_inbox_oldest_pending_age_seconds", "Seconds since the oldest pending inbox row "
    "was received (0 when none); read at scrape time")
INBOX_ATTEMPTS = Counter(
    "scrmbot_inbox_attempts", "Inbox rows processed, by outcome: done, retry (a handler "
    "failed, tried again later), dead (the last attempt failed) or postponed (the API budget "
    "had no room; the attempt does not count)", ["outcome"])
HANDLER_SECONDS = Histogram(
    "scrmbot_handler_duration_seconds", "Event handler run time, with its transaction, by "
    "route", ["route"])
HANDLER_FAILURES = Counter(
    "scrmbot_handler_failures", "Event handler runs that raised (rolled back; a budget short "
    "too), by route", ["route"])

# --- the fast lanes (bot/pipeline/fastlane.py) -------------------------------------------------

FASTLANE = Counter(
    "scrmbot_fastlane", "Fast-lane work by lane and outcome: started, skipped (the lane was "
    "full: the worker does it), recovered (found by the lane's recovery), failed",
    ["lane", "outcome"])

# --- the outbox (bot/pipeline/outbox.py) -------------------------------------------------------

OUTBOX_ROWS = Gauge(
    "scrmbot_outbox_rows", "Outbox rows not sent, by status (pending, sending, failed, "
    "unknown); read at scrape time", ["status"])
OUTBOX_OLDEST_DUE_AGE = Gauge(
    "scrmbot_outbox_oldest_due_age_seconds", "Seconds the longest-waiting due outbox row has "
    "been due (0 when none is due); read at scrape time")
OUTBOX_SENT = Counter("scrmbot_outbox_sent", "Outbox rows delivered, by channel", ["channel"])
OUTBOX_DEFERRALS = Counter(
    "scrmbot_outbox_deferrals", "Outbox rows put off before sending, by channel and reason "
    "(member_limit, quiet_hours, held_back, budget)", ["channel", "reason"])
OUTBOX_RETRIES = Counter(
    "scrmbot_outbox_retries", "Outbox sends that failed and are tried again later, by "
    "channel", ["channel"])
OUTBOX_FAILED = Counter(
    "scrmbot_outbox_failed", "Outbox rows given up (permanent error or last attempt), by "
    "channel", ["channel"])

# --- WeCom API calls (bot/wecom/client.py, oa.py) ----------------------------------------------

WECOM_CALLS = Counter(
    "scrmbot_wecom_calls", "WeCom API HTTP exchanges by endpoint and errcode: 0 = success, "
    "the number on a WeCom error, http = no usable answer (transport, timeout, status, not "
    "JSON); Official Account calls are api=\"oa:…\"", ["api", "errcode"])
WECOM_CALL_SECONDS = Histogram(
    "scrmbot_wecom_call_seconds", "WeCom API HTTP exchange time, by endpoint", ["api"])
WECOM_BUDGET_USED = Gauge(
    "scrmbot_wecom_budget_used", "Calls counted against the corp-wide API budget in the last "
    "window (minute, hour), by endpoint; read at scrape time", ["api", "window"])
WECOM_BUDGET_LIMIT = Gauge(
    "scrmbot_wecom_budget_limit", "The corp-wide API budget per window: WeCom's limit times "
    "SCRM_WECOM_BUDGET_PERCENT; read at scrape time", ["api", "window"])
WECOM_API_PAUSED = Gauge(
    "scrmbot_wecom_api_paused_seconds", "Seconds left before calls to an endpoint WeCom "
    "blocked (45009) resume, for every instance (0 when not paused); read at scrape time",
    ["api"])

# --- jobs (scheduler/runner.py) ----------------------------------------------------------------

JOB_RUNS = Counter(
    "scrmbot_job_runs", "Job runs by job and outcome (ok, failed, claim_failed); ticks that "
    "find the slot not due, done or held elsewhere are not runs", ["job", "outcome"])
JOB_SECONDS = Histogram("scrmbot_job_duration_seconds", "Job run time, by job", ["job"],
                        buckets=JOB_BUCKETS)

# --- the endpoint itself (bot/app/metrics.py) ---------------------------------------------------

REFRESH_FAILURES = Counter(
    "scrmbot_metrics_refresh_failures", "Scrape-time refreshes that failed or timed out (their "
    "gauges keep the last value), by refresher", ["refresher"])
