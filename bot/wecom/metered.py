"""Counting and timing every WeCom HTTP exchange, in one decorator on the client's exchange
methods, so no API method (and no retry) can be missed or counted twice.

Each exchange is one `scrmbot_wecom_calls_total{api, errcode}` and one observation of
`scrmbot_wecom_call_seconds{api}`: a call retried three times is four exchanges, as WeCom
counts them against its limits; a call the API budget put off reached nobody and is not one.
`api` is the endpoint path the client passes (a literal in the client, so a small fixed set),
never a URL with its query.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from bot.observe.metrics import WECOM_CALL_SECONDS, WECOM_CALLS
from bot.wecom.errors import WeComBudgetShort, WeComError

P = ParamSpec("P")
T = TypeVar("T")


def errcode_label(exc: BaseException | None) -> str:
    """"0" for success, WeCom's errcode as text, "http" when WeCom gave no usable answer,
    "cancelled" when our side stopped waiting, "error" for anything else (a bug of ours)."""
    if exc is None:
        return "0"
    if isinstance(exc, WeComError):
        return "http" if exc.errcode is None else str(exc.errcode)
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"


def metered(api: str | None = None, *, prefix: str = ""
            ) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Awaitable[T]]]:
    """Count and time the decorated exchange under `api`, or, without it, under the value of
    its `endpoint` argument; `prefix` tells other APIs apart ("oa:" for the Official
    Account)."""

    def decorate(exchange: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        position = 0 if api is not None else \
            list(inspect.signature(exchange).parameters).index("endpoint")
        # each (api, errcode)'s series, looked up once: `labels()` takes a lock every call
        series: dict[tuple[str, str], tuple[Any, Any]] = {}

        def count(name: str, errcode: str, seconds: float) -> None:
            found = series.get((name, errcode))
            if found is None:
                found = series[(name, errcode)] = (WECOM_CALLS.labels(name, errcode),
                                                   WECOM_CALL_SECONDS.labels(name))
            found[0].inc()
            found[1].observe(seconds)

        @functools.wraps(exchange)
        async def counted(*args: P.args, **kwargs: P.kwargs) -> T:
            name = api if api is not None else str(
                args[position] if len(args) > position else kwargs["endpoint"])
            started = time.perf_counter()
            failure: BaseException | None = None
            try:
                return await exchange(*args, **kwargs)
            except BaseException as exc:
                failure = exc
                raise
            finally:
                if not isinstance(failure, WeComBudgetShort):  # that never reached WeCom
                    count(prefix + name, errcode_label(failure), time.perf_counter() - started)

        return counted

    return decorate
